//! The four experiments of the demo report, one per file. Each returns a
//! report [`Section`](crate::report::Section): tables, plots, a sentence of
//! interpretation computed from its numbers, and every number as JSON.

pub mod aux_heads;
pub mod capacity_vs_signal;
pub mod conv_ops;
pub mod fit;
pub mod plain_vs_residual;

use crate::error::{CliError, Result};
use crate::report::Section;

/// How big to run: `quick` finishes the whole demo in about a minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    /// The small version (tests, a first look).
    pub quick: bool,
    /// Seed of every run.
    pub seed: u64,
    /// Multiplies the training steps of the full version (`experiment --scale 4`).
    pub scale: f64,
}

impl Size {
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
