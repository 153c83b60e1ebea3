//! Parameter and MAC counts, names and depth indices.

use gradlab_arch::*;
use gradlab_conv::Conv2dSpec;
use gradlab_nn::{check_unique_names, ActivationKind, HasParams, Module, Role, Scope};

fn resnet(c: &ResNetConfig) -> ResNet<f32> {
    ResNet::new(&Scope::new(0), c).unwrap()
}

/// He et al. 2016, Table 6: ResNet-20/32/44/56/110 have 0.27M/0.46M/0.66M/0.85M/1.7M parameters.
#[test]
fn cifar_resnets_match_the_published_counts() {
    let table = [
        (20, 269_722, 0.27, 2),
        (32, 464_154, 0.46, 2),
        (44, 658_586, 0.66, 2),
        (56, 853_018, 0.85, 2),
        (110, 1_727_962, 1.7, 1),
    ];
    for (depth, exact, published, decimals) in table {
        let c = ResNetConfig::cifar(depth).unwrap();
        assert_eq!(c.depth(), depth);
        let net = resnet(&c);
        let n = net.num_trainable();
        assert_eq!(n, exact, "ResNet-{depth}");
        let scale = 10f64.powi(decimals);
        let millions = (n as f64 / 1e6 * scale).round() / scale;
        assert_eq!(
            millions, published,
            "ResNet-{depth}: {n} rounds to {millions}M"
        );
        // The plain twin: the same count, layer for layer.
        assert_eq!(resnet(&c.clone().plain()).num_trainable(), exact);
    }
}

/// He et al. 2016b: the pre-activation ResNet-164 (Bottleneck, projections) has 1.7M parameters.
#[test]
fn preactivation_resnet_164() {
    let mut c = ResNetConfig::cifar_bottleneck(164).unwrap();
    c.preact = true;
    c.shortcut = ShortcutOption::B;
    assert_eq!(c.depth(), 164);
    let n = resnet(&c).num_trainable();
    assert_eq!(n, 1_703_258);
    assert_eq!((n as f64 / 1e5).round() / 10.0, 1.7);
}

#[test]
fn plain_twin_has_the_same_names_roles_and_depths() {
    for preact in [false, true] {
        let mut c = ResNetConfig::cifar(20).unwrap();
        c.preact = preact;
        let res = resnet(&c);
        let plain = resnet(&c.clone().plain());
        let key = |m: &ResNet<f32>| -> Vec<(String, Role, usize, Vec<usize>)> {
            m.params()
                .iter()
                .map(|p| {
                    (
                        p.name().to_string(),
                        p.role(),
                        p.depth(),
                        p.shape().to_vec(),
                    )
                })
                .collect()
        };
        assert_eq!(key(&res), key(&plain));
        assert_eq!(res.points(), plain.points());
        // Only the shortcut layers (parameter-free) differ in the layer list.
        let names = |m: &ResNet<f32>| -> Vec<String> {
            m.layers()
                .into_iter()
                .filter(|l| !matches!(l.kind, LayerKind::ShortcutA { .. }))
                .map(|l| l.name)
                .collect()
        };
        assert_eq!(names(&res), names(&plain));
        assert!(res.blocks().all(|b| b.has_shortcut()));
        assert!(plain.blocks().all(|b| !b.has_shortcut()));
        assert_eq!(
            plain.label(),
            if preact {
                "plain-preact-resnet-20"
            } else {
                "plain-resnet-20"
            }
        );
    }
}

#[test]
fn option_b_adds_exactly_the_projections() {
    for depth in [20, 56] {
        let a = ResNetConfig::cifar(depth).unwrap();
        let mut b = a.clone();
        b.shortcut = ShortcutOption::B;
        let (na, nb) = (resnet(&a).num_trainable(), resnet(&b).num_trainable());
        // 16 -> 32 and 32 -> 64: a 1x1 convolution and a BN (gamma, beta) each.
        let projections = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64);
        assert_eq!(nb - na, projections);
        let net_b = resnet(&b);
        let shortcut_params: usize = net_b
            .params()
            .iter()
            .filter(|p| p.is_trainable() && p.name().contains(".shortcut."))
            .map(|p| p.len())
            .sum();
        assert_eq!(shortcut_params, projections);
        assert!(net_b.param("stage2.block1.shortcut.conv.weight").is_some());
        assert!(net_b.param("stage3.block1.shortcut.bn.gamma").is_some());
        // The plain twin of option B drops the projections with the shortcuts.
        assert_eq!(resnet(&b.clone().plain()).num_trainable(), na);
        // Pre-activation projections are the convolutions alone.
        let mut pre_b = b.clone();
        pre_b.preact = true;
        assert_eq!(resnet(&pre_b).num_trainable() - na, 16 * 32 + 32 * 64);
    }
}

