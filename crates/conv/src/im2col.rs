//! im2col and its adjoint col2im for one group of one image, over a band of
//! output rows.
//!
//! The column matrix of a band of output rows `oh0..oh1` has one row per
//! kernel tap `r = (ci * kH + i) * kW + j` (the order of the flattened weight
//! `[C_out/groups, C_in/groups * kH * kW]`) and one column per output pixel
//! `p = (oh - oh0) * W_out + ow`:
//!
//! `col[r, p] = x[ci, oh*sH + i*dH - pH, ow*sW + j*dW - pW]`, zero in the padding.
//!
//! col2im is the transpose of that linear map: it adds every column entry back
//! onto the input pixel it was read from, so `<im2col(x), y> = <x, col2im(y)>`.

use gradlab_tensor::Element;

use crate::spec::Geometry;

/// Row stride of a column matrix with `pt` columns: `pt` rounded up to a
/// multiple of 16, moved off multiples of 128 elements so that walking down a
/// column (as GEMM packing does) does not map every row to the same cache set.
pub(crate) fn col_ld(pt: usize) -> usize {
    let ld = pt.div_ceil(16) * 16;
    if ld.is_multiple_of(128) {
        ld + 16
    } else {
        ld
    }
}

/// Copies `src` into `dst` (same length) with an inlined loop: the segments
/// are short, so a call to `memcpy` per segment would cost more than the copy.
#[inline(always)]
pub(crate) fn copy_short<T: Copy>(dst: &mut [T], src: &[T]) {
    let n = dst.len();
    let src = &src[..n];
    let mut i = 0;
    while i + 8 <= n {
        // A constant-length copy: a couple of vector moves, no call.
        dst[i..i + 8].copy_from_slice(&src[i..i + 8]);
        i += 8;
    }
    while i < n {
        dst[i] = src[i];
        i += 1;
    }
}

/// Splits a row into its even and odd columns: `even[k] = src[2k]`, `odd[k]
/// = src[2k + 1]`, for as many `k` as each run holds (at most what `src`
/// has). Written as a loop over pairs, which the compiler vectorises; one
/// element at a time, the stride-2 phase splits took about as long as the
/// convolutions they fed.
pub(crate) fn split_columns<T: Copy>(src: &[T], even: &mut [T], odd: &mut [T]) {
    let pairs = even.len().min(odd.len()).min(src.len() / 2);
    for ((e, o), pair) in even[..pairs]
        .iter_mut()
        .zip(&mut odd[..pairs])
        .zip(src.chunks_exact(2))
    {
        *e = pair[0];
        *o = pair[1];
    }
    for (k, e) in even.iter_mut().enumerate().skip(pairs) {
        *e = src[2 * k];
    }
    for (k, o) in odd.iter_mut().enumerate().skip(pairs) {
        *o = src[2 * k + 1];
    }
}

/// The inverse of [`split_columns`]: `dst[2k] = even[k]`, `dst[2k + 1] =
/// odd[k]`.
pub(crate) fn merge_columns<T: Copy>(even: &[T], odd: &[T], dst: &mut [T]) {
    let pairs = even.len().min(odd.len()).min(dst.len() / 2);
    for ((&e, &o), pair) in even[..pairs]
        .iter()
        .zip(&odd[..pairs])
        .zip(dst.chunks_exact_mut(2))
    {
        pair[0] = e;
        pair[1] = o;
    }
    for (k, &e) in even.iter().enumerate().skip(pairs) {
        dst[2 * k] = e;
    }
    for (k, &o) in odd.iter().enumerate().skip(pairs) {
        dst[2 * k + 1] = o;
    }
}

/// Two disjoint runs of `buf`, `a..a + la` and `b..b + lb` (they must not
/// overlap: a caller's bug otherwise, which panics).
pub(crate) fn two_runs_mut<T>(
    buf: &mut [T],
    (a, la): (usize, usize),
    (b, lb): (usize, usize),
) -> (&mut [T], &mut [T]) {
    if a < b {
        let (head, tail) = buf.split_at_mut(b);
        (&mut head[a..a + la], &mut tail[..lb])
    } else {
        let (head, tail) = buf.split_at_mut(a);
        (&mut tail[..la], &mut head[b..b + lb])
    }
}

