//! [`train_epochs`]: training for a number of epochs with held-out
//! evaluation after each, a crash-safe metrics log, atomic checkpoints at
//! every epoch end and on request, and exact resumption; on one rank or
//! data-parallel over many ([`train_epochs_on`]).

use std::cmp::Ordering;
use std::path::PathBuf;

use gradlab_arch::Classifier;
use gradlab_data::Dataset;
use gradlab_dist::{check_same_config, Communicator, DistError, LocalComm};
use gradlab_nn::{load_checkpoint, save_checkpoint, CheckpointMeta, DataChecksum};

use crate::batches::BatchStream;
use crate::error::{Result, TrainError};
use crate::evaluate::{evaluate_sharded, Evaluation};
use crate::metrics_log::{LogRow, MetricsLog};
use crate::optimizer::OptimizerSpec;
use crate::parallel::{
    agree, average_batch_norm_stats, broadcast_model, broadcast_training_state, config_digest,
    first_failure,
};
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
/// This is [`train_epochs_on`] with one rank ([`LocalComm`]).
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
    train_epochs_on(model, train, val, config, files, &LocalComm, observe)
}

/// [`train_epochs`], data-parallel over the ranks of `comm`.
///
/// Every rank calls it with the same arguments (its own model, data and
/// observer). `config.batch` is the global batch: each step, rank `r` of
/// `N` trains on its slice of the single-process run's batch
/// ([`BatchStream::next_shard`]) and the gradients are all-reduced
/// ([`Trainer::step_parallel`]), so every rank applies the same update.
///
/// - At the start, the ranks check that they run the same configuration
///   (a digest of `config`, `files.identity`, the architecture and the
///   parameter shapes, compared with rank 0's) and rank 0's parameters and
///   buffers are copied to every rank. On `files.resume`, rank 0 alone
///   reads the checkpoint and sends the state to the others, so the
///   checkpoint need not be visible on the other ranks' machines, and the
///   number of ranks may differ from the run that wrote it.
/// - Rank 0 alone writes the checkpoint and the metrics log (which gets
///   the noise-scale columns of [`CSV_HEADER_NOISE`](crate::CSV_HEADER_NOISE)
///   on more than one rank). Every rank's observer is called with the same
///   (reduced) numbers; the run stops when any rank's observer says
///   [`Flow::Stop`].
/// - BatchNorm running statistics are averaged over the ranks
///   ([`average_batch_norm_stats`]) before every checkpoint and evaluation;
///   held-out evaluation is split over the ranks ([`evaluate_sharded`]).
/// - A failure of one rank (its data, its forward pass, rank 0's files)
///   makes every rank return an error naming that rank
///   ([`TrainError::RankFailed`]); no rank is left waiting.
///
/// With one rank this is exactly the single-process loop.
///
/// # Errors
/// As [`train_epochs`]; [`TrainError::Spec`] when the batch is not a
/// multiple of the number of ranks or a rank's configuration differs from
/// rank 0's; [`TrainError::RankFailed`] and [`TrainError::Dist`].
pub fn train_epochs_on(
    model: &mut dyn Classifier<f32>,
    train: &dyn Dataset,
    val: &dyn Dataset,
    config: &EpochConfig,
    files: &RunFiles,
    comm: &dyn Communicator,
    observe: &mut dyn FnMut(&TrainEvent<'_>) -> Flow,
) -> Result<TrainOutcome> {
    if config.batch == 0 || config.epochs == 0 {
        return Err(TrainError::Spec(
            "train: the batch size and the number of epochs must be at least 1".into(),
        ));
    }
    let (rank, size) = (comm.rank(), comm.size());
    if !config.batch.is_multiple_of(size) {
        return Err(TrainError::Spec(format!(
            "train: the global batch of {} is not a multiple of the {size} ranks; use a batch divisible by {size}",
            config.batch
        )));
    }
    let parallel = size > 1;
    if parallel {
        check_same_run(model, config, files, comm)?;
    }
    let stream = agree(
        comm,
        None,
        BatchStream::new(train, config.batch, config.seed),
    )?;
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
        // Rank 0 reads the checkpoint; the others get its state from rank 0.
        let mut verified = true;
        let loaded = if rank == 0 {
            load_checkpoint(path, model, Some(trainer.optimizer_mut()))
                .map_err(TrainError::from)
                .and_then(|meta| {
                    verified = meta.checksum == DataChecksum::Verified;
                    let differences = differences(&meta.extra, &files.identity);
                    if differences.is_empty() {
                        Ok(meta.step)
                    } else {
                        Err(TrainError::CheckpointMismatch {
                            path: path.display().to_string(),
                            differences,
                        })
                    }
                })
        } else {
            Ok(0)
        };
        start = agree(comm, None, loaded)?;
        start = broadcast_training_state(model, trainer.optimizer_mut(), start, comm)?;
        observe(&TrainEvent::Resumed {
            step: start,
            verified,
        });
    } else {
        broadcast_model(model, comm)?;
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
    let log = match &files.log {
        Some(p) if rank == 0 && files.resume => Some(MetricsLog::resume_with(p, start, parallel)),
        Some(p) if rank == 0 => Some(MetricsLog::create_with(p, parallel)),
        _ => None,
    };
    let mut log = agree(comm, None, log.transpose())?;
    let save = |model: &mut dyn Classifier<f32>,
                trainer: &Trainer,
                log: &mut Option<MetricsLog>|
     -> Result<()> {
        average_batch_norm_stats(model, comm)?;
        let mut write = || -> Result<()> {
            // The log's rows reach the disk before the checkpoint that covers them.
            if let Some(log) = log.as_mut() {
                log.sync()?;
            }
            if let (Some(path), 0) = (&files.checkpoint, rank) {
                let mut meta = CheckpointMeta::new(files.architecture.clone(), trainer.steps())
                    .with_extra(files.identity.clone());
                if let Some(model) = &files.model {
                    meta = meta.with_model(model.clone());
                }
                save_checkpoint(path, model, Some(trainer.optimizer()), &meta)?;
            }
            Ok(())
        };
        let written = write();
        agree(comm, None, written)
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
            let out = if parallel {
                let step = trainer.steps();
                let shard = agree(comm, Some(step), stream.next_shard(rank, size));
                trainer.step_parallel(model, shard?, comm, &mut |_, _| Ok(()))?
            } else {
                trainer.step(model, stream.next_batch()?)?
            }
            .finite()?;
            outcome.steps = trainer.steps();
            outcome.last_loss = out.loss;
            (loss_sum, acc_sum, n) = (loss_sum + out.loss, acc_sum + out.accuracy, n + 1);
            let logged = match log.as_mut() {
                Some(log) => log.row_with(
                    &LogRow {
                        step: trainer.steps(),
                        epoch: epoch1,
                        loss: out.loss,
                        accuracy: out.accuracy,
                        lr: out.lr,
                    },
                    out.noise_scale.as_ref(),
                ),
                None => Ok(()),
            };
            let logged = if parallel { logged } else { Ok(logged?) };
            let flow = observe(&TrainEvent::Step {
                epoch: epoch1,
                done,
                out: &out,
            });
            let flow = if parallel {
                step_end(comm, out.step, logged, flow)?
            } else {
                flow
            };
            if flow == Flow::Stop {
                save(model, &trainer, &mut log)?;
                outcome.stopped = true;
                return Ok(outcome);
            }
        }
        // Evaluated before the checkpoint is written, so that a model whose
        // evaluation mode has diverged never replaces a good checkpoint.
        let held_out = evaluate_sharded(model, val, config.batch, None, comm)?;
        if held_out.examples > 0 && !held_out.loss.is_finite() {
            let (name, largest) = largest_magnitude(model);
            return Err(TrainError::NonFiniteHeldOut {
                epoch: epoch1,
                loss: held_out.loss,
                name,
                largest,
            });
        }
        save(model, &trainer, &mut log)?;
        outcome.held_out = Some(held_out);
        let flow = observe(&TrainEvent::EpochEnd {
            epoch: epoch1,
            train_loss: loss_sum / n.max(1) as f64,
            train_accuracy: acc_sum / n.max(1) as f64,
            held_out,
        });
        let flow = if parallel {
            step_end(comm, trainer.steps(), Ok(()), flow)?
        } else {
            flow
        };
        if flow == Flow::Stop && epoch1 < config.epochs as u64 {
            outcome.stopped = true;
            return Ok(outcome);
        }
    }
    Ok(outcome)
}

