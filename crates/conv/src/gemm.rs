//! Matrix views over flat buffers for [`gradlab_tensor::gemm`], the one GEMM
//! entry point (matrixmultiply, single-threaded: the kernels parallelise
//! outside it with rayon).

use gradlab_tensor::{Element, TensorError};
use ndarray::{ArrayView2, ArrayViewMut2};

use crate::error::Result;

/// `data[..rows*cols]` as a row-major `rows x cols` matrix.
pub(crate) fn mat<T: Element>(data: &[T], rows: usize, cols: usize) -> Result<ArrayView2<'_, T>> {
    let len = rows * cols;
    let slice = data
        .get(..len)
        .ok_or_else(|| too_short(data.len(), rows, cols))?;
    ArrayView2::from_shape((rows, cols), slice).map_err(|_| too_short(data.len(), rows, cols))
}

/// `data[..rows*cols]` as a mutable row-major `rows x cols` matrix.
pub(crate) fn mat_mut<T: Element>(
    data: &mut [T],
    rows: usize,
    cols: usize,
) -> Result<ArrayViewMut2<'_, T>> {
    let len = rows * cols;
    let have = data.len();
    let slice = data
        .get_mut(..len)
        .ok_or_else(|| too_short(have, rows, cols))?;
    ArrayViewMut2::from_shape((rows, cols), slice).map_err(|_| too_short(have, rows, cols))
}

fn too_short(len: usize, rows: usize, cols: usize) -> crate::ConvError {
    TensorError::ElementCount {
        op: "conv2d (internal matrix view)",
        len,
        shape: vec![rows, cols],
    }
    .into()
}

/// `C = alpha * A B + beta * C`, errors converted.
#[inline]
pub(crate) fn gemm<T: Element>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    c: ArrayViewMut2<'_, T>,
) -> Result<()> {
    gradlab_tensor::gemm(alpha, a, b, beta, c)?;
    Ok(())
}

/// An internal buffer of the wrong size: a bug in this crate if it happens.
pub(crate) fn internal(what: &'static str, len: usize) -> crate::ConvError {
    TensorError::ElementCount {
        op: what,
        len,
        shape: vec![],
    }
    .into()
}
