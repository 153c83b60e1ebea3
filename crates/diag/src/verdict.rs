//! The gated decision procedure that turns indicators into a verdict with
//! its evidence (research note, section 3).
//!
//! Gates run in order: numerics, gradient flow through depth, progress,
//! the cause of a stall, then generalisation. Every comparison that decides
//! the path is quoted in `reasons` with its value and threshold, and its
//! normalised margin feeds the confidence: the smallest margin on the path,
//! capped by R² for depth-slope verdicts. Below
//! [`Thresholds::min_confidence`] the verdict is `inconclusive` with the two
//! best candidates.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What is wrong (or not) with a training run over a window of steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Gradients grow geometrically towards the input, or went non-finite.
    Exploding,
    /// A layer's units are dead (ReLU) for every example.
    DeadUnits,
    /// Gradients shrink geometrically towards the input.
    Vanishing,
    /// The data holds no learnable relation between inputs and labels (or the
    /// model is memorising labels that carry none).
    NoSignal,
    /// The data has signal and gradients flow, but updates are too small to move.
    LrTooSmall,
    /// The data has signal and gradients flow, yet this model extracts none of it.
    ModelCannotExtract,
    /// Loss near chance but the model does better than on shuffled labels.
    SlowButLearning,
    /// Training improves while held-out loss rises.
    Overfitting,
    /// Learning, and generalising.
    Healthy,
    /// The evidence does not separate the two best candidates.
    Inconclusive,
}

