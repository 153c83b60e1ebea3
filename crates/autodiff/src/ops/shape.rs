//! Ops that move elements: reshape, permute, transpose, concat, slice.

use gradlab_tensor::{Element, Tensor};

use crate::error::{AutodiffError, Result};
use crate::graph::{Graph, Var};
use crate::op::{expect_arity, Op};

/// View the elements as another shape; VJP reshapes `g` back.
#[derive(Debug, Clone)]
pub struct Reshape(pub Vec<usize>);

impl<T: Element> Op<T> for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        expect_arity("reshape", inputs, 1)?;
        Ok(inputs[0].reshape(&self.0)?)
    }
    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _: &Tensor<T>,
        g: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        Ok(vec![needs[0]
            .then(|| g.reshape(inputs[0].shape()))
            .transpose()?])
    }
}

/// Reorder axes; VJP applies the inverse permutation.
#[derive(Debug, Clone)]
pub struct Permute(pub Vec<usize>);

impl<T: Element> Op<T> for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        expect_arity("permute", inputs, 1)?;
        Ok(inputs[0].permute(&self.0)?)
    }
    fn backward(
        &self,
        _: &[&Tensor<T>],
        _: &Tensor<T>,
        g: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        let mut inverse = vec![0; self.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            inverse[a] = i;
        }
        Ok(vec![needs[0].then(|| g.permute(&inverse)).transpose()?])
    }
}

/// Join inputs along `axis`; VJP slices `g` back into pieces.
#[derive(Debug, Clone, Copy)]
pub struct Concat(pub usize);

impl<T: Element> Op<T> for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(Tensor::concat(inputs, self.0)?)
    }
    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _: &Tensor<T>,
        g: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        let mut start = 0;
        let mut out = Vec::with_capacity(inputs.len());
        for (x, &need) in inputs.iter().zip(needs) {
            let end = start + x.shape()[self.0];
            out.push(need.then(|| g.slice_axis(self.0, start, end)).transpose()?);
            start = end;
        }
        Ok(out)
    }
}

/// Elements `start..end` along `axis`; VJP places `g` there in zeros.
#[derive(Debug, Clone, Copy)]
pub struct Slice {
    /// The sliced axis.
    pub axis: usize,
    /// First index kept.
    pub start: usize,
    /// One past the last index kept.
    pub end: usize,
}

impl<T: Element> Op<T> for Slice {
    fn name(&self) -> &'static str {
        "slice"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        expect_arity("slice", inputs, 1)?;
        Ok(inputs[0].slice_axis(self.axis, self.start, self.end)?)
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
        let mut full = Tensor::zeros(inputs[0].shape());
        full.view_mut()
            .slice_axis_mut(
                ndarray::Axis(self.axis),
                ndarray::Slice::from(self.start..self.end),
            )
            .assign(&g.view());
        Ok(vec![Some(full)])
    }
}

impl<T: Element> Graph<T> {
    /// The same elements as `shape`.
    ///
    /// # Errors
    /// When the element counts differ, or a `Var` is foreign.
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Result<Var> {
        self.apply(Reshape(shape.to_vec()), &[x])
    }

    /// Reorders axes: output axis `i` is input axis `axes[i]`.
    ///
    /// # Errors
    /// When `axes` is not a permutation, or a `Var` is foreign.
    pub fn permute(&mut self, x: Var, axes: &[usize]) -> Result<Var> {
        self.apply(Permute(axes.to_vec()), &[x])
    }

    /// Swaps axes `a` and `b`.
    ///
    /// # Errors
    /// For an axis beyond the rank, or a foreign `Var`.
    pub fn transpose(&mut self, x: Var, a: usize, b: usize) -> Result<Var> {
        let rank = self.value(x)?.rank();
        let mut axes: Vec<usize> = (0..rank).collect();
        if a >= rank || b >= rank {
            return Err(AutodiffError::Tensor(
                gradlab_tensor::TensorError::AxisOutOfRange {
                    op: "transpose",
                    axis: a.max(b),
                    shape: self.value(x)?.shape().to_vec(),
                },
            ));
        }
        axes.swap(a, b);
        self.permute(x, &axes)
    }

    /// Joins `xs` along `axis`.
    ///
    /// # Errors
    /// When shapes disagree off `axis`, the list is empty, or a `Var` is foreign.
    pub fn concat(&mut self, xs: &[Var], axis: usize) -> Result<Var> {
        self.apply(Concat(axis), xs)
    }

    /// Elements `start..end` along `axis`.
    ///
    /// # Errors
    /// When the range is outside the axis, or a `Var` is foreign.
    pub fn slice(&mut self, x: Var, axis: usize, start: usize, end: usize) -> Result<Var> {
        self.apply(Slice { axis, start, end }, &[x])
    }
}
