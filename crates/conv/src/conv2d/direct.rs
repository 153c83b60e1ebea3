//! Direct stride-1 convolution on a zero-padded band of input rows: a GEMM
//! whose right-hand matrix is read straight from the band, without im2col
//! columns or GEMM packing.
//!
//! In the band (channel after channel, rows `Wp = W + 2pW` wide, see
//! `im2col::pad_band`) the input under kernel tap `k = (ci, i, j)` for the
//! wide output pixel `t = row*Wp + col` sits at `t + offs[k]`, with
//! `offs[k] = ci*chan + i*dH*Wp + j*dW`. So
//!
//! `out[c, t] = sum_k wt[k, c] * band[t + offs[k]]`
//!
//! is a matrix product whose `k`-th right-hand row is the contiguous run
//! `band[offs[k]..]`. It is computed in register tiles of [`MR`] output
//! channels by two vectors of wide pixels (16 `f32` or 8 `f64`, see [`nr`]):
//! per tap, two vector loads of the band, [`MR`] broadcasts of the weight and
//! eight fused multiply-adds into eight accumulators that stay in registers
//! (a 4 x 24 tile needs one register more than AVX2 has; it spilled and took
//! 1.8 times as long on layer a of the conv bench). Columns
//! `t % Wp >= W_out` straddle two rows and are junk, dropped by the caller;
//! taps are summed in order, so every output is one fixed sequence of
//! operations whatever the threading.

use gradlab_tensor::Element;

use super::simd::{avx2_fma, madd};
use crate::spec::Geometry;

/// Output channels per register tile.
pub(crate) const MR: usize = 4;

/// Wide pixels per register tile: two 256-bit vectors of `T`.
pub(crate) fn nr<T>() -> usize {
    if std::mem::size_of::<T>() == 4 {
        16
    } else {
        8
    }
}

/// Padded width `Wp = W + 2pW` of the wide output of a stride-1
/// convolution, when the direct kernel applies and pays: it computes
/// `Wp - W_out` junk columns per output row, so it is used while they add at
/// most 1/8 (on the conv bench, 8x8 images with padding 1 ran as fast
/// through it as through im2col + GEMM, larger images faster).
pub(crate) fn wide_width(g: &Geometry) -> Option<usize> {
    let wp = g.w + 2 * g.p[1];
    (g.s == [1, 1] && g.ow > 0 && (wp - g.ow) * 8 <= g.ow).then_some(wp)
}

/// `n` rounded up to a multiple of `m`.
pub(crate) fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// `offs[k]` of every tap `k = (ci, i, j)` of a band whose channels are
/// `chan` elements apart and rows `wp` wide.
pub(crate) fn tap_offsets(g: &Geometry, chan: usize, wp: usize, offs: &mut Vec<usize>) {
    offs.clear();
    for ci in 0..g.cig {
        for i in 0..g.k[0] {
            for j in 0..g.k[1] {
                offs.push(ci * chan + i * g.d[0] * wp + j * g.d[1]);
            }
        }
    }
}

