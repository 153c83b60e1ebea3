//! Element-wise binary operations with NumPy broadcasting, and the reverse:
//! summing a broadcast gradient back down to an input's shape.

use ndarray::{ArrayD, Axis, IxDyn, Zip};
use rayon::prelude::*;

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::tensor::{Tensor, PARALLEL_MIN_ELEMENTS};

/// The NumPy broadcast of two shapes: align from the right; each pair of
/// sizes must be equal or one of them 1.
///
/// # Errors
/// [`TensorError::BroadcastMismatch`] naming both shapes.
pub fn broadcast_shape(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Result<Vec<usize>> {
    let rank = lhs.len().max(rhs.len());
    let mut out = vec![0; rank];
    for (i, slot) in out.iter_mut().enumerate() {
        let l = dim_from_right(lhs, rank, i);
        let r = dim_from_right(rhs, rank, i);
        *slot = match (l, r) {
            (a, b) if a == b => a,
            (1, b) => b,
            (a, 1) => a,
            _ => {
                return Err(TensorError::BroadcastMismatch {
                    op,
                    lhs: lhs.to_vec(),
                    rhs: rhs.to_vec(),
                })
            }
        };
    }
    Ok(out)
}

fn dim_from_right(shape: &[usize], rank: usize, i: usize) -> usize {
    let offset = rank - shape.len();
    if i < offset {
        1
    } else {
        shape[i - offset]
    }
}

/// Applies `f` element-wise to two broadcast-compatible tensors (on all
/// rayon threads when they have the same shape and at least
/// [`PARALLEL_MIN_ELEMENTS`] elements).
///
/// # Errors
/// [`TensorError::BroadcastMismatch`] when the shapes do not broadcast.
pub fn zip_broadcast<T: Element>(
    op: &'static str,
    lhs: &Tensor<T>,
    rhs: &Tensor<T>,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Result<Tensor<T>> {
    if lhs.shape() == rhs.shape() {
        if lhs.len() >= PARALLEL_MIN_ELEMENTS {
            if let (Some(l), Some(r)) = (lhs.array().as_slice(), rhs.array().as_slice()) {
                let mut out = Vec::with_capacity(l.len());
                out.par_extend(l.par_iter().zip(r).map(|(&a, &b)| f(a, b)));
                return Ok(Tensor::from_contiguous(lhs.shape(), out));
            }
        }
        let out = Zip::from(lhs.view())
            .and(rhs.view())
            .map_collect(|&a, &b| f(a, b));
        return Ok(Tensor::from_array(out));
    }
    let shape = broadcast_shape(op, lhs.shape(), rhs.shape())?;
    let mismatch = || TensorError::BroadcastMismatch {
        op,
        lhs: lhs.shape().to_vec(),
        rhs: rhs.shape().to_vec(),
    };
    let l = lhs.view();
    let r = rhs.view();
    let lb = l.broadcast(IxDyn(&shape)).ok_or_else(mismatch)?;
    let rb = r.broadcast(IxDyn(&shape)).ok_or_else(mismatch)?;
    let out = Zip::from(&lb).and(&rb).map_collect(|&a, &b| f(a, b));
    Ok(Tensor::from_array(out))
}

impl<T: Element> Tensor<T> {
    /// Element-wise sum with broadcasting.
    ///
    /// # Errors
    /// [`TensorError::BroadcastMismatch`] when the shapes do not broadcast.
    ///
    /// # Examples
    /// ```
    /// use gradlab_tensor::Tensor;
    /// let a = Tensor::<f64>::from_vec(&[2, 1], vec![1.0, 2.0])?;
    /// let b = Tensor::<f64>::from_vec(&[3], vec![10.0, 20.0, 30.0])?;
    /// assert_eq!(a.add(&b)?.to_vec(), vec![11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
    /// # Ok::<(), gradlab_tensor::TensorError>(())
    /// ```
    pub fn add(&self, rhs: &Self) -> Result<Self> {
        zip_broadcast("add", self, rhs, |a, b| a + b)
    }

    /// Adds `rhs` element by element into `self` (`self += rhs`), on all
    /// rayon threads from [`PARALLEL_MIN_ELEMENTS`] elements (the result is
    /// the same either way): a gradient accumulated where a value is used
    /// twice, without a third buffer.
    ///
    /// # Errors
    /// [`TensorError::BroadcastMismatch`] when the shapes differ (`self`
    /// keeps its shape, so there is no broadcasting).
    ///
    /// # Examples
    /// ```
    /// use gradlab_tensor::Tensor;
    /// let mut a = Tensor::<f64>::from_vec(&[2], vec![1.0, 2.0])?;
    /// a.add_assign(&Tensor::from_vec(&[2], vec![10.0, 20.0])?)?;
    /// assert_eq!(a.to_vec(), vec![11.0, 22.0]);
    /// assert!(a.add_assign(&Tensor::zeros(&[3])).is_err());
    /// # Ok::<(), gradlab_tensor::TensorError>(())
    /// ```
    pub fn add_assign(&mut self, rhs: &Self) -> Result<()> {
        if self.shape() != rhs.shape() {
            return Err(TensorError::BroadcastMismatch {
                op: "add_assign",
                lhs: self.shape().to_vec(),
                rhs: rhs.shape().to_vec(),
            });
        }
        let parallel = self.len() >= PARALLEL_MIN_ELEMENTS;
        let mut acc = self.view_mut();
        match (acc.as_slice_mut(), rhs.array().as_slice()) {
            (Some(a), Some(b)) if parallel => a
                .par_chunks_mut(PARALLEL_MIN_ELEMENTS)
                .zip(b.par_chunks(PARALLEL_MIN_ELEMENTS))
                .for_each(|(a, b)| {
                    for (a, &b) in a.iter_mut().zip(b) {
                        *a = *a + b;
                    }
                }),
            _ => Zip::from(&mut acc)
                .and(rhs.view())
                .for_each(|a, &b| *a = *a + b),
        }
        Ok(())
    }

    /// Element-wise difference with broadcasting.
    ///
    /// # Errors
    /// [`TensorError::BroadcastMismatch`] when the shapes do not broadcast.
    pub fn sub(&self, rhs: &Self) -> Result<Self> {
        zip_broadcast("sub", self, rhs, |a, b| a - b)
    }

    /// Element-wise product with broadcasting.
    ///
    /// # Errors
    /// [`TensorError::BroadcastMismatch`] when the shapes do not broadcast.
    pub fn mul(&self, rhs: &Self) -> Result<Self> {
        zip_broadcast("mul", self, rhs, |a, b| a * b)
    }

    /// Element-wise quotient with broadcasting (IEEE semantics for division by zero).
    ///
    /// # Errors
    /// [`TensorError::BroadcastMismatch`] when the shapes do not broadcast.
    pub fn div(&self, rhs: &Self) -> Result<Self> {
        zip_broadcast("div", self, rhs, |a, b| a / b)
    }

    /// Element-wise maximum with broadcasting.
    ///
    /// # Errors
    /// [`TensorError::BroadcastMismatch`] when the shapes do not broadcast.
    pub fn maximum(&self, rhs: &Self) -> Result<Self> {
        zip_broadcast("maximum", self, rhs, |a, b| if b > a { b } else { a })
    }

    /// Element-wise minimum with broadcasting.
    ///
    /// # Errors
    /// [`TensorError::BroadcastMismatch`] when the shapes do not broadcast.
    pub fn minimum(&self, rhs: &Self) -> Result<Self> {
        zip_broadcast("minimum", self, rhs, |a, b| if b < a { b } else { a })
    }

    /// Sums a (broadcast) tensor down to `shape`: the leading axes it lacks and
    /// the axes where `shape` has size 1 are summed. This is the gradient of
    /// broadcasting `shape` up to `self.shape()`.
    ///
    /// # Errors
    /// [`TensorError::NotReducible`] when `self` is not a broadcast of `shape`.
    pub fn sum_to_shape(&self, shape: &[usize]) -> Result<Self> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let err = || TensorError::NotReducible {
            from: self.shape().to_vec(),
            to: shape.to_vec(),
        };
        let rank = self.rank();
        if shape.len() > rank {
            return Err(err());
        }
        let lead = rank - shape.len();
        let mut acc: ArrayD<T> = self.array().clone();
        // Sum from the last axis so earlier indices stay valid.
        for axis in (0..rank).rev() {
            let keep_one = axis >= lead && shape[axis - lead] == 1;
            if axis < lead {
                acc = acc.sum_axis(Axis(axis));
            } else if keep_one && self.shape()[axis] != 1 {
                acc = acc.sum_axis(Axis(axis)).insert_axis(Axis(axis));
            } else if shape[axis - lead] != self.shape()[axis] {
                return Err(err());
            }
        }
        Ok(Tensor::from_array(acc))
    }
}
