//! Auxiliary heads: shapes, modes, the combined loss, and that zero weights
//! leave the network's gradients exactly as without heads.

use crate::common;

use common::labels;
use gradlab_arch::*;
use gradlab_nn::{ActivationKind, Ctx, HasParams, Module, Optimizer, Scope, Sgd, SgdConfig};
use gradlab_tensor::Tensor;

fn images(n: usize, size: usize) -> Tensor<f64> {
    Tensor::rand_normal(&[n, 3, size, size], 0.0, 1.0, 42).unwrap()
}

fn resnet(root: &Scope) -> ResNet<f64> {
    let mut c = ResNetConfig::cifar(14).unwrap().with_width(4);
    c.num_classes = 5;
    ResNet::new(root, &c).unwrap()
}

fn heads(weight: f64) -> Vec<AuxHeadConfig> {
    vec![
        AuxHeadConfig::new("stage1").with_weight(weight),
        AuxHeadConfig::new("stage2.block1")
            .with_weight(weight)
            .with_kind(HeadKind::GoogLeNet {
                channels: 4,
                hidden: 8,
                dropout: 0.5,
            }),
    ]
}

#[test]
fn zero_weights_give_the_gradients_of_the_bare_network() {
    let y = labels(4, 5);
    let root = Scope::new(3);
    let mut bare = resnet(&root);
    let mut cx = Ctx::new().with_seed(9);
    let x = cx.input(images(4, 8));
    let out = bare
        .forward_outputs(&mut cx, x, &OutputRequest::default())
        .unwrap();
    assert!(out.aux.is_empty());
    let loss = combined_loss(&mut cx, &out, &y).unwrap();
    let g_bare = cx.backward(loss.total).unwrap();

    let root = Scope::new(3);
    let mut with = AuxNet::new(&root, resnet(&root), &heads(0.0), &[3, 8, 8]).unwrap();
    let mut cx = Ctx::new().with_seed(9);
    let x = cx.input(images(4, 8));
    let out = with
        .forward_outputs(&mut cx, x, &OutputRequest::default())
        .unwrap();
    assert_eq!(out.aux.len(), 2);
    let loss = combined_loss(&mut cx, &out, &y).unwrap();
    let g_with = cx.backward(loss.total).unwrap();

    assert_eq!(g_bare.loss(), g_with.loss());
    for p in bare.params().iter().filter(|p| p.is_trainable()) {
        let (a, b) = (g_bare.get(p.name()).unwrap(), g_with.get(p.name()).unwrap());
        assert_eq!(a.as_slice(), b.as_slice(), "{}", p.name());
    }
    // The heads got (zero) gradients, so an optimizer step goes through.
    let head_grad = g_with.get("aux.stage1.fc.weight").unwrap();
    assert!(head_grad.as_slice().iter().all(|&g| g == 0.0));
    let mut opt = Sgd::new(SgdConfig {
        lr: 0.1,
        ..Default::default()
    })
    .unwrap();
    opt.step(&mut with, &g_with).unwrap();
}

#[test]
fn heads_give_class_scores_and_features_keep_their_stage_shapes() {
    let root = Scope::new(0);
    let mut model = AuxNet::new(&root, resnet(&root), &heads(0.3), &[3, 12, 12]).unwrap();
    let mut cx = Ctx::new().with_seed(1);
    let x = cx.input(images(3, 12));
    let out = model
        .forward_outputs(&mut cx, x, &OutputRequest::features(&["stage3"]))
        .unwrap();
    let shape = |v| cx.value(v).unwrap().shape().to_vec();
    assert_eq!(shape(out.logits), [3, 5]);
    let names: Vec<&str> = out.aux.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["aux.stage1", "aux.stage2.block1"]);
    for a in &out.aux {
        assert_eq!(shape(a.logits), [3, 5], "{}", a.name);
        assert_eq!(a.weight, 0.3);
    }
    // Features: the maps the heads read plus the requested one, input to output.
    let f: Vec<(&str, Vec<usize>)> = out
        .features
        .iter()
        .map(|f| (f.name.as_str(), shape(f.map)))
        .collect();
    assert_eq!(
        f,
        [
            ("stage1", vec![3, 4, 12, 12]),
            ("stage2.block1", vec![3, 8, 6, 6]),
            ("stage3", vec![3, 16, 3, 3])
        ]
    );
    assert_eq!(out.feature("stage1"), Some(cx.tapped("stage1").unwrap()));
    assert_eq!(out.aux_logits("stage1"), out.aux_logits("aux.stage1"));
    // The heads' logits are tapped by their last layer.
    assert_eq!(cx.tapped("aux.stage1.fc"), out.aux_logits("stage1"));
    // Softmax of the final logits: class probabilities.
    let p = cx.value(out.logits).unwrap().map(f64::exp);
    for row in p.as_slice().chunks(5) {
        let s: f64 = row.iter().sum();
        assert!(s > 0.0);
    }
    // The combined loss is main + 0.3 * each head's cross-entropy.
    let y = labels(3, 5);
    let l = combined_loss(&mut cx, &out, &y).unwrap();
    let v = |var| cx.value(var).unwrap().item().unwrap();
    let expected = v(l.main) + 0.3 * v(l.aux[0].1) + 0.3 * v(l.aux[1].1);
    assert!((v(l.total) - expected).abs() < 1e-12);
    // The GoogLeNet-style head on a 6x6 map: pool 5x5/3 -> 1x1, 4 channels.
    let layers = model.layers();
    let fc1 = layers
        .iter()
        .find(|l| l.name == "aux.stage2.block1.fc1")
        .unwrap();
    assert_eq!(
        fc1.kind,
        LayerKind::Linear {
            in_features: 4,
            out_features: 8,
            bias: true
        }
    );
}

