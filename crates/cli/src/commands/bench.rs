//! `gradlab bench`: the time of one training step (forward, cross-entropy,
//! backward, optimizer update) of a model on random data, its split, the
//! throughput and the peak resident memory; data-parallel over `--ranks N`
//! threads of one process, or over the processes of an MPI job, to measure
//! how training scales.

use std::path::PathBuf;
use std::time::Instant;

use gradlab_data::Batch;
use gradlab_dist::{run_ranks, Communicator, LocalComm};
use gradlab_nn::HasParams;
use gradlab_tensor::Tensor;
use gradlab_train::{broadcast_model, OptimizerKind, OptimizerSpec, Trainer};
use serde::Serialize;

use crate::commands::summary::parse_shape;
use crate::error::{CliError, Result};
use crate::model_spec::build_model;
use crate::output::write_json;
use crate::ranks::threads_per_rank;

/// The options of `gradlab bench`.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// Model SPEC.
    pub model: String,
    /// Images per step.
    pub batch: usize,
    /// Input shape `CxHxW`.
    pub input: String,
    /// Number of classes of the random labels.
    pub classes: usize,
    /// Timed steps.
    pub steps: usize,
    /// Untimed steps before them (buffers, caches, thread pool).
    pub warmup: usize,
    /// SGD (lr 0.01, momentum 0.9, weight decay 5e-4), Adam or AdamW (lr 0.001).
    pub optimizer: OptimizerKind,
    /// Seed of the weights, images and labels.
    pub seed: u64,
    /// Where to write the report as JSON.
    pub json: Option<PathBuf>,
    /// Data-parallel ranks as threads of this process (1: no data
    /// parallelism); each computes with its share of the pool's threads.
    pub ranks: usize,
}

/// Median milliseconds of each part of a step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepSplit {
    /// Building the graph: forward pass and loss.
    pub forward_ms: f64,
    /// `Ctx::backward`: the gradients of every parameter.
    pub backward_ms: f64,
    /// The optimizer update.
    pub update_ms: f64,
}

/// What `gradlab bench` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// The model SPEC.
    pub model: String,
    /// The network's label (`resnet-20`).
    pub label: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Images per step (the global batch over all ranks).
    pub batch: usize,
    /// Data-parallel ranks.
    pub ranks: usize,
    /// Images per step on each rank.
    pub per_rank_batch: usize,
    /// Input shape `[C, H, W]`.
    pub input: [usize; 3],
    /// Optimizer name.
    pub optimizer: String,
    /// Threads of the pool the kernels run on (of each rank).
    pub threads: usize,
    /// Untimed steps before the timed ones.
    pub warmup_steps: usize,
    /// Timed steps.
    pub steps: usize,
    /// Median milliseconds per whole step (forward, backward, the
    /// all-reduce of the gradients on several ranks, update, and freeing
    /// the step's graph), on rank 0.
    pub ms_per_step: f64,
    /// Fastest step, milliseconds.
    pub min_ms_per_step: f64,
    /// Slowest step, milliseconds.
    pub max_ms_per_step: f64,
    /// Median processor time of the whole process per step, milliseconds
    /// (all threads together; about `threads x ms_per_step` when every
    /// thread is busy, and less sensitive than the wall time to other
    /// programs on the machine); `None` where it cannot be read.
    pub cpu_ms_per_step: Option<f64>,
    /// `batch / median step time`: images of the global batch per second.
    pub images_per_second: f64,
    /// Median of each part.
    pub split: StepSplit,
    /// Every timed step, milliseconds, in order.
    pub step_ms: Vec<f64>,
    /// Peak resident memory of the process (`VmHWM`), bytes; `None` where
    /// the system does not report it.
    pub peak_memory_bytes: Option<u64>,
    /// The loss of the last step (a sanity check: finite).
    pub last_loss: f64,
}

/// The peak resident set size of this process (`VmHWM` in
/// `/proc/self/status`), in bytes; `None` where it cannot be read.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut parts = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => value.checked_mul(1024),
        _ => None,
    }
}

/// Processor time used by this process so far (every thread), in
/// milliseconds; `None` where it cannot be read.
pub fn process_cpu_ms() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec through the pointer,
        // which points to a live local.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        (rc == 0).then(|| ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The median of the timings (NaN for none).