#[test]
fn imagenet_resnets_match_torchvision() {
    // torchvision.models.resnet18() / resnet50(): 11,689,512 and 25,557,032 parameters.
    assert_eq!(
        resnet(&ResNetConfig::imagenet(18).unwrap()).num_trainable(),
        11_689_512
    );
    assert_eq!(
        resnet(&ResNetConfig::imagenet(50).unwrap()).num_trainable(),
        25_557_032
    );
    assert_eq!(ResNetConfig::imagenet(50).unwrap().depth(), 50);
    assert_eq!(ResNetConfig::imagenet(34).unwrap().depth(), 34);
}

#[test]
fn separable_block_is_depthwise_plus_pointwise_plus_bn() {
    let opts = BlockOptions::default();
    for (cin, cout, stride) in [(32, 64, 1), (16, 24, 2), (3, 5, 1)] {
        let b = Block::<f32>::separable(&Scope::new(0).pp("b"), cin, cout, stride, &opts).unwrap();
        let depthwise = cin * 9;
        let pointwise = cin * cout;
        let bn = 2 * cin + 2 * cout;
        assert_eq!(b.num_trainable(), depthwise + pointwise + bn);
        // The same from the convolution specs.
        let dw = Conv2dSpec::new(cin, cin, 3).groups(cin);
        let pw = Conv2dSpec::new(cin, cout, 1);
        assert_eq!(
            dw.param_count(false) + pw.param_count(false) + bn,
            b.num_trainable()
        );
        let kinds: Vec<String> = b.layers().iter().map(|l| l.kind.to_string()).collect();
        assert_eq!(
            kinds,
            [
                format!("depthwise conv 3x3/{stride}"),
                "batchnorm2d".into(),
                "relu".into(),
                "pointwise conv 1x1/1".into(),
                "batchnorm2d".into(),
                "relu".into()
            ]
        );
        // Against the standard 3x3 convolution it replaces.
        assert!(b.num_trainable() < Conv2dSpec::new(cin, cout, 3).param_count(false) + 2 * cout);
    }
}

#[test]
fn bottleneck_and_inverted_residual_counts() {
    let opts = BlockOptions::default();
    let b = Block::<f32>::bottleneck(&Scope::new(0).pp("b"), 64, 16, 1, 4, &opts).unwrap();
    assert_eq!(b.out_channels(), 64);
    assert!(b.has_shortcut());
    assert_eq!(
        b.num_trainable(),
        64 * 16 + 2 * 16 + 16 * 16 * 9 + 2 * 16 + 16 * 64 + 2 * 64
    );
    let ir = Block::<f32>::inverted_residual(&Scope::new(0).pp("b"), 8, 8, 1, 6, &opts).unwrap();
    let h = 48;
    assert_eq!(
        ir.num_trainable(),
        8 * h + 2 * h + 9 * h + 2 * h + h * 8 + 2 * 8
    );
    assert!(ir.has_shortcut());
    let strided =
        Block::<f32>::inverted_residual(&Scope::new(0).pp("b"), 8, 8, 2, 6, &opts).unwrap();
    assert!(!strided.has_shortcut());
    let no_expand =
        Block::<f32>::inverted_residual(&Scope::new(0).pp("b"), 8, 4, 1, 1, &opts).unwrap();
    assert!(no_expand
        .layers()
        .iter()
        .all(|l| !l.name.ends_with("expand")));
}

#[test]
fn names_are_unique_and_depth_indices_run_input_to_output() {
    let mut pre = ResNetConfig::cifar(20).unwrap();
    pre.preact = true;
    pre.shortcut = ShortcutOption::B;
    let nets: Vec<Box<dyn Classifier<f32>>> = vec![
        Box::new(resnet(&ResNetConfig::cifar(20).unwrap())),
        Box::new(resnet(&pre)),
        Box::new(resnet(&ResNetConfig::cifar_bottleneck(29).unwrap())),
        Box::new(MobileNet::new(&Scope::new(0), &MobileNetConfig::small_v2()).unwrap()),
        Box::new(
            PlainMlp::new(
                &Scope::new(0),
                &PlainMlpConfig::new(12, 3, 6, 8, ActivationKind::Tanh),
            )
            .unwrap(),
        ),
    ];
    for net in &nets {
        check_unique_names(&**net).unwrap();
        let depths: Vec<usize> = net.params().iter().map(|p| p.depth()).collect();
        assert_eq!(depths[0], 0, "{}", net.label());
        assert!(
            depths.windows(2).all(|w| w[1] >= w[0]),
            "{}: {depths:?}",
            net.label()
        );
        // Each parameterised layer has its own index: weight and bias share one.
        let layers: Vec<LayerInfo> = net.layers().into_iter().filter(|l| l.params > 0).collect();
        assert_eq!(*depths.last().unwrap() + 1, layers.len(), "{}", net.label());
    }
    let net = resnet(&ResNetConfig::cifar(20).unwrap());
    let first = net.params()[0];
    assert_eq!((first.name(), first.depth()), ("stem.conv.weight", 0));
    assert_eq!(net.param("stem.bn.gamma").unwrap().depth(), 1);
    assert_eq!(net.param("stage1.block1.conv1.weight").unwrap().depth(), 2);
    let last = net.params().last().unwrap().name().to_string();
    assert_eq!(last, "head.fc.bias");
    // 19 convolutions, 19 BNs, 1 linear layer.
    assert_eq!(net.param("head.fc.weight").unwrap().depth(), 38);
    assert_eq!(net.name(), "");
}

