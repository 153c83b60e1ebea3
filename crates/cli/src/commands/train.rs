//! `gradlab train`: train a model on data with progress, a metrics log,
//! atomic checkpoints each epoch and on SIGINT/SIGTERM, and exact
//! resumption. The loop itself is [`gradlab_train::train_epochs_on`], on
//! one process or data-parallel over the ranks of an MPI job
//! ([`train_on`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use gradlab_dist::{Communicator, LocalComm};
use gradlab_train::{
    train_epochs_on, EpochConfig, Flow, OptimizerKind, OptimizerSpec, RunFiles, ScheduleSpec,
    TrainEvent, TrainOutcome,
};
use serde_json::json;

use crate::data_spec::build_data;
use crate::error::{CliError, Result};
use crate::model_spec::build_model;
use crate::output::check_output;
use crate::progress::bar;
use crate::ranks;
use crate::terminal::sig4;

/// The options of `gradlab train`.
#[derive(Debug, Clone)]
pub struct TrainArgs {
    /// Model SPEC.
    pub model: String,
    /// Data SPEC.
    pub data: String,
    /// Epochs (passes over the training split).
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// The optimizer (SGD with momentum 0.9).
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    pub lr: f64,
    /// Weight decay (L2 for sgd and adam, decoupled for adamw).
    pub weight_decay: f64,
    /// The learning-rate schedule.
    pub schedule: ScheduleSpec,
    /// Seed of initialisation, batch order and dropout.
    pub seed: u64,
    /// Checkpoint file (written each epoch and on SIGINT/SIGTERM).
    pub checkpoint: Option<PathBuf>,
    /// Continue from the checkpoint.
    pub resume: bool,
    /// Per-step metrics: CSV for a `.csv` file, JSON lines otherwise.
    pub log: Option<PathBuf>,
}

impl TrainArgs {
    /// The optimizer these arguments ask for.
    pub fn optimizer_spec(&self) -> OptimizerSpec {
        OptimizerSpec::new(self.optimizer, self.lr).with_weight_decay(self.weight_decay)
    }

    /// What a checkpoint must agree on to be resumed. The number of epochs
    /// may grow (train 5 epochs, then resume to 10), unless the schedule
    /// depends on the run's length (cosine).
    fn identity(&self) -> serde_json::Value {
        let epochs = self.schedule.depends_on_length().then_some(self.epochs);
        json!({ "model": self.model, "data": self.data, "seed": self.seed, "batch": self.batch,
                "optimizer": self.optimizer.name(), "lr": self.lr, "weight_decay": self.weight_decay,
                "schedule": self.schedule.to_string(), "epochs": epochs })
    }
}

/// The number of the signal (SIGINT or SIGTERM) that asked the run to stop,
/// 0 while none has; the handlers are installed once per process.
fn stop_signal() -> Arc<AtomicUsize> {
    static FLAG: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicUsize::new(0));
        #[cfg(unix)]
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Without a handler the signal just ends the process, as before.
            let _ = signal_hook::flag::register_usize(signal, flag.clone(), signal as usize);
        }
        flag
    })
    .clone()
}

/// Trains as `args` says.
///
/// # Errors
/// Bad options (exit code 2), unreadable or mismatched checkpoints, file
/// errors, and a non-finite loss or gradient (naming the step and parameter).
pub fn train(args: &TrainArgs) -> Result<TrainOutcome> {
    train_on(args, &LocalComm)
}

