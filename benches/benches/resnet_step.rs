//! One SGD training step (momentum 0.9, weight decay 5e-4) of the CIFAR
//! ResNet-20 (option-A shortcuts, 269,722 parameters) and its plain twin on
//! 3x32x32 inputs, as `gradlab bench --model resnet:depth=20` times it:
//!
//! - `resnet20_b128/full_step`, `plain20_b128/full_step`: one
//!   [`gradlab_train::Trainer::step`]: forward with the cross-entropy,
//!   backward, the non-finite guard, the SGD update, freeing the graph;
//! - `resnet20_b128/forward`, `resnet20_b128/backward`: the two halves;
//! - `resnet20_b1/full_step`: batch 1, where parallelism has to come from
//!   inside each layer.
//!
//! Like the `gradlab` binary, it first calls
//! [`gradlab_tensor::retain_freed_memory`].
//!
//! Run: `cargo bench -p gradlab-benches --bench resnet_step` (about two
//! minutes on two cores).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gradlab_arch::{ResNet, ResNetConfig};
use gradlab_autodiff::Var;
use gradlab_data::Batch;
use gradlab_nn::{cross_entropy, CrossEntropyOptions, Ctx, Module, Scope};
use gradlab_tensor::Tensor;
use gradlab_train::{OptimizerSpec, Trainer};

fn setup(plain: bool) -> (ResNet<f32>, Trainer) {
    let mut cfg = ResNetConfig::cifar(20).expect("ResNet-20");
    if plain {
        cfg = cfg.plain();
    }
    let net = ResNet::new(&Scope::new(0), &cfg).expect("valid model");
    let trainer = Trainer::new(&OptimizerSpec::sgd(0.01).with_weight_decay(5e-4), 0)
        .expect("valid optimizer");
    (net, trainer)
}

fn data(batch: usize) -> (Tensor<f32>, Vec<usize>) {
    let images = Tensor::<f32>::rand_normal(&[batch, 3, 32, 32], 0.0, 1.0, 1).expect("shape");
    let labels = (0..batch).map(|i| (i * 7) % 10).collect();
    (images, labels)
}

fn forward(net: &mut ResNet<f32>, images: &Tensor<f32>, labels: &[usize]) -> (Ctx<f32>, Var) {
    let mut cx = Ctx::new();
    let x = cx.input(images.clone());
    let logits = net.forward(&mut cx, x).expect("forward");
    let loss =
        cross_entropy(&mut cx, logits, labels, &CrossEntropyOptions::default()).expect("loss");
    (cx, loss)
}

fn step(net: &mut ResNet<f32>, trainer: &mut Trainer, images: &Tensor<f32>, labels: &[usize]) {
    let batch = Batch {
        images: images.clone(),
        labels: labels.to_vec(),
        indices: Vec::new(),
    };
    trainer
        .step(net, batch)
        .expect("step")
        .finite()
        .expect("finite");
}

fn bench_resnet_step(c: &mut Criterion) {
    // As the `gradlab` binary does: steps reuse the memory freed by the last.
    gradlab_tensor::retain_freed_memory();
    let (images, labels) = data(128);
    let mut group = c.benchmark_group("resnet20_b128");
    group.sample_size(10);
    let (mut net, mut opt) = setup(false);
    group.bench_function("full_step", |b| {
        b.iter(|| step(&mut net, &mut opt, &images, &labels))
    });
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
    group.finish();

    let mut group = c.benchmark_group("plain20_b128");
    group.sample_size(10);
    let (mut net, mut opt) = setup(true);
    group.bench_function("full_step", |b| {
        b.iter(|| step(&mut net, &mut opt, &images, &labels))
    });
    group.finish();

    let (images, labels) = data(1);
    let mut group = c.benchmark_group("resnet20_b1");
    group.sample_size(20);
    let (mut net, mut opt) = setup(false);
    group.bench_function("full_step", |b| {
        b.iter(|| step(&mut net, &mut opt, &images, &labels))
    });
    group.finish();
}

criterion_group!(benches, bench_resnet_step);
criterion_main!(benches);
