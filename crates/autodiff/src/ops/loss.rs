//! Fused losses: cross-entropy from logits with integer labels, and mean
//! squared error.

use gradlab_tensor::{Element, Tensor};

use crate::error::{AutodiffError, Result};
use crate::graph::{Graph, Var};
use crate::op::{expect_arity, Op};
use crate::ops::softmax::{log_softmax_of, softmax_of};

/// Mean cross-entropy of logits `[N, K]` against class indices, fused with the
/// log-softmax so it stays finite for logits of any magnitude:
/// `L = (1/N) Σ_n (logsumexp(x_n) - x_{n, y_n})`.
///
/// VJP: `g (softmax(x) - onehot(y)) / N`.
#[derive(Debug, Clone)]
pub struct CrossEntropy {
    /// One class index per row of the logits.
    pub labels: Vec<usize>,
}

impl CrossEntropy {
    fn check<T: Element>(&self, logits: &Tensor<T>) -> Result<(usize, usize)> {
        let [n, k] = logits.shape() else {
            return Err(AutodiffError::InvalidLabels {
                op: "cross_entropy",
                reason: format!(
                    "logits must have shape [batch, classes], got {:?}",
                    logits.shape()
                ),
            });
        };
        if self.labels.len() != *n {
            return Err(AutodiffError::InvalidLabels {
                op: "cross_entropy",
                reason: format!(
                    "{} labels for logits of shape {:?}",
                    self.labels.len(),
                    logits.shape()
                ),
            });
        }
        if *n == 0 || *k == 0 {
            return Err(AutodiffError::InvalidLabels {
                op: "cross_entropy",
                reason: format!("empty logits of shape {:?}", logits.shape()),
            });
        }
        if let Some((i, &y)) = self.labels.iter().enumerate().find(|(_, &y)| y >= *k) {
            return Err(AutodiffError::InvalidLabels {
                op: "cross_entropy",
                reason: format!("label {y} at position {i} is out of range for {k} classes"),
            });
        }
        Ok((*n, *k))
    }
}

impl<T: Element> Op<T> for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        expect_arity("cross_entropy", inputs, 1)?;
        let (n, k) = self.check(inputs[0])?;
        let logp = log_softmax_of(inputs[0], 1)?;
        let lp = logp.as_slice();
        let total: T = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, &y)| -lp[i * k + y])
            .sum();
        Ok(Tensor::scalar(total / T::of_f64(n as f64)))
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _: &Tensor<T>,
        g: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        if !needs[0] {
            return Ok(vec![None]);
        }
        let (n, k) = self.check(inputs[0])?;
        let scale = g.item()? / T::of_f64(n as f64);
        let mut p = softmax_of(inputs[0], 1)?;
        let ps = p.as_slice_mut();
        for (i, &y) in self.labels.iter().enumerate() {
            ps[i * k + y] = ps[i * k + y] - T::one();
        }
        Ok(vec![Some(p.mul_scalar(scale))])
    }
}

/// Mean squared error `L = mean((p - t)²)` of two tensors of equal shape.
/// VJP: `±g · 2 (p - t) / numel`.
#[derive(Debug, Clone, Copy)]
pub struct MseLoss;

impl<T: Element> Op<T> for MseLoss {
    fn name(&self) -> &'static str {
        "mse"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        expect_arity("mse", inputs, 2)?;
        let (p, t) = (inputs[0], inputs[1]);
        if p.shape() != t.shape() {
            return Err(AutodiffError::Op {
                op: "mse",
                reason: format!(
                    "prediction shape {:?} differs from target shape {:?}",
                    p.shape(),
                    t.shape()
                ),
            });
        }
        let d = p.sub(t)?;
        Ok(Tensor::scalar(d.mul(&d)?.mean_all()))
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _: &Tensor<T>,
        g: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        let (p, t) = (inputs[0], inputs[1]);
        let scale = g.item()? * T::of_f64(2.0) / T::of_f64(p.len() as f64);
        let d = p.sub(t)?.mul_scalar(scale);
        Ok(vec![needs[0].then(|| d.clone()), needs[1].then(|| d.neg())])
    }
}

impl<T: Element> Graph<T> {
    /// Mean cross-entropy of `logits` `[N, K]` against `labels` (one class index per row).
    ///
    /// # Errors
    /// [`AutodiffError::InvalidLabels`] when the logits are not 2-D, the label
    /// count differs from `N`, or a label is `>= K`.
    ///
    /// # Examples
    /// ```
    /// use gradlab_autodiff::Graph;
    /// use gradlab_tensor::Tensor;
    /// let mut g = Graph::<f64>::new();
    /// let logits = g.param(Tensor::zeros(&[2, 4]));
    /// let loss = g.cross_entropy(logits, &[0, 3])?;
    /// assert!((g.value(loss)?.item()? - 4f64.ln()).abs() < 1e-12);
    /// # Ok::<(), gradlab_autodiff::AutodiffError>(())
    /// ```
    pub fn cross_entropy(&mut self, logits: Var, labels: &[usize]) -> Result<Var> {
        self.apply(
            CrossEntropy {
                labels: labels.to_vec(),
            },
            &[logits],
        )
    }

    /// Mean squared error between `prediction` and `target` (same shape).
    ///
    /// # Errors
    /// [`AutodiffError::Op`] when the shapes differ.
    pub fn mse(&mut self, prediction: Var, target: Var) -> Result<Var> {
        self.apply(MseLoss, &[prediction, target])
    }
}