fn median(values: &[f64]) -> f64 {
    gradlab_diag::stats::median(values).unwrap_or(f64::NAN)
}

/// The optimizer a benchmark step updates with: the settings of a CIFAR
/// ResNet run for SGD, the defaults for Adam.
fn bench_optimizer(kind: OptimizerKind) -> OptimizerSpec {
    match kind {
        OptimizerKind::Sgd => OptimizerSpec::sgd(0.01).with_weight_decay(5e-4),
        other => OptimizerSpec::new(other, 1e-3),
    }
}

/// Runs the benchmark: on `args.ranks` thread ranks of this process, each
/// with its share of the pool's threads (one process when `ranks` is 1).
///
/// # Errors
/// Usage errors (exit code 2) for zero batch, steps, classes or ranks, a
/// batch the ranks cannot split, a bad shape, model SPEC or optimizer; run
/// errors from the model (a non-finite loss).
pub fn bench(args: &BenchArgs) -> Result<BenchReport> {
    if args.ranks == 0 {
        return Err(CliError::Usage("bench: --ranks must be at least 1".into()));
    }
    if args.ranks == 1 {
        return bench_on(args, &LocalComm);
    }
    let threads = threads_per_rank(args.ranks).min(rayon::current_num_threads());
    let reports = run_ranks(args.ranks, |comm| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| CliError::Run(format!("bench: thread pool: {e}")))?;
        pool.install(move || bench_on(args, &comm))
    })
    .map_err(|e| CliError::Run(e.to_string()))?;
    reports
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(CliError::Run("bench: no rank ran".into())))
}

/// Runs the benchmark on the ranks of `comm` (`args.ranks` is not used):
/// `args.batch` is the global batch, each rank steps on its slice of it,
/// and the report is rank 0's view (every rank waits for the others in the
/// all-reduce of each step).
///
/// # Errors
/// As [`bench`], on every rank alike.
pub fn bench_on(args: &BenchArgs, comm: &dyn Communicator) -> Result<BenchReport> {
    if args.batch == 0 || args.steps == 0 {
        return Err(CliError::Usage(
            "bench: --batch and --steps must be at least 1".into(),
        ));
    }
    if args.classes < 2 {
        return Err(CliError::Usage(format!(
            "bench: --classes {}: a classifier needs at least 2 classes",
            args.classes
        )));
    }
    if let Some(path) = args.json.as_ref().filter(|_| comm.rank() == 0) {
        crate::output::check_output(path)?;
    }
    let (rank, size) = (comm.rank(), comm.size());
    if !args.batch.is_multiple_of(size) {
        return Err(CliError::Usage(format!(
            "bench: --batch {} is the global batch and must be a multiple of the {size} ranks",
            args.batch
        )));
    }
    let per_rank = args.batch / size;
    let shape = parse_shape(&args.input)?;
    let image: f64 = shape.iter().map(|&v| v as f64).product();
    crate::commands::summary::check_memory("bench: the batch", image * args.batch as f64, 64.0)?;
    let mut net = build_model(&args.model, shape, args.classes, args.seed)?.net;
    broadcast_model(&mut *net, comm)?;
    let mut trainer = Trainer::new(&bench_optimizer(args.optimizer), args.seed)?;
    let [c, h, w] = shape;
    let images = Tensor::<f32>::rand_normal(&[args.batch, c, h, w], 0.0, 1.0, args.seed ^ 0x1)?;
    let labels: Vec<usize> =
        Tensor::<f64>::rand_uniform(&[args.batch], 0.0, args.classes as f64, args.seed ^ 0x2)?
            .as_slice()
            .iter()
            .map(|&u| (u as usize).min(args.classes - 1))
            .collect();
    // This rank's slice of the global batch.
    let image_len = c * h * w;
    let images = Tensor::from_vec(
        &[per_rank, c, h, w],
        images.as_slice()[rank * per_rank * image_len..(rank + 1) * per_rank * image_len].to_vec(),
    )?;
    let labels = labels[rank * per_rank..(rank + 1) * per_rank].to_vec();
    let (mut fwd, mut bwd, mut upd, mut total, mut cpu) = (vec![], vec![], vec![], vec![], vec![]);
    let mut last_loss = f64::NAN;
    for step in 0..args.warmup + args.steps {
        let batch = Batch {
            images: images.clone(),
            labels: labels.clone(),
            indices: Vec::new(),
        };
        let c0 = process_cpu_ms();
        let t0 = Instant::now();
        let out = trainer
            .step_parallel(&mut *net, batch, comm, &mut |_, _| Ok(()))?
            .finite()?;
        let t4 = Instant::now();
        let c4 = process_cpu_ms();
        last_loss = out.loss;
        if step >= args.warmup {
            if let (Some(a), Some(b)) = (c0, c4) {
                cpu.push(b - a);
            }
            fwd.push(out.forward_ms);
            bwd.push(out.backward_ms);
            upd.push(out.update_ms);
            total.push((t4 - t0).as_secs_f64() * 1e3);
        }
    }
    let ms_per_step = median(&total);
    Ok(BenchReport {
        model: args.model.clone(),
        label: net.label(),
        parameters: net.num_trainable(),
        batch: args.batch,
        ranks: size,
        per_rank_batch: per_rank,
        input: shape,
        optimizer: args.optimizer.to_string(),
        threads: rayon::current_num_threads(),
        warmup_steps: args.warmup,
        steps: args.steps,
        ms_per_step,
        min_ms_per_step: total.iter().copied().fold(f64::INFINITY, f64::min),
        max_ms_per_step: total.iter().copied().fold(0.0, f64::max),
        cpu_ms_per_step: (cpu.len() == total.len()).then(|| median(&cpu)),
        images_per_second: args.batch as f64 / (ms_per_step / 1e3),
        split: StepSplit {
            forward_ms: median(&fwd),
            backward_ms: median(&bwd),
            update_ms: median(&upd),
        },
        step_ms: total,
        peak_memory_bytes: peak_memory_bytes(),
        last_loss,
    })
}

