//! `gradlab train`: train a model on data with progress, a metrics log,
//! atomic checkpoints each epoch and on Ctrl-C, and exact resumption.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use gradlab_arch::{combined_loss, Classifier, HeadMode, OutputRequest};
use gradlab_data::{BatchConfig, Batches, Dataset};
use gradlab_nn::{
    accuracy, cross_entropy, load_checkpoint, save_checkpoint, Adam, AdamConfig, CheckpointMeta,
    Constant, CosineAnnealing, Ctx, LinearWarmup, LrSchedule, MultiStep, Optimizer, Sgd, SgdConfig,
    StepDecay, Warmup,
};
use serde_json::json;

use crate::data_spec::build_data;
use crate::error::{CliError, Result};
use crate::model_spec::build_model;
use crate::progress::bar;
use crate::spec::{unknown, Spec};

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
    /// `sgd` (momentum 0.9), `adam` or `adamw`.
    pub optimizer: String,
    /// Base learning rate.
    pub lr: f64,
    /// Weight decay (L2 for sgd and adam, decoupled for adamw).
    pub weight_decay: f64,
    /// Schedule SPEC: `constant`, `step:every=E,gamma=G`, `multistep:at=E1+E2,gamma=G`,
    /// `cosine:min=M`; each also takes `warmup=E` (epochs of linear warm-up).
    pub schedule: String,
    /// Seed of initialisation, batch order and dropout.
    pub seed: u64,
    /// Checkpoint file (written each epoch and on Ctrl-C).
    pub checkpoint: Option<PathBuf>,
    /// Continue from the checkpoint.
    pub resume: bool,
    /// Per-step metrics: CSV for a `.csv` file, JSON lines otherwise.
    pub log: Option<PathBuf>,
}

/// What a training run ended with.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    /// Steps done in all (including those before a resume).
    pub steps: u64,
    /// Loss of the last training batch.
    pub last_loss: f64,
    /// Held-out loss and accuracy after the last epoch, if it finished.
    pub held_out: Option<(f64, f64)>,
    /// Whether Ctrl-C stopped the run.
    pub interrupted: bool,
}

/// The schedule SPEC, with epochs converted to steps.
///
/// # Errors
/// [`CliError::Usage`] for an unknown schedule or key, or bad values.
pub fn parse_schedule(
    text: &str,
    lr: f64,
    steps_per_epoch: u64,
    total: u64,
) -> Result<Box<dyn LrSchedule>> {
    let mut spec = Spec::parse(text)?;
    let usage = |e: gradlab_nn::NnError| CliError::Usage(format!("schedule '{text}': {e}"));
    let warmup = spec.usize("warmup", 0)? as u64 * steps_per_epoch;
    let main: Box<dyn LrSchedule> = match spec.name.as_str() {
        "constant" => {
            spec.finish(&["warmup"])?;
            Box::new(Constant::new(lr).map_err(usage)?)
        }
        "step" => {
            let every = spec.usize("every", 30)? as u64 * steps_per_epoch;
            let gamma = spec.f64("gamma", 0.1)?;
            spec.finish(&["every", "gamma", "warmup"])?;
            Box::new(StepDecay::new(lr, every, gamma).map_err(usage)?)
        }
        "multistep" => {
            let at = spec.list("at");
            let gamma = spec.f64("gamma", 0.1)?;
            spec.finish(&["at", "gamma", "warmup"])?;
            let milestones = at
                .iter()
                .map(|e| e.parse::<u64>().map(|e| e * steps_per_epoch))
                .collect::<std::result::Result<Vec<u64>, _>>()
                .map_err(|_| {
                    CliError::Usage(format!(
                        "schedule '{text}': at= takes whole epochs joined by +, as at=30+60"
                    ))
                })?;
            Box::new(MultiStep::new(lr, &milestones, gamma).map_err(usage)?)
        }
        "cosine" => {
            let min = spec.f64("min", 0.0)?;
            spec.finish(&["min", "warmup"])?;
            Box::new(CosineAnnealing::new(lr, min, total.max(1)).map_err(usage)?)
        }
        other => {
            return Err(unknown(
                "schedule",
                other,
                &["constant", "step", "multistep", "cosine"],
            ))
        }
    };
    if warmup == 0 {
        return Ok(main);
    }
    let warm = LinearWarmup::new(lr, 0.1, warmup).map_err(usage)?;
    Ok(Box::new(Warmup::new(warm, BoxedSchedule(main))))
}

struct BoxedSchedule(Box<dyn LrSchedule>);

impl LrSchedule for BoxedSchedule {
    fn lr(&self, t: u64) -> f64 {
        self.0.lr(t)
    }
}

