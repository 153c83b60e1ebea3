//! Backward pass of standard and grouped convolutions.
//!
//! The batch is cut into at most [`BATCH_CHUNKS`] contiguous chunks (fewer
//! for very large weights), a partition fixed by the shapes alone. One rayon
//! task per chunk owns a private weight/bias gradient (and, on the col2im
//! route, the input gradient of its images); per image, group and band of
//! output rows it accumulates the weight gradient:
//! - where the direct kernel applies (stride 1, any width; see
//!   `direct.rs`), from the padded band of the input and the output
//!   gradient transposed to `[pixel, channel]`, with no columns;
//! - otherwise by recomputing the im2col columns `col`: `dW_g += dy_g col^T`.
//!
//! The private gradients are then summed in chunk order, so the result is the
//! same bit for bit whatever the number of threads. Pointwise specs skip
//! im2col/col2im (see `pointwise.rs`).
//!
//! The input gradient: with stride 1 (and padding at most the dilated
//! kernel's reach) it is itself a stride-1 convolution, `grad_output`
//! correlated with the kernel flipped in both axes and its channel axes
//! swapped, padded by `dil*(k-1) - pad` (see [`transposed_geometry`]); where
//! that convolution runs the direct kernel, it is computed so, by the forward
//! pass. Otherwise the chunk tasks compute `dcol = W_g^T dy_g` by GEMM and add
//! it back with col2im.

use gradlab_tensor::Element;
use ndarray::{s, ArrayViewMut3, Axis};
use rayon::prelude::*;

use super::channels;
use super::direct::{self, grad_wide_width, wide_width};
use super::forward::{self, bands, tile_rows};
use super::simd::Isa;
use super::{lane_sum, pointwise, GradsWanted, RawGrads};
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

/// The weight gradient, and the input and bias gradients when `wanted`
/// says so (each left empty otherwise).
pub(super) fn backward<T: Element>(
    isa: Isa,
    x: &[T],
    w: &[T],
    dy: &[T],
    g: &Geometry,
    wanted: GradsWanted,
) -> Result<RawGrads<T>> {
    let bias = wanted.bias;
    let transposed = if wanted.input {
        transposed_geometry::<T>(isa, g)
    } else {
        None
    };
    let (input, weight, bias) = match transposed {
        Some(gt) => {
            let (_, weight, bias) = weight_and_input_grads(isa, x, w, dy, g, false, bias)?;
            let input = forward::forward(isa, dy, &flipped_weight(w, g), None, &gt)?;
            (input, weight, bias)
        }
        None => weight_and_input_grads(isa, x, w, dy, g, wanted.input, bias)?,
    };
    Ok(RawGrads {
        input,
        weight,
        bias,
    })
}

/// The geometry of the input gradient of a stride-1 convolution seen as a
/// forward convolution of `grad_output` (`C_out` channels, `H_out x W_out`)
/// into `C_in` channels of `H x W`: same kernel, dilation and groups, padding
/// `dil*(k-1) - pad`. `None` when that padding would be negative, for other
/// strides, and for pointwise specs (their input gradient is one GEMM).
///
/// Why it holds: `dx[ci, ih] = sum_{co, i} w[co, ci, i] dy[co, ih + pad - i*dil]`;
/// with `i' = k-1-i` that is `dy[co, ih - pad' + i'*dil]`, a correlation with
/// the flipped kernel and padding `pad' = dil*(k-1) - pad`, whose output size
/// is `H_out + 2pad' - dil*(k-1) = H`.
///
/// Used only where that forward convolution runs a direct kernel
/// (`direct.rs`, or `channels.rs` on small images). Measured at batch 64
/// (conv bench, forward+backward): 3x3 32->32 on 16x16 8.77 -> 8.44 ms; on
/// 8x8 images through im2col + GEMM, 64->64 went 8.50 -> 8.66 ms, so those
/// kept col2im until the channel-vectorised kernel: through it the backward
/// of 64->64 on 8x8 took 7.53 against 7.96 ms (`conv_small` bench, one
/// run). The weight gradient takes the direct kernel at every size (see
/// `direct::grad_wide_width`).
fn transposed_geometry<T>(isa: Isa, g: &Geometry) -> Option<Geometry> {
    if g.s != [1, 1] || g.is_pointwise_direct() {
        return None;
    }
    let reach = |a: usize| (g.k[a] - 1) * g.d[a];
    let p = [reach(0).checked_sub(g.p[0])?, reach(1).checked_sub(g.p[1])?];
    let gt = Geometry {
        n: g.n,
        c_in: g.c_out,
        h: g.oh,
        w: g.ow,
        c_out: g.c_in,
        oh: g.h,
        ow: g.w,
        k: g.k,
        s: [1, 1],
        p,
        d: g.d,
        groups: g.groups,
        cig: g.cog,
        cog: g.cig,
    };
    (wide_width(&gt).is_some() || channels::applies::<T>(isa, &gt)).then_some(gt)
}

