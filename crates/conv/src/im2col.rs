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
