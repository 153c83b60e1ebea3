//! Losses: cross-entropy from logits (label smoothing, per-sample weights),
//! mean squared error; and the accuracy of logits.

use gradlab_autodiff::{expect_arity, AutodiffError, Op, Result as AdResult, Var};
use gradlab_tensor::{Element, Tensor};

use crate::ctx::Ctx;
use crate::error::{NnError, Result};

/// Options of [`cross_entropy`] (defaults: no smoothing, equal weights).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrossEntropyOptions {
    /// Label smoothing `eps` in `[0, 1)`: the target of class `k` for a
    /// sample of class `y` is `q_k = (1 - eps) [k == y] + eps / K`, as
    /// PyTorch's `label_smoothing` (Szegedy et al. 2016).
    pub label_smoothing: f64,
    /// One non-negative weight per sample; the loss is `(1/N) sum_n w_n l_n`
    /// (the mean over the batch of the weighted losses, not normalised by
    /// the sum of the weights).
    pub sample_weights: Option<Vec<f64>>,
}

/// Fused cross-entropy from logits `[N, K]` with integer labels:
/// `l_n = -sum_k q_nk log softmax(x_n)_k` with `q` the (smoothed) one-hot
/// target, `L = (1/N) sum_n w_n l_n`.
///
/// VJP: `dx_nk = g w_n (softmax(x_n)_k - q_nk) / N` (since `sum_k q_nk = 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct CrossEntropyOp {
    labels: Vec<usize>,
    smoothing: f64,
    weights: Option<Vec<f64>>,
}

impl CrossEntropyOp {
    /// The op for these labels and options.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a smoothing outside `[0, 1)`, a weight
    /// count different from the label count, or a negative or non-finite weight.
    pub fn new(labels: &[usize], options: &CrossEntropyOptions) -> Result<Self> {
        let eps = options.label_smoothing;
        if !(0.0..1.0).contains(&eps) {
            return Err(NnError::config(
                "cross_entropy",
                format!("label_smoothing must lie in [0, 1), got {eps}"),
            ));
        }
        if let Some(w) = &options.sample_weights {
            if w.len() != labels.len() {
                return Err(NnError::config(
                    "cross_entropy",
                    format!("{} sample weights for {} labels", w.len(), labels.len()),
                ));
            }
            if let Some((i, v)) = w
                .iter()
                .enumerate()
                .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
            {
                return Err(NnError::config(
                    "cross_entropy",
                    format!("sample weight {i} is {v}; weights must be finite and non-negative"),
                ));
            }
        }
        Ok(CrossEntropyOp {
            labels: labels.to_vec(),
            smoothing: eps,
            weights: options.sample_weights.clone(),
        })
    }

    fn check<T: Element>(&self, logits: &Tensor<T>) -> AdResult<(usize, usize)> {
        let bad = |reason: String| AutodiffError::InvalidLabels {
            op: "cross_entropy",
            reason,
        };
        let &[n, k] = logits.shape() else {
            return Err(bad(format!(
                "logits must have shape [batch, classes], got {:?}",
                logits.shape()
            )));
        };
        if self.labels.len() != n {
            return Err(bad(format!(
                "{} labels for logits of shape {:?}",
                self.labels.len(),
                logits.shape()
            )));
        }
        if n == 0 || k == 0 {
            return Err(bad(format!("empty logits of shape {:?}", logits.shape())));
        }
        if let Some((i, &y)) = self.labels.iter().enumerate().find(|(_, &y)| y >= k) {
            return Err(bad(format!(
                "label {y} at position {i} is out of range for {k} classes"
            )));
        }
        Ok((n, k))
    }

    fn weight(&self, i: usize) -> f64 {
        self.weights.as_ref().map_or(1.0, |w| w[i])
    }

    /// Target probability of class `k` for a sample of class `y`.
    fn target(&self, k: usize, y: usize, classes: usize) -> f64 {
        let on = if k == y { 1.0 - self.smoothing } else { 0.0 };
        on + self.smoothing / classes as f64
    }
}

/// Row-wise log-softmax in `f64`.
fn log_softmax_row<T: Element>(row: &[T], out: &mut [f64]) {
    let max = row
        .iter()
        .map(|v| v.as_f64())
        .fold(f64::NEG_INFINITY, f64::max);
    let lse = max
        + row
            .iter()
            .map(|v| (v.as_f64() - max).exp())
            .sum::<f64>()
            .ln();
    for (o, v) in out.iter_mut().zip(row) {
        *o = v.as_f64() - lse;
    }
}

