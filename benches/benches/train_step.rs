//! One SGD training step of a small CNN at batch 64 on 32x32 RGB inputs,
//! split into forward (with the loss), backward and update.
//!
//! Model: conv 3->16 3x3 pad 1, BatchNorm, ReLU, max-pool 2; conv 16->32 3x3
//! pad 1, BatchNorm, ReLU, max-pool 2; global average pooling; linear 32->10;
//! cross-entropy. SGD with momentum 0.9, Nesterov, weight decay 5e-4.
//!
//! Run: `cargo bench -p gradlab-benches --bench train_step`. Like the
//! `gradlab` binary, the bench first calls
//! [`gradlab_tensor::retain_freed_memory`].

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gradlab_autodiff::Op;
use gradlab_nn::{
    cross_entropy, Activation, BatchNorm2d, BatchNormConfig, BatchNormTrainOp, Conv2d,
    Conv2dConfig, Conv2dOp, Conv2dSpec, CrossEntropyOptions, Ctx, GlobalAvgPool2d, Linear,
    LinearConfig, MaxPool2d, MaxPool2dOp, Module, Optimizer, Pool2dSpec, Scope, Sequential, Sgd,
    SgdConfig,
};
use gradlab_tensor::Tensor;

const BATCH: usize = 64;

fn model() -> Sequential<f32> {
    let mut net = Sequential::new(&Scope::new(0));
    let conv = |cin, cout| Conv2dSpec::new(cin, cout, 3).padding(1);
    net.add(|s| Conv2d::new(s, conv(3, 16), Conv2dConfig::kaiming_no_bias()))
        .and_then(|n| n.add(|s| BatchNorm2d::new(s, 16, BatchNormConfig::default())))
        .and_then(|n| n.add(|s| Ok(Activation::relu(s))))
        .and_then(|n| n.add(|s| MaxPool2d::new(s, Pool2dSpec::new(2))))
        .and_then(|n| n.add(|s| Conv2d::new(s, conv(16, 32), Conv2dConfig::kaiming_no_bias())))
        .and_then(|n| n.add(|s| BatchNorm2d::new(s, 32, BatchNormConfig::default())))
        .and_then(|n| n.add(|s| Ok(Activation::relu(s))))
        .and_then(|n| n.add(|s| MaxPool2d::new(s, Pool2dSpec::new(2))))
        .and_then(|n| n.add(|s| Ok(GlobalAvgPool2d::new(s))))
        .and_then(|n| n.add(|s| Linear::new(s, 32, 10, LinearConfig::default())))
        .expect("valid model");
    net
}

fn optimizer() -> Sgd<f32> {
    Sgd::new(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 5e-4,
        ..Default::default()
    })
    .expect("valid config")
}

/// Forward pass and loss on a fresh context.
fn forward(
    net: &mut Sequential<f32>,
    images: &Tensor<f32>,
    labels: &[usize],
) -> (Ctx<f32>, gradlab_autodiff::Var) {
    let mut cx = Ctx::new();
    let x = cx.input(images.clone());
    let logits = net.forward(&mut cx, x).expect("forward");
    let loss =
        cross_entropy(&mut cx, logits, labels, &CrossEntropyOptions::default()).expect("loss");
    (cx, loss)
}

fn bench_train_step(c: &mut Criterion) {
    gradlab_tensor::retain_freed_memory();
    let images = Tensor::<f32>::rand_normal(&[BATCH, 3, 32, 32], 0.0, 1.0, 1).expect("shape");
    let labels: Vec<usize> = (0..BATCH).map(|i| i % 10).collect();
    let mut net = model();
    let mut opt = optimizer();

    let mut group = c.benchmark_group("train_step_b64_32x32");
    group.sample_size(20);

    group.bench_function("forward", |b| {
        b.iter(|| black_box(forward(&mut net, &images, &labels)))
    });

    // The backward pass consumes its graph: each sample gets a fresh one.
    group.bench_function("backward", |b| {
        b.iter_batched(
            || forward(&mut net, &images, &labels),
            |(mut cx, loss)| black_box(cx.backward(loss).expect("backward")),
            BatchSize::PerIteration,
        )
    });

    let (mut cx, loss) = forward(&mut net, &images, &labels);
    let grads = cx.backward(loss).expect("backward");
    opt.step(&mut net, &grads)
        .expect("first step creates the momentum buffers");
    group.bench_function("update", |b| {
        b.iter(|| opt.step(&mut net, black_box(&grads)).expect("step"))
    });

    group.bench_function("full_step", |b| {
        b.iter(|| {
            let (mut cx, loss) = forward(&mut net, &images, &labels);
            let grads = cx.backward(loss).expect("backward");
            opt.step(&mut net, &grads).expect("step");
        })
    });
    group.finish();
}

/// The ops of the first block on their own (shapes of the step above), to
/// show where the step's time goes.
fn bench_parts(c: &mut Criterion) {
    gradlab_tensor::retain_freed_memory();
    let x = Tensor::<f32>::rand_normal(&[BATCH, 3, 32, 32], 0.0, 1.0, 2).expect("shape");
    let h = Tensor::<f32>::rand_normal(&[BATCH, 16, 32, 32], 0.0, 1.0, 3).expect("shape");
    let conv = Conv2dOp {
        spec: Conv2dSpec::new(3, 16, 3).padding(1),
    };
    let w = Tensor::<f32>::rand_normal(&conv.spec.weight_shape(), 0.0, 0.1, 4).expect("shape");
    let bn = BatchNormTrainOp::new(1e-5);
    let (gamma, beta) = (Tensor::<f32>::ones(&[16]), Tensor::<f32>::zeros(&[16]));
    let pool = MaxPool2dOp {
        spec: Pool2dSpec::new(2),
    };
    let pooled = pool.forward(&[&h]).expect("pool");

    let mut group = c.benchmark_group("train_step_parts_b64");
    group.sample_size(10);
    group.bench_function("conv3x3_3to16_32x32/forward", |b| {
        b.iter(|| black_box(conv.forward(&[&x, &w]).expect("conv")))
    });
    group.bench_function("conv3x3_3to16_32x32/backward", |b| {
        b.iter(|| {
            black_box(
                conv.backward(&[&x, &w], &h, &h, &[false, true])
                    .expect("conv"),
            )
        })
    });
    group.bench_function("batch_norm_16x32x32/forward", |b| {
        b.iter(|| black_box(bn.forward(&[&h, &gamma, &beta]).expect("bn")))
    });
    group.bench_function("batch_norm_16x32x32/backward", |b| {
        b.iter(|| {
            black_box(
                bn.backward(&[&h, &gamma, &beta], &h, &h, &[true, true, true])
                    .expect("bn"),
            )
        })
    });
    group.bench_function("max_pool2_16x32x32/forward", |b| {
        b.iter(|| black_box(pool.forward(&[&h]).expect("pool")))
    });
    group.bench_function("max_pool2_16x32x32/backward", |b| {
        b.iter(|| {
            black_box(
                pool.backward(&[&h], &pooled, &pooled, &[true])
                    .expect("pool"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_train_step, bench_parts);
criterion_main!(benches);