impl Verdict {
    /// The verdict as written in reports (`"no-signal"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Exploding => "exploding",
            Verdict::DeadUnits => "dead-units",
            Verdict::Vanishing => "vanishing",
            Verdict::NoSignal => "no-signal",
            Verdict::LrTooSmall => "lr-too-small",
            Verdict::ModelCannotExtract => "model-cannot-extract",
            Verdict::SlowButLearning => "slow-but-learning",
            Verdict::Overfitting => "overfitting",
            Verdict::Healthy => "healthy",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// Standard remedies for this verdict (advice, not evidence).
    pub fn actions(self) -> Vec<String> {
        let a: &[&str] = match self {
            Verdict::Exploding => &[
                "lower the initialisation gain or the learning rate",
                "clip gradients by global norm",
                "add normalisation (BatchNorm)",
                "use a learning-rate warm-up",
            ],
            Verdict::DeadUnits => &[
                "lower the learning rate",
                "use a leaky activation (LeakyReLU, GELU)",
                "initialise biases at 0 or slightly positive",
                "add BatchNorm before the activation",
            ],
            Verdict::Vanishing => &[
                "use He/Kaiming or orthogonal initialisation",
                "use a non-saturating activation (ReLU)",
                "add normalisation (BatchNorm)",
                "add skip connections (a residual network)",
                "reduce the depth",
            ],
            Verdict::NoSignal => &[
                "check the data pipeline and that labels line up with inputs",
                "collect more informative features or more data",
                "a bigger model will only memorise: it cannot find signal that is not there",
            ],
            Verdict::LrTooSmall => &[
                "raise the learning rate (try 10x steps)",
                "check the optimizer actually applies its updates",
            ],
            Verdict::ModelCannotExtract => &[
                "check preprocessing (standardisation, input scale)",
                "change the architecture or capacity",
                "check for shattered gradients in very deep plain networks",
            ],
            Verdict::SlowButLearning => &["train longer, or raise the learning rate a little"],
            Verdict::Overfitting => &[
                "add data augmentation or weight decay",
                "stop early at the best held-out loss",
                "use a smaller model",
                "add auxiliary heads or dropout as regularisers",
            ],
            Verdict::Healthy => &[],
            Verdict::Inconclusive => {
                &["train longer or run the label-shuffle control to separate the candidates"]
            }
        };
        a.iter().map(|s| s.to_string()).collect()
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The indicators the procedure reads, each `None` when not measured.
/// Field names are the JSON keys of the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Indicators {
    /// I4: activation-gradient depth slope κ (nats/layer; > 0 vanishing).
    pub kappa: Option<f64>,
    /// R² of the κ fit.
    pub kappa_r2: Option<f64>,
    /// Total attenuation A = κ (n - 1) in nats.
    pub attenuation: Option<f64>,
    /// I4b: the same slope on parameter-gradient RMS.
    pub kappa_param: Option<f64>,
    /// I1: training loss / chance loss (ln K), over the window.
    pub loss_to_chance: Option<f64>,
    /// I1 on held-out data.
    pub val_loss_to_chance: Option<f64>,
    /// I7: bias-corrected gradient SNR.
    pub snr: Option<f64>,
    /// I8: mean cosine of successive mini-batch gradients.
    pub cos_successive: Option<f64>,
    /// I10: held-out minus training loss-to-chance.
    pub train_val_gap: Option<f64>,
    /// I11: largest dead-unit fraction of any ReLU layer.
    pub dead_max: Option<f64>,
    /// I11: largest saturated-unit fraction of any sigmoid/tanh layer.
    pub saturated_max: Option<f64>,
    /// I12: forward diversity ζ at the last hidden layer.
    pub forward_diversity: Option<f64>,
    /// I13: the data probe's held-out accuracy.
    pub probe_accuracy: Option<f64>,
    /// Chance accuracy (most frequent class share).
    pub chance_accuracy: Option<f64>,
    /// I13: the probe's p-value against chance.
    pub probe_p_value: Option<f64>,
    /// I14: progress gap π = (L_shuffled - L_real) / ln K; `None` when the control was not run.
    pub shuffle_gap: Option<f64>,
    /// I6: median update-to-weight ratio over layers and window.
    pub update_ratio: Option<f64>,
    /// Relative drop of the training loss across the window ((first - last) / first).
    pub loss_drop: Option<f64>,
    /// Number of consecutive held-out checks at the end with rising loss.
    pub val_loss_rising: Option<usize>,
    /// I9: cosine of mean train and held-out gradients.
    pub train_val_cos: Option<f64>,
    /// Held-out accuracy at the last check.
    pub val_accuracy: Option<f64>,
    /// Half-width of the chance band of `val_accuracy` (3 binomial standard deviations).
    pub val_chance_band: Option<f64>,
    /// Whether a loss or gradient was NaN or infinite in the window.
    pub non_finite: bool,
}

/// The thresholds of the procedure (defaults from the research note,
/// calibrated on the scenario suite).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// |A| in nats beyond which depth attenuation is pathological (ln 100).
    pub attenuation: f64,
    /// Smallest R² for a depth-slope verdict.
    pub min_r2: f64,
    /// Dead-unit fraction of a layer that makes it dead.
    pub dead_fraction: f64,
    /// Saturated-unit fraction of a layer that makes it vanish.
    pub saturated_fraction: f64,
    /// Loss-to-chance above which a run counts as exploding after warm-up.
    pub exploding_loss_to_chance: f64,
    /// Loss-to-chance at or above which a run may be stalled.
    pub stall_loss_to_chance: f64,
    /// Relative loss drop across the window below which a run is stalled.
    pub stall_drop: f64,
    /// |π| below which the model does no better than on shuffled labels.
    pub shuffle_gap: f64,
    /// Median update ratio below which updates are too small to move.
    pub tiny_update: f64,
    /// Successive cosine above which tiny updates point a consistent way.
    pub consistent_cosine: f64,
    /// Loss-to-chance below which the training set is being fitted.
    pub fitted_loss_to_chance: f64,
    /// Held-out minus training loss-to-chance that counts as a gap.
    pub overfit_gap: f64,
    /// Consecutive rising held-out checks that count as a trend.
    pub rising_checks: usize,
    /// Confidence below which the verdict is `inconclusive`.
    pub min_confidence: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            attenuation: 100f64.ln(),
            min_r2: 0.8,
            dead_fraction: 0.5,
            saturated_fraction: 0.5,
            exploding_loss_to_chance: 10.0,
            stall_loss_to_chance: 0.9,
            stall_drop: 0.02,
            shuffle_gap: 0.02,
            tiny_update: 1e-5,
            consistent_cosine: 0.3,
            fitted_loss_to_chance: 0.5,
            overfit_gap: 0.1,
            rising_checks: 3,
            min_confidence: 0.2,
        }
    }
}

