//! The non-finite guard: a step whose loss or any gradient is NaN or
//! infinite is refused with the name of the first offending parameter, and
//! nothing changes.

use gradlab_conv::Conv2dSpec;
use gradlab_nn::*;
use gradlab_tensor::Tensor;

fn model() -> Sequential<f32> {
    let mut net = Sequential::new(&Scope::new(3).pp("net"));
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
    .add(|s| Ok(Activation::relu(s)))
    .unwrap()
    .add(|s| Ok(GlobalAvgPool2d::new(s)))
    .unwrap()
    .add(|s| Linear::new(s, 2, 2, LinearConfig::default()))
    .unwrap();
    net
}

fn snapshot(m: &Sequential<f32>) -> Vec<(String, Vec<f32>)> {
    m.params()
        .iter()
        .map(|p| (p.name().to_string(), p.value().to_vec()))
        .collect()
}

fn step_grads(m: &mut Sequential<f32>, input: Tensor<f32>) -> GradMap<f32> {
    let mut cx = Ctx::new();
    let x = cx.input(input);
    let logits = m.forward(&mut cx, x).unwrap();
    let loss = cross_entropy(&mut cx, logits, &[0, 1], &CrossEntropyOptions::default()).unwrap();
    cx.backward(loss).unwrap()
}

fn images() -> Tensor<f32> {
    Tensor::rand_normal(&[2, 1, 4, 4], 0.0, 1.0, 9).unwrap()
}

#[test]
fn injected_nan_gradient_names_the_parameter_and_changes_nothing() {
    for opt in [
        Box::new(
            Sgd::<f32>::new(SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                ..Default::default()
            })
            .unwrap(),
        ) as Box<dyn Optimizer<f32>>,
        Box::new(Adam::<f32>::new(AdamConfig::default()).unwrap()),
    ] {
        let mut opt = opt;
        let mut m = model();
        // A healthy step first, so the optimizer has state to protect.
        let g = step_grads(&mut m, images());
        opt.step(&mut m, &g).unwrap();

        let mut g = step_grads(&mut m, images());
        g.get_mut("net.1.beta").unwrap().as_slice_mut()[1] = f32::NAN;
        g.get_mut("net.4.weight").unwrap().as_slice_mut()[0] = f32::INFINITY;
        let params_before = snapshot(&m);
        let state_before = opt.state();
        match opt.step(&mut m, &g) {
            Err(NnError::NonFiniteGradient { name, index, value }) => {
                assert_eq!(name, "net.1.beta"); // the first in input-to-output order
                assert_eq!(index, 1);
                assert!(value.is_nan());
            }
            other => panic!("expected NonFiniteGradient, got {other:?}"),
        }
        assert_eq!(snapshot(&m), params_before);
        assert_eq!(opt.state(), state_before);
        assert_eq!(opt.steps(), 1);
        let msg = opt.step(&mut m, &g).unwrap_err().to_string();
        assert!(msg.contains("net.1.beta"), "{msg}");
    }
}

#[test]
fn nan_input_is_refused() {
    let mut m = model();
    let mut opt = Sgd::<f32>::new(SgdConfig::default()).unwrap();
    let mut bad = images();
    bad.as_slice_mut()[5] = f32::NAN;
    let running_before = m.param("net.1.running_mean").unwrap().value().clone();
    let g = step_grads(&mut m, bad);
    let before = snapshot(&m);
    // ReLU maps NaN to 0, so the loss may stay finite; the gradients do not.
    match opt.step(&mut m, &g) {
        Err(NnError::NonFiniteLoss { .. }) => {}
        Err(NnError::NonFiniteGradient { name, .. }) => assert_eq!(name, "net.0.weight"),
        other => panic!("expected a non-finite error, got {other:?}"),
    }
    assert_eq!(snapshot(&m), before);
    // BatchNorm did not fold the NaN batch into its running statistics.
    assert_eq!(
        m.param("net.1.running_mean").unwrap().value(),
        &running_before
    );
}

#[test]
fn nan_loss_is_refused() {
    let mut m = model();
    let mut opt = Sgd::<f32>::new(SgdConfig::default()).unwrap();
    let mut g = step_grads(&mut m, images());
    assert!(g.loss().unwrap().is_finite());
    g.set_loss(f64::INFINITY);
    let before = snapshot(&m);
    match opt.step(&mut m, &g) {
        Err(NnError::NonFiniteLoss { value }) => assert_eq!(value, f64::INFINITY),
        other => panic!("expected NonFiniteLoss, got {other:?}"),
    }
    assert_eq!(snapshot(&m), before);
    assert_eq!(opt.steps(), 0);
}

#[test]
fn check_finite_on_its_own() {
    let mut m = model();
    let mut g = step_grads(&mut m, images());
    assert!(g.check_finite(&m).is_ok());
    g.get_mut("net.0.bias").unwrap().as_slice_mut()[0] = f32::NEG_INFINITY;
    let err = g.check_finite(&m).unwrap_err();
    assert!(matches!(err, NnError::NonFiniteGradient { ref name, .. } if name == "net.0.bias"));
}
