//! A training run with diagnostics on, built on the [`Trainer`]: the
//! recorder sees every step between backward and update, held-out checks
//! measure the gradient SNR at fixed parameters, and the data probe and the
//! label-shuffle control run when asked; the history can be streamed to a
//! `gradlab-history` file as it goes. Any other loop can do the same with a
//! [`ModelRecorder`] (or gradlab-diag's `Recorder`) and
//! [`gradlab_diag::diagnose`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use gradlab_arch::{Classifier, LayerKind};
use gradlab_data::{Dataset, ShuffledLabels};
use gradlab_diag::gradient_noise::{gradient_snr, mean_gradient_cosine};
use gradlab_diag::probe::{data_probe, ProbeOptions, ProbeResult};
use gradlab_diag::{diagnose_with, CheckRecord, DiagnoseOptions, Diagnosis, History, RunInfo};
use gradlab_nn::{ActivationKind, GradMap, HasParams};
use gradlab_tensor::Tensor;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::batches::BatchStream;
use crate::error::{Result, TrainError};
use crate::evaluate::evaluate;
use crate::optimizer::OptimizerSpec;
use crate::record::{ModelRecorder, RecorderOptions};
use crate::step::{forward_backward, step_seed, Trainer};

/// Builds a network; the depth control's reference is made by one.
pub type BuildModel =
    Arc<dyn Fn() -> std::result::Result<Box<dyn Classifier<f32>>, String> + Send + Sync>;

/// The depth control's reference network: the residual twin of a plain
/// network, or the same family at a much smaller depth. It trains for the
/// same steps, with the same optimizer, batches and seed, and its training
/// loss is compared with the run's (the `degradation` verdict).
#[derive(Clone)]
pub struct DepthReference {
    /// What it is (e.g. its model SPEC), quoted in the reasons.
    pub name: String,
    /// Makes a fresh reference network.
    pub build: BuildModel,
}

impl fmt::Debug for DepthReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DepthReference")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Two references are the same when they have the same name.
impl PartialEq for DepthReference {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// Settings of a diagnosed run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Training steps.
    pub steps: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// The optimizer and its learning rate.
    pub optimizer: OptimizerSpec,
    /// Seed of batching, dropout and the shuffle control's permutation.
    pub seed: u64,
    /// Number of held-out checks, spread evenly over the run.
    pub checks: usize,
    /// Batches `k` for the gradient SNR and train/held-out cosine at each check (0: skip).
    pub snr_batches: usize,
    /// Largest number of examples evaluated at a check (per split).
    pub eval_examples: usize,
    /// Run the data probe.
    pub probe: bool,
    /// Run the label-shuffle control (a second run on permuted labels).
    pub shuffle_control: bool,
    /// Run the depth control (a reference network on the same data).
    pub depth_control: Option<DepthReference>,
    /// What the recorder looks at.
    pub recorder: RecorderOptions,
    /// How the verdict is reached.
    pub diagnose: DiagnoseOptions,
    /// Stream the history to this `gradlab-history` file while training.
    pub history_file: Option<PathBuf>,
    /// What the run is, for the history's run line (`source`, `model`,
    /// `data`); the class counts, positions, activation and batch size are
    /// filled in by the run.
    pub run_info: RunInfo,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            steps: 200,
            batch_size: 64,
            optimizer: OptimizerSpec::sgd(0.05),
            seed: 0,
            checks: 6,
            snr_batches: 8,
            eval_examples: 512,
            probe: true,
            shuffle_control: false,
            depth_control: None,
            recorder: RecorderOptions {
                forward_stats_every: 10,
                ..Default::default()
            },
            diagnose: DiagnoseOptions::default(),
            history_file: None,
            run_info: RunInfo::default(),
        }
    }
}

/// Where a run is, for progress display.
#[derive(Debug, Clone, PartialEq)]
pub struct RunProgress {
    /// `"train"`, `"init"`, `"shuffle-control"`, `"depth-control"` or `"probe"`.
    pub phase: &'static str,
    /// Steps done in this phase.
    pub step: usize,
    /// Steps in this phase.
    pub total: usize,
    /// Latest mini-batch loss.
    pub loss: f64,
}

/// A diagnosed run: the verdict and everything behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosedRun {
    /// The diagnosis over the run's last window.
    pub diagnosis: Diagnosis,
    /// The full record.
    pub history: History,
}

fn flatten(grads: &GradMap<f32>) -> Vec<f32> {
    grads
        .iter()
        .flat_map(|(_, g)| g.as_slice().iter().copied())
        .collect()
}

