//! Output shapes on 8x8, 28x28 and 32x32 inputs, feature maps and taps,
//! and the errors of bad configurations and inputs.

use gradlab_arch::*;
use gradlab_nn::{ActivationKind, Ctx, HasParams, Module, NnError, Scope};
use gradlab_tensor::Tensor;

/// Every network family, built for images of `size` (the MLP needs its input size).
fn networks(size: usize) -> Vec<Box<dyn Classifier<f32>>> {
    let s = || Scope::new(1);
    let cifar = ResNetConfig::cifar(20).unwrap();
    let mut b = cifar.clone();
    b.shortcut = ShortcutOption::B;
    let mut pre = cifar.clone();
    pre.preact = true;
    let mut imagenet_small = ResNetConfig::imagenet(18).unwrap().with_width(8);
    imagenet_small.stem = Stem::Small { channels: 8 };
    imagenet_small.num_classes = 10;
    let mut r50 = ResNetConfig::imagenet(50).unwrap().with_width(4);
    r50.stem = Stem::Small { channels: 4 };
    r50.blocks = vec![1, 1, 1, 1];
    r50.num_classes = 10;
    let mut cnn = PlainCnnConfig::new(3, 10, 8, 8, ActivationKind::Sigmoid);
    cnn.stack.shortcut_every = Some(2);
    let mut mlp = PlainMlpConfig::new(3 * size * size, 10, 5, 16, ActivationKind::Tanh);
    mlp.stack.batch_norm = true;
    let root = s();
    let with_heads = AuxNet::new(
        &root,
        ResNet::new(&root, &cifar).unwrap(),
        &[
            AuxHeadConfig::new("stage1"),
            AuxHeadConfig::new("stage2.block3").with_kind(HeadKind::GoogLeNet {
                channels: 8,
                hidden: 16,
                dropout: 0.5,
            }),
        ],
        &[3, size, size],
    )
    .unwrap();
    vec![
        Box::new(ResNet::new(&s(), &cifar).unwrap()),
        Box::new(ResNet::new(&s(), &cifar.clone().plain()).unwrap()),
        Box::new(ResNet::new(&s(), &b).unwrap()),
        Box::new(ResNet::new(&s(), &pre).unwrap()),
        Box::new(ResNet::new(&s(), &ResNetConfig::cifar_bottleneck(11).unwrap()).unwrap()),
        Box::new(ResNet::new(&s(), &imagenet_small).unwrap()),
        Box::new(ResNet::new(&s(), &r50).unwrap()),
        Box::new(PlainCnn::new(&s(), &cnn).unwrap()),
        Box::new(PlainMlp::new(&s(), &mlp).unwrap()),
        Box::new(MobileNet::new(&s(), &MobileNetConfig::small().with_width(0.25)).unwrap()),
        Box::new(MobileNet::new(&s(), &MobileNetConfig::small_v2().with_width(0.25)).unwrap()),
        Box::new(with_heads),
    ]
}

/// Expected spatial size after `stride` with stride-2 padded layers: ceil.
fn down(size: usize, stride: usize) -> usize {
    size.div_ceil(stride)
}

#[test]
fn every_network_on_8_28_and_32_pixel_images() {
    for size in [8, 28, 32] {
        for mut net in networks(size) {
            let x = Tensor::<f32>::rand_normal(&[2, 3, size, size], 0.0, 1.0, 7).unwrap();
            let mut cx = Ctx::new();
            let xv = cx.input(x);
            let all: Vec<String> = net.points().into_iter().map(|p| p.name).collect();
            let out = net
                .forward_outputs(&mut cx, xv, &OutputRequest::features(&all))
                .unwrap_or_else(|e| panic!("{} on {size}x{size}: {e}", net.label()));
            assert_eq!(
                cx.value(out.logits).unwrap().shape(),
                &[2, 10],
                "{}",
                net.label()
            );
            // Features: [N, C, H, W] with the point's channels (or [N, F]).
            for (f, p) in out.features.iter().zip(net.points()) {
                assert_eq!(f.name, p.name);
                let shape = cx.value(f.map).unwrap().shape().to_vec();
                assert_eq!(shape[..2], [2, p.channels], "{} at {}", net.label(), p.name);
            }
            for a in &out.aux {
                assert_eq!(cx.value(a.logits).unwrap().shape(), &[2, 10]);
            }
            // Plain forward gives the same shape.
            let mut cx = Ctx::new();
            let xv = cx.input(Tensor::zeros(&[2, 3, size, size]));
            let y = net.forward(&mut cx, xv).unwrap();
            assert_eq!(cx.value(y).unwrap().shape(), &[2, 10]);
        }
    }
}

