//! Matrix products: 2-D and batched, both through the shared [`gemm`].

use ndarray::{Array3, Ix2, Ix3};

use crate::element::{gemm, Element};
use crate::error::{Result, TensorError};
use crate::tensor::Tensor;

impl<T: Element> Tensor<T> {
    /// Matrix product of `[m, k]` and `[k, n]` into `[m, n]`, or batched:
    /// `[b, m, k]` times `[b, k, n]` into `[b, m, n]`.
    ///
    /// # Errors
    /// [`TensorError::RankMismatch`] unless both are rank 2 or both rank 3;
    /// [`TensorError::MatmulMismatch`] when inner or batch sizes disagree.
    ///
    /// # Examples
    /// ```
    /// use gradlab_tensor::Tensor;
    /// let a = Tensor::<f32>::from_vec(&[1, 2], vec![1., 2.])?;
    /// let b = Tensor::<f32>::from_vec(&[2, 1], vec![3., 4.])?;
    /// assert_eq!(a.matmul(&b)?.to_vec(), vec![11.]);
    /// # Ok::<(), gradlab_tensor::TensorError>(())
    /// ```
    pub fn matmul(&self, rhs: &Self) -> Result<Self> {
        let mismatch = || TensorError::MatmulMismatch {
            op: "matmul",
            lhs: self.shape().to_vec(),
            rhs: rhs.shape().to_vec(),
        };
        match (self.rank(), rhs.rank()) {
            (2, 2) => {
                let a = self
                    .view()
                    .into_dimensionality::<Ix2>()
                    .map_err(|_| mismatch())?;
                let b = rhs
                    .view()
                    .into_dimensionality::<Ix2>()
                    .map_err(|_| mismatch())?;
                if a.ncols() != b.nrows() {
                    return Err(mismatch());
                }
                let mut c = ndarray::Array2::<T>::zeros((a.nrows(), b.ncols()));
                gemm(T::one(), a, b, T::zero(), c.view_mut()).map_err(|_| mismatch())?;
                Ok(Tensor::from_array(c.into_dyn()))
            }
            (3, 3) => {
                let a = self
                    .view()
                    .into_dimensionality::<Ix3>()
                    .map_err(|_| mismatch())?;
                let b = rhs
                    .view()
                    .into_dimensionality::<Ix3>()
                    .map_err(|_| mismatch())?;
                let (batch, m, k) = a.dim();
                let (batch2, k2, n) = b.dim();
                if batch != batch2 || k != k2 {
                    return Err(mismatch());
                }
                let mut c = Array3::<T>::zeros((batch, m, n));
                for ((ai, bi), ci) in a.outer_iter().zip(b.outer_iter()).zip(c.outer_iter_mut()) {
                    gemm(T::one(), ai, bi, T::zero(), ci).map_err(|_| mismatch())?;
                }
                Ok(Tensor::from_array(c.into_dyn()))
            }
            (2 | 3, _) => Err(TensorError::RankMismatch {
                op: "matmul",
                expected: self.rank(),
                shape: rhs.shape().to_vec(),
            }),
            _ => Err(TensorError::RankMismatch {
                op: "matmul",
                expected: 2,
                shape: self.shape().to_vec(),
            }),
        }
    }
}
