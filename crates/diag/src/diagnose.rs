//! From a [`History`] to a [`Diagnosis`]: indicators over a window of steps,
//! then the verdict procedure.

use serde::{Deserialize, Serialize};

use crate::depth_profile::depth_slope;
use crate::error::{DiagError, Result};
use crate::history::{CheckRecord, History};
use crate::recorder::{LayerStat, StepRecord};
use crate::stats::{chance_band, geo_mean, median};
use crate::verdict::{decide, Indicators, Thresholds, Verdict};

/// How the window is chosen and which thresholds decide.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiagnoseOptions {
    /// The thresholds of the verdict procedure.
    pub thresholds: Thresholds,
    /// First step of the window; default: the second half of the steps up
    /// to the window's end (the first half is warm-up, where BatchNorm and
    /// the init transient distort gradient statistics).
    pub window_start: Option<usize>,
    /// Last step of the window (held-out checks after it are ignored too);
    /// default: the last recorded step. A verdict belongs to its window: an
    /// earlier end asks what the run looked like then.
    #[serde(default)]
    pub window_end: Option<usize>,
    /// The history was recorded at initialisation, without updates: the
    /// window is every recorded step and only the numerics and
    /// gradient-flow gates decide.
    #[serde(default)]
    pub at_init: bool,
}

/// A verdict with its evidence, for one window of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The verdict.
    pub verdict: Verdict,
    /// Sentences quoting the indicator values and thresholds that decided it.
    pub reasons: Vec<String>,
    /// Confidence in `[0, 1]`.
    pub confidence: f64,
    /// For `inconclusive`, the two best candidates.
    pub candidates: Vec<Verdict>,
    /// Suggested remedies.
    pub actions: Vec<String>,
    /// The indicators over the window.
    pub indicators: Indicators,
    /// Per-layer figures averaged over the window (geometric means), input to output.
    pub layers: Vec<LayerStat>,
    /// First and last step of the window.
    pub window: [usize; 2],
    /// Held-out checks.
    pub history: Vec<CheckRecord>,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = values
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| s / n as f64)
}

/// Per-layer figures averaged over the window's steps.
fn window_layers(window: &[StepRecord]) -> Vec<LayerStat> {
    let Some(first) = window.first() else {
        return Vec::new();
    };
    first
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let at = |f: &dyn Fn(&LayerStat) -> Option<f64>| -> Vec<f64> {
                window
                    .iter()
                    .filter_map(|s| s.layers.get(i).filter(|x| x.name == l.name))
                    .filter_map(f)
                    .collect()
            };
            let act = at(&|x| x.act_grad_rms);
            let upd = at(&|x| x.update_ratio);
            LayerStat {
                name: l.name.clone(),
                index: l.index,
                grad_rms: geo_mean(at(&|x| Some(x.grad_rms)).into_iter()),
                act_grad_rms: (!act.is_empty()).then(|| geo_mean(act.into_iter())),
                weight_rms: geo_mean(at(&|x| Some(x.weight_rms)).into_iter()),
                update_ratio: median(&upd),
            }
        })
        .collect()
}

/// Computes the indicators over the window and decides, with default options.
///
/// # Errors
/// [`DiagError::InsufficientData`] for a history without steps.
pub fn diagnose(history: &History) -> Result<Diagnosis> {
    diagnose_with(history, &DiagnoseOptions::default())
}

