//! The diagnosis at initialisation and the depth control: what they train,
//! what they leave untouched, and what they refuse.

use std::sync::Arc;

use gradlab_arch::{Classifier, PlainMlp, PlainMlpConfig};
use gradlab_data::{train_val_split, Patterns, PatternsConfig, TensorDataset};
use gradlab_diag::Verdict;
use gradlab_nn::{ActivationKind, Scope};
use gradlab_train::{
    diagnose_at_init, flat_params, run_diagnosed, BatchStream, DepthReference, RunConfig,
    TrainError, Trainer,
};

fn mlp(depth: usize, act: ActivationKind) -> Result<PlainMlp<f32>, gradlab_arch::ArchError> {
    PlainMlp::new(&Scope::new(3), &PlainMlpConfig::new(16, 3, depth, 16, act))
}

fn data() -> (TensorDataset, TensorDataset) {
    let d = Patterns::new(PatternsConfig {
        len: 400,
        num_classes: 3,
        height: 4,
        width: 4,
        ..Default::default()
    })
    .unwrap();
    let (train, val) = train_val_split(d, 0.25, 0).unwrap();
    (
        TensorDataset::materialize(&train).unwrap(),
        TensorDataset::materialize(&val).unwrap(),
    )
}

fn config() -> RunConfig {
    RunConfig {
        steps: 12,
        batch_size: 16,
        checks: 2,
        snr_batches: 0,
        probe: false,
        ..Default::default()
    }
}

#[test]
fn at_initialisation_a_deep_sigmoid_stack_vanishes_without_being_trained() {
    let (train, _) = data();
    let make = || mlp(12, ActivationKind::Sigmoid);
    let before = flat_params(&make().unwrap());
    let run = diagnose_at_init(&make, &train, &config(), 3, &mut |_| {}).unwrap();
    assert_eq!(run.history.steps.len(), 3);
    assert_eq!(run.diagnosis.window, [0, 2], "every batch is in the window");
    assert!(run.diagnosis.indicators.at_init);
    assert_eq!(
        run.diagnosis.verdict,
        Verdict::Vanishing,
        "{:?}",
        run.diagnosis
    );
    assert!(run.diagnosis.reasons[0].contains("at initialisation"));
    // No update: the same network on every batch, so the weights' norms
    // recorded at each batch are identical.
    let norms: Vec<Vec<u64>> = run
        .history
        .steps
        .iter()
        .map(|s| s.layers.iter().map(|l| l.weight_rms.to_bits()).collect())
        .collect();
    assert!(norms.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(before, flat_params(&make().unwrap()));
}

#[test]
fn at_initialisation_zero_batches_is_refused() {
    let (train, _) = data();
    let make = || mlp(3, ActivationKind::Relu);
    let err = diagnose_at_init(&make, &train, &config(), 0, &mut |_| {}).unwrap_err();
    assert!(matches!(err, TrainError::Spec(_)), "{err}");
}

#[test]
fn the_depth_control_trains_its_reference_on_the_runs_batches() {
    let (train, val) = data();
    let reference = || mlp(2, ActivationKind::Relu);
    let config = RunConfig {
        depth_control: Some(DepthReference {
            name: "plain-mlp:depth=2".into(),
            build: Arc::new(move || {
                reference()
                    .map(|n| Box::new(n) as Box<dyn Classifier<f32>>)
                    .map_err(|e| e.to_string())
            }),
        }),
        ..config()
    };
    let run = run_diagnosed(
        &|| mlp(8, ActivationKind::Relu),
        &train,
        &val,
        &config,
        &mut |_| {},
    )
    .unwrap();
    let control = run.history.depth_control.as_ref().expect("the control ran");
    assert_eq!(control.model, "plain-mlp:depth=2");
    // The same losses as the reference trained by hand with the same seed.
    let mut net = reference().unwrap();
    let mut trainer = Trainer::new(&config.optimizer, config.seed).unwrap();
    let mut stream = BatchStream::new(&train, config.batch_size, config.seed).unwrap();
    let by_hand: Vec<(usize, f64)> = (0..config.steps)
        .map(|s| {
            let out = trainer
                .step(&mut net, stream.next_batch().unwrap())
                .unwrap();
            (s, out.loss)
        })
        .collect();
    assert_eq!(control.losses, by_hand);
    let i = &run.diagnosis.indicators;
    assert_eq!(i.depth_control_model.as_deref(), Some("plain-mlp:depth=2"));
    assert!(i.depth_control_loss_to_chance.is_some_and(f64::is_finite));
}

#[test]
fn a_reference_that_cannot_be_built_names_itself() {
    let (train, val) = data();
    let config = RunConfig {
        depth_control: Some(DepthReference {
            name: "broken".into(),
            build: Arc::new(|| Err("no such network".into())),
        }),
        ..config()
    };
    let err = run_diagnosed(
        &|| mlp(3, ActivationKind::Relu),
        &train,
        &val,
        &config,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("broken") && err.to_string().contains("no such network"),
        "{err}"
    );
}
