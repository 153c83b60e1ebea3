//! The per-step [`Recorder`] and its [`StepBuilder`]: a training loop of any
//! framework hands over plain numbers (or slices it already has) once per
//! step, between the backward pass and the update, and gets a
//! [`StepRecord`] in the [`History`], optionally streamed to a history file
//! as it goes.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DiagError, Result};
use crate::history::{CheckRecord, DepthControl, History, RunInfo};
use crate::history_file::HistoryWriter;
use crate::probe::ProbeResult;
use crate::stats::{cosine, rms, sq_norm};

/// One parameterised layer at one step (its weight tensor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStat {
    /// The layer's dotted name (the parameter name without `.weight`).
    pub name: String,
    /// Depth index from input to output.
    pub index: usize,
    /// RMS of the weight gradient (I2): `‖∇θ L‖ / √numel` of the mean-loss gradient.
    #[serde(deserialize_with = "crate::history::nan_from_null")]
    pub grad_rms: f64,
    /// RMS of the back-propagated gradient at the layer's output, per
    /// example (I3), when the layer taps its output.
    pub act_grad_rms: Option<f64>,
    /// RMS of the weight (I5).
    #[serde(deserialize_with = "crate::history::nan_from_null")]
    pub weight_rms: f64,
    /// `‖Δθ‖ / ‖θ‖` of the update applied since the previous record (I6).
    pub update_ratio: Option<f64>,
}

/// One depth position (a tapped activation) at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionStat {
    /// The tap name.
    pub name: String,
    /// RMS of the activation gradient, per example (the mean-loss gradient times the batch size).
    #[serde(deserialize_with = "crate::history::nan_from_null")]
    pub act_grad_rms: f64,
    /// Forward diversity ζ of the activation (I12), on steps with forward statistics.
    pub diversity: Option<f64>,
}

/// Everything recorded at one training step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step index.
    pub step: usize,
    /// Mini-batch training loss.
    #[serde(deserialize_with = "crate::history::nan_from_null")]
    pub loss: f64,
    /// Mini-batch training accuracy, when given.
    pub accuracy: Option<f64>,
    /// Parameterised layers, input to output.
    pub layers: Vec<LayerStat>,
    /// Depth positions, input to output.
    pub positions: Vec<PositionStat>,
    /// Global gradient norm.
    #[serde(deserialize_with = "crate::history::nan_from_null")]
    pub grad_norm: f64,
    /// Cosine between this step's gradient and the previous one's (I8).
    pub cos_previous: Option<f64>,
    /// Largest dead-unit fraction over ReLU-range taps (I11).
    pub dead_max: Option<f64>,
    /// Largest saturated-unit fraction over sigmoid/tanh-range taps (I11).
    pub saturated_max: Option<f64>,
    /// Whether the loss or a gradient was NaN or infinite.
    pub non_finite: bool,
}

