//! Depthwise convolution (`groups == C_in`, `C_out = multiplier * C_in`):
//! direct loops over the kernel window, no GEMM (there is no channel
//! reduction to feed one).
//!
//! One rayon task handles a run of `(image, input channel)` planes. A plane is
//! first copied into a zero-bordered scratch buffer, so the loops over the
//! window need no bounds tests.
//!
//! With stride 1 the padded plane is treated as one flat array: output pixel
//! `(oh, ow)` sits at flat position `t = oh*Wp + ow` of a "wide" output with
//! `Wp` (padded width) columns, and every kernel tap `(i, j)` reads the input
//! at `t + i*dH*Wp + j*dW`. The convolution becomes a 1-D correlation with
//! `kH*kW` fixed offsets over a long array, computed a block of outputs at a
//! time (see [`block`]) in a fixed-size accumulator the compiler keeps in
//! vector registers;
//! the `Wp - W_out` wide columns that are not outputs are dropped. The input
//! gradient is the same correlation on the (zero-extended) output gradient
//! with the offsets mirrored, and each weight gradient a dot product of two
//! flat arrays. Other strides run plain loops per output row.
//!
//! The weight and bias gradients are written per plane and then summed over
//! the batch in image order, so the result does not depend on the number of
//! threads.

use gradlab_tensor::Element;
use rayon::prelude::*;

use super::simd::{as_f32, as_f32_mut, isa_builds, madd, Isa};
use super::RawGrads;
use crate::error::Result;
use crate::im2col::copy_short;
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

/// Outputs computed together by the flat (stride 1) kernels for vectors of
/// `vb` bytes: as many as the vector has bytes, so 4 (f32) or 8 (f64)
/// vectors of accumulators in every build.
const fn block_of(vb: usize) -> usize {
    vb
}

/// Outputs computed together by [`flat_corr`] in the build `isa`.
fn block(isa: Isa) -> usize {
    block_of(isa.vector_bytes())
}

isa_builds! {
    /// `out[t] = init[t] + sum_k wk[k] * src[t + offs[k]]` for every `t` of
    /// `out` (whose length is a multiple of [`block`]), where `init` is
    /// `bias`, or `out`'s previous value when `accumulate`. Taps are added in
    /// order, so the result does not depend on the block size. Runs the build
    /// `isa`.
    fn flat_corr<T: Element>(
        src: &[T],
        offs: &[usize],
        wk: &[T],
        bias: T,
        accumulate: bool,
        out: &mut [T],
    ) [FMA, VB] {
        flat_corr_impl::<T, FMA, { block_of(VB) }>(src, offs, wk, bias, accumulate, out);
    }
}

#[inline(always)]
fn flat_corr_impl<T: Element, const FMA: bool, const BLOCK: usize>(
    src: &[T],
    offs: &[usize],
    wk: &[T],
    bias: T,
    accumulate: bool,
    out: &mut [T],
) {
    for (b, out_b) in out.chunks_exact_mut(BLOCK).enumerate() {
        let t0 = b * BLOCK;
        let mut acc = [bias; BLOCK];
        if accumulate {
            acc.copy_from_slice(out_b);
        }
        for (&off, &wv) in offs.iter().zip(wk) {
            let s: &[T; BLOCK] = src[t0 + off..t0 + off + BLOCK]
                .try_into()
                .expect("a block of BLOCK elements");
            for l in 0..BLOCK {
                acc[l] = madd::<T, FMA>(acc[l], wv, s[l]);
            }
        }
        out_b.copy_from_slice(&acc);
    }
}

/// Taps whose weight gradients one pass of [`flat_dots`] computes.
const DOT_TAPS: usize = 3;

/// Elements per iteration of [`flat_dots`] for vectors of `vb` bytes: half
/// as many as the vector has bytes (two 256-bit or 512-bit vectors of f32
/// per tap).
const fn dot_width_of(vb: usize) -> usize {
    vb / 2
}

/// [`flat_dots_portable`] in the build `isa`; f32 in the AVX-512 build runs
/// [`flat_dots_f32_avx512`], the same sums in the same order.
fn flat_dots<T: Element>(isa: Isa, a: &[T], b: &[T], len: usize, offs: &[usize], out: &mut [T]) {
    if isa == Isa::Avx512 {
        if let (Some(a), Some(b)) = (as_f32(a), as_f32(b)) {
            if let Some(out) = as_f32_mut(out) {
                return flat_dots_f32_avx512(a, b, len, offs, out);
            }
        }
    }
    flat_dots_portable(isa, a, b, len, offs, out)
}

