//! The per-step [`Recorder`]: what a training loop hands over once per step
//! (the model through [`HasParams`], its [`GradMap`], the tapped activations
//! and their gradients), reduced at once to a few numbers per layer so that
//! recording stays cheap enough to leave on.

use std::collections::HashMap;

use gradlab_autodiff::Gradients;
use gradlab_nn::{ActivationKind, Ctx, GradMap, HasParams, Role};
use serde::{Deserialize, Serialize};

use crate::activations::{forward_diversity, inactive_fraction};
use crate::error::{DiagError, Result};
use crate::history::{CheckRecord, History};
use crate::stats::{cosine, rms, sq_norm};

/// What the recorder looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecorderOptions {
    /// Tap names that define depth positions, input to output (for ResNets,
    /// the block outputs). Empty: the output taps of the parameterised layers.
    pub positions: Vec<String>,
    /// The network's non-linearity, to count dead (ReLU) or saturated
    /// (sigmoid, tanh) units on the taps whose values are in its range.
    pub activation: Option<ActivationKind>,
    /// Compute forward statistics (dead units, diversity) every this many
    /// steps; 0 never. They read every tapped activation, so they cost more.
    pub forward_stats_every: usize,
    /// The taps whose units are counted as dead or saturated: the outputs of
    /// the non-linearities. Empty: every tap whose values all lie in the
    /// activation's range, which can also catch outputs that are not a
    /// non-linearity's (a zero-padded option-A shortcut looks half dead);
    /// [`run_diagnosed`](crate::run_diagnosed) fills it from the network's layers.
    pub unit_taps: Vec<String>,
}

/// One parameterised layer at one step (its `weight` parameter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStat {
    /// The layer's dotted name (the parameter name without `.weight`).
    pub name: String,
    /// Depth index from input to output.
    pub index: usize,
    /// RMS of the weight gradient (I2).
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

/// Records one training run, step by step (see the crate docs for the loop).
pub struct Recorder {
    options: RecorderOptions,
    history: History,
    previous_weights: HashMap<String, Vec<f32>>,
    previous_grad: Option<Vec<f32>>,
}

impl Recorder {
    /// A recorder for a `num_classes`-way classification run.
    pub fn new(options: RecorderOptions, num_classes: usize) -> Self {
        Recorder {
            options,
            history: History::new(num_classes),
            previous_weights: HashMap::new(),
            previous_grad: None,
        }
    }

    /// The options.
    pub fn options(&self) -> &RecorderOptions {
        &self.options
    }