#[test]
fn macs_at_32x32() {
    let mut net = resnet(&ResNetConfig::cifar(20).unwrap());
    let s = summarize(&mut net, &[3, 32, 32]).unwrap();
    // stem 32*32*16*27, 16 convolutions of 2,359,296, 2 strided ones of 1,179,648, fc 64*10.
    assert_eq!(s.macs, 442_368 + 16 * 2_359_296 + 2 * 1_179_648 + 640);
    assert_eq!(s.macs, 40_551_040);
    for l in &s.layers {
        if let LayerKind::Conv2d { spec, .. } = &l.kind {
            // This network's convolutions see inputs of stride * their output size.
            let (h, w) = (
                l.output_shape[1] * spec.stride[0],
                l.output_shape[2] * spec.stride[1],
            );
            assert_eq!(l.macs, spec.macs(1, h, w).unwrap(), "{}", l.name);
        }
    }
    assert_eq!(s.layers.iter().map(|l| l.params).sum::<usize>(), s.params);
    assert_eq!(s.params, 269_722);
    // Twins cost the same; option B adds the two projections' MACs.
    assert_eq!(
        summarize(
            &mut resnet(&ResNetConfig::cifar(20).unwrap().plain()),
            &[3, 32, 32]
        )
        .unwrap()
        .macs,
        s.macs
    );
    let mut b = ResNetConfig::cifar(20).unwrap();
    b.shortcut = ShortcutOption::B;
    let sb = summarize(&mut resnet(&b), &[3, 32, 32]).unwrap();
    assert_eq!(sb.macs - s.macs, 16 * 16 * (32 * 16) + 8 * 8 * (64 * 32));
    // The printed table names every layer and the totals.
    let text = s.to_string();
    assert!(text.contains("stage3.block3.conv2"));
    assert!(text.contains("269,722 trainable parameters, 40,551,040 MACs"));
}

#[test]
fn scaled_init_multiplies_the_spread() {
    use gradlab_nn::{Fans, Init};
    let fans = Fans {
        fan_in: 64,
        fan_out: 32,
    };
    let b = 2.5 / 8.0;
    assert_eq!(
        scaled_init(&Init::TorchDefault, 2.5, fans).unwrap(),
        Init::Uniform { low: -b, high: b }
    );
    assert_eq!(
        scaled_init(&Init::kaiming_relu(), 2.0, fans).unwrap(),
        Init::Normal {
            mean: 0.0,
            std: 2.0 * 2f64.sqrt() / 8.0
        }
    );
    assert_eq!(
        scaled_init(
            &Init::Normal {
                mean: 1.0,
                std: 0.5
            },
            3.0,
            fans
        )
        .unwrap(),
        Init::Normal {
            mean: 1.0,
            std: 1.5
        }
    );
    assert!(scaled_init(&Init::TorchDefault, 0.0, fans).is_err());
    assert!(scaled_init(&Init::TorchDefault, f64::NAN, fans).is_err());
    // A gain of 2.5 on the plain MLP: weight RMS 2.5x that of the default init.
    let cfg = |gain| {
        let mut c = PlainMlpConfig::new(256, 10, 4, 256, ActivationKind::Relu);
        c.stack.gain = gain;
        PlainMlp::<f64>::new(&Scope::new(3), &c).unwrap()
    };
    let rms = |m: &PlainMlp<f64>| {
        let w = m.param("layer2.fc.weight").unwrap().value();
        (w.as_slice().iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt()
    };
    let ratio = rms(&cfg(2.5)) / rms(&cfg(1.0));
    assert!((ratio - 2.5).abs() < 1e-9, "{ratio}");
}
