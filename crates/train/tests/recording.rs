//! The recorder: a record of all-zero gradients is rejected, and a real run
//! round-trips through JSON.

use gradlab_arch::{PlainMlp, PlainMlpConfig};
use gradlab_data::{train_val_split, Patterns, PatternsConfig};
use gradlab_diag::{diagnose, DiagError};
use gradlab_nn::{ActivationKind, Ctx, GradMap, Module, Scope};
use gradlab_tensor::Tensor;
use gradlab_train::{
    run_diagnosed, DiagnosedRun, ModelRecorder, RecorderOptions, RunConfig, TrainError,
};

fn tiny_model() -> Result<PlainMlp<f32>, gradlab_arch::ArchError> {
    PlainMlp::new(
        &Scope::new(1),
        &PlainMlpConfig::new(16, 3, 3, 8, ActivationKind::Relu),
    )
}

#[test]
fn all_zero_gradients_are_rejected_not_diagnosed() {
    let mut model = tiny_model().unwrap();
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::rand_normal(&[4, 1, 4, 4], 0.0, 1.0, 0).unwrap());
    let logits = model.forward(&mut cx, x).unwrap();
    let loss =
        gradlab_nn::cross_entropy(&mut cx, logits, &[0, 1, 2, 0], &Default::default()).unwrap();
    let (grads, taps) = cx.backward_with_taps(loss).unwrap();

    let mut recorder = ModelRecorder::new(RecorderOptions::default(), 3);
    recorder
        .record(0, &model, &cx, &grads, &taps, None)
        .unwrap();

    // The same gradients read after zeroing, as a buggy loop would.
    let mut zeroed = GradMap::new();
    for (name, g) in grads.iter() {
        zeroed.insert(name, Tensor::zeros(g.shape()));
    }
    let err = recorder
        .record(1, &model, &cx, &zeroed, &taps, None)
        .unwrap_err();
    assert!(
        matches!(&err, TrainError::Diag(e) if matches!(**e, DiagError::AllZeroGradients { step: 1, .. })),
        "{err}"
    );
    assert!(err.to_string().contains("zeroed"));
    assert!(recorder
        .record(2, &model, &cx, &GradMap::new(), &taps, None)
        .is_err());
    // The good record is kept and diagnosable; the rejected ones left no trace.
    assert_eq!(recorder.history().steps.len(), 1);
    assert!(diagnose(recorder.history()).is_ok());
}

#[test]
fn a_diagnosed_run_round_trips_through_json() {
    let data = Patterns::new(PatternsConfig {
        len: 400,
        num_classes: 3,
        height: 4,
        width: 4,
        ..Default::default()
    })
    .unwrap();
    let (train, val) = train_val_split(data, 0.25, 0).unwrap();
    let config = RunConfig {
        steps: 20,
        batch_size: 16,
        checks: 3,
        snr_batches: 2,
        ..Default::default()
    };
    let run = run_diagnosed(&tiny_model, &train, &val, &config, &mut |_| {}).unwrap();
    let json = serde_json::to_string(&run).unwrap();
    let back: DiagnosedRun = serde_json::from_str(&json).unwrap();
    assert_eq!(back.diagnosis.verdict, run.diagnosis.verdict);
    assert_eq!(back.history.steps.len(), 20);
    assert_eq!(back.history.checks.len(), 3);
    // The fixed top-level keys of the diagnosis.
    let value: serde_json::Value = serde_json::to_value(&run.diagnosis).unwrap();
    for key in [
        "verdict",
        "reasons",
        "confidence",
        "indicators",
        "layers",
        "history",
    ] {
        assert!(value.get(key).is_some(), "missing key {key}");
    }
    for key in [
        "kappa",
        "kappa_r2",
        "attenuation",
        "kappa_param",
        "loss_to_chance",
        "val_loss_to_chance",
        "snr",
        "cos_successive",
        "train_val_gap",
        "dead_max",
        "forward_diversity",
        "probe_accuracy",
        "chance_accuracy",
        "shuffle_gap",
    ] {
        assert!(
            value["indicators"].get(key).is_some(),
            "missing indicator {key}"
        );
    }
    assert!(
        value["indicators"]["shuffle_gap"].is_null(),
        "the control was not run"
    );
    let layer = &value["layers"][0];
    for key in [
        "name",
        "index",
        "grad_rms",
        "act_grad_rms",
        "weight_rms",
        "update_ratio",
    ] {
        assert!(layer.get(key).is_some(), "missing layer key {key}");
    }
    assert!(value["history"][0].get("train_loss").is_some());
}

