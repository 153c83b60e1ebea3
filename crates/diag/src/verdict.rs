//! The gated decision procedure that turns indicators into a verdict with
//! its evidence (docs/diagnostics.md, "The decision procedure").
//!
//! Gates run in order: numerics (0), gradient flow through depth (A),
//! whether the training loss is still near chance (B), the cause of a run
//! near chance (C), then generalisation (D). Every comparison that decides
//! the path is quoted in `reasons` with its value and threshold. The
//! confidence is the smallest normalised move of the indicators that would
//! change the verdict (see [`decide`]); below
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
    /// Gradients flow and the data has signal, yet the deep network trains
    /// worse than its residual twin or a shallower reference (He et al. 2016).
    Degradation,
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
            Verdict::Degradation => "degradation",
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
            Verdict::Degradation => &[
                "add skip connections (the residual twin of the network)",
                "reduce the depth",
            ],
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
    /// I1 on the training subset in evaluation mode, at the last check
    /// (the held-out figures are in evaluation mode too).
    #[serde(default)]
    pub eval_loss_to_chance: Option<f64>,
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
    /// I10 trend: relative drop of the held-out loss from the window's
    /// first check to its last ((first - last) / first; negative when it
    /// rises); `None` with fewer than two checks in the window.
    #[serde(default)]
    pub val_loss_drop: Option<f64>,
    /// I9: cosine of mean train and held-out gradients.
    pub train_val_cos: Option<f64>,
    /// Held-out accuracy at the last check.
    pub val_accuracy: Option<f64>,
    /// Half-width of the chance band of `val_accuracy` (3 binomial standard deviations).
    pub val_chance_band: Option<f64>,
    /// Whether a loss or gradient was NaN or infinite during the run.
    pub non_finite: bool,
    /// The first step whose loss or gradients were not finite.
    #[serde(default)]
    pub first_non_finite_step: Option<usize>,
    /// The depth control's training loss / chance loss, over the same steps
    /// as `loss_to_chance`; `None` when the control was not run (or has no
    /// finite loss there).
    #[serde(default)]
    pub depth_control_loss_to_chance: Option<f64>,
    /// The depth control's reference network (e.g. its model SPEC).
    #[serde(default)]
    pub depth_control_model: Option<String>,
    /// The indicators describe the network at initialisation (no update
    /// was made): only the numerics and gradient-flow gates apply.
    #[serde(default)]
    pub at_init: bool,
}

/// The thresholds of the procedure: the starting values of
/// docs/diagnostics.md ("Thresholds", each with its source),
/// kept after calibration on the scenario suite except `tiny_update`
/// (see docs/diagnostics.md for the calibration).
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
    /// Loss-to-chance at or above which a run is still near chance, and
    /// the cause of its slowness is looked for.
    pub stall_loss_to_chance: f64,
    /// Relative loss drop across the window below which a loss has stalled
    /// (the training loss near chance, or the held-out loss of a run with a gap).
    pub stall_drop: f64,
    /// π above which the model beats its label-shuffled control.
    pub shuffle_gap: f64,
    /// p-value of the data probe below which the data holds signal.
    pub probe_alpha: f64,
    /// Median update ratio below which steps are too small.
    pub tiny_update: f64,
    /// Successive cosine above which tiny updates point a consistent way.
    pub consistent_cosine: f64,
    /// Loss-to-chance below which the training set counts as fitted (only
    /// quoted in reasons, never decisive).
    pub fitted_loss_to_chance: f64,
    /// Held-out minus training loss-to-chance that counts as a gap.
    pub overfit_gap: f64,
    /// Confidence below which the verdict is `inconclusive`.
    pub min_confidence: f64,
    /// Training loss-to-chance by which a network must trail its depth
    /// control (residual twin or shallower reference) to be `degradation`.
    #[serde(default = "default_degradation_gap")]
    pub degradation_gap: f64,
}

