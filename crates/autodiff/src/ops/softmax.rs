//! Softmax and log-softmax along an axis, computed stably (shifted by the max).

use gradlab_tensor::{Element, Tensor};

use crate::error::Result;
use crate::graph::{Graph, Var};
use crate::op::{expect_arity, Op};

/// `softmax(x)_i = e^(x_i - m) / Σ_j e^(x_j - m)` with `m = max_j x_j`.
pub(crate) fn softmax_of<T: Element>(x: &Tensor<T>, axis: usize) -> Result<Tensor<T>> {
    let m = x.max(&[axis], true)?;
    let e = x.sub(&m)?.exp();
    let s = e.sum(&[axis], true)?;
    Ok(e.div(&s)?)
}

/// `log_softmax(x)_i = x_i - m - ln Σ_j e^(x_j - m)`.
pub(crate) fn log_softmax_of<T: Element>(x: &Tensor<T>, axis: usize) -> Result<Tensor<T>> {
    let m = x.max(&[axis], true)?;
    let shifted = x.sub(&m)?;
    let lse = shifted.exp().sum(&[axis], true)?.ln();
    Ok(shifted.sub(&lse)?)
}

/// Softmax along an axis. VJP: `y ⊙ (g - Σ_axis g ⊙ y)`.
#[derive(Debug, Clone, Copy)]
pub struct Softmax(pub usize);

impl<T: Element> Op<T> for Softmax {
    fn name(&self) -> &'static str {
        "softmax"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        expect_arity("softmax", inputs, 1)?;
        softmax_of(inputs[0], self.0)
    }
    fn backward(
        &self,
        _: &[&Tensor<T>],
        y: &Tensor<T>,
        g: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        if !needs[0] {
            return Ok(vec![None]);
        }
        let dot = g.mul(y)?.sum(&[self.0], true)?;
        Ok(vec![Some(y.mul(&g.sub(&dot)?)?)])
    }
}

/// Log-softmax along an axis. VJP: `g - softmax(x) ⊙ Σ_axis g`.
#[derive(Debug, Clone, Copy)]
pub struct LogSoftmax(pub usize);

impl<T: Element> Op<T> for LogSoftmax {
    fn name(&self) -> &'static str {
        "log_softmax"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        expect_arity("log_softmax", inputs, 1)?;
        log_softmax_of(inputs[0], self.0)
    }
    fn backward(
        &self,
        _: &[&Tensor<T>],
        y: &Tensor<T>,
        g: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        if !needs[0] {
            return Ok(vec![None]);
        }
        let gsum = g.sum(&[self.0], true)?;
        Ok(vec![Some(g.sub(&y.exp().mul(&gsum)?)?)])
    }
}

impl<T: Element> Graph<T> {
    /// Softmax along `axis`.
    ///
    /// # Errors
    /// For an axis beyond the rank or of length 0, or a foreign `Var`.
    pub fn softmax(&mut self, x: Var, axis: usize) -> Result<Var> {
        self.apply(Softmax(axis), &[x])
    }

    /// Log-softmax along `axis`.
    ///
    /// # Errors
    /// For an axis beyond the rank or of length 0, or a foreign `Var`.
    pub fn log_softmax(&mut self, x: Var, axis: usize) -> Result<Var> {
        self.apply(LogSoftmax(axis), &[x])
    }
}
