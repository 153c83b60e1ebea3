//! Operations that move elements without changing them: reshape, permute,
//! transpose, concatenation and slicing along an axis.

use ndarray::{Axis, IxDyn, Slice};

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::tensor::{checked_numel, Tensor};

impl<T: Element> Tensor<T> {
    /// The same elements, row-major, viewed as `shape`.
    ///
    /// # Errors
    /// [`TensorError::ElementCount`] when `shape` holds a different number of elements.
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        let numel = checked_numel(shape, "reshape")?;
        if numel != self.len() {
            return Err(TensorError::ElementCount {
                op: "reshape",
                len: self.len(),
                shape: shape.to_vec(),
            });
        }
        Tensor::from_vec(shape, self.to_vec())
    }

    /// Reorders the axes: output axis `i` is input axis `axes[i]`.
    ///
    /// # Errors
    /// [`TensorError::InvalidPermutation`] when `axes` is not a permutation of `0..rank`.
    pub fn permute(&self, axes: &[usize]) -> Result<Self> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        let valid = axes.len() == rank
            && axes
                .iter()
                .all(|&a| a < rank && !std::mem::replace(&mut seen[a], true));
        if !valid {
            return Err(TensorError::InvalidPermutation {
                axes: axes.to_vec(),
                shape: self.shape().to_vec(),
            });
        }
        Ok(Tensor::from_array(
            self.view().permuted_axes(IxDyn(axes)).to_owned(),
        ))
    }

    /// Swaps two axes.
    ///
    /// # Errors
    /// [`TensorError::AxisOutOfRange`] for an axis beyond the rank.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Self> {
        for axis in [a, b] {
            if axis >= self.rank() {
                return Err(TensorError::AxisOutOfRange {
                    op: "transpose",
                    axis,
                    shape: self.shape().to_vec(),
                });
            }
        }
        let mut v = self.view();
        v.swap_axes(a, b);
        Ok(Tensor::from_array(v.to_owned()))
    }

    /// Joins tensors along `axis`; all other axes must agree.
    ///
    /// # Errors
    /// [`TensorError::InvalidArgument`] for an empty list,
    /// [`TensorError::AxisOutOfRange`], [`TensorError::ConcatMismatch`].
    pub fn concat(tensors: &[&Self], axis: usize) -> Result<Self> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::InvalidArgument {
                op: "concat",
                reason: "no tensors to concatenate".into(),
            })?;
        if axis >= first.rank() {
            return Err(TensorError::AxisOutOfRange {
                op: "concat",
                axis,
                shape: first.shape().to_vec(),
            });
        }
        for t in tensors {
            let agree = t.rank() == first.rank()
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(i, (a, b))| i == axis || a == b);
            if !agree {
                return Err(TensorError::ConcatMismatch {
                    axis,
                    first: first.shape().to_vec(),
                    other: t.shape().to_vec(),
                });
            }
        }
        let views: Vec<_> = tensors.iter().map(|t| t.view()).collect();
        let out =
            ndarray::concatenate(Axis(axis), &views).map_err(|_| TensorError::ConcatMismatch {
                axis,
                first: first.shape().to_vec(),
                other: tensors
                    .last()
                    .map(|t| t.shape().to_vec())
                    .unwrap_or_default(),
            })?;
        Ok(Tensor::from_array(out))
    }

    /// The elements `start..end` along `axis`.
    ///
    /// # Errors
    /// [`TensorError::AxisOutOfRange`], [`TensorError::SliceOutOfRange`] when
    /// `start > end` or `end` exceeds the axis length.
    pub fn slice_axis(&self, axis: usize, start: usize, end: usize) -> Result<Self> {
        if axis >= self.rank() {
            return Err(TensorError::AxisOutOfRange {
                op: "slice",
                axis,
                shape: self.shape().to_vec(),
            });
        }
        let len = self.shape()[axis];
        if start > end || end > len {
            return Err(TensorError::SliceOutOfRange {
                axis,
                start,
                end,
                len,
                shape: self.shape().to_vec(),
            });
        }
        let v = self
            .view()
            .slice_axis(Axis(axis), Slice::from(start..end))
            .to_owned();
        Ok(Tensor::from_array(v))
    }
}