/// Layout of the zero-padded copy of the input rows a band of output rows
/// reads, for one group: per input channel, `sW` phase planes, phase `f`
/// holding padded columns `f, f + sW, f + 2sW, ...` of each band row. With
/// that split, the input columns `ow*sW + j*dW` of a tap `j` are the
/// contiguous run `ow + (j*dW) / sW` of phase `(j*dW) % sW`, whatever the
/// stride; with stride 1 there is one phase, the padded rows themselves.
struct Band {
    /// Padded input row of band row 0: `oh0 * sH` (input row minus `pH`).
    row0: usize,
    /// Band rows: `(rows - 1) * sH + (kH - 1) * dH + 1`.
    rin: usize,
    /// Elements per phase row: `ceil((W + 2pW) / sW)`.
    wq: usize,
}

impl Band {
    fn new(g: &Geometry, oh0: usize, oh1: usize) -> Self {
        let wp = g.w + 2 * g.p[1];
        Band {
            row0: oh0 * g.s[0],
            rin: (oh1 - oh0 - 1) * g.s[0] + (g.k[0] - 1) * g.d[0] + 1,
            wq: wp.div_ceil(g.s[1]),
        }
    }

    fn channel_len(&self, g: &Geometry) -> usize {
        g.s[1] * self.rin * self.wq
    }

    /// Start of row `q` of phase `f` of channel `ci`.
    #[inline(always)]
    fn row(&self, g: &Geometry, ci: usize, f: usize, q: usize) -> usize {
        ((ci * g.s[1] + f) * self.rin + q) * self.wq
    }

    /// The input row of band row `q`, if it is not padding.
    #[inline(always)]
    fn input_row(&self, g: &Geometry, q: usize) -> Option<usize> {
        (self.row0 + q).checked_sub(g.p[0]).filter(|&ih| ih < g.h)
    }
}

/// Fills the column matrix of output rows `oh0..oh1` of one group: row `r`
/// is `col[r*ld .. r*ld + (oh1-oh0)*W_out]`, `x` is the group's `[cig, H, W]`
/// input planes, row-major.
///
/// The input rows the band reads are first copied, with their zero padding
/// and split into column phases (see [`Band`]), into `scratch`; every row of
/// the column matrix is then a run of short contiguous copies, one per
/// output row, with no bounds logic.
pub(crate) fn im2col<T: Element>(
    x: &[T],
    g: &Geometry,
    oh0: usize,
    oh1: usize,
    col: &mut [T],
    ld: usize,
    scratch: &mut Vec<T>,
) {
    let [kh, kw] = g.k;
    let [sh, sw] = g.s;
    let [dh, dw] = g.d;
    let (h, w, ow_n) = (g.h, g.w, g.ow);
    let pt = (oh1 - oh0) * ow_n;
    let band = Band::new(g, oh0, oh1);
    scratch.clear();
    scratch.resize(g.cig * band.channel_len(g), T::zero());
    let wp = w + 2 * g.p[1];
    let mut padded_row = vec![T::zero(); if sw > 1 { wp } else { 0 }];
    if w > 0 {
        for ci in 0..g.cig {
            let src_plane = &x[ci * h * w..(ci + 1) * h * w];
            for q in 0..band.rin {
                let Some(ih) = band.input_row(g, q) else {
                    continue;
                };
                let src = &src_plane[ih * w..(ih + 1) * w];
                if sw == 1 {
                    let d = band.row(g, ci, 0, q) + g.p[1];
                    copy_short(&mut scratch[d..d + w], src);
                } else {
                    // Pad the row, then deal its columns out to the phases.
                    copy_short(&mut padded_row[g.p[1]..g.p[1] + w], src);
                    if sw == 2 {
                        // The common case, as pairs: even columns to phase 0,
                        // odd ones to phase 1.
                        let (e0, e1) = (band.row(g, ci, 0, q), band.row(g, ci, 1, q));
                        let (lo, hi) = scratch.split_at_mut(e1);
                        let pairs = padded_row.chunks_exact(2);
                        if let Some(&last) = pairs.remainder().first() {
                            lo[e0 + wp / 2] = last;
                        }
                        for ((even, odd), pair) in lo[e0..e0 + wp / 2]
                            .iter_mut()
                            .zip(&mut hi[..wp / 2])
                            .zip(pairs)
                        {
                            *even = pair[0];
                            *odd = pair[1];
                        }
                        continue;
                    }
                    for f in 0..sw {
                        let d = band.row(g, ci, f, q);
                        let n = wp.saturating_sub(f).div_ceil(sw);
                        for (k, dst) in scratch[d..d + n].iter_mut().enumerate() {
                            *dst = padded_row[f + k * sw];
                        }
                    }
                }
            }
        }
    }
    let mut r = 0;
    for ci in 0..g.cig {
        for i in 0..kh {
            for j in 0..kw {
                let (f, off) = ((j * dw) % sw, (j * dw) / sw);
                let row = &mut col[r * ld..r * ld + pt];
                for t in 0..oh1 - oh0 {
                    let start = band.row(g, ci, f, t * sh + i * dh) + off;
                    copy_short(
                        &mut row[t * ow_n..(t + 1) * ow_n],
                        &scratch[start..start + ow_n],
                    );
                }
                r += 1;
            }
        }
    }
}

