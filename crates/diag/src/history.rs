//! [`History`]: everything recorded over a run, serialisable as JSON.
//!
//! JSON has no NaN or infinity: `serde_json` writes them as `null`, and the
//! records read `null` back as NaN (a run that blew up round-trips, with
//! infinities turned into NaN).

use serde::{Deserialize, Deserializer, Serialize};

use crate::activations::Activation;
use crate::probe::ProbeResult;
use crate::recorder::StepRecord;

/// Reads `null` (a non-finite value written by `serde_json`) as NaN.
pub(crate) fn nan_from_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// The shuffle control's `(step, loss)` pairs, with `null` losses read as NaN.
fn control_from_null<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<(usize, f64)>>, D::Error> {
    let pairs = Option::<Vec<(usize, Option<f64>)>>::deserialize(d)?;
    Ok(pairs.map(|v| {
        v.into_iter()
            .map(|(t, l)| (t, l.unwrap_or(f64::NAN)))
            .collect()
    }))
}

/// The depth control's `(step, loss)` pairs, with `null` losses read as NaN.
fn pairs_from_null<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(usize, f64)>, D::Error> {
    let pairs = Vec::<(usize, Option<f64>)>::deserialize(d)?;
    Ok(pairs
        .into_iter()
        .map(|(t, l)| (t, l.unwrap_or(f64::NAN)))
        .collect())
}

/// The depth control: a reference network trained for the same steps on the
/// same data (the residual twin of a plain network, or the same family at a
/// smaller depth), against which the run's training loss is compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepthControl {
    /// What the reference is (e.g. its model SPEC), quoted in the reasons.
    pub model: String,
    /// Its per-step mini-batch training losses, `(step, loss)`.
    #[serde(deserialize_with = "pairs_from_null")]
    pub losses: Vec<(usize, f64)>,
}

/// A held-out check at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// The step.
    pub step: usize,
    /// Loss on a fixed training subset, in evaluation mode.
    #[serde(deserialize_with = "nan_from_null")]
    pub train_loss: f64,
    /// Accuracy on that subset.
    #[serde(deserialize_with = "nan_from_null")]
    pub train_accuracy: f64,
    /// Held-out loss.
    pub val_loss: Option<f64>,
    /// Held-out accuracy.
    pub val_accuracy: Option<f64>,
    /// Held-out examples evaluated.
    pub val_examples: usize,
    /// Bias-corrected gradient SNR over k training batches at this step's parameters (I7).
    pub snr: Option<f64>,
    /// Cosine of the mean training and held-out gradients (I9).
    pub train_val_cos: Option<f64>,
}

/// What a run was, as far as the history file's first line says: none of
/// it is needed to diagnose, all of it helps to read the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Training label counts per class (the chance loss is their entropy).
    #[serde(default)]
    pub class_counts: Option<Vec<usize>>,
    /// Tap names of the depth positions, input to output (informative: the
    /// positions that count are those of each step).
    #[serde(default)]
    pub positions: Vec<String>,
    /// The network's non-linearity.
    #[serde(default)]
    pub activation: Option<Activation>,
    /// What wrote the history (free text, e.g. `gradlab diagnose`, `pytorch 2.5`).
    #[serde(default)]
    pub source: Option<String>,
    /// The model (free text, e.g. a model SPEC).
    #[serde(default)]
    pub model: Option<String>,
    /// The data (free text, e.g. a data SPEC).
    #[serde(default)]
    pub data: Option<String>,
    /// Examples per training step.
    #[serde(default)]
    pub batch_size: Option<usize>,
}

/// A run's record: per-step statistics, held-out checks, and the data probe,
/// shuffle control and depth control when they were run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Number of classes `K`.
    pub num_classes: usize,
    /// What the run was (the history file's first line).
    #[serde(default)]
    pub run: RunInfo,
    /// Chance loss: the entropy of the training label distribution (ln K when balanced).
    #[serde(deserialize_with = "nan_from_null")]
    pub chance_loss: f64,
    /// Per-step records.
    pub steps: Vec<StepRecord>,
    /// Held-out checks.
    pub checks: Vec<CheckRecord>,
    /// The data probe (I13).
    pub probe: Option<ProbeResult>,
    /// The label-shuffle control's per-step training losses (I14), `(step, loss)`.
    #[serde(deserialize_with = "control_from_null")]
    pub shuffle_control: Option<Vec<(usize, f64)>>,
    /// The depth control (a shallower or residual reference), when it was run.
    #[serde(default)]
    pub depth_control: Option<DepthControl>,
}

impl History {
    /// An empty history of a balanced `num_classes`-way task.
    pub fn new(num_classes: usize) -> Self {
        History {
            num_classes,
            run: RunInfo::default(),
            chance_loss: (num_classes.max(1) as f64).ln(),
            steps: Vec::new(),
            checks: Vec::new(),
            probe: None,
            shuffle_control: None,
            depth_control: None,
        }
    }

    /// Sets the chance loss from class frequencies (their entropy) and
    /// keeps the counts in [`RunInfo::class_counts`]. All-zero counts
    /// change nothing.
    pub fn set_class_prior(&mut self, counts: &[usize]) {
        let total: usize = counts.iter().sum();
        if total == 0 {
            return;
        }
        self.run.class_counts = Some(counts.to_vec());
        self.chance_loss = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / total as f64;
                -p * p.ln()
            })
            .sum();
    }
}