    /// Records one step: call it after the backward pass and before the
    /// optimizer updates, with the gradients of the tapped activations kept
    /// ([`Ctx::backward_with_taps`]).
    ///
    /// # Errors
    /// [`DiagError::AllZeroGradients`] when every gradient is exactly zero
    /// (gradients read after being zeroed: never diagnosed), or when there
    /// is no gradient at all.
    pub fn record(
        &mut self,
        step: usize,
        model: &dyn HasParams<f32>,
        cx: &Ctx<f32>,
        grads: &GradMap<f32>,
        tap_grads: &Gradients<f32>,
        accuracy: Option<f64>,
    ) -> Result<&StepRecord> {
        let all_zero = grads
            .iter()
            .all(|(_, g)| g.as_slice().iter().all(|&x| x == 0.0));
        if grads.is_empty() || all_zero {
            return Err(DiagError::AllZeroGradients {
                step,
                params: grads.len(),
            });
        }
        let loss = grads.loss().unwrap_or(f64::NAN);
        let mut non_finite = !loss.is_finite();

        // Gradient as one vector, for the global norm and successive cosine.
        let flat: Vec<f32> = grads
            .iter()
            .flat_map(|(_, g)| g.as_slice().iter().copied())
            .collect();
        non_finite |= flat.iter().any(|x| !x.is_finite());
        let grad_norm = sq_norm(&flat).sqrt();
        let cos_previous = match &self.previous_grad {
            Some(prev) if prev.len() == flat.len() => cosine(prev, &flat)?,
            _ => None,
        };
        self.previous_grad = Some(flat);

        // Per-layer statistics from each weight parameter.
        let tap_rms = |name: &str| -> Option<f64> {
            let var = cx.tapped(name)?;
            let g = tap_grads.get(var)?;
            let batch = g.shape().first().copied().unwrap_or(1).max(1);
            Some(rms(g.as_slice()) * batch as f64)
        };
        let mut layers = Vec::new();
        let mut weights = Vec::new();
        model.visit_params(&mut |p| {
            if p.role() == Role::Weight {
                weights.push((
                    p.name().to_string(),
                    p.depth(),
                    p.value().as_slice().to_vec(),
                ));
            }
        });
        for (name, depth, w) in weights {
            let layer = name.strip_suffix(".weight").unwrap_or(&name).to_string();
            let grad_rms = grads.get(&name).map(|g| rms(g.as_slice())).unwrap_or(0.0);
            let update_ratio = self
                .previous_weights
                .get(&name)
                .filter(|p| p.len() == w.len())
                .map(|prev| {
                    let delta: f64 = w
                        .iter()
                        .zip(prev)
                        .map(|(&a, &b)| ((a - b) as f64).powi(2))
                        .sum();
                    let norm = sq_norm(&w);
                    if norm > 0.0 {
                        (delta / norm).sqrt()
                    } else {
                        0.0
                    }
                });
            layers.push(LayerStat {
                act_grad_rms: tap_rms(&layer),
                name: layer,
                index: depth,
                grad_rms,
                weight_rms: rms(&w),
                update_ratio,
            });
            self.previous_weights.insert(name, w);
        }

        // Depth positions.
        let position_names: Vec<String> = if self.options.positions.is_empty() {
            layers
                .iter()
                .filter(|l| l.act_grad_rms.is_some())
                .map(|l| l.name.clone())
                .collect()
        } else {
            self.options.positions.clone()
        };
        let forward_stats =
            self.options.forward_stats_every > 0 && step % self.options.forward_stats_every == 0;
        let mut positions = Vec::with_capacity(position_names.len());
        for name in position_names {
            let Some(act_grad_rms) = tap_rms(&name) else {
                continue;
            };
            let diversity = if forward_stats {
                cx.tapped(&name)
                    .and_then(|v| cx.value(v).ok())
                    .and_then(|t| {
                        forward_diversity(t.as_slice(), t.shape().first().copied().unwrap_or(1))
                            .ok()
                    })
            } else {
                None
            };
            positions.push(PositionStat {
                name,
                act_grad_rms,
                diversity,
            });
        }

        let (dead_max, saturated_max) = if forward_stats {
            self.unit_activity(cx)
        } else {
            (None, None)
        };

        self.history.steps.push(StepRecord {
            step,
            loss,
            accuracy,
            layers,
            positions,
            grad_norm,
            cos_previous,
            dead_max,
            saturated_max,
            non_finite,
        });
        Ok(self.history.steps.last().expect("just pushed"))
    }

    /// Dead and saturated unit fractions over the taps whose values lie in
    /// the network activation's range (so pre-activations are skipped).
    fn unit_activity(&self, cx: &Ctx<f32>) -> (Option<f64>, Option<f64>) {
        let Some(kind) = self.options.activation else {
            return (None, None);
        };
        let (lo, hi) = match kind {
            ActivationKind::Relu => (0.0f32, f32::INFINITY),
            ActivationKind::Sigmoid => (0.0, 1.0),
            ActivationKind::Tanh => (-1.0, 1.0),
            _ => return (None, None),
        };
        let mut worst: Option<f64> = None;
        let vars: Vec<_> = if self.options.unit_taps.is_empty() {
            cx.taps().iter().map(|(_, v)| *v).collect()
        } else {
            self.options
                .unit_taps
                .iter()
                .filter_map(|name| cx.tapped(name))
                .collect()
        };
        for var in vars {
            let Ok(t) = cx.value(var) else { continue };
            let batch = t.shape().first().copied().unwrap_or(0);
            if t.rank() < 2 || batch < 2 || !t.as_slice().iter().all(|&v| v >= lo && v <= hi) {
                continue;
            }
            if let Ok(f) = inactive_fraction(t.as_slice(), batch, kind) {
                worst = Some(worst.map_or(f, |w| w.max(f)));
            }
        }
        match kind {
            ActivationKind::Relu => (worst, None),
            _ => (None, worst),
        }
    }

    /// Adds a held-out check.
    pub fn add_check(&mut self, check: CheckRecord) {
        self.history.checks.push(check);
    }

    /// The history so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The history, mutable (to attach the probe or the shuffle control).
    pub fn history_mut(&mut self) -> &mut History {
        &mut self.history
    }

    /// Finishes recording.
    pub fn into_history(self) -> History {
        self.history
    }
}