#[test]
fn heads_cost_nothing_in_evaluation_unless_asked_for() {
    let root = Scope::new(0);
    let mut model = AuxNet::new(&root, resnet(&root), &heads(0.3), &[3, 8, 8]).unwrap();
    let run = |m: &mut AuxNet<f64, ResNet<f64>>, mode: HeadMode| {
        let mut cx = Ctx::new();
        let x = cx.input(images(2, 8));
        let out = m
            .forward_outputs(
                &mut cx,
                x,
                &OutputRequest {
                    heads: mode,
                    features: vec![],
                },
            )
            .unwrap();
        (out.aux.len(), out.features.len(), cx.graph().len())
    };
    let (aux_train, _, nodes_train) = run(&mut model, HeadMode::Auto);
    assert_eq!(aux_train, 2);
    model.set_training(false);
    let (aux_eval, features_eval, nodes_eval) = run(&mut model, HeadMode::Auto);
    assert_eq!((aux_eval, features_eval), (0, 0));
    assert!(nodes_eval < nodes_train);
    // The same graph as the bare network's.
    let mut bare = resnet(&Scope::new(0));
    bare.set_training(false);
    let mut cx = Ctx::new();
    let x = cx.input(images(2, 8));
    bare.forward(&mut cx, x).unwrap();
    assert_eq!(nodes_eval, cx.graph().len());
    // Early exits on request.
    let (aux_always, _, _) = run(&mut model, HeadMode::Always);
    assert_eq!(aux_always, 2);
    model.set_training(true);
    let (aux_never, _, _) = run(&mut model, HeadMode::Never);
    assert_eq!(aux_never, 0);
    // Module::forward never runs the heads.
    let mut cx = Ctx::new();
    let x = cx.input(images(2, 8));
    model.forward(&mut cx, x).unwrap();
    assert!(cx.tapped("aux.stage1.fc").is_none());
}

#[test]
fn weights_can_be_changed_and_heads_attach_to_any_network() {
    let root = Scope::new(0);
    let mut model = AuxNet::new(&root, resnet(&root), &heads(0.3), &[3, 8, 8]).unwrap();
    model.set_weight("stage1", 1.0).unwrap();
    model.set_weight("aux.stage2.block1", 0.0).unwrap();
    assert_eq!(
        model.heads(),
        [
            ("aux.stage1".to_string(), "stage1".to_string(), 1.0),
            (
                "aux.stage2.block1".to_string(),
                "stage2.block1".to_string(),
                0.0
            )
        ]
    );
    assert!(model.set_weight("stage3", 1.0).is_err());
    assert!(model.set_weight("stage1", f64::NAN).is_err());
    // Head parameters come after the network's, named aux.<point>.*.
    let names: Vec<String> = model
        .params()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    let first_aux = names.iter().position(|n| n.starts_with("aux.")).unwrap();
    assert!(names[first_aux..].iter().all(|n| n.starts_with("aux.")));
    assert_eq!(
        model.num_trainable() - model.inner().num_trainable(),
        (4 * 5 + 5) + (8 * 4 + 4) + (4 * 8 + 8) + (8 * 5 + 5)
    );

    // On an MLP layer ([N, F] features) and a MobileNet stage.
    let root = Scope::new(1);
    let mlp = PlainMlp::<f64>::new(
        &root,
        &PlainMlpConfig::new(48, 3, 6, 8, ActivationKind::Sigmoid),
    )
    .unwrap();
    let mut m = AuxNet::new(
        &root,
        mlp,
        &[
            AuxHeadConfig::new("layer2"),
            AuxHeadConfig::new("layer4").with_kind(HeadKind::googlenet()),
        ],
        &[48],
    )
    .unwrap();
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::ones(&[2, 48]));
    let out = m
        .forward_outputs(&mut cx, x, &OutputRequest::default())
        .unwrap();
    assert_eq!(cx.value(out.aux[0].logits).unwrap().shape(), &[2, 3]);
    assert_eq!(cx.value(out.features[0].map).unwrap().shape(), &[2, 8]);
    let root = Scope::new(2);
    let mob = MobileNet::<f64>::new(&root, &MobileNetConfig::small().with_width(0.25)).unwrap();
    let mut m = AuxNet::new(&root, mob, &[AuxHeadConfig::new("stage2")], &[3, 8, 8]).unwrap();
    let s = summarize(&mut m, &[3, 8, 8]).unwrap();
    assert_eq!(s.layers.last().unwrap().name, "aux.stage2.fc");
    assert_eq!(s.layers.last().unwrap().output_shape, [10]);
    // Boxed networks work the same.
    let root = Scope::new(3);
    let boxed: Box<dyn Classifier<f64>> = Box::new(resnet(&root));
    let m = AuxNet::new(&root, boxed, &heads(0.3), &[3, 8, 8]).unwrap();
    assert!(m.label().starts_with("resnet-14-w4+aux("), "{}", m.label());
}
