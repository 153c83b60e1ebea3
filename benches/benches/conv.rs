//! Convolution kernels of gradlab-conv, f32, batch 64, forward and
//! forward+backward (gradients of input and weight; the bias gradient comes
//! along), on the layers of the CNNs gradlab trains, with the machine's GEMM
//! rate measured in the same run as the yardstick.
//!
//! Run: `cargo bench -p gradlab-benches --bench conv`. Throughput is reported
//! in elements/s where one element is one FLOP (2 per multiply-accumulate;
//! forward+backward counts 3 passes of the forward's MACs).
//!
//! Like the `gradlab` binary, the bench first calls
//! [`gradlab_tensor::retain_freed_memory`], so the kernels are timed without
//! the page faults of freshly mapped output buffers.
//!
//! `conv_isa_forward` and `conv_isa_forward_backward` run the same layers
//! under every build of the hand-written kernels the CPU runs
//! ([`gradlab_conv::with_isa`]), to compare their tile sizes in one run (the
//! im2col + GEMM layers c and d run matrixmultiply's kernels, which choose
//! their own instruction set, whatever the build).
//!
//! `conv_stride2` times 3x3 stride-2 layers through the direct kernel on
//! phase-split bands (`direct`) and through im2col + GEMM (`im2col`), in the
//! same run, to decide which route they take. Only the forward of images
//! with at least 16 output columns takes the direct route (see
//! `gradlab_conv`'s `direct::wide_width`), so the two 16x16 layers run the
//! same code under both names: the gap between them is the run's noise.
//!
//! `sgemm_1024_2threads` is matrixmultiply's single-threaded sgemm on a
//! 1024 x 1024 x 1024 problem split by rows into rayon tasks, the way the
//! convolution kernels use it, so both run on the same threads.

use std::time::Duration;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gradlab_benches::{conv_layers, CONV_BATCH};
use gradlab_conv::{
    conv2d, conv2d_backward, with_channel_direct, with_isa, with_row_tiles, with_strided_direct,
    Conv2dSpec, Isa,
};
use gradlab_tensor::{gemm, Tensor};
use ndarray::{Array1, Array2, Array4, Axis, Ix4};
use rayon::prelude::*;

const BATCH: usize = CONV_BATCH;

fn rand4(shape: [usize; 4], seed: u64) -> Array4<f32> {
    Tensor::<f32>::rand_normal(&shape, 0.0, 1.0, seed)
        .expect("valid shape")
        .into_array()
        .into_dimensionality::<Ix4>()
        .expect("rank 4")
}

fn bench_sgemm(c: &mut Criterion) {
    gradlab_tensor::retain_freed_memory();
    let n = 1024;
    let a = Array2::<f32>::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 17) as f32 - 8.0);
    let b = Array2::<f32>::from_shape_fn((n, n), |(i, j)| ((i * 5 + j) % 13) as f32 - 6.0);
    let mut out = Array2::<f32>::zeros((n, n));
    let mut group = c.benchmark_group("gemm");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
    group.bench_function("sgemm_1024_2threads", |bench| {
        bench.iter(|| {
            out.axis_chunks_iter_mut(Axis(0), 128)
                .collect::<Vec<_>>()
                .into_par_iter()
                .enumerate()
                .for_each(|(t, block)| {
                    let rows = a.slice(ndarray::s![t * 128..t * 128 + block.nrows(), ..]);
                    gemm(1.0, rows, b.view(), 0.0, block).expect("shapes agree");
                });
            black_box(&out);
        })
    });
    group.finish();
}

type Layer = (
    &'static str,
    gradlab_conv::Conv2dSpec,
    Array4<f32>,
    Array4<f32>,
    Array1<f32>,
    Array4<f32>,
    u64,
);

/// The layers of [`conv_layers`] with their operands and MAC counts.
fn layers() -> Vec<Layer> {
    conv_layers()
        .into_iter()
        .map(|(name, spec, hw)| {
            let x = rand4([BATCH, spec.in_channels, hw, hw], 1);
            let w = rand4(spec.weight_shape(), 2);
            let b = Array1::<f32>::zeros(spec.out_channels);
            let [oh, ow] = spec.output_size(hw, hw).expect("valid layer");
            let dy = rand4([BATCH, spec.out_channels, oh, ow], 3);
            let macs = spec.macs(BATCH, hw, hw).expect("valid layer");
            (name, spec, x, w, b, dy, macs)
        })
        .collect()
}