/// Records one training run, step by step, from plain numbers.
///
/// Per step, [`Recorder::step`] opens a [`StepBuilder`]; the loop fills it
/// with what it has (gradient and weight slices per layer, or their RMS
/// directly; the activation-gradient RMS at each depth position) and
/// [`StepBuilder::finish`] checks and stores the record. The recorder keeps
/// what spans steps: the previous weights (for the update ratio) and the
/// previous gradient (for the successive cosine).
///
/// # Examples
/// A two-layer network trained by hand on plain `ndarray`, recorded and
/// diagnosed (see the crate docs for a deep sigmoid chain that vanishes).
/// ```
/// use gradlab_diag::{diagnose, Recorder};
/// use ndarray::Array2;
///
/// let mut recorder = Recorder::new(2);
/// let x = Array2::from_shape_fn((32, 4), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 11.0 - 0.5);
/// let y: Vec<usize> = (0..32).map(|i| usize::from(x[[i, 0]] + x[[i, 1]] > 0.0)).collect();
/// let mut w1 = Array2::from_shape_fn((4, 8), |(i, j)| ((i + 2 * j) % 5) as f32 * 0.2 - 0.4);
/// let mut w2 = Array2::from_shape_fn((8, 2), |(i, j)| ((3 * i + j) % 4) as f32 * 0.25 - 0.4);
/// for step in 0..40 {
///     // Forward: h = tanh(x W1), logits = h W2, softmax cross-entropy.
///     let h = x.dot(&w1).mapv(f32::tanh);
///     let logits = h.dot(&w2);
///     let mut dlogits = logits.clone();
///     let mut loss = 0.0;
///     for (i, mut row) in dlogits.rows_mut().into_iter().enumerate() {
///         let m = row.fold(f32::MIN, |a, &b| a.max(b));
///         row.mapv_inplace(|v| (v - m).exp());
///         let s = row.sum();
///         row.mapv_inplace(|v| v / s);
///         loss -= (row[y[i]] as f64).ln();
///         row[y[i]] -= 1.0;
///     }
///     let n = x.nrows() as f32;
///     dlogits /= n; // gradient of the mean loss
///     let loss = loss / n as f64;
///     // Backward by hand.
///     let g2 = h.t().dot(&dlogits);
///     let dh = dlogits.dot(&w2.t());
///     let dz = &dh * &h.mapv(|v| 1.0 - v * v);
///     let g1 = x.t().dot(&dz);
///     // Record between backward and update.
///     let mut s = recorder.step(step, loss);
///     s.layer("fc1", g1.as_slice().unwrap(), w1.as_slice().unwrap());
///     s.layer("fc2", g2.as_slice().unwrap(), w2.as_slice().unwrap());
///     s.position_gradient("hidden", dh.as_slice().unwrap(), 32);
///     s.position_gradient("logits", dlogits.as_slice().unwrap(), 32);
///     s.finish()?;
///     // Update.
///     w1 -= &(g1 * 0.5);
///     w2 -= &(g2 * 0.5);
/// }
/// let diagnosis = diagnose(recorder.history())?;
/// assert!(diagnosis.indicators.loss_drop.unwrap() > 0.0);
/// # Ok::<(), gradlab_diag::DiagError>(())
/// ```
pub struct Recorder {
    history: History,
    previous_weights: HashMap<String, Vec<f32>>,
    previous_grad: Option<Vec<f32>>,
    writer: Option<HistoryWriter>,
}

impl Recorder {
    /// A recorder for a `num_classes`-way classification run.
    pub fn new(num_classes: usize) -> Self {
        Recorder {
            history: History::new(num_classes),
            previous_weights: HashMap::new(),
            previous_grad: None,
            writer: None,
        }
    }

    /// Sets what the run is (class counts set the chance loss).
    pub fn set_run_info(&mut self, run: RunInfo) {
        if let Some(counts) = run.class_counts.clone() {
            self.history.set_class_prior(&counts);
        }
        self.history.run = run;
    }

    /// Streams the history to a `gradlab-history` file at `path` from now
    /// on: the run line and everything recorded so far at once, then every
    /// step, check, probe and shuffle-control loss as it is recorded, one
    /// flushed line each (a killed run keeps every complete line). Set the
    /// run information and class counts first: the run line is written now.
    ///
    /// # Errors
    /// [`DiagError::Io`] when the file cannot be created or written;
    /// [`DiagError::InvalidValue`] for fewer than two classes.
    pub fn stream_to(&mut self, path: impl AsRef<Path>) -> Result<()> {
        self.writer = Some(HistoryWriter::create(path, &self.history)?);
        Ok(())
    }

