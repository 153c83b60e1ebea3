//! The scalar types tensors hold, and the GEMM entry point every kernel shares.

use std::fmt::{Debug, Display};
use std::iter::Sum;

use ndarray::{ArrayView2, ArrayViewMut2, LinalgScalar, ScalarOperand};
use num_traits::{Float, FromPrimitive, ToPrimitive};

use crate::error::{Result, TensorError};

/// A floating-point scalar a [`Tensor`](crate::Tensor) can hold: `f32` for
/// training, `f64` for gradient checks.
pub trait Element:
    Float
    + FromPrimitive
    + ToPrimitive
    + LinalgScalar
    + ScalarOperand
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// The dtype name as written in checkpoints (`"F32"`, `"F64"`).
    const DTYPE: &'static str;

    /// Converts from `f64`, rounding to the nearest representable value.
    fn of_f64(x: f64) -> Self;

    /// Converts to `f64` exactly.
    fn as_f64(self) -> f64;

    /// Raw general matrix product `C = alpha * A B + beta * C` (matrixmultiply's
    /// `sgemm`/`dgemm`), with `A` of shape `m x k`, `B` of `k x n`, `C` of `m x n`
    /// and arbitrary element strides. When `beta` is zero `C` is not read.
    ///
    /// # Safety
    /// The pointers and strides must describe valid, non-overlapping (for `C`)
    /// memory of the stated shapes. Prefer the checked [`gemm`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

macro_rules! impl_element {
    ($t:ty, $name:literal, $gemm:path) => {
        impl Element for $t {
            const DTYPE: &'static str = $name;

            #[inline]
            fn of_f64(x: f64) -> Self {
                x as $t
            }

            #[inline]
            fn as_f64(self) -> f64 {
                self as f64
            }

            #[inline]
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: forwarded from the caller's contract.
                unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}

impl_element!(f32, "F32", matrixmultiply::sgemm);
impl_element!(f64, "F64", matrixmultiply::dgemm);

/// Checked general matrix product `c = alpha * a · b + beta * c` on ndarray
/// views of any strides (a transposed view costs nothing).
///
/// This is the single GEMM entry point of gradlab: it runs matrixmultiply's
/// single-threaded `sgemm`/`dgemm`, so callers parallelise outside it.
///
/// # Errors
/// [`TensorError::MatmulMismatch`] when `a` is `m x k`, `b` is not `k x n` or
/// `c` is not `m x n`.
///
/// # Examples
/// ```
/// use gradlab_tensor::gemm;
/// use ndarray::array;
/// let a = array![[1.0f32, 2.0], [3.0, 4.0]];
/// let b = array![[1.0f32, 0.0], [0.0, 1.0]];
/// let mut c = ndarray::Array2::<f32>::zeros((2, 2));
/// gemm(1.0, a.view(), b.view(), 0.0, c.view_mut())?;
/// assert_eq!(c, a);
/// # Ok::<(), gradlab_tensor::TensorError>(())
/// ```
pub fn gemm<T: Element>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) -> Result<()> {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    if k != k2 || c.dim() != (m, n) {
        return Err(TensorError::MatmulMismatch {
            op: "gemm",
            lhs: vec![m, k],
            rhs: vec![k2, n],
        });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        // matrixmultiply handles k == 0, but be explicit: C = beta * C.
        if beta == T::zero() {
            c.fill(T::zero());
        } else {
            c.mapv_inplace(|x| x * beta);
        }
        return Ok(());
    }
    let [rsa, csa] = strides2(&a);
    let [rsb, csb] = strides2(&b);
    let cs = c.strides();
    let (rsc, csc) = (cs[0], cs[1]);
    // SAFETY: the views guarantee the memory and strides are valid for their
    // shapes, checked equal to (m, k), (k, n) and (m, n) above; `c` is a unique
    // borrow so it cannot overlap `a` or `b`.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            rsc,
            csc,
        );
    }
    Ok(())
}

fn strides2<T>(v: &ArrayView2<'_, T>) -> [isize; 2] {
    let s = v.strides();
    [s[0], s[1]]
}
