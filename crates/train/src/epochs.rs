//! [`train_epochs`]: training for a number of epochs with held-out
//! evaluation after each, a crash-safe metrics log, atomic checkpoints at
//! every epoch end and on request, and exact resumption.

use std::path::PathBuf;

use gradlab_arch::Classifier;
use gradlab_data::Dataset;
use gradlab_nn::{load_checkpoint, save_checkpoint, CheckpointMeta, DataChecksum};

use crate::batches::BatchStream;
use crate::error::{Result, TrainError};
use crate::evaluate::{evaluate, Evaluation};
use crate::metrics_log::{LogRow, MetricsLog};
use crate::optimizer::OptimizerSpec;
use crate::schedule::ScheduleSpec;
use crate::step::{StepOutput, Trainer};

/// How long and how to train.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Examples per step (the last partial batch of an epoch is dropped).
    pub batch: usize,
    /// Seed of batch order and dropout.
    pub seed: u64,
    /// The optimizer.
    pub optimizer: OptimizerSpec,
    /// The learning-rate schedule.
    pub schedule: ScheduleSpec,
}

/// Where a run keeps its state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFiles {
    /// The checkpoint, written at every epoch end and when the observer
    /// stops the run.
    pub checkpoint: Option<PathBuf>,
    /// Continue from the checkpoint.
    pub resume: bool,
    /// What a checkpoint must agree on to be resumed (model, data, seed,
    /// settings), stored in it; keys that differ are named on resume.
    pub identity: serde_json::Value,
    /// The architecture label stored in the checkpoint.
    pub architecture: String,
    /// The model's spec, stored in the checkpoint so that loading it into
    /// another model names both.
    pub model: Option<String>,
    /// The per-step metrics log.
    pub log: Option<PathBuf>,
}

/// What the observer of [`train_epochs`] is told.
#[derive(Debug)]
pub enum TrainEvent<'a> {
    /// The run continues a checkpoint at `step`.
    Resumed {
        /// Updates done before.
        step: u64,
        /// Whether the checkpoint's data checksum was verified (a checkpoint
        /// written by another tool may have none).
        verified: bool,
    },
    /// An epoch starts.
    EpochStart {
        /// The epoch, 1-based.
        epoch: u64,
        /// Steps per epoch.
        steps_per_epoch: u64,
        /// Steps of this epoch done before (after a resume mid-epoch).
        done: u64,
    },
    /// A step ended.
    Step {
        /// The epoch, 1-based.
        epoch: u64,
        /// Steps of this epoch done, this one included.
        done: u64,
        /// The step.
        out: &'a StepOutput,
    },
    /// An epoch ended and was checkpointed.
    EpochEnd {
        /// The epoch, 1-based.
        epoch: u64,
        /// Mean mini-batch loss of the epoch's steps (of this process).
        train_loss: f64,
        /// Mean mini-batch accuracy of those steps.
        train_accuracy: f64,
        /// The held-out figures.
        held_out: Evaluation,
    },
}

/// What the observer wants after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Save a checkpoint and stop (an interrupt).
    Stop,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    /// Updates done in all, including those before a resume.
    pub steps: u64,
    /// Loss of the last training batch (NaN when no step ran).
    pub last_loss: f64,
    /// Held-out figures after the last epoch that finished.
    pub held_out: Option<Evaluation>,
    /// Whether the observer stopped the run.
    pub stopped: bool,
    /// The checkpoint was already at or past the last epoch: nothing ran.
    pub already_done: bool,
}

