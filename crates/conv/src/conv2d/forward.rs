//! Forward pass of standard and grouped convolutions: per image and band of
//! output rows, for each group, im2col into a per-task buffer then one GEMM
//! `out_g[C_out/groups, pixels] = W_g[C_out/groups, C_in/groups*kH*kW] * col`.
//! Pointwise specs skip im2col (see `pointwise.rs`); stride-1 specs on images
//! wide enough run the direct kernel on the padded band instead (see
//! `direct.rs`; in the AVX-512 build, f32 3x3 ones its row-tiled form,
//! `rows.rs`), those on small images with enough channels the
//! channel-vectorised kernel (see `channels.rs`). Batches of
//! [`IMAGE_UNITS_MIN`] images and more run one task per image, which zeroes
//! its output just before writing it; smaller ones one per band.

use gradlab_tensor::Element;
use ndarray::{s, ArrayViewMut2, ArrayViewMut3, Axis};
use rayon::prelude::*;

use super::channels;
use super::direct::{self, wide_width};
use super::pointwise;
use super::rows;
use super::simd::{self, Isa};
use crate::error::Result;
use crate::gemm::{gemm, mat, mat_ld, weight_by_columns};
use crate::im2col::{col_ld, copy_short, im2col, pad_band};
use crate::spec::Geometry;

/// Output pixels per band: bounds the im2col buffer (a band of
/// `C_in/groups*kH*kW x TILE_PIXELS` stays in the L2 cache for the small
/// channel counts of CNNs) and gives rayon work when the batch is small.
pub(crate) const TILE_PIXELS: usize = 256;

/// Output rows per band: whole rows, about [`TILE_PIXELS`] pixels.
pub(crate) fn tile_rows(g: &Geometry) -> usize {
    (TILE_PIXELS / g.ow.max(1)).clamp(1, g.oh.max(1))
}

/// The bands `(oh0, oh1)` of output rows.
pub(crate) fn bands(g: &Geometry) -> impl Iterator<Item = (usize, usize)> {
    let rows = tile_rows(g);
    let oh = g.oh;
    (0..oh.div_ceil(rows)).map(move |t| (t * rows, ((t + 1) * rows).min(oh)))
}