    /// Opens the record of step `step` with its mini-batch loss (NaN or
    /// infinite for a step that blew up).
    pub fn step(&mut self, step: usize, loss: f64) -> StepBuilder<'_> {
        StepBuilder {
            recorder: self,
            record: StepRecord {
                step,
                loss,
                accuracy: None,
                layers: Vec::new(),
                positions: Vec::new(),
                grad_norm: f64::NAN,
                cos_previous: None,
                dead_max: None,
                saturated_max: None,
                non_finite: false,
            },
            gradient: None,
            layer_gradient: Vec::new(),
            grad_norm: None,
            cos_previous: None,
            weights: Vec::new(),
        }
    }

    /// Adds a held-out check (streamed when streaming).
    ///
    /// # Errors
    /// [`DiagError::Io`] when the history file cannot be written.
    pub fn add_check(&mut self, check: CheckRecord) -> Result<()> {
        if let Some(w) = &mut self.writer {
            w.check(&check)?;
        }
        self.history.checks.push(check);
        Ok(())
    }

    /// Sets the data probe's result (streamed when streaming).
    ///
    /// # Errors
    /// [`DiagError::Io`] when the history file cannot be written.
    pub fn set_probe(&mut self, probe: ProbeResult) -> Result<()> {
        if let Some(w) = &mut self.writer {
            w.probe(&probe)?;
        }
        self.history.probe = Some(probe);
        Ok(())
    }

    /// Sets the label-shuffle control's `(step, mini-batch loss)` pairs
    /// (streamed when streaming).
    ///
    /// # Errors
    /// [`DiagError::Io`] when the history file cannot be written.
    pub fn set_shuffle_control(&mut self, losses: Vec<(usize, f64)>) -> Result<()> {
        if let Some(w) = &mut self.writer {
            for &(step, loss) in &losses {
                w.shuffle_control(step, loss)?;
            }
        }
        self.history.shuffle_control = Some(losses);
        Ok(())
    }

    /// Sets the depth control: the reference `model` and its `(step,
    /// mini-batch loss)` pairs (streamed when streaming).
    ///
    /// # Errors
    /// [`DiagError::Io`] when the history file cannot be written.
    pub fn set_depth_control(&mut self, model: String, losses: Vec<(usize, f64)>) -> Result<()> {
        if let Some(w) = &mut self.writer {
            for &(step, loss) in &losses {
                w.depth_control(&model, step, loss)?;
            }
        }
        self.history.depth_control = Some(DepthControl { model, losses });
        Ok(())
    }

    /// The history so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The history, mutable. Changes made here are not streamed: use
    /// [`Recorder::add_check`], [`Recorder::set_probe`] and
    /// [`Recorder::set_shuffle_control`] when streaming.
    pub fn history_mut(&mut self) -> &mut History {
        &mut self.history
    }

    /// Finishes recording (the history file, if any, is complete and closed).
    pub fn into_history(self) -> History {
        self.history
    }
}

/// One step's record being filled; see [`Recorder`].
///
/// Layers are numbered from input to output in the order they are added,
/// positions likewise; both lists must be the same, in the same order, at
/// every step. The global gradient norm and the successive cosine come from
/// [`StepBuilder::gradient`] when given, else from the gradients passed to
/// [`StepBuilder::layer`], else [`StepBuilder::grad_norm`] must be set.
///
/// # Examples
/// From plain numbers, as a burn or candle loop computes them with its own
/// tensor ops (`(g * g).mean().sqrt()` of each weight gradient and weight;
/// the batch size times that of the gradient at each block output):
/// ```
/// use gradlab_diag::{diagnose, Recorder};
///
/// let mut recorder = Recorder::new(10);
/// for step in 0..20 {
///     // Numbers of a four-layer net whose gradients shrink 10x per layer
///     // towards the input.
///     let mut s = recorder.step(step, 2.30);
///     for l in 0..4 {
///         let grad_rms = 1e-2 * 10f64.powi(l - 3);
///         s.layer_rms(&format!("layer{l}"), grad_rms, 0.05).update_ratio = Some(1e-3);
///         s.position(&format!("block{l}"), 10.0 * grad_rms);
///     }
///     s.grad_norm(0.1).cos_previous(0.05);
///     s.finish()?;
/// }
/// let d = diagnose(recorder.history())?;
/// assert_eq!(d.verdict.as_str(), "vanishing");
/// assert!((d.indicators.kappa.unwrap() - 10f64.ln()).abs() < 1e-9);
/// # Ok::<(), gradlab_diag::DiagError>(())
/// ```
pub struct StepBuilder<'r> {
    recorder: &'r mut Recorder,
    record: StepRecord,
    gradient: Option<Vec<f32>>,
    layer_gradient: Vec<f32>,
    grad_norm: Option<f64>,
    cos_previous: Option<f64>,
    weights: Vec<(String, Vec<f32>)>,
}

