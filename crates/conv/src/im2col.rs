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
    if ld % 128 == 0 {
        ld + 16
    } else {
        ld
    }
}

/// Copies `src` into `dst` (same length) with an inlined loop: the segments
/// are short, so a call to `memcpy` per segment would cost more than the copy.
#[inline(always)]
pub(crate) fn copy_short<T: Copy>(dst: &mut [T], src: &[T]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d8, s8) in (&mut d).zip(&mut s) {
        let s8: &[T; 8] = s8.try_into().expect("chunk of 8");
        let d8: &mut [T; 8] = d8.try_into().expect("chunk of 8");
        *d8 = *s8;
    }
    for (a, b) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *a = *b;
    }
}

/// Fills the column matrix of output rows `oh0..oh1` of one group: row `r`
/// is `col[r*ld .. r*ld + (oh1-oh0)*W_out]`, `x` is the group's `[cig, H, W]`
/// input planes, row-major.
///
/// The input rows the band reads are first copied, with their zero padding,
/// into `scratch`; every column row is then a run of plain copies with no
/// bounds logic (one short vector copy per output row when the stride is 1).
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
    let rows = oh1 - oh0;
    let pt = rows * ow_n;
    // Padded band: row q is padded input row oh0*sh + q, i.e. input row
    // oh0*sh + q - pH; columns are padded columns.
    let wp = w + 2 * g.p[1];
    let rin = (rows - 1) * sh + (kh - 1) * dh + 1;
    let plane_len = rin * wp;
    scratch.clear();
    scratch.resize(g.cig * plane_len, T::zero());
    for ci in 0..g.cig {
        let src_plane = &x[ci * h * w..(ci + 1) * h * w];
        let dst_plane = &mut scratch[ci * plane_len..(ci + 1) * plane_len];
        for q in 0..rin {
            let ih = (oh0 * sh + q) as isize - g.p[0] as isize;
            if ih >= 0 && (ih as usize) < h && w > 0 {
                let ih = ih as usize;
                copy_short(
                    &mut dst_plane[q * wp + g.p[1]..q * wp + g.p[1] + w],
                    &src_plane[ih * w..(ih + 1) * w],
                );
            }
        }
    }
    let mut r = 0;
    for ci in 0..g.cig {
        let plane = &scratch[ci * plane_len..(ci + 1) * plane_len];
        for i in 0..kh {
            for j in 0..kw {
                let row = &mut col[r * ld..r * ld + pt];
                for (t, dst) in row.chunks_exact_mut(ow_n).enumerate() {
                    let start = (t * sh + i * dh) * wp + j * dw;
                    if sw == 1 {
                        copy_short(dst, &plane[start..start + ow_n]);
                    } else {
                        for (d, s) in dst.iter_mut().zip(plane[start..].iter().step_by(sw)) {
                            *d = *s;
                        }
                    }
                }
                r += 1;
            }
        }
    }
}

/// Adds the column matrix `col` (as produced by [`im2col`] for rows
/// `oh0..oh1`, row stride `ld`) back onto the input planes `x` of one group
/// (`[cig, H, W]`).
///
/// The columns are first added into a zero-padded copy of the band's input
/// rows in `scratch` (no bounds logic per tap), whose interior is then added
/// onto `x`.
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
    let rows = oh1 - oh0;
    let pt = rows * ow_n;
    let wp = w + 2 * g.p[1];
    let rin = (rows - 1) * sh + (kh - 1) * dh + 1;
    let plane_len = rin * wp;
    scratch.clear();
    scratch.resize(g.cig * plane_len, T::zero());
    let mut r = 0;
    for ci in 0..g.cig {
        let plane = &mut scratch[ci * plane_len..(ci + 1) * plane_len];
        for i in 0..kh {
            for j in 0..kw {
                let row = &col[r * ld..r * ld + pt];
                for (t, src) in row.chunks_exact(ow_n).enumerate() {
                    let start = (t * sh + i * dh) * wp + j * dw;
                    if sw == 1 {
                        for (d, s) in plane[start..start + ow_n].iter_mut().zip(src) {
                            *d = *d + *s;
                        }
                    } else {
                        for (d, s) in plane[start..].iter_mut().step_by(sw).zip(src) {
                            *d = *d + *s;
                        }
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
        let src_plane = &scratch[ci * plane_len..(ci + 1) * plane_len];
        let dst_plane = &mut x[ci * h * w..(ci + 1) * h * w];
        for q in 0..rin {
            let ih = (oh0 * sh + q) as isize - g.p[0] as isize;
            if ih >= 0 && (ih as usize) < h {
                let ih = ih as usize;
                let src = &src_plane[q * wp + g.p[1]..q * wp + g.p[1] + w];
                for (d, s) in dst_plane[ih * w..(ih + 1) * w].iter_mut().zip(src) {
                    *d = *d + *s;
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
