//! Small statistics the indicators share: root mean square, least-squares
//! line fits, cosine similarity, the binomial tail used to test a
//! classifier's accuracy against chance, and the t-interval of a mean over
//! repeated runs (seeds).

use serde::{Deserialize, Serialize};

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

/// Geometric mean of positive values (the mean of a depth profile's
/// magnitudes over steps); 0 when any is 0; NaN when none is finite.
pub fn geo_mean(values: impl Iterator<Item = f64>) -> f64 {
    let mut sum = 0.0;
    let mut n = 0usize;
    for v in values {
        if v == 0.0 {
            return 0.0;
        }
        if v.is_finite() && v > 0.0 {
            sum += v.ln();
            n += 1;
        }
    }
    if n == 0 {
        f64::NAN
    } else {
        (sum / n as f64).exp()
    }
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

/// The mean of repeated measurements (one per seed) with its 95% two-sided
/// Student t confidence interval, `mean ± half_width`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanInterval {
    /// Sample mean.
    pub mean: f64,
    /// `t(0.975, n - 1) · sd / √n`; `None` for a single value, whose
    /// spread is unknown (the interval would be infinitely wide).
    pub half_width: Option<f64>,
    /// Sample standard deviation (divisor `n - 1`); `None` for a single value.
    pub sd: Option<f64>,
    /// Number of values.
    pub n: usize,
}

impl MeanInterval {
    /// Lower end, `-∞` without a half-width.
    pub fn lower(&self) -> f64 {
        self.mean - self.half_width.unwrap_or(f64::INFINITY)
    }

    /// Upper end, `+∞` without a half-width.
    pub fn upper(&self) -> f64 {
        self.mean + self.half_width.unwrap_or(f64::INFINITY)
    }
}

/// Two-sided 95% Student t quantiles `t(0.975, df)` for df = 1..=30, to
/// three decimals (standard tables).
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The 0.975 quantile of the standard normal distribution.
const Z975: f64 = 1.959_963_984_540_054;

/// `t(0.975, df)`: the table up to 30 degrees of freedom, beyond it the
/// Cornish-Fisher expansion around the normal quantile (error under 1e-5
/// from df 30 on, and it tends to 1.960).
///
/// # Panics
/// Never; `df = 0` has no quantile and returns infinity.
pub fn t975(df: usize) -> f64 {
    match df {
        0 => f64::INFINITY,
        1..=30 => T975[df - 1],
        _ => t975_expansion(df as f64),
    }
}

/// Cornish-Fisher expansion of the t quantile in powers of `1/df`
/// (Abramowitz & Stegun 26.7.5), at the normal 0.975 quantile.
fn t975_expansion(df: f64) -> f64 {
    let z = Z975;
    let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
    let g1 = (z3 + z) / 4.0;
    let g2 = (5.0 * z5 + 16.0 * z3 + 3.0 * z) / 96.0;
    let g3 = (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / 384.0;
    z + g1 / df + g2 / (df * df) + g3 / (df * df * df)
}

/// Mean and 95% t-interval of `values`.
///
/// One value gives its mean with `half_width` and `sd` `None`: a single
/// run says nothing about the spread between runs.
///
/// # Errors
/// [`DiagError::InsufficientData`] for no values; [`DiagError::NonFinite`]
/// naming the first NaN or infinite value.
///
/// # Examples
/// ```
/// use gradlab_diag::stats::mean_interval;
/// let iv = mean_interval(&[1.0, 2.0, 3.0])?;
/// // sd 1, t(0.975, 2) = 4.303: 2 ± 4.303/√3.
/// assert!((iv.mean - 2.0).abs() < 1e-12);
/// assert!((iv.half_width.unwrap() - 4.303 / 3f64.sqrt()).abs() < 1e-12);
/// # Ok::<(), gradlab_diag::DiagError>(())
/// ```
pub fn mean_interval(values: &[f64]) -> Result<MeanInterval> {
    interval_of("mean interval", values)
}

fn interval_of(what: &'static str, values: &[f64]) -> Result<MeanInterval> {
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(DiagError::NonFinite { what, index, value });
    }
    let n = values.len();
    if n == 0 {
        return Err(DiagError::InsufficientData {
            indicator: what,
            reason: "no values".into(),
        });
    }
    let nf = n as f64;
    let mean = values.iter().sum::<f64>() / nf;
    if n == 1 {
        return Ok(MeanInterval {
            mean,
            half_width: None,
            sd: None,
            n,
        });
    }
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt();
    Ok(MeanInterval {
        mean,
        half_width: Some(t975(n - 1) * sd / nf.sqrt()),
        sd: Some(sd),
        n,
    })
}

