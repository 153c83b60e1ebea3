//! The data-signal probe (indicator I13): does the *data* hold a learnable
//! relation between inputs and labels, whatever the model does?
//!
//! Two model-independent learners are trained on the training split and
//! scored on the held-out split: multinomial logistic regression on
//! standardised inputs (linear signal) and a k-nearest-neighbour vote (which
//! also sees XOR-like, non-linear signal a linear probe misses). The better
//! accuracy is tested against chance with a one-sided binomial test,
//! Bonferroni-corrected for having looked at two probes.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{DiagError, Result};
use crate::stats::binomial_upper_tail;

/// Settings of [`data_probe`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeOptions {
    /// Gradient-descent iterations of the logistic regression.
    pub iterations: usize,
    /// L2 penalty of the logistic regression.
    pub l2: f64,
    /// Neighbours in the vote.
    pub k: usize,
    /// Largest training set used (the first rows); bounds the cost.
    pub max_train: usize,
    /// Largest held-out set used (the first rows).
    pub max_val: usize,
    /// p-value below which the probe is said to beat chance.
    pub alpha: f64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            iterations: 300,
            l2: 1e-3,
            k: 5,
            max_train: 4000,
            max_val: 2000,
            alpha: 1e-3,
        }
    }
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Held-out accuracy of the logistic regression.
    pub linear_accuracy: f64,
    /// Held-out accuracy of the k-nearest-neighbour vote.
    pub knn_accuracy: f64,
    /// The better of the two.
    pub accuracy: f64,
    /// Chance accuracy: the share of the most frequent class in the training labels.
    pub chance: f64,
    /// Held-out examples scored.
    pub n_val: usize,
    /// One-sided binomial p-value of `accuracy` against `chance`, times 2 (two probes).
    pub p_value: f64,
    /// Whether `p_value < alpha`.
    pub beats_chance: bool,
}

fn check_split(x: &ArrayView2<'_, f32>, y: &[usize], what: &'static str) -> Result<()> {
    if x.nrows() != y.len() {
        return Err(DiagError::LengthMismatch {
            indicator: what,
            left: x.nrows(),
            right: y.len(),
        });
    }
    if x.nrows() == 0 {
        return Err(DiagError::InsufficientData {
            indicator: what,
            reason: "no examples".into(),
        });
    }
    Ok(())
}

/// Runs both probes: rows of `train_x`/`val_x` are flattened examples.
///
/// # Errors
/// [`DiagError::LengthMismatch`] when rows and labels disagree or the two
/// splits have different widths; [`DiagError::InsufficientData`] for an
/// empty split or a label `>= num_classes`.
pub fn data_probe(
    train_x: ArrayView2<'_, f32>,
    train_y: &[usize],
    val_x: ArrayView2<'_, f32>,
    val_y: &[usize],
    num_classes: usize,
    opts: &ProbeOptions,
) -> Result<ProbeResult> {
    check_split(&train_x, train_y, "data probe (train)")?;
    check_split(&val_x, val_y, "data probe (held-out)")?;
    if train_x.ncols() != val_x.ncols() {
        return Err(DiagError::LengthMismatch {
            indicator: "data probe (features)",
            left: train_x.ncols(),
            right: val_x.ncols(),
        });
    }
    if let Some(&bad) = train_y.iter().chain(val_y).find(|&&y| y >= num_classes) {
        return Err(DiagError::InsufficientData {
            indicator: "data probe",
            reason: format!("label {bad} is out of range for {num_classes} classes"),
        });
    }
    let nt = train_x.nrows().min(opts.max_train);
    let nv = val_x.nrows().min(opts.max_val);
    let tx = train_x.slice(ndarray::s![..nt, ..]).mapv(|v| v as f64);
    let vx = val_x.slice(ndarray::s![..nv, ..]).mapv(|v| v as f64);
    let (ty, vy) = (&train_y[..nt], &val_y[..nv]);

    // Standardise with training statistics only.
    let mean = tx
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(tx.ncols()));
    let std = tx
        .std_axis(Axis(0), 0.0)
        .mapv(|s| if s > 1e-12 { s } else { 1.0 });
    let tx = (&tx - &mean) / &std;
    let vx = (&vx - &mean) / &std;

    let linear = logistic_regression(&tx, ty, num_classes, opts);
    let linear_pred = predict_linear(&vx, &linear);
    let knn_pred = predict_knn(&tx, ty, &vx, num_classes, opts.k);
    let acc =
        |pred: &[usize]| pred.iter().zip(vy).filter(|(p, y)| p == y).count() as f64 / nv as f64;
    let linear_accuracy = acc(&linear_pred);
    let knn_accuracy = acc(&knn_pred);
    let accuracy = linear_accuracy.max(knn_accuracy);

    let mut counts = vec![0usize; num_classes];
    for &y in ty {
        counts[y] += 1;
    }
    let chance = *counts.iter().max().unwrap_or(&0) as f64 / nt as f64;
    let correct = (accuracy * nv as f64).round() as usize;
    let p_value = (2.0 * binomial_upper_tail(correct.min(nv), nv, chance)?).min(1.0);
    Ok(ProbeResult {
        linear_accuracy,
        knn_accuracy,
        accuracy,
        chance,
        n_val: nv,
        p_value,
        beats_chance: p_value < opts.alpha,
    })
}

