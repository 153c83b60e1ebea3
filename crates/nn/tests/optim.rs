//! Optimizer updates against the update rules PyTorch documents, written
//! out here element by element, over several steps; clipping; validation.

use gradlab_nn::*;
use gradlab_tensor::Tensor;

/// Hand-made parameters: a matrix and a vector, plus a buffer the optimizer
/// must leave alone.
fn params() -> Vec<Param<f64>> {
    vec![
        Param::new(
            "layer.weight",
            Role::Weight,
            0,
            Tensor::from_vec(&[2, 2], vec![1.0, -0.5, 0.25, 2.0]).unwrap(),
        )
        .unwrap(),
        Param::new(
            "layer.bias",
            Role::Bias,
            0,
            Tensor::from_vec(&[2], vec![0.1, -0.3]).unwrap(),
        )
        .unwrap(),
        Param::new(
            "bn.running_mean",
            Role::RunningMean,
            1,
            Tensor::from_vec(&[2], vec![7.0, 8.0]).unwrap(),
        )
        .unwrap(),
    ]
}

/// Gradients of step `t` (0-based): varied signs and sizes.
fn grads_at(t: usize) -> GradMap<f64> {
    let s = t as f64;
    let mut g = GradMap::new();
    g.insert(
        "layer.weight",
        Tensor::from_vec(&[2, 2], vec![0.5 - s, 0.25 * s, -1.0, 0.1 + 0.3 * s]).unwrap(),
    );
    g.insert(
        "layer.bias",
        Tensor::from_vec(&[2], vec![s.sin(), -0.75]).unwrap(),
    );
    g
}

fn flat(ps: &[Param<f64>]) -> Vec<f64> {
    ps.iter().flat_map(|p| p.value().to_vec()).collect()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "element {i}: {x} vs {y}");
    }
}

/// PyTorch's documented SGD, element by element: returns every parameter
/// element after `steps` steps (trainable elements only, in order).
fn sgd_reference(c: &SgdConfig, steps: usize) -> Vec<f64> {
    let mut p: Vec<f64> = flat(&params()[..2]);
    let mut b: Option<Vec<f64>> = None;
    for t in 0..steps {
        let gm = grads_at(t);
        let g0: Vec<f64> = [
            gm.get("layer.weight").unwrap(),
            gm.get("layer.bias").unwrap(),
        ]
        .iter()
        .flat_map(|t| t.to_vec())
        .collect();
        let mut g: Vec<f64> = g0
            .iter()
            .zip(&p)
            .map(|(g, p)| g + c.weight_decay * p)
            .collect();
        if c.momentum != 0.0 {
            let nb: Vec<f64> = match &b {
                None => g.clone(),
                Some(b) => b
                    .iter()
                    .zip(&g)
                    .map(|(b, g)| c.momentum * b + (1.0 - c.dampening) * g)
                    .collect(),
            };
            g = if c.nesterov {
                g.iter().zip(&nb).map(|(g, b)| g + c.momentum * b).collect()
            } else {
                nb.clone()
            };
            b = Some(nb);
        }
        for (p, g) in p.iter_mut().zip(&g) {
            *p -= c.lr * g;
        }
    }
    p
}

/// PyTorch's documented Adam / AdamW, element by element.
fn adam_reference(c: &AdamConfig, steps: usize) -> Vec<f64> {
    let mut p: Vec<f64> = flat(&params()[..2]);
    let mut m = vec![0.0; p.len()];
    let mut v = vec![0.0; p.len()];
    for t in 0..steps {
        let gm = grads_at(t);
        let g0: Vec<f64> = [
            gm.get("layer.weight").unwrap(),
            gm.get("layer.bias").unwrap(),
        ]
        .iter()
        .flat_map(|t| t.to_vec())
        .collect();
        let step = (t + 1) as i32;
        for i in 0..p.len() {
            let mut g = g0[i];
            if c.decoupled {
                p[i] -= c.lr * c.weight_decay * p[i];
            } else {
                g += c.weight_decay * p[i];
            }
            m[i] = c.beta1 * m[i] + (1.0 - c.beta1) * g;
            v[i] = c.beta2 * v[i] + (1.0 - c.beta2) * g * g;
            let m_hat = m[i] / (1.0 - c.beta1.powi(step));
            let v_hat = v[i] / (1.0 - c.beta2.powi(step));
            p[i] -= c.lr * m_hat / (v_hat.sqrt() + c.eps);
        }
    }
    p
}

fn run(opt: &mut dyn Optimizer<f64>, steps: usize) -> Vec<Param<f64>> {
    let mut ps = params();
    for t in 0..steps {
        opt.step(&mut ps, &grads_at(t)).unwrap();
    }
    assert_eq!(opt.steps(), steps as u64);
    ps
}