#[test]
fn cifar_resnet_stage_shapes_and_tap_order() {
    let mut net = ResNet::<f32>::new(&Scope::new(0), &ResNetConfig::cifar(20).unwrap()).unwrap();
    for size in [8, 28, 32] {
        let mut cx = Ctx::new();
        let x = cx.input(Tensor::ones(&[2, 3, size, size]));
        let out = net
            .forward_outputs(
                &mut cx,
                x,
                &OutputRequest::features(&["stem", "stage1", "stage2", "stage3"]),
            )
            .unwrap();
        let shapes: Vec<Vec<usize>> = out
            .features
            .iter()
            .map(|f| cx.value(f.map).unwrap().shape().to_vec())
            .collect();
        assert_eq!(
            shapes,
            [
                vec![2, 16, size, size],
                vec![2, 16, size, size],
                vec![2, 32, down(size, 2), down(size, 2)],
                vec![2, 64, down(size, 4), down(size, 4)]
            ]
        );
        // The point taps come in the order of points(), input to output.
        let points: Vec<String> = net.points().into_iter().map(|p| p.name).collect();
        let tapped: Vec<String> = cx
            .taps()
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| points.contains(n))
            .collect();
        assert_eq!(tapped, points);
    }
    let blocks = net.block_names();
    assert_eq!(blocks.len(), 9);
    assert_eq!(blocks[0], "stage1.block1");
    assert_eq!(blocks[8], "stage3.block3");
    let p: Vec<String> = net.points().into_iter().map(|p| p.name).collect();
    assert_eq!(
        &p[..5],
        [
            "stem",
            "stage1.block1",
            "stage1.block2",
            "stage1.block3",
            "stage1"
        ]
    );
    // In evaluation, every leaf layer taps its output too.
    net.set_training(false);
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::ones(&[2, 3, 8, 8]));
    net.forward(&mut cx, x).unwrap();
    for l in net.layers() {
        assert!(cx.tapped(&l.name).is_some(), "{} not tapped", l.name);
    }
    assert!(cx.tapped("stage2.block1.shortcut").is_some());
    // In training, every BatchNorm runs fused with the ReLU (and the
    // shortcut addition) after it, tapped under the ReLU's name only: the
    // normalised values are never stored.
    net.set_training(true);
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::rand_normal(&[2, 3, 8, 8], 0.0, 1.0, 4).unwrap());
    net.forward(&mut cx, x).unwrap();
    for l in net.layers() {
        let bn = matches!(l.kind, gradlab_nn::LayerKind::BatchNorm2d { .. });
        assert_eq!(cx.tapped(&l.name).is_some(), !bn, "{}", l.name);
    }
}

#[test]
fn networks_built_in_a_named_scope_resolve_relative_names() {
    let root = Scope::new(0);
    let net = ResNet::<f32>::new(&root.pp("net"), &ResNetConfig::cifar(8).unwrap()).unwrap();
    assert_eq!(net.points()[0].name, "net.stem");
    assert_eq!(net.resolve_point("stage2").unwrap(), "net.stage2");
    assert_eq!(net.resolve_point("net.stage2").unwrap(), "net.stage2");
    let aux = AuxNet::new(&root, net, &[AuxHeadConfig::new("stage1")], &[3, 8, 8]).unwrap();
    assert_eq!(aux.heads()[0].0, "aux.stage1");
    assert!(aux.param("aux.stage1.fc.weight").is_some());
}

