//! The model contract: names, depth indices, taps readable with their
//! gradients after backward, train/eval behaviour, initialisation, errors.

use gradlab_conv::{Conv2dSpec, Pool2dSpec};
use gradlab_nn::*;
use gradlab_tensor::Tensor;

fn net(seed: u64) -> Sequential<f64> {
    let root = Scope::new(seed);
    let mut net = Sequential::new(&root.pp("features"));
    net.add(|s| {
        Conv2d::new(
            s,
            Conv2dSpec::new(1, 2, 3).padding(1),
            Conv2dConfig::default(),
        )
    })
    .unwrap()
    .add(|s| BatchNorm2d::new(s, 2, BatchNormConfig::default()))
    .unwrap()
    .add(|s| Activation::new(s, ActivationKind::Tanh))
    .unwrap()
    .add(|s| AvgPool2d::new(s, Pool2dSpec::new(2)))
    .unwrap()
    .add(|s| Ok(GlobalAvgPool2d::new(s)))
    .unwrap();
    let mut head = Sequential::new(&root.pp("head"));
    head.add(|s| Linear::new(s, 2, 3, LinearConfig::default()))
        .unwrap();
    let mut model = Sequential::new(&root);
    model.push(Box::new(net)).push(Box::new(head));
    model
}

#[test]
fn names_roles_and_depths() {
    let m = net(0);
    let got: Vec<(String, Role, usize, bool)> = m
        .params()
        .iter()
        .map(|p| (p.name().to_string(), p.role(), p.depth(), p.is_trainable()))
        .collect();
    let want = [
        ("features.0.weight", Role::Weight, 0, true),
        ("features.0.bias", Role::Bias, 0, true),
        ("features.1.gamma", Role::Gamma, 1, true),
        ("features.1.beta", Role::Beta, 1, true),
        ("features.1.running_mean", Role::RunningMean, 1, false),
        ("features.1.running_var", Role::RunningVar, 1, false),
        ("head.0.weight", Role::Weight, 2, true),
        ("head.0.bias", Role::Bias, 2, true),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1, g.2, g.3), w);
    }
    assert_eq!(m.num_trainable(), 2 * 9 + 2 + 2 + 2 + 2 * 3 + 3);
    check_unique_names(&m).unwrap();
    assert_eq!(m.param("head.0.bias").unwrap().shape(), &[3]);
    assert!(m.param("head.1.bias").is_none());
}

#[test]
fn same_seed_same_init_and_names_do_not_depend_on_order() {
    assert_eq!(net(4).params(), net(4).params());
    assert_ne!(net(4).params()[0].value(), net(5).params()[0].value());
    // A parameter's initial value depends on its name and the root seed,
    // not on what was built before it.
    let root = Scope::new(4);
    let alone = Linear::<f64>::new(&root.pp("head").pp(0), 2, 3, LinearConfig::default()).unwrap();
    assert_eq!(
        alone.weight().value(),
        net(4).param("head.0.weight").unwrap().value()
    );
}

#[test]
fn taps_give_activations_and_their_gradients_after_backward() {
    let mut m = net(1);
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::rand_normal(&[2, 1, 4, 4], 0.0, 1.0, 3).unwrap());
    let logits = m.forward(&mut cx, x).unwrap();
    let loss = cross_entropy(&mut cx, logits, &[0, 2], &CrossEntropyOptions::default()).unwrap();
    let names: Vec<&str> = cx.taps().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "features.0",
            "features.1",
            "features.2",
            "features.3",
            "features.4",
            "head.0"
        ]
    );
    let (grads, acts) = cx.backward_with_taps(loss).unwrap();
    for (name, var) in cx.taps() {
        let value = cx.value(*var).unwrap();
        let grad = acts
            .get(*var)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        assert_eq!(grad.shape(), value.shape());
    }
    assert_eq!(
        cx.value(cx.tapped("features.1").unwrap()).unwrap().shape(),
        &[2, 2, 4, 4]
    );
    // Parameter gradients by name, in the order of first use; no buffers.
    let order: Vec<&str> = grads.iter().map(|(n, _)| n).collect();
    assert_eq!(
        order,
        [
            "features.0.weight",
            "features.0.bias",
            "features.1.gamma",
            "features.1.beta",
            "head.0.weight",
            "head.0.bias"
        ]
    );
    assert!(grads.get("features.1.running_mean").is_none());
    assert_eq!(grads.loss(), Some(cx.value(loss).unwrap().item().unwrap()));

    // The gradient of the last activation is the softmax minus one-hot, over N.
    let logit_grad = acts.get(cx.tapped("head.0").unwrap()).unwrap();
    let row_sums = logit_grad.sum(&[1], false).unwrap();
    assert!(row_sums.as_slice().iter().all(|s| s.abs() < 1e-12));

    // Plain backward frees intermediate gradients but gives the same parameter gradients.
    let plain = cx.backward(loss).unwrap();
    assert_eq!(plain, grads);
}