/// The zero-padded copy of the input rows of a band (stride 1), channel
/// after channel, followed by `slack` zeros; returns the elements per
/// channel. The band the direct kernel (`conv2d/direct.rs`) reads.
pub(crate) fn pad_band<T: Element>(
    x: &[T],
    g: &Geometry,
    oh0: usize,
    oh1: usize,
    slack: usize,
    scratch: &mut Vec<T>,
) -> usize {
    let (h, w) = (g.h, g.w);
    let band = Band::new(g, oh0, oh1);
    scratch.clear();
    scratch.resize(g.cig * band.channel_len(g) + slack, T::zero());
    for ci in 0..g.cig {
        let src_plane = &x[ci * h * w..(ci + 1) * h * w];
        for q in 0..band.rin {
            if let Some(ih) = band.input_row(g, q) {
                let d = band.row(g, ci, 0, q) + g.p[1];
                copy_short(&mut scratch[d..d + w], &src_plane[ih * w..(ih + 1) * w]);
            }
        }
    }
    band.channel_len(g)
}

/// The zero-padded input rows of a band of a strided convolution, split
/// into `sH * sW` phase planes per channel (row phase `a`, column phase `f`,
/// plane `a*sW + f`), followed by `slack` zeros; returns the elements per
/// channel and per plane. Row `q` of plane `(a, f)` holds padded input row
/// `(oh0 + q)*sH + a`, its columns `f, f + sW, f + 2sW, ...`, in `wq`
/// elements, for `q < rq = (oh1 - oh0) + (kH-1)*dH / sH`.
///
/// In those planes, output pixel `(oh, ow)` of tap `(i, j)` reads row
/// `oh - oh0 + (i*dH)/sH`, column `ow + (j*dW)/sW` of plane
/// `((i*dH)%sH, (j*dW)%sW)`: every tap is a unit-stride run, as in the
/// stride-1 band of [`pad_band`], which is the one-phase case.
#[allow(clippy::too_many_arguments)]
pub(crate) fn phase_band<T: Element>(
    x: &[T],
    g: &Geometry,
    oh0: usize,
    oh1: usize,
    wq: usize,
    slack: usize,
    scratch: &mut Vec<T>,
) -> (usize, usize) {
    let (h, w) = (g.h, g.w);
    let [sh, sw] = g.s;
    let rq = (oh1 - oh0) + (g.k[0] - 1) * g.d[0] / sh;
    let plane = rq * wq;
    let chan = sh * sw * plane;
    scratch.clear();
    scratch.resize(g.cig * chan + slack, T::zero());
    for ci in 0..g.cig {
        let src_plane = &x[ci * h * w..(ci + 1) * h * w];
        for a in 0..sh {
            for q in 0..rq {
                let Some(ih) = ((oh0 + q) * sh + a).checked_sub(g.p[0]).filter(|&r| r < h) else {
                    continue;
                };
                let src = &src_plane[ih * w..(ih + 1) * w];
                if sw == 2 {
                    // Input column `iw` is padded column `iw + pW`: the even
                    // ones land in the phase of pW's parity from column
                    // pW/2, the odd ones in the other from (pW + 1)/2.
                    let base = ci * chan + a * sw * plane + q * wq;
                    let (ce, co) = (g.p[1] / 2, g.p[1].div_ceil(2));
                    let even = (
                        base + (g.p[1] % 2) * plane + ce,
                        w.div_ceil(2).min(wq.saturating_sub(ce)),
                    );
                    let odd = (
                        base + ((g.p[1] + 1) % 2) * plane + co,
                        (w / 2).min(wq.saturating_sub(co)),
                    );
                    let (even, odd) = two_runs_mut(scratch, even, odd);
                    split_columns(src, even, odd);
                    continue;
                }
                for f in 0..sw {
                    // Phase columns r whose padded column r*sW + f - pW is inside the row.
                    let r0 = g.p[1].saturating_sub(f).div_ceil(sw);
                    let r1 = (w + g.p[1]).saturating_sub(f).div_ceil(sw).min(wq);
                    let d = ci * chan + (a * sw + f) * plane + q * wq;
                    let first = r0 * sw + f - g.p[1];
                    for (dst, &v) in scratch[d + r0..d + r1.max(r0)]
                        .iter_mut()
                        .zip(src[first.min(w)..].iter().step_by(sw))
                    {
                        *dst = v;
                    }
                }
            }
        }
    }
    (chan, plane)
}

