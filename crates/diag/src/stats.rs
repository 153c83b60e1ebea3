//! Small statistics the indicators share: root mean square, least-squares
//! line fits, cosine similarity, and the binomial tail used to test a
//! classifier's accuracy against chance.

use crate::error::{DiagError, Result};

/// Root mean square of the elements, `‖x‖₂ / √n` (0 for an empty slice).
pub fn rms(xs: &[f32]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let ss: f64 = xs.iter().map(|&x| (x as f64) * (x as f64)).sum();
    (ss / xs.len() as f64).sqrt()
}

/// Squared Euclidean norm in f64.
pub fn sq_norm(xs: &[f32]) -> f64 {
    xs.iter().map(|&x| (x as f64) * (x as f64)).sum()
}

/// Dot product in f64.
///
/// # Errors
/// [`DiagError::LengthMismatch`] when the lengths differ.
pub fn dot(a: &[f32], b: &[f32]) -> Result<f64> {
    if a.len() != b.len() {
        return Err(DiagError::LengthMismatch {
            indicator: "dot",
            left: a.len(),
            right: b.len(),
        });
    }
    Ok(a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum())
}

/// Cosine similarity `a·b / (‖a‖ ‖b‖)`; `None` when either vector is zero.
///
/// # Errors
/// [`DiagError::LengthMismatch`] when the lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> Result<Option<f64>> {
    let d = dot(a, b)?;
    let na = sq_norm(a).sqrt();
    let nb = sq_norm(b).sqrt();
    if na == 0.0 || nb == 0.0 {
        return Ok(None);
    }
    Ok(Some((d / (na * nb)).clamp(-1.0, 1.0)))
}

/// A least-squares line `y = intercept + slope · x` with its coefficient of
/// determination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineFit {
    /// Slope.
    pub slope: f64,
    /// Intercept.
    pub intercept: f64,
    /// R² in `[0, 1]`; 1 when the points lie on the line (also when y is constant).
    pub r2: f64,
}

/// Ordinary least squares of `ys` on `xs`.
///
/// # Errors
/// [`DiagError::LengthMismatch`]; [`DiagError::InsufficientData`] with fewer
/// than two points, identical `xs`, or a non-finite value.
pub fn fit_line(xs: &[f64], ys: &[f64]) -> Result<LineFit> {
    if xs.len() != ys.len() {
        return Err(DiagError::LengthMismatch {
            indicator: "line fit",
            left: xs.len(),
            right: ys.len(),
        });
    }
    let n = xs.len();
    if n < 2 {
        return Err(DiagError::InsufficientData {
            indicator: "line fit",
            reason: format!("{n} points; at least 2 are needed"),
        });
    }
    if xs.iter().chain(ys).any(|v| !v.is_finite()) {
        return Err(DiagError::InsufficientData {
            indicator: "line fit",
            reason: "a value is not finite".into(),
        });
    }
    let nf = n as f64;
    let mx = xs.iter().sum::<f64>() / nf;
    let my = ys.iter().sum::<f64>() / nf;
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let syy: f64 = ys.iter().map(|y| (y - my) * (y - my)).sum();
    if sxx == 0.0 {
        return Err(DiagError::InsufficientData {
            indicator: "line fit",
            reason: "all x values are equal".into(),
        });
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let r2 = if syy == 0.0 {
        1.0
    } else {
        (sxy * sxy / (sxx * syy)).clamp(0.0, 1.0)
    };
    Ok(LineFit {
        slope,
        intercept,
        r2,
    })
}

/// Upper tail `P(X >= k)` of a binomial `X ~ Bin(n, p)`: the p-value of
/// "`k` correct out of `n` is no better than chance `p`".
///
/// Summed term by term in log space, exact to rounding for any `n` this
/// library meets.
///
/// # Errors
/// [`DiagError::InvalidValue`] unless `0 <= p <= 1`; `k > n` is an error too.
pub fn binomial_upper_tail(k: usize, n: usize, p: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&p) {
        return Err(DiagError::InvalidValue {
            what: "binomial probability",
            value: p,
        });
    }
    if k > n {
        return Err(DiagError::InsufficientData {
            indicator: "binomial test",
            reason: format!("{k} successes out of {n} trials"),
        });
    }
    if k == 0 {
        return Ok(1.0);
    }
    if p == 0.0 {
        return Ok(0.0);
    }
    if p == 1.0 {
        return Ok(1.0);
    }
    // ln pmf(i) = ln C(n, i) + i ln p + (n - i) ln(1 - p), with ln C built incrementally.
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut ln_c = 0.0f64; // ln C(n, 0)
    let mut terms = Vec::with_capacity(n - k + 1);
    for i in 0..=n {
        if i > 0 {
            ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        if i >= k {
            terms.push(ln_c + i as f64 * lp + (n - i) as f64 * lq);
        }
    }
    let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = terms.iter().map(|t| (t - m).exp()).sum();
    Ok((m + s.ln()).exp().min(1.0))
}

/// Half-width of the chance band for an accuracy measured on `n` examples
/// when chance is `p`: `3 √(p (1 - p) / n)`.
pub fn chance_band(p: f64, n: usize) -> f64 {
    if n == 0 {
        return f64::INFINITY;
    }
    3.0 * (p * (1.0 - p) / n as f64).sqrt()
}

/// Median of finite values (`None` when there is none).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    })
}
