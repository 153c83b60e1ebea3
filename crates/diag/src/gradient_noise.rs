//! Agreement between mini-batch gradients (indicators I7-I9): the
//! bias-corrected gradient signal-to-noise ratio over `k` batches, and
//! cosines between gradients.
//!
//! Under the i.i.d. mini-batch model, `SNR_B = B / B_simple` and the cosine
//! of two independent batch gradients is about `SNR_B / (1 + SNR_B)`
//! (McCandlish et al. 2018). Neither alone separates "no signal" from
//! "converged"; the loss-to-chance ratio does.

use crate::error::{DiagError, Result};
use crate::stats::{cosine, sq_norm};

/// Bias-corrected gradient SNR over `k >= 2` gradients taken at the same
/// parameters: with `ḡ` their mean and `S = Σ‖g_j - ḡ‖² / (k - 1)`,
/// `SNR = (‖ḡ‖² - S/k) / S`. Identical gradients give `+∞`; independent
/// zero-mean noise gives about 0 (it can be slightly negative).
///
/// # Errors
/// [`DiagError::InsufficientData`] for fewer than two gradients or zero
/// gradients everywhere; [`DiagError::LengthMismatch`] for ragged gradients.
///
/// # Examples
/// ```
/// use gradlab_diag::gradient_noise::gradient_snr;
/// let g = vec![1.0f32, -2.0, 0.5];
/// assert_eq!(gradient_snr(&[g.clone(), g.clone(), g])?, f64::INFINITY);
/// # Ok::<(), gradlab_diag::DiagError>(())
/// ```
pub fn gradient_snr(grads: &[Vec<f32>]) -> Result<f64> {
    let k = grads.len();
    if k < 2 {
        return Err(DiagError::InsufficientData {
            indicator: "gradient SNR",
            reason: format!("{k} gradients; at least 2 are needed"),
        });
    }
    let d = grads[0].len();
    if let Some(g) = grads.iter().find(|g| g.len() != d) {
        return Err(DiagError::LengthMismatch {
            indicator: "gradient SNR",
            left: d,
            right: g.len(),
        });
    }
    let mut mean = vec![0.0f64; d];
    for g in grads {
        for (m, &x) in mean.iter_mut().zip(g) {
            *m += x as f64;
        }
    }
    for m in &mut mean {
        *m /= k as f64;
    }
    let mean_sq: f64 = mean.iter().map(|m| m * m).sum();
    let spread: f64 = grads
        .iter()
        .map(|g| {
            g.iter()
                .zip(&mean)
                .map(|(&x, m)| (x as f64 - m).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / (k - 1) as f64;
    if spread == 0.0 {
        if mean_sq == 0.0 {
            return Err(DiagError::InsufficientData {
                indicator: "gradient SNR",
                reason: "every gradient is zero".into(),
            });
        }
        return Ok(f64::INFINITY);
    }
    Ok((mean_sq - spread / k as f64) / spread)
}

/// Mean cosine between successive gradients of a stream (`g_t` with
/// `g_{t-1}`); pairs where either gradient is zero are skipped.
///
/// # Errors
/// [`DiagError::InsufficientData`] without a usable pair;
/// [`DiagError::LengthMismatch`] for ragged gradients.
pub fn successive_cosine(grads: &[Vec<f32>]) -> Result<f64> {
    let mut sum = 0.0;
    let mut count = 0usize;
    for pair in grads.windows(2) {
        if let Some(c) = cosine(&pair[0], &pair[1])? {
            sum += c;
            count += 1;
        }
    }
    if count == 0 {
        return Err(DiagError::InsufficientData {
            indicator: "successive cosine",
            reason: format!(
                "{} gradients give no pair of non-zero gradients",
                grads.len()
            ),
        });
    }
    Ok(sum / count as f64)
}

/// Cosine between the mean gradient of two sets (train and held-out
/// batches at the same parameters, indicator I9).
///
/// # Errors
/// As [`successive_cosine`], when either set is empty, ragged, or zero.
pub fn mean_gradient_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> Result<f64> {
    let ma = mean_vector(a, "train/held-out cosine")?;
    let mb = mean_vector(b, "train/held-out cosine")?;
    cosine(&ma, &mb)?.ok_or_else(|| DiagError::InsufficientData {
        indicator: "train/held-out cosine",
        reason: "a mean gradient is zero".into(),
    })
}

fn mean_vector(vs: &[Vec<f32>], indicator: &'static str) -> Result<Vec<f32>> {
    let first = vs.first().ok_or_else(|| DiagError::InsufficientData {
        indicator,
        reason: "no gradients".into(),
    })?;
    let mut m = vec![0.0f64; first.len()];
    for v in vs {
        if v.len() != m.len() {
            return Err(DiagError::LengthMismatch {
                indicator,
                left: m.len(),
                right: v.len(),
            });
        }
        for (a, &x) in m.iter_mut().zip(v) {
            *a += x as f64;
        }
    }
    Ok(m.iter().map(|&x| (x / vs.len() as f64) as f32).collect())
}

/// `‖g‖₂`, a convenience for update and clipping reports.
pub fn norm(g: &[f32]) -> f64 {
    sq_norm(g).sqrt()
}