/// Adds the column matrix `col` (as produced by [`im2col`] for rows
/// `oh0..oh1`, row stride `ld`) back onto the input planes `x` of one group
/// (`[cig, H, W]`).
///
/// The columns are first added into a zero-padded, phase-split copy of the
/// band's input rows in `scratch` (contiguous runs, no bounds logic), whose
/// interior is then added onto `x`.
pub(crate) fn col2im<T: Element>(
    col: &[T],
    g: &Geometry,
    oh0: usize,
    oh1: usize,
    x: &mut [T],
    ld: usize,
    scratch: &mut Vec<T>,
) {
    let [kh, kw] = g.k;
    let [sh, sw] = g.s;
    let [dh, dw] = g.d;
    let (h, w, ow_n) = (g.h, g.w, g.ow);
    let pt = (oh1 - oh0) * ow_n;
    let band = Band::new(g, oh0, oh1);
    scratch.clear();
    scratch.resize(g.cig * band.channel_len(g), T::zero());
    let mut r = 0;
    for ci in 0..g.cig {
        for i in 0..kh {
            for j in 0..kw {
                let (f, off) = ((j * dw) % sw, (j * dw) / sw);
                let row = &col[r * ld..r * ld + pt];
                for t in 0..oh1 - oh0 {
                    let start = band.row(g, ci, f, t * sh + i * dh) + off;
                    let src = &row[t * ow_n..(t + 1) * ow_n];
                    for (d, s) in scratch[start..start + ow_n].iter_mut().zip(src) {
                        *d = *d + *s;
                    }
                }
                r += 1;
            }
        }
    }
    if w == 0 {
        return;
    }
    for ci in 0..g.cig {
        let dst_plane = &mut x[ci * h * w..(ci + 1) * h * w];
        for q in 0..band.rin {
            let Some(ih) = band.input_row(g, q) else {
                continue;
            };
            let dst = &mut dst_plane[ih * w..(ih + 1) * w];
            if sw == 1 {
                let s0 = band.row(g, ci, 0, q) + g.p[1];
                for (d, s) in dst.iter_mut().zip(&scratch[s0..s0 + w]) {
                    *d = *d + *s;
                }
            } else {
                for f in 0..sw {
                    let iw0 = (f + sw - g.p[1] % sw) % sw;
                    let s0 = band.row(g, ci, f, q) + (iw0 + g.p[1]) / sw;
                    for (d, &v) in dst[iw0.min(w)..].iter_mut().step_by(sw).zip(&scratch[s0..]) {
                        *d = *d + v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Conv2dSpec;
    use proptest::prelude::*;

    /// Deterministic pseudo-random values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f64> {
        let mut s = seed | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
            })
            .collect()
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// `<im2col(x), y> = <x, col2im(y)>` for every band of output rows:
        /// col2im is exactly the adjoint of im2col, which catches index bugs
        /// in either.
        #[test]
        fn col2im_is_the_adjoint_of_im2col(
            cig in 1usize..=3,
            k in [1usize..=4, 1usize..=4],
            s in [1usize..=3, 1usize..=3],
            p in [0usize..=2, 0usize..=2],
            d in [1usize..=2, 1usize..=2],
            extra in [0usize..=5, 0usize..=5],
            band in 1usize..=4,
            seed in any::<u64>(),
        ) {
            let size = |a: usize| (d[a] * (k[a] - 1) + 1).saturating_sub(2 * p[a]).max(1) + extra[a];
            let (h, w) = (size(0), size(1));
            let spec = Conv2dSpec { in_channels: cig, out_channels: 1, kernel: k, stride: s,
                                    padding: p, dilation: d, groups: 1 };
            let g = spec.geometry("test", [1, cig, h, w], spec.weight_shape()).unwrap();
            let x = values(cig * h * w, seed);
            let mut oh0 = 0;
            while oh0 < g.oh {
                let oh1 = (oh0 + band).min(g.oh);
                let pt = (oh1 - oh0) * g.ow;
                let ld = col_ld(pt);
                let len = g.col_rows() * ld;
                // Entries between pt and ld are never read nor written: keep them 0 in y.
                let y: Vec<f64> = values(len, seed ^ 0x9e37_79b9)
                    .into_iter()
                    .enumerate()
                    .map(|(e, v)| if e % ld < pt { v } else { 0.0 })
                    .collect();
                let mut col = vec![0.0; len];
                im2col(&x, &g, oh0, oh1, &mut col, ld, &mut Vec::new());
                let mut back = vec![0.0; x.len()];
                col2im(&y, &g, oh0, oh1, &mut back, ld, &mut Vec::new());
                let (lhs, rhs) = (dot(&col, &y), dot(&x, &back));
                prop_assert!((lhs - rhs).abs() <= 1e-12 * (1.0 + lhs.abs()), "{} vs {}", lhs, rhs);
                oh0 = oh1;
            }
        }
    }

    #[test]
    fn im2col_of_a_small_image() {
        // 1 channel 3x3, kernel 2x2, padding 1, stride 2: output 2x2.
        let spec = Conv2dSpec::new(1, 1, 2).padding(1).stride(2);
        let g = spec
            .geometry("test", [1, 1, 3, 3], spec.weight_shape())
            .unwrap();
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        let mut col = vec![f64::NAN; 4 * 4];
        im2col(&x, &g, 0, 2, &mut col, 4, &mut Vec::new());
        #[rustfmt::skip]
        let expected = [
            0., 0., 0., 5., // tap (0, 0)
            0., 0., 4., 6., // tap (0, 1)
            0., 2., 0., 8., // tap (1, 0)
            1., 3., 7., 9., // tap (1, 1)
        ];
        assert_eq!(col, expected);
    }
}
