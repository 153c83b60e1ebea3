//! The depth signature of vanishing and exploding gradients (indicators I4,
//! I4b): how fast the gradient RMS changes per layer, fitted as
//! `ln a_l = c - κ · d_l` with `d_l` the distance from the output.
//!
//! `κ > 0` means gradients shrink towards the input (vanishing), `κ < 0` that
//! they grow (exploding). Mean-field theory predicts `κ = -½ ln χ₁` with
//! `χ₁ = σ_w² E[φ'(√q* z)²]` at the fixed point `q*` of the pre-activation
//! variance (Schoenholz et al. 2017); [`pytorch_default_mean_field`] computes
//! it: about 1.958 nats per layer for a plain sigmoid network of width 32 at
//! PyTorch's default initialisation (1.94 if the pre-activations sat at 0).

use serde::{Deserialize, Serialize};

use crate::activations::Activation;
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

/// The mean-field description of a deep plain network at initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanField {
    /// Fixed point `q*` of the pre-activation variance.
    pub q_star: f64,
    /// Per-layer squared-gradient factor `χ₁ = σ_w² E[φ'(√q* z)²]`.
    pub chi1: f64,
    /// `κ = -½ ln χ₁`, nats per layer.
    pub kappa: f64,
}

/// `E[f(z)]` for `z ~ N(0, 1)`: composite Simpson on `[-12, 0]` and
/// `[0, 12]`, 2400 panels each. The tails beyond 12 weigh under 1e-32, and
/// each half meets 0 as a one-sided limit, so a jump there (ReLU's
/// derivative) costs no accuracy: every activation here comes out to ~1e-12.
fn gaussian_expectation(f: &dyn Fn(f64) -> f64) -> f64 {
    const PANELS: usize = 2400;
    const END: f64 = 12.0;
    let norm = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
    let g = |z: f64| f(z) * norm * (-0.5 * z * z).exp();
    // Half-line from just beside 0 (on the side of `sign`) out to sign · END.
    let half = |sign: f64| {
        let h = END / PANELS as f64;
        let mut sum = g(sign * f64::MIN_POSITIVE) + g(sign * END);
        for i in 1..PANELS {
            let w = if i % 2 == 1 { 4.0 } else { 2.0 };
            sum += w * g(sign * i as f64 * h);
        }
        sum * h / 3.0
    };
    half(-1.0) + half(1.0)
}

/// A scalar function of one variable.
type Scalar = fn(f64) -> f64;

/// The activation and its derivative, where both have a closed form.
fn activation_pair(act: Activation) -> Result<(Scalar, Scalar)> {
    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }
    match act {
        Activation::Sigmoid => Ok((sigmoid, |x| sigmoid(x) * (1.0 - sigmoid(x)))),
        Activation::Tanh => Ok((f64::tanh, |x| 1.0 - x.tanh().powi(2))),
        Activation::Relu => Ok((|x| x.max(0.0), |x| if x > 0.0 { 1.0 } else { 0.0 })),
        Activation::LeakyRelu | Activation::Gelu => Err(DiagError::Unsupported {
            what: "mean-field fixed point",
            reason: format!("no closed form for {act} here (sigmoid, tanh or relu)"),
        }),
    }
}

/// Mean field of a deep plain network whose weights have variance
/// `σ_w² / fan_in` and biases variance `σ_b²`: iterates
/// `q ← σ_w² E[φ(√q z)²] + σ_b²` to its fixed point `q*`, then
/// `χ₁ = σ_w² E[φ'(√q* z)²]` and `κ = -½ ln χ₁`.
///
/// # Errors
/// [`DiagError::InvalidValue`] for a negative or non-finite variance;
/// [`DiagError::Unsupported`] for an activation without a closed form, or
/// when the variance has not settled after 10 000 iterations (it grows
/// without bound when `σ_w² E[φ'²] ≥ 1` for ReLU).
pub fn mean_field(act: Activation, sigma_w2: f64, sigma_b2: f64) -> Result<MeanField> {
    for (what, value) in [
        ("weight variance σ_w²", sigma_w2),
        ("bias variance σ_b²", sigma_b2),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(DiagError::InvalidValue { what, value });
        }
    }
    let (phi, dphi) = activation_pair(act)?;
    // Start at the variance of a unit-variance input passed through one layer.
    let mut q = sigma_w2 + sigma_b2;
    for _ in 0..10_000 {
        let s = q.sqrt();
        let next = sigma_w2 * gaussian_expectation(&|z| phi(s * z).powi(2)) + sigma_b2;
        let settled = (next - q).abs() <= 1e-13 * next.max(1e-300);
        q = next;
        if !q.is_finite() {
            break;
        }
        if settled {
            let s = q.sqrt();
            let chi1 = sigma_w2 * gaussian_expectation(&|z| dphi(s * z).powi(2));
            return Ok(MeanField {
                q_star: q,
                chi1,
                kappa: mean_field_kappa(chi1),
            });
        }
    }
    Err(DiagError::Unsupported {
        what: "mean-field fixed point",
        reason: format!(
            "the variance did not settle for {act} with σ_w² = {sigma_w2}, σ_b² = {sigma_b2} (last q = {q})"
        ),
    })
}