#[test]
fn sgd_variants_follow_the_documented_update() {
    let configs = [
        SgdConfig {
            lr: 0.1,
            ..Default::default()
        },
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
            ..Default::default()
        },
        SgdConfig {
            lr: 0.05,
            momentum: 0.8,
            nesterov: true,
            weight_decay: 0.05,
            ..Default::default()
        },
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.5,
            ..Default::default()
        },
    ];
    for c in configs {
        let mut opt = Sgd::<f64>::new(c.clone()).unwrap();
        let ps = run(&mut opt, 6);
        assert_close(&flat(&ps[..2]), &sgd_reference(&c, 6), 1e-13);
        // The buffer is never touched.
        assert_eq!(ps[2].value().to_vec(), vec![7.0, 8.0]);
    }
}

/// The SGD update runs in the kernel builds (vectorised f64 arithmetic):
/// on a parameter long enough for the vectors, every build gives exactly
/// the bits of the update written out here in scalar f64.
#[test]
fn sgd_in_every_build_gives_the_bits_of_the_written_out_update() {
    let n = 1003;
    let w0: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
        .collect();
    let grad = |t: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 13 + t * 7) % 89) as f32 / 30.0 - 1.4)
            .collect()
    };
    for nesterov in [false, true] {
        for momentum in [0.0, 0.9] {
            let c = SgdConfig {
                lr: 0.05,
                momentum,
                dampening: 0.0,
                nesterov: nesterov && momentum > 0.0,
                weight_decay: 5e-4,
            };
            // The reference, element by element in f64 (PyTorch's formulas).
            let (mut w, mut b) = (w0.clone(), vec![0.0f32; n]);
            for t in 0..3 {
                for ((w, &g), b) in w.iter_mut().zip(&grad(t)).zip(&mut b) {
                    let (wv, gv) = (f64::from(*w), f64::from(g) + c.weight_decay * f64::from(*w));
                    let step = if c.momentum == 0.0 {
                        gv
                    } else {
                        let bv = if t == 0 {
                            gv
                        } else {
                            c.momentum * f64::from(*b) + gv
                        };
                        *b = bv as f32;
                        if c.nesterov {
                            gv + c.momentum * bv
                        } else {
                            bv
                        }
                    };
                    *w = (wv - c.lr * step) as f32;
                }
            }
            for isa in gradlab_conv::Isa::available() {
                let got = gradlab_conv::with_isa(isa, || {
                    let mut ps = vec![Param::new(
                        "w",
                        Role::Weight,
                        0,
                        Tensor::from_vec(&[n], w0.clone()).unwrap(),
                    )
                    .unwrap()];
                    let mut opt = Sgd::<f32>::new(c.clone()).unwrap();
                    for t in 0..3 {
                        let mut g = GradMap::new();
                        g.insert("w", Tensor::from_vec(&[n], grad(t)).unwrap());
                        opt.step(&mut ps, &g).unwrap();
                    }
                    ps[0].value().to_vec()
                })
                .unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&w), "{c:?}, build {isa}");
            }
        }
    }
}

fn scalar_run(opt: &mut dyn Optimizer<f64>) -> f64 {
    let mut p = Param::new("w", Role::Weight, 0, Tensor::scalar(1.0)).unwrap();
    for g in [0.5, -0.25, 1.0, 0.125] {
        let mut grads = GradMap::new();
        grads.insert("w", Tensor::scalar(g));
        opt.step(&mut p, &grads).unwrap();
    }
    p.value().as_slice()[0]
}

#[test]
fn pinned_scalar_trajectories() {
    // Four steps from p = 1 with gradients 0.5, -0.25, 1, 0.125, worked out
    // from the documented rules.
    let sgd = |c| scalar_run(&mut Sgd::<f64>::new(c).unwrap());
    let m = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.01,
        ..Default::default()
    };
    assert!((sgd(m.clone()) - 0.684_721_063_351).abs() < 1e-12);
    assert!(
        (sgd(SgdConfig {
            nesterov: true,
            ..m
        }) - 0.575_483_053_766_337)
            .abs()
            < 1e-12
    );
    assert!(
        (sgd(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.5,
            ..Default::default()
        }) - 0.760_675)
            .abs()
            < 1e-12
    );
    let adam = |decoupled| {
        scalar_run(
            &mut Adam::<f64>::new(AdamConfig {
                lr: 0.01,
                weight_decay: 0.1,
                decoupled,
                ..Default::default()
            })
            .unwrap(),
        )
    };
    assert!((adam(false) - 0.971_043_628_144_889_5).abs() < 1e-12);
    assert!((adam(true) - 0.970_813_617_853_606_1).abs() < 1e-12);
}