#[test]
fn a_parameter_used_twice_gets_one_accumulated_gradient() {
    let mut fc =
        Linear::<f64>::new(&Scope::new(0).pp("fc"), 2, 2, LinearConfig::default()).unwrap();
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::from_vec(&[1, 2], vec![1.0, 2.0]).unwrap());
    let h = fc.forward(&mut cx, x).unwrap();
    let y = fc.forward(&mut cx, h).unwrap();
    let loss = cx.graph_mut().sum_all(y).unwrap();
    assert_eq!(cx.bound().len(), 2);
    let g = cx.backward(loss).unwrap();
    // d/dW of sum(W (W x + b) + b) = 1^T ⊗ (Wx + b) + (W^T 1) ⊗ x
    let w = fc.weight().value().to_vec();
    let b = fc.bias().unwrap().value().to_vec();
    let hx = [w[0] + 2.0 * w[1] + b[0], w[2] + 2.0 * w[3] + b[1]];
    let wt1 = [w[0] + w[2], w[1] + w[3]];
    let expected = [
        hx[0] + wt1[0],
        hx[1] + wt1[0] * 2.0,
        hx[0] + wt1[1],
        hx[1] + wt1[1] * 2.0,
    ];
    for (a, e) in g.get("fc.weight").unwrap().as_slice().iter().zip(expected) {
        assert!((a - e).abs() < 1e-12);
    }
}

#[test]
fn batch_norm_running_statistics_follow_pytorch() {
    let mut bn =
        BatchNorm2d::<f64>::new(&Scope::new(0).pp("bn"), 2, BatchNormConfig::default()).unwrap();
    let x = Tensor::rand_normal(&[3, 2, 2, 2], 1.5, 2.0, 8).unwrap();
    let mut cx = Ctx::new();
    let xv = cx.input(x.clone());
    let y = bn.forward(&mut cx, xv).unwrap();
    for c in 0..2 {
        let vals: Vec<f64> = (0..3)
            .flat_map(|n| (0..4).map(move |i| (n, i)))
            .map(|(n, i)| x.as_slice()[n * 8 + c * 4 + i])
            .collect();
        let m = vals.len() as f64;
        let mean = vals.iter().sum::<f64>() / m;
        let biased = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m;
        let unbiased = biased * m / (m - 1.0);
        let rm = bn.running_mean().value().as_slice()[c];
        let rv = bn.running_var().value().as_slice()[c];
        assert!((rm - 0.1 * mean).abs() < 1e-12);
        assert!((rv - (0.9 + 0.1 * unbiased)).abs() < 1e-12);
        // The output is normalised with the biased variance.
        let out = cx.value(y).unwrap();
        let y0 = out.as_slice()[c * 4];
        let expect = (x.as_slice()[c * 4] - mean) / (biased + 1e-5).sqrt();
        assert!((y0 - expect).abs() < 1e-12);
    }

    // Eval mode uses the running statistics and does not update them.
    bn.set_training(false);
    let (rm, rv) = (
        bn.running_mean().value().clone(),
        bn.running_var().value().clone(),
    );
    let mut cx = Ctx::new();
    let xv = cx.input(x.clone());
    let y = bn.forward(&mut cx, xv).unwrap();
    let out = cx.value(y).unwrap();
    let expect = (x.as_slice()[5] - rm.as_slice()[1]) / (rv.as_slice()[1] + 1e-5).sqrt();
    assert!((out.as_slice()[5] - expect).abs() < 1e-12);
    assert_eq!(bn.running_mean().value(), &rm);

    // One value per channel cannot be normalised in training.
    bn.set_training(true);
    let mut cx = Ctx::new();
    let xv = cx.input(Tensor::ones(&[1, 2, 1, 1]));
    assert!(matches!(
        bn.forward(&mut cx, xv),
        Err(NnError::BatchTooSmall { .. })
    ));
}

