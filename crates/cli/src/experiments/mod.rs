//! The four experiments of the demo report, one per file. Each returns a
//! report [`Section`](crate::report::Section): tables, plots, a sentence of
//! interpretation computed from its numbers, and every number as JSON.

pub mod aux_heads;
pub mod capacity_vs_signal;
pub mod conv_ops;
pub mod fit;
pub mod plain_vs_residual;

use gradlab_diag::stats::MeanInterval;

use crate::error::{CliError, Result};
use crate::report::Section;

/// How big to run: `quick` finishes the whole demo in about a minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    /// The small version (tests, a first look).
    pub quick: bool,
    /// First seed; the experiments that repeat their runs use `seeds` seeds from it.
    pub seed: u64,
    /// Multiplies the training steps of the full version (`experiment --scale 4`).
    pub scale: f64,
    /// How many seeds the repeated experiments run (at least 1).
    pub seeds: usize,
}

impl Size {
    /// Seeds in the full demo: enough for a t-interval that is not dominated
    /// by the t quantile (t(0.975, 4) = 2.78 against 12.7 for two seeds).
    pub const FULL_SEEDS: usize = 5;
    /// Seeds with `--quick`: the fewest that give an interval at all.
    pub const QUICK_SEEDS: usize = 2;

    /// `seed, seed + 1, …`, `seeds` of them.
    pub fn seed_list(&self) -> Vec<u64> {
        (0..self.seeds as u64).map(|i| self.seed + i).collect()
    }

    /// `quick` steps when quick, else `full` times the scale.
    pub fn steps(&self, quick: usize, full: usize) -> usize {
        if self.quick {
            quick
        } else {
            ((full as f64 * self.scale).round() as usize).max(1)
        }
    }
}

/// The experiment names, in report order.
pub const NAMES: [&str; 4] = [
    "conv-ops",
    "plain-vs-residual",
    "aux-heads",
    "capacity-vs-signal",
];

/// Runs one experiment by name.
///
/// # Errors
/// [`CliError::Usage`] for an unknown name; the experiment's errors.
pub fn run(name: &str, size: &Size) -> Result<Section> {
    match name {
        "conv-ops" => conv_ops::run(size),
        "plain-vs-residual" => plain_vs_residual::run(size),
        "aux-heads" => aux_heads::run(size),
        "capacity-vs-signal" => capacity_vs_signal::run(size),
        other => Err(CliError::Usage(format!(
            "unknown experiment '{other}'; valid experiments: {}",
            NAMES.join(", ")
        ))),
    }
}

/// `1.2e-3` style for small and large numbers, fixed otherwise.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x != 0.0 && (x.abs() < 1e-2 || x.abs() >= 1e5) {
        format!("{x:.2e}")
    } else {
        format!("{x:.3}")
    }
}

/// The reason to print next to a verdict: the first one, passing over the
/// statement that gradient flow is fine (a gate passed, not why the verdict
/// was reached); for `inconclusive`, the last one, which names the two
/// verdicts it could not separate.
pub fn key_reason(d: &gradlab_diag::Diagnosis) -> String {
    if d.verdict == gradlab_diag::Verdict::Inconclusive {
        return d.reasons.last().cloned().unwrap_or_default();
    }
    d.reasons
        .iter()
        .find(|r| !r.starts_with("gradient flow is fine"))
        .or(d.reasons.first())
        .cloned()
        .unwrap_or_default()
}

/// A verdict cell: the verdict (and confidence), then why on a second line.
pub fn verdict_cell(d: &gradlab_diag::Diagnosis, confidence: bool) -> String {
    let head = if confidence {
        format!("{} ({:.2})", d.verdict, d.confidence)
    } else {
        d.verdict.to_string()
    };
    format!("{head}\n{}", key_reason(d))
}

/// How often `checks` evenly spaced checks over `steps` steps happen, in words.
pub fn every(steps: usize, checks: usize) -> String {
    match steps / checks.max(1) {
        0 | 1 => "after every step".into(),
        n => format!("every {n} steps"),
    }
}

/// `mean ± half-width` of a 95% interval over seeds, each with [`num`]; a
/// single seed has no interval, and says so.
pub fn mean_pm(iv: &MeanInterval) -> String {
    match iv.half_width {
        Some(h) => format!("{} ± {}", num(iv.mean), num(h)),
        None => format!("{} (one seed, no interval)", num(iv.mean)),
    }
}

/// The word for an effect measured as an interval of differences: the
/// direction only when the 95% interval excludes 0.
pub fn effect_word(iv: &MeanInterval) -> &'static str {
    if iv.upper() < 0.0 {
        "reduced"
    } else if iv.lower() > 0.0 {
        "increased"
    } else {
        "no effect measurable at this size"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradlab_diag::stats::mean_interval;

    #[test]
    fn seed_list_counts_up_from_the_seed() {
        let size = Size {
            quick: false,
            seed: 7,
            scale: 1.0,
            seeds: 3,
        };
        assert_eq!(size.seed_list(), vec![7, 8, 9]);
        assert_eq!(Size { seeds: 1, ..size }.seed_list(), vec![7]);
    }

    #[test]
    fn mean_pm_quotes_mean_and_half_width() {
        let iv = mean_interval(&[0.1, 0.2, 0.3]).unwrap();
        let h = 4.303 * 0.1 / 3f64.sqrt();
        assert_eq!(mean_pm(&iv), format!("0.200 ± {}", num(h)));
        assert_eq!(
            mean_pm(&mean_interval(&[0.25]).unwrap()),
            "0.250 (one seed, no interval)"
        );
    }

    #[test]
    fn effect_word_follows_the_interval() {
        let word = |v: &[f64]| effect_word(&mean_interval(v).unwrap());
        assert_eq!(word(&[-0.10, -0.12, -0.09]), "reduced");
        assert_eq!(word(&[0.10, 0.12, 0.09]), "increased");
        // Same mean as "reduced", but the spread takes the interval across 0.
        assert_eq!(
            word(&[-0.40, 0.20, -0.11]),
            "no effect measurable at this size"
        );
        assert_eq!(word(&[-0.1]), "no effect measurable at this size");
    }
}
