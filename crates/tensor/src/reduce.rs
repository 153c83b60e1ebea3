//! Reductions over chosen axes, with or without keeping the reduced axes.

use ndarray::{ArrayD, Axis};

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::tensor::Tensor;

impl<T: Element> Tensor<T> {
    /// Checks `axes` against the rank and returns them sorted, without repeats.
    fn reduction_axes(&self, op: &'static str, axes: &[usize]) -> Result<Vec<usize>> {
        let mut sorted = axes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if let Some(&axis) = sorted.iter().find(|&&a| a >= self.rank()) {
            return Err(TensorError::AxisOutOfRange {
                op,
                axis,
                shape: self.shape().to_vec(),
            });
        }
        Ok(sorted)
    }

    /// Reduces each axis of `axes` with `f` (which removes the axis), from the
    /// last to the first so indices stay valid, then restores size-1 axes if
    /// `keepdims`.
    fn reduce_with(
        &self,
        op: &'static str,
        axes: &[usize],
        keepdims: bool,
        f: impl Fn(&ArrayD<T>, Axis) -> ArrayD<T>,
    ) -> Result<Self> {
        let axes = self.reduction_axes(op, axes)?;
        let mut acc = self.array().clone();
        for &axis in axes.iter().rev() {
            acc = f(&acc, Axis(axis));
        }
        if keepdims {
            for &axis in &axes {
                acc = acc.insert_axis(Axis(axis));
            }
        }
        Ok(Tensor::from_array(acc))
    }

    fn check_nonempty(&self, op: &'static str, axes: &[usize]) -> Result<()> {
        for &axis in axes {
            if axis < self.rank() && self.shape()[axis] == 0 {
                return Err(TensorError::EmptyReduction {
                    op,
                    axis,
                    shape: self.shape().to_vec(),
                });
            }
        }
        Ok(())
    }

    /// Sum over `axes`.
    ///
    /// # Errors
    /// [`TensorError::AxisOutOfRange`] for an axis beyond the rank.
    ///
    /// # Examples
    /// ```
    /// use gradlab_tensor::Tensor;
    /// let t = Tensor::<f32>::from_vec(&[2, 3], vec![1., 2., 3., 4., 5., 6.])?;
    /// assert_eq!(t.sum(&[1], false)?.to_vec(), vec![6., 15.]);
    /// assert_eq!(t.sum(&[0], true)?.shape(), &[1, 3]);
    /// # Ok::<(), gradlab_tensor::TensorError>(())
    /// ```
    pub fn sum(&self, axes: &[usize], keepdims: bool) -> Result<Self> {
        self.reduce_with("sum", axes, keepdims, |a, ax| a.sum_axis(ax))
    }

    /// Sum of every element.
    pub fn sum_all(&self) -> T {
        self.array().sum()
    }

    /// Mean of every element (NaN for an empty tensor).
    pub fn mean_all(&self) -> T {
        self.sum_all() / T::of_f64(self.len() as f64)
    }

    /// Mean over `axes`.
    ///
    /// # Errors
    /// [`TensorError::AxisOutOfRange`]; [`TensorError::EmptyReduction`] for an axis of length 0.
    pub fn mean(&self, axes: &[usize], keepdims: bool) -> Result<Self> {
        self.check_nonempty("mean", axes)?;
        let count: usize = self
            .reduction_axes("mean", axes)?
            .iter()
            .map(|&a| self.shape()[a])
            .product();
        let s = self.sum(axes, keepdims)?;
        Ok(s.div_scalar(T::of_f64(count as f64)))
    }

    /// Largest value over `axes` (NaN propagates).
    ///
    /// # Errors
    /// [`TensorError::AxisOutOfRange`]; [`TensorError::EmptyReduction`] for an axis of length 0.
    pub fn max(&self, axes: &[usize], keepdims: bool) -> Result<Self> {
        self.check_nonempty("max", axes)?;
        self.reduce_with("max", axes, keepdims, |a, ax| {
            a.fold_axis(ax, T::neg_infinity(), |&m, &x| {
                if x > m || x.is_nan() {
                    x
                } else {
                    m
                }
            })
        })
    }

    /// Population variance (divided by the count, as BatchNorm uses) over `axes`.
    ///
    /// # Errors
    /// [`TensorError::AxisOutOfRange`]; [`TensorError::EmptyReduction`] for an axis of length 0.
    pub fn variance(&self, axes: &[usize], keepdims: bool) -> Result<Self> {
        let mean = self.mean(axes, true)?;
        let centred = self.sub(&mean)?;
        centred.mul(&centred)?.mean(axes, keepdims)
    }

    /// Index of the largest value along `axis` (the first one on ties); the axis is removed.
    ///
    /// # Errors
    /// [`TensorError::AxisOutOfRange`]; [`TensorError::EmptyReduction`] for an axis of length 0.
    pub fn argmax(&self, axis: usize) -> Result<ArrayD<usize>> {
        self.reduction_axes("argmax", &[axis])?;
        self.check_nonempty("argmax", &[axis])?;
        Ok(self.view().map_axis(Axis(axis), |lane| {
            let mut best = 0;
            for (i, &x) in lane.iter().enumerate() {
                if x > lane[best] {
                    best = i;
                }
            }
            best
        }))
    }
}