#[test]
fn dropout_masks_train_and_eval() {
    let mut d = Dropout::<f64>::new(&Scope::new(0).pp("drop"), 0.3).unwrap();
    let x = Tensor::ones(&[100, 100]);
    let run = |d: &mut Dropout<f64>, seed: u64| {
        let mut cx = Ctx::new().with_seed(seed);
        let xv = cx.input(x.clone());
        let y = d.forward(&mut cx, xv).unwrap();
        cx.value(y).unwrap().clone()
    };
    let y = run(&mut d, 1);
    let zeros = y.as_slice().iter().filter(|v| **v == 0.0).count() as f64 / 1e4;
    assert!((zeros - 0.3).abs() < 0.02, "dropped fraction {zeros}");
    let keep = 1.0 / 0.7;
    assert!(y
        .as_slice()
        .iter()
        .all(|&v| v == 0.0 || (v - keep).abs() < 1e-12));
    assert_eq!(run(&mut d, 1), y); // same step seed, same mask
    assert_ne!(run(&mut d, 2), y);
    d.set_training(false);
    assert_eq!(run(&mut d, 1), x);
    assert!(Dropout::<f64>::new(&Scope::new(0), 1.5).is_err());
}

#[test]
fn training_mode_propagates() {
    let mut m = net(0);
    assert!(m.is_training());
    m.set_training(false);
    assert!(!m.is_training());
    assert!(m.layers().iter().all(|l| !l.is_training()));
}

#[test]
fn describe_lists_the_leaf_layers_in_forward_order() {
    let mut layers = Vec::new();
    net(0).describe(&mut layers);
    let rows: Vec<(&str, String, usize)> = layers
        .iter()
        .map(|l| (l.name.as_str(), l.kind.to_string(), l.params))
        .collect();
    assert_eq!(
        rows,
        [
            ("features.0", "conv 3x3/1".to_string(), 2 * 9 + 2),
            ("features.1", "batchnorm2d".to_string(), 4),
            ("features.2", "tanh".to_string(), 0),
            ("features.3", "avgpool 2x2/2".to_string(), 0),
            ("features.4", "global avgpool".to_string(), 0),
            ("head.0", "linear".to_string(), 2 * 3 + 3),
        ]
    );
    assert_eq!(layers[1].kind, LayerKind::BatchNorm2d { features: 2 });
    assert_eq!(layers[5].kind.macs(&[3]), 6);

    // A module that does not describe itself is one leaf named after its type.
    struct Twice(Identity<f32>);
    impl HasParams<f32> for Twice {
        fn visit_params<'a>(&'a self, _f: &mut dyn FnMut(&'a Param<f32>)) {}
        fn visit_params_mut<'a>(&'a mut self, _f: &mut dyn FnMut(&'a mut Param<f32>)) {}
    }
    impl Module<f32> for Twice {
        fn name(&self) -> &str {
            self.0.name()
        }
        fn forward(
            &mut self,
            cx: &mut Ctx<f32>,
            x: gradlab_autodiff::Var,
        ) -> Result<gradlab_autodiff::Var> {
            Ok(cx.graph_mut().add(x, x)?)
        }
        fn set_training(&mut self, _training: bool) {}
        fn is_training(&self) -> bool {
            true
        }
    }
    let mut out = Vec::new();
    Twice(Identity::new(&Scope::new(0).pp("twice"))).describe(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].name, "twice");
    assert!(matches!(out[0].kind, LayerKind::Custom(t) if t.ends_with("Twice")));
}

#[test]
fn bad_inputs_and_configs_are_errors() {
    let mut m = net(0);
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::ones(&[2, 3, 4, 4]));
    let err = m.forward(&mut cx, x).unwrap_err();
    assert!(
        matches!(&err, NnError::InputShape { layer, .. } if layer == "features.0"),
        "{err}"
    );
    assert!(err.to_string().contains("[N, 1, H, W]"));

    let mut fc =
        Linear::<f32>::new(&Scope::new(0).pp("fc"), 4, 2, LinearConfig::default()).unwrap();
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::ones(&[2, 5]));
    assert!(matches!(
        fc.forward(&mut cx, x),
        Err(NnError::InputShape { .. })
    ));

    // A kernel larger than the padded input.
    let mut conv = Conv2d::<f32>::new(
        &Scope::new(0).pp("c"),
        Conv2dSpec::new(1, 1, 5),
        Conv2dConfig::default(),
    )
    .unwrap();
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::ones(&[1, 1, 3, 3]));
    assert!(matches!(conv.forward(&mut cx, x), Err(NnError::Conv(_))));

    assert!(Conv2d::<f32>::new(
        &Scope::new(0),
        Conv2dSpec::new(3, 4, 3).groups(2),
        Conv2dConfig::default()
    )
    .is_err());
    assert!(Linear::<f32>::new(&Scope::new(0), 0, 2, LinearConfig::default()).is_err());
    assert!(matches!(
        Linear::<f32>::new(&Scope::new(0).pp("bad name"), 2, 2, LinearConfig::default()),
        Err(NnError::InvalidName { .. })
    ));
    assert!(validate_name("a..b").is_err());
    assert!(validate_name("stage2.block1.conv1.weight").is_ok());

    // Duplicate names (a scope reused) are found.
    let s = Scope::new(0).pp("fc");
    let a = Linear::<f32>::new(&s, 2, 2, LinearConfig::default()).unwrap();
    let b = Linear::<f32>::new(&s, 2, 2, LinearConfig::default()).unwrap();
    let mut both = a.params().into_iter().cloned().collect::<Vec<_>>();
    both.extend(b.params().into_iter().cloned());
    assert!(matches!(
        check_unique_names(&both),
        Err(NnError::DuplicateName { .. })
    ));
}

