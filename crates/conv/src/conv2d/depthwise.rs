//! Depthwise convolution (`groups == C_in`, `C_out = multiplier * C_in`):
//! direct loops over the kernel window, no GEMM (there is no channel
//! reduction to feed one).
//!
//! One rayon task handles a run of `(image, input channel)` planes. A plane is
//! first copied into a zero-bordered scratch buffer, so the loops over the
//! window need no bounds tests; with strides, split into phase planes (see
//! [`Flat`]), in which every tap is a unit-stride run again.
//!
//! The buffer is treated as one flat array: output pixel `(oh, ow)` sits at
//! flat position `t = oh*wq + ow` of a "wide" output with `wq` columns (the
//! padded width with stride 1), and every kernel tap `k` reads the input at
//! `t + offs[k]`. The convolution becomes a 1-D correlation with `kH*kW`
//! fixed offsets over a long array, computed a block of outputs at a time
//! (see [`block`]) in a fixed-size accumulator the compiler keeps in vector
//! registers; the `wq - W_out` wide columns that are not outputs are
//! dropped. The input gradient is the same correlation on the
//! (zero-extended) output gradient with the offsets mirrored, giving the
//! gradient of the buffer, whose real pixels are then gathered; each weight
//! gradient is a dot product of two flat arrays. Strided planes used to run
//! plain loops per output row, scalar code: on the conv bench
//! (`conv_depthwise_stride2`, batch 64, one run) the phase planes took the
//! MobileNet's stride-2 layers' forward+backward from 15.6 to 4.2 ms (64
//! channels, 32x32), 7.7 to 3.2 ms (128, 16x16) and 4.6 to 3.1 ms (256,
//! 8x8), with the split into column phases written as a de-interleave the
//! compiler vectorises (one pixel at a time, it took most of the forward).
//!
//! The weight and bias gradients are written per plane and then summed over
//! the batch in image order, so the result does not depend on the number of
//! threads.

use std::mem::MaybeUninit;

use gradlab_tensor::Element;
use rayon::prelude::*;

use super::depthwise_masked::Masked;
use super::simd::{as_f32, as_f32_mut, isa_builds, madd, Isa};
use super::RawGrads;
use crate::error::Result;
use crate::im2col::{copy_short, merge_columns, split_columns, two_runs_mut};
use crate::spec::Geometry;

/// Multiply-accumulates a task should at least hold, so rayon's overhead
/// stays small for small planes.
const MIN_TASK_MACS: usize = 1 << 14;