fn make_optimizer(args: &TrainArgs) -> Result<Box<dyn Optimizer<f32>>> {
    let usage = |e: gradlab_nn::NnError| CliError::Usage(format!("optimizer: {e}"));
    Ok(match args.optimizer.as_str() {
        "sgd" => Box::new(
            Sgd::new(SgdConfig {
                lr: args.lr,
                momentum: 0.9,
                weight_decay: args.weight_decay,
                ..SgdConfig::default()
            })
            .map_err(usage)?,
        ),
        "adam" => Box::new(
            Adam::new(AdamConfig {
                lr: args.lr,
                weight_decay: args.weight_decay,
                ..AdamConfig::default()
            })
            .map_err(usage)?,
        ),
        "adamw" => Box::new(
            Adam::new(AdamConfig {
                lr: args.lr,
                weight_decay: args.weight_decay,
                ..AdamConfig::adamw()
            })
            .map_err(usage)?,
        ),
        other => return Err(unknown("optimizer", other, &["sgd", "adam", "adamw"])),
    })
}

/// Set by Ctrl-C; the handler is installed once per process.
fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        // Without a handler Ctrl-C just ends the process, as before.
        let _ = ctrlc::set_handler(move || f.store(true, Ordering::SeqCst));
        flag
    })
    .clone()
}

/// What a checkpoint must agree on to be resumed. The number of epochs may
/// grow (train 5 epochs, then resume to 10), unless the schedule depends on
/// the run's length (cosine).
fn run_identity(args: &TrainArgs) -> serde_json::Value {
    let epochs = args.schedule.starts_with("cosine").then_some(args.epochs);
    json!({ "model": args.model, "data": args.data, "seed": args.seed, "batch": args.batch,
            "optimizer": args.optimizer, "lr": args.lr, "weight_decay": args.weight_decay,
            "schedule": args.schedule, "epochs": epochs })
}

struct MetricsLog {
    out: BufWriter<File>,
    csv: bool,
}