fn bench_conv(c: &mut Criterion) {
    gradlab_tensor::retain_freed_memory();
    let mut fwd = c.benchmark_group("conv_forward");
    fwd.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let cases = layers();
    for (name, spec, x, w, b, _, macs) in &cases {
        fwd.throughput(Throughput::Elements(2 * macs));
        fwd.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter(|| {
                black_box(conv2d(x.view(), w.view(), Some(b.view()), spec).expect("valid"))
            })
        });
    }
    fwd.finish();
    let mut both = c.benchmark_group("conv_forward_backward");
    both.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, spec, x, w, b, dy, macs) in &cases {
        both.throughput(Throughput::Elements(6 * macs));
        both.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter(|| {
                let y = conv2d(x.view(), w.view(), Some(b.view()), spec).expect("valid");
                let g = conv2d_backward(x.view(), w.view(), dy.view(), spec).expect("valid");
                black_box((y, g))
            })
        });
    }
    both.finish();
}

/// Every layer under every build the CPU runs, forward and forward+backward.
fn bench_isa(c: &mut Criterion) {
    gradlab_tensor::retain_freed_memory();
    let cases = layers();
    for (group_name, backward) in [
        ("conv_isa_forward", false),
        ("conv_isa_forward_backward", true),
    ] {
        let mut group = c.benchmark_group(group_name);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for (name, spec, x, w, b, dy, macs) in &cases {
            group.throughput(Throughput::Elements(if backward { 6 } else { 2 } * macs));
            for isa in Isa::available() {
                group.bench_function(BenchmarkId::new(*name, isa), |bench| {
                    bench.iter(|| {
                        with_isa(isa, || {
                            let y =
                                conv2d(x.view(), w.view(), Some(b.view()), spec).expect("valid");
                            let g = backward.then(|| {
                                conv2d_backward(x.view(), w.view(), dy.view(), spec).expect("valid")
                            });
                            black_box((y, g))
                        })
                        .expect("an available build")
                    })
                });
            }
        }
        group.finish();
    }
}

/// 3x3 stride-2 layers (the downsampling convolutions of ResNets) by both
/// routes, forward and forward+backward.
fn bench_stride2(c: &mut Criterion) {
    gradlab_tensor::retain_freed_memory();
    let mut group = c.benchmark_group("conv_stride2");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let layers = [
        (
            "16-32_32x32",
            Conv2dSpec::new(16, 32, 3).stride(2).padding(1),
            32,
        ),
        (
            "32-64_16x16",
            Conv2dSpec::new(32, 64, 3).stride(2).padding(1),
            16,
        ),
        (
            "64-128_16x16",
            Conv2dSpec::new(64, 128, 3).stride(2).padding(1),
            16,
        ),
    ];
    for (name, spec, hw) in layers {
        let x = rand4([BATCH, spec.in_channels, hw, hw], 1);
        let w = rand4(spec.weight_shape(), 2);
        let [oh, ow] = spec.output_size(hw, hw).expect("valid layer");
        let dy = rand4([BATCH, spec.out_channels, oh, ow], 3);
        let macs = spec.macs(BATCH, hw, hw).expect("valid layer");
        for (pass, backward) in [("forward", false), ("fwd+bwd", true)] {
            group.throughput(Throughput::Elements(if backward { 6 } else { 2 } * macs));
            for (route, on) in [("direct", true), ("im2col", false)] {
                let id = BenchmarkId::new(format!("{name}/{pass}"), route);
                group.bench_function(id, |bench| {
                    bench.iter(|| {
                        with_strided_direct(on, || {
                            let y = conv2d(x.view(), w.view(), None, &spec).expect("valid");
                            let g = backward.then(|| {
                                conv2d_backward(x.view(), w.view(), dy.view(), &spec)
                                    .expect("valid")
                            });
                            black_box((y, g))
                        })
                    })
                });
            }
        }
    }
    group.finish();
}

