//! Matrix views over flat buffers for [`gradlab_tensor::gemm`], the one GEMM
//! entry point (matrixmultiply, single-threaded: the kernels parallelise
//! outside it with rayon).

use gradlab_tensor::{Element, TensorError};
use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};

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

/// `rows x cols` matrix whose row `r` is `data[r*ld .. r*ld + cols]`.
pub(crate) fn mat_ld<T: Element>(
    data: &[T],
    rows: usize,
    cols: usize,
    ld: usize,
) -> Result<ArrayView2<'_, T>> {
    let len = if rows == 0 { 0 } else { (rows - 1) * ld + cols };
    let slice = data
        .get(..len)
        .ok_or_else(|| too_short(data.len(), rows, cols))?;
    ArrayView2::from_shape((rows, cols).strides((ld, 1)), slice)
        .map_err(|_| too_short(data.len(), rows, cols))
}

/// Mutable `rows x cols` matrix whose row `r` is `data[r*ld .. r*ld + cols]`.
pub(crate) fn mat_ld_mut<T: Element>(
    data: &mut [T],
    rows: usize,
    cols: usize,
    ld: usize,
) -> Result<ArrayViewMut2<'_, T>> {
    let len = if rows == 0 { 0 } else { (rows - 1) * ld + cols };
    let have = data.len();
    let slice = data
        .get_mut(..len)
        .ok_or_else(|| too_short(have, rows, cols))?;
    ArrayViewMut2::from_shape((rows, cols).strides((ld, 1)), slice)
        .map_err(|_| too_short(have, rows, cols))
}

/// The weight `[C_out, K]` (`K = C_in/groups * kH * kW`) rearranged as one
/// `[K, ld]` block per group (`ld >= C_out/groups`, extra columns zero): row
/// `k` of block `grp` holds tap `k`'s weights for every output channel of the
/// group. Viewed transposed (with `ld = C_out/groups`), each block is the
/// `[C_out/groups, K]` weight matrix of its group stored column by column,
/// the layout matrixmultiply packs with straight copies; the direct kernel
/// reads it with `ld` rounded up to its register tile.
pub(crate) fn weight_by_columns<T: Element>(
    w: &[T],
    groups: usize,
    cog: usize,
    k: usize,
    ld: usize,
) -> Vec<T> {
    let mut out = vec![T::zero(); groups * k * ld];
    for grp in 0..groups {
        let src = &w[grp * cog * k..(grp + 1) * cog * k];
        let dst = &mut out[grp * k * ld..(grp + 1) * k * ld];
        for (co, row) in src.chunks_exact(k).enumerate() {
            for (r, &v) in row.iter().enumerate() {
                dst[r * ld + co] = v;
            }
        }
    }
    out
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