/// The parameter or buffer holding the value of largest magnitude, and
/// that magnitude (NaN ranks above infinity): the evidence shown when the
/// held-out loss is not finite.
fn largest_magnitude(model: &dyn Classifier<f32>) -> (String, f64) {
    // NaN above every number, then by magnitude (the key holds no NaN).
    let key = |v: f64| (v.is_nan(), if v.is_nan() { 0.0 } else { v });
    let mut best: Option<(String, f64)> = None;
    model.visit_params(&mut |p| {
        let largest = p
            .value()
            .as_slice()
            .iter()
            .map(|&v| f64::from(v).abs())
            .max_by(|a, b| key(*a).partial_cmp(&key(*b)).unwrap_or(Ordering::Equal));
        if let Some(m) = largest {
            if best.as_ref().is_none_or(|(_, b)| key(m) > key(*b)) {
                best = Some((p.name().to_string(), m));
            }
        }
    });
    best.unwrap_or_else(|| ("no tensor".into(), 0.0))
}

/// Refuses to start unless every rank runs rank 0's configuration: the
/// batch split, the settings, the run's identity, the architecture and the
/// names and shapes of the parameters, as one digest.
fn check_same_run(
    model: &dyn Classifier<f32>,
    config: &EpochConfig,
    files: &RunFiles,
    comm: &dyn Communicator,
) -> Result<()> {
    let mut text = format!(
        "{config:?}\n{}\n{}\nresume={}\n",
        files.identity, files.architecture, files.resume
    );
    model.visit_params(&mut |p| text.push_str(&format!("{} {:?}\n", p.name(), p.shape())));
    let digest = config_digest(text.as_bytes());
    check_same_config(comm, &digest.to_le_bytes()).map_err(|e| match e {
        DistError::ConfigMismatch { ranks, size } => TrainError::Spec(format!(
            "train: ranks {ranks:?} of {size} run another configuration than rank 0 (model, data, seed, batch or settings differ); start every rank with the same arguments"
        )),
        e => TrainError::Dist(e),
    })
}

/// The end of a step of a parallel run: every rank learns whether rank 0
/// could write the step's log row and whether any rank's observer asked to
/// stop.
fn step_end(comm: &dyn Communicator, step: u64, logged: Result<()>, flow: Flow) -> Result<Flow> {
    let size = comm.size();
    let mut flags = vec![0.0f64; size + 1];
    if logged.is_err() {
        flags[comm.rank()] = 1.0;
    }
    if flow == Flow::Stop {
        flags[size] = 1.0;
    }
    comm.all_reduce_sum_f64(&mut flags)?;
    first_failure(comm, &flags[..size], Some(step), logged)?;
    Ok(if flags[size] != 0.0 {
        Flow::Stop
    } else {
        Flow::Continue
    })
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
