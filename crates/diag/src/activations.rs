//! Forward-pass indicators on a probe batch of activations `[N, units...]`:
//! dead and saturated units (I11) and forward diversity (I12), and the
//! [`Activation`] a network uses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{DiagError, Result};

/// The non-linearity of a network, as far as the diagnostics care: which
/// units can be dead (ReLU) or saturated (sigmoid, tanh). Written in
/// history files as `relu`, `leaky-relu`, `gelu`, `tanh` or `sigmoid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// `max(x, 0)`: units can be dead (output 0 on every example).
    Relu,
    /// Leaky ReLU, any slope: no dead or saturated regime.
    LeakyRelu,
    /// GELU: no dead or saturated regime.
    Gelu,
    /// `tanh x`: units saturate at ±1.
    Tanh,
    /// `1 / (1 + e^-x)`: units saturate at 0 and 1.
    Sigmoid,
}

impl Activation {
    /// Every activation, in the order of the history format's list.
    pub const ALL: [Activation; 5] = [
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Gelu,
        Activation::Tanh,
        Activation::Sigmoid,
    ];

    /// The name written in history files (`"leaky-relu"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky-relu",
            Activation::Gelu => "gelu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
        }
    }

    /// The closed range of the activation's outputs, for the activations
    /// whose units can be dead or saturated.
    pub fn output_range(self) -> Option<(f32, f32)> {
        match self {
            Activation::Relu => Some((0.0, f32::INFINITY)),
            Activation::Sigmoid => Some((0.0, 1.0)),
            Activation::Tanh => Some((-1.0, 1.0)),
            Activation::LeakyRelu | Activation::Gelu => None,
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Activation {
    type Err = DiagError;

    /// Parses the history-file name (`relu`, `leaky-relu`, `gelu`, `tanh`,
    /// `sigmoid`; `leaky_relu` is accepted too).
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        Activation::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| DiagError::UnknownName {
                what: "activation",
                name: s.clone(),
                expected: "relu, leaky-relu, gelu, tanh or sigmoid",
            })
    }
}

fn split(values: &[f32], batch: usize, indicator: &'static str) -> Result<usize> {
    if batch == 0 || values.is_empty() || !values.len().is_multiple_of(batch) {
        return Err(DiagError::InsufficientData {
            indicator,
            reason: format!(
                "{} values cannot be split into {batch} examples",
                values.len()
            ),
        });
    }
    Ok(values.len() / batch)
}

/// Fraction of units (everything after the batch axis) that are dead
/// (ReLU: output 0 on every example) or saturated (sigmoid: `y (1 - y) <
/// 1e-3`, tanh: `1 - y² < 1e-3` on every example), given post-activation values.
///
/// # Errors
/// [`DiagError::InsufficientData`] when `values` does not split into `batch`
/// examples, or for an activation without a dead or saturated regime (leaky ReLU, GELU).
pub fn inactive_fraction(values: &[f32], batch: usize, activation: Activation) -> Result<f64> {
    let units = split(values, batch, "dead units")?;
    let inactive: fn(f32) -> bool = match activation {
        Activation::Relu => |y| y <= 0.0,
        Activation::Sigmoid => |y| y * (1.0 - y) < 1e-3,
        Activation::Tanh => |y| 1.0 - y * y < 1e-3,
        other => {
            return Err(DiagError::InsufficientData {
                indicator: "dead units",
                reason: format!("{} has no dead or saturated regime", other.as_str()),
            })
        }
    };
    // Example by example over contiguous rows: a unit is live once any
    // example activates it.
    let mut live = vec![false; units];
    for row in values.chunks_exact(units) {
        for (l, &y) in live.iter_mut().zip(row) {
            *l |= !inactive(y);
        }
    }
    let dead = live.iter().filter(|&&l| !l).count();
    Ok(dead as f64 / units as f64)
}

/// Forward diversity `ζ = mean_n ‖h_n - h̄‖² / mean_n ‖h_n‖²`: the centred
/// fraction of the activations' energy. About 1 when examples are spread
/// around zero, near 0 when every input maps to the same representation
/// (forward collapse, which accompanies vanishing gradients).
///
/// # Errors
/// [`DiagError::InsufficientData`] when `values` does not split into `batch`
/// examples; returns 0 when all activations are zero.
pub fn forward_diversity(values: &[f32], batch: usize) -> Result<f64> {
    let units = split(values, batch, "forward diversity")?;
    let mut mean = vec![0.0f64; units];
    for n in 0..batch {
        for (m, &v) in mean.iter_mut().zip(&values[n * units..(n + 1) * units]) {
            *m += v as f64;
        }
    }
    for m in &mut mean {
        *m /= batch as f64;
    }
    let mut centred = 0.0;
    let mut total = 0.0;
    for n in 0..batch {
        for (m, &v) in mean.iter().zip(&values[n * units..(n + 1) * units]) {
            let v = v as f64;
            centred += (v - m) * (v - m);
            total += v * v;
        }
    }
    Ok(if total == 0.0 { 0.0 } else { centred / total })
}