#[test]
fn adam_and_adamw_follow_the_documented_update() {
    let configs = [
        AdamConfig::default(),
        AdamConfig {
            lr: 0.05,
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
            weight_decay: 0.1,
            decoupled: false,
        },
        AdamConfig {
            lr: 0.05,
            weight_decay: 0.1,
            ..AdamConfig::adamw()
        },
    ];
    for c in configs {
        let mut opt = Adam::<f64>::new(c.clone()).unwrap();
        assert_eq!(
            Optimizer::<f64>::kind(&opt),
            if c.decoupled { "adamw" } else { "adam" }
        );
        let ps = run(&mut opt, 7);
        assert_close(&flat(&ps[..2]), &adam_reference(&c, 7), 1e-13);
        assert_eq!(ps[2].value().to_vec(), vec![7.0, 8.0]);
    }
}

#[test]
fn missing_gradient_names_the_parameter_and_changes_nothing() {
    let mut ps = params();
    let mut grads = grads_at(0);
    let mut partial = GradMap::new();
    partial.insert(
        "layer.weight",
        grads.get_mut("layer.weight").unwrap().clone(),
    );
    let mut opt = Sgd::<f64>::new(SgdConfig {
        momentum: 0.9,
        ..Default::default()
    })
    .unwrap();
    let before = flat(&ps);
    match opt.step(&mut ps, &partial) {
        Err(NnError::MissingGradient { name }) => assert_eq!(name, "layer.bias"),
        other => panic!("expected MissingGradient, got {other:?}"),
    }
    assert_eq!(flat(&ps), before);
    assert_eq!(opt.steps(), 0);
    assert!(opt.state().tensors.is_empty());
    // A gradient of the wrong shape is refused too.
    grads.insert("layer.bias", Tensor::zeros(&[3]));
    assert!(matches!(
        opt.step(&mut ps, &grads),
        Err(NnError::GradientShape { .. })
    ));
}

#[test]
fn state_round_trip_continues_identically() {
    let c = AdamConfig {
        lr: 0.05,
        weight_decay: 0.1,
        ..AdamConfig::adamw()
    };
    let mut a = Adam::<f64>::new(c.clone()).unwrap();
    let mut ps = params();
    for t in 0..3 {
        a.step(&mut ps, &grads_at(t)).unwrap();
    }
    let state = a.state();
    assert_eq!(state.kind, "adamw");
    assert_eq!(state.steps, 3);
    let names: Vec<&str> = state.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "exp_avg/layer.bias",
            "exp_avg/layer.weight",
            "exp_avg_sq/layer.bias",
            "exp_avg_sq/layer.weight"
        ]
    );
    let mut b = Adam::<f64>::new(c).unwrap();
    b.load_state(state).unwrap();
    let mut ps_b = ps.clone();
    for t in 3..6 {
        a.step(&mut ps, &grads_at(t)).unwrap();
        b.step(&mut ps_b, &grads_at(t)).unwrap();
    }
    assert_eq!(flat(&ps), flat(&ps_b));

    // Another kind's state is refused.
    let mut sgd = Sgd::<f64>::new(SgdConfig::default()).unwrap();
    assert!(matches!(
        sgd.load_state(a.state()),
        Err(NnError::OptimizerMismatch { .. })
    ));
}

#[test]
fn clip_grad_norm_returns_the_norm_before_clipping() {
    let mut g = grads_at(2);
    let norm = g.global_norm();
    let expected: f64 = [-1.5f64, 0.5, -1.0, 0.7, 2f64.sin(), -0.75]
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt();
    assert!((norm - expected).abs() < 1e-12);
    let returned = clip_grad_norm(&mut g, 1.0).unwrap();
    assert_eq!(returned, norm);
    assert!((g.global_norm() - 1.0).abs() < 1e-5);
    // Below the threshold nothing changes.
    let mut h = grads_at(2);
    assert_eq!(clip_grad_norm(&mut h, 100.0).unwrap(), norm);
    assert_eq!(h, grads_at(2));
    assert!(clip_grad_norm(&mut h, 0.0).is_err());
    assert!(clip_grad_norm(&mut h, f64::NAN).is_err());
}

#[test]
fn invalid_configurations_are_errors() {
    assert!(Sgd::<f32>::new(SgdConfig {
        lr: -1.0,
        ..Default::default()
    })
    .is_err());
    assert!(Sgd::<f32>::new(SgdConfig {
        nesterov: true,
        ..Default::default()
    })
    .is_err());
    assert!(Sgd::<f32>::new(SgdConfig {
        momentum: 0.9,
        dampening: 0.1,
        nesterov: true,
        ..Default::default()
    })
    .is_err());
    assert!(Adam::<f32>::new(AdamConfig {
        beta1: 1.0,
        ..Default::default()
    })
    .is_err());
    assert!(Adam::<f32>::new(AdamConfig {
        eps: 0.0,
        ..Default::default()
    })
    .is_err());
}