#[test]
fn bad_configurations_are_errors() {
    for depth in [0, 7, 21, 111] {
        let e = ResNetConfig::cifar(depth).unwrap_err();
        assert!(
            matches!(e, ArchError::InvalidDepth { depth: d, .. } if d == depth),
            "{e}"
        );
        assert!(e.to_string().contains("6n + 2"), "{e}");
    }
    assert!(matches!(
        ResNetConfig::cifar_bottleneck(20).unwrap(),
        ResNetConfig { .. }
    ));
    assert!(ResNetConfig::cifar_bottleneck(21).is_err());
    assert!(ResNetConfig::imagenet(20).is_err());

    let build = |c: &ResNetConfig| ResNet::<f32>::new(&Scope::new(0), c);
    let mut c = ResNetConfig::cifar(20).unwrap();
    c.widths = vec![64, 32, 16];
    let e = build(&c).unwrap_err();
    assert!(e.to_string().contains("option B"), "{e}");
    c.shortcut = ShortcutOption::B;
    assert!(build(&c).is_ok());
    let mut c = ResNetConfig::cifar(20).unwrap();
    c.widths = vec![16, 0, 64];
    assert!(matches!(build(&c), Err(ArchError::InvalidConfig { .. })));
    let mut c = ResNetConfig::cifar(20).unwrap();
    c.blocks = vec![3, 3];
    assert!(matches!(build(&c), Err(ArchError::InvalidConfig { .. })));
    let mut c = ResNetConfig::cifar(20).unwrap();
    c.blocks = vec![usize::MAX, 1, 1];
    assert!(matches!(
        build(&c),
        Err(ArchError::InvalidConfig {
            field: "blocks",
            ..
        })
    ));
    let mut c = ResNetConfig::cifar(20).unwrap();
    c.gain = -1.0;
    assert!(matches!(
        build(&c),
        Err(ArchError::InvalidConfig { field: "gain", .. })
    ));
    let mut c = ResNetConfig::cifar(20).unwrap();
    c.num_classes = 0;
    assert!(build(&c).is_err());
    let mut c = ResNetConfig::cifar(20).unwrap();
    c.block = BlockKind::Separable;
    assert!(build(&c).is_err());

    let mlp = |f: &dyn Fn(&mut PlainMlpConfig)| {
        let mut c = PlainMlpConfig::new(12, 3, 5, 8, ActivationKind::Relu);
        f(&mut c);
        PlainMlp::<f32>::new(&Scope::new(0), &c)
    };
    assert!(matches!(
        mlp(&|c| c.stack.depth = 1),
        Err(ArchError::InvalidDepth { depth: 1, .. })
    ));
    assert!(mlp(&|c| c.stack.width = 0).is_err());
    assert!(matches!(
        mlp(&|c| c.stack.depth = usize::MAX),
        Err(ArchError::InvalidDepth { .. })
    ));
    assert!(mlp(&|c| c.stack.shortcut_every = Some(0)).is_err());
    assert!(mlp(&|c| c.stack.gain = f64::INFINITY).is_err());
    assert!(mlp(&|c| c.in_features = 0).is_err());
    let mut cnn = PlainCnnConfig::new(3, 10, 1, 8, ActivationKind::Relu);
    assert!(PlainCnn::<f32>::new(&Scope::new(0), &cnn).is_err());
    cnn.stack.depth = 3;
    cnn.num_classes = 0;
    assert!(PlainCnn::<f32>::new(&Scope::new(0), &cnn).is_err());

    let mob = |f: &dyn Fn(&mut MobileNetConfig)| {
        let mut c = MobileNetConfig::small();
        f(&mut c);
        MobileNet::<f32>::new(&Scope::new(0), &c)
    };
    assert!(mob(&|c| c.width_multiplier = 0.0).is_err());
    assert!(mob(&|c| c.width_multiplier = f64::NAN).is_err());
    assert!(mob(&|c| c.stages[1].stride = 3).is_err());
    assert!(mob(&|c| c.stages.clear()).is_err());
    assert!(mob(&|c| c.stages[0].blocks = usize::MAX).is_err());
    assert!(mob(&|c| c.stages[0].channels = usize::MAX).is_err());

    assert!(
        Block::<f32>::basic(&Scope::new(0).pp("b"), 0, 4, 1, &BlockOptions::default()).is_err()
    );
    assert!(
        Block::<f32>::basic(&Scope::new(0).pp("b"), 8, 4, 1, &BlockOptions::default()).is_err()
    );
    assert!(
        Block::<f32>::bottleneck(&Scope::new(0).pp("b"), 8, 4, 1, 0, &BlockOptions::default())
            .is_err()
    );
    assert!(ShortcutA::<f32>::new(&Scope::new(0).pp("s"), 4, 2, 2).is_err());
    assert!(ShortcutA::<f32>::new(&Scope::new(0).pp("s"), 4, 8, 0).is_err());
}

