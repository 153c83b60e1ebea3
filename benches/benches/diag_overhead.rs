//! What leaving the diagnostics on costs: one SGD training step of the CIFAR
//! ResNet-20 (batch 32, 3x32x32 inputs, momentum 0.9), without and with
//! `gradlab_train::ModelRecorder::record` at every step.
//!
//! - `plain`: forward, cross-entropy, backward, update;
//! - `recorded`: the same with the tapped activations' gradients kept
//!   (`backward_with_taps`) and `ModelRecorder::record` before the update, as
//!   `run_diagnosed` does: per-layer gradient, weight and update statistics,
//!   activation gradients at the 9 block outputs, the successive-gradient
//!   cosine; forward statistics (dead units, diversity) every 10 steps;
//! - `recorded_forward_every_step`: forward statistics at every step too.
//!
//! Run: `cargo bench -p gradlab-benches --bench diag_overhead`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use gradlab_arch::{Classifier, LayerKind, ResNet, ResNetConfig};
use gradlab_nn::{
    cross_entropy, ActivationKind, CrossEntropyOptions, Ctx, Module, Optimizer, Scope, Sgd,
    SgdConfig,
};
use gradlab_tensor::Tensor;
use gradlab_train::{ModelRecorder, RecorderOptions};

const BATCH: usize = 32;

fn setup() -> (ResNet<f32>, Sgd<f32>) {
    let net = ResNet::new(&Scope::new(0), &ResNetConfig::cifar(20).expect("ResNet-20"))
        .expect("valid model");
    let opt = Sgd::new(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        ..Default::default()
    })
    .expect("valid config");
    (net, opt)
}

/// The recorder `run_diagnosed` would set up for this network.
fn recorder(net: &ResNet<f32>, forward_stats_every: usize) -> ModelRecorder {
    let unit_taps = net
        .layers()
        .into_iter()
        .filter(|l| matches!(l.kind, LayerKind::Activation(ActivationKind::Relu)))
        .map(|l| l.name)
        .collect();
    ModelRecorder::new(
        RecorderOptions {
            positions: net.block_names(),
            activation: Some(ActivationKind::Relu),
            forward_stats_every,
            unit_taps,
        },
        10,
    )
}

/// One training step; with a recorder, records it before the update.
fn step(
    net: &mut ResNet<f32>,
    opt: &mut Sgd<f32>,
    images: &Tensor<f32>,
    labels: &[usize],
    recorder: Option<(&mut ModelRecorder, usize)>,
) {
    let mut cx = Ctx::new();
    let x = cx.input(images.clone());
    let logits = net.forward(&mut cx, x).expect("forward");
    let loss =
        cross_entropy(&mut cx, logits, labels, &CrossEntropyOptions::default()).expect("loss");
    let grads = match recorder {
        None => cx.backward(loss).expect("backward"),
        Some((rec, t)) => {
            let (grads, taps) = cx.backward_with_taps(loss).expect("backward");
            black_box(
                rec.record(t, &*net, &cx, &grads, &taps, None)
                    .expect("record"),
            );
            grads
        }
    };
    opt.step(net, &grads).expect("update");
}

fn bench_overhead(c: &mut Criterion) {
    let images = Tensor::<f32>::rand_normal(&[BATCH, 3, 32, 32], 0.0, 1.0, 1).expect("shape");
    let labels: Vec<usize> = (0..BATCH).map(|i| i % 10).collect();

    let mut group = c.benchmark_group("diag_overhead_resnet20_b32_32x32");
    group.sample_size(20);

    let (mut net, mut opt) = setup();
    group.bench_function("plain", |b| {
        b.iter(|| step(&mut net, &mut opt, &images, &labels, None))
    });

    for (name, every) in [("recorded", 10), ("recorded_forward_every_step", 1)] {
        let (mut net, mut opt) = setup();
        let mut rec = recorder(&net, every);
        let mut t = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                step(&mut net, &mut opt, &images, &labels, Some((&mut rec, t)));
                t += 1;
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_overhead);
criterion_main!(benches);
