//! # gradlab-train
//!
//! The one place gradlab trains a network. Every command, experiment and
//! bench goes through it, so a feature that touches training (checkpoints,
//! the metrics log, diagnostics recording, data parallelism) is added once.
//!
//! - [`OptimizerSpec`] and [`ScheduleSpec`]: typed settings with a text form
//!   that round-trips (`sgd:lr=0.1,momentum=0.9`, `cosine:min=0.001,warmup=2`).
//! - [`Trainer`]: the training step: forward with every auxiliary head, the
//!   combined loss, backward (with tap gradients when asked), an observer
//!   between backward and update, the non-finite guard, the update.
//! - [`evaluate`]: held-out loss and accuracy, restoring the model's mode.
//! - [`BatchStream`]: endless seeded batches that can start at any step.
//! - [`step_seed`]: the one seed formula of a step's randomness.
//! - [`train_epochs`]: epochs with held-out evaluation, a crash-safe
//!   [`MetricsLog`], checkpoints and exact resumption; an observer callback
//!   shows progress and can stop the run (interrupts).
//! - [`ModelRecorder`]: gradlab-diag's stats-only recorder fed from a
//!   gradlab network (parameters, gradients, tapped activations).
//! - Data parallelism over a gradlab-dist
//!   [`Communicator`](gradlab_dist::Communicator): [`Trainer::step_parallel`]
//!   (shard gradients all-reduced in one flat buffer, the step's
//!   [`NoiseScale`]), [`BatchStream::next_shard`], [`evaluate_sharded`],
//!   [`train_epochs_on`], and the helpers of `parallel.rs`
//!   ([`broadcast_model`], [`average_batch_norm_stats`], [`agree`]). With
//!   one rank every number is the single-process run's, bit for bit.
//! - [`run_diagnosed`]: a run with the model recorder on every step,
//!   held-out checks, the data probe and the label-shuffle control, and its
//!   verdict; [`suite`]: the scenario suite whose right verdicts are known
//!   by construction (tests and calibration of the thresholds).
//!
//! ## A complete training loop
//! ```
//! use gradlab_arch::{Classifier, PlainMlp, PlainMlpConfig};
//! use gradlab_data::{Dataset, Patterns, PatternsConfig};
//! use gradlab_nn::ActivationKind;
//! use gradlab_nn::Scope;
//! use gradlab_train::{evaluate, BatchStream, OptimizerSpec, ScheduleSpec, Trainer};
//!
//! let data = Patterns::new(PatternsConfig { len: 512, num_classes: 4, height: 8, width: 8, ..Default::default() })?;
//! let (train, val) = (data.clone(), data);
//! let config = PlainMlpConfig::new(64, train.num_classes(), 3, 32, ActivationKind::Relu);
//! let mut net = PlainMlp::new(&Scope::new(0), &config)?;
//! let mut batches = BatchStream::new(&train, 32, 0)?;
//! let steps = 40;
//! let schedule = "cosine:min=0.001".parse::<ScheduleSpec>()?.build(0.1, batches.steps_per_epoch(), steps)?;
//! let mut trainer = Trainer::new(&OptimizerSpec::sgd(0.1), 0)?.with_schedule(schedule);
//! for _ in 0..steps {
//!     let out = trainer.step(&mut net, batches.next_batch()?)?.finite()?;
//!     assert!(out.loss.is_finite());
//! }
//! let held_out = evaluate(&mut net, &val, 128, None)?;
//! assert!(held_out.accuracy > 0.5, "{held_out:?}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layout: `optimizer.rs`, `schedule.rs` (the specs, on the grammar of
//! `spec.rs`), `step.rs` (the step and [`Trainer`]), `evaluate.rs`,
//! `batches.rs`, `epochs.rs` and `metrics_log.rs` (the epoch loop and its
//! files), `parallel.rs` (what ranks exchange besides a step's gradients),
//! `record.rs` (the model recorder), `diagnosed.rs` (the diagnosed run),
//! `suite.rs`, `error.rs`.

mod batches;
mod diagnosed;
mod epochs;
mod error;
mod evaluate;
mod metrics_log;
mod optimizer;
mod parallel;
mod record;
mod schedule;
pub mod spec;
mod step;
pub mod suite;

pub use batches::BatchStream;
pub use diagnosed::{
    diagnose_at_init, flat_params, probe_datasets, run_diagnosed, BuildModel, DepthReference,
    DiagnosedRun, RunConfig, RunProgress,
};
pub use epochs::{
    train_epochs, train_epochs_on, EpochConfig, Flow, RunFiles, TrainEvent, TrainOutcome,
};
pub use error::{Result, TrainError};
pub use evaluate::{evaluate, evaluate_sharded, Evaluation};
pub use metrics_log::{LogRow, MetricsLog, CSV_HEADER, CSV_HEADER_NOISE};
pub use optimizer::{OptimizerKind, OptimizerSpec};
pub use parallel::{
    agree, average_batch_norm_stats, broadcast_model, broadcast_training_state, config_digest,
    NoiseScale,
};
pub use record::{diag_activation, ModelRecorder, RecorderOptions};
pub use schedule::{ScheduleKind, ScheduleSpec};
pub use step::{forward_backward, step_seed, Pass, StepOutput, Trainer};
