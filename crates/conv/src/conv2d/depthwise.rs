//! Depthwise convolution (`groups == C_in`, `C_out = multiplier * C_in`):
//! direct loops over the kernel window, no GEMM (there is no channel
//! reduction to feed one).
//!
//! One rayon task handles a run of `(image, input channel)` planes. A plane is
//! first copied into a zero-bordered scratch buffer, so the loops over the
//! window need no bounds tests; with stride 1 the innermost loop runs over
//! [`LANES`] adjacent output columns held in a fixed-size accumulator, which
//! the compiler keeps in vector registers. The weight and bias gradients are
//! written per plane and then summed over the batch in image order, so the
//! result does not depend on the number of threads.

use gradlab_tensor::Element;
use rayon::prelude::*;

use super::RawGrads;
use crate::error::Result;
use crate::spec::Geometry;

/// Output columns computed together in the vectorised loops.
const LANES: usize = 8;

/// Multiply-accumulates a task should at least hold, so rayon's overhead
/// stays small for small planes.
const MIN_TASK_MACS: usize = 1 << 14;

/// Planes per rayon task.
fn min_planes(g: &Geometry) -> usize {
    let per_plane = g.cog * g.out_plane() * g.k[0] * g.k[1];
    (MIN_TASK_MACS / per_plane.max(1)).max(1)
}

/// Size of the zero-bordered plane, `(H + 2pH) x (W + 2pW)`.
fn padded_dims(g: &Geometry) -> (usize, usize) {
    (g.h + 2 * g.p[0], g.w + 2 * g.p[1])
}

/// Copies `plane` (`H x W`) into the interior of `pad`; the border of `pad`
/// is zero from its allocation and never written.
#[inline]
fn fill_interior<T: Element>(plane: &[T], g: &Geometry, wp: usize, pad: &mut [T]) {
    if g.w == 0 {
        return;
    }
    for (r, src) in plane.chunks_exact(g.w).enumerate() {
        let start = (r + g.p[0]) * wp + g.p[1];
        pad[start..start + g.w].copy_from_slice(src);
    }
}

/// One output plane: `out[oh, ow] = b + sum_{i, j} wk[i, j] * pad[oh*sH + i*dH, ow*sW + j*dW]`.
#[inline]
fn plane_forward<T: Element>(pad: &[T], wp: usize, wk: &[T], b: T, g: &Geometry, out: &mut [T]) {
    let [kh, kw] = g.k;
    let [sh, sw] = g.s;
    let [dh, dw] = g.d;
    let own = g.ow;
    for (oh, out_row) in out.chunks_exact_mut(own).enumerate() {
        let mut ow0 = 0;
        if sw == 1 {
            while ow0 + LANES <= own {
                let mut acc = [b; LANES];
                for i in 0..kh {
                    let row = &pad[(oh * sh + i * dh) * wp + ow0..];
                    for j in 0..kw {
                        let wv = wk[i * kw + j];
                        let src = &row[j * dw..j * dw + LANES];
                        for l in 0..LANES {
                            acc[l] = acc[l] + wv * src[l];
                        }
                    }
                }
                out_row[ow0..ow0 + LANES].copy_from_slice(&acc);
                ow0 += LANES;
            }
        }
        for (ow, o) in out_row.iter_mut().enumerate().skip(ow0) {
            let mut acc = b;
            for i in 0..kh {
                let row = &pad[(oh * sh + i * dh) * wp + ow * sw..];
                for j in 0..kw {
                    acc = acc + wk[i * kw + j] * row[j * dw];
                }
            }
            *o = acc;
        }
    }
}

pub(super) fn forward<T: Element>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    g: &Geometry,
) -> Result<Vec<T>> {
    let (hw, op, kk, m) = (g.in_plane(), g.out_plane(), g.k[0] * g.k[1], g.cog);
    let (hp, wp) = padded_dims(g);
    let mut out = vec![T::zero(); g.n * g.c_out * op];
    out.par_chunks_mut(m * op)
        .enumerate()
        .with_min_len(min_planes(g))
        .for_each_init(
            || vec![T::zero(); hp * wp],
            |pad, (idx, out_c)| {
                let c = idx % g.c_in;
                fill_interior(&x[idx * hw..(idx + 1) * hw], g, wp, pad);
                for (q, out_q) in out_c.chunks_exact_mut(op).enumerate() {
                    let co = c * m + q;
                    let b = bias.map_or(T::zero(), |b| b[co]);
                    plane_forward(pad, wp, &w[co * kk..(co + 1) * kk], b, g, out_q);
                }
            },
        );
    Ok(out)
}

/// `sum_l a[l] * b[l*step]` with [`LANES`] partial sums (vectorisable when
/// `step == 1`), added in a fixed order.
#[inline]
fn dot<T: Element>(a: &[T], b: &[T], step: usize, acc: &mut [T; LANES], tail: &mut T) {
    if step == 1 {
        let b = &b[..a.len()];
        let mut ca = a.chunks_exact(LANES);
        let mut cb = b.chunks_exact(LANES);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for l in 0..LANES {
                acc[l] = acc[l] + x[l] * y[l];
            }
        }
        for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
            *tail = *tail + *x * *y;
        }
    } else {
        for (x, y) in a.iter().zip(b.iter().step_by(step)) {
            *tail = *tail + *x * *y;
        }
    }
}