#[test]
fn heads_at_unknown_points_are_errors() {
    let root = Scope::new(0);
    let net = || ResNet::<f32>::new(&root, &ResNetConfig::cifar(20).unwrap()).unwrap();
    let e = AuxNet::new(&root, net(), &[AuxHeadConfig::new("stage4")], &[3, 8, 8]).unwrap_err();
    match &e {
        ArchError::UnknownPoint {
            name, available, ..
        } => {
            assert_eq!(name, "stage4");
            assert!(available.contains(&"stage2.block3".to_string()));
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("stage3"), "{e}");
    // A leaf layer is not a point.
    assert!(AuxNet::new(
        &root,
        net(),
        &[AuxHeadConfig::new("stage1.block1.conv1")],
        &[3, 8, 8]
    )
    .is_err());
    let two = [AuxHeadConfig::new("stage1"), AuxHeadConfig::new("stage1")];
    assert!(AuxNet::new(&root, net(), &two, &[3, 8, 8]).is_err());
    let neg = [AuxHeadConfig::new("stage1").with_weight(-0.1)];
    assert!(AuxNet::new(&root, net(), &neg, &[3, 8, 8]).is_err());
    let bad = [AuxHeadConfig::new("stage1").with_kind(HeadKind::GoogLeNet {
        channels: 0,
        hidden: 4,
        dropout: 0.5,
    })];
    assert!(AuxNet::new(&root, net(), &bad, &[3, 8, 8]).is_err());
    let bad = [AuxHeadConfig::new("stage1").with_kind(HeadKind::GoogLeNet {
        channels: 4,
        hidden: 4,
        dropout: 1.0,
    })];
    assert!(AuxNet::new(&root, net(), &bad, &[3, 8, 8]).is_err());
    // The probe input is checked.
    assert!(matches!(
        AuxNet::new(&root, net(), &[AuxHeadConfig::new("stage1")], &[1, 8, 8]),
        Err(ArchError::InputShape { .. })
    ));
    // Unknown feature names are rejected before running.
    let mut n = net();
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::ones(&[2, 3, 8, 8]));
    let e = n
        .forward_outputs(&mut cx, x, &OutputRequest::features(&["stage9"]))
        .unwrap_err();
    assert!(matches!(e, ArchError::UnknownPoint { .. }));
    assert_eq!(cx.graph().len(), 1);
}

