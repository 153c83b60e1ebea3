//! The depth signature of vanishing and exploding gradients (indicators I4,
//! I4b): how fast the gradient RMS changes per layer, fitted as
//! `ln a_l = c - κ · d_l` with `d_l` the distance from the output.
//!
//! `κ > 0` means gradients shrink towards the input (vanishing), `κ < 0` that
//! they grow (exploding). Mean-field theory predicts `κ = -½ ln χ₁` with
//! `χ₁ = σ_w² E[φ'(z)²]` (Schoenholz et al. 2017); for a plain sigmoid network
//! at PyTorch's default initialisation that is about 1.94 nats per layer.

use serde::{Deserialize, Serialize};

use crate::error::{DiagError, Result};
use crate::stats::fit_line;

/// The fitted depth profile of one set of per-layer gradient magnitudes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DepthSlope {
    /// Nats of attenuation per layer towards the input (`κ`).
    pub kappa: f64,
    /// R² of the fit.
    pub r2: f64,
    /// Total attenuation `A = κ · (n - 1)` in nats across the fitted span.
    pub attenuation: f64,
    /// Number of layers with a positive magnitude that entered the fit.
    pub fitted: usize,
    /// Number of layers whose magnitude was exactly zero (left out of the fit).
    pub zero_layers: usize,
}

/// Fits `κ` to per-layer magnitudes ordered from input (first) to output (last).
///
/// Layers with magnitude exactly 0 are left out of the fit and counted in
/// `zero_layers`: a zero gradient has no logarithm, and is evidence in
/// itself (dead units, or vanishing beyond the float range).
///
/// # Errors
/// [`DiagError::InsufficientData`] with fewer than two positive, finite magnitudes.
///
/// # Examples
/// ```
/// use gradlab_diag::depth_profile::depth_slope;
/// // Each layer towards the input has e^-2 times the gradient of the next.
/// let a: Vec<f64> = (0..10).map(|l| (-2.0 * (9 - l) as f64).exp()).collect();
/// let fit = depth_slope(&a)?;
/// assert!((fit.kappa - 2.0).abs() < 1e-12 && (fit.r2 - 1.0).abs() < 1e-12);
/// # Ok::<(), gradlab_diag::DiagError>(())
/// ```
pub fn depth_slope(magnitudes: &[f64]) -> Result<DepthSlope> {
    let n = magnitudes.len();
    let mut xs = Vec::with_capacity(n);
    let mut ys = Vec::with_capacity(n);
    let mut zero_layers = 0;
    for (l, &a) in magnitudes.iter().enumerate() {
        if a == 0.0 {
            zero_layers += 1;
        } else if a.is_finite() && a > 0.0 {
            xs.push((n - 1 - l) as f64);
            ys.push(a.ln());
        }
    }
    if xs.len() < 2 {
        return Err(DiagError::InsufficientData {
            indicator: "depth slope",
            reason: format!(
                "{} of {n} layers have a positive finite gradient magnitude; at least 2 are needed",
                xs.len()
            ),
        });
    }
    let fit = fit_line(&xs, &ys)?;
    let span = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        - xs.iter().cloned().fold(f64::INFINITY, f64::min);
    let kappa = -fit.slope;
    Ok(DepthSlope {
        kappa,
        r2: fit.r2,
        attenuation: kappa * span,
        fitted: xs.len(),
        zero_layers,
    })
}

/// The mean-field prediction `κ = -½ ln χ₁` for a per-layer squared-gradient
/// factor `χ₁ = σ_w² · E[φ'(z)²]`.
pub fn mean_field_kappa(chi1: f64) -> f64 {
    -0.5 * chi1.ln()
}
