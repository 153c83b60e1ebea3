//! Gradient flow through shortcuts, measured at initialisation on a fixed
//! batch: a depth-20 sigmoid network without BatchNorm, residual against its
//! plain twin, read through the block taps and the parameter gradients; and
//! what auxiliary heads do to the first layer's gradient.

use crate::common;

use common::{labels, rms};
use gradlab_arch::*;
use gradlab_nn::{ActivationKind, Ctx, Scope};
use gradlab_tensor::Tensor;

/// Activation-gradient RMS at every block output, and the gradient RMS of
/// the first and last parameterised layers.
struct Flow {
    blocks: Vec<(String, f64)>,
    first_param: f64,
    last_param: f64,
}

impl Flow {
    fn block_ratio(&self) -> f64 {
        self.blocks[0].1 / self.blocks.last().unwrap().1
    }
    fn param_ratio(&self) -> f64 {
        self.first_param / self.last_param
    }
}

fn measure(model: &mut dyn Classifier<f64>, first: &str, last: &str) -> Flow {
    let mut cx = Ctx::<f64>::new().with_seed(0);
    let x = cx.input(Tensor::rand_normal(&[8, 3, 16, 16], 0.0, 1.0, 2024).unwrap());
    let out = model
        .forward_outputs(&mut cx, x, &OutputRequest::default())
        .unwrap();
    let loss = combined_loss(&mut cx, &out, &labels(8, 10)).unwrap();
    let (grads, act) = cx.backward_with_taps(loss.total).unwrap();
    let blocks = model
        .block_names()
        .into_iter()
        .map(|b| {
            let v = cx.tapped(&b).unwrap();
            let r = rms(act.get(v).unwrap());
            (b, r)
        })
        .collect();
    Flow {
        blocks,
        first_param: rms(grads.get(first).unwrap()),
        last_param: rms(grads.get(last).unwrap()),
    }
}

fn sigmoid_resnet20(preact: bool) -> ResNetConfig {
    let mut c = ResNetConfig::cifar(20).unwrap().with_width(4);
    c.activation = ActivationKind::Sigmoid;
    c.batch_norm = false;
    c.preact = preact;
    c
}

fn report(name: &str, f: &Flow) {
    let profile: Vec<String> = f.blocks.iter().map(|(_, r)| format!("{r:.2e}")).collect();
    eprintln!(
        "{name}: block ratio {:.3e}, param ratio {:.3e}, first-layer grad RMS {:.3e}; blocks {}",
        f.block_ratio(),
        f.param_ratio(),
        f.first_param,
        profile.join(" ")
    );
}

#[test]
fn shortcuts_keep_the_gradient_of_a_deep_sigmoid_network() {
    for preact in [false, true] {
        let c = sigmoid_resnet20(preact);
        let mut res = ResNet::<f64>::new(&Scope::new(7), &c).unwrap();
        let mut plain = ResNet::<f64>::new(&Scope::new(7), &c.clone().plain()).unwrap();
        let (first, last) = ("stem.conv.weight", "head.fc.weight");
        let r = measure(&mut res, first, last);
        let p = measure(&mut plain, first, last);
        report(&res.label(), &r);
        report(&plain.label(), &p);
        assert_eq!(r.blocks.len(), 9);
        assert!(
            r.block_ratio() >= 10.0 * p.block_ratio(),
            "activation gradients, first/last block: residual {:e}, plain {:e}",
            r.block_ratio(),
            p.block_ratio()
        );
        assert!(
            r.param_ratio() >= 10.0 * p.param_ratio(),
            "parameter gradients, first/last layer: residual {:e}, plain {:e}",
            r.param_ratio(),
            p.param_ratio()
        );
        // The plain twin's gradient shrinks towards the input, block after block.
        assert!(p.blocks.windows(2).all(|w| w[0].1 < w[1].1));
    }
}

#[test]
fn shortcuts_every_two_layers_in_a_plain_stack() {
    let mut c = PlainCnnConfig::new(3, 10, 21, 8, ActivationKind::Sigmoid);
    let mut plain = PlainCnn::<f64>::new(&Scope::new(1), &c).unwrap();
    c.stack.shortcut_every = Some(2);
    let mut skip = PlainCnn::<f64>::new(&Scope::new(1), &c).unwrap();
    let (first, last) = ("layer1.conv.weight", "head.fc.weight");
    let p = measure(&mut plain, first, last);
    let s = measure(&mut skip, first, last);
    report(&plain.label(), &p);
    report(&skip.label(), &s);
    assert!(s.block_ratio() >= 10.0 * p.block_ratio());
    assert!(s.param_ratio() >= 10.0 * p.param_ratio());
}

#[test]
fn auxiliary_heads_raise_the_first_layers_gradient() {
    for residual in [false, true] {
        let mut c = sigmoid_resnet20(false);
        c.residual = residual;
        let root = Scope::new(7);
        let mut bare = ResNet::<f64>::new(&root, &c).unwrap();
        let without = measure(&mut bare, "stem.conv.weight", "head.fc.weight");
        let root = Scope::new(7);
        let net = ResNet::<f64>::new(&root, &c).unwrap();
        let heads = [AuxHeadConfig::new("stage1"), AuxHeadConfig::new("stage2")];
        let mut with = AuxNet::new(&root, net, &heads, &[3, 16, 16]).unwrap();
        let w = measure(&mut with, "stem.conv.weight", "head.fc.weight");
        report(&with.label(), &w);
        eprintln!(
            "{}: first-layer gradient RMS {:.3e} without heads, {:.3e} with (x{:.1})",
            bare.label(),
            without.first_param,
            w.first_param,
            w.first_param / without.first_param
        );
        assert!(w.first_param > without.first_param);
        if !residual {
            // Where the gradient vanishes, the heads' short paths dominate it.
            assert!(w.first_param > 10.0 * without.first_param);
        }
    }
}