/// Gradients of `k` batches at fixed parameters, with BatchNorm's running
/// statistics restored afterwards so the measurement leaves no trace.
fn fixed_point_gradients<M: Classifier<f32> + ?Sized>(
    model: &mut M,
    data: &dyn Dataset,
    k: usize,
    batch_size: usize,
    seed: u64,
) -> Result<Vec<Vec<f32>>> {
    let mut saved: Vec<Tensor<f32>> = Vec::new();
    model.visit_params(&mut |p| {
        if !p.is_trainable() {
            saved.push(p.value().clone());
        }
    });
    let mut stream = BatchStream::new(data, batch_size.min(data.len()), seed)?;
    let mut out = Vec::with_capacity(k);
    let mut result = Ok(());
    for j in 0..k {
        match stream
            .next_batch()
            .and_then(|b| forward_backward(model, b.images, &b.labels, seed ^ j as u64, false))
        {
            Ok(pass) => out.push(flatten(&pass.grads)),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let mut it = saved.into_iter();
    let mut restore = Ok(());
    model.visit_params_mut(&mut |p| {
        if !p.is_trainable() {
            if let Some(v) = it.next() {
                if let Err(e) = p.set_value(v) {
                    restore = Err(e);
                }
            }
        }
    });
    result?;
    restore?;
    Ok(out)
}

fn check_steps(steps: usize, checks: usize) -> Vec<usize> {
    if checks == 0 || steps == 0 {
        return Vec::new();
    }
    let mut v: Vec<usize> = (1..=checks)
        .map(|i| (i * steps).div_ceil(checks) - 1)
        .collect();
    v.dedup();
    v
}

/// Flattened images of the first `limit` examples as rows.
fn design_matrix(data: &dyn Dataset, limit: usize) -> Result<(Array2<f32>, Vec<usize>)> {
    let n = data.len().min(limit);
    let [c, h, w] = data.input_shape();
    let d = c * h * w;
    let mut x = Array2::<f32>::zeros((n, d));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let ex = data.get(i)?;
        x.row_mut(i)
            .as_slice_mut()
            .expect("row-major")
            .copy_from_slice(ex.image.as_slice());
        y.push(ex.label);
    }
    Ok((x, y))
}

/// Runs gradlab-diag's data probe (default options) on the flattened
/// examples of two datasets; `None` when either is empty.
///
/// # Errors
/// Data errors; probe errors (a label out of range).
pub fn probe_datasets(
    train: &dyn Dataset,
    val: &dyn Dataset,
    num_classes: usize,
) -> Result<Option<ProbeResult>> {
    let opts = ProbeOptions::default();
    let (tx, ty) = design_matrix(train, opts.max_train)?;
    let (vx, vy) = design_matrix(val, opts.max_val)?;
    if ty.is_empty() || vy.is_empty() {
        return Ok(None);
    }
    Ok(Some(data_probe(
        tx.view(),
        &ty,
        vx.view(),
        &vy,
        num_classes,
        &opts,
    )?))
}

/// A recorder for `model`'s run on `train`: depth positions at the block
/// outputs, dead and saturated units counted on the outputs of the
/// network's activation layers (of the configured kind, or of its most
/// common one), the run line filled in, streaming when asked.
fn prepare_recorder<M: Classifier<f32> + ?Sized>(
    model: &M,
    train: &dyn Dataset,
    config: &RunConfig,
) -> Result<ModelRecorder> {
    let k = train.num_classes();
    let mut recorder_options = config.recorder.clone();
    if recorder_options.positions.is_empty() {
        recorder_options.positions = model.block_names();
    }
    // Dead and saturated units are counted on the non-linearities' outputs
    // only, and the non-linearity is the network's own when not given.
    let activations: Vec<(String, ActivationKind)> = model
        .layers()
        .into_iter()
        .filter_map(|l| match l.kind {
            LayerKind::Activation(kind) => Some((l.name, kind)),
            _ => None,
        })
        .collect();
    if recorder_options.activation.is_none() {
        recorder_options.activation = most_common(activations.iter().map(|(_, k)| *k));
    }
    if recorder_options.unit_taps.is_empty() {
        if let Some(kind) = recorder_options.activation {
            recorder_options.unit_taps = activations
                .into_iter()
                .filter(|(_, k)| *k == kind)
                .map(|(name, _)| name)
                .collect();
        }
    }
    let mut recorder = ModelRecorder::new(recorder_options, k);
    let counts = {
        let mut c = vec![0usize; k];
        for i in 0..train.len() {
            let y = train.label(i)?;
            if y < k {
                c[y] += 1;
            }
        }
        c
    };
    recorder.set_run_info(RunInfo {
        class_counts: Some(counts),
        batch_size: Some(config.batch_size),
        ..config.run_info.clone()
    });
    if let Some(path) = &config.history_file {
        recorder.stream_to(path)?;
    }

    Ok(recorder)
}

/// Trains a fresh model from `make_model` on `train` for `config.steps`
/// steps with diagnostics on, checks it on `val`, optionally runs the data
/// probe and the label-shuffle control, and diagnoses the run.
///
/// Depth positions default to the network's block outputs; dead and
/// saturated units are counted on the outputs of its activation layers
/// (of the recorder's `activation`, or of the network's most common one
/// when that is not given); networks with auxiliary heads train on the
/// combined loss. With [`RunConfig::history_file`] the history is written
/// to that file line by line as the run goes (the probe and the shuffle
/// control when they are done).
///
/// # Errors
/// [`TrainError::Model`] when the factory fails; training, data and recording
/// errors. A step whose loss or gradients are not finite ends training
/// early (it is recorded, and the diagnosis says `exploding`).
pub fn run_diagnosed<M, E>(
    make_model: &dyn Fn() -> std::result::Result<M, E>,
    train: &dyn Dataset,
    val: &dyn Dataset,
    config: &RunConfig,
    progress: &mut dyn FnMut(&RunProgress),
) -> Result<DiagnosedRun>
where
    M: Classifier<f32>,
    E: std::fmt::Display,
{
    let build = || {
        make_model().map_err(|e| TrainError::Model {
            reason: e.to_string(),
        })
    };
    let k = train.num_classes();
    let mut model = build()?;
    let mut recorder = prepare_recorder(&model, train, config)?;

    let mut trainer = Trainer::new(&config.optimizer, config.seed)?.with_taps(true);
    let mut stream = BatchStream::new(train, config.batch_size, config.seed)?;
    let checks = check_steps(config.steps, config.checks);
    for step in 0..config.steps {
        let mut non_finite = false;
        let out = trainer.step_observed(&mut model, stream.next_batch()?, &mut |model, pass| {
            let tap_grads = pass
                .tap_grads
                .as_ref()
                .expect("the trainer keeps tap gradients");
            let record = recorder.record(
                step,
                &*model,
                &pass.cx,
                &pass.grads,
                tap_grads,
                Some(pass.accuracy),
            )?;
            non_finite = record.non_finite;
            if checks.contains(&step) && !non_finite {
                // At the parameters the step's gradients were taken at.
                let check = held_out_check(model, train, val, config, step)?;
                recorder.add_check(check)?;
            }
            Ok(())
        })?;
        progress(&RunProgress {
            phase: "train",
            step: step + 1,
            total: config.steps,
            loss: out.loss,
        });
        if non_finite || out.non_finite.is_some() {
            break;
        }
    }

    if config.probe {
        progress(&RunProgress {
            phase: "probe",
            step: 0,
            total: 1,
            loss: f64::NAN,
        });
        if let Some(probe) = probe_datasets(train, val, k)? {
            recorder.set_probe(probe)?;
        }
    }

    if config.shuffle_control {
        let shuffled = ShuffledLabels::new(train, config.seed ^ 0x5eed_5eed);
        let mut control = build()?;
        let losses = control_losses(&mut control, &shuffled, config, "shuffle-control", progress)?;
        recorder.set_shuffle_control(losses)?;
    }

    if let Some(reference) = &config.depth_control {
        let mut net = (reference.build)().map_err(|reason| TrainError::Model {
            reason: format!("the depth control's reference {}: {reason}", reference.name),
        })?;
        let losses = control_losses(&mut net, train, config, "depth-control", progress)?;
        recorder.set_depth_control(reference.name.clone(), losses)?;
    }

    let history = recorder.into_history();
    let diagnosis = diagnose_with(&history, &config.diagnose)?;
    Ok(DiagnosedRun { diagnosis, history })
}

/// Diagnoses a fresh network from `make_model` at initialisation, without
/// training: `batches` training batches (of `config.batch_size`, drawn with
/// `config.seed`) go forward and backward through the same initial
/// parameters, the recorder takes each one's depth profile (recorded as
/// steps `0..batches`), and the verdict is reached with
/// [`DiagnoseOptions::at_init`]: over all of them, by the numerics and
/// gradient-flow gates alone. This is the tool for claims about
/// initialisation; the window of a trained run describes the network after
/// its updates.
///
/// # Errors
/// [`TrainError::Spec`] when `batches` is 0; as [`run_diagnosed`].
pub fn diagnose_at_init<M, E>(
    make_model: &dyn Fn() -> std::result::Result<M, E>,
    train: &dyn Dataset,
    config: &RunConfig,
    batches: usize,
    progress: &mut dyn FnMut(&RunProgress),
) -> Result<DiagnosedRun>
where
    M: Classifier<f32>,
    E: std::fmt::Display,
{
    if batches == 0 {
        return Err(TrainError::Spec(
            "a diagnosis at initialisation needs at least 1 batch".into(),
        ));
    }
    let mut model = make_model().map_err(|e| TrainError::Model {
        reason: e.to_string(),
    })?;
    let mut recorder = prepare_recorder(&model, train, config)?;
    let mut stream = BatchStream::new(train, config.batch_size, config.seed)?;
    for j in 0..batches {
        let batch = stream.next_batch()?;
        let pass = forward_backward(
            &mut model,
            batch.images,
            &batch.labels,
            step_seed(config.seed, j as u64),
            true,
        )?;
        let tap_grads = pass
            .tap_grads
            .as_ref()
            .expect("forward_backward keeps tap gradients when asked");
        let record = recorder.record(
            j,
            &model,
            &pass.cx,
            &pass.grads,
            tap_grads,
            Some(pass.accuracy),
        )?;
        let non_finite = record.non_finite;
        progress(&RunProgress {
            phase: "init",
            step: j + 1,
            total: batches,
            loss: pass.loss,
        });
        if non_finite {
            break;
        }
    }
    let history = recorder.into_history();
    let options = DiagnoseOptions {
        at_init: true,
        ..config.diagnose.clone()
    };
    let diagnosis = diagnose_with(&history, &options)?;
    Ok(DiagnosedRun { diagnosis, history })
}

/// Trains a control network (`model`) on `data` with the run's optimizer,
/// batch size and seed, and returns its per-step training losses (up to
/// the first non-finite one).
fn control_losses(
    model: &mut dyn Classifier<f32>,
    data: &dyn Dataset,
    config: &RunConfig,
    phase: &'static str,
    progress: &mut dyn FnMut(&RunProgress),
) -> Result<Vec<(usize, f64)>> {
    let mut trainer = Trainer::new(&config.optimizer, config.seed)?;
    let mut stream = BatchStream::new(data, config.batch_size, config.seed)?;
    let mut losses = Vec::with_capacity(config.steps);
    for step in 0..config.steps {
        let out = trainer.step(model, stream.next_batch()?)?;
        losses.push((step, out.loss));
        progress(&RunProgress {
            phase,
            step: step + 1,
            total: config.steps,
            loss: out.loss,
        });
        if out.non_finite.is_some() {
            break;
        }
    }
    Ok(losses)
}

fn held_out_check<M: Classifier<f32> + ?Sized>(
    model: &mut M,
    train: &dyn Dataset,
    val: &dyn Dataset,
    config: &RunConfig,
    step: usize,
) -> Result<CheckRecord> {
    let on_train = evaluate(model, train, config.batch_size, Some(config.eval_examples))?;
    let on_val = evaluate(model, val, config.batch_size, Some(config.eval_examples))?;
    let (mut snr, mut train_val_cos) = (None, None);
    if config.snr_batches >= 2 {
        let seed = config.seed ^ (0xc4ec_0000 + step as u64);
        let tg = fixed_point_gradients(model, train, config.snr_batches, config.batch_size, seed)?;
        snr = gradient_snr(&tg).ok();
        if !val.is_empty() {
            let vg =
                fixed_point_gradients(model, val, config.snr_batches, config.batch_size, seed)?;
            train_val_cos = mean_gradient_cosine(&tg, &vg).ok();
        }
    }
    Ok(CheckRecord {
        step,
        train_loss: on_train.loss,
        train_accuracy: on_train.accuracy,
        val_loss: (on_val.examples > 0).then_some(on_val.loss),
        val_accuracy: (on_val.examples > 0).then_some(on_val.accuracy),
        val_examples: on_val.examples,
        snr,
        train_val_cos,
    })
}

/// The most frequent item (the first one among ties).
fn most_common(items: impl Iterator<Item = ActivationKind>) -> Option<ActivationKind> {
    let mut counts: Vec<(ActivationKind, usize)> = Vec::new();
    for item in items {
        match counts.iter_mut().find(|(k, _)| *k == item) {
            Some((_, n)) => *n += 1,
            None => counts.push((item, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts.into_iter().find(|(_, n)| *n == best).map(|(k, _)| k)
}

/// Everything trainable as one vector; used by tests and reports.
pub fn flat_params(model: &dyn HasParams<f32>) -> Vec<f32> {
    let mut out = Vec::new();
    model.visit_params(&mut |p| {
        if p.is_trainable() {
            out.extend_from_slice(p.value().as_slice());
        }
    });
    out
}