/// Gradients of one `(image, input channel)` plane: the input gradient
/// `dx` (`H x W`), and for each of the `m` output channels of this input
/// channel the weight gradient `dw[q]` (`kH*kW`) and bias gradient `db[q]`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn plane_backward<T: Element>(
    padx: &[T],
    padg: &mut [T],
    wp: usize,
    wk: &[T],
    dy: &[T],
    g: &Geometry,
    dx: &mut [T],
    dw: &mut [T],
    db: &mut [T],
) {
    let [kh, kw] = g.k;
    let [sh, sw] = g.s;
    let [dh, dwd] = g.d;
    let (own, op, kk) = (g.ow, g.out_plane(), kh * kw);
    padg.fill(T::zero());
    for q in 0..g.cog {
        let dy_q = &dy[q * op..(q + 1) * op];
        let wk_q = &wk[q * kk..(q + 1) * kk];
        db[q] = dy_q.iter().fold(T::zero(), |a, &v| a + v);
        // Weight gradient: correlation of the padded input with dy.
        for i in 0..kh {
            for j in 0..kw {
                let mut acc = [T::zero(); LANES];
                let mut tail = T::zero();
                for (oh, dy_row) in dy_q.chunks_exact(own).enumerate() {
                    let start = (oh * sh + i * dh) * wp + j * dwd;
                    dot(dy_row, &padx[start..], sw, &mut acc, &mut tail);
                }
                dw[q * kk + i * kw + j] = acc.iter().fold(tail, |a, &v| a + v);
            }
        }
        // Input gradient: scatter w * dy back onto the padded plane.
        for (oh, dy_row) in dy_q.chunks_exact(own).enumerate() {
            for i in 0..kh {
                for j in 0..kw {
                    let wv = wk_q[i * kw + j];
                    let start = (oh * sh + i * dh) * wp + j * dwd;
                    if sw == 1 {
                        for (p, &d) in padg[start..start + own].iter_mut().zip(dy_row) {
                            *p = *p + wv * d;
                        }
                    } else {
                        for (p, &d) in padg[start..].iter_mut().step_by(sw).zip(dy_row) {
                            *p = *p + wv * d;
                        }
                    }
                }
            }
        }
    }
    if g.w > 0 {
        for (r, dst) in dx.chunks_exact_mut(g.w).enumerate() {
            let start = (r + g.p[0]) * wp + g.p[1];
            dst.copy_from_slice(&padg[start..start + g.w]);
        }
    }
}

pub(super) fn backward<T: Element>(
    x: &[T],
    w: &[T],
    dy: &[T],
    g: &Geometry,
) -> Result<RawGrads<T>> {
    let (hw, op, kk, m) = (g.in_plane(), g.out_plane(), g.k[0] * g.k[1], g.cog);
    let (hp, wp) = padded_dims(g);
    let planes = g.n * g.c_in;
    let mut dx = vec![T::zero(); planes * hw];
    let mut dw_part = vec![T::zero(); planes * m * kk];
    let mut db_part = vec![T::zero(); planes * m];
    // (An empty input plane has no input gradient; keep the chunk size positive.)
    let mut dx_chunks: Vec<&mut [T]> = if hw == 0 {
        (0..planes).map(|_| <&mut [T]>::default()).collect()
    } else {
        dx.chunks_mut(hw).collect()
    };
    dx_chunks
        .par_iter_mut()
        .zip(dw_part.par_chunks_mut(m * kk))
        .zip(db_part.par_chunks_mut(m))
        .enumerate()
        .with_min_len(min_planes(g))
        .for_each_init(
            || (vec![T::zero(); hp * wp], vec![T::zero(); hp * wp]),
            |(padx, padg), (idx, ((dx_c, dw_c), db_c))| {
                let c = idx % g.c_in;
                fill_interior(&x[idx * hw..(idx + 1) * hw], g, wp, padx);
                plane_backward(
                    padx,
                    padg,
                    wp,
                    &w[c * m * kk..(c + 1) * m * kk],
                    &dy[idx * m * op..(idx + 1) * m * op],
                    g,
                    dx_c,
                    dw_c,
                    db_c,
                );
            },
        );
    // Sum the per-image gradients in image order.
    let mut dwt = vec![T::zero(); g.c_out * kk];
    let mut dbt = vec![T::zero(); g.c_out];
    for n in 0..g.n {
        let part = &dw_part[n * g.c_out * kk..(n + 1) * g.c_out * kk];
        for (a, &b) in dwt.iter_mut().zip(part) {
            *a = *a + b;
        }
        for (a, &b) in dbt.iter_mut().zip(&db_part[n * g.c_out..(n + 1) * g.c_out]) {
            *a = *a + b;
        }
    }
    Ok(RawGrads {
        input: dx,
        weight: dwt,
        bias: dbt,
    })
}