/// Planes per rayon task.
fn min_planes(g: &Geometry) -> usize {
    let per_plane = g.cog * g.out_plane() * g.k[0] * g.k[1];
    (MIN_TASK_MACS / per_plane.max(1)).max(1)
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

/// Flat geometry of the kernels for one plane: the zero-padded plane
/// (`Hp x Wp`) split into `sH*sW` phase planes, phase `(a, b)` holding the
/// padded pixels `(r*sH + a, c*sW + b)` in rows of `wq = ceil(Wp / sW)`
/// (with stride 1, the padded plane itself). In them, output pixel `(oh,
/// ow)` of tap `(i, j)` reads row `oh + (i*dH)/sH`, column `ow + (j*dW)/sW`
/// of phase `((i*dH)%sH, (j*dW)%sW)`: every tap is the same unit-stride run
/// for every output, at flat offset `offs[k]` from wide output position `t =
/// oh*wq + ow`, whatever the stride.
struct Flat {
    /// Phase-plane width, the row length of the wide output.
    wq: usize,
    /// Elements per phase plane, `ceil(Hp / sH) * wq`.
    plane_len: usize,
    /// Flat offset of each tap `(i, j)`.
    offs: Vec<usize>,
    /// Wide output length `H_out * wq` rounded up to the [`block`].
    out_len: usize,
    /// Length of the phase-plane buffer, with room for the last block.
    pad_len: usize,
    /// Input-gradient offsets: `E - offs[k]`, `E` the largest offset.
    back_offs: Vec<usize>,
    /// Length of the gradient of the phase planes (all of them), rounded up
    /// to the [`block`].
    in_len: usize,
    /// Length of the weight-gradient dot products: `H_out * wq` rounded up
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
        let (hp, wp) = (g.h + 2 * g.p[0], g.w + 2 * g.p[1]);
        let [sh, sw] = g.s;
        let wq = wp.div_ceil(sw);
        let plane_len = hp.div_ceil(sh) * wq;
        let block = block(isa);
        let dot_width = dot_width_of(isa.vector_bytes());
        let offs: Vec<usize> = (0..g.k[0])
            .flat_map(|i| (0..g.k[1]).map(move |j| (i * g.d[0], j * g.d[1])))
            .map(|(r, c)| ((r % sh) * sw + c % sw) * plane_len + (r / sh) * wq + c / sw)
            .collect();
        let e = offs.iter().copied().max().unwrap_or(0);
        let out_len = (g.oh * wq).div_ceil(block) * block;
        let in_len = (sh * sw * plane_len).div_ceil(block) * block;
        let dot_len = (g.oh * wq).div_ceil(dot_width) * dot_width;
        Flat {
            wq,
            plane_len,
            pad_len: (sh * sw * plane_len).max(out_len + e) + block,
            out_len,
            back_offs: offs.iter().map(|&o| e - o).collect(),
            in_len,
            dot_len,
            ext_start: e,
            ext_len: in_len.max(dot_len) + e + block,
            offs,
        }
    }

    /// Position of padded pixel `(r, c)` in the phase planes.
    fn at(&self, g: &Geometry, r: usize, c: usize) -> usize {
        let [sh, sw] = g.s;
        ((r % sh) * sw + c % sw) * self.plane_len + (r / sh) * self.wq + c / sw
    }
}

/// Copies `rows` rows of `width` elements from `src` (row `r` at
/// `src_off + r*src_stride`) to `dst` (row `r` at `dst_off + r*dst_stride`),
/// with index arithmetic only (no divisions, no calls per row).
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

/// Copies `plane` (`H x W`) into its places in the phase planes `buf`; the
/// padding is zero from the allocation and never written.
fn fill_phases<T: Element>(plane: &[T], g: &Geometry, f: &Flat, buf: &mut [T]) {
    if g.s == [1, 1] {
        copy_rows(buf, f.at(g, g.p[0], g.p[1]), f.wq, plane, 0, g.w, g.h, g.w);
    } else if g.s[1] == 2 && g.w > 0 {
        for (ih, src) in plane.chunks_exact(g.w).enumerate() {
            let (even, odd) = column_phases(g, f, ih);
            let (even, odd) = two_runs_mut(buf, (even, g.w.div_ceil(2)), (odd, g.w / 2));
            split_columns(src, even, odd);
        }
    } else {
        for_each_place(g, f, |place, pixel| buf[place] = plane[pixel]);
    }
}

/// Where the even and the odd columns of input row `ih` start in the phase
/// planes, for a column stride of 2: `iw = 2k` is padded column `2k + pW`,
/// `iw = 2k + 1` is `2k + 1 + pW`, each in the phase of its parity.
fn column_phases(g: &Geometry, f: &Flat, ih: usize) -> (usize, usize) {
    let r = ih + g.p[0];
    (f.at(g, r, g.p[1]), f.at(g, r, g.p[1] + 1))
}

/// The inverse of [`fill_phases`]: the pixels of `plane` from their places
/// in `buf`.
fn gather_phases<T: Element>(buf: &[T], g: &Geometry, f: &Flat, plane: &mut [T]) {
    if g.s == [1, 1] {
        copy_rows(plane, 0, g.w, buf, f.at(g, g.p[0], g.p[1]), f.wq, g.h, g.w);
    } else if g.s[1] == 2 && g.w > 0 {
        for (ih, dst) in plane.chunks_exact_mut(g.w).enumerate() {
            let (even, odd) = column_phases(g, f, ih);
            merge_columns(
                &buf[even..even + g.w.div_ceil(2)],
                &buf[odd..odd + g.w / 2],
                dst,
            );
        }
    } else {
        for_each_place(g, f, |place, pixel| plane[pixel] = buf[place]);
    }
}