impl StepBuilder<'_> {
    /// The mini-batch accuracy, in `[0, 1]`.
    pub fn accuracy(&mut self, accuracy: f64) -> &mut Self {
        self.record.accuracy = Some(accuracy);
        self
    }

    /// Appends a part of the full gradient (every trainable tensor, biases
    /// included, in the same order each step): its norm is the step's
    /// `grad_norm`, its cosine with the previous step's the `cos_previous`.
    pub fn gradient(&mut self, part: &[f32]) -> &mut Self {
        self.gradient
            .get_or_insert_with(Vec::new)
            .extend_from_slice(part);
        self
    }

    /// A layer from its weight gradient (of the mean loss) and weight
    /// values: gradient and weight RMS, and the update ratio against the
    /// weights this layer had at the previous step. Returns the stat to set
    /// more (`act_grad_rms`, `index`).
    pub fn layer(&mut self, name: &str, grad: &[f32], weight: &[f32]) -> &mut LayerStat {
        let update_ratio = self
            .recorder
            .previous_weights
            .get(name)
            .filter(|p| p.len() == weight.len())
            .map(|prev| update_ratio(prev, weight));
        self.layer_gradient.extend_from_slice(grad);
        self.weights.push((name.to_string(), weight.to_vec()));
        let stat = LayerStat {
            name: name.to_string(),
            index: self.record.layers.len(),
            grad_rms: rms(grad),
            act_grad_rms: None,
            weight_rms: rms(weight),
            update_ratio,
        };
        self.push_layer(stat)
    }

    /// A layer from plain numbers: the RMS of its weight gradient and of its
    /// weight. Set `update_ratio` (and `act_grad_rms`) on the returned stat
    /// when known.
    pub fn layer_rms(&mut self, name: &str, grad_rms: f64, weight_rms: f64) -> &mut LayerStat {
        let stat = LayerStat {
            name: name.to_string(),
            index: self.record.layers.len(),
            grad_rms,
            act_grad_rms: None,
            weight_rms,
            update_ratio: None,
        };
        self.push_layer(stat)
    }

    /// Adds a complete layer stat.
    pub fn push_layer(&mut self, stat: LayerStat) -> &mut LayerStat {
        self.record.layers.push(stat);
        self.record.layers.last_mut().expect("just pushed")
    }

    /// A depth position from plain numbers: the per-example RMS of the
    /// activation gradient, `B · ‖∂L/∂h‖ / √numel` for the mean loss over a
    /// batch of `B`. Set `diversity` on the returned stat when measured.
    pub fn position(&mut self, name: &str, act_grad_rms: f64) -> &mut PositionStat {
        self.record.positions.push(PositionStat {
            name: name.to_string(),
            act_grad_rms,
            diversity: None,
        });
        self.record.positions.last_mut().expect("just pushed")
    }

    /// A depth position from the gradient of the mean loss with respect to
    /// its activations `[B, ...]` (the per-example RMS is `B · rms`).
    pub fn position_gradient(
        &mut self,
        name: &str,
        grad: &[f32],
        batch: usize,
    ) -> &mut PositionStat {
        self.position(name, rms(grad) * batch.max(1) as f64)
    }

    /// The global gradient norm, when no gradient is passed.
    pub fn grad_norm(&mut self, norm: f64) -> &mut Self {
        self.grad_norm = Some(norm);
        self
    }

    /// The cosine with the previous step's gradient, when no gradient is passed.
    pub fn cos_previous(&mut self, cosine: f64) -> &mut Self {
        self.cos_previous = Some(cosine);
        self
    }

    /// The largest dead-unit fraction over the ReLU layers (I11).
    pub fn dead_max(&mut self, fraction: f64) -> &mut Self {
        self.record.dead_max = Some(fraction);
        self
    }

    /// The largest saturated-unit fraction over the sigmoid or tanh layers (I11).
    pub fn saturated_max(&mut self, fraction: f64) -> &mut Self {
        self.record.saturated_max = Some(fraction);
        self
    }

    /// Marks the step non-finite (a NaN or infinite loss or gradient also does).
    pub fn non_finite(&mut self, non_finite: bool) -> &mut Self {
        self.record.non_finite |= non_finite;
        self
    }
}

