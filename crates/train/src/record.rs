//! Recording a gradlab model: [`ModelRecorder`] reads what gradlab-diag's
//! stats-only [`Recorder`] needs from a network (through [`HasParams`],
//! never a concrete architecture), its [`GradMap`], the tapped activations
//! and their gradients, once per step between backward and update.

use std::path::Path;

use gradlab_autodiff::Gradients;
use gradlab_diag::activations::{forward_diversity, inactive_fraction};
use gradlab_diag::stats::rms;
use gradlab_diag::{
    Activation, CheckRecord, DiagError, History, ProbeResult, Recorder, RunInfo, StepRecord,
};
use gradlab_nn::{ActivationKind, Ctx, GradMap, HasParams, Role};

use crate::error::Result;

/// What the model recorder looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecorderOptions {
    /// Tap names that define depth positions, one per layer or block, input
    /// to output (for ResNets, the block outputs). Empty: the output taps of
    /// the parameterised layers (one per layer: for a `Sequential` the taps
    /// of its `Linear`/`Conv2d` children, not the activations' taps, which
    /// would count every layer twice and halve κ).
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

/// gradlab-diag's name of a gradlab activation.
pub fn diag_activation(kind: ActivationKind) -> Activation {
    match kind {
        ActivationKind::Relu => Activation::Relu,
        ActivationKind::LeakyRelu(_) => Activation::LeakyRelu,
        ActivationKind::Tanh => Activation::Tanh,
        ActivationKind::Sigmoid => Activation::Sigmoid,
        ActivationKind::Gelu => Activation::Gelu,
    }
}

/// Records a gradlab network step by step into gradlab-diag's [`Recorder`].
///
/// ```
/// use gradlab_arch::{PlainMlp, PlainMlpConfig};
/// use gradlab_data::{Batch, Patterns, PatternsConfig};
/// use gradlab_nn::{ActivationKind, Scope};
/// use gradlab_train::{ModelRecorder, OptimizerSpec, RecorderOptions, Trainer};
/// let data = Patterns::new(PatternsConfig { len: 64, height: 8, width: 8, ..Default::default() })?;
/// let config = PlainMlpConfig::new(64, 10, 4, 16, ActivationKind::Relu);
/// let mut net = PlainMlp::new(&Scope::new(0), &config)?;
/// let mut trainer = Trainer::new(&OptimizerSpec::sgd(0.1), 0)?.with_taps(true);
/// let mut recorder = ModelRecorder::new(RecorderOptions::default(), 10);
/// for step in 0..3 {
///     let batch = Batch::from_indices(&data, &(0..32).collect::<Vec<_>>())?;
///     trainer.step_observed(&mut net, batch, &mut |model, pass| {
///         let taps = pass.tap_grads.as_ref().expect("kept");
///         recorder.record(step, &*model, &pass.cx, &pass.grads, taps, Some(pass.accuracy))?;
///         Ok(())
///     })?;
/// }
/// let diagnosis = gradlab_diag::diagnose(recorder.history())?;
/// assert_eq!(diagnosis.layers.len(), 4); // four linear layers
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ModelRecorder {
    options: RecorderOptions,
    recorder: Recorder,
}

impl ModelRecorder {
    /// A recorder for a `num_classes`-way classification run.
    pub fn new(options: RecorderOptions, num_classes: usize) -> Self {
        ModelRecorder {
            options,
            recorder: Recorder::new(num_classes),
        }
    }

    /// The options.
    pub fn options(&self) -> &RecorderOptions {
        &self.options
    }

    /// The stats-only recorder inside.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The stats-only recorder inside, mutable (run information, probe,
    /// shuffle control).
    pub fn recorder_mut(&mut self) -> &mut Recorder {
        &mut self.recorder
    }

    /// Sets what the run is; the activation and positions are filled from
    /// the options when not given.
    pub fn set_run_info(&mut self, mut run: RunInfo) {
        if run.activation.is_none() {
            run.activation = self.options.activation.map(diag_activation);
        }
        if run.positions.is_empty() {
            run.positions = self.options.positions.clone();
        }
        self.recorder.set_run_info(run);
    }

    /// Streams the history to a `gradlab-history` file (see
    /// [`Recorder::stream_to`]).
    ///
    /// # Errors
    /// As [`Recorder::stream_to`].
    pub fn stream_to(&mut self, path: impl AsRef<Path>) -> Result<()> {
        Ok(self.recorder.stream_to(path)?)
    }