/// Calls `visit(place, pixel)` for every input pixel (`pixel = ih*W + iw`)
/// and its place in the phase planes ([`Flat::at`]), row after row, the
/// column phase and column advanced by counting rather than dividing.
#[inline(always)]
fn for_each_place(g: &Geometry, f: &Flat, mut visit: impl FnMut(usize, usize)) {
    let sw = g.s[1];
    for ih in 0..g.h {
        let row = f.at(g, ih + g.p[0], 0);
        let (mut phase, mut col) = (g.p[1] % sw, g.p[1] / sw);
        for iw in 0..g.w {
            visit(row + phase * f.plane_len + col, ih * g.w + iw);
            phase += 1;
            if phase == sw {
                phase = 0;
                col += 1;
            }
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
    forward_on(isa, Masked::new::<T>(isa, g), x, w, bias, g)
}

/// [`forward`] on the masked kernel when `masked`, else on the flat one.
fn forward_on<T: Element>(
    isa: Isa,
    masked: Option<Masked>,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    g: &Geometry,
) -> Result<Vec<T>> {
    let (hw, op, kk, m) = (g.in_plane(), g.out_plane(), g.k[0] * g.k[1], g.cog);
    let len = g.n * g.c_out * op;
    let mut out = super::reserved("conv2d", len)?;
    let f = Flat::new(g, isa);
    // (The masked kernel reads the planes themselves: no buffers.)
    let buffers = if masked.is_some() {
        (0, 0)
    } else {
        (f.pad_len, f.out_len)
    };
    // Each task zeroes its planes just before writing them (in cache).
    out.spare_capacity_mut()[..len]
        .par_chunks_mut((m * op).max(1))
        .enumerate()
        .with_min_len(min_planes(g))
        .for_each_init(
            || (vec![T::zero(); buffers.0], vec![T::zero(); buffers.1]),
            |(pad, wide), (idx, out_c)| {
                let out_c = super::zero_filled(out_c);
                let c = idx % g.c_in;
                let plane = &x[idx * hw..(idx + 1) * hw];
                if let Some(masked) = &masked {
                    for (q, out_q) in out_c.chunks_exact_mut(op.max(1)).enumerate() {
                        let co = c * m + q;
                        let b = bias.map_or(T::zero(), |b| b[co]);
                        masked.forward_plane(plane, &w[co * kk..(co + 1) * kk], b, out_q);
                    }
                    return;
                }
                fill_phases(plane, g, &f, pad);
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
                    copy_rows(out_c, q * op, g.ow, wide, 0, f.wq, g.oh, g.ow);
                }
            },
        );
    // SAFETY: the chunks cover `..len` and each was filled by `zero_filled`.
    unsafe { out.set_len(len) };
    Ok(out)
}

/// The input and weight gradients, and the bias gradient when `bias_grad`
/// (empty otherwise).
pub(super) fn backward<T: Element>(
    isa: Isa,
    x: &[T],
    w: &[T],
    dy: &[T],
    g: &Geometry,
    bias_grad: bool,
) -> Result<RawGrads<T>> {
    backward_on(isa, Masked::new::<T>(isa, g), x, w, dy, g, bias_grad)
}

/// [`backward`] on the masked kernel when `masked`, else on the flat one.
fn backward_on<T: Element>(
    isa: Isa,
    masked: Option<Masked>,
    x: &[T],
    w: &[T],
    dy: &[T],
    g: &Geometry,
    bias_grad: bool,
) -> Result<RawGrads<T>> {
    let (hw, op, kk, m) = (g.in_plane(), g.out_plane(), g.k[0] * g.k[1], g.cog);
    let planes = g.n * g.c_in;
    let mut dx = super::reserved("conv2d_backward", planes * hw)?;
    let mut dw_part = vec![T::zero(); planes * m * kk];
    let mut db_part = vec![T::zero(); planes * m];
    // (An empty input plane has no input gradient; keep the chunk size positive.)
    // Each task zeroes its planes just before writing them (in cache).
    let mut dx_chunks: Vec<&mut [MaybeUninit<T>]> = if hw == 0 {
        (0..planes)
            .map(|_| <&mut [MaybeUninit<T>]>::default())
            .collect()
    } else {
        dx.spare_capacity_mut()[..planes * hw]
            .chunks_mut(hw)
            .collect()
    };
    let f = Flat::new(g, isa);
    // (The masked kernel reads the planes themselves: no buffers.)
    let buffers = if masked.is_some() {
        (0, 0, 0)
    } else {
        (f.pad_len, f.ext_len, f.in_len)
    };
    dx_chunks
        .par_iter_mut()
        .zip(dw_part.par_chunks_mut((m * kk).max(1)))
        .zip(db_part.par_chunks_mut(m.max(1)))
        .enumerate()
        .with_min_len(min_planes(g))
        .for_each_init(
            || {
                (
                    vec![T::zero(); buffers.0],
                    vec![T::zero(); buffers.1],
                    vec![T::zero(); buffers.2],
                )
            },
            |(pad, ext, wide), (idx, ((dx_c, dw_c), db_c))| {
                let dx_c = super::zero_filled(dx_c);
                let c = idx % g.c_in;
                let plane = &x[idx * hw..(idx + 1) * hw];
                // The output-gradient planes of this input plane's channels.
                let dy_c = &dy[idx * m * op..(idx + 1) * m * op];
                if bias_grad {
                    for (db, dy_q) in db_c.iter_mut().zip(dy_c.chunks_exact(op.max(1))) {
                        *db = super::lane_sum(T::zero(), dy_q);
                    }
                }
                if let Some(masked) = &masked {
                    for q in 0..m {
                        let dy_q = &dy_c[q * op..(q + 1) * op];
                        masked.weight_grad_plane(plane, dy_q, &mut dw_c[q * kk..(q + 1) * kk]);
                    }
                    masked.input_grad_plane(dy_c, &w[c * m * kk..(c + 1) * m * kk], dx_c);
                    return;
                }
                fill_phases(plane, g, &f, pad);
                for q in 0..m {
                    let co = c * m + q;
                    let dy_q = &dy_c[q * op..(q + 1) * op];
                    // The output gradient laid out wide (zeros in the
                    // columns that are not outputs), after E zeros.
                    copy_rows(ext, f.ext_start, f.wq, dy_q, 0, g.ow, g.oh, g.ow);
                    flat_dots(
                        isa,
                        &ext[f.ext_start..],
                        pad,
                        f.dot_len,
                        &f.offs,
                        &mut dw_c[q * kk..(q + 1) * kk],
                    );
                    // The gradient of the phase planes: `dy` correlated
                    // with the mirrored offsets.
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
                gather_phases(wide, g, &f, dx_c);
            },
        );
    drop(dx_chunks);
    // SAFETY: the chunks cover `..planes * hw` and each was filled by
    // `zero_filled`.
    unsafe { dx.set_len(planes * hw) };
    // Sum the per-image gradients in image order.
    let mut dwt = vec![T::zero(); g.c_out * kk];
    let mut dbt = vec![T::zero(); if bias_grad { g.c_out } else { 0 }];
    for n in 0..g.n {
        let part = &dw_part[n * g.c_out * kk..(n + 1) * g.c_out * kk];
        for (a, &b) in dwt.iter_mut().zip(part) {
            *a = *a + b;
        }
        // (Zip stops at once without the bias gradient.)
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
    use crate::Conv2dSpec;

    /// On the shapes it takes, the masked kernel gives the flat kernel's
    /// bits for the output and the input gradient (the same fused
    /// multiply-adds in the same order, zeros for the padding) and its
    /// weight gradient up to rounding; a NaN in the input reaches the same
    /// outputs. (The flat kernel's weight gradient also multiplies the
    /// zero gradient of its wide columns by real pixels, so a NaN there
    /// reaches taps that never read it; the masked one does not.)
    #[test]
    fn masked_kernel_gives_the_flat_kernels_bits() {
        if !Isa::Avx512.is_supported() {
            eprintln!("note: this CPU cannot run the AVX-512 build; not tested");
            return;
        }
        let isa = Isa::Avx512;
        // (channels, multiplier, [h, w], kernel, padding, dilation)
        let shapes = [
            (3, 1, [8, 8], [3, 3], [1, 1], [1, 1]),
            (2, 2, [16, 16], [3, 3], [1, 1], [1, 1]),
            (2, 1, [7, 5], [3, 3], [1, 1], [1, 1]),
            (1, 1, [9, 33], [5, 5], [2, 2], [1, 1]),
            (2, 1, [11, 6], [3, 3], [2, 2], [2, 2]),
            (2, 3, [6, 13], [3, 3], [0, 1], [1, 1]),
            (1, 1, [4, 3], [1, 1], [0, 0], [1, 1]),
        ];
        for (c, mult, [h, w], kernel, padding, dilation) in shapes {
            let spec = Conv2dSpec {
                kernel,
                padding,
                dilation,
                groups: c,
                ..Conv2dSpec::new(c, c * mult, 1)
            };
            let n = 2;
            let g = spec
                .geometry("test", [n, c, h, w], spec.weight_shape())
                .expect("valid");
            let at = |i: usize, salt: usize| ((i * 37 + salt) % 29) as f32 / 7.0 - 2.0;
            let x: Vec<f32> = (0..n * c * h * w).map(|i| at(i, 1)).collect();
            let mut x_nan = x.clone();
            x_nan[h * w + 1] = f32::NAN;
            let wt: Vec<f32> = (0..g.c_out * kernel[0] * kernel[1])
                .map(|i| at(i, 5))
                .collect();
            let bias: Vec<f32> = (0..g.c_out).map(|i| at(i, 11)).collect();
            let dy: Vec<f32> = (0..n * g.c_out * g.out_plane()).map(|i| at(i, 3)).collect();
            assert!(
                Masked::new::<f32>(isa, &g).is_some(),
                "a shape the masked kernel takes: {spec:?}"
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let what = format!("{c} ch x{mult}, {h}x{w}, kernel {kernel:?}, padding {padding:?}");
            for x in [&x, &x_nan] {
                let masked = Masked::new::<f32>(isa, &g);
                let fast = forward_on(isa, masked, x, &wt, Some(&bias), &g).expect("fits");
                let flat = forward_on(isa, None, x, &wt, Some(&bias), &g).expect("fits");
                assert_eq!(bits(&fast), bits(&flat), "output, {what}");
            }
            let masked = Masked::new::<f32>(isa, &g);
            let fast = backward_on(isa, masked, &x, &wt, &dy, &g, true).expect("fits");
            let flat = backward_on(isa, None, &x, &wt, &dy, &g, true).expect("fits");
            assert_eq!(
                bits(&fast.input),
                bits(&flat.input),
                "input gradient, {what}"
            );
            assert_eq!(bits(&fast.bias), bits(&flat.bias), "bias gradient, {what}");
            for (a, b) in fast.weight.iter().zip(&flat.weight) {
                let close = (a - b).abs() <= 1e-4 * (1.0 + b.abs()) || (a.is_nan() && b.is_nan());
                assert!(close, "weight gradient {a} vs {b}, {what}");
            }
        }
    }

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