#[test]
fn inputs_the_network_cannot_take_are_errors() {
    let mut imagenet = ResNet::<f32>::new(
        &Scope::new(0),
        &ResNetConfig::imagenet(18).unwrap().with_width(4),
    )
    .unwrap();
    assert_eq!(imagenet.config().total_stride(), 32);
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::ones(&[1, 3, 16, 16]));
    let e = imagenet
        .forward_outputs(&mut cx, x, &OutputRequest::default())
        .unwrap_err();
    match &e {
        ArchError::InputTooSmall { min, got, .. } => {
            assert_eq!(*min, 32);
            assert_eq!(got, &[1, 3, 16, 16]);
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("at least 32"), "{e}");
    // Through Module::forward: the layer error, not a panic.
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::ones(&[1, 3, 16, 16]));
    assert!(matches!(
        imagenet.forward(&mut cx, x),
        Err(NnError::InputShape { .. })
    ));

    let mut cifar = ResNet::<f32>::new(&Scope::new(0), &ResNetConfig::cifar(8).unwrap()).unwrap();
    for bad in [vec![2, 1, 8, 8], vec![2, 3, 8], vec![2, 3, 2, 8]] {
        let mut cx = Ctx::new();
        let x = cx.input(Tensor::ones(&bad));
        assert!(
            cifar
                .forward_outputs(&mut cx, x, &OutputRequest::default())
                .is_err(),
            "{bad:?}"
        );
        assert!(cifar.forward(&mut cx, x).is_err());
    }
    assert!(summarize(&mut cifar, &[3, 2, 2]).is_err());
    let mut mob =
        MobileNet::<f32>::new(&Scope::new(0), &MobileNetConfig::small().with_width(0.25)).unwrap();
    assert!(summarize(&mut mob, &[3, 4, 4]).is_err());
    assert!(summarize(&mut mob, &[3, 8, 8]).is_ok());

    let mut mlp = PlainMlp::<f32>::new(
        &Scope::new(0),
        &PlainMlpConfig::new(48, 3, 3, 4, ActivationKind::Relu),
    )
    .unwrap();
    for (shape, ok) in [
        (vec![2, 48], true),
        (vec![2, 3, 4, 4], true),
        (vec![2, 47], false),
        (vec![2, 3, 4, 5], false),
        (vec![48], false),
    ] {
        let mut cx = Ctx::new();
        let x = cx.input(Tensor::ones(&shape));
        assert_eq!(mlp.forward(&mut cx, x).is_ok(), ok, "{shape:?}");
    }
    assert_eq!(mlp.block_names(), ["layer1", "layer2"]);
    let s = summarize(&mut mlp, &[48]).unwrap();
    assert_eq!(s.layers[0].name, "layer1.fc");
    assert_eq!(s.macs, 48 * 4 + 4 * 4 + 4 * 3);
}

#[test]
fn in_training_every_batch_norm_before_a_relu_runs_fused() {
    for mut net in networks(16) {
        let mut cx = Ctx::new();
        let x = cx.input(Tensor::rand_normal(&[2, 3, 16, 16], 0.0, 1.0, 4).unwrap());
        net.forward(&mut cx, x).unwrap();
        let layers = net.layers();
        for pair in layers.windows(2) {
            // A projection shortcut's BatchNorm is listed just before the
            // block's ReLU, but it feeds the addition (as the skip input).
            let bn = matches!(
                pair[0].kind,
                gradlab_nn::LayerKind::BatchNorm2d { .. }
                    | gradlab_nn::LayerKind::BatchNorm1d { .. }
            ) && !pair[0].name.contains(".shortcut.");
            if bn && pair[1].kind == gradlab_nn::LayerKind::Activation(ActivationKind::Relu) {
                // Fused: the normalised values are not stored, the ReLU's are.
                assert!(
                    cx.tapped(&pair[0].name).is_none(),
                    "{} ({})",
                    pair[0].name,
                    net.label()
                );
                assert!(
                    cx.tapped(&pair[1].name).is_some(),
                    "{} ({})",
                    pair[1].name,
                    net.label()
                );
            }
        }
    }
}