/// [`flat_dots`] of f32 in the AVX-512 build, written with intrinsics: the
/// portable form compiled to scalar code there (its 32 lanes per tap were
/// not kept in vector registers), 57% of the depthwise forward+backward of
/// 256 channels on 8x8 images.
///
/// # Panics
/// When `a` or `b` is shorter than `len` (and `len + max(offs)`), `len` is
/// not a multiple of 32, `out` is shorter than `offs`, or the CPU cannot
/// run AVX-512.
fn flat_dots_f32_avx512(a: &[f32], b: &[f32], len: usize, offs: &[usize], out: &mut [f32]) {
    assert!(Isa::Avx512.is_supported(), "this kernel needs AVX-512");
    assert!(len.is_multiple_of(32) && a.len() >= len && out.len() >= offs.len());
    assert!(b.len() >= offs.iter().max().map_or(0, |&o| o + len));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512 is supported and the asserts bound every read.
    unsafe {
        avx512_f32::flat_dots(a, b, len, offs, out)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512_f32 {
    use std::arch::x86_64::*;

    use super::DOT_TAPS;

    /// # Safety
    /// The CPU runs AVX-512F and `flat_dots_f32_avx512`'s asserts hold: `a`
    /// is read below `len`, `b` below `offs[k] + len`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn flat_dots(
        a: &[f32],
        b: &[f32],
        len: usize,
        offs: &[usize],
        out: &mut [f32],
    ) {
        for (group, out_g) in offs.chunks(DOT_TAPS).zip(out.chunks_mut(DOT_TAPS)) {
            // Pad a short last group with its last tap; the extra sums are dropped.
            let o: [usize; DOT_TAPS] = std::array::from_fn(|k| group[k.min(group.len() - 1)]);
            let mut acc = [[_mm512_setzero_ps(); 2]; DOT_TAPS];
            for t in (0..len).step_by(32) {
                // SAFETY: `t + 32 <= len`, see the function's.
                unsafe {
                    let x = [
                        _mm512_loadu_ps(a.as_ptr().add(t)),
                        _mm512_loadu_ps(a.as_ptr().add(t + 16)),
                    ];
                    for (acc_k, &off) in acc.iter_mut().zip(&o) {
                        let y = b.as_ptr().add(off + t);
                        acc_k[0] = _mm512_fmadd_ps(x[0], _mm512_loadu_ps(y), acc_k[0]);
                        acc_k[1] = _mm512_fmadd_ps(x[1], _mm512_loadu_ps(y.add(16)), acc_k[1]);
                    }
                }
            }
            for (dst, acc_k) in out_g.iter_mut().zip(&acc) {
                let mut lanes = [0.0f32; 32];
                // SAFETY: `lanes` holds 32 floats.
                unsafe {
                    _mm512_storeu_ps(lanes.as_mut_ptr(), acc_k[0]);
                    _mm512_storeu_ps(lanes.as_mut_ptr().add(16), acc_k[1]);
                }
                *dst = super::super::lane_sum(0.0, &lanes);
            }
        }
    }
}

isa_builds! {
    /// `out[k] = sum_t a[t] * b[t + offs[k]]` for `t < len` (`len` a
    /// multiple of the build's dot width, see [`Flat`]), [`DOT_TAPS`] taps
    /// per pass over `a` so the partial sums of several taps advance
    /// together; partial sums are added in a fixed order. Runs the build
    /// `isa`.
    fn flat_dots_portable<T: Element>(a: &[T], b: &[T], len: usize, offs: &[usize], out: &mut [T])
    [FMA, VB] {
        flat_dots_impl::<T, FMA, { dot_width_of(VB) }>(a, b, len, offs, out);
    }
}

#[inline(always)]
fn flat_dots_impl<T: Element, const FMA: bool, const DOT_WIDTH: usize>(
    a: &[T],
    b: &[T],
    len: usize,
    offs: &[usize],
    out: &mut [T],
) {
    let a = &a[..len];
    for (group, out_g) in offs.chunks(DOT_TAPS).zip(out.chunks_mut(DOT_TAPS)) {
        // Pad a short last group with its last tap; the extra sums are dropped.
        let mut o = [0usize; DOT_TAPS];
        for (d, k) in o.iter_mut().zip(0..) {
            *d = group[k.min(group.len() - 1)];
        }
        let bs: [&[T]; DOT_TAPS] = o.map(|off| &b[off..off + len]);
        let mut acc = [[T::zero(); DOT_WIDTH]; DOT_TAPS];
        for (c, x) in a.chunks_exact(DOT_WIDTH).enumerate() {
            let x: &[T; DOT_WIDTH] = x.try_into().expect("a chunk of DOT_WIDTH");
            for (acc_k, b_k) in acc.iter_mut().zip(&bs) {
                let y: &[T; DOT_WIDTH] = b_k[c * DOT_WIDTH..(c + 1) * DOT_WIDTH]
                    .try_into()
                    .expect("a chunk of DOT_WIDTH");
                for l in 0..DOT_WIDTH {
                    acc_k[l] = madd::<T, FMA>(acc_k[l], x[l], y[l]);
                }
            }
        }
        for (dst, acc_k) in out_g.iter_mut().zip(&acc) {
            *dst = super::lane_sum(T::zero(), acc_k);
        }
    }
}

/// Flat geometry of the stride-1 kernels for one plane.
struct Flat {
    /// Padded width.
    wp: usize,
    /// Flat offset of each tap `(i, j)`: `i*dH*Wp + j*dW`.
    offs: Vec<usize>,
    /// Wide output length `H_out * Wp` rounded up to the [`block`].
    out_len: usize,
    /// Length of the padded-plane buffer, with room for the last block.
    pad_len: usize,
    /// Input-gradient offsets: `pH*Wp + E - offs[k]`, `E` the largest offset.
    back_offs: Vec<usize>,
    /// Wide input-gradient length `H * Wp` rounded up to the [`block`].
    in_len: usize,
    /// Length of the weight-gradient dot products: `H_out * Wp` rounded up
    /// to the build's dot width (the wide output gradient is zero past its
    /// end).
    dot_len: usize,
    /// Where the wide output gradient starts in its zero-extended buffer (`E`).
    ext_start: usize,
    /// Length of that buffer.
    ext_len: usize,
}

impl Flat {
    fn new(g: &Geometry, isa: Isa) -> Self {
        let (hp, wp) = padded_dims(g);
        let block = block(isa);
        let dot_width = dot_width_of(isa.vector_bytes());
        let offs: Vec<usize> = (0..g.k[0])
            .flat_map(|i| (0..g.k[1]).map(move |j| i * g.d[0] * wp + j * g.d[1]))
            .collect();
        let e = offs.last().copied().unwrap_or(0);
        let out_len = (g.oh * wp).div_ceil(block) * block;
        let in_len = (g.h * wp).div_ceil(block) * block;
        let back_offs = offs.iter().map(|&o| g.p[0] * wp + e - o).collect();
        Flat {
            wp,
            pad_len: (hp * wp).max(out_len + e) + block,
            out_len,
            back_offs,
            in_len,
            dot_len: (g.oh * wp).div_ceil(dot_width) * dot_width,
            ext_start: e,
            ext_len: in_len + g.p[0] * wp + 2 * e + hp * wp + block,
            offs,
        }
    }
}

/// Copies `rows` rows of `width` elements from `src` (row `r` at
/// `src_off + r*src_stride`) to `dst` (row `r` at `dst_off + r*dst_stride`),
/// with index arithmetic only (no divisions, no calls per row).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn copy_rows<T: Copy>(
    dst: &mut [T],
    dst_off: usize,
    dst_stride: usize,
    src: &[T],
    src_off: usize,
    src_stride: usize,
    rows: usize,
    width: usize,
) {
    for r in 0..rows {
        let d = dst_off + r * dst_stride;
        let s = src_off + r * src_stride;
        copy_short(&mut dst[d..d + width], &src[s..s + width]);
    }
}