/// `out[c*n + t] = sum_k wt[k*m + c] * band[t + offs[k]]` for `c < m` (a
/// multiple of [`MR`]) and `t < n` (a multiple of [`nr`]); `band` must hold
/// `max(offs) + n` elements.
///
/// Runs an AVX2+FMA build when the CPU has it.
pub(crate) fn correlate<T: Element>(
    wt: &[T],
    m: usize,
    band: &[T],
    offs: &[usize],
    out: &mut [T],
    n: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        unsafe { correlate_avx2(wt, m, band, offs, out, n) };
        return;
    }
    if nr::<T>() == 16 {
        correlate_impl::<T, false, 16>(wt, m, band, offs, out, n);
    } else {
        correlate_impl::<T, false, 8>(wt, m, band, offs, out, n);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn correlate_avx2<T: Element>(
    wt: &[T],
    m: usize,
    band: &[T],
    offs: &[usize],
    out: &mut [T],
    n: usize,
) {
    if nr::<T>() == 16 {
        correlate_impl::<T, true, 16>(wt, m, band, offs, out, n);
    } else {
        correlate_impl::<T, true, 8>(wt, m, band, offs, out, n);
    }
}

#[inline(always)]
fn correlate_impl<T: Element, const FMA: bool, const NR: usize>(
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

/// Taps per register tile of [`weight_grad`].
const KR: usize = 4;

/// The weight gradient of a band: `dw[c*ldw + k] += sum_t dyt[t*m + c] *
/// band[t + offs[k]]` for `c < m_valid`, every tap `k` and every real (not
/// junk) wide pixel `t = row*wp + col`, `row < rows`, `col < ow`. `dyt` is
/// the output gradient transposed, `[t, m]`, `m` a multiple of [`nr`];
/// `band` holds `max(offs) + rows*wp` elements.
///
/// Register tiles of [`KR`] taps by [`nr`] output channels: per pixel, [`KR`]
/// broadcasts of the band, two vector loads of `dyt` and eight fused
/// multiply-adds; pixels are summed in order. AVX2+FMA build when the CPU
/// has it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn weight_grad<T: Element>(
    dyt: &[T],
    m: usize,
    m_valid: usize,
    band: &[T],
    offs: &[usize],
    rows: usize,
    wp: usize,
    ow: usize,
    dw: &mut [T],
    ldw: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        unsafe { weight_grad_avx2(dyt, m, m_valid, band, offs, rows, wp, ow, dw, ldw) };
        return;
    }
    if nr::<T>() == 16 {
        weight_grad_impl::<T, false, 16>(dyt, m, m_valid, band, offs, rows, wp, ow, dw, ldw);
    } else {
        weight_grad_impl::<T, false, 8>(dyt, m, m_valid, band, offs, rows, wp, ow, dw, ldw);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn weight_grad_avx2<T: Element>(
    dyt: &[T],
    m: usize,
    m_valid: usize,
    band: &[T],
    offs: &[usize],
    rows: usize,
    wp: usize,
    ow: usize,
    dw: &mut [T],
    ldw: usize,
) {
    if nr::<T>() == 16 {
        weight_grad_impl::<T, true, 16>(dyt, m, m_valid, band, offs, rows, wp, ow, dw, ldw);
    } else {
        weight_grad_impl::<T, true, 8>(dyt, m, m_valid, band, offs, rows, wp, ow, dw, ldw);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn weight_grad_impl<T: Element, const FMA: bool, const NR: usize>(
    dyt: &[T],
    m: usize,
    m_valid: usize,
    band: &[T],
    offs: &[usize],
    rows: usize,
    wp: usize,
    ow: usize,
    dw: &mut [T],
    ldw: usize,
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
                for (l, &v) in acc_q.iter().enumerate().take(m_valid.saturating_sub(c0)) {
                    let slot = &mut dw[(c0 + l) * ldw + k0 + q];
                    *slot = *slot + v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both builds of the kernel (plain and fused multiply-add) and both
    /// tile widths against the sum written out, on offsets with gaps and
    /// overlaps.
    fn check<T: Element, const NR: usize>(tol: f64) {
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
        correlate_impl::<T, false, NR>(&wt, m, &band, &offs, &mut plain, n);
        correlate_impl::<T, true, NR>(&wt, m, &band, &offs, &mut fused, n);
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
        check::<f32, 16>(1e-4);
        check::<f32, 8>(1e-4);
        check::<f64, 8>(1e-12);
        check::<f64, 16>(1e-12);
    }

    /// Both builds of the weight-gradient kernel against the sum written
    /// out: 6 taps (a tail tile of 2), 5 stored channels of 2 tiles, 3 rows of
    /// 4 real pixels in rows 6 wide; junk pixels hold NaN and must not be read.
    fn check_weight_grad<T: Element, const NR: usize>(tol: f64) {
        let (m, m_valid, rows, wp, ow, ldw) = (2 * NR, 5, 3, 6, 4, 7);
        let offs = [0usize, 1, 2, 6, 7, 13];
        let band: Vec<T> = (0..13 + rows * wp)
            .map(|i| T::of_f64(((i * 37 % 23) as f64 - 11.0) / 7.0))
            .collect();
        let dyt: Vec<T> = (0..rows * wp * m)
            .map(|i| {
                let t = i / m;
                if t % wp < ow {
                    T::of_f64(((i * 13 % 17) as f64 - 8.0) / 5.0)
                } else {
                    T::of_f64(f64::NAN)
                }
            })
            .collect();
        let start: Vec<T> = (0..m_valid * ldw).map(|i| T::of_f64(i as f64)).collect();
        for fma in [false, true] {
            let mut dw = start.clone();
            let run = if fma {
                weight_grad_impl::<T, true, NR>
            } else {
                weight_grad_impl::<T, false, NR>
            };
            run(&dyt, m, m_valid, &band, &offs, rows, wp, ow, &mut dw, ldw);
            for c in 0..m_valid {
                for (k, &o) in offs.iter().enumerate() {
                    let sum: f64 = (0..rows)
                        .flat_map(|r| (0..ow).map(move |col| r * wp + col))
                        .map(|t| dyt[t * m + c].as_f64() * band[t + o].as_f64())
                        .sum();
                    let want = start[c * ldw + k].as_f64() + sum;
                    let got = dw[c * ldw + k].as_f64();
                    assert!(
                        (got - want).abs() <= tol,
                        "fma {fma} ({c}, {k}): {got} vs {want}"
                    );
                }
                // Taps beyond offs.len() are left alone.
                assert_eq!(dw[c * ldw + 6].as_f64(), start[c * ldw + 6].as_f64());
            }
        }
    }

    #[test]
    fn weight_grad_equals_the_written_out_sum() {
        check_weight_grad::<f32, 16>(1e-4);
        check_weight_grad::<f32, 8>(1e-4);
        check_weight_grad::<f64, 8>(1e-12);
    }
}
