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

/// The output columns `[lo, hi)` whose input column `ow*s + off` lies in
/// `0..w`, for `ow` in `0..out_w`.
#[inline]
fn valid_range(off: isize, s: usize, w: usize, out_w: usize) -> (usize, usize) {
    let s = s as isize;
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    let last = w as isize - 1 - off;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let hi = (hi as usize).min(out_w);
    let lo = (lo as usize).min(hi);
    (lo, hi)
}

/// Fills `col` (`[cig*kH*kW, (oh1-oh0)*W_out]`, row-major) from the `cig`
/// input planes of one group `x` (`[cig, H, W]`, row-major).
pub(crate) fn im2col<T: Element>(x: &[T], g: &Geometry, oh0: usize, oh1: usize, col: &mut [T]) {
    let [kh, kw] = g.k;
    let (h, w, ow_n) = (g.h, g.w, g.ow);
    let pt = (oh1 - oh0) * ow_n;
    let mut r = 0;
    for ci in 0..g.cig {
        let plane = &x[ci * h * w..(ci + 1) * h * w];
        for i in 0..kh {
            for j in 0..kw {
                let off = (j * g.d[1]) as isize - g.p[1] as isize;
                let (lo, hi) = valid_range(off, g.s[1], w, ow_n);
                let row = &mut col[r * pt..(r + 1) * pt];
                for (t, oh) in (oh0..oh1).enumerate() {
                    let dst = &mut row[t * ow_n..(t + 1) * ow_n];
                    let ih = (oh * g.s[0] + i * g.d[0]) as isize - g.p[0] as isize;
                    if ih < 0 || ih >= h as isize || lo == hi {
                        dst.fill(T::zero());
                        continue;
                    }
                    let src = &plane[ih as usize * w..(ih as usize + 1) * w];
                    dst[..lo].fill(T::zero());
                    dst[hi..].fill(T::zero());
                    let start = (lo as isize * g.s[1] as isize + off) as usize;
                    if g.s[1] == 1 {
                        dst[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                    } else {
                        for (d, s) in dst[lo..hi]
                            .iter_mut()
                            .zip(src[start..].iter().step_by(g.s[1]))
                        {
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
/// `oh0..oh1`) back onto the input planes `x` of one group (`[cig, H, W]`).
pub(crate) fn col2im<T: Element>(col: &[T], g: &Geometry, oh0: usize, oh1: usize, x: &mut [T]) {
    let [kh, kw] = g.k;
    let (h, w, ow_n) = (g.h, g.w, g.ow);
    let pt = (oh1 - oh0) * ow_n;
    let mut r = 0;
    for ci in 0..g.cig {
        let plane = &mut x[ci * h * w..(ci + 1) * h * w];
        for i in 0..kh {
            for j in 0..kw {
                let off = (j * g.d[1]) as isize - g.p[1] as isize;
                let (lo, hi) = valid_range(off, g.s[1], w, ow_n);
                let row = &col[r * pt..(r + 1) * pt];
                r += 1;
                if lo == hi {
                    continue;
                }
                for (t, oh) in (oh0..oh1).enumerate() {
                    let ih = (oh * g.s[0] + i * g.d[0]) as isize - g.p[0] as isize;
                    if ih < 0 || ih >= h as isize {
                        continue;
                    }
                    let src = &row[t * ow_n + lo..t * ow_n + hi];
                    let dst = &mut plane[ih as usize * w..(ih as usize + 1) * w];
                    let start = (lo as isize * g.s[1] as isize + off) as usize;
                    if g.s[1] == 1 {
                        for (d, s) in dst[start..start + (hi - lo)].iter_mut().zip(src) {
                            *d = *d + *s;
                        }
                    } else {
                        for (d, s) in dst[start..].iter_mut().step_by(g.s[1]).zip(src) {
                            *d = *d + *s;
                        }
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
                let len = g.col_rows() * (oh1 - oh0) * g.ow;
                let y = values(len, seed ^ 0x9e37_79b9);
                let mut col = vec![f64::NAN; len];
                im2col(&x, &g, oh0, oh1, &mut col);
                let mut back = vec![0.0; x.len()];
                col2im(&y, &g, oh0, oh1, &mut back);
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
        im2col(&x, &g, 0, 2, &mut col);
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
