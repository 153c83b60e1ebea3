//! Speed work must not change results: a few SGD steps of small networks,
//! f32, fixed seeds, whose losses are compared with values recorded before
//! the training step was optimised (at commit 0927bf1, the same with 1, 2
//! and 3 threads). Relative tolerance 1e-5: room for a changed order of
//! floating-point sums, not for a changed computation.

use gradlab_arch::{Classifier, MobileNet, MobileNetConfig, ResNet, ResNetConfig};
use gradlab_nn::{cross_entropy, Ctx, Optimizer, Scope, Sgd, SgdConfig};
use gradlab_tensor::Tensor;

const BATCH: usize = 16;
const STEPS: usize = 6;

/// Losses of `STEPS` SGD steps (momentum 0.9, weight decay 5e-4) on one
/// seeded batch of `BATCH` 3x16x16 images (so the loss falls as the
/// network memorises it, and every step depends on every earlier gradient).
fn losses(net: &mut dyn Classifier<f32>) -> Vec<f32> {
    let mut opt = Sgd::new(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 5e-4,
        ..SgdConfig::default()
    })
    .expect("valid config");
    let images = Tensor::<f32>::rand_normal(&[BATCH, 3, 16, 16], 0.0, 1.0, 100).expect("shape");
    let labels: Vec<usize> = (0..BATCH).map(|i| (i * 7) % 10).collect();
    let mut out = Vec::new();
    for _ in 0..STEPS {
        let mut cx = Ctx::new();
        let x = cx.input(images.clone());
        let logits = net.forward(&mut cx, x).expect("forward");
        let loss = cross_entropy(&mut cx, logits, &labels, &Default::default()).expect("loss");
        let grads = cx.backward(loss).expect("backward");
        out.push(cx.value(loss).expect("loss value").item().expect("scalar"));
        opt.step(net, &grads).expect("step");
    }
    out
}

fn check(name: &str, got: &[f32], recorded: &[f32]) {
    assert_eq!(got.len(), recorded.len(), "{name}");
    for (step, (&g, &r)) in got.iter().zip(recorded).enumerate() {
        let rel = ((g - r) / r).abs();
        assert!(
            rel <= 1e-5,
            "{name}, step {step}: loss {g:?}, recorded {r:?} (relative difference {rel:e}); \
             all losses {got:?}"
        );
    }
}

#[test]
fn resnet8_losses_match_the_recorded_ones() {
    let cfg = ResNetConfig::cifar(8).expect("depth 8");
    let mut net = ResNet::<f32>::new(&Scope::new(5), &cfg).expect("builds");
    check(
        "resnet-8",
        &losses(&mut net),
        &[
            2.3695285, 2.208353, 2.008023, 1.8314984, 1.650827, 1.4274471,
        ],
    );
}

#[test]
fn plain8_losses_match_the_recorded_ones() {
    let cfg = ResNetConfig::cifar(8).expect("depth 8").plain();
    let mut net = ResNet::<f32>::new(&Scope::new(6), &cfg).expect("builds");
    check(
        "plain-8",
        &losses(&mut net),
        &[
            2.2974987, 2.1776752, 1.9999754, 1.8101403, 1.624593, 1.4392617,
        ],
    );
}

#[test]
fn mobilenet_losses_match_the_recorded_ones() {
    let cfg = MobileNetConfig::small().with_width(0.25);
    let mut net = MobileNet::<f32>::new(&Scope::new(7), &cfg).expect("builds");
    check(
        "mobilenet-0.25",
        &losses(&mut net),
        &[
            2.4067907, 2.0885355, 1.879256, 1.6345228, 1.4225951, 1.202222,
        ],
    );
}
