//! Direct convolution on a zero-padded band of input rows: a GEMM whose
//! right-hand matrix is read straight from the band, without im2col columns
//! or GEMM packing. Stride 1 below; strided specs split the band into phase
//! planes first (`im2col::phase_band`: row phase, column phase), in which
//! every tap is again a unit-stride run of row length `wq = ceil(Wp / s)`,
//! so the same kernels and offsets apply with `wq` for `Wp` (see
//! [`pack_band`]).
//!
//! In the band (channel after channel, rows `Wp = W + 2pW` wide, see
//! `im2col::pad_band`) the input under kernel tap `k = (ci, i, j)` for the
//! wide output pixel `t = row*Wp + col` sits at `t + offs[k]`, with
//! `offs[k] = ci*chan + i*dH*Wp + j*dW`. So
//!
//! `out[c, t] = sum_k wt[k, c] * band[t + offs[k]]`
//!
//! is a matrix product whose `k`-th right-hand row is the contiguous run
//! `band[offs[k]..]`. It is computed in register tiles of [`mr`] output
//! channels by a few vectors of wide pixels (see [`nr`]): per tap, one
//! vector load of the band per vector, [`mr`] broadcasts of the weight and
//! one fused multiply-add per accumulator, the accumulators staying in
//! registers. The AVX2 build (16 registers) takes 4 channels by two vectors:
//! a 4 x 24 tile needs one register more than AVX2 has; it spilled and took
//! 1.8 times as long on layer a of the conv bench. The AVX-512 build (32
//! registers) takes 4 channels by three vectors, 12 accumulators (with 8
//! channels LLVM vectorised across the channels instead, and spilled; 6
//! channels would pad 16- and 32-channel layers by 1/8). Columns `t % Wp >= W_out` straddle two rows and are junk,
//! dropped by the caller; taps are summed in order, so every output is one
//! fixed sequence of operations whatever the threading.

use gradlab_tensor::Element;

use std::cell::Cell;

use super::simd::{as_f32, as_f32_mut, isa_builds, madd, Isa};
use crate::im2col::{pad_band, phase_band};
use crate::spec::Geometry;

/// Output channels per register tile of [`correlate`], for vectors of `vb`
/// bytes.
const fn mr_of(_vb: usize) -> usize {
    4
}

/// Wide pixels per register tile of [`correlate`]: two vectors of `vb`
/// bytes of elements of `elem` bytes, three of 512-bit vectors.
const fn nr_of(vb: usize, elem: usize) -> usize {
    if vb >= 64 {
        3 * vb / elem
    } else {
        2 * vb / elem
    }
}

/// Output channels per register tile of [`correlate`] in the build `isa`
/// (the weight panels are padded to a multiple of it).
pub(crate) fn mr(isa: Isa) -> usize {
    mr_of(isa.vector_bytes())
}

/// Wide pixels per register tile of [`correlate`] in the build `isa`.
pub(crate) fn nr<T>(isa: Isa) -> usize {
    nr_of(isa.vector_bytes(), std::mem::size_of::<T>())
}

