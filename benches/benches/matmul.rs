//! Matrix product through gradlab's GEMM entry point (matrixmultiply sgemm,
//! single-threaded) against a naive triple loop, f32, square sizes.
//!
//! Run: `cargo bench -p gradlab-benches --bench matmul`. Throughput is
//! reported in elements/s where one element is one FLOP (2 per multiply-add).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gradlab_tensor::Tensor;

/// The textbook i-k-j loop: what a kernel must beat to be worth its code.
fn naive_matmul(a: &[f32], b: &[f32], c: &mut [f32], n: usize) {
    c.fill(0.0);
    for i in 0..n {
        for p in 0..n {
            let aip = a[i * n + p];
            let brow = &b[p * n..(p + 1) * n];
            let crow = &mut c[i * n..(i + 1) * n];
            for (cj, bj) in crow.iter_mut().zip(brow) {
                *cj += aip * bj;
            }
        }
    }
}

fn bench_matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul_f32");
    group.sample_size(10);
    for &n in &[64usize, 256, 1024] {
        let a = Tensor::<f32>::rand_normal(&[n, n], 0.0, 1.0, 1).expect("valid shape");
        let b = Tensor::<f32>::rand_normal(&[n, n], 0.0, 1.0, 2).expect("valid shape");
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        group.bench_with_input(BenchmarkId::new("gemm", n), &n, |bench, _| {
            bench.iter(|| black_box(a.matmul(&b).expect("square shapes")))
        });
        let mut out = vec![0.0f32; n * n];
        group.bench_with_input(BenchmarkId::new("naive", n), &n, |bench, &n| {
            bench.iter(|| {
                naive_matmul(
                    black_box(a.as_slice()),
                    black_box(b.as_slice()),
                    &mut out,
                    n,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_matmul);
criterion_main!(benches);