/// Computes the indicators over the window and decides.
///
/// # Errors
/// [`DiagError::InsufficientData`] for a history without steps, or whose
/// window holds none.
pub fn diagnose_with(history: &History, options: &DiagnoseOptions) -> Result<Diagnosis> {
    let end = options.window_end.unwrap_or(usize::MAX);
    let steps: Vec<&StepRecord> = history.steps.iter().filter(|s| s.step <= end).collect();
    let (Some(first), Some(last)) = (steps.first(), steps.last()) else {
        return Err(DiagError::InsufficientData {
            indicator: "diagnosis",
            reason: format!(
                "no recorded step{}",
                options
                    .window_end
                    .map(|e| format!(" at or before the window end {e}"))
                    .unwrap_or_default()
            ),
        });
    };
    let start = match (options.window_start, options.at_init) {
        (Some(s), _) => s,
        (None, true) => first.step,
        (None, false) => first.step + (last.step - first.step).div_ceil(2),
    };
    let mut window: Vec<StepRecord> = steps
        .iter()
        .filter(|s| s.step >= start)
        .map(|s| (*s).clone())
        .collect();
    let first_non_finite = steps.iter().find(|s| s.non_finite).map(|s| s.step);
    if first_non_finite.is_some() {
        // A run that blew up: describe it by its finite steps (a loop stops at
        // the first non-finite one), the second half of them unless the
        // window already holds some.
        let finite: Vec<&StepRecord> = steps.iter().copied().filter(|s| !s.non_finite).collect();
        let in_window: Vec<StepRecord> = window.iter().filter(|s| !s.non_finite).cloned().collect();
        window = if !in_window.is_empty() {
            in_window
        } else {
            finite[finite.len() / 2..]
                .iter()
                .map(|s| (*s).clone())
                .collect()
        };
        if window.is_empty() {
            window = steps
                .iter()
                .filter(|s| s.step >= start)
                .map(|s| (*s).clone())
                .collect();
        }
    }
    if window.is_empty() {
        return Err(DiagError::InsufficientData {
            indicator: "diagnosis",
            reason: format!(
                "no step at or after the window start {start} (last step {})",
                last.step
            ),
        });
    }
    let chance = if history.chance_loss > 0.0 {
        history.chance_loss
    } else {
        f64::NAN
    };
    let mut ind = Indicators {
        at_init: options.at_init,
        non_finite: first_non_finite.is_some(),
        first_non_finite_step: first_non_finite,
        ..Default::default()
    };

    // Depth slopes: positions for activation gradients, layers for parameter gradients.
    let n_pos = window[0].positions.len();
    let act: Vec<f64> = (0..n_pos)
        .map(|i| {
            geo_mean(
                window
                    .iter()
                    .filter_map(|s| s.positions.get(i))
                    .map(|p| p.act_grad_rms),
            )
        })
        .collect();
    if let Ok(fit) = depth_slope(&act) {
        ind.kappa = Some(fit.kappa);
        ind.kappa_r2 = Some(fit.r2);
        ind.attenuation = Some(fit.attenuation);
    }
    let layers = window_layers(&window);
    let param: Vec<f64> = layers.iter().map(|l| l.grad_rms).collect();
    if let Ok(fit) = depth_slope(&param) {
        ind.kappa_param = Some(fit.kappa);
    }

    // Progress: loss at the start and end quarters of the window.
    let q = window.len().div_ceil(4);
    let head = mean(window[..q].iter().map(|s| s.loss));
    let tail = mean(window[window.len() - q..].iter().map(|s| s.loss));
    if let Some(control) = &history.depth_control {
        // The reference's losses at the same steps as the run's tail.
        let at_tail = window[window.len() - q..].iter().filter_map(|s| {
            control
                .losses
                .iter()
                .find(|(t, _)| *t == s.step)
                .map(|(_, l)| *l)
        });
        ind.depth_control_loss_to_chance = mean(at_tail).map(|l| l / chance);
        ind.depth_control_model = Some(control.model.clone());
    }
    if let (Some(h), Some(t)) = (head, tail) {
        ind.loss_to_chance = Some(t / chance);
        if h > 0.0 {
            ind.loss_drop = Some((h - t) / h);
        }
    }
    ind.cos_successive = mean(window.iter().filter_map(|s| s.cos_previous));
    let ratios: Vec<f64> = window
        .iter()
        .flat_map(|s| s.layers.iter().filter_map(|l| l.update_ratio))
        .collect();
    ind.update_ratio = median(&ratios);
    ind.dead_max = window
        .iter()
        .filter_map(|s| s.dead_max)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    ind.saturated_max = window
        .iter()
        .filter_map(|s| s.saturated_max)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    ind.forward_diversity = window
        .iter()
        .rev()
        .find_map(|s| s.positions.last().and_then(|p| p.diversity));

    // Held-out checks.
    let checks: Vec<CheckRecord> = history
        .checks
        .iter()
        .filter(|c| c.step <= end)
        .cloned()
        .collect();
    if let Some(c) = checks.last() {
        ind.eval_loss_to_chance = Some(c.train_loss / chance).filter(|e| e.is_finite());
        if let Some(v) = c.val_loss {
            ind.val_loss_to_chance = Some(v / chance);
            ind.train_val_gap = Some((v - c.train_loss) / chance);
        }
        ind.val_accuracy = c.val_accuracy;
    }
    let mut rising = 0;
    for pair in checks.windows(2).rev() {
        match (pair[0].val_loss, pair[1].val_loss) {
            (Some(a), Some(b)) if b > a => rising += 1,
            _ => break,
        }
    }
    if checks.iter().any(|c| c.val_loss.is_some()) {
        ind.val_loss_rising = Some(rising);
    }
    // The held-out trend over the window: first against last check.
    let window_val: Vec<f64> = checks
        .iter()
        .filter(|c| c.step >= window[0].step)
        .filter_map(|c| c.val_loss)
        .filter(|v| v.is_finite())
        .collect();
    if let (true, Some(&first), Some(&last)) =
        (window_val.len() >= 2, window_val.first(), window_val.last())
    {
        if first > 0.0 {
            ind.val_loss_drop = Some((first - last) / first);
        }
    }
    ind.snr = checks.iter().rev().find_map(|c| c.snr);
    ind.train_val_cos = checks.iter().rev().find_map(|c| c.train_val_cos);

    // Data probe and shuffle control.
    let k = history.num_classes.max(1) as f64;
    ind.chance_accuracy = Some(history.probe.as_ref().map_or(1.0 / k, |p| p.chance));
    if let Some(p) = &history.probe {
        ind.probe_accuracy = Some(p.accuracy);
        ind.probe_p_value = Some(p.p_value);
    }
    if let (Some(c), Some(chance_acc)) = (checks.last(), ind.chance_accuracy) {
        if c.val_examples > 0 {
            ind.val_chance_band = Some(chance_band(chance_acc, c.val_examples));
        }
    }
    if let Some(control) = &history.shuffle_control {
        let gaps: Vec<f64> = window
            .iter()
            .filter_map(|s| {
                control
                    .iter()
                    .find(|(t, _)| *t == s.step)
                    .map(|(_, l)| (l - s.loss) / chance)
            })
            .collect();
        ind.shuffle_gap = mean(gaps.into_iter());
    }

    let decision = decide(&ind, &options.thresholds);
    Ok(Diagnosis {
        verdict: decision.verdict,
        reasons: decision.reasons,
        confidence: decision.confidence,
        candidates: decision.candidates,
        actions: decision.actions,
        indicators: ind,
        layers,
        window: [window[0].step, window[window.len() - 1].step],
        history: checks,
    })
}