struct Linear {
    w: Array2<f64>,
    b: Array1<f64>,
}

fn softmax_rows(z: &mut Array2<f64>) {
    for mut row in z.rows_mut() {
        let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - m).exp());
        let s = row.sum();
        row.mapv_inplace(|v| v / s);
    }
}

/// Full-batch gradient descent on the L2-regularised softmax cross-entropy,
/// with the step set from the largest eigenvalue of `XᵀX/n` (power
/// iteration), so it converges without tuning.
fn logistic_regression(x: &Array2<f64>, y: &[usize], k: usize, opts: &ProbeOptions) -> Linear {
    let (n, d) = x.dim();
    let gram = x.t().dot(x) / n as f64;
    let mut v = Array1::from_elem(d, 1.0 / (d as f64).sqrt());
    let mut lambda = 1.0;
    for _ in 0..20 {
        let w = gram.dot(&v);
        lambda = w.dot(&w).sqrt();
        if lambda == 0.0 {
            break;
        }
        v = w / lambda;
    }
    // The softmax Hessian is bounded by (1/2)(λ + 1) (+1 for the bias), plus the L2 term.
    let lr = 1.0 / (0.5 * (lambda + 1.0) + opts.l2);
    let mut w = Array2::<f64>::zeros((d, k));
    let mut b = Array1::<f64>::zeros(k);
    let mut onehot = Array2::<f64>::zeros((n, k));
    for (i, &c) in y.iter().enumerate() {
        onehot[[i, c]] = 1.0;
    }
    for _ in 0..opts.iterations {
        let mut p = x.dot(&w) + &b;
        softmax_rows(&mut p);
        let r = (p - &onehot) / n as f64;
        let gw = x.t().dot(&r) + &w * opts.l2;
        let gb = r.sum_axis(Axis(0));
        w = w - gw * lr;
        b = b - gb * lr;
    }
    Linear { w, b }
}

fn argmax(row: ndarray::ArrayView1<'_, f64>) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

fn predict_linear(x: &Array2<f64>, m: &Linear) -> Vec<usize> {
    let z = x.dot(&m.w) + &m.b;
    z.rows().into_iter().map(argmax).collect()
}

/// Majority vote of the `k` nearest training rows (Euclidean); ties go to
/// the class of the nearest neighbour among the tied classes.
fn predict_knn(
    tx: &Array2<f64>,
    ty: &[usize],
    vx: &Array2<f64>,
    classes: usize,
    k: usize,
) -> Vec<usize> {
    let k = k.clamp(1, tx.nrows());
    let tn: Array1<f64> = tx.rows().into_iter().map(|r| r.dot(&r)).collect();
    let cross = vx.dot(&tx.t());
    cross
        .rows()
        .into_iter()
        .map(|row| {
            let mut dist: Vec<(f64, usize)> = row
                .iter()
                .zip(&tn)
                .enumerate()
                .map(|(j, (&c, &t))| (t - 2.0 * c, j))
                .collect();
            dist.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
            let mut near = dist[..k].to_vec();
            near.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut votes = vec![0usize; classes];
            for &(_, j) in &near {
                votes[ty[j]] += 1;
            }
            let top = *votes.iter().max().unwrap_or(&0);
            near.iter()
                .map(|&(_, j)| ty[j])
                .find(|&c| votes[c] == top)
                .unwrap_or(0)
        })
        .collect()
}