thread_local! {
    /// Whether strided specs may take the direct kernel on this thread (see
    /// [`with_strided_direct`]).
    static STRIDED_DIRECT: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` with the direct kernel for strided convolutions on (the
/// default) or off (im2col + GEMM) for the convolutions called on this
/// thread; for the conv bench and the tests, which compare both routes in
/// one process.
#[doc(hidden)]
pub fn with_strided_direct<R>(on: bool, f: impl FnOnce() -> R) -> R {
    super::with_thread_local(&STRIDED_DIRECT, on, f)
}

/// Row length `wq` of the wide output of the direct kernel for the forward
/// pass, when it applies and pays:
/// - stride 1: `Wp = W + 2pW`; the kernel computes `Wp - W_out` junk
///   columns per output row, so it is used while they add at most 1/8 (on
///   the conv bench, 8x8 images with padding 1 ran as fast through it as
///   through im2col + GEMM, larger images faster);
/// - 3x3, stride 2, no dilation (the downsampling layers of ResNets): the
///   length `ceil(Wp / 2)` of a column phase (see `im2col::phase_band`),
///   while junk adds at most 1/16. On the `conv_stride2` bench the forward
///   of 16->32 channels on 32x32 images (16 output columns) ran faster than
///   im2col + GEMM, of 32->64 and 64->128 on 16x16 images (8 columns)
///   slower.
///
/// Reads [`with_strided_direct`], so must be called on the convolution's
/// calling thread.
pub(crate) fn wide_width(g: &Geometry) -> Option<usize> {
    let wp = g.w + 2 * g.p[1];
    if g.ow == 0 {
        None
    } else if g.s == [1, 1] {
        ((wp - g.ow) * 8 <= g.ow).then_some(wp)
    } else if g.s == [2, 2] && g.k == [3, 3] && g.d == [1, 1] && STRIDED_DIRECT.with(Cell::get) {
        let wq = wp.div_ceil(2);
        ((wq - g.ow) * 16 <= g.ow).then_some(wq)
    } else {
        None
    }
}

/// [`wide_width`] for the weight gradient: every stride-1 spec, whatever
/// its junk columns (the weight gradient reads only real pixels); with the
/// tap-major tiles of up to 64 channels the 8x8 images of layer c took 1.73
/// against 2.40 ms through im2col + GEMM (`conv_small` bench, weight
/// gradient, batch 64). Stride 1 only: strided weight gradients by the
/// direct kernel on phase-split bands were slower than im2col + GEMM on the
/// `conv_stride2` bench, forward+backward 14.4 against 11.1 ms on 16->32
/// channels, 32x32 images.
pub(crate) fn grad_wide_width(g: &Geometry) -> Option<usize> {
    (g.s == [1, 1] && g.ow > 0).then_some(g.w + 2 * g.p[1])
}

/// `n` rounded up to a multiple of `m`.
pub(crate) fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// Packs the band of input rows that output rows `oh0..oh1` of one group
/// read (zero-padded; phase-split when strided) into `scratch`, followed by
/// `slack` zeros, and sets `offs[k]` for every tap `k = (ci, i, j)` so that
/// the input of wide output pixel `t = (oh - oh0)*wq + ow` under tap `k`
/// is `scratch[t + offs[k]]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_band<T: Element>(
    x_g: &[T],
    g: &Geometry,
    oh0: usize,
    oh1: usize,
    wq: usize,
    slack: usize,
    scratch: &mut Vec<T>,
    offs: &mut Vec<usize>,
) {
    let [sh, sw] = g.s;
    let (chan, plane) = if g.s == [1, 1] {
        let chan = pad_band(x_g, g, oh0, oh1, slack, scratch);
        (chan, chan)
    } else {
        phase_band(x_g, g, oh0, oh1, wq, slack, scratch)
    };
    offs.clear();
    for ci in 0..g.cig {
        for i in 0..g.k[0] {
            for j in 0..g.k[1] {
                let (a, f) = ((i * g.d[0]) % sh, (j * g.d[1]) % sw);
                let run = (i * g.d[0]) / sh * wq + (j * g.d[1]) / sw;
                offs.push(ci * chan + (a * sw + f) * plane + run);
            }
        }
    }
}

isa_builds! {
    /// `out[c*n + t] = sum_k wt[k*m + c] * band[t + offs[k]]` for `c < m` (a
    /// multiple of [`mr`]) and `t < n` (a multiple of [`nr`]); `band` must
    /// hold `max(offs) + n` elements. Runs the build `isa`.
    pub(crate) fn correlate<T: Element>(
        wt: &[T],
        m: usize,
        band: &[T],
        offs: &[usize],
        out: &mut [T],
        n: usize,
    ) [FMA, VB] {
        if std::mem::size_of::<T>() == 4 {
            correlate_impl::<T, FMA, { mr_of(VB) }, { nr_of(VB, 4) }>(wt, m, band, offs, out, n);
        } else {
            correlate_impl::<T, FMA, { mr_of(VB) }, { nr_of(VB, 8) }>(wt, m, band, offs, out, n);
        }
    }
}

#[inline(always)]
fn correlate_impl<T: Element, const FMA: bool, const MR: usize, const NR: usize>(
    wt: &[T],
    m: usize,
    band: &[T],
    offs: &[usize],
    out: &mut [T],
    n: usize,
) {
    for c0 in (0..m).step_by(MR) {
        for t0 in (0..n).step_by(NR) {
            let mut acc = [[T::zero(); NR]; MR];
            for (k, &off) in offs.iter().enumerate() {
                let b: &[T; NR] = band[t0 + off..t0 + off + NR]
                    .try_into()
                    .expect("a tile of NR elements");
                let a: &[T; MR] = wt[k * m + c0..k * m + c0 + MR]
                    .try_into()
                    .expect("a tile of MR elements");
                for (acc_r, &a_r) in acc.iter_mut().zip(a) {
                    for (acc_rl, &b_l) in acc_r.iter_mut().zip(b) {
                        *acc_rl = madd::<T, FMA>(*acc_rl, a_r, b_l);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                out[(c0 + r) * n + t0..(c0 + r) * n + t0 + NR].copy_from_slice(acc_r);
            }
        }
    }
}

/// Taps per register tile of [`weight_grad`] for vectors of `vb` bytes: 4
/// taps by two 256-bit vectors of channels, or 8 taps by one 512-bit vector;
/// 8 accumulators either way.
const fn kr_of(vb: usize) -> usize {
    if vb >= 64 {
        8
    } else {
        4
    }
}

/// Output channels per register tile of [`weight_grad`]: 64 bytes of them
/// in every build (two 256-bit vectors or one 512-bit vector), so the output
/// gradient is padded alike whatever the build.
pub(crate) fn grad_nr<T>() -> usize {
    64 / std::mem::size_of::<T>()
}

/// The output gradient of a band transposed to the `[wide pixel, channel]`
/// layout of [`weight_grad`]: `dyt[(row*wp + col)*m + c]` is
/// `channels[c][row*ow + col]` for every channel and real pixel; junk
/// pixels and channels beyond `channels.len()` are left as they are. Eight
/// channels at a time, so that each pixel's values are one contiguous
/// write (one channel at a time, the scattered writes were about 9% of the
/// weight gradient's time on 16x16 images).
pub(crate) fn pixel_major<T: Element>(
    channels: &[&[T]],
    ow: usize,
    wp: usize,
    m: usize,
    dyt: &mut [T],
) {
    const CB: usize = 8;
    let Some(pixels) = channels.first().map(|c| c.len()) else {
        return;
    };
    let rows = pixels / ow.max(1);
    let mut blocks = channels.chunks_exact(CB);
    let mut c0 = 0;
    for block in &mut blocks {
        let block: &[&[T]; CB] = block.try_into().expect("a block of CB channels");
        for row in 0..rows {
            let src: [&[T]; CB] = std::array::from_fn(|j| &block[j][row * ow..(row + 1) * ow]);
            let dst = &mut dyt[row * wp * m..(row * wp + ow) * m];
            for (col, px) in dst.chunks_exact_mut(m).enumerate() {
                let px: &mut [T; CB] = (&mut px[c0..c0 + CB])
                    .try_into()
                    .expect("a block of CB channels");
                for (d, s) in px.iter_mut().zip(&src) {
                    *d = s[col];
                }
            }
        }
        c0 += CB;
    }
    for (c, src) in blocks.remainder().iter().enumerate() {
        for (row, run) in src.chunks_exact(ow.max(1)).take(rows).enumerate() {
            for (col, &v) in run.iter().enumerate() {
                dyt[(row * wp + col) * m + c0 + c] = v;
            }
        }
    }
}

/// The weight gradient of a band (see [`weight_grad_portable`] for what it
/// computes) in the build `isa`: f32 in the AVX-512 build runs
/// [`weight_grad_f32_avx512`], the same sums in the same order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn weight_grad<T: Element>(
    isa: Isa,
    dyt: &[T],
    m: usize,
    band: &[T],
    offs: &[usize],
    rows: usize,
    wp: usize,
    ow: usize,
    dw: &mut [T],
) {
    if isa == Isa::Avx512 {
        if let (Some(dyt), Some(band)) = (as_f32(dyt), as_f32(band)) {
            if let Some(dw) = as_f32_mut(dw) {
                return weight_grad_f32_avx512(dyt, m, band, offs, rows, wp, ow, dw);
            }
        }
    }
    weight_grad_portable(isa, dyt, m, band, offs, rows, wp, ow, dw)
}

isa_builds! {
    /// The weight gradient of a band, tap-major: `dw[k*m + c] += sum_t
    /// dyt[t*m + c] * band[t + offs[k]]` for every channel `c < m`, every
    /// tap `k` and every real (not junk) wide pixel `t = row*wp + col`,
    /// `row < rows`, `col < ow`. `dyt` is the output gradient transposed,
    /// `[t, m]`, `m` a multiple of [`grad_nr`]; `band` holds `max(offs) +
    /// rows*wp` elements.
    ///
    /// Register tiles of a few taps by [`grad_nr`] output channels (see
    /// `kr_of`): per pixel, one broadcast of the band per tap, vector loads
    /// of `dyt` and one fused multiply-add per accumulator; pixels are summed
    /// in order, from zero, and each tile's sums added to `dw`. Runs the
    /// build `isa`.
    fn weight_grad_portable<T: Element>(
        dyt: &[T],
        m: usize,
        band: &[T],
        offs: &[usize],
        rows: usize,
        wp: usize,
        ow: usize,
        dw: &mut [T],
    ) [FMA, VB] {
        if std::mem::size_of::<T>() == 4 {
            weight_grad_impl::<T, FMA, { kr_of(VB) }, 16>(dyt, m, band, offs, rows, wp, ow, dw);
        } else {
            weight_grad_impl::<T, FMA, { kr_of(VB) }, 8>(dyt, m, band, offs, rows, wp, ow, dw);
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn weight_grad_impl<T: Element, const FMA: bool, const KR: usize, const NR: usize>(
    dyt: &[T],
    m: usize,
    band: &[T],
    offs: &[usize],
    rows: usize,
    wp: usize,
    ow: usize,
    dw: &mut [T],
) {
    for k0 in (0..offs.len()).step_by(KR) {
        let kr = KR.min(offs.len() - k0);
        // A tail tile repeats its last tap; the copies are not stored.
        let o: [usize; KR] = std::array::from_fn(|q| offs[k0 + q.min(kr - 1)]);
        for c0 in (0..m).step_by(NR) {
            let mut acc = [[T::zero(); NR]; KR];
            for row in 0..rows {
                let t0 = row * wp;
                let runs: [&[T]; KR] = std::array::from_fn(|q| &band[t0 + o[q]..t0 + o[q] + ow]);
                let dy_run = &dyt[t0 * m..(t0 + ow) * m];
                for (col, dy_px) in dy_run.chunks_exact(m).enumerate() {
                    let b: &[T; NR] = dy_px[c0..c0 + NR]
                        .try_into()
                        .expect("a tile of NR elements");
                    for (acc_q, run) in acc.iter_mut().zip(&runs) {
                        let a = run[col];
                        for (acc_ql, &b_l) in acc_q.iter_mut().zip(b) {
                            *acc_ql = madd::<T, FMA>(*acc_ql, a, b_l);
                        }
                    }
                }
            }
            for (q, acc_q) in acc.iter().enumerate().take(kr) {
                let start = (k0 + q) * m + c0;
                for (slot, &v) in dw[start..start + NR].iter_mut().zip(acc_q) {
                    *slot = *slot + v;
                }
            }
        }
    }
}

/// [`weight_grad`] of f32 in the AVX-512 build, written with intrinsics:
/// the same sums in the same order as the portable kernel, so the same bits.
/// In the portable form LLVM kept two of the eight accumulators in stack
/// slots stored on every pixel (a bounds check left in the loop); those
/// 64-byte stores split cache lines whenever the stack was not 64-byte
/// aligned, which depended on the build: the ResNet-20 step's backward took
/// about 10% longer in some builds of the same source.
///
/// # Panics
/// When the operands are shorter than [`weight_grad`] reads and writes (a
/// caller's bug), or the CPU cannot run AVX-512.
#[allow(clippy::too_many_arguments)]
fn weight_grad_f32_avx512(
    dyt: &[f32],
    m: usize,
    band: &[f32],
    offs: &[usize],
    rows: usize,
    wp: usize,
    ow: usize,
    dw: &mut [f32],
) {
    assert!(Isa::Avx512.is_supported(), "this kernel needs AVX-512");
    assert!(m.is_multiple_of(16) && ow <= wp);
    if rows == 0 || ow == 0 || offs.is_empty() || m == 0 {
        return;
    }
    let reach = (rows - 1) * wp + ow;
    assert!(band.len() >= offs.iter().max().map_or(0, |&o| o + reach));
    assert!(dyt.len() >= reach * m);
    assert!(dw.len() >= offs.len() * m);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512 is supported and the lengths bound every read and
    // write (see `avx512_f32::weight_grad`).
    unsafe {
        avx512_f32::weight_grad(dyt, m, band, offs, rows, wp, ow, dw)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512_f32 {
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU runs AVX-512F; `weight_grad_f32_avx512`'s asserts hold. Then
    /// the band is read at `t0 + o[q] + col < max(offs) + (rows - 1) wp +
    /// ow`, `dyt` at `(t0 + col) m + c0 + 16 NV <= ((rows - 1) wp + ow) m`
    /// and `dw` at `k m + c0 + 16 NV <= len(offs) m`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn weight_grad(
        dyt: &[f32],
        m: usize,
        band: &[f32],
        offs: &[usize],
        rows: usize,
        wp: usize,
        ow: usize,
        dw: &mut [f32],
    ) {
        // Wider tiles than the portable kernel's 8 taps by 16 channels where
        // the channels allow (each sum is the same, so the same bits): more
        // accumulators hide the multiply-add latency, and each broadcast of
        // the band feeds several vectors of channels.
        let mut c0 = 0;
        while c0 < m {
            // SAFETY: as this function's; `c0 + 16 NV <= m`.
            unsafe {
                if m - c0 >= 64 {
                    tiles::<4, 6>(dyt, m, band, offs, rows, wp, ow, dw, c0);
                    c0 += 64;
                } else if m - c0 >= 32 {
                    tiles::<2, 12>(dyt, m, band, offs, rows, wp, ow, dw, c0);
                    c0 += 32;
                } else {
                    tiles::<1, 16>(dyt, m, band, offs, rows, wp, ow, dw, c0);
                    c0 += 16;
                }
            }
        }
    }

    /// The tiles of `NV` vectors of channels from `c0` by `KR` taps, over
    /// every tap.
    ///
    /// # Safety
    /// As [`weight_grad`]'s, and `c0 + 16 NV <= m`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tiles<const NV: usize, const KR: usize>(
        dyt: &[f32],
        m: usize,
        band: &[f32],
        offs: &[usize],
        rows: usize,
        wp: usize,
        ow: usize,
        dw: &mut [f32],
        c0: usize,
    ) {
        for k0 in (0..offs.len()).step_by(KR) {
            let kr = KR.min(offs.len() - k0);
            // A tail tile repeats its last tap; the copies are not stored.
            let o: [usize; KR] = std::array::from_fn(|q| offs[k0 + q.min(kr - 1)]);
            let mut acc = [[_mm512_setzero_ps(); NV]; KR];
            for row in 0..rows {
                let t0 = row * wp;
                // SAFETY: in bounds, see `weight_grad`'s.
                let (dy, runs) = unsafe {
                    let runs: [*const f32; KR] =
                        std::array::from_fn(|q| band.as_ptr().add(t0 + o[q]));
                    (dyt.as_ptr().add(t0 * m + c0), runs)
                };
                for col in 0..ow {
                    // SAFETY: in bounds, see `weight_grad`'s.
                    unsafe {
                        let b: [__m512; NV] =
                            std::array::from_fn(|v| _mm512_loadu_ps(dy.add(col * m + 16 * v)));
                        for (acc_q, run) in acc.iter_mut().zip(&runs) {
                            let a = _mm512_set1_ps(*run.add(col));
                            for (acc_qv, &b_v) in acc_q.iter_mut().zip(&b) {
                                *acc_qv = _mm512_fmadd_ps(a, b_v, *acc_qv);
                            }
                        }
                    }
                }
            }
            for (q, acc_q) in acc.iter().enumerate().take(kr) {
                for (v, &a) in acc_q.iter().enumerate() {
                    // SAFETY: in bounds, see `weight_grad`'s.
                    unsafe {
                        let slot = dw.as_mut_ptr().add((k0 + q) * m + c0 + 16 * v);
                        _mm512_storeu_ps(slot, _mm512_add_ps(_mm512_loadu_ps(slot), a));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(spec: crate::Conv2dSpec, h: usize, w: usize) -> Geometry {
        let input = [2, spec.in_channels, h, w];
        let [o, c, kh, kw] = spec.weight_shape();
        spec.geometry("test", input, [o, c, kh, kw]).unwrap()
    }

    /// The sizes the tests rely on take the routes they are meant to.
    #[test]
    fn routes() {
        let s1 = crate::Conv2dSpec::new(6, 8, 3).padding(1);
        assert_eq!(wide_width(&geometry(s1, 12, 13)), None);
        assert_eq!(wide_width(&geometry(s1, 18, 17)), Some(19));
        let s2 = crate::Conv2dSpec::new(6, 8, 3).stride(2).padding(1);
        assert_eq!(wide_width(&geometry(s2, 12, 13)), None);
        assert_eq!(wide_width(&geometry(s2, 18, 17)), None);
        assert_eq!(wide_width(&geometry(s2, 34, 33)), Some(18));
        assert_eq!(grad_wide_width(&geometry(s2, 34, 33)), None);
        assert_eq!(grad_wide_width(&geometry(s1, 18, 17)), Some(19));
        assert_eq!(grad_wide_width(&geometry(s1, 12, 13)), Some(15));
        assert_eq!(wide_width(&geometry(s2, 32, 32)), Some(17));
        assert_eq!(
            with_strided_direct(false, || wide_width(&geometry(s2, 32, 32))),
            None
        );
        // Smallest width of the stride-2 case strategy of the tests.
        for p in 0..=2 {
            assert!(wide_width(&geometry(s2.padding(p), 3, 33)).is_some());
        }
        assert_eq!(wide_width(&geometry(s2.dilation(2), 32, 32)), None);
    }

    /// Plain and fused multiply-adds, with the tile sizes of every build,
    /// against the sum written out, on offsets with gaps and overlaps.
    fn check<T: Element, const MR: usize, const NR: usize>(tol: f64) {
        let (m, n) = (2 * MR, 3 * NR);
        let offs = [0usize, 1, 5, 5, 17, 40];
        let band: Vec<T> = (0..40 + n)
            .map(|i| T::of_f64(((i * 37 % 23) as f64 - 11.0) / 7.0))
            .collect();
        let wt: Vec<T> = (0..offs.len() * m)
            .map(|i| T::of_f64(((i * 13 % 17) as f64 - 8.0) / 5.0))
            .collect();
        let mut plain = vec![T::zero(); m * n];
        let mut fused = vec![T::zero(); m * n];
        correlate_impl::<T, false, MR, NR>(&wt, m, &band, &offs, &mut plain, n);
        correlate_impl::<T, true, MR, NR>(&wt, m, &band, &offs, &mut fused, n);
        for c in 0..m {
            for t in 0..n {
                let want: f64 = offs
                    .iter()
                    .enumerate()
                    .map(|(k, &o)| wt[k * m + c].as_f64() * band[t + o].as_f64())
                    .sum();
                for got in [plain[c * n + t], fused[c * n + t]] {
                    assert!(
                        (got.as_f64() - want).abs() <= tol,
                        "({c}, {t}): {got:?} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn correlate_equals_the_written_out_sum() {
        check::<f32, 4, 16>(1e-4);
        check::<f32, 4, 8>(1e-4);
        check::<f32, 4, 48>(1e-4);
        check::<f64, 4, 8>(1e-12);
        check::<f64, 4, 16>(1e-12);
        check::<f64, 4, 24>(1e-12);
    }

    /// The weight-gradient kernel, plain and fused, against the sum written
    /// out: 6 taps (a tail tile of 2), 2 tiles of channels, 3 rows of 4 real
    /// pixels in rows 6 wide; junk pixels hold NaN and must not be read.
    fn check_weight_grad<T: Element, const KR: usize, const NR: usize>(tol: f64) {
        let (m, rows, wp, ow) = (2 * NR, 3, 6, 4);
        let offs = [0usize, 1, 2, 6, 7, 13];
        let band: Vec<T> = (0..13 + rows * wp)
            .map(|i| T::of_f64(((i * 37 % 23) as f64 - 11.0) / 7.0))
            .collect();
        let dyt = transposed_gradient::<T>(m, rows, wp, ow);
        // One tap more than `offs`, which must be left alone.
        let start: Vec<T> = (0..(offs.len() + 1) * m)
            .map(|i| T::of_f64(i as f64))
            .collect();
        for fma in [false, true] {
            let mut dw = start.clone();
            let run = if fma {
                weight_grad_impl::<T, true, KR, NR>
            } else {
                weight_grad_impl::<T, false, KR, NR>
            };
            run(&dyt, m, &band, &offs, rows, wp, ow, &mut dw);
            for c in 0..m {
                for (k, &o) in offs.iter().enumerate() {
                    let sum: f64 = (0..rows)
                        .flat_map(|r| (0..ow).map(move |col| r * wp + col))
                        .map(|t| dyt[t * m + c].as_f64() * band[t + o].as_f64())
                        .sum();
                    let want = start[k * m + c].as_f64() + sum;
                    let got = dw[k * m + c].as_f64();
                    assert!(
                        (got - want).abs() <= tol,
                        "fma {fma} ({c}, {k}): {got} vs {want}"
                    );
                }
                let beyond = offs.len() * m + c;
                assert_eq!(dw[beyond].as_f64(), start[beyond].as_f64());
            }
        }
    }

    /// An output gradient `[t, m]` for rows of `wp` wide pixels with `ow`
    /// real ones; the junk pixels hold NaN.
    fn transposed_gradient<T: Element>(m: usize, rows: usize, wp: usize, ow: usize) -> Vec<T> {
        (0..rows * wp * m)
            .map(|i| {
                if (i / m) % wp < ow {
                    T::of_f64(((i * 13 % 17) as f64 - 8.0) / 5.0)
                } else {
                    T::of_f64(f64::NAN)
                }
            })
            .collect()
    }

    /// The intrinsics form of the AVX-512 build gives the bits of the
    /// portable one, with tail tiles of taps, channels in every tile width
    /// (64, 32, 16) and their mixes, and NaN in junk pixels (never read).
    #[test]
    fn weight_grad_intrinsics_give_the_bits_of_the_portable_kernel() {
        if !Isa::Avx512.is_supported() {
            eprintln!("note: this CPU cannot run the AVX-512 build; not tested");
            return;
        }
        let (rows, wp, ow) = (5, 19, 17);
        let offs = [0usize, 1, 2, 19, 20, 21, 38, 39, 40, 3, 7, 22, 41, 4];
        let band: Vec<f32> = (0..41 + rows * wp)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        for m in [16, 32, 64, 80, 112] {
            let dyt = transposed_gradient::<f32>(m, rows, wp, ow);
            let start: Vec<f32> = (0..offs.len() * m).map(|i| i as f32).collect();
            let (mut portable, mut intrinsics) = (start.clone(), start);
            weight_grad_impl::<f32, true, 8, 16>(
                &dyt,
                m,
                &band,
                &offs,
                rows,
                wp,
                ow,
                &mut portable,
            );
            weight_grad_f32_avx512(&dyt, m, &band, &offs, rows, wp, ow, &mut intrinsics);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&intrinsics), bits(&portable), "m {m}");
        }
    }

    /// Every channel and real pixel lands in its place, with channel counts
    /// below, at and above the block of eight; junk pixels and padding
    /// channels keep their values.
    #[test]
    fn pixel_major_transposes_the_real_pixels() {
        let (rows, ow, wp) = (3, 5, 7);
        for (cout, m) in [(3, 8), (8, 8), (13, 16), (16, 16), (21, 32)] {
            let data: Vec<Vec<f64>> = (0..cout)
                .map(|c| (0..rows * ow).map(|t| (c * 100 + t) as f64).collect())
                .collect();
            let channels: Vec<&[f64]> = data.iter().map(Vec::as_slice).collect();
            let mut dyt = vec![-1.0; rows * wp * m];
            pixel_major(&channels, ow, wp, m, &mut dyt);
            for t in 0..rows * wp {
                for c in 0..m {
                    let (row, col) = (t / wp, t % wp);
                    let want = if c < cout && col < ow {
                        data[c][row * ow + col]
                    } else {
                        -1.0
                    };
                    assert_eq!(dyt[t * m + c], want, "{cout} channels: ({t}, {c})");
                }
            }
        }
    }

    #[test]
    fn weight_grad_equals_the_written_out_sum() {
        check_weight_grad::<f32, 4, 16>(1e-4);
        check_weight_grad::<f32, 4, 8>(1e-4);
        check_weight_grad::<f32, 8, 16>(1e-4);
        check_weight_grad::<f64, 4, 8>(1e-12);
        check_weight_grad::<f64, 8, 8>(1e-12);
    }
}