/// Copies `plane` (`H x W`) into the interior of `pad`; the border of `pad`
/// is zero from its allocation and never written.
#[inline]
fn fill_interior<T: Element>(plane: &[T], g: &Geometry, wp: usize, pad: &mut [T]) {
    if g.w == 0 {
        return;
    }
    copy_rows(pad, g.p[0] * wp + g.p[1], wp, plane, 0, g.w, g.h, g.w);
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
    isa: Isa,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    g: &Geometry,
) -> Result<Vec<T>> {
    let (hw, op, kk, m) = (g.in_plane(), g.out_plane(), g.k[0] * g.k[1], g.cog);
    let (hp, wp) = padded_dims(g);
    let mut out = super::zeros("conv2d", g.n * g.c_out * op)?;
    if g.s == [1, 1] {
        let f = Flat::new(g, isa);
        out.par_chunks_mut(m * op)
            .enumerate()
            .with_min_len(min_planes(g))
            .for_each_init(
                || (vec![T::zero(); f.pad_len], vec![T::zero(); f.out_len]),
                |(pad, wide), (idx, out_c)| {
                    let c = idx % g.c_in;
                    fill_interior(&x[idx * hw..(idx + 1) * hw], g, f.wp, pad);
                    for q in 0..m {
                        let co = c * m + q;
                        let b = bias.map_or(T::zero(), |b| b[co]);
                        flat_corr(
                            isa,
                            pad,
                            &f.offs,
                            &w[co * kk..(co + 1) * kk],
                            b,
                            false,
                            wide,
                        );
                        copy_rows(out_c, q * op, g.ow, wide, 0, f.wp, g.oh, g.ow);
                    }
                },
            );
        return Ok(out);
    }
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
        db[q] = super::lane_sum(T::zero(), dy_q);
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
    isa: Isa,
    x: &[T],
    w: &[T],
    dy: &[T],
    g: &Geometry,
) -> Result<RawGrads<T>> {
    let (hw, op, kk, m) = (g.in_plane(), g.out_plane(), g.k[0] * g.k[1], g.cog);
    let (hp, wp) = padded_dims(g);
    let planes = g.n * g.c_in;
    let mut dx = super::zeros("conv2d_backward", planes * hw)?;
    let mut dw_part = vec![T::zero(); planes * m * kk];
    let mut db_part = vec![T::zero(); planes * m];
    // (An empty input plane has no input gradient; keep the chunk size positive.)
    let mut dx_chunks: Vec<&mut [T]> = if hw == 0 {
        (0..planes).map(|_| <&mut [T]>::default()).collect()
    } else {
        dx.chunks_mut(hw).collect()
    };
    if g.s == [1, 1] {
        let f = Flat::new(g, isa);
        dx_chunks
            .par_iter_mut()
            .zip(dw_part.par_chunks_mut(m * kk))
            .zip(db_part.par_chunks_mut(m))
            .enumerate()
            .with_min_len(min_planes(g))
            .for_each_init(
                || {
                    (
                        vec![T::zero(); f.pad_len],
                        vec![T::zero(); f.ext_len],
                        vec![T::zero(); f.in_len],
                    )
                },
                |(pad, ext, wide), (idx, ((dx_c, dw_c), db_c))| {
                    let c = idx % g.c_in;
                    fill_interior(&x[idx * hw..(idx + 1) * hw], g, f.wp, pad);
                    for q in 0..m {
                        let co = c * m + q;
                        let dy_q = &dy[(idx * m + q) * op..(idx * m + q + 1) * op];
                        db_c[q] = super::lane_sum(T::zero(), dy_q);
                        // The output gradient laid out wide (zeros in the
                        // columns that are not outputs), after E zeros.
                        copy_rows(ext, f.ext_start, f.wp, dy_q, 0, g.ow, g.oh, g.ow);
                        flat_dots(
                            isa,
                            &ext[f.ext_start..],
                            pad,
                            f.dot_len,
                            &f.offs,
                            &mut dw_c[q * kk..(q + 1) * kk],
                        );
                        flat_corr(
                            isa,
                            ext,
                            &f.back_offs,
                            &w[co * kk..(co + 1) * kk],
                            T::zero(),
                            q > 0,
                            wide,
                        );
                    }
                    copy_rows(dx_c, 0, g.w, wide, g.p[1], f.wp, g.h, g.w);
                },
            );
    } else {
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
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The intrinsics form of the AVX-512 build gives the bits of the
    /// portable one, with a short last group of taps.
    #[test]
    fn flat_dots_intrinsics_give_the_bits_of_the_portable_kernel() {
        if !Isa::Avx512.is_supported() {
            eprintln!("note: this CPU cannot run the AVX-512 build; not tested");
            return;
        }
        let len = 96;
        let offs = [0usize, 1, 2, 10, 11, 12, 20, 21, 22, 7, 3];
        let a: Vec<f32> = (0..len)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..len + 22)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0)
            .collect();
        let mut portable = vec![f32::NAN; offs.len()];
        let mut intrinsics = vec![f32::NAN; offs.len()];
        flat_dots_impl::<f32, true, 32>(&a, &b, len, &offs, &mut portable);
        flat_dots_f32_avx512(&a, &b, len, &offs, &mut intrinsics);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&intrinsics), bits(&portable));
        let want: f64 = (0..len).map(|t| a[t] as f64 * b[t + 21] as f64).sum();
        assert!((intrinsics[7] as f64 - want).abs() < 1e-4);
    }
}
