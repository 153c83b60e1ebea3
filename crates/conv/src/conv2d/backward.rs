//! Backward pass of standard and grouped convolutions.
//!
//! The batch is cut into at most [`BATCH_CHUNKS`] contiguous chunks (fewer
//! for very large weights), a partition fixed by the shapes alone. One rayon task per chunk owns the
//! input gradient of its images and a private weight/bias gradient; per image,
//! group and band of output rows it
//! - recomputes the im2col columns `col` and accumulates `dW_g += dy_g col^T`;
//! - computes `dcol = W_g^T dy_g` and adds it back with col2im into `dx`.
//!
//! The private gradients are then summed in chunk order, so the result is the
//! same bit for bit whatever the number of threads. Pointwise specs skip
//! im2col/col2im (see `pointwise.rs`).

use gradlab_tensor::Element;
use ndarray::{s, ArrayViewMut3, Axis};
use rayon::prelude::*;

use super::forward::{bands, tile_rows};
use super::{lane_sum, pointwise, RawGrads};
use crate::error::Result;
use crate::gemm::{gemm, internal, mat, mat_ld, mat_ld_mut, mat_mut};
use crate::im2col::{col2im, col_ld, im2col};
use crate::spec::Geometry;

/// Number of chunks the batch is cut into for the weight gradient; a constant,
/// not the thread count, so that the summation order never changes.
pub(crate) const BATCH_CHUNKS: usize = 16;

/// Elements all private weight gradients may take together (64 MiB of f32);
/// large weights get fewer chunks. Depends on the shapes only.
const PARTIAL_BUDGET: usize = 1 << 24;

pub(super) fn backward<T: Element>(
    x: &[T],
    w: &[T],
    dy: &[T],
    g: &Geometry,
) -> Result<RawGrads<T>> {
    let (hw, p, kk) = (g.in_plane(), g.out_plane(), g.col_rows());
    let wlen = g.c_out * kk;
    let max_chunks = (PARTIAL_BUDGET / wlen.max(1)).clamp(1, BATCH_CHUNKS);
    let chunk = g.n.div_ceil(max_chunks).max(1);
    let n_chunks = g.n.div_ceil(chunk);
    let mut dx = super::zeros("conv2d_backward", g.n * g.c_in * hw)?;
    let mut partials: Vec<(Vec<T>, Vec<T>)> = (0..n_chunks)
        .map(|_| (vec![T::zero(); wlen], vec![T::zero(); g.c_out]))
        .collect();
    {
        let mut dx3 = ArrayViewMut3::from_shape((g.n, g.c_in, hw), &mut dx[..])
            .map_err(|_| internal("backward input gradient", g.n * g.c_in * hw))?;
        let units: Vec<_> = dx3
            .axis_chunks_iter_mut(Axis(0), chunk)
            .zip(partials.iter_mut())
            .enumerate()
            .collect();
        let direct = g.is_pointwise_direct();
        let col_len = if direct {
            0
        } else {
            kk * col_ld(tile_rows(g) * g.ow)
        };
        units
            .into_par_iter()
            .try_for_each(|(c, (mut dx_chunk, (dw_p, db_p)))| -> Result<()> {
                let mut col = vec![T::zero(); col_len];
                let mut dcol = vec![T::zero(); col_len];
                let mut scratch = Vec::new();
                for (b, mut dx_n) in dx_chunk.outer_iter_mut().enumerate() {
                    let n = c * chunk + b;
                    let x_n = &x[n * g.c_in * hw..(n + 1) * g.c_in * hw];
                    let dy_n = &dy[n * g.c_out * p..(n + 1) * g.c_out * p];
                    for (db, plane) in db_p.iter_mut().zip(dy_n.chunks_exact(p)) {
                        *db = lane_sum(*db, plane);
                    }
                    let dx_n = dx_n
                        .as_slice_mut()
                        .ok_or_else(|| internal("backward input gradient image", 0))?;
                    for grp in 0..g.groups {
                        let x_g = &x_n[grp * g.cig * hw..(grp + 1) * g.cig * hw];
                        let dx_g = &mut dx_n[grp * g.cig * hw..(grp + 1) * g.cig * hw];
                        let w_g = mat(&w[grp * g.cog * kk..], g.cog, kk)?;
                        let dy_g = mat(&dy_n[grp * g.cog * p..], g.cog, p)?;
                        let mut dw_g = mat_mut(&mut dw_p[grp * g.cog * kk..], g.cog, kk)?;
                        for (oh0, oh1) in bands(g) {
                            let cols = oh0 * g.ow..oh1 * g.ow;
                            let dy_t = dy_g.slice(s![.., cols.clone()]);
                            if direct {
                                pointwise::backward_tile(
                                    w_g,
                                    x_g,
                                    dy_t,
                                    g,
                                    cols,
                                    dw_g.view_mut(),
                                    dx_g,
                                )?;
                            } else {
                                let pt = cols.len();
                                let ld = col_ld(pt);
                                im2col(x_g, g, oh0, oh1, &mut col, ld, &mut scratch);
                                let col_t = mat_ld(&col, kk, pt, ld)?.reversed_axes();
                                gemm(T::one(), dy_t, col_t, T::one(), dw_g.view_mut())?;
                                let dcol_m = mat_ld_mut(&mut dcol, kk, pt, ld)?;
                                gemm(T::one(), w_g.t(), dy_t, T::zero(), dcol_m)?;
                                col2im(&dcol, g, oh0, oh1, dx_g, ld, &mut scratch);
                            }
                        }
                    }
                }
                Ok(())
            })?;
    }
    let mut dw = vec![T::zero(); wlen];
    let mut db = vec![T::zero(); g.c_out];
    for (dw_p, db_p) in &partials {
        for (a, &b) in dw.iter_mut().zip(dw_p) {
            *a = *a + b;
        }
        for (a, &b) in db.iter_mut().zip(db_p) {
            *a = *a + b;
        }
    }
    Ok(RawGrads {
        input: dx,
        weight: dw,
        bias: db,
    })
}