/// The stride-2 depthwise 3x3 layers of the small MobileNet (64 channels
/// on 32x32 images, 128 on 16x16, 256 on 8x8), forward and
/// forward+backward.
fn bench_depthwise_stride2(c: &mut Criterion) {
    gradlab_tensor::retain_freed_memory();
    let mut group = c.benchmark_group("conv_depthwise_stride2");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (channels, hw) in [(64, 32), (128, 16), (256, 8)] {
        let spec = Conv2dSpec::new(channels, channels, 3)
            .stride(2)
            .padding(1)
            .groups(channels);
        let x = rand4([BATCH, channels, hw, hw], 1);
        let w = rand4(spec.weight_shape(), 2);
        let [oh, ow] = spec.output_size(hw, hw).expect("valid layer");
        let dy = rand4([BATCH, channels, oh, ow], 3);
        let macs = spec.macs(BATCH, hw, hw).expect("valid layer");
        for (pass, backward) in [("forward", false), ("fwd+bwd", true)] {
            group.throughput(Throughput::Elements(if backward { 6 } else { 2 } * macs));
            let id = BenchmarkId::new(format!("dw{channels}_{hw}x{hw}"), pass);
            group.bench_function(id, |bench| {
                bench.iter(|| {
                    let y = conv2d(x.view(), w.view(), None, &spec).expect("valid");
                    let g = backward.then(|| {
                        conv2d_backward(x.view(), w.view(), dy.view(), &spec).expect("valid")
                    });
                    black_box((y, g))
                })
            });
        }
    }
    group.finish();
}

/// Layers b and c with the channel-vectorised kernel allowed (`channels`)
/// and not (`previous`), forward, weight gradient only (`params`) and
/// forward+backward, the two routes one after the other in the same run.
/// Only layer c (8x8 images) takes the kernel (see `gradlab_conv`'s
/// `channels::applies`), so layer b runs the same code under both names:
/// the gap between them is the run's noise.
fn bench_small(c: &mut Criterion) {
    gradlab_tensor::retain_freed_memory();
    let mut group = c.benchmark_group("conv_small");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let cases = layers();
    for (name, spec, x, w, b, dy, macs) in cases.iter().take(3).skip(1) {
        for (pass, passes) in [("forward", 2), ("params", 2), ("fwd+bwd", 6)] {
            group.throughput(Throughput::Elements(passes * macs));
            for (route, on) in [("channels", true), ("previous", false)] {
                let id = BenchmarkId::new(format!("{name}/{pass}"), route);
                group.bench_function(id, |bench| {
                    bench.iter(|| {
                        with_channel_direct(on, || {
                            if pass == "params" {
                                let g = gradlab_conv::conv2d_backward_params(
                                    x.view(),
                                    w.view(),
                                    dy.view(),
                                    spec,
                                );
                                return black_box(g.is_ok());
                            }
                            let y = conv2d(x.view(), w.view(), Some(b.view()), spec);
                            let g = (pass == "fwd+bwd")
                                .then(|| conv2d_backward(x.view(), w.view(), dy.view(), spec));
                            black_box(y.is_ok() && g.is_none_or(|g| g.is_ok()))
                        })
                    })
                });
            }
        }
    }
    group.finish();
}

/// Layers a and b (3x3 stride 1 on 32x32 and 16x16 images) with the
/// row-tiled kernel allowed (`rows`) and not (`wide`, the direct kernel's
/// wide layout), forward and forward+backward, one after the other in the
/// same run. The row-tiled kernel runs in the AVX-512 build only; on other
/// CPUs both names run the same code.
fn bench_rows(c: &mut Criterion) {
    gradlab_tensor::retain_freed_memory();
    let mut group = c.benchmark_group("conv_rows");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let cases = layers();
    for (name, spec, x, w, b, dy, macs) in cases.iter().take(2) {
        for (pass, passes) in [("forward", 2), ("fwd+bwd", 6)] {
            group.throughput(Throughput::Elements(passes * macs));
            for (route, on) in [("rows", true), ("wide", false)] {
                let id = BenchmarkId::new(format!("{name}/{pass}"), route);
                group.bench_function(id, |bench| {
                    bench.iter(|| {
                        with_row_tiles(on, || {
                            let y = conv2d(x.view(), w.view(), Some(b.view()), spec);
                            let g = (pass == "fwd+bwd")
                                .then(|| conv2d_backward(x.view(), w.view(), dy.view(), spec));
                            black_box(y.is_ok() && g.is_none_or(|g| g.is_ok()))
                        })
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_sgemm,
    bench_conv,
    bench_isa,
    bench_stride2,
    bench_depthwise_stride2,
    bench_small,
    bench_rows
);
criterion_main!(benches);