/// A verdict with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// Sentences quoting the indicator values and thresholds that decided it.
    pub reasons: Vec<String>,
    /// Confidence in `[0, 1]`.
    pub confidence: f64,
    /// For `inconclusive`, the two best candidates; otherwise the verdict alone.
    pub candidates: Vec<Verdict>,
    /// Suggested remedies.
    pub actions: Vec<String>,
}

/// Collects the comparisons on the decided path and their margins.
struct Path {
    reasons: Vec<String>,
    margins: Vec<f64>,
}

/// Margin of `v` against threshold `t` on a log scale: one decade away is full confidence.
fn log_margin(v: f64, t: f64) -> f64 {
    if v <= 0.0 || t <= 0.0 {
        return 1.0;
    }
    ((v / t).ln().abs() / 10f64.ln()).min(1.0)
}

/// Margin of `v` against `t` on a linear scale, full confidence at `scale` away.
fn lin_margin(v: f64, t: f64, scale: f64) -> f64 {
    ((v - t).abs() / scale).min(1.0)
}

impl Path {
    fn new() -> Self {
        Path {
            reasons: Vec::new(),
            margins: Vec::new(),
        }
    }
    fn note(&mut self, reason: String, margin: f64) {
        self.reasons.push(reason);
        self.margins.push(margin);
    }
    fn info(&mut self, reason: String) {
        self.reasons.push(reason);
    }
    fn confidence(&self) -> f64 {
        self.margins.iter().cloned().fold(1.0, f64::min)
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}"))
        .unwrap_or_else(|| "not measured".into())
}

/// Runs the gated procedure on `ind`.
pub fn decide(ind: &Indicators, th: &Thresholds) -> Decision {
    let mut p = Path::new();
    let (verdict, runner_up, cap) = decide_path(ind, th, &mut p);
    let mut confidence = p.confidence().min(cap);
    if !confidence.is_finite() {
        confidence = 0.0;
    }
    if confidence < th.min_confidence && verdict != runner_up {
        p.info(format!(
            "confidence {confidence:.2} is below {:.2}: the evidence does not separate {verdict} from {runner_up}",
            th.min_confidence
        ));
        return Decision {
            verdict: Verdict::Inconclusive,
            reasons: p.reasons,
            confidence,
            candidates: vec![verdict, runner_up],
            actions: Verdict::Inconclusive.actions(),
        };
    }
    Decision {
        verdict,
        reasons: p.reasons,
        confidence,
        candidates: vec![verdict],
        actions: verdict.actions(),
    }
}

