//! Direct convolution vectorised over output channels, for small images
//! (stride 1) and 3x3 stride-2 layers.
//!
//! The pixel-vectorised kernel of `direct.rs` computes every column of the
//! padded rows, `Wp - W_out` junk ones per row, rounded up to its register
//! tile: on 8x8 images 96 wide pixels for 64 real ones. This kernel instead
//! transposes the zero-padded band to pixel-major `[padded pixel][c_in]` and
//! computes only the real output pixels, in register tiles of a few output
//! pixels by two vectors of output channels: per tap and input channel, two
//! vector loads of the weight `wc[tap][ci][c]` and one broadcast of the
//! input per pixel, one fused multiply-add per accumulator. For output pixel
//! `q = (oh - oh0)*W_out + ow` and tap `(i, j)` the input of channel `ci` is
//! `xt[base[q] + toff[tap] + ci]` with `base[q] = ((oh - oh0)*sH*Wp +
//! ow*sW)*c_in` and `toff[tap] = (i*dH*Wp + j*dW)*c_in`: with a stride the
//! pixels' bases step over the band, and nothing else changes.
//!
//! Taps and input channels are summed in one fixed order, so every output is
//! the same sequence of operations whatever the threading.

use std::cell::Cell;

use gradlab_tensor::Element;

use super::direct::wide_width;
use super::simd::{isa_builds, madd, Isa};
use crate::spec::Geometry;

/// Output channels per register tile for vectors of `vb` bytes: two vectors.
const fn cr_of(vb: usize, elem: usize) -> usize {
    2 * vb / elem
}

/// Output pixels per register tile: 12 (24 accumulators) with the 32
/// registers of AVX-512, 6 (12 accumulators) with the 16 of AVX2.
const fn pr_of(vb: usize) -> usize {
    if vb >= 64 {
        12
    } else {
        6
    }
}

/// Output channels per register tile in the build `isa` (the weight is
/// padded to a multiple of it).
pub(crate) fn cr<T>(isa: Isa) -> usize {
    cr_of(isa.vector_bytes(), std::mem::size_of::<T>())
}