#[test]
fn dead_units_are_counted_on_the_non_linearities_only() {
    use gradlab_arch::{Classifier, LayerKind, ResNet, ResNetConfig};
    let mut cfg = ResNetConfig::cifar(8).unwrap().with_width(4);
    cfg.in_channels = 1;
    cfg.num_classes = 3;
    let mut net = ResNet::<f32>::new(&Scope::new(0), &cfg).unwrap();
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::rand_normal(&[16, 1, 8, 8], 0.0, 1.0, 0).unwrap());
    let logits = net.forward(&mut cx, x).unwrap();
    let labels: Vec<usize> = (0..16).map(|i| i % 3).collect();
    let loss = gradlab_nn::cross_entropy(&mut cx, logits, &labels, &Default::default()).unwrap();
    let (grads, taps) = cx.backward_with_taps(loss).unwrap();
    let dead = |unit_taps: Vec<String>| {
        let options = RecorderOptions {
            activation: Some(ActivationKind::Relu),
            forward_stats_every: 1,
            unit_taps,
            ..Default::default()
        };
        let mut recorder = ModelRecorder::new(options, 3);
        let record = recorder.record(0, &net, &cx, &grads, &taps, None).unwrap();
        record.dead_max.unwrap()
    };
    // Every non-negative tap: the option-A shortcut pads half its channels
    // with zeros, which looks like dead units.
    assert!(dead(Vec::new()) >= 0.5);
    let activations: Vec<String> = net
        .layers()
        .into_iter()
        .filter(|l| matches!(l.kind, LayerKind::Activation(_)))
        .map(|l| l.name)
        .collect();
    assert!(!activations.is_empty());
    let d = dead(activations);
    assert!(
        d < 0.5,
        "dead fraction over the ReLUs of a fresh ResNet: {d}"
    );
}

#[test]
fn a_run_that_blew_up_round_trips_through_json() {
    let data = Patterns::new(PatternsConfig {
        len: 300,
        num_classes: 3,
        height: 4,
        width: 4,
        ..Default::default()
    })
    .unwrap();
    let (train, val) = train_val_split(data, 0.25, 0).unwrap();
    let exploding = || {
        let mut cfg = PlainMlpConfig::new(16, 3, 20, 16, ActivationKind::Relu);
        cfg.stack.gain = 18f64.sqrt();
        PlainMlp::<f32>::new(&Scope::new(0), &cfg)
    };
    let config = RunConfig {
        steps: 20,
        batch_size: 16,
        checks: 2,
        snr_batches: 2,
        ..Default::default()
    };
    let run = run_diagnosed(&exploding, &train, &val, &config, &mut |_| {}).unwrap();
    assert_eq!(run.diagnosis.verdict, gradlab_diag::Verdict::Exploding);
    let last = run.history.steps.last().unwrap();
    assert!(last.non_finite && last.loss.is_nan());
    // NaN is written as null and read back as NaN.
    let json = serde_json::to_string(&run).unwrap();
    assert!(json.contains("null"));
    let back: DiagnosedRun = serde_json::from_str(&json).unwrap();
    assert!(back.history.steps.last().unwrap().loss.is_nan());
    assert_eq!(back.history.steps.len(), run.history.steps.len());
    assert_eq!(back.diagnosis.verdict, run.diagnosis.verdict);
    assert_eq!(back.diagnosis.reasons, run.diagnosis.reasons);
}