/// Returns (verdict, runner-up, confidence cap).
fn decide_path(ind: &Indicators, th: &Thresholds, p: &mut Path) -> (Verdict, Verdict, f64) {
    let rho = ind.loss_to_chance;
    // Gate 0: numerics.
    if ind.non_finite {
        p.note(
            "a loss or gradient became NaN or infinite in the window".into(),
            1.0,
        );
        return (Verdict::Exploding, Verdict::Exploding, 1.0);
    }
    if let Some(r) = rho.filter(|&r| r > th.exploding_loss_to_chance) {
        p.note(
            format!(
                "training loss is {r:.1}x the chance loss ln K, above {:.0}x",
                th.exploding_loss_to_chance
            ),
            log_margin(r, th.exploding_loss_to_chance),
        );
        return (Verdict::Exploding, Verdict::Exploding, 1.0);
    }

    // Gate A: gradient flow through depth.
    if let (Some(a), Some(r2), Some(kappa)) = (ind.attenuation, ind.kappa_r2, ind.kappa) {
        let span = format!(
            "activation gradients change by {kappa:.2} nats per layer towards the input (R² = {r2:.2}), {a:.1} nats in all"
        );
        if a <= -th.attenuation && r2 >= th.min_r2 {
            p.note(
                format!(
                    "{span}: they grow by at least {:.2} nats (x100), the exploding threshold",
                    th.attenuation
                ),
                lin_margin(-a, th.attenuation, th.attenuation),
            );
            p.note(
                format!("the fit is good: R² {r2:.2} >= {:.2}", th.min_r2),
                lin_margin(r2, th.min_r2, 0.2),
            );
            if let Some(kp) = ind.kappa_param {
                p.info(format!("parameter gradients alone change by {kp:.2} nats per layer: per-parameter plots can hide this"));
            }
            return (Verdict::Exploding, Verdict::Exploding, r2);
        }
    }
    if let Some(d) = ind.dead_max.filter(|&d| d >= th.dead_fraction) {
        p.note(
            format!("{:.0}% of a layer's units output zero for every example of the probe batch (threshold {:.0}%)", d * 100.0, th.dead_fraction * 100.0),
            lin_margin(d, th.dead_fraction, 0.25),
        );
        return (Verdict::DeadUnits, Verdict::Vanishing, 1.0);
    }
    let saturated = ind.saturated_max.filter(|&s| s >= th.saturated_fraction);
    let attenuated = match (ind.attenuation, ind.kappa_r2) {
        (Some(a), Some(r2)) => a >= th.attenuation && r2 >= th.min_r2,
        _ => false,
    };
    if attenuated || saturated.is_some() {
        let mut cap = 1.0;
        if attenuated {
            let (a, r2, kappa) = (
                ind.attenuation.unwrap_or(0.0),
                ind.kappa_r2.unwrap_or(0.0),
                ind.kappa.unwrap_or(0.0),
            );
            p.note(
                format!(
                    "activation gradients shrink by {kappa:.2} nats per layer towards the input (R² = {r2:.2}): {a:.1} nats (x{:.1e}) in all, beyond the {:.2}-nat (x100) threshold",
                    a.exp(),
                    th.attenuation
                ),
                lin_margin(a, th.attenuation, th.attenuation),
            );
            p.note(
                format!("the fit is good: R² {r2:.2} >= {:.2}", th.min_r2),
                lin_margin(r2, th.min_r2, 0.2),
            );
            cap = r2;
        }
        if let Some(s) = saturated {
            p.note(
                format!("{:.0}% of a layer's units are saturated (derivative < 1e-3) on every example (threshold {:.0}%)", s * 100.0, th.saturated_fraction * 100.0),
                lin_margin(s, th.saturated_fraction, 0.25),
            );
        }
        if let Some(z) = ind.forward_diversity.filter(|&z| z < 1e-3) {
            p.info(format!("the forward pass collapses too: the last hidden layer's diversity is {z:.1e}, so every input looks alike to the top layers"));
        }
        if let Some(pr) = ind.probe_accuracy {
            p.info(format!("the data does hold signal: a probe reaches {pr:.3} held-out accuracy against chance {}", fmt_opt(ind.chance_accuracy)));
        }
        if let Some(drop) = ind.loss_drop.filter(|&d| d > th.stall_drop) {
            p.info(format!("training is not stalled ({:.1}% loss drop over the window): the vanishing is mild so far", drop * 100.0));
        }
        return (Verdict::Vanishing, Verdict::NoSignal, cap);
    }
    if let (Some(a), Some(r2)) = (ind.attenuation, ind.kappa_r2) {
        p.note(
            format!("gradient flow is fine: {a:.1} nats of attenuation across depth (R² {r2:.2}) is within ±{:.2}", th.attenuation),
            lin_margin(a.abs(), th.attenuation, th.attenuation).max(if r2 < th.min_r2 { lin_margin(r2, th.min_r2, 0.2) } else { 0.0 }),
        );
    }

    // Gate B: progress.
    let stalled = match (rho, ind.loss_drop) {
        (Some(r), Some(drop)) => r >= th.stall_loss_to_chance && drop < th.stall_drop,
        (Some(r), None) => r >= th.stall_loss_to_chance,
        _ => false,
    };
    if stalled {
        let r = rho.unwrap_or(f64::NAN);
        p.note(
            format!(
                "training has stalled near chance: loss is {r:.3} x ln K (>= {:.2}) and fell {} over the window (< {:.0}%)",
                th.stall_loss_to_chance,
                ind.loss_drop.map(|d| format!("{:.2}%", d * 100.0)).unwrap_or_else(|| "by an unmeasured amount".into()),
                th.stall_drop * 100.0
            ),
            lin_margin(r, th.stall_loss_to_chance, 0.1),
        );
        return stall_cause(ind, th, p);
    }
    generalisation(ind, th, p)
}