/// Trains as `args` says on the ranks of `comm`, `--batch` being the
/// global batch: every rank calls it with the same arguments, and rank 0
/// alone prints, shows progress and writes the log and checkpoint.
///
/// # Errors
/// As [`train`], on every rank (a rank that fails makes the others fail
/// with an error naming it); a batch that the ranks cannot split evenly
/// and ranks started with other arguments are usage errors (exit code 2).
pub fn train_on(args: &TrainArgs, comm: &dyn Communicator) -> Result<TrainOutcome> {
    let lead = comm.rank() == 0;
    let setup = || -> Result<_> {
        let optimizer = args.optimizer_spec();
        // Bad settings and unusable output paths are refused before any data
        // is read or any step is trained.
        optimizer.build()?;
        if args.batch == 0 || args.epochs == 0 {
            return Err(CliError::Usage(
                "train: --batch and --epochs must be at least 1".into(),
            ));
        }
        if args.resume && args.checkpoint.is_none() {
            return Err(CliError::Usage(
                "train: --resume needs --checkpoint PATH".into(),
            ));
        }
        if lead {
            for path in args.checkpoint.iter().chain(&args.log) {
                check_output(path)?;
            }
        }
        let data = build_data(&args.data, args.seed)?;
        let net = build_model(
            &args.model,
            data.input_shape(),
            data.num_classes(),
            args.seed,
        )?
        .net;
        Ok((optimizer, data, net))
    };
    let size = comm.size();
    if !args.batch.is_multiple_of(size) {
        return Err(CliError::Usage(format!(
            "train: --batch {} is the global batch and must be a multiple of the {size} ranks",
            args.batch
        )));
    }
    let (optimizer, data, mut net) = ranks::agree(comm, setup())?;
    if size > 1 && lead {
        println!(
            "ranks {size}, per-rank batch {}, threads per rank {}",
            args.batch / size,
            rayon::current_num_threads()
        );
    }
    let config = EpochConfig {
        epochs: args.epochs,
        batch: args.batch,
        seed: args.seed,
        optimizer,
        schedule: args.schedule.clone(),
    };
    let files = RunFiles {
        checkpoint: args.checkpoint.clone(),
        resume: args.resume,
        identity: args.identity(),
        architecture: net.label(),
        model: Some(args.model.clone()),
        log: args.log.clone(),
    };
    let signal = stop_signal();
    let new_bar = |len, prefix: &str| {
        if lead {
            bar(len, prefix)
        } else {
            indicatif::ProgressBar::hidden()
        }
    };
    let mut pb = new_bar(0, "");
    let (mut started, mut seen, mut loss_sum, mut acc_sum, mut first_done) =
        (Instant::now(), 0u64, 0.0, 0.0, 0u64);
    let outcome = train_epochs_on(
        &mut *net,
        &*data.train,
        &*data.val,
        &config,
        &files,
        comm,
        &mut |event| {
            match event {
                TrainEvent::Resumed { .. } | TrainEvent::EpochEnd { .. } if !lead => {}
                TrainEvent::Resumed { step, verified } => {
                    let path = args.checkpoint.as_ref().map(|p| p.display().to_string());
                    eprintln!("resuming from {} at step {step}", path.unwrap_or_default());
                    if !verified {
                        eprintln!(
                            "note: the checkpoint carries no data checksum (written by another tool?), so its tensors could not be verified"
                        );
                    }
                }
                TrainEvent::EpochStart {
                    epoch,
                    steps_per_epoch,
                    done,
                } => {
                    pb = new_bar(*steps_per_epoch, &format!("epoch {epoch}/{}", args.epochs));
                    pb.set_position(*done);
                    (started, seen, loss_sum, acc_sum, first_done) =
                        (Instant::now(), 0, 0.0, 0.0, *done);
                }
                TrainEvent::Step { done, out, .. } => {
                    seen += 1;
                    loss_sum += out.loss;
                    acc_sum += out.accuracy;
                    let n = (done - first_done) as f64;
                    pb.set_position(*done);
                    pb.set_message(format!(
                        "loss {:.4} acc {:.3} {:.0} img/s",
                        loss_sum / n,
                        acc_sum / n,
                        (seen * args.batch as u64) as f64
                            / started.elapsed().as_secs_f64().max(1e-9)
                    ));
                }
                TrainEvent::EpochEnd {
                    epoch,
                    train_loss,
                    train_accuracy,
                    held_out,
                } => {
                    pb.finish_and_clear();
                    println!(
                        "epoch {epoch}/{}: train loss {}, train acc {}, held-out loss {}, held-out acc {}",
                        args.epochs,
                        sig4(*train_loss),
                        sig4(*train_accuracy),
                        sig4(held_out.loss),
                        sig4(held_out.accuracy)
                    );
                }
            }
            if signal.load(Ordering::SeqCst) != 0 {
                pb.finish_and_clear();
                Flow::Stop
            } else {
                Flow::Continue
            }
        },
    );
    pb.finish_and_clear();
    Ok(outcome?)
}

/// `gradlab train`.
///
/// # Errors
/// As [`train`]; [`CliError::Interrupted`] after saving when SIGINT or
/// SIGTERM stopped the run.
pub fn run(args: &TrainArgs) -> Result<()> {
    run_on(args, &LocalComm)
}

/// `gradlab train` on the ranks of `comm`; rank 0 alone prints.
///
/// # Errors
/// As [`train_on`]; [`CliError::Interrupted`] as [`run`].
pub fn run_on(args: &TrainArgs, comm: &dyn Communicator) -> Result<()> {
    let o = train_on(args, comm)?;
    if comm.rank() != 0 {
        return Ok(());
    }
    if o.already_done {
        println!(
            "the checkpoint is already at step {} (epoch {} or later); nothing to do (raise --epochs to train on)",
            o.steps, args.epochs
        );
        return Ok(());
    }
    if o.stopped {
        let signal = stop_signal().load(Ordering::SeqCst) as i32;
        let saved = match &args.checkpoint {
            Some(p) => format!(
                "checkpoint {} saved; continue with the same command and --resume",
                p.display()
            ),
            None => "no --checkpoint was given, so nothing was saved".to_string(),
        };
        return Err(CliError::Interrupted {
            signal,
            message: format!("stopped at step {}; {saved}", o.steps),
        });
    }
    println!(
        "final: step {}, last batch loss {}",
        o.steps,
        sig4(o.last_loss)
    );
    if let Some(h) = o.held_out {
        println!(
            "held-out: loss {}, accuracy {}",
            sig4(h.loss),
            sig4(h.accuracy)
        );
    }
    Ok(())
}