/// The weight of [`transposed_geometry`]: `w'[grp*cig + ci, co, i, j] =
/// w[grp*cog + co, ci, kH-1-i, kW-1-j]`, shape `[C_in, C_out/groups, kH, kW]`.
fn flipped_weight<T: Element>(w: &[T], g: &Geometry) -> Vec<T> {
    let [kh, kw] = g.k;
    let taps = kh * kw;
    let mut out = vec![T::zero(); w.len()];
    for grp in 0..g.groups {
        for co in 0..g.cog {
            for ci in 0..g.cig {
                let src = ((grp * g.cog + co) * g.cig + ci) * taps;
                let dst = ((grp * g.cig + ci) * g.cog + co) * taps;
                for t in 0..taps {
                    out[dst + taps - 1 - t] = w[src + t];
                }
            }
        }
    }
    out
}

/// The weight gradient, the bias gradient when `bias_grad`, and the input
/// gradient by GEMM into columns and col2im when `input_grad` (empty
/// vectors for those not asked for).
fn weight_and_input_grads<T: Element>(
    isa: Isa,
    x: &[T],
    w: &[T],
    dy: &[T],
    g: &Geometry,
    input_grad: bool,
    bias_grad: bool,
) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
    let (hw, p, kk) = (g.in_plane(), g.out_plane(), g.col_rows());
    let wlen = g.c_out * kk;
    let direct = g.is_pointwise_direct();
    // The weight gradient by the direct kernel where it applies: the
    // same method whether or not the input gradient is computed here, so
    // `conv2d_backward_params` gives the same bits as `conv2d_backward`.
    let wide = if direct { None } else { grad_wide_width(g) };
    let m_pad = direct::round_up(g.cog, direct::grad_nr::<T>());
    // The direct kernel accumulates tap-major, `[group, tap, channel]` with
    // the channels padded to `m_pad` (whole vectors, added with vector
    // adds); transposed to `[channel, tap]` once, after the chunks' sum.
    let partial_len = if wide.is_some() {
        g.groups * kk * m_pad
    } else {
        wlen
    };
    let max_chunks = (PARTIAL_BUDGET / partial_len.max(1)).clamp(1, BATCH_CHUNKS);
    let chunk = g.n.div_ceil(max_chunks).max(1);
    let n_chunks = g.n.div_ceil(chunk);
    // Without the input gradient each image still needs a (zero-size) unit.
    let dx_plane = if input_grad { g.c_in * hw } else { 0 };
    let mut dx = super::zeros("conv2d_backward", g.n * dx_plane)?;
    let mut partials: Vec<(Vec<T>, Vec<T>)> = (0..n_chunks)
        .map(|_| {
            let db_len = if bias_grad { g.c_out } else { 0 };
            (vec![T::zero(); partial_len], vec![T::zero(); db_len])
        })
        .collect();
    {
        let mut dx3 = ArrayViewMut3::from_shape((g.n, 1, dx_plane), &mut dx[..])
            .map_err(|_| internal("backward input gradient", g.n * dx_plane))?;
        let units: Vec<_> = dx3
            .axis_chunks_iter_mut(Axis(0), chunk)
            .zip(partials.iter_mut())
            .enumerate()
            .collect();
        let band_cols = if direct {
            0
        } else {
            kk * col_ld(tile_rows(g) * g.ow)
        };
        let col_len = if wide.is_some() { 0 } else { band_cols };
        let wide_len = wide.map_or(0, |wp| m_pad * tile_rows(g) * wp);
        units
            .into_par_iter()
            .try_for_each(|(c, (mut dx_chunk, (dw_p, db_p)))| -> Result<()> {
                let mut col = vec![T::zero(); col_len];
                let mut dcol = vec![T::zero(); if input_grad { band_cols } else { 0 }];
                let mut scratch = Vec::new();
                let mut dy_wide = vec![T::zero(); wide_len];
                let mut offs = Vec::new();
                let mut dy_rows = Vec::with_capacity(g.cog);
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
                        let dx_g = if input_grad {
                            &mut dx_n[grp * g.cig * hw..(grp + 1) * g.cig * hw]
                        } else {
                            &mut []
                        };
                        let w_g = mat(&w[grp * g.cog * kk..], g.cog, kk)?;
                        let dy_g = mat(&dy_n[grp * g.cog * p..], g.cog, p)?;
                        let (dw_rows, dw_cols) = if wide.is_some() {
                            (kk, m_pad)
                        } else {
                            (g.cog, kk)
                        };
                        let mut dw_g =
                            mat_mut(&mut dw_p[grp * dw_rows * dw_cols..], dw_rows, dw_cols)?;
                        for (oh0, oh1) in bands(g) {
                            let cols = oh0 * g.ow..oh1 * g.ow;
                            let dy_t = dy_g.slice(s![.., cols.clone()]);
                            if direct {
                                if input_grad {
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
                                    pointwise::weight_grad_tile(
                                        x_g,
                                        dy_t,
                                        g,
                                        cols,
                                        dw_g.view_mut(),
                                    )?;
                                }
                                continue;
                            }
                            let pt = cols.len();
                            if let Some(wp) = wide {
                                let slack = wp + direct::grad_nr::<T>();
                                direct::pack_band(
                                    x_g,
                                    g,
                                    oh0,
                                    oh1,
                                    wp,
                                    slack,
                                    &mut scratch,
                                    &mut offs,
                                );
                                // dy transposed to [wide pixel, channel]; the
                                // junk pixels are neither written nor read.
                                let rows = oh1 - oh0;
                                let dyt = &mut dy_wide[..rows * wp * m_pad];
                                dy_rows.clear();
                                dy_rows.extend((0..g.cog).map(|co| {
                                    let start = (grp * g.cog + co) * p + oh0 * g.ow;
                                    &dy_n[start..start + pt]
                                }));
                                direct::pixel_major(&dy_rows, g.ow, wp, m_pad, dyt);
                                let dw_s = dw_g
                                    .as_slice_mut()
                                    .ok_or_else(|| internal("backward weight gradient", 0))?;
                                direct::weight_grad(
                                    isa, dyt, m_pad, &scratch, &offs, rows, wp, g.ow, dw_s,
                                );
                            } else {
                                let ld = col_ld(pt);
                                im2col(x_g, g, oh0, oh1, &mut col, ld, &mut scratch);
                                let col_t = mat_ld(&col, kk, pt, ld)?.reversed_axes();
                                gemm(T::one(), dy_t, col_t, T::one(), dw_g.view_mut())?;
                            }
                            if input_grad {
                                let ld = col_ld(pt);
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
    let mut dw = vec![T::zero(); partial_len];
    let mut db = vec![T::zero(); if bias_grad { g.c_out } else { 0 }];
    for (dw_p, db_p) in &partials {
        for (a, &b) in dw.iter_mut().zip(dw_p) {
            *a = *a + b;
        }
        for (a, &b) in db.iter_mut().zip(db_p) {
            *a = *a + b;
        }
    }
    if wide.is_some() {
        let mut by_channel = vec![T::zero(); wlen];
        for (grp, taps) in dw.chunks_exact(kk * m_pad).enumerate() {
            for (k, channels) in taps.chunks_exact(m_pad).enumerate() {
                for (c, &v) in channels[..g.cog].iter().enumerate() {
                    by_channel[(grp * g.cog + c) * kk + k] = v;
                }
            }
        }
        dw = by_channel;
    }
    Ok((dx, dw, db))
}
