//! Whole-model gradient checks in f64 on tiny instances (widths 2-4, 6x6
//! inputs, batch 2): every input and trainable parameter, against central
//! differences, with BatchNorm in training mode.

use crate::common;

use common::{gradcheck_model, labels, Output};
use gradlab_arch::*;
use gradlab_autodiff::gradcheck::{gradcheck_op, GradcheckOptions};
use gradlab_autodiff::Op;
use gradlab_nn::{ActivationKind, Scope};
use gradlab_tensor::Tensor;

fn opts() -> GradcheckOptions {
    GradcheckOptions::default()
}

fn input(seed: u64) -> Tensor<f64> {
    Tensor::rand_normal(&[2, 3, 6, 6], 0.0, 1.0, seed).unwrap()
}

/// A ResNet with one block per stage, widths 2/3/4 (so option A pads an
/// odd number of channels too), 3 classes.
fn tiny_resnet() -> ResNetConfig {
    let mut c = ResNetConfig::cifar(8).unwrap().with_width(2);
    c.widths = vec![2, 3, 4];
    c.num_classes = 3;
    c
}

fn check(model: impl Classifier<f64>, seed: u64) {
    let report = gradcheck_model(model, input(seed), Output::Logits, &opts()).unwrap();
    assert!(report.elements_checked > 200, "{report:?}");
}

#[test]
fn shortcut_a_op_matches_finite_differences() {
    for (cin, cout, stride, h, w) in [
        (2, 4, 2, 5, 6),
        (3, 3, 1, 4, 4),
        (2, 5, 3, 7, 4),
        (1, 2, 2, 1, 1),
    ] {
        let x = Tensor::<f64>::rand_normal(&[2, cin, h, w], 0.0, 1.0, 3).unwrap();
        let op = ShortcutAOp {
            out_channels: cout,
            stride,
        };
        gradcheck_op(&op, &[x], &opts()).unwrap();
    }
}

#[test]
fn shortcut_a_op_forward_is_the_written_out_subsampling_and_padding() {
    for (n, cin, cout, stride, h, w) in [(3, 2, 4, 2, 5, 6), (4, 3, 8, 2, 8, 8), (2, 3, 3, 1, 4, 4)]
    {
        let x = Tensor::<f64>::rand_normal(&[n, cin, h, w], 0.0, 1.0, 5).unwrap();
        let op = ShortcutAOp {
            out_channels: cout,
            stride,
        };
        let y = Op::forward(&op, &[&x]).unwrap();
        let (oh, ow) = (h.div_ceil(stride), w.div_ceil(stride));
        assert_eq!(y.shape(), [n, cout, oh, ow]);
        let front = (cout - cin) / 2;
        let (xs, ys) = (x.as_slice(), y.as_slice());
        for img in 0..n {
            for co in 0..cout {
                for i in 0..oh {
                    for j in 0..ow {
                        let want = match co.checked_sub(front) {
                            Some(c) if c < cin => {
                                xs[((img * cin + c) * h + i * stride) * w + j * stride]
                            }
                            _ => 0.0,
                        };
                        let got = ys[((img * cout + co) * oh + i) * ow + j];
                        assert_eq!(got, want, "image {img} channel {co} pixel ({i}, {j})");
                    }
                }
            }
        }
    }
}

#[test]
fn resnet_option_a() {
    let net = ResNet::<f64>::new(&Scope::new(1), &tiny_resnet()).unwrap();
    check(net, 11);
}

#[test]
fn resnet_option_b() {
    let mut c = tiny_resnet();
    c.shortcut = ShortcutOption::B;
    check(ResNet::<f64>::new(&Scope::new(2), &c).unwrap(), 12);
}

#[test]
fn resnet_preactivation() {
    let mut c = tiny_resnet();
    c.preact = true;
    check(ResNet::<f64>::new(&Scope::new(3), &c).unwrap(), 13);
    c.shortcut = ShortcutOption::B;
    check(ResNet::<f64>::new(&Scope::new(3), &c).unwrap(), 13);
}

#[test]
fn plain_twin_without_batch_norm() {
    let mut c = tiny_resnet().plain();
    c.batch_norm = false;
    c.activation = ActivationKind::Tanh;
    check(ResNet::<f64>::new(&Scope::new(4), &c).unwrap(), 14);
}

#[test]
fn bottleneck_network() {
    let mut c = ResNetConfig::cifar_bottleneck(11).unwrap();
    c.widths = vec![2, 2];
    c.blocks = vec![1, 1];
    c.expansion = 2;
    c.stem = Stem::Small { channels: 2 };
    c.num_classes = 3;
    check(ResNet::<f64>::new(&Scope::new(5), &c).unwrap(), 15);
}

#[test]
fn inverted_residual_network() {
    let mut c = MobileNetConfig::small_v2();
    c.channel_divisor = 1;
    c.stem_channels = 3;
    c.stages = vec![
        MobileStage {
            channels: 2,
            blocks: 1,
            stride: 1,
            expansion: 1,
        },
        MobileStage {
            channels: 3,
            blocks: 2,
            stride: 2,
            expansion: 2,
        },
    ];
    c.num_classes = 3;
    let net = MobileNet::<f64>::new(&Scope::new(6), &c).unwrap();
    // stage2.block2 has the identity shortcut (stride 1, 3 -> 3 channels).
    assert!(net.blocks().nth(2).unwrap().has_shortcut());
    check(net, 16);
}

#[test]
fn separable_network() {
    let mut c = MobileNetConfig::small();
    c.channel_divisor = 1;
    c.stem_channels = 2;
    c.stages = vec![
        MobileStage {
            channels: 3,
            blocks: 1,
            stride: 1,
            expansion: 1,
        },
        MobileStage {
            channels: 4,
            blocks: 1,
            stride: 2,
            expansion: 1,
        },
    ];
    c.num_classes = 3;
    check(MobileNet::<f64>::new(&Scope::new(7), &c).unwrap(), 17);
}

#[test]
fn plain_stacks_with_shortcuts() {
    let mut c = PlainCnnConfig::new(3, 3, 5, 2, ActivationKind::Sigmoid);
    c.stack.shortcut_every = Some(2);
    check(PlainCnn::<f64>::new(&Scope::new(8), &c).unwrap(), 18);
    let mut m = PlainMlpConfig::new(3 * 6 * 6, 3, 5, 4, ActivationKind::Tanh);
    m.stack.batch_norm = true;
    m.stack.shortcut_every = Some(1);
    check(PlainMlp::<f64>::new(&Scope::new(9), &m).unwrap(), 19);
}

#[test]
fn auxiliary_heads_with_combined_loss() {
    let root = Scope::new(10);
    let net = ResNet::<f64>::new(&root, &tiny_resnet()).unwrap();
    let heads = [
        AuxHeadConfig::new("stage1"),
        AuxHeadConfig::new("stage2.block1")
            .with_weight(0.5)
            .with_kind(HeadKind::GoogLeNet {
                channels: 2,
                hidden: 3,
                dropout: 0.0,
            }),
    ];
    let model = AuxNet::new(&root, net, &heads, &[3, 6, 6]).unwrap();
    let y = labels(2, 3);
    let report = gradcheck_model(model, input(20), Output::CombinedLoss(&y), &opts()).unwrap();
    assert!(report.elements_checked > 300, "{report:?}");
}
