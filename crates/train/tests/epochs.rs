//! The epoch loop: a run stopped and resumed equals the uninterrupted run,
//! parameters and metrics log byte for byte; the log is cut back to the
//! checkpoint; mismatched checkpoints and finished runs are told apart.

use std::path::Path;

use gradlab_arch::{PlainMlp, PlainMlpConfig};
use gradlab_data::{
    train_val_split, Dataset, Example, Patterns, PatternsConfig, Result as DataResult, SplitPart,
};
use gradlab_nn::{ActivationKind, Scope};
use gradlab_train::{
    flat_params, train_epochs, EpochConfig, Flow, MetricsLog, OptimizerSpec, RunFiles, TrainError,
    TrainEvent, TrainOutcome,
};
use serde_json::json;

fn mlp() -> PlainMlp<f32> {
    PlainMlp::new(
        &Scope::new(1),
        &PlainMlpConfig::new(64, 4, 3, 16, ActivationKind::Relu),
    )
    .unwrap()
}

fn config(epochs: usize) -> EpochConfig {
    EpochConfig {
        epochs,
        batch: 16,
        seed: 3,
        optimizer: OptimizerSpec::sgd(0.05),
        schedule: "multistep:at=1,gamma=0.5".parse().unwrap(),
    }
}

fn files(dir: &Path, log: &str, resume: bool) -> RunFiles {
    RunFiles {
        checkpoint: Some(dir.join("ck.safetensors")),
        resume,
        identity: json!({"model": "mlp", "seed": 3}),
        architecture: "mlp".into(),
        model: Some("plain-mlp:depth=3".into()),
        log: Some(dir.join(log)),
    }
}

/// The training and held-out splits of the runs.
fn split() -> (SplitPart<Patterns>, SplitPart<Patterns>) {
    let data = Patterns::new(PatternsConfig {
        len: 200,
        num_classes: 4,
        height: 8,
        width: 8,
        ..Default::default()
    })
    .unwrap();
    train_val_split(data, 0.2, 0).unwrap()
}

/// Runs `epochs` epochs, stopping after `stop_after` steps of this call.
fn run(
    net: &mut PlainMlp<f32>,
    epochs: usize,
    files: &RunFiles,
    stop_after: Option<u64>,
) -> Result<TrainOutcome, TrainError> {
    let (train, val) = split();
    let mut steps = 0u64;
    train_epochs(net, &train, &val, &config(epochs), files, &mut |e| {
        if let TrainEvent::Step { .. } = e {
            steps += 1;
            if Some(steps) == stop_after {
                return Flow::Stop;
            }
        }
        Flow::Continue
    })
}

#[test]
fn a_stopped_and_resumed_run_equals_the_uninterrupted_one() {
    for log in ["log.csv", "log.jsonl"] {
        let dir = tempfile::tempdir().unwrap();
        let mut whole = mlp();
        let out = run(&mut whole, 3, &files(dir.path(), log, false), None).unwrap();
        assert_eq!(out.steps, 30);
        let whole_log = std::fs::read(dir.path().join(log)).unwrap();

        // Stopped at step 13 (mid-epoch 2), then at 17, then finished.
        let dir2 = tempfile::tempdir().unwrap();
        let f = files(dir2.path(), log, false);
        let mut net = mlp();
        let out = run(&mut net, 3, &f, Some(13)).unwrap();
        assert!(out.stopped && out.steps == 13);
        let f = files(dir2.path(), log, true);
        let mut net = mlp();
        assert_eq!(run(&mut net, 3, &f, Some(4)).unwrap().steps, 17);
        // A crash after the checkpoint left rows behind, one of them torn.
        let path = dir2.path().join(log);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("18,2,0.5,0.5,0.025\n19,2,0.4");
        std::fs::write(&path, text).unwrap();
        let mut net = mlp();
        let out = run(&mut net, 3, &f, None).unwrap();
        assert_eq!(out.steps, 30);
        assert_eq!(flat_params(&net), flat_params(&whole), "{log}: parameters");
        assert_eq!(std::fs::read(&path).unwrap(), whole_log, "{log}: log bytes");
    }
}

#[test]
fn resuming_names_what_differs_and_a_finished_run_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = mlp();
    run(&mut net, 1, &files(dir.path(), "log.csv", false), None).unwrap();
    let mut other = files(dir.path(), "log.csv", true);
    other.identity = json!({"model": "mlp", "seed": 4});
    let e = run(&mut mlp(), 2, &other, None).unwrap_err().to_string();
    assert!(e.contains("seed: 3 in the checkpoint, 4 now"), "{e}");
    let out = run(&mut mlp(), 1, &files(dir.path(), "log.csv", true), None).unwrap();
    assert!(out.already_done && out.steps == 10);
}

#[test]
fn a_log_is_cut_back_to_the_checkpoint_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    std::fs::write(
        &path,
        "step,epoch,loss,accuracy,lr\n1,1,0.1,0.5,0.1\n2,1,0.1,0.5,0.1\n3,1,0.1,0.5,0.1\n",
    )
    .unwrap();
    let mut log = MetricsLog::resume(&path, 2).unwrap();
    log.sync().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "step,epoch,loss,accuracy,lr\n1,1,0.1,0.5,0.1\n2,1,0.1,0.5,0.1\n"
    );
    // A log that lost its header (an old build's crash) gets it back only
    // when it is empty; rows are never invented.
    std::fs::write(&path, "").unwrap();
    let mut log = MetricsLog::resume(&path, 0).unwrap();
    log.sync().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "step,epoch,loss,accuracy,lr\n"
    );
}

/// A dataset whose every image starts with a NaN pixel.
struct Poisoned<D>(D);

impl<D: Dataset> Dataset for Poisoned<D> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn num_classes(&self) -> usize {
        self.0.num_classes()
    }
    fn input_shape(&self) -> [usize; 3] {
        self.0.input_shape()
    }
    fn get(&self, index: usize) -> DataResult<Example> {
        let mut example = self.0.get(index)?;
        example.image.as_slice_mut()[0] = f32::NAN;
        Ok(example)
    }
    fn name(&self) -> String {
        format!("poisoned({})", self.0.name())
    }
}

#[test]
fn a_held_out_loss_that_is_not_finite_stops_the_run_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = mlp();
    run(&mut net, 1, &files(dir.path(), "log.csv", false), None).unwrap();
    let ck = dir.path().join("ck.safetensors");
    let good = std::fs::read(&ck).unwrap();
    // The second epoch trains on finite data (finite losses and gradients)
    // and is evaluated on images holding a NaN.
    let (train, val) = split();
    let files = files(dir.path(), "log.csv", true);
    let err = train_epochs(
        &mut net,
        &train,
        &Poisoned(val),
        &config(2),
        &files,
        &mut |_| Flow::Continue,
    )
    .unwrap_err();
    let text = err.to_string();
    match err {
        TrainError::NonFiniteHeldOut {
            epoch,
            loss,
            name,
            largest,
        } => {
            assert_eq!(epoch, 2);
            assert!(loss.is_nan(), "{text}");
            assert!(largest.is_finite() && largest > 0.0, "{text}");
            assert!(text.contains(&name) && text.contains("epoch 2"), "{text}");
        }
        other => panic!("expected NonFiniteHeldOut, got {other}"),
    }
    assert!(
        std::fs::read(&ck).unwrap() == good,
        "the first epoch's checkpoint was replaced"
    );
}