/// `gradlab bench`: prints the report and writes it as JSON when asked.
///
/// # Errors
/// As [`bench`]; file errors for `--json`.
pub fn run(args: &BenchArgs) -> Result<()> {
    report(args, bench(args)?)
}

/// `gradlab bench` on the ranks of `comm` (an MPI job); rank 0 prints.
///
/// # Errors
/// As [`bench_on`]; file errors for `--json`.
pub fn run_on(args: &BenchArgs, comm: &dyn Communicator) -> Result<()> {
    let r = crate::ranks::agree(comm, bench_on(args, comm))?;
    if comm.rank() == 0 {
        report(args, r)?;
    }
    Ok(())
}

/// Prints the report and writes it as JSON when asked.
fn report(args: &BenchArgs, r: BenchReport) -> Result<()> {
    let [c, h, w] = r.input;
    if r.ranks > 1 {
        println!(
            "ranks {}, per-rank batch {}, threads per rank {}",
            r.ranks, r.per_rank_batch, r.threads
        );
    }
    println!(
        "{} ({} parameters), batch {} of {c}x{h}x{w}, {}, {} threads",
        r.label, r.parameters, r.batch, r.optimizer, r.threads
    );
    println!(
        "{} timed steps after {} warm-up steps",
        r.steps, r.warmup_steps
    );
    println!(
        "step:     {:.1} ms median (min {:.1}, max {:.1}), {:.1} images/s",
        r.ms_per_step, r.min_ms_per_step, r.max_ms_per_step, r.images_per_second
    );
    println!(
        "split:    forward {:.1} ms, backward {:.1} ms, update {:.2} ms",
        r.split.forward_ms, r.split.backward_ms, r.split.update_ms
    );
    if let Some(cpu) = r.cpu_ms_per_step {
        println!("cpu:      {cpu:.1} ms per step (all threads)");
    }
    match r.peak_memory_bytes {
        Some(b) => println!("peak RSS: {:.1} MiB", b as f64 / (1024.0 * 1024.0)),
        None => println!("peak RSS: unavailable"),
    }
    if let Some(path) = &args.json {
        write_json(path, &r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_memory_is_read_on_linux() {
        let peak = peak_memory_bytes();
        if cfg!(target_os = "linux") {
            assert!(peak.is_some_and(|b| b > 0), "{peak:?}");
        }
    }
}