/// Trains `model` on `train` for `config.epochs` epochs, evaluating on
/// `val` after each, with the log and checkpoint of `files`.
///
/// Resumption is exact: the batch of a step depends on the seed and the
/// step only, dropout masks on [`step_seed`](crate::step_seed), and the
/// checkpoint holds parameters, buffers, optimizer state and the step; the
/// log is cut back to the checkpoint's step.
///
/// # Errors
/// [`TrainError::Spec`] for bad settings, [`TrainError::CheckpointMismatch`]
/// for a checkpoint of another run, [`TrainError::NonFinite`] naming the
/// step and parameter when training diverges (the last checkpoint is kept),
/// and model, data and file errors.
pub fn train_epochs(
    model: &mut dyn Classifier<f32>,
    train: &dyn Dataset,
    val: &dyn Dataset,
    config: &EpochConfig,
    files: &RunFiles,
    observe: &mut dyn FnMut(&TrainEvent<'_>) -> Flow,
) -> Result<TrainOutcome> {
    if config.batch == 0 || config.epochs == 0 {
        return Err(TrainError::Spec(
            "train: the batch size and the number of epochs must be at least 1".into(),
        ));
    }
    let stream = BatchStream::new(train, config.batch, config.seed)?;
    let spe = stream.steps_per_epoch();
    let total = spe * config.epochs as u64;
    let schedule = config.schedule.build(config.optimizer.lr, spe, total)?;
    let mut trainer = Trainer::new(&config.optimizer, config.seed)?.with_schedule(schedule);

    let mut start = 0u64;
    if files.resume {
        let path = files
            .checkpoint
            .as_ref()
            .ok_or_else(|| TrainError::Spec("train: --resume needs --checkpoint PATH".into()))?;
        let meta = load_checkpoint(path, model, Some(trainer.optimizer_mut()))?;
        let differences = differences(&meta.extra, &files.identity);
        if !differences.is_empty() {
            return Err(TrainError::CheckpointMismatch {
                path: path.display().to_string(),
                differences,
            });
        }
        start = meta.step;
        observe(&TrainEvent::Resumed {
            step: start,
            verified: meta.checksum == DataChecksum::Verified,
        });
    }
    let mut outcome = TrainOutcome {
        steps: start,
        last_loss: f64::NAN,
        held_out: None,
        stopped: false,
        already_done: start >= total,
    };
    if outcome.already_done {
        return Ok(outcome);
    }
    trainer = trainer.starting_at(start);
    let mut stream = stream.starting_at(start)?;
    let mut log = match &files.log {
        Some(p) if files.resume => Some(MetricsLog::resume(p, start)?),
        Some(p) => Some(MetricsLog::create(p)?),
        None => None,
    };
    let save = |model: &dyn Classifier<f32>,
                trainer: &Trainer,
                log: &mut Option<MetricsLog>|
     -> Result<()> {
        // The log's rows reach the disk before the checkpoint that covers them.
        if let Some(log) = log.as_mut() {
            log.sync()?;
        }
        if let Some(path) = &files.checkpoint {
            let mut meta = CheckpointMeta::new(files.architecture.clone(), trainer.steps())
                .with_extra(files.identity.clone());
            if let Some(model) = &files.model {
                meta = meta.with_model(model.clone());
            }
            save_checkpoint(path, model, Some(trainer.optimizer()), &meta)?;
        }
        Ok(())
    };

    for epoch in start / spe..config.epochs as u64 {
        let done_before = trainer.steps() - epoch * spe;
        let epoch1 = epoch + 1;
        observe(&TrainEvent::EpochStart {
            epoch: epoch1,
            steps_per_epoch: spe,
            done: done_before,
        });
        let (mut loss_sum, mut acc_sum, mut n) = (0.0, 0.0, 0u64);
        for done in done_before + 1..=spe {
            let out = trainer.step(model, stream.next_batch()?)?.finite()?;
            outcome.steps = trainer.steps();
            outcome.last_loss = out.loss;
            (loss_sum, acc_sum, n) = (loss_sum + out.loss, acc_sum + out.accuracy, n + 1);
            if let Some(log) = log.as_mut() {
                log.row(&LogRow {
                    step: trainer.steps(),
                    epoch: epoch1,
                    loss: out.loss,
                    accuracy: out.accuracy,
                    lr: out.lr,
                })?;
            }
            let flow = observe(&TrainEvent::Step {
                epoch: epoch1,
                done,
                out: &out,
            });
            if flow == Flow::Stop {
                save(model, &trainer, &mut log)?;
                outcome.stopped = true;
                return Ok(outcome);
            }
        }
        save(model, &trainer, &mut log)?;
        let held_out = evaluate(model, val, config.batch, None)?;
        outcome.held_out = Some(held_out);
        let flow = observe(&TrainEvent::EpochEnd {
            epoch: epoch1,
            train_loss: loss_sum / n.max(1) as f64,
            train_accuracy: acc_sum / n.max(1) as f64,
            held_out,
        });
        if flow == Flow::Stop && epoch1 < config.epochs as u64 {
            outcome.stopped = true;
            return Ok(outcome);
        }
    }
    Ok(outcome)
}

/// The keys whose values differ between a checkpoint's identity and this
/// run's, as `key: A in the checkpoint, B now`.
fn differences(saved: &serde_json::Value, now: &serde_json::Value) -> Vec<String> {
    let (Some(a), Some(b)) = (saved.as_object(), now.as_object()) else {
        return if saved == now {
            Vec::new()
        } else {
            vec![format!("the run is {now}, the checkpoint's {saved}")]
        };
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "unset".to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: {} in the checkpoint, {} now",
                show(a.get(k)),
                show(b.get(k))
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_each_key() {
        let d = differences(
            &json!({"lr": 0.05, "seed": 1, "model": "resnet:depth=8"}),
            &json!({"lr": 0.1, "seed": 1, "model": "resnet:depth=8"}),
        );
        assert_eq!(d, ["lr: 0.05 in the checkpoint, 0.1 now"]);
        assert!(differences(&json!({"a": 1}), &json!({"a": 1})).is_empty());
    }
}