/// Gate C: why a run with healthy gradient flow has stalled.
fn stall_cause(ind: &Indicators, th: &Thresholds, p: &mut Path) -> (Verdict, Verdict, f64) {
    let probe = ind
        .probe_p_value
        .map(|pv| (pv, ind.probe_accuracy.unwrap_or(f64::NAN)));
    let chance = fmt_opt(ind.chance_accuracy);
    let gap = ind.shuffle_gap;
    if let Some(pi) = gap.filter(|&g| g > th.shuffle_gap) {
        p.note(
            format!("the model beats its label-shuffled control by π = {pi:.3} of ln K (> {:.2}): it is learning, slowly", th.shuffle_gap),
            lin_margin(pi, th.shuffle_gap, 0.05),
        );
        return (Verdict::SlowButLearning, Verdict::LrTooSmall, 1.0);
    }
    if let Some(pi) = gap {
        p.note(
            format!(
                "the model does no better than on shuffled labels: π = {pi:.3} (|π| < {:.2})",
                th.shuffle_gap
            ),
            lin_margin(pi.abs(), th.shuffle_gap, 0.05),
        );
    }
    match probe {
        Some((pv, acc)) if pv >= 1e-3 => {
            p.note(
                format!("no learnable signal in the data: a model-independent probe (logistic regression and nearest neighbours) reaches {acc:.3} held-out accuracy against chance {chance} (p = {pv:.2})"),
                log_margin(pv, 1e-3).max(0.3),
            );
            if let Some(s) = ind.snr {
                p.info(format!("mini-batch gradients disagree: bias-corrected SNR {s:.3}, successive cosine {}", fmt_opt(ind.cos_successive)));
            }
            let cap = if gap.is_none() { 0.8 } else { 1.0 };
            (Verdict::NoSignal, Verdict::ModelCannotExtract, cap)
        }
        Some((pv, acc)) => {
            p.note(
                format!("the data holds signal: a probe reaches {acc:.3} held-out accuracy against chance {chance} (p = {pv:.1e})"),
                log_margin(pv.max(1e-300), 1e-3).max(0.3),
            );
            let u = ind.update_ratio;
            let c = ind.cos_successive;
            if let (Some(u), Some(c)) = (u, c) {
                if u < th.tiny_update && c > th.consistent_cosine {
                    p.note(format!("updates are tiny: median update/weight ratio {u:.1e} (< {:.0e}; about 1e-3 is typical)", th.tiny_update), log_margin(u, th.tiny_update));
                    p.note(
                        format!(
                            "and consistent: successive gradients have cosine {c:.2} (> {:.2})",
                            th.consistent_cosine
                        ),
                        lin_margin(c, th.consistent_cosine, 0.3),
                    );
                    return (Verdict::LrTooSmall, Verdict::ModelCannotExtract, 1.0);
                }
            }
            if let Some(u) = u.filter(|&u| u < th.tiny_update) {
                p.note(
                    format!(
                        "updates are tiny: median update/weight ratio {u:.1e} (< {:.0e})",
                        th.tiny_update
                    ),
                    log_margin(u, th.tiny_update),
                );
                return (Verdict::LrTooSmall, Verdict::ModelCannotExtract, 0.7);
            }
            p.note(
                format!("updates are of normal size (median update/weight ratio {}) and gradients flow, yet the model does not learn the signal", ind.update_ratio.map(|u| format!("{u:.1e}")).unwrap_or_else(|| "not measured".into())),
                u.map(|u| log_margin(u, th.tiny_update)).unwrap_or(0.5),
            );
            (Verdict::ModelCannotExtract, Verdict::LrTooSmall, 1.0)
        }
        None => {
            p.note("neither the data probe nor the shuffle control was run, so a stall cannot be attributed".into(), 0.0);
            (Verdict::NoSignal, Verdict::ModelCannotExtract, 0.0)
        }
    }
}

