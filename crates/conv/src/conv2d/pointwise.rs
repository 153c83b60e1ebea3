//! 1x1 kernel, stride 1, no padding: the input planes of a group,
//! `[C_in/groups, H*W]`, are already the im2col matrix, so every product is a
//! GEMM straight on the NCHW data.

use gradlab_tensor::Element;
use ndarray::{s, ArrayView2, ArrayViewMut2};

use crate::error::Result;
use crate::gemm::{gemm, mat, mat_mut};
use crate::spec::Geometry;

/// `out[:, cols] = W_g x_g[:, cols]` for the output pixels `cols` of one group
/// of one image (`x_g` is `[C_in/groups, H*W]`).
pub(super) fn forward_tile<T: Element>(
    w_g: ArrayView2<'_, T>,
    x_g: &[T],
    g: &Geometry,
    cols: std::ops::Range<usize>,
    out: ArrayViewMut2<'_, T>,
) -> Result<()> {
    let b = mat(x_g, g.cig, g.in_plane())?.slice_move(s![.., cols]);
    gemm(T::one(), w_g, b, T::zero(), out)
}

/// The pointwise vector-Jacobian products on the pixels `cols` of one group
/// of one image: `dW_g += dy[:, cols] x_g[:, cols]^T` and
/// `dx_g[:, cols] = W_g^T dy[:, cols]` (transposes are free views).
pub(super) fn backward_tile<T: Element>(
    w_g: ArrayView2<'_, T>,
    x_g: &[T],
    dy_t: ArrayView2<'_, T>,
    g: &Geometry,
    cols: std::ops::Range<usize>,
    dw_g: ArrayViewMut2<'_, T>,
    dx_g: &mut [T],
) -> Result<()> {
    weight_grad_tile(x_g, dy_t, g, cols.clone(), dw_g)?;
    let dx_t = mat_mut(dx_g, g.cig, g.in_plane())?.slice_move(s![.., cols]);
    gemm(T::one(), w_g.t(), dy_t, T::zero(), dx_t)
}

/// `dW_g += dy[:, cols] x_g[:, cols]^T` alone (no input gradient wanted).
pub(super) fn weight_grad_tile<T: Element>(
    x_g: &[T],
    dy_t: ArrayView2<'_, T>,
    g: &Geometry,
    cols: std::ops::Range<usize>,
    dw_g: ArrayViewMut2<'_, T>,
) -> Result<()> {
    let x_t = mat(x_g, g.cig, g.in_plane())?.slice_move(s![.., cols]);
    gemm(T::one(), dy_t, x_t.t(), T::one(), dw_g)
}
