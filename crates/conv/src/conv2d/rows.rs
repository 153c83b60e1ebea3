//! A direct 3x3 stride-1 kernel for f32 in the AVX-512 build, tiled over
//! output rows: the layers of ResNets on 32x32 and 16x16 images, forward
//! and input gradient.
//!
//! [`direct`](super::direct)'s kernel computes a register tile of output
//! channels by a run of wide pixels, loading the band once per tap and run,
//! and computes junk columns between the rows (1/8 of 16x16 images) that
//! are then dropped in a copy. This one keeps, per input channel and kernel
//! column, the 12 weights of 4 output channels by 3 kernel rows in vector
//! registers and loads each input row vector once for every output row of
//! the tile that reads it (4 rows of one vector, or 2 rows of two for
//! outputs wider than 16 columns: 16 accumulators, 28-30 of the 32
//! registers), writing only real pixels straight into the output rows.
//!
//! Written with `std::arch` intrinsics: in the portable style of the other
//! kernels (plain loops over arrays, compiled per build) LLVM did not
//! unroll the tile's loops and kept its accumulators in memory, 2 to 5
//! times slower than the wide kernel.

use std::any::TypeId;
use std::cell::Cell;

use super::simd::Isa;
use crate::spec::Geometry;

thread_local! {
    /// Whether [`correlate`] may run on this thread (see [`with_row_tiles`]).
    static ROWS: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` with the row-tiled kernel allowed (the default) or not (the
/// wide layout of the direct kernel) for the convolutions called on this
/// thread; for the conv bench and the tests, which compare both in one
/// process.
#[doc(hidden)]
pub fn with_row_tiles<R>(on: bool, f: impl FnOnce() -> R) -> R {
    super::with_thread_local(&ROWS, on, f)
}

/// Whether [`correlate`] computes the stride-1 convolution `g` of `T` in
/// the build `isa`: f32, the AVX-512 build, 3x3 kernels without dilation,
/// on images the direct kernel takes (`wide` is its row width).
///
/// Reads [`with_row_tiles`], so must be called on the convolution's
/// calling thread.
pub(crate) fn applies<T: 'static>(isa: Isa, g: &Geometry, wide: Option<usize>) -> bool {
    TypeId::of::<T>() == TypeId::of::<f32>()
        && isa == Isa::Avx512
        && wide.is_some()
        && g.s == [1, 1]
        && g.d == [1, 1]
        && g.k == [3, 3]
        && ROWS.with(Cell::get)
}

/// Elements [`correlate`] may read past the band's last row, rows `wp`
/// wide: the rows of a last, partial row tile and the columns of a last,
/// partial vector.
pub(crate) fn slack(wp: usize) -> usize {
    4 * wp + 48
}

/// `out[c][row*ow + col] = sum_{ci, j, i} wt[((ci*3 + i)*3 + j)*m + c] *
/// band[ci*chan + (row + i)*wp + col + j]` for `c < out.len()`, `row <
/// rows`, `col < ow`: the stride-1 3x3 convolution of a band of `cig`
/// zero-padded input channels (`chan` elements each, rows `wp` wide,
/// followed by [`slack`] elements) with the weight panel `wt` (`[tap][m]`,
/// `m` a multiple of 4, at least `out.len()`). Taps are summed in the order
/// `(ci, j, i)` for every output, whatever the threading.
///
/// # Panics
/// When `band`, `wt` or `out` are shorter than that reads and writes (a
/// caller's bug, never user data), or the CPU cannot run AVX-512 (callers
/// check [`applies`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn correlate(
    wt: &[f32],
    m: usize,
    band: &[f32],
    cig: usize,
    chan: usize,
    wp: usize,
    rows: usize,
    ow: usize,
    out: &mut [&mut [f32]],
) {
    assert!(
        Isa::Avx512.is_supported(),
        "the row-tiled kernel needs AVX-512"
    );
    assert!(m.is_multiple_of(4) && out.len() <= m && wt.len() >= cig * 9 * m);
    assert!(cig == 0 || band.len() >= (cig - 1) * chan + (rows + 2) * wp + slack(wp));
    assert!(ow + 2 <= wp && out.iter().all(|o| o.len() >= rows * ow));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512 is supported (asserted), and the asserts above bound
    // every read and write of the kernel (see `tile`).
    unsafe {
        if ow > 16 {
            avx512::tile::<2, 2>(wt, m, band, cig, chan, wp, rows, ow, out)
        } else {
            avx512::tile::<4, 1>(wt, m, band, cig, chan, wp, rows, ow, out)
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// [`correlate`](super::correlate) in tiles of 4 channels by `R` rows
    /// by `NV` vectors of 16 columns.
    ///
    /// # Safety
    /// The CPU runs AVX-512F; the lengths are those `correlate` asserts.
    /// Then every read is in bounds: the weight index is below
    /// `cig * 9 * m`; the band index is below `(cig - 1) * chan +
    /// (r0 + R + 2) * wp + x0 + 16 NV + 2` with `r0 + R <= rows + 3` and
    /// `x0 + 16 NV <= ow + 31`, so below `(cig - 1) * chan + (rows + 2) *
    /// wp + slack(wp)` (as `slack = 4 wp + 48` and `ow <= wp`). Writes go
    /// through bounds-checked slices.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile<const R: usize, const NV: usize>(
        wt: &[f32],
        m: usize,
        band: &[f32],
        cig: usize,
        chan: usize,
        wp: usize,
        rows: usize,
        ow: usize,
        out: &mut [&mut [f32]],
    ) {
        let (wt, band) = (wt.as_ptr(), band.as_ptr());
        for c0 in (0..out.len()).step_by(4) {
            for r0 in (0..rows).step_by(R) {
                for x0 in (0..ow).step_by(16 * NV) {
                    let mut acc = [[[_mm512_setzero_ps(); NV]; R]; 4];
                    for ci in 0..cig {
                        for j in 0..3 {
                            let mut w = [[_mm512_setzero_ps(); 3]; 4];
                            for (c, w_c) in w.iter_mut().enumerate() {
                                for (i, w_ci) in w_c.iter_mut().enumerate() {
                                    // SAFETY: in bounds, see the function's.
                                    let k = ((ci * 3 + i) * 3 + j) * m + c0 + c;
                                    *w_ci = _mm512_set1_ps(unsafe { *wt.add(k) });
                                }
                            }
                            for i in 0..3 {
                                for r in 0..R {
                                    let at = ci * chan + (r0 + r + i) * wp + x0 + j;
                                    let mut v = [_mm512_setzero_ps(); NV];
                                    for (q, v_q) in v.iter_mut().enumerate() {
                                        // SAFETY: in bounds, see the function's.
                                        *v_q = unsafe { _mm512_loadu_ps(band.add(at + 16 * q)) };
                                    }
                                    for (acc_c, w_c) in acc.iter_mut().zip(&w) {
                                        for (a, &v_q) in acc_c[r].iter_mut().zip(&v) {
                                            *a = _mm512_fmadd_ps(w_c[i], v_q, *a);
                                        }
                                    }
                                }
                            }
                        }
                    }
                    for (c, acc_c) in acc.iter().enumerate() {
                        let Some(dst) = out.get_mut(c0 + c) else {
                            continue;
                        };
                        for (r, acc_cr) in acc_c.iter().enumerate() {
                            if r0 + r >= rows {
                                continue;
                            }
                            for (q, &a) in acc_cr.iter().enumerate() {
                                let col = x0 + 16 * q;
                                if col >= ow {
                                    continue;
                                }
                                let n = (ow - col).min(16);
                                let start = (r0 + r) * ow + col;
                                let run = &mut dst[start..start + n];
                                let mask: __mmask16 = if n == 16 { !0 } else { (1 << n) - 1 };
                                // SAFETY: writes the first `n` floats of
                                // `run`, which has `n`.
                                unsafe { _mm512_mask_storeu_ps(run.as_mut_ptr(), mask, a) };
                            }
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

    fn geometry(spec: crate::Conv2dSpec, h: usize, w: usize) -> Geometry {
        let input = [2, spec.in_channels, h, w];
        spec.geometry("test", input, spec.weight_shape()).unwrap()
    }

    /// The kernel takes f32 3x3 stride-1 undilated convolutions in the
    /// AVX-512 build, on images the direct kernel takes, and nothing else.
    #[test]
    fn routes() {
        let s1 = crate::Conv2dSpec::new(8, 8, 3).padding(1);
        let g = geometry(s1, 16, 16);
        let wide = super::super::direct::wide_width(&g);
        assert!(wide.is_some());
        assert!(applies::<f32>(Isa::Avx512, &g, wide));
        assert!(!applies::<f64>(Isa::Avx512, &g, wide));
        assert!(!applies::<f32>(Isa::Avx2, &g, wide));
        assert!(!applies::<f32>(Isa::Avx512, &g, None));
        assert!(!with_row_tiles(false, || applies::<f32>(
            Isa::Avx512,
            &g,
            wide
        )));
        for other in [s1.dilation(2), crate::Conv2dSpec::new(8, 8, 5).padding(2)] {
            let g = geometry(other, 20, 20);
            assert!(!applies::<f32>(Isa::Avx512, &g, Some(24)));
        }
    }
}