    /// Records one step: call it after the backward pass and before the
    /// optimizer updates, with the gradients of the tapped activations kept
    /// ([`Ctx::backward_with_taps`]).
    ///
    /// # Errors
    /// [`DiagError::AllZeroGradients`] when every gradient is exactly zero
    /// (gradients read after being zeroed: never diagnosed), or when there
    /// is no gradient at all; the recorder's checks and file errors.
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
            }
            .into());
        }
        let loss = grads.loss().unwrap_or(f64::NAN);
        let tap_rms = |name: &str| -> Option<f64> {
            let var = cx.tapped(name)?;
            let g = tap_grads.get(var)?;
            let batch = g.shape().first().copied().unwrap_or(1).max(1);
            Some(rms(g.as_slice()) * batch as f64)
        };
        let forward_stats = self.options.forward_stats_every > 0
            && step.is_multiple_of(self.options.forward_stats_every);
        let (dead_max, saturated_max) = if forward_stats {
            self.unit_activity(cx)
        } else {
            (None, None)
        };

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
        let empty: &[f32] = &[];
        let mut layer_names = Vec::with_capacity(weights.len());
        let mut s = self.recorder.step(step, loss);
        // The full gradient, every trainable tensor, for the norm and the cosine.
        for (_, g) in grads.iter() {
            s.gradient(g.as_slice());
        }
        for (name, depth, w) in &weights {
            let layer = name.strip_suffix(".weight").unwrap_or(name).to_string();
            let grad = grads.get(name).map(|g| g.as_slice()).unwrap_or(empty);
            let stat = s.layer(&layer, grad, w);
            stat.index = *depth;
            stat.act_grad_rms = tap_rms(&layer);
            layer_names.push((layer, stat.act_grad_rms.is_some()));
        }
        if let Some(a) = accuracy {
            s.accuracy(a);
        }

        // Depth positions.
        let position_names: Vec<String> = if self.options.positions.is_empty() {
            layer_names
                .into_iter()
                .filter(|(_, tapped)| *tapped)
                .map(|(name, _)| name)
                .collect()
        } else {
            self.options.positions.clone()
        };
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
            s.position(&name, act_grad_rms).diversity = diversity;
        }
        if let Some(d) = dead_max {
            s.dead_max(d);
        }
        if let Some(d) = saturated_max {
            s.saturated_max(d);
        }
        Ok(s.finish()?)
    }

    /// Dead and saturated unit fractions over the taps whose values lie in
    /// the network activation's range (so pre-activations are skipped).
    fn unit_activity(&self, cx: &Ctx<f32>) -> (Option<f64>, Option<f64>) {
        let Some(kind) = self.options.activation.map(diag_activation) else {
            return (None, None);
        };
        let Some((lo, hi)) = kind.output_range() else {
            return (None, None);
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
            Activation::Relu => (worst, None),
            _ => (None, worst),
        }
    }

    /// Adds a held-out check (streamed when streaming).
    ///
    /// # Errors
    /// File errors.
    pub fn add_check(&mut self, check: CheckRecord) -> Result<()> {
        Ok(self.recorder.add_check(check)?)
    }

    /// Sets the data probe's result (streamed when streaming).
    ///
    /// # Errors
    /// File errors.
    pub fn set_probe(&mut self, probe: ProbeResult) -> Result<()> {
        Ok(self.recorder.set_probe(probe)?)
    }

    /// Sets the label-shuffle control's losses (streamed when streaming).
    ///
    /// # Errors
    /// File errors.
    pub fn set_shuffle_control(&mut self, losses: Vec<(usize, f64)>) -> Result<()> {
        Ok(self.recorder.set_shuffle_control(losses)?)
    }

    /// Sets the depth control's reference and its losses (streamed when streaming).
    ///
    /// # Errors
    /// File errors.
    pub fn set_depth_control(&mut self, model: String, losses: Vec<(usize, f64)>) -> Result<()> {
        Ok(self.recorder.set_depth_control(model, losses)?)
    }

    /// The history so far.
    pub fn history(&self) -> &History {
        self.recorder.history()
    }

    /// The history, mutable (not streamed).
    pub fn history_mut(&mut self) -> &mut History {
        self.recorder.history_mut()
    }

    /// Finishes recording.
    pub fn into_history(self) -> History {
        self.recorder.into_history()
    }
}