thread_local! {
    /// Whether stride-1 specs may take this kernel on this thread (see
    /// [`with_channel_direct`]).
    static CHANNEL_DIRECT: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` with the channel-vectorised kernel on (the default) or off for
/// the convolutions called on this thread; for the conv bench and the
/// tests, which compare both routes in one process.
#[doc(hidden)]
pub fn with_channel_direct<R>(on: bool, f: impl FnOnce() -> R) -> R {
    super::with_thread_local(&CHANNEL_DIRECT, on, f)
}

/// Whether the forward pass of `g` in the build `isa` runs this kernel:
/// output planes of at least 64 pixels (on smaller ones the pixel tiles
/// compute many repeated pixels: 24 for the 16 of a 4x4 plane, 12 for the 4
/// of a 2x2 one, in the AVX-512 build; and only 8x8 was measured), at least
/// 32 input and 32 output channels per group (layers as wide as the
/// measured ones; the 16-channel layers of ResNets stay where they were),
/// output channels that [`cr`] pads by at most a half, while
/// [`with_channel_direct`] allows it; and either stride 1, not pointwise,
/// on images too narrow for the pixel-vectorised kernel
/// (`direct::wide_width` is `None`), or a 3x3 kernel of stride 2.
///
/// Measured on the conv bench (batch 64, f32, AVX-512): stride 1, layer c
/// (3x3, 64->64, 8x8) forward 2.87 ms here against 3.93 ms by im2col +
/// GEMM; on 16x16 images (layer b, 32->32) no faster than the
/// pixel-vectorised kernel, and on 16 output channels (layer a), padded to
/// 32 in the AVX-512 build, far slower. Stride 2 (`conv_stride2`, two runs):
/// 32->64 on 16x16 0.55/0.57 ms against 0.73/0.74 ms on phase-split bands,
/// 64->128 on 16x16 1.74/1.77 against 2.43/2.47 ms; but 16->32 on 32x32
/// (layer d) 0.72 against 0.60 ms, hence 32 input channels here too.
///
/// Reads [`with_channel_direct`], so must be called on the convolution's
/// calling thread.
pub(crate) fn applies<T>(isa: Isa, g: &Geometry) -> bool {
    let pad = g.cog.div_ceil(cr::<T>(isa)) * cr::<T>(isa) - g.cog;
    let route = match g.s {
        [1, 1] => !g.is_pointwise_direct() && wide_width(g).is_none(),
        [2, 2] => g.k == [3, 3],
        _ => false,
    };
    route
        && g.oh * g.ow >= 64
        && g.cig >= 32
        && g.cog >= 32
        && pad * 2 <= g.cog
        && CHANNEL_DIRECT.with(Cell::get)
}

/// The weight of every group in blocks of `cr` output channels (see [`cr`]),
/// each block one contiguous panel `[tap][ci][cr]`: group `grp`, channel
/// `co = cb*cr + l` is at `grp*ldc*taps*cig + ((cb*taps + tap)*cig + ci)*cr + l`
/// with `ldc` the group's output channels rounded up to `cr` (the extra
/// channels zero).
pub(crate) fn weight_by_taps<T: Element>(w: &[T], g: &Geometry, cr: usize) -> Vec<T> {
    let taps = g.k[0] * g.k[1];
    let ldc = g.cog.div_ceil(cr) * cr;
    let panel = taps * g.cig * ldc;
    let mut out = vec![T::zero(); g.groups * panel];
    for grp in 0..g.groups {
        let dst = &mut out[grp * panel..(grp + 1) * panel];
        for co in 0..g.cog {
            let (cb, l) = (co / cr, co % cr);
            for ci in 0..g.cig {
                let src = ((grp * g.cog + co) * g.cig + ci) * taps;
                for (tap, &v) in w[src..src + taps].iter().enumerate() {
                    dst[((cb * taps + tap) * g.cig + ci) * cr + l] = v;
                }
            }
        }
    }
    out
}

/// Packs the zero-padded input rows that output rows `oh0..oh1` of one
/// group read, pixel-major (`xt[(row*Wp + col)*cig + ci]`), and sets the
/// pixel bases `base` and tap offsets `toff` (see the module doc).
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_band<T: Element>(
    x_g: &[T],
    g: &Geometry,
    oh0: usize,
    oh1: usize,
    xt: &mut Vec<T>,
    base: &mut Vec<usize>,
    toff: &mut Vec<usize>,
) {
    let (h, w, cig) = (g.h, g.w, g.cig);
    let [sh, sw] = g.s;
    let wp = w + 2 * g.p[1];
    let rin = ((oh1 - oh0).max(1) - 1) * sh + (g.k[0] - 1) * g.d[0] + 1;
    xt.clear();
    xt.resize(rin * wp * cig, T::zero());
    for q in 0..rin {
        // Padded row `oh0*sH + q` is input row `oh0*sH + q - pH`, if any.
        let Some(ih) = (oh0 * sh + q).checked_sub(g.p[0]).filter(|&ih| ih < h) else {
            continue;
        };
        for ci in 0..cig {
            let src = &x_g[(ci * h + ih) * w..(ci * h + ih + 1) * w];
            let row = (q * wp + g.p[1]) * cig + ci;
            for (col, &v) in src.iter().enumerate() {
                xt[row + col * cig] = v;
            }
        }
    }
    base.clear();
    for r in 0..oh1 - oh0 {
        base.extend((0..g.ow).map(|c| (r * sh * wp + c * sw) * cig));
    }
    toff.clear();
    for i in 0..g.k[0] {
        for j in 0..g.k[1] {
            toff.push((i * g.d[0] * wp + j * g.d[1]) * cig);
        }
    }
}

isa_builds! {
    /// `out[c*np + q] = sum_{tap, ci} w[c, ci, tap] * xt[base[q] + toff[tap]
    /// + ci]` for `c < m` and `q < np = base.len()`, with the weight `wc` of
    /// one group laid out by [`weight_by_taps`] (`m` rounded up to [`cr`]
    /// channels); `xt` holds `max(base) + max(toff) + cig` elements. Runs
    /// the build `isa`.
    pub(crate) fn correlate<T: Element>(
        wc: &[T],
        m: usize,
        cig: usize,
        xt: &[T],
        base: &[usize],
        toff: &[usize],
        out: &mut [T],
    ) [FMA, VB] {
        if std::mem::size_of::<T>() == 4 {
            correlate_impl::<T, FMA, { pr_of(VB) }, { cr_of(VB, 4) }>(
                wc, m, cig, xt, base, toff, out,
            );
        } else {
            correlate_impl::<T, FMA, { pr_of(VB) }, { cr_of(VB, 8) }>(
                wc, m, cig, xt, base, toff, out,
            );
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn correlate_impl<T: Element, const FMA: bool, const PR: usize, const CR: usize>(
    wc: &[T],
    m: usize,
    cig: usize,
    xt: &[T],
    base: &[usize],
    toff: &[usize],
    out: &mut [T],
) {
    let np = base.len();
    if np == 0 || cig == 0 {
        return;
    }
    let taps = toff.len();
    // Taps per pass over the pixel tiles: their weights (about 16 KiB) stay
    // in the L1 cache while every tile reads them; the tiles' partial sums
    // wait in `partial` between passes, so each output is still summed tap
    // after tap, channel after channel.
    let tb = (16384 / (cig * CR * std::mem::size_of::<T>())).clamp(1, taps);
    // Full tiles of PR pixels, then tiles of a third as many for the rest:
    // one full tile for the rest computed its last pixel up to PR times (72
    // pixels for the 64 of an 8x8 plane).
    let full = np / PR * PR;
    let mut partial = vec![[T::zero(); CR]; np + PR];
    for c0 in (0..m).step_by(CR) {
        let cv = CR.min(m - c0);
        let wblk = &wc[c0 * taps * cig..(c0 + CR) * taps * cig];
        for t0 in (0..taps).step_by(tb) {
            let taps = t0..(t0 + tb).min(taps);
            for q0 in (0..full).step_by(PR) {
                let part = &mut partial[q0..q0 + PR];
                tile::<T, FMA, PR, CR>(wblk, cig, xt, base, toff, taps.clone(), q0, part);
            }
            for q0 in (full..np).step_by(PR / 3) {
                let part = &mut partial[q0..q0 + PR / 3];
                if PR / 3 == 4 {
                    tile::<T, FMA, 4, CR>(wblk, cig, xt, base, toff, taps.clone(), q0, part);
                } else {
                    tile::<T, FMA, 2, CR>(wblk, cig, xt, base, toff, taps.clone(), q0, part);
                }
            }
        }
        for (q, part_q) in partial[..np].iter().enumerate() {
            for (l, &v) in part_q.iter().enumerate().take(cv) {
                out[(c0 + l) * np + q] = v;
            }
        }
    }
}

/// One tile of [`correlate_impl`]: pixels `q0..q0 + P` (a tile past the
/// last pixel repeats it; `part` keeps what the copies compute, unread),
/// taps `taps`, their sums added to `part` (or started when the taps are
/// the first).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile<T: Element, const FMA: bool, const P: usize, const CR: usize>(
    wblk: &[T],
    cig: usize,
    xt: &[T],
    base: &[usize],
    toff: &[usize],
    taps: std::ops::Range<usize>,
    q0: usize,
    part: &mut [[T; CR]],
) {
    let part: &mut [[T; CR]; P] = part.try_into().expect("a tile of P pixels");
    let pv = P.min(base.len() - q0);
    let b: [usize; P] = std::array::from_fn(|p| base[q0 + p.min(pv - 1)]);
    let mut acc = if taps.start == 0 {
        [[T::zero(); CR]; P]
    } else {
        *part
    };
    for (tap, &off) in toff.iter().enumerate().take(taps.end).skip(taps.start) {
        let wtap = &wblk[tap * cig * CR..(tap + 1) * cig * CR];
        let runs: [&[T]; P] = std::array::from_fn(|p| &xt[b[p] + off..b[p] + off + cig]);
        for (ci, wci) in wtap.chunks_exact(CR).enumerate() {
            let wv: &[T; CR] = wci.try_into().expect("a tile of CR elements");
            for (acc_p, run) in acc.iter_mut().zip(&runs) {
                // SAFETY: every run holds `cig` elements (sliced above) and
                // `ci < cig` (`wtap` holds `cig` rows). Checked indexing
                // here kept the accumulators in memory instead of registers.
                let a = unsafe { *run.get_unchecked(ci) };
                for (acc_pl, &w_l) in acc_p.iter_mut().zip(wv) {
                    *acc_pl = madd::<T, FMA>(*acc_pl, a, w_l);
                }
            }
        }
    }
    *part = acc;
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
        let c = crate::Conv2dSpec::new(64, 64, 3).padding(1);
        for isa in Isa::ALL {
            assert!(applies::<f32>(isa, &geometry(c, 8, 8)));
            assert!(applies::<f64>(isa, &geometry(c, 8, 8)));
            // Wide enough for the pixel-vectorised kernel.
            assert!(!applies::<f32>(isa, &geometry(c, 16, 16)));
            // Stride 2: 3x3 with 32 input channels and 8x8 outputs or more.
            assert!(!applies::<f32>(isa, &geometry(c.stride(2), 8, 8)));
            assert!(applies::<f32>(isa, &geometry(c.stride(2), 16, 16)));
            let d = crate::Conv2dSpec::new(16, 32, 3).stride(2).padding(1);
            assert!(!applies::<f32>(isa, &geometry(d, 32, 32)));
            let pw2 = crate::Conv2dSpec::new(64, 64, 1).stride(2);
            assert!(!applies::<f32>(isa, &geometry(pw2, 16, 16)));
            assert!(!with_channel_direct(false, || applies::<f32>(
                isa,
                &geometry(c, 8, 8)
            )));
            // Few channels.
            let few = crate::Conv2dSpec::new(3, 64, 3).padding(1);
            assert!(!applies::<f32>(isa, &geometry(few, 8, 8)));
            let a = crate::Conv2dSpec::new(16, 16, 3).padding(1);
            assert!(!applies::<f32>(isa, &geometry(a, 8, 8)));
            // The cases of the tests: 48 output channels, 16x16 without
            // padding, grouped and dilated, several bands.
            let s48 = crate::Conv2dSpec::new(36, 48, 3).padding(1);
            assert!(applies::<f32>(isa, &geometry(s48, 8, 8)));
            assert!(applies::<f64>(isa, &geometry(s48, 8, 8)));
            let unpadded = crate::Conv2dSpec::new(33, 48, 3);
            assert!(applies::<f32>(isa, &geometry(unpadded, 16, 16)));
            let grouped = crate::Conv2dSpec::new(64, 96, 3)
                .padding(2)
                .dilation(2)
                .groups(2);
            assert!(applies::<f32>(isa, &geometry(grouped, 8, 9)));
            // Small planes.
            assert!(!applies::<f32>(isa, &geometry(c, 4, 4)));
            assert!(!applies::<f32>(isa, &geometry(c, 7, 9)));
            let tall = crate::Conv2dSpec::new(32, 48, 3).padding(1);
            assert!(applies::<f32>(isa, &geometry(tall, 40, 8)));
        }
        // 40 output channels pad to 64 in the AVX-512 f32 build, to 48 in
        // the others.
        let s40 = crate::Conv2dSpec::new(32, 40, 3).padding(1);
        assert!(!applies::<f32>(Isa::Avx512, &geometry(s40, 8, 8)));
        assert!(applies::<f32>(Isa::Avx2, &geometry(s40, 8, 8)));
    }

    /// Plain and fused multiply-adds, with the tile sizes of every build,
    /// against the sum written out: channel and pixel counts not multiples
    /// of the tile, bases and offsets with gaps and overlaps.
    fn check<T: Element, const PR: usize, const CR: usize>(tol: f64) {
        // Pixels: full tiles and a one-pixel tail, full tiles and two tail
        // tiles (the last partial), tail tiles only.
        for np in [2 * PR + 1, PR + PR / 3 + 1, PR - 1] {
            check_pixels::<T, PR, CR>(np, tol);
        }
    }

    fn check_pixels<T: Element, const PR: usize, const CR: usize>(np: usize, tol: f64) {
        // Two blocks of channels, the second partial; more taps than one
        // pass over the pixel tiles takes when `cig*CR` is large.
        let (cig, m) = (5, CR + 3);
        let ldc = 2 * CR;
        let base: Vec<usize> = (0..np).map(|q| (q * 7 % 11) * cig).collect();
        let toff = [0usize, 1, cig, 3 * cig + 2, 3 * cig + 2];
        let taps = toff.len();
        let len = 11 * cig + 3 * cig + 2 + cig;
        let xt: Vec<T> = (0..len)
            .map(|i| T::of_f64(((i * 37 % 23) as f64 - 11.0) / 7.0))
            .collect();
        // The weight w[c, ci, tap], and its blocked layout.
        let w = |c: usize, ci: usize, tap: usize| {
            T::of_f64((((c * 7 + ci * 3 + tap * 11) % 17) as f64 - 8.0) / 5.0)
        };
        let mut wc = vec![T::zero(); taps * cig * ldc];
        for c in 0..m {
            for ci in 0..cig {
                for tap in 0..taps {
                    wc[(((c / CR) * taps + tap) * cig + ci) * CR + c % CR] = w(c, ci, tap);
                }
            }
        }
        for fma in [false, true] {
            let mut out = vec![T::of_f64(f64::NAN); m * np];
            let run = if fma {
                correlate_impl::<T, true, PR, CR>
            } else {
                correlate_impl::<T, false, PR, CR>
            };
            run(&wc, m, cig, &xt, &base, &toff, &mut out);
            for c in 0..m {
                for (q, &bq) in base.iter().enumerate() {
                    let want: f64 = toff
                        .iter()
                        .enumerate()
                        .flat_map(|(tap, &o)| (0..cig).map(move |ci| (tap, o, ci)))
                        .map(|(tap, o, ci)| w(c, ci, tap).as_f64() * xt[bq + o + ci].as_f64())
                        .sum();
                    let got = out[c * np + q].as_f64();
                    assert!(
                        (got - want).abs() <= tol,
                        "fma {fma} ({c}, {q}): {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn correlate_equals_the_written_out_sum() {
        check::<f32, 6, 16>(1e-4);
        check::<f32, 12, 32>(1e-4);
        check::<f64, 6, 8>(1e-12);
        check::<f64, 12, 16>(1e-12);
    }
}