impl MetricsLog {
    fn open(path: &Path, append: bool) -> Result<MetricsLog> {
        let csv = path.extension().is_some_and(|e| e == "csv");
        let exists = path.exists() && append;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(CliError::io("create folder", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(path)
            .map_err(CliError::io("open log", path.display()))?;
        let mut log = MetricsLog {
            out: BufWriter::new(file),
            csv,
        };
        if csv && !exists {
            writeln!(log.out, "step,epoch,loss,accuracy,lr")
                .map_err(CliError::io("write log", path.display()))?;
        }
        Ok(log)
    }

    fn row(
        &mut self,
        step: u64,
        epoch: usize,
        loss: f64,
        acc: f64,
        lr: f64,
    ) -> std::io::Result<()> {
        if self.csv {
            writeln!(self.out, "{step},{epoch},{loss:?},{acc:?},{lr:?}")
        } else {
            writeln!(
                self.out,
                "{}",
                json!({"step": step, "epoch": epoch, "loss": loss, "accuracy": acc, "lr": lr})
            )
        }
    }
}

/// Mean loss and accuracy over a dataset, in evaluation mode.
///
/// # Errors
/// Data and model errors.
pub fn evaluate(
    net: &mut dyn Classifier<f32>,
    data: &dyn Dataset,
    batch: usize,
) -> Result<(f64, f64)> {
    let n = data.len();
    net.set_training(false);
    let (mut loss_sum, mut correct) = (0.0, 0.0);
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(batch.max(1)) {
        let b = gradlab_data::Batch::from_indices(data, chunk)?;
        let mut cx = Ctx::no_grad();
        let x = cx.input(b.images);
        let logits = net.forward(&mut cx, x)?;
        correct += accuracy(cx.value(logits)?, &b.labels)? * chunk.len() as f64;
        let l = cross_entropy(&mut cx, logits, &b.labels, &Default::default())?;
        loss_sum += f64::from(cx.value(l)?.item()?) * chunk.len() as f64;
    }
    net.set_training(true);
    Ok((loss_sum / n.max(1) as f64, correct / n.max(1) as f64))
}

/// Trains as `args` says.
///
/// # Errors
/// Bad options (exit code 2), unreadable or mismatched checkpoints, file
/// errors, and a non-finite loss or gradient (naming the parameter).
pub fn train(args: &TrainArgs) -> Result<TrainOutcome> {
    if args.batch == 0 || args.epochs == 0 {
        return Err(CliError::Usage(
            "train: --batch and --epochs must be at least 1".into(),
        ));
    }
    let data = build_data(&args.data, args.seed)?;
    let mut net = build_model(
        &args.model,
        data.input_shape(),
        data.num_classes(),
        args.seed,
    )?
    .net;
    let mut opt = make_optimizer(args)?;
    let spe = (data.train.len() / args.batch) as u64;
    if spe == 0 {
        return Err(CliError::Usage(format!(
            "train: {} training examples cannot fill one batch of {}",
            data.train.len(),
            args.batch
        )));
    }
    let total = spe * args.epochs as u64;
    let schedule = parse_schedule(&args.schedule, args.lr, spe, total)?;
    let identity = run_identity(args);

    let mut step = 0u64;
    if args.resume {
        let path = args
            .checkpoint
            .as_ref()
            .ok_or_else(|| CliError::Usage("train: --resume needs --checkpoint PATH".into()))?;
        let meta = load_checkpoint(path, &mut *net, Some(&mut *opt))?;
        if meta.extra != identity {
            return Err(CliError::Usage(format!(
                "train: checkpoint {} is of another run ({}), not of this one ({identity})",
                path.display(),
                meta.extra
            )));
        }
        step = meta.step;
        eprintln!("resuming from {} at step {step}", path.display());
    }
    let mut log = args
        .log
        .as_ref()
        .map(|p| MetricsLog::open(p, args.resume))
        .transpose()?;
    let save = |net: &dyn Classifier<f32>, opt: &dyn Optimizer<f32>, step: u64| -> Result<()> {
        if let Some(path) = &args.checkpoint {
            let meta = CheckpointMeta::new(net.label(), step).with_extra(identity.clone());
            save_checkpoint(path, net, Some(opt), &meta)?;
        }
        Ok(())
    };
    let interrupted = interrupt_flag();
    let request = OutputRequest {
        heads: HeadMode::Auto,
        features: Vec::new(),
    };
    let mut outcome = TrainOutcome {
        steps: step,
        last_loss: f64::NAN,
        held_out: None,
        interrupted: false,
    };
    let first_epoch = (step / spe) as usize;
    for epoch in first_epoch..args.epochs {
        let config = BatchConfig {
            batch_size: args.batch,
            shuffle: true,
            drop_last: true,
            seed: args.seed,
        };
        let skip = (step - epoch as u64 * spe) as usize;
        let pb = bar(spe, &format!("epoch {}/{}", epoch + 1, args.epochs));
        pb.set_position(skip as u64);
        let started = Instant::now();
        let (mut seen, mut loss_sum, mut acc_sum) = (0usize, 0.0, 0.0);
        for batch in Batches::new(&*data.train, &config, epoch as u64)?.skip(skip) {
            let batch = batch?;
            let lr = schedule.lr(step);
            opt.set_lr(lr);
            let mut cx =
                Ctx::new().with_seed(args.seed.wrapping_mul(0x9e37_79b9).wrapping_add(step));
            let x = cx.input(batch.images);
            let outputs = net.forward_outputs(&mut cx, x, &request)?;
            let acc = accuracy(cx.value(outputs.logits)?, &batch.labels)?;
            let loss = combined_loss(&mut cx, &outputs, &batch.labels)?.total;
            let grads = cx.backward(loss)?;
            let loss_value = grads.loss().unwrap_or(f64::NAN);
            opt.step(&mut *net, &grads)?;
            step += 1;
            seen += batch.labels.len();
            loss_sum += loss_value;
            acc_sum += acc;
            outcome.last_loss = loss_value;
            outcome.steps = step;
            if let Some(log) = log.as_mut() {
                log.row(step, epoch, loss_value, acc, lr)
                    .map_err(CliError::io(
                        "write log",
                        args.log
                            .as_ref()
                            .map_or(String::new(), |p| p.display().to_string()),
                    ))?;
            }
            let done = (step - epoch as u64 * spe) as f64;
            pb.set_position(done as u64);
            pb.set_message(format!(
                "loss {:.4} acc {:.3} {:.0} img/s",
                loss_sum / (done - skip as f64).max(1.0),
                acc_sum / (done - skip as f64).max(1.0),
                seen as f64 / started.elapsed().as_secs_f64().max(1e-9)
            ));
            if interrupted.load(Ordering::SeqCst) {
                pb.finish_and_clear();
                save(&*net, &*opt, step)?;
                if let Some(log) = log.as_mut() {
                    log.out
                        .flush()
                        .map_err(CliError::io("write log", "metrics log"))?;
                }
                eprintln!("interrupted at step {step}; checkpoint saved, continue with --resume");
                outcome.interrupted = true;
                return Ok(outcome);
            }
        }
        pb.finish_and_clear();
        save(&*net, &*opt, step)?;
        let (vl, va) = evaluate(&mut *net, &*data.val, args.batch)?;
        outcome.held_out = Some((vl, va));
        let n = (spe as usize - skip).max(1) as f64;
        println!(
            "epoch {}/{}: train loss {:.4}, train acc {:.3}, held-out loss {vl:.4}, held-out acc {va:.3}",
            epoch + 1,
            args.epochs,
            loss_sum / n,
            acc_sum / n
        );
    }
    if let Some(log) = log.as_mut() {
        log.out
            .flush()
            .map_err(CliError::io("write log", "metrics log"))?;
    }
    Ok(outcome)
}

/// `gradlab train`.
///
/// # Errors
/// As [`train`].
pub fn run(args: &TrainArgs) -> Result<()> {
    let o = train(args)?;
    if !o.interrupted {
        println!("final: step {}, last batch loss {:?}", o.steps, o.last_loss);
        if let Some((l, a)) = o.held_out {
            println!("held-out: loss {l:?}, accuracy {a:?}");
        }
    }
    Ok(())
}