/// [`mean_field`] at PyTorch's default `nn.Linear` initialisation for hidden
/// layers of `width` units: weights and biases `U(±1/√fan_in)`, so
/// `σ_w² = 1/3` and `σ_b² = 1/(3 · width)`.
///
/// # Errors
/// As [`mean_field`]; [`DiagError::InvalidValue`] for width 0.
///
/// # Examples
/// ```
/// use gradlab_diag::{depth_profile::pytorch_default_mean_field, Activation};
/// let mf = pytorch_default_mean_field(Activation::Sigmoid, 32)?;
/// assert!((mf.kappa - 1.958).abs() < 1e-3);
/// # Ok::<(), gradlab_diag::DiagError>(())
/// ```
pub fn pytorch_default_mean_field(act: Activation, width: usize) -> Result<MeanField> {
    if width == 0 {
        return Err(DiagError::InvalidValue {
            what: "layer width",
            value: 0.0,
        });
    }
    mean_field(act, 1.0 / 3.0, 1.0 / (3.0 * width as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xorshift generator and Box-Muller normals: an estimate that
    /// shares no code with the quadrature.
    fn normals(n: usize) -> Vec<f64> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n / 2)
            .flat_map(|_| {
                let (u, v) = (uniform(), uniform());
                let r = (-2.0 * u.ln()).sqrt();
                let t = 2.0 * std::f64::consts::PI * v;
                [r * t.cos(), r * t.sin()]
            })
            .collect()
    }

    /// The same fixed point and χ₁ with sample means in place of integrals.
    fn monte_carlo(act: Activation, sigma_w2: f64, sigma_b2: f64, z: &[f64]) -> (f64, f64) {
        let (phi, dphi) = activation_pair(act).unwrap();
        let mean = |f: &dyn Fn(f64) -> f64| z.iter().map(|&x| f(x)).sum::<f64>() / z.len() as f64;
        let mut q = 1.0;
        for _ in 0..200 {
            let s: f64 = q;
            q = sigma_w2 * mean(&|x| phi(s.sqrt() * x).powi(2)) + sigma_b2;
        }
        let chi1 = sigma_w2 * mean(&|x| dphi(q.sqrt() * x).powi(2));
        (q, mean_field_kappa(chi1))
    }

    #[test]
    fn sigmoid_width_32_agrees_with_monte_carlo() {
        let mf = pytorch_default_mean_field(Activation::Sigmoid, 32).unwrap();
        let z = normals(400_000);
        let (q, kappa) = monte_carlo(Activation::Sigmoid, 1.0 / 3.0, 1.0 / 96.0, &z);
        assert!((mf.q_star - q).abs() < 1e-3, "{} vs {q}", mf.q_star);
        assert!((mf.kappa - kappa).abs() < 2e-3, "{} vs {kappa}", mf.kappa);
        assert!((mf.kappa - 1.958).abs() < 1e-3, "{mf:?}");
        // Pre-activations away from 0 make φ' smaller than 1/4: κ exceeds -½ ln(1/48).
        assert!(mf.kappa > mean_field_kappa(1.0 / 48.0) + 0.01);
    }

    #[test]
    fn tanh_and_relu_agree_with_monte_carlo_and_closed_forms() {
        let z = normals(400_000);
        let mf = mean_field(Activation::Tanh, 1.5, 0.05).unwrap();
        let (q, kappa) = monte_carlo(Activation::Tanh, 1.5, 0.05, &z);
        assert!((mf.q_star - q).abs() < 5e-3 && (mf.kappa - kappa).abs() < 5e-3);
        // ReLU: E[φ(√q z)²] = q/2 and E[φ'²] = 1/2 exactly.
        let mf = mean_field(Activation::Relu, 1.0, 0.1).unwrap();
        assert!(
            (mf.q_star - 0.2).abs() < 1e-9 && (mf.chi1 - 0.5).abs() < 1e-9,
            "{mf:?}"
        );
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert!(matches!(
            mean_field(Activation::Sigmoid, -1.0, 0.0),
            Err(DiagError::InvalidValue { value, .. }) if value == -1.0
        ));
        assert!(matches!(
            mean_field(Activation::Gelu, 1.0, 0.0),
            Err(DiagError::Unsupported { .. })
        ));
        // ReLU with σ_w² = 4 doubles the variance each layer: no fixed point.
        let err = mean_field(Activation::Relu, 4.0, 0.1).unwrap_err();
        assert!(err.to_string().contains("did not settle"), "{err}");
        assert!(pytorch_default_mean_field(Activation::Sigmoid, 0).is_err());
    }
}
