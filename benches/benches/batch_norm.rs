//! BatchNorm's fused training op (`BatchNormTrainOp`, f32, 2 threads as
//! set by the environment), forward and forward+backward, with the ReLU
//! after it (`batch_norm_relu`, the op after most convolutions) and with
//! the residual addition (`batch_norm_add_relu`, the end of a ResNet
//! block), on the activations of the networks gradlab trains at batch 128:
//! a ResNet's three stages and the MobileNet's 32x32 and 4x4 planes.
//!
//! Run: `cargo bench -p gradlab-benches --bench batch_norm`. Throughput is
//! in elements (activation values) per second. The passes are bound by
//! memory traffic on large activations and by per-plane work on small
//! planes, so both kinds are here.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gradlab_autodiff::Op;
use gradlab_nn::BatchNormTrainOp;
use gradlab_tensor::Tensor;

const EPS: f64 = 1e-5;

/// `(name, [N, C, H, W])` of the activations.
const SHAPES: [(&str, [usize; 4]); 5] = [
    ("resnet_16x32x32", [128, 16, 32, 32]),
    ("resnet_32x16x16", [128, 32, 16, 16]),
    ("resnet_64x8x8", [128, 64, 8, 8]),
    ("mobilenet_64x32x32", [128, 64, 32, 32]),
    ("mobilenet_512x4x4", [128, 512, 4, 4]),
];

fn tensor(shape: &[usize], seed: u64) -> Tensor<f32> {
    Tensor::rand_normal(shape, 0.0, 1.0, seed).expect("valid shape")
}

fn bench_batch_norm(c: &mut Criterion) {
    gradlab_tensor::retain_freed_memory();
    for (op_name, op) in [
        ("batch_norm_relu", BatchNormTrainOp::new(EPS).with_relu()),
        (
            "batch_norm_add_relu",
            BatchNormTrainOp::new(EPS).with_add_relu(),
        ),
    ] {
        let mut fwd = c.benchmark_group(format!("{op_name}_forward"));
        fwd.sample_size(20).measurement_time(Duration::from_secs(3));
        let mut both_inputs = Vec::new();
        for (name, shape) in SHAPES {
            let ch = shape[1];
            let mut inputs = vec![tensor(&shape, 1), tensor(&[ch], 2), tensor(&[ch], 3)];
            if op_name == "batch_norm_add_relu" {
                inputs.push(tensor(&shape, 4));
            }
            let refs: Vec<&Tensor<f32>> = inputs.iter().collect();
            fwd.throughput(Throughput::Elements(inputs[0].len() as u64));
            fwd.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| black_box(op.forward(black_box(&refs)).expect("forward")))
            });
            both_inputs.push((name, inputs));
        }
        fwd.finish();
        let mut both = c.benchmark_group(format!("{op_name}_forward_backward"));
        both.sample_size(20)
            .measurement_time(Duration::from_secs(3));
        for (name, inputs) in &both_inputs {
            let refs: Vec<&Tensor<f32>> = inputs.iter().collect();
            let dy = tensor(inputs[0].shape(), 5);
            let needs = vec![true; refs.len()];
            both.throughput(Throughput::Elements(inputs[0].len() as u64));
            both.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    let y = op.forward(black_box(&refs)).expect("forward");
                    black_box(op.backward(&refs, &y, &dy, &needs).expect("backward"))
                })
            });
        }
        both.finish();
    }
}

criterion_group!(benches, bench_batch_norm);
criterion_main!(benches);
