//! Reductions over chosen axes: sum, mean, max, variance.
//!
//! The VJP of a reduction spreads the output gradient back over the reduced
//! axes: evenly (sum, mean), to the maxima (max, split between ties), or
//! weighted by the centred input (variance).

use gradlab_tensor::{Element, Tensor, TensorError};
use ndarray::IxDyn;

use crate::error::Result;
use crate::graph::{Graph, Var};
use crate::op::{expect_arity, Op};

/// Which reduction a [`Reduce`] op computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceKind {
    /// Sum; VJP `g` broadcast back.
    Sum,
    /// Mean; VJP `g / count` broadcast back.
    Mean,
    /// Maximum; VJP `g / ties` to each maximal element, 0 elsewhere.
    Max,
    /// Population variance; VJP `g · 2 (x - mean) / count`.
    Variance,
}

/// A reduction over `axes`, keeping them as size-1 axes when `keepdims`.
#[derive(Debug, Clone)]
pub struct Reduce {
    /// The reduction.
    pub kind: ReduceKind,
    /// Axes to reduce (any order, repeats ignored).
    pub axes: Vec<usize>,
    /// Whether reduced axes stay as size 1.
    pub keepdims: bool,
}

/// Broadcasts a reduced gradient back to the input's shape.
fn expand<T: Element>(g: &Tensor<T>, input_shape: &[usize], axes: &[usize]) -> Result<Tensor<T>> {
    let kept: Vec<usize> = input_shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let g = g.reshape(&kept)?;
    let out = g
        .view()
        .broadcast(IxDyn(input_shape))
        .ok_or_else(|| TensorError::BroadcastMismatch {
            op: "reduce backward",
            lhs: kept.clone(),
            rhs: input_shape.to_vec(),
        })?
        .to_owned();
    Ok(Tensor::from_array(out))
}

impl<T: Element> Op<T> for Reduce {
    fn name(&self) -> &'static str {
        match self.kind {
            ReduceKind::Sum => "sum",
            ReduceKind::Mean => "mean",
            ReduceKind::Max => "max",
            ReduceKind::Variance => "variance",
        }
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        expect_arity(Op::<T>::name(self), inputs, 1)?;
        let x = inputs[0];
        Ok(match self.kind {
            ReduceKind::Sum => x.sum(&self.axes, self.keepdims)?,
            ReduceKind::Mean => x.mean(&self.axes, self.keepdims)?,
            ReduceKind::Max => x.max(&self.axes, self.keepdims)?,
            ReduceKind::Variance => x.variance(&self.axes, self.keepdims)?,
        })
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        y: &Tensor<T>,
        g: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        if !needs[0] {
            return Ok(vec![None]);
        }
        let x = inputs[0];
        let shape = x.shape();
        let count: usize = shape
            .iter()
            .enumerate()
            .filter(|(i, _)| self.axes.contains(i))
            .map(|(_, &d)| d)
            .product();
        let n = T::of_f64(count as f64);
        let ge = expand(g, shape, &self.axes)?;
        let grad = match self.kind {
            ReduceKind::Sum => ge,
            ReduceKind::Mean => ge.div_scalar(n),
            ReduceKind::Max => {
                let ye = expand(y, shape, &self.axes)?;
                let mask = x
                    .sub(&ye)?
                    .map(|d| if d == T::zero() { T::one() } else { T::zero() });
                let ties = mask.sum(&self.axes, true)?;
                ge.mul(&mask)?.div(&ties)?
            }
            ReduceKind::Variance => {
                let mean = x.mean(&self.axes, true)?;
                let two_over_n = T::of_f64(2.0) / n;
                x.sub(&mean)?.mul_scalar(two_over_n).mul(&ge)?
            }
        };
        Ok(vec![Some(grad)])
    }
}

impl<T: Element> Graph<T> {
    fn reduce(&mut self, kind: ReduceKind, x: Var, axes: &[usize], keepdims: bool) -> Result<Var> {
        self.apply(
            Reduce {
                kind,
                axes: axes.to_vec(),
                keepdims,
            },
            &[x],
        )
    }

    /// Sum over `axes`.
    ///
    /// # Errors
    /// For an axis beyond the rank, or a foreign `Var`.
    pub fn sum(&mut self, x: Var, axes: &[usize], keepdims: bool) -> Result<Var> {
        self.reduce(ReduceKind::Sum, x, axes, keepdims)
    }

    /// Sum of every element, as a rank-0 tensor.
    ///
    /// # Errors
    /// For a foreign `Var`.
    pub fn sum_all(&mut self, x: Var) -> Result<Var> {
        let axes: Vec<usize> = (0..self.value(x)?.rank()).collect();
        self.reduce(ReduceKind::Sum, x, &axes, false)
    }

    /// Mean over `axes`.
    ///
    /// # Errors
    /// For an axis beyond the rank or of length 0, or a foreign `Var`.
    pub fn mean(&mut self, x: Var, axes: &[usize], keepdims: bool) -> Result<Var> {
        self.reduce(ReduceKind::Mean, x, axes, keepdims)
    }

    /// Mean of every element, as a rank-0 tensor.
    ///
    /// # Errors
    /// For an empty tensor, or a foreign `Var`.
    pub fn mean_all(&mut self, x: Var) -> Result<Var> {
        let axes: Vec<usize> = (0..self.value(x)?.rank()).collect();
        self.reduce(ReduceKind::Mean, x, &axes, false)
    }

    /// Maximum over `axes`.
    ///
    /// # Errors
    /// For an axis beyond the rank or of length 0, or a foreign `Var`.
    pub fn max(&mut self, x: Var, axes: &[usize], keepdims: bool) -> Result<Var> {
        self.reduce(ReduceKind::Max, x, axes, keepdims)
    }

    /// Population variance over `axes`.
    ///
    /// # Errors
    /// For an axis beyond the rank or of length 0, or a foreign `Var`.
    pub fn variance(&mut self, x: Var, axes: &[usize], keepdims: bool) -> Result<Var> {
        self.reduce(ReduceKind::Variance, x, axes, keepdims)
    }
}