pub(super) fn forward<T: Element>(
    isa: Isa,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    g: &Geometry,
) -> Result<Vec<T>> {
    let (hw, p, kk) = (g.in_plane(), g.out_plane(), g.col_rows());
    let pointwise_direct = g.is_pointwise_direct();
    let chan = channels::applies::<T>(isa, g);
    let wide = if pointwise_direct || chan {
        None
    } else {
        wide_width(g)
    };
    let col_len = if pointwise_direct || wide.is_some() || chan {
        0
    } else {
        kk * col_ld(tile_rows(g) * g.ow)
    };
    // The direct kernel reads the weight blocks with rows padded to its tile.
    let row_tiled = rows::applies::<T>(isa, g, wide);
    let m_pad = match wide {
        Some(_) => direct::round_up(g.cog, direct::mr(isa)),
        None => g.cog,
    };
    let ldc = direct::round_up(g.cog, channels::cr::<T>(isa));
    let wt = if chan {
        channels::weight_by_taps(w, g, channels::cr::<T>(isa))
    } else {
        weight_by_columns(w, g.groups, g.cog, kk, m_pad)
    };
    let chan_len = if chan { g.cog * tile_rows(g) * g.ow } else { 0 };
    let wide_len = wide.filter(|_| !row_tiled).map_or(0, |wp| {
        m_pad * direct::round_up(tile_rows(g) * wp, direct::nr::<T>(isa))
    });
    let scratch = || {
        (
            vec![T::zero(); col_len],
            Vec::new(),
            // The wide output, or the channel kernel's output band.
            vec![T::zero(); wide_len.max(chan_len)],
            Vec::new(),
            Vec::new(),
        )
    };
    let band_unit = |(col, scratch, wide_out, offs, toff): &mut Scratch<T>,
                     (n, oh0, oh1, mut band): (usize, usize, usize, ArrayViewMut2<T>)|
     -> Result<()> {
        let x_n = &x[n * g.c_in * hw..(n + 1) * g.c_in * hw];
        let pt = (oh1 - oh0) * g.ow;
        for grp in 0..g.groups {
            let x_g = &x_n[grp * g.cig * hw..(grp + 1) * g.cig * hw];
            let out_g = band.slice_mut(s![grp * g.cog..(grp + 1) * g.cog, ..]);
            if chan {
                // Channel-vectorised kernel into [channel, pixel], then
                // into the band's rows of the output.
                channels::pack_band(x_g, g, oh0, oh1, scratch, offs, toff);
                let panel = &wt[grp * kk * ldc..(grp + 1) * kk * ldc];
                let dst = &mut wide_out[..g.cog * pt];
                channels::correlate(isa, panel, g.cog, g.cig, scratch, offs, toff, dst);
                let mut out_g = out_g;
                for (mut d, s) in out_g.outer_iter_mut().zip(dst.chunks_exact(pt)) {
                    copy_short(
                        d.as_slice_mut()
                            .ok_or_else(|| crate::gemm::internal("forward band", 0))?,
                        s,
                    );
                }
            } else if let (Some(wp), true) = (wide, row_tiled) {
                // Row-tiled kernel straight into the output rows.
                let chan = pad_band(x_g, g, oh0, oh1, rows::slack(wp), scratch);
                let panel = &wt[grp * kk * m_pad..(grp + 1) * kk * m_pad];
                let mut out_g = out_g;
                let mut dst = Vec::with_capacity(g.cog);
                for row in out_g.outer_iter_mut() {
                    let row = row.into_slice().and_then(simd::as_f32_mut);
                    dst.push(row.ok_or_else(|| crate::gemm::internal("forward band", 0))?);
                }
                let (panel, band) = simd::as_f32(panel)
                    .zip(simd::as_f32(scratch))
                    .ok_or_else(|| crate::gemm::internal("forward band", 0))?;
                let band_rows = oh1 - oh0;
                rows::correlate(
                    panel, m_pad, band, g.cig, chan, wp, band_rows, g.ow, &mut dst,
                );
            } else if let Some(wp) = wide {
                // Direct kernel into the wide layout, then keep the W_out real columns.
                let ptw = direct::round_up((oh1 - oh0) * wp, direct::nr::<T>(isa));
                let slack = wp + direct::nr::<T>(isa);
                direct::pack_band(x_g, g, oh0, oh1, wp, slack, scratch, offs);
                let panel = &wt[grp * kk * m_pad..(grp + 1) * kk * m_pad];
                direct::correlate(isa, panel, m_pad, scratch, offs, wide_out, ptw);
                let mut out_g = out_g;
                for (mut dst, src) in out_g.outer_iter_mut().zip(wide_out.chunks_exact(ptw)) {
                    for (d, s) in dst
                        .as_slice_mut()
                        .ok_or_else(|| crate::gemm::internal("forward band", 0))?
                        .chunks_exact_mut(g.ow)
                        .zip(src.chunks_exact(wp))
                    {
                        copy_short(d, &s[..g.ow]);
                    }
                }
            } else {
                let w_g = mat(&wt[grp * g.cog * kk..], kk, g.cog)?.reversed_axes();
                if pointwise_direct {
                    pointwise::forward_tile(w_g, x_g, g, oh0 * g.ow..oh1 * g.ow, out_g)?;
                } else {
                    let ld = col_ld(pt);
                    im2col(x_g, g, oh0, oh1, col, ld, scratch);
                    gemm(T::one(), w_g, mat_ld(col, kk, pt, ld)?, T::zero(), out_g)?;
                }
            }
        }
        if let Some(b) = bias {
            for (mut row, &bv) in band.outer_iter_mut().zip(b) {
                row.mapv_inplace(|v| v + bv);
            }
        }
        Ok(())
    };
    let len = g.n * g.c_out * p;
    let image_len = g.c_out * p;
    if g.n < IMAGE_UNITS_MIN || image_len == 0 {
        // One task per (image, band), each owning its own block of the
        // zeroed output: parallel work for small batches.
        let mut out = super::zeros("conv2d", len)?;
        let mut out3 = ArrayViewMut3::from_shape((g.n, g.c_out, p), &mut out[..])
            .map_err(|_| crate::gemm::internal("forward output", len))?;
        let mut units = Vec::new();
        for (n, image) in out3.axis_iter_mut(Axis(0)).enumerate() {
            let mut rest = image;
            for (oh0, oh1) in bands(g) {
                let (band, tail) = rest.split_at(Axis(1), (oh1 - oh0) * g.ow);
                units.push((n, oh0, oh1, band));
                rest = tail;
            }
        }
        units
            .into_par_iter()
            .try_for_each_init(scratch, |state, unit| band_unit(state, unit))?;
        return Ok(out);
    }
    // One task per image, which zeroes its own output just before its bands
    // are written: the output is written while it is in the cache, instead
    // of a zeroing pass over the whole batch first (a pass through memory).
    let mut out = super::reserved("conv2d", len)?;
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(image_len)
        .enumerate()
        .try_for_each_init(scratch, |state, (n, image)| -> Result<()> {
            let image = super::zero_filled(image);
            let mut rest = ArrayViewMut2::from_shape((g.c_out, p), image)
                .map_err(|_| crate::gemm::internal("forward image", image_len))?;
            for (oh0, oh1) in bands(g) {
                let (band, tail) = rest.split_at(Axis(1), (oh1 - oh0) * g.ow);
                band_unit(state, (n, oh0, oh1, band))?;
                rest = tail;
            }
            Ok(())
        })?;
    // SAFETY: the chunks cover `..len` and each was filled by `zero_filled`
    // before anything else (an error returns above, before this).
    unsafe { out.set_len(len) };
    Ok(out)
}

/// Batches from this many images take one task per image (see
/// [`forward`]); smaller ones one per band, for parallel work.
const IMAGE_UNITS_MIN: usize = 8;

/// The per-thread buffers of [`forward`]'s tasks: im2col columns, the
/// packed band, the wide or channel-kernel output, and offsets.
type Scratch<T> = (Vec<T>, Vec<T>, Vec<T>, Vec<usize>, Vec<usize>);