#[test]
fn init_statistics_and_bounds() {
    let fans = Fans::of_shape(&[256, 128, 3, 3]);
    let var = |t: &Tensor<f64>| t.as_slice().iter().map(|v| v * v).sum::<f64>() / t.len() as f64;
    let shape = [256, 128, 3, 3];
    let he: Tensor<f64> = Init::kaiming_relu().sample(&shape, fans, 1).unwrap();
    assert!((var(&he) / (2.0 / (128.0 * 9.0)) - 1.0).abs() < 0.02);
    let he_out: Tensor<f64> = Init::KaimingUniform {
        mode: FanMode::FanOut,
        nonlinearity: Nonlinearity::Tanh,
    }
    .sample(&shape, fans, 1)
    .unwrap();
    let g = 5.0 / 3.0;
    assert!((var(&he_out) / (g * g / (256.0 * 9.0)) - 1.0).abs() < 0.02);
    let xavier: Tensor<f64> = Init::XavierUniform { gain: 1.0 }
        .sample(&shape, fans, 2)
        .unwrap();
    assert!((var(&xavier) / (2.0 / ((128.0 + 256.0) * 9.0)) - 1.0).abs() < 0.02);
    let torch: Tensor<f64> = Init::TorchDefault.sample(&[64], fans, 3).unwrap();
    let bound = 1.0 / (128.0f64 * 9.0).sqrt();
    assert!(torch.as_slice().iter().all(|v| v.abs() <= bound));
    let c: Tensor<f32> = Init::Constant(0.5).sample(&[3], fans, 0).unwrap();
    assert_eq!(c.to_vec(), vec![0.5; 3]);
    assert_eq!(
        Init::kaiming_relu().sample::<f64>(&shape, fans, 1).unwrap(),
        he
    );
    assert!(Init::Normal {
        mean: 0.0,
        std: -1.0
    }
    .sample::<f32>(&[2], fans, 0)
    .is_err());
    assert!(Init::kaiming_relu()
        .sample::<f32>(
            &[2],
            Fans {
                fan_in: 0,
                fan_out: 0
            },
            0
        )
        .is_err());
    assert!((Nonlinearity::LeakyRelu(0.2).gain() - (2.0f64 / 1.04).sqrt()).abs() < 1e-12);
}

#[test]
fn eval_context_records_no_gradient() {
    let mut m = net(0);
    m.set_training(false);
    let mut cx = Ctx::no_grad();
    let x = cx.input(Tensor::ones(&[1, 1, 4, 4]));
    let y = m.forward(&mut cx, x).unwrap();
    assert!(!cx.graph().requires_grad(y).unwrap());
    assert_eq!(cx.value(y).unwrap().shape(), &[1, 3]);
}

#[test]
fn accuracy_and_losses() {
    let logits = Tensor::<f64>::from_vec(&[3, 2], vec![1.0, 0.0, 0.0, 1.0, 0.5, 0.5]).unwrap();
    assert_eq!(accuracy(&logits, &[0, 1, 0]).unwrap(), 1.0); // ties go to the first
    assert!(accuracy(&logits, &[0, 1]).is_err());
    let mut cx = Ctx::<f64>::new();
    let z = cx.input(Tensor::zeros(&[2, 3]));
    let opts = CrossEntropyOptions {
        label_smoothing: 0.0,
        sample_weights: Some(vec![2.0, 0.0]),
    };
    let l = cross_entropy(&mut cx, z, &[1, 2], &opts).unwrap();
    // (2 ln 3 + 0) / 2
    assert!((cx.value(l).unwrap().item().unwrap() - 3f64.ln()).abs() < 1e-12);
    assert!(cross_entropy(&mut cx, z, &[1, 3], &CrossEntropyOptions::default()).is_err());
    assert!(cross_entropy(
        &mut cx,
        z,
        &[1, 2],
        &CrossEntropyOptions {
            label_smoothing: 1.0,
            ..Default::default()
        }
    )
    .is_err());
    let t = cx.input(Tensor::ones(&[2, 3]));
    let l = mse(&mut cx, z, t).unwrap();
    assert_eq!(cx.value(l).unwrap().item().unwrap(), 1.0);
}