/// Gate D: a run that makes progress.
fn generalisation(ind: &Indicators, th: &Thresholds, p: &mut Path) -> (Verdict, Verdict, f64) {
    let rho = ind.loss_to_chance.unwrap_or(f64::NAN);
    p.note(
        format!(
            "training makes progress: loss is {rho:.3} x ln K{}",
            ind.loss_drop
                .map(|d| format!(" and fell {:.1}% over the window", d * 100.0))
                .unwrap_or_default()
        ),
        // Not stalled: either condition failing is enough, so the larger margin counts.
        match (ind.loss_to_chance, ind.loss_drop) {
            (Some(r), Some(d)) if r >= th.stall_loss_to_chance => {
                lin_margin(d, th.stall_drop, 0.05)
            }
            (Some(r), Some(d)) if d >= th.stall_drop => {
                lin_margin(r, th.stall_loss_to_chance, 0.2).max(lin_margin(d, th.stall_drop, 0.05))
            }
            (Some(r), _) => lin_margin(r, th.stall_loss_to_chance, 0.2),
            _ => 0.5,
        },
    );
    let at_chance = match (ind.val_accuracy, ind.chance_accuracy, ind.val_chance_band) {
        (Some(v), Some(c), Some(b)) => Some((v, c, b, (v - c).abs() <= b)),
        _ => None,
    };
    let probe_chance = ind.probe_p_value.map(|pv| pv >= 1e-3);
    // Progress on the training labels only, with nothing to generalise from:
    // the model memorises (Zhang et al. 2017).
    if let (Some((v, c, b, true)), Some(true)) = (at_chance, probe_chance) {
        p.note(
            format!("the progress is memorisation: held-out accuracy {v:.3} stays within chance {c:.3} ± {b:.3}"),
            ((b - (v - c).abs()) / b).clamp(0.0, 1.0).max(0.3),
        );
        p.note(
            format!(
                "and a model-independent probe finds no signal in the data (p = {:.2}): the labels carry none to learn",
                ind.probe_p_value.unwrap_or(1.0)
            ),
            log_margin(ind.probe_p_value.unwrap_or(1.0), 1e-3).max(0.3),
        );
        if rho < th.fitted_loss_to_chance {
            p.info(format!(
                "the training labels are being fitted: loss {rho:.3} x ln K (< {:.2})",
                th.fitted_loss_to_chance
            ));
        }
        return (Verdict::NoSignal, Verdict::Overfitting, 1.0);
    }
    let gap = ind.train_val_gap;
    let rising = ind.val_loss_rising.unwrap_or(0);
    if let Some(g) = gap.filter(|&g| g >= th.overfit_gap) {
        if rising >= th.rising_checks && ind.train_val_cos.is_none_or(|c| c < 0.0) {
            p.note(
                format!(
                    "held-out loss is {g:.3} x ln K above training loss (>= {:.2})",
                    th.overfit_gap
                ),
                lin_margin(g, th.overfit_gap, 0.2),
            );
            p.note(
                format!(
                    "and has risen for {rising} consecutive checks (>= {})",
                    th.rising_checks
                ),
                ((rising + 1 - th.rising_checks) as f64 / 2.0).min(1.0),
            );
            if let Some(c) = ind.train_val_cos {
                p.info(format!(
                    "training and held-out gradients point apart (cosine {c:.2})"
                ));
            }
            return (Verdict::Overfitting, Verdict::Healthy, 1.0);
        }
    }
    // Not overfitting: either condition failing is enough, so the larger margin counts.
    let gap_margin = gap.map_or(0.5, |g| {
        if g < th.overfit_gap {
            lin_margin(g, th.overfit_gap, 0.2)
        } else {
            0.0
        }
    });
    let rising_margin = if rising < th.rising_checks {
        ((th.rising_checks - rising) as f64 / 2.0).min(1.0)
    } else {
        0.0
    };
    p.note(
        format!(
            "held-out loss follows training: gap {} x ln K (overfitting needs >= {:.2}), rising for {rising} checks (needs >= {})",
            fmt_opt(gap),
            th.overfit_gap,
            th.rising_checks
        ),
        gap_margin.max(rising_margin),
    );
    (Verdict::Healthy, Verdict::Overfitting, 1.0)
}