impl<'r> StepBuilder<'r> {
    /// Checks the record, stores it (and streams it), and returns it.
    ///
    /// # Errors
    /// [`DiagError::AllZeroGradients`] when every gradient is exactly zero
    /// (read after being zeroed: never diagnosed);
    /// [`DiagError::InvalidRecord`] for a step that does not come after the
    /// previous one, a negative RMS or ratio, a fraction or accuracy out of
    /// `[0, 1]`, a name used twice, layers or positions that differ from
    /// the previous step's, or no way to know the gradient norm;
    /// [`DiagError::Io`] when streaming fails (the record is kept).
    pub fn finish(self) -> Result<&'r StepRecord> {
        let StepBuilder {
            recorder,
            mut record,
            gradient,
            layer_gradient,
            grad_norm,
            cos_previous,
            weights,
        } = self;
        let step = record.step;
        let flat = gradient.or((!weights.is_empty()).then_some(layer_gradient));
        let all_zero = match &flat {
            Some(g) => g.iter().all(|&x| x == 0.0),
            None => !record.layers.is_empty() && record.layers.iter().all(|l| l.grad_rms == 0.0),
        };
        if all_zero {
            return Err(DiagError::AllZeroGradients {
                step,
                params: record.layers.len(),
            });
        }
        let mut measured_cos = None;
        let mut measured_norm = None;
        if let Some(flat) = &flat {
            measured_norm = Some(sq_norm(flat).sqrt());
            measured_cos = match &recorder.previous_grad {
                Some(prev) if prev.len() == flat.len() => cosine(prev, flat)?,
                _ => None,
            };
        }
        record.grad_norm = grad_norm
            .or(measured_norm)
            .ok_or_else(|| DiagError::InvalidRecord {
                step,
                field: "grad_norm".into(),
                reason: "not given: pass the gradient (gradient() or layer()) or set grad_norm()"
                    .into(),
            })?;
        record.cos_previous = cos_previous.or(measured_cos);
        record.non_finite |= !record.loss.is_finite() || !record.grad_norm.is_finite();
        check_record(&record, recorder.history.steps.last()).map_err(|(field, reason)| {
            DiagError::InvalidRecord {
                step,
                field,
                reason,
            }
        })?;

        if flat.is_some() {
            recorder.previous_grad = flat;
        }
        recorder.previous_weights.extend(weights);
        recorder.history.steps.push(record);
        let record = recorder.history.steps.last().expect("just pushed");
        if let Some(w) = &mut recorder.writer {
            w.step(record)?;
        }
        Ok(record)
    }
}

fn update_ratio(previous: &[f32], weight: &[f32]) -> f64 {
    let delta: f64 = weight
        .iter()
        .zip(previous)
        .map(|(&a, &b)| ((a - b) as f64).powi(2))
        .sum();
    let norm = sq_norm(weight);
    if norm > 0.0 {
        (delta / norm).sqrt()
    } else {
        0.0
    }
}