/// The 95% t-interval of the paired differences `a[i] - b[i]` (runs `i`
/// of the two conditions share their seed, so the seed-to-seed spread
/// they have in common cancels).
///
/// # Errors
/// [`DiagError::LengthMismatch`] with both lengths; otherwise as
/// [`mean_interval`], with the index of the first non-finite difference.
pub fn paired_difference(a: &[f64], b: &[f64]) -> Result<MeanInterval> {
    if a.len() != b.len() {
        return Err(DiagError::LengthMismatch {
            indicator: "paired difference",
            left: a.len(),
            right: b.len(),
        });
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    interval_of("paired difference", &d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_standard_tables_and_closed_forms() {
        for (df, t) in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045)] {
            assert_eq!(t975(df), t, "df {df}");
        }
        // df 1 is Cauchy, df 2 has a closed form: the table is rounded from them.
        let cauchy = (std::f64::consts::PI * (0.975 - 0.5)).tan();
        let df2 = (2.0 * 0.975 - 1.0) / (2.0 * 0.975 * 0.025f64).sqrt();
        assert!((t975(1) - cauchy).abs() < 5e-4, "{cauchy}");
        assert!((t975(2) - df2).abs() < 5e-4, "{df2}");
        // The expansion agrees with the table where both apply, and tends to the normal.
        for df in 20..=30 {
            assert!(
                (t975_expansion(df as f64) - t975(df)).abs() < 6e-4,
                "df {df}"
            );
        }
        assert!((t975(31) - 2.040).abs() < 5e-4 && (t975(120) - 1.980).abs() < 5e-4);
        assert!((t975(1_000_000) - 1.960).abs() < 1e-3);
        // Decreasing in df.
        for df in 1..200 {
            assert!(t975(df + 1) < t975(df), "df {df}");
        }
    }

    #[test]
    fn mean_interval_of_known_samples() {
        let iv = mean_interval(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(iv.n, 8);
        assert!((iv.mean - 5.0).abs() < 1e-12);
        let sd = (32.0f64 / 7.0).sqrt();
        assert!((iv.sd.unwrap() - sd).abs() < 1e-12);
        assert!((iv.half_width.unwrap() - 2.365 * sd / 8f64.sqrt()).abs() < 1e-12);
        assert!(iv.lower() < 5.0 && iv.upper() > 5.0);
        // Identical values: no spread, a zero-width interval.
        let flat = mean_interval(&[0.5; 4]).unwrap();
        assert_eq!((flat.half_width, flat.lower()), (Some(0.0), 0.5));
    }

    #[test]
    fn one_value_has_no_interval_and_none_is_an_error() {
        let iv = mean_interval(&[0.7]).unwrap();
        assert_eq!((iv.mean, iv.half_width, iv.sd, iv.n), (0.7, None, None, 1));
        assert!(iv.lower().is_infinite() && iv.upper().is_infinite());
        assert!(matches!(
            mean_interval(&[]),
            Err(DiagError::InsufficientData { .. })
        ));
    }

    #[test]
    fn a_non_finite_value_is_named_by_its_index() {
        let err = mean_interval(&[1.0, 2.0, f64::NAN, 3.0]).unwrap_err();
        assert!(
            matches!(err, DiagError::NonFinite { index: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("value 2 is NaN"), "{err}");
        let err = paired_difference(&[1.0, f64::INFINITY], &[0.0, 0.0]).unwrap_err();
        assert!(
            matches!(err, DiagError::NonFinite { index: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn paired_difference_cancels_what_the_pairs_share() {
        // Large spread between seeds, constant difference within each pair.
        let a = [10.0, 20.0, 30.0, 40.0];
        let b = [9.0, 19.0, 29.0, 39.0];
        let d = paired_difference(&a, &b).unwrap();
        assert_eq!((d.mean, d.half_width), (1.0, Some(0.0)));
        let unpaired = mean_interval(&a).unwrap();
        assert!(unpaired.half_width.unwrap() > 10.0);
        let err = paired_difference(&a, &b[..3]).unwrap_err();
        assert!(
            matches!(
                err,
                DiagError::LengthMismatch {
                    left: 4,
                    right: 3,
                    ..
                }
            ),
            "{err}"
        );
    }
}
