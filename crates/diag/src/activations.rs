//! Forward-pass indicators on a probe batch of activations `[N, units...]`:
//! dead and saturated units (I11) and forward diversity (I12).

use gradlab_nn::ActivationKind;

use crate::error::{DiagError, Result};

fn split(values: &[f32], batch: usize, indicator: &'static str) -> Result<usize> {
    if batch == 0 || values.is_empty() || values.len() % batch != 0 {
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
pub fn inactive_fraction(values: &[f32], batch: usize, activation: ActivationKind) -> Result<f64> {
    let units = split(values, batch, "dead units")?;
    let inactive: fn(f32) -> bool = match activation {
        ActivationKind::Relu => |y| y <= 0.0,
        ActivationKind::Sigmoid => |y| y * (1.0 - y) < 1e-3,
        ActivationKind::Tanh => |y| 1.0 - y * y < 1e-3,
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