fn default_degradation_gap() -> f64 {
    Thresholds::default().degradation_gap
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            attenuation: 100f64.ln(),
            min_r2: 0.8,
            dead_fraction: 0.7,
            saturated_fraction: 0.5,
            exploding_loss_to_chance: 10.0,
            stall_loss_to_chance: 0.9,
            stall_drop: 0.02,
            shuffle_gap: 0.02,
            probe_alpha: 1e-3,
            tiny_update: 1e-4,
            consistent_cosine: 0.3,
            fitted_loss_to_chance: 0.5,
            overfit_gap: 0.1,
            min_confidence: 0.2,
            degradation_gap: 0.1,
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

/// One comparison of an indicator with a threshold on the decided path.
#[derive(Debug, Clone)]
struct Test {
    /// What was compared, for the confidence sentence.
    what: &'static str,
    /// Normalised distance to the threshold, in `[0, 1]`.
    margin: f64,
}

/// The comparisons and reasons of one pass through the procedure. A pass
/// can be told to reverse the outcome of chosen comparisons (by their
/// position on the path), which is how the confidence finds the nearest
/// other verdict.
struct Path {
    reasons: Vec<String>,
    tests: Vec<Test>,
    flips: Vec<usize>,
}

impl Path {
    fn new(flips: &[usize]) -> Self {
        Path {
            reasons: Vec::new(),
            tests: Vec::new(),
            flips: flips.to_vec(),
        }
    }
    /// Records a comparison and returns its outcome (reversed when flipped).
    fn test(&mut self, what: &'static str, outcome: bool, margin: f64) -> bool {
        let i = self.tests.len();
        let margin = if margin.is_finite() {
            margin.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.tests.push(Test { what, margin });
        outcome != self.flips.contains(&i)
    }
    fn note(&mut self, reason: String) {
        self.reasons.push(reason);
    }
}

/// A relative loss drop `d` ((first - last) / first) in words:
/// "fell 3.20%" or "rose 0.14%".
fn fell(d: f64, decimals: usize) -> String {
    if d < 0.0 {
        format!("rose {:.decimals$}%", -d * 100.0)
    } else {
        format!("fell {:.decimals$}%", d * 100.0)
    }
}

/// A diversity, a variance ratio that can underflow to zero.
fn tiny(z: f64) -> String {
    if z < 1e-30 {
        "below 1e-30".into()
    } else {
        format!("{z:.1e}")
    }
}

/// "p = 3.2e-5 < 1e-3", or "p below 1e-300" for a p-value that underflows
/// to zero.
fn p_below(p: f64, alpha: f64) -> String {
    if p < 1e-300 {
        "p below 1e-300".into()
    } else {
        format!("p = {p:.1e} < {alpha:.0e}")
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}"))
        .unwrap_or_else(|| "not measured".into())
}

/// The outcome of one pass: verdict, the runner-up and confidence cap of
/// the branch itself (for verdicts whose evidence is incomplete), reasons
/// and the comparisons made.
struct Pass {
    verdict: Verdict,
    cap_runner_up: Verdict,
    cap: f64,
    reasons: Vec<String>,
    tests: Vec<Test>,
}

fn pass(ind: &Indicators, th: &Thresholds, flips: &[usize]) -> Pass {
    let mut p = Path::new(flips);
    let (verdict, cap_runner_up, cap) = decide_path(ind, th, &mut p);
    Pass {
        verdict,
        cap_runner_up,
        cap: if cap.is_finite() { cap } else { 0.0 },
        reasons: p.reasons,
        tests: p.tests,
    }
}

/// Runs the gated procedure on `ind`.
///
/// Confidence is the smallest move, in units of each comparison's margin,
/// that changes the verdict: every comparison on the path is reversed in
/// turn, and in pairs (a pair costs the larger of its two margins), and the
/// closest reversal that reaches another verdict sets the confidence and
/// names the runner-up. A comparison whose other outcome leads to the same
/// verdict does not lower it. Branches whose evidence is incomplete (no
/// control, no fit quality) cap it. Below [`Thresholds::min_confidence`] the
/// verdict is `inconclusive` with the two candidates.
pub fn decide(ind: &Indicators, th: &Thresholds) -> Decision {
    let base = pass(ind, th, &[]);
    // (cost, verdict, what was reversed)
    let mut nearest: Option<(f64, Verdict, String)> = None;
    let closer = |n: &Option<(f64, Verdict, String)>, cost: f64| {
        cost < 1.0 && n.as_ref().is_none_or(|(c, _, _)| cost < *c)
    };
    for (i, ti) in base.tests.iter().enumerate() {
        if !closer(&nearest, ti.margin) {
            continue;
        }
        let one = pass(ind, th, &[i]);
        if one.verdict != base.verdict {
            nearest = Some((ti.margin, one.verdict, ti.what.to_string()));
            continue;
        }
        for (j, tj) in one.tests.iter().enumerate().skip(i + 1) {
            let cost = ti.margin.max(tj.margin);
            if !closer(&nearest, cost) {
                continue;
            }
            let two = pass(ind, th, &[i, j]);
            if two.verdict != base.verdict {
                nearest = Some((cost, two.verdict, format!("{} and {}", ti.what, tj.what)));
            }
        }
    }
    let mut reasons = base.reasons;
    if ind.at_init {
        reasons.insert(
            0,
            "measured at initialisation: the same initial network on every batch, no update made"
                .into(),
        );
    }
    // The control is quoted by gate C only; a run decided elsewhere still
    // reports what it showed.
    if let Some(pi) = ind
        .shuffle_gap
        .filter(|_| !reasons.iter().any(|r| r.contains("π =")))
    {
        reasons.push(if pi > th.shuffle_gap {
            format!("the label-shuffle control agrees: the loss is π = {pi:.3} of ln K below the same model's on shuffled labels (> {:.2}), so the model learns from the labels", th.shuffle_gap)
        } else {
            format!("the label-shuffle control: the loss is only π = {pi:.3} of ln K below the same model's on shuffled labels (<= {:.2}), no better than on labels without signal", th.shuffle_gap)
        });
    }
    let (mut confidence, mut runner_up, mut why) = (1.0, base.verdict, None);
    if let Some((cost, verdict, what)) = nearest {
        confidence = cost;
        runner_up = verdict;
        why = Some(format!(
            "confidence {cost:.2}: the nearest other verdict, {verdict}, is {cost:.2} of a margin away ({what})"
        ));
    }
    if base.cap < confidence {
        confidence = base.cap;
        runner_up = base.cap_runner_up;
        why = Some(format!(
            "confidence {confidence:.2}: the evidence behind {} is incomplete (above); the runner-up is {runner_up}",
            base.verdict
        ));
    }
    // Quoted when it reads as less than full confidence.
    if let (Some(why), true) = (why, confidence < 0.995) {
        reasons.push(why);
    }
    // A network that trains poorly (loss above half of chance) on data with
    // signal, with gradients that flow: only a depth control can say
    // whether its depth is what holds it back.
    let depth_control_would_decide = !ind.at_init
        && !ind.non_finite
        && ind.depth_control_model.is_none()
        && !matches!(
            base.verdict,
            Verdict::Exploding | Verdict::Vanishing | Verdict::DeadUnits
        )
        && ind.probe_p_value.is_some_and(|p| p < th.probe_alpha)
        && ind
            .loss_to_chance
            .is_some_and(|r| r >= th.fitted_loss_to_chance);
    if depth_control_would_decide {
        reasons.push("the depth control was not run: training the residual twin (or a shallower network) for the same steps would show whether this network trains worse than it because of its depth (degradation)".into());
    }
    let actions = |v: Verdict| {
        match (v, ind.depth_control_loss_to_chance) {
        (Verdict::Degradation, Some(reference)) => vec![format!(
            "add skip connections or reduce the depth: {} reaches a training loss of {reference:.3} x ln K in the same steps",
            ind.depth_control_model.as_deref().unwrap_or("the reference")
        )],
        _ => v.actions(),
    }
    };
    if confidence < th.min_confidence && runner_up != base.verdict {
        reasons.push(format!(
            "confidence {confidence:.2} is below {:.2}: the evidence does not separate {} from {runner_up}",
            th.min_confidence, base.verdict
        ));
        return Decision {
            verdict: Verdict::Inconclusive,
            reasons,
            confidence,
            candidates: vec![base.verdict, runner_up],
            actions: Verdict::Inconclusive.actions(),
        };
    }
    Decision {
        verdict: base.verdict,
        reasons,
        confidence,
        candidates: vec![base.verdict],
        actions: actions(base.verdict),
    }
}

/// Returns (verdict, runner-up if the cap binds, confidence cap).
fn decide_path(ind: &Indicators, th: &Thresholds, p: &mut Path) -> (Verdict, Verdict, f64) {
    let rho = ind.loss_to_chance;
    // Gate 0: numerics.
    if ind.non_finite {
        p.note(format!(
            "the loss or a gradient became NaN or infinite{}",
            ind.first_non_finite_step
                .map(|s| format!(" at step {s}"))
                .unwrap_or_default()
        ));
        if let Some(r) = rho {
            p.note(format!(
                "before that the training loss was {r:.3e} x ln K (exploding above {:.0}x)",
                th.exploding_loss_to_chance
            ));
        }
        if let (Some(kappa), Some(r2)) = (ind.kappa, ind.kappa_r2) {
            p.note(format!(
                "and activation gradients changed by {kappa:.2} nats per layer towards the input (R² = {r2:.2}; negative: they grow)"
            ));
        }
        return (Verdict::Exploding, Verdict::Exploding, 1.0);
    }
    if let Some(r) = rho {
        let limit = th.exploding_loss_to_chance;
        if p.test(
            "training loss against the exploding limit",
            r > limit,
            log_margin(r, limit),
        ) {
            p.note(format!(
                "training loss is {r:.1}x the chance loss ln K, above {limit:.0}x"
            ));
            return (Verdict::Exploding, Verdict::Exploding, 1.0);
        }
    }

    // Gate A: gradient flow through depth.
    let flow = match (ind.attenuation, ind.kappa_r2, ind.kappa) {
        (Some(a), Some(r2), Some(kappa)) => Some((a, r2, kappa)),
        _ => None,
    };
    let att = th.attenuation;
    if let Some((a, r2, kappa)) = flow {
        if p.test("attenuation", a <= -att, lin_margin(-a, att, att))
            && p.test(
                "R² of the depth fit",
                r2 >= th.min_r2,
                lin_margin(r2, th.min_r2, 0.2),
            )
        {
            p.note(format!(
                "activation gradients change by {kappa:.2} nats per layer towards the input (R² = {r2:.2}), {a:.1} nats in all: they grow by at least {att:.2} nats (x100), the exploding threshold"
            ));
            p.note(format!("the fit is good: R² {r2:.2} >= {:.2}", th.min_r2));
            if let Some(kp) = ind.kappa_param {
                p.note(format!("parameter gradients alone change by {kp:.2} nats per layer: per-parameter plots can hide this"));
            }
            return (Verdict::Exploding, Verdict::Exploding, r2);
        }
    }
    if let Some(d) = ind.dead_max {
        if p.test(
            "dead-unit fraction",
            d >= th.dead_fraction,
            lin_margin(d, th.dead_fraction, 0.25),
        ) {
            p.note(format!("{:.0}% of a layer's units output zero for every example of a training batch (threshold {:.0}%)", d * 100.0, th.dead_fraction * 100.0));
            return (Verdict::DeadUnits, Verdict::Vanishing, 1.0);
        }
    }
    let attenuated = flow.is_some_and(|(a, r2, _)| {
        p.test("attenuation", a >= att, lin_margin(a, att, att))
            && p.test(
                "R² of the depth fit",
                r2 >= th.min_r2,
                lin_margin(r2, th.min_r2, 0.2),
            )
    });
    let saturated = ind.saturated_max.filter(|&s| {
        p.test(
            "saturated-unit fraction",
            s >= th.saturated_fraction,
            lin_margin(s, th.saturated_fraction, 0.25),
        )
    });
    if attenuated || saturated.is_some() {
        let mut cap = 1.0;
        if let (true, Some((a, r2, kappa))) = (attenuated, flow) {
            p.note(format!(
                "activation gradients shrink by {kappa:.2} nats per layer towards the input (R² = {r2:.2}): {a:.1} nats (x{:.1e}) in all, beyond the {att:.2}-nat (x100) threshold",
                a.exp()
            ));
            p.note(format!("the fit is good: R² {r2:.2} >= {:.2}", th.min_r2));
            cap = r2;
        }
        if let Some(s) = saturated {
            p.note(format!("{:.0}% of a layer's units are saturated (derivative < 1e-3) on every example (threshold {:.0}%)", s * 100.0, th.saturated_fraction * 100.0));
        }
        if let Some(z) = ind.forward_diversity.filter(|&z| z < 1e-3) {
            p.note(format!("the forward pass collapses too: the last hidden layer's diversity is {}, so every input looks alike to the top layers", tiny(z)));
        }
        if let Some(pr) = ind.probe_accuracy {
            p.note(format!("the data does hold signal: a probe reaches {pr:.3} held-out accuracy against chance {}", fmt_opt(ind.chance_accuracy)));
        }
        if let Some(drop) = ind.loss_drop.filter(|&d| d > th.stall_drop) {
            p.note(format!("training is not stalled ({:.1}% loss drop over the window): the vanishing is mild so far", drop * 100.0));
        }
        return (Verdict::Vanishing, Verdict::NoSignal, cap);
    }
    if let Some((a, r2, _)) = flow {
        p.note(format!(
            "gradient flow is fine: {a:.1} nats of attenuation across depth (R² {r2:.2}) is within ±{att:.2}"
        ));
    }
    if ind.at_init {
        if flow.is_none() {
            p.note(
                "no depth profile was measured, so the gradient flow at initialisation is unknown"
                    .into(),
            );
            return (Verdict::Healthy, Verdict::Vanishing, 0.0);
        }
        p.note("at initialisation nothing has been trained: the loss-based gates do not apply, and the verdict is about gradient flow alone".into());
        return (Verdict::Healthy, Verdict::Healthy, 1.0);
    }
    if let Some(v) = degradation(ind, th, p) {
        return v;
    }

    // Gate B: is the training loss still near chance?
    match rho {
        Some(r) => {
            let stall = th.stall_loss_to_chance;
            if p.test(
                "training loss against chance",
                r >= stall,
                lin_margin(r, stall, 0.1),
            ) {
                p.note(format!(
                    "training is still near chance: loss is {r:.3} x ln K (>= {stall:.2}) and {} over the window",
                    ind.loss_drop
                        .map(|d| fell(d, 2))
                        .unwrap_or_else(|| "changed by an unmeasured amount".into())
                ));
                stall_cause(ind, th, p)
            } else {
                generalisation(ind, th, p)
            }
        }
        None => generalisation(ind, th, p),
    }
}

/// Gate A2: gradients flow, but does the deep network train worse than its
/// depth control (residual twin or shallower reference) on data with signal?
fn degradation(ind: &Indicators, th: &Thresholds, p: &mut Path) -> Option<(Verdict, Verdict, f64)> {
    let name = ind.depth_control_model.as_deref()?;
    let Some(reference) = ind.depth_control_loss_to_chance else {
        p.note(format!("the depth control ({name}) has no finite training loss over the window, so it decides nothing"));
        return None;
    };
    let rho = ind.loss_to_chance?;
    let gap = rho - reference;
    let limit = th.degradation_gap;
    if !p.test(
        "training loss against the depth control's",
        gap >= limit,
        lin_margin(gap, limit, limit),
    ) {
        p.note(format!("the depth control does not train clearly better: training loss {rho:.3} x ln K against {reference:.3} for {name}, a gap of {gap:+.3} where degradation needs >= {limit:.2}"));
        return None;
    }
    let quote = format!("the network trains worse than its depth control: training loss {rho:.3} x ln K against {reference:.3} for {name} after the same steps on the same data (a gap of {gap:.3} >= {limit:.2})");
    let alpha = th.probe_alpha;
    match ind.probe_p_value {
        Some(pv) => {
            if !p.test(
                "data-probe p-value",
                pv < alpha,
                log_margin(pv.max(1e-300), alpha),
            ) {
                p.note(format!("{quote}, but a probe finds no signal in the data (p = {pv:.2} >= {alpha:.0e}), so depth is not what holds it back"));
                return None;
            }
            p.note(quote);
            p.note(format!("gradients neither vanish nor explode (above) and the data holds signal (probe accuracy {} against chance {}, {}): the deeper network is harder to optimise, the degradation problem of He et al. (2016)", fmt_opt(ind.probe_accuracy), fmt_opt(ind.chance_accuracy), p_below(pv, alpha)));
            Some((Verdict::Degradation, Verdict::Healthy, 1.0))
        }
        None => {
            p.note(quote);
            p.note("the data probe was not run, so the data's signal is not confirmed (confidence at most 0.7)".into());
            Some((Verdict::Degradation, Verdict::Healthy, 0.7))
        }
    }
}

/// Gate C: why a run with healthy gradient flow is still near chance.
fn stall_cause(ind: &Indicators, th: &Thresholds, p: &mut Path) -> (Verdict, Verdict, f64) {
    let chance = fmt_opt(ind.chance_accuracy);
    let gap = ind.shuffle_gap;
    let tiny = th.tiny_update;
    let tiny_steps = |p: &mut Path| {
        ind.update_ratio
            .filter(|&u| p.test("update ratio", u < tiny, log_margin(u, tiny)))
    };
    if let Some(pi) = gap {
        if p.test(
            "progress gap to the shuffled control",
            pi > th.shuffle_gap,
            lin_margin(pi, th.shuffle_gap, th.shuffle_gap),
        ) {
            p.note(format!("the model beats its label-shuffled control by π = {pi:.3} of ln K (> {:.2}): it is learning, slowly", th.shuffle_gap));
            if let Some(u) = tiny_steps(p) {
                p.note(format!("in tiny steps: the median update/weight ratio is {u:.1e} (< {tiny:.0e}; about 1e-3 is typical), so the step size is what holds it back"));
                return (Verdict::LrTooSmall, Verdict::SlowButLearning, 1.0);
            }
            return (Verdict::SlowButLearning, Verdict::LrTooSmall, 1.0);
        }
        p.note(format!(
            "the model does no better than on shuffled labels: π = {pi:.3} (<= {:.2})",
            th.shuffle_gap
        ));
    }
    let Some(pv) = ind.probe_p_value else {
        p.note("the data probe was not run, so a run near chance cannot be attributed".into());
        return (Verdict::NoSignal, Verdict::ModelCannotExtract, 0.0);
    };
    let acc = ind.probe_accuracy.unwrap_or(f64::NAN);
    let alpha = th.probe_alpha;
    if p.test(
        "data-probe p-value",
        pv >= alpha,
        log_margin(pv.max(1e-300), alpha),
    ) {
        p.note(format!("no learnable signal in the data: a model-independent probe (logistic regression and nearest neighbours) reaches {acc:.3} held-out accuracy against chance {chance} (p = {pv:.2} >= {alpha:.0e})"));
        if let Some(s) = ind.snr {
            p.note(format!(
                "mini-batch gradients disagree: bias-corrected SNR {s:.3}, successive cosine {}",
                fmt_opt(ind.cos_successive)
            ));
        }
        if gap.is_none() {
            p.note("the label-shuffle control was not run, which would show whether this model extracts anything (confidence at most 0.8)".into());
            return (Verdict::NoSignal, Verdict::ModelCannotExtract, 0.8);
        }
        return (Verdict::NoSignal, Verdict::ModelCannotExtract, 1.0);
    }
    p.note(format!("the data holds signal: a probe reaches {acc:.3} held-out accuracy against chance {chance} ({})", p_below(pv, alpha)));
    if let Some(u) = tiny_steps(p) {
        p.note(format!(
            "updates are tiny: median update/weight ratio {u:.1e} (< {tiny:.0e}; about 1e-3 is typical)"
        ));
        let consistent = ind.cos_successive.map(|c| {
            (
                c,
                p.test(
                    "successive cosine",
                    c > th.consistent_cosine,
                    lin_margin(c, th.consistent_cosine, 0.3),
                ),
            )
        });
        return match consistent {
            Some((c, true)) => {
                p.note(format!(
                    "and consistent: successive gradients have cosine {c:.2} (> {:.2}), so larger steps would go somewhere",
                    th.consistent_cosine
                ));
                (Verdict::LrTooSmall, Verdict::ModelCannotExtract, 1.0)
            }
            other => {
                p.note(format!(
                    "but successive gradients agree little (cosine {}, <= {:.2}): larger steps may mostly add noise",
                    fmt_opt(other.map(|(c, _)| c)),
                    th.consistent_cosine
                ));
                (Verdict::LrTooSmall, Verdict::ModelCannotExtract, 0.7)
            }
        };
    }
    if gap.is_none() {
        if let Some(d) = ind.loss_drop {
            if p.test(
                "training-loss drop",
                d >= th.stall_drop,
                lin_margin(d, th.stall_drop, th.stall_drop),
            ) {
                p.note(format!("the training loss still falls ({:.1}% over the window, >= {:.0}%) with steps of normal size: probably learning slowly (the label-shuffle control would confirm it)", d * 100.0, th.stall_drop * 100.0));
                return (Verdict::SlowButLearning, Verdict::ModelCannotExtract, 0.7);
            }
        }
    }
    p.note(format!(
        "updates are of normal size (median update/weight ratio {}) and gradients flow, yet the model does not learn the signal",
        ind.update_ratio.map(|u| format!("{u:.1e}")).unwrap_or_else(|| "not measured".into())
    ));
    (Verdict::ModelCannotExtract, Verdict::LrTooSmall, 1.0)
}

/// Gate D: a run whose training loss has left chance.
fn generalisation(ind: &Indicators, th: &Thresholds, p: &mut Path) -> (Verdict, Verdict, f64) {
    let rho = ind.loss_to_chance.unwrap_or(f64::NAN);
    p.note(format!(
        "training makes progress: loss is {rho:.3} x ln K (< {:.2}){}",
        th.stall_loss_to_chance,
        ind.loss_drop
            .map(|d| format!(" and {} over the window", fell(d, 1)))
            .unwrap_or_default()
    ));
    if let Some(e) = ind
        .eval_loss_to_chance
        .filter(|&e| e - rho >= th.overfit_gap)
    {
        p.note(format!("in evaluation mode the training subset's loss is {e:.3} x ln K against {rho:.3} on the training batches: the network computes something else in evaluation mode (BatchNorm's running statistics lag the weights, or dropout), and the held-out figures below are in evaluation mode"));
    }
    // Progress on the training labels only, with nothing to generalise from:
    // the model memorises (Zhang et al. 2017). Held-out accuracy below
    // chance is no evidence of signal, so the band is one-sided.
    if let (Some(v), Some(c), Some(b), Some(pv)) = (
        ind.val_accuracy,
        ind.chance_accuracy,
        ind.val_chance_band,
        ind.probe_p_value,
    ) {
        let alpha = th.probe_alpha;
        if p.test(
            "held-out accuracy against chance",
            v <= c + b,
            lin_margin(v, c + b, b),
        ) && p.test(
            "data-probe p-value",
            pv >= alpha,
            log_margin(pv.max(1e-300), alpha),
        ) {
            p.note(format!("the progress is memorisation: held-out accuracy {v:.3} does not beat chance {c:.3} (+ {b:.3}, three binomial standard deviations)"));
            p.note(format!("and a model-independent probe finds no signal in the data (p = {pv:.2} >= {alpha:.0e}): the labels carry none to learn"));
            if rho < th.fitted_loss_to_chance {
                p.note(format!(
                    "the training labels are being fitted: loss {rho:.3} x ln K (< {:.2})",
                    th.fitted_loss_to_chance
                ));
            }
            return (Verdict::NoSignal, Verdict::Overfitting, 1.0);
        }
    }
    let gap = ind.train_val_gap;
    let gap_t = th.overfit_gap;
    if let Some(g) = gap {
        if p.test("held-out gap", g >= gap_t, lin_margin(g, gap_t, gap_t)) {
            p.note(format!(
                "held-out loss is {g:.3} x ln K above training loss (>= {gap_t:.2})"
            ));
            let Some(vd) = ind.val_loss_drop else {
                p.note(
                    "the held-out trend was not measured (fewer than two checks in the window)"
                        .into(),
                );
                return (Verdict::Healthy, Verdict::Overfitting, 0.5);
            };
            if p.test(
                "held-out loss drop",
                vd < th.stall_drop,
                lin_margin(vd, th.stall_drop, th.stall_drop),
            ) {
                p.note(format!(
                    "and has stopped improving: it changed by {:+.1}% over the window (a drop below {:.0}%){}",
                    -vd * 100.0,
                    th.stall_drop * 100.0,
                    ind.loss_drop
                        .map(|d| format!(" while the training loss {}", fell(d, 1)))
                        .unwrap_or_default()
                ));
                if let Some(c) = ind.train_val_cos.filter(|&c| c < 0.0) {
                    p.note(format!(
                        "training and held-out gradients point apart (cosine {c:.2})"
                    ));
                }
                if let Some(r) = ind.val_loss_rising.filter(|&r| r > 0) {
                    p.note(format!("held-out loss rose over the last {r} checks"));
                }
                return (Verdict::Overfitting, Verdict::Healthy, 1.0);
            }
            p.note(format!(
                "but held-out loss still improves ({:.1}% over the window, >= {:.0}%): the gap is not growing yet",
                vd * 100.0,
                th.stall_drop * 100.0
            ));
            return (Verdict::Healthy, Verdict::Overfitting, 1.0);
        }
    }
    p.note(format!(
        "held-out loss follows training: gap {} x ln K (overfitting needs >= {gap_t:.2})",
        fmt_opt(gap)
    ));
    (Verdict::Healthy, Verdict::Overfitting, 1.0)
}