/// Checks one record against the rules of the history format, given the
/// previous record (the reader applies the same rules). Returns the field
/// and the reason of the first violation.
pub(crate) fn check_record(
    record: &StepRecord,
    previous: Option<&StepRecord>,
) -> std::result::Result<(), (String, String)> {
    let bad = |field: String, reason: String| Err((field, reason));
    if let Some(p) = previous {
        if record.step <= p.step {
            return bad(
                "step".into(),
                format!(
                    "{} does not come after the previous step {}",
                    record.step, p.step
                ),
            );
        }
    }
    let nonneg = |v: f64| v.is_nan() || v >= 0.0;
    let unit = |v: f64| v.is_nan() || (0.0..=1.0).contains(&v);
    if record.grad_norm < 0.0 {
        return bad(
            "grad_norm".into(),
            format!("{} is negative (a norm is >= 0)", record.grad_norm),
        );
    }
    if let Some(a) = record.accuracy.filter(|&a| !unit(a)) {
        return bad("accuracy".into(), format!("{a} is not in [0, 1]"));
    }
    if let Some(c) = record
        .cos_previous
        .filter(|&c| !(c.is_nan() || (-1.0..=1.0).contains(&c)))
    {
        return bad("cos_previous".into(), format!("{c} is not in [-1, 1]"));
    }
    for (field, v) in [
        ("dead_max", record.dead_max),
        ("saturated_max", record.saturated_max),
    ] {
        if let Some(v) = v.filter(|&v| !unit(v)) {
            return bad(field.into(), format!("{v} is not a fraction in [0, 1]"));
        }
    }
    for (i, l) in record.layers.iter().enumerate() {
        for (name, v) in [
            ("grad_rms", Some(l.grad_rms)),
            ("weight_rms", Some(l.weight_rms)),
            ("act_grad_rms", l.act_grad_rms),
            ("update_ratio", l.update_ratio),
        ] {
            if let Some(v) = v.filter(|&v| !nonneg(v)) {
                return bad(
                    format!("layers[{i}].{name}"),
                    format!("{v} is negative (an RMS or ratio is >= 0)"),
                );
            }
        }
        if record.layers[..i].iter().any(|o| o.name == l.name) {
            return bad(
                format!("layers[{i}].name"),
                format!("layer '{}' appears twice", l.name),
            );
        }
    }
    for (i, p) in record.positions.iter().enumerate() {
        for (name, v) in [
            ("act_grad_rms", Some(p.act_grad_rms)),
            ("diversity", p.diversity),
        ] {
            if let Some(v) = v.filter(|&v| !nonneg(v)) {
                return bad(
                    format!("positions[{i}].{name}"),
                    format!("{v} is negative (an RMS or diversity is >= 0)"),
                );
            }
        }
        if record.positions[..i].iter().any(|o| o.name == p.name) {
            return bad(
                format!("positions[{i}].name"),
                format!("position '{}' appears twice", p.name),
            );
        }
    }
    if let Some(p) = previous {
        let names = |v: &mut dyn Iterator<Item = &str>| v.map(str::to_string).collect::<Vec<_>>();
        let (now, before) = (
            names(&mut record.layers.iter().map(|l| l.name.as_str())),
            names(&mut p.layers.iter().map(|l| l.name.as_str())),
        );
        if now != before {
            return bad(
                "layers".into(),
                format!(
                    "the layers [{}] differ from those of step {} [{}]: every step must list the same layers in the same order",
                    now.join(", "),
                    p.step,
                    before.join(", ")
                ),
            );
        }
        let (now, before) = (
            names(&mut record.positions.iter().map(|l| l.name.as_str())),
            names(&mut p.positions.iter().map(|l| l.name.as_str())),
        );
        if now != before {
            return bad(
                "positions".into(),
                format!(
                    "the positions [{}] differ from those of step {} [{}]: every step must list the same positions in the same order",
                    now.join(", "),
                    p.step,
                    before.join(", ")
                ),
            );
        }
    }
    Ok(())
}