impl<T: Element> Op<T> for CrossEntropyOp {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> AdResult<Tensor<T>> {
        expect_arity("cross_entropy", inputs, 1)?;
        let (n, k) = self.check(inputs[0])?;
        let mut logp = vec![0.0; k];
        let mut total = 0.0;
        for (i, row) in inputs[0].as_slice().chunks(k).enumerate() {
            log_softmax_row(row, &mut logp);
            let y = self.labels[i];
            let l: f64 = logp
                .iter()
                .enumerate()
                .map(|(c, lp)| -self.target(c, y, k) * lp)
                .sum();
            total += self.weight(i) * l;
        }
        Ok(Tensor::scalar(T::of_f64(total / n as f64)))
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _output: &Tensor<T>,
        grad_output: &Tensor<T>,
        needs: &[bool],
    ) -> AdResult<Vec<Option<Tensor<T>>>> {
        if !needs[0] {
            return Ok(vec![None]);
        }
        let (n, k) = self.check(inputs[0])?;
        let g = grad_output.item()?.as_f64() / n as f64;
        let mut out = Vec::with_capacity(n * k);
        let mut logp = vec![0.0; k];
        for (i, row) in inputs[0].as_slice().chunks(k).enumerate() {
            log_softmax_row(row, &mut logp);
            let scale = g * self.weight(i);
            let y = self.labels[i];
            out.extend(
                logp.iter()
                    .enumerate()
                    .map(|(c, lp)| T::of_f64(scale * (lp.exp() - self.target(c, y, k)))),
            );
        }
        Ok(vec![Some(Tensor::from_vec(inputs[0].shape(), out)?)])
    }
}

/// Cross-entropy of `logits` `[N, K]` against class indices, PyTorch's
/// `F.cross_entropy(logits, labels, label_smoothing=...)` (mean reduction),
/// with optional per-sample weights. See [`CrossEntropyOp`] for the formula.
///
/// # Errors
/// [`NnError::InvalidConfig`] for bad options; [`NnError::Autodiff`] when
/// the logits are not `[N, K]`, the label count is not `N` or a label is `>= K`.
///
/// # Examples
/// ```
/// use gradlab_nn::{cross_entropy, CrossEntropyOptions, Ctx};
/// use gradlab_tensor::Tensor;
/// let mut cx = Ctx::<f64>::new();
/// let logits = cx.input(Tensor::zeros(&[2, 4]));
/// let opts = CrossEntropyOptions { label_smoothing: 0.1, ..Default::default() };
/// let loss = cross_entropy(&mut cx, logits, &[0, 3], &opts)?;
/// assert!((cx.value(loss)?.item()? - 4f64.ln()).abs() < 1e-12);
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
pub fn cross_entropy<T: Element>(
    cx: &mut Ctx<T>,
    logits: Var,
    labels: &[usize],
    options: &CrossEntropyOptions,
) -> Result<Var> {
    let op = CrossEntropyOp::new(labels, options)?;
    Ok(cx.graph_mut().apply(op, &[logits])?)
}

/// Mean squared error `mean((prediction - target)^2)`, PyTorch's `F.mse_loss`.
///
/// # Errors
/// [`NnError::Autodiff`] when the shapes differ.
pub fn mse<T: Element>(cx: &mut Ctx<T>, prediction: Var, target: Var) -> Result<Var> {
    Ok(cx.graph_mut().mse(prediction, target)?)
}

/// Fraction of rows of `logits` `[N, K]` whose arg-max (first on ties) is the label.
///
/// # Errors
/// [`NnError::InputShape`] unless the logits are `[N, K]` with `N` equal to
/// the number of labels and `N, K > 0`.
///
/// # Examples
/// ```
/// use gradlab_nn::accuracy;
/// use gradlab_tensor::Tensor;
/// let logits = Tensor::<f32>::from_vec(&[2, 2], vec![0.1, 0.9, 0.8, 0.2])?;
/// assert_eq!(accuracy(&logits, &[1, 1])?, 0.5);
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
pub fn accuracy<T: Element>(logits: &Tensor<T>, labels: &[usize]) -> Result<f64> {
    let bad = || NnError::InputShape {
        layer: "accuracy".into(),
        expected: format!("[{}, K] logits", labels.len()),
        got: logits.shape().to_vec(),
    };
    let &[n, k] = logits.shape() else {
        return Err(bad());
    };
    if n != labels.len() || n == 0 || k == 0 {
        return Err(bad());
    }
    let correct = logits
        .as_slice()
        .chunks(k)
        .zip(labels)
        .filter(|(row, &y)| {
            let mut best = 0;
            for (i, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = i;
                }
            }
            best == y
        })
        .count();
    Ok(correct as f64 / n as f64)
}
