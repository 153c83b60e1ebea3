//! Depthwise convolutions of stride 1 whose output rows are as wide as the
//! input's (`2*pW == dW*(kW - 1)`: 3x3 with padding 1, MobileNet's), for
//! f32 in the AVX-512 build: each tap of 16 consecutive pixels is one masked
//! load straight from the unpadded plane.
//!
//! With equal row widths, output pixel `t = oh*W + ow` reads tap `(i, j)`
//! at input position `t + (i*dH - pH)*W + (j*dW - pW)`: one offset for every
//! pixel, as in [`depthwise`](super::depthwise)'s flat layout, but on the
//! plane itself. Lanes whose source pixel lies outside the plane (the
//! padding, and the columns that would wrap into the neighbouring row) are
//! masked off: one 16-bit mask per (vector, tap), computed once per
//! convolution. The flat kernel instead copies each plane into a padded
//! buffer, computes the wide columns between the rows and copies the real
//! ones out; on 8x8 planes those copies took a quarter of the depthwise
//! forward+backward, and its blocks of 64 outputs computed 128 wide
//! positions for 64 pixels.
//!
//! The output and the input gradient add the taps in the flat kernel's
//! order, with the same fused multiply-adds on the same values (a masked
//! lane reads 0, as the flat kernel reads the padding), so they are the
//! same bits; the weight gradient's sums are grouped by 16 lanes instead of
//! the flat kernel's 32 wide positions.

use std::any::TypeId;

use super::simd::{as_f32, as_f32_mut, Isa};
use crate::spec::Geometry;

/// Lanes of an AVX-512 vector of f32.
const LANES: usize = 16;

/// Taps whose weight gradients one pass over a plane computes (a 3x3
/// kernel's, in 9 of the 32 vector registers).
const TAPS: usize = 9;

/// The offsets and masks of one convolution's planes (see the module
/// documentation).
pub(super) struct Masked {
    /// Tap `(i, j)`'s input position relative to the output pixel's.
    offs: Vec<isize>,
    /// Vectors per output plane.
    vectors: usize,
    /// Vectors per input plane.
    in_vectors: usize,
    /// `forward[k*vectors + v]`: the lanes of output vector `v` whose tap
    /// `k` source pixel lies in the input plane (tap-major, so a run of
    /// vectors finds its masks of one tap side by side).
    forward: Vec<u16>,
    /// `backward[k*in_vectors + v]`: the lanes of input vector `v` that are
    /// tap `k` of an output pixel (`s - offs[k]` lies in the output plane).
    backward: Vec<u16>,
    in_plane: usize,
    out_plane: usize,
}

impl Masked {
    /// The masks of `g` when this kernel computes it: f32, the AVX-512
    /// build, a depthwise spec of stride 1 with `W_out == W`.
    pub(super) fn new<T: 'static>(isa: Isa, g: &Geometry) -> Option<Self> {
        let applies = TypeId::of::<T>() == TypeId::of::<f32>()
            && isa == Isa::Avx512
            && isa.is_supported()
            && g.s == [1, 1]
            && g.ow == g.w
            && g.w > 0
            && g.cig == 1;
        applies.then(|| Self::build(g))
    }

    fn build(g: &Geometry) -> Self {
        let (h, w, oh) = (g.h as isize, g.w as isize, g.oh as isize);
        let shifts: Vec<(isize, isize)> = (0..g.k[0])
            .flat_map(|i| (0..g.k[1]).map(move |j| (i, j)))
            .map(|(i, j)| {
                (
                    (i * g.d[0]) as isize - g.p[0] as isize,
                    (j * g.d[1]) as isize - g.p[1] as isize,
                )
            })
            .collect();
        let offs = shifts.iter().map(|&(a, b)| a * w + b).collect();
        let (in_plane, out_plane) = (g.in_plane(), g.out_plane());
        let (vectors, in_vectors) = (out_plane.div_ceil(LANES), in_plane.div_ceil(LANES));
        // Lane `l` of vector `v` is pixel `(p / W, p % W)`, `p = 16v + l`,
        // when `p < len`; its bit is set when `inside(row, col, shift)`.
        let masks =
            |count: usize, len: usize, inside: &dyn Fn(isize, isize, (isize, isize)) -> bool| {
                let mut out = Vec::with_capacity(count * shifts.len());
                for &shift in &shifts {
                    for v in 0..count {
                        let mut bits = 0u16;
                        for l in 0..LANES {
                            let p = v * LANES + l;
                            let (r, c) = ((p as isize) / w, (p as isize) % w);
                            if p < len && inside(r, c, shift) {
                                bits |= 1 << l;
                            }
                        }
                        out.push(bits);
                    }
                }
                out
            };
        let forward = masks(vectors, out_plane, &|r, c, (a, b)| {
            (0..h).contains(&(r + a)) && (0..w).contains(&(c + b))
        });
        let backward = masks(in_vectors, in_plane, &|r, c, (a, b)| {
            (0..oh).contains(&(r - a)) && (0..w).contains(&(c - b))
        });
        Masked {
            offs,
            vectors,
            in_vectors,
            forward,
            backward,
            in_plane,
            out_plane,
        }
    }

    /// `out = bias + x ⋆ w`: one output plane from its input plane `x` and
    /// the `kH*kW` weights `w` of its output channel, taps added in order.
    ///
    /// # Panics
    /// When the lengths disagree with the geometry or `T` is not f32 (a
    /// caller's bug: [`Masked::new`] checks the type).
    pub(super) fn forward_plane<T: 'static>(&self, x: &[T], w: &[T], bias: T, out: &mut [T]) {
        let (x, w, out) = (f32s(x), f32s(w), f32s_mut(out));
        let bias = f32s(std::slice::from_ref(&bias))[0];
        assert!(x.len() == self.in_plane && out.len() == self.out_plane);
        assert!(w.len() == self.offs.len());
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `new` checked that the CPU runs AVX-512; the masks enable
        // only lanes inside `x` and `out`, whose lengths are asserted above.
        unsafe {
            avx512::forward_plane(self, x, w, bias, out)
        }
    }

    /// `dw[k] = sum_t dy[t] * x[t + offs[k]]`: the weight gradient of one
    /// output channel from its input plane `x` and output-gradient plane
    /// `dy`, each tap's 16 lane sums added up in a fixed order.
    ///
    /// # Panics
    /// As [`Masked::forward_plane`].
    pub(super) fn weight_grad_plane<T: 'static>(&self, x: &[T], dy: &[T], dw: &mut [T]) {
        let (x, dy, dw) = (f32s(x), f32s(dy), f32s_mut(dw));
        assert!(x.len() == self.in_plane && dy.len() == self.out_plane);
        assert!(dw.len() == self.offs.len());
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `forward_plane`.
        unsafe {
            avx512::weight_grad_plane(self, x, dy, dw)
        }
    }

    /// The input gradient of one input plane from the output-gradient planes
    /// `dy` of its `m` output channels and their weights `w` (`m*kH*kW`):
    /// output channels in order, taps in order within each.
    ///
    /// # Panics
    /// As [`Masked::forward_plane`].
    pub(super) fn input_grad_plane<T: 'static>(&self, dy: &[T], w: &[T], dx: &mut [T]) {
        let (dy, w, dx) = (f32s(dy), f32s(w), f32s_mut(dx));
        let kk = self.offs.len();
        let m = w.len().checked_div(kk).unwrap_or(0);
        assert!(w.len() == m * kk && dy.len() == m * self.out_plane);
        assert!(dx.len() == self.in_plane);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `forward_plane`; plane `q < m` of `dy` is in bounds.
        unsafe {
            avx512::input_grad_plane(self, dy, w, m, dx)
        }
    }
}

fn f32s<T: 'static>(s: &[T]) -> &[f32] {
    as_f32(s).expect("the masked depthwise kernel is built for f32 only")
}

fn f32s_mut<T: 'static>(s: &mut [T]) -> &mut [f32] {
    as_f32_mut(s).expect("the masked depthwise kernel is built for f32 only")
}

/// The lanes of vector `v` below `len`.
fn tail(len: usize, v: usize) -> u16 {
    let rest = len.saturating_sub(v * LANES);
    if rest >= LANES {
        u16::MAX
    } else {
        (1u16 << rest) - 1
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{tail, Masked, LANES, TAPS};

    /// The lanes `mask` of the 16 floats at `base + at`, zero elsewhere.
    ///
    /// # Safety
    /// The CPU runs AVX-512F and every lane of `mask` addresses an element
    /// of the slice `base` points into; the other lanes are not accessed
    /// (masked loads suppress them), so `base + at` itself may lie outside.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(mask: u16, base: *const f32, at: isize) -> __m512 {
        // SAFETY: see the function's.
        unsafe { _mm512_maskz_loadu_ps(mask, base.wrapping_offset(at)) }
    }

    /// Where vector `v` starts.
    fn at(v: usize) -> isize {
        (v * LANES) as isize
    }

    /// # Safety
    /// The CPU runs AVX-512F; the lengths are those `Masked::forward_plane`
    /// asserts.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn forward_plane(
        m: &Masked,
        x: &[f32],
        w: &[f32],
        bias: f32,
        out: &mut [f32],
    ) {
        let mut v = 0;
        while v + 8 <= m.vectors {
            // SAFETY: the function's.
            unsafe { forward_vectors::<8>(m, x, w, bias, out, v) };
            v += 8;
        }
        while v + 4 <= m.vectors {
            // SAFETY: the function's.
            unsafe { forward_vectors::<4>(m, x, w, bias, out, v) };
            v += 4;
        }
        while v < m.vectors {
            // SAFETY: the function's.
            unsafe { forward_vectors::<1>(m, x, w, bias, out, v) };
            v += 1;
        }
    }

    /// Output vectors `v0..v0 + U`.
    ///
    /// # Safety
    /// As [`forward_plane`], and `v0 + U <= m.vectors`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn forward_vectors<const U: usize>(
        m: &Masked,
        x: &[f32],
        w: &[f32],
        bias: f32,
        out: &mut [f32],
        v0: usize,
    ) {
        let mut acc = [_mm512_set1_ps(bias); U];
        let masks = m.forward.chunks_exact(m.vectors.max(1));
        for ((&off, &wk), masks) in m.offs.iter().zip(w).zip(masks) {
            let wk = _mm512_set1_ps(wk);
            let masks: &[u16; U] = masks[v0..v0 + U].try_into().expect("U masks");
            for (u, (acc_u, &mask)) in acc.iter_mut().zip(masks).enumerate() {
                // SAFETY: `forward`'s mask enables the lanes whose source
                // pixel lies in `x`.
                let xv = unsafe { load(mask, x.as_ptr(), at(v0 + u) + off) };
                *acc_u = _mm512_fmadd_ps(wk, xv, *acc_u);
            }
        }
        for (u, acc_u) in acc.iter().enumerate() {
            let v = v0 + u;
            // SAFETY: `v < m.vectors`, so the vector starts inside `out`,
            // and the tail mask stores only its lanes below `out.len()`.
            unsafe {
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(v * LANES), tail(out.len(), v), *acc_u)
            };
        }
    }

    /// # Safety
    /// The CPU runs AVX-512F; the lengths are those
    /// `Masked::weight_grad_plane` asserts.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn weight_grad_plane(m: &Masked, x: &[f32], dy: &[f32], dw: &mut [f32]) {
        let kk = m.offs.len();
        for first in (0..kk).step_by(TAPS) {
            // Pad a short last group with its last tap; the extra sums are dropped.
            let ks: [usize; TAPS] = std::array::from_fn(|t| (first + t).min(kk - 1));
            let mut acc = [_mm512_setzero_ps(); TAPS];
            for v in 0..m.vectors {
                // SAFETY: the tail mask enables the lanes inside `dy`.
                let d = unsafe { load(tail(dy.len(), v), dy.as_ptr(), at(v)) };
                for (acc_k, &k) in acc.iter_mut().zip(&ks) {
                    let mask = m.forward[k * m.vectors + v];
                    // SAFETY: as in `forward_vectors`.
                    let xv = unsafe { load(mask, x.as_ptr(), at(v) + m.offs[k]) };
                    *acc_k = _mm512_fmadd_ps(d, xv, *acc_k);
                }
            }
            for (dst, acc_k) in dw[first..].iter_mut().zip(&acc) {
                let mut lanes = [0.0f32; LANES];
                // SAFETY: `lanes` holds 16 floats.
                unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), *acc_k) };
                *dst = super::super::lane_sum(0.0, &lanes);
            }
        }
    }

    /// # Safety
    /// The CPU runs AVX-512F; the lengths are those
    /// `Masked::input_grad_plane` asserts (`dy` holds `mult` planes).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn input_grad_plane(
        m: &Masked,
        dy: &[f32],
        w: &[f32],
        mult: usize,
        dx: &mut [f32],
    ) {
        let mut v = 0;
        while v + 8 <= m.in_vectors {
            // SAFETY: the function's.
            unsafe { input_vectors::<8>(m, dy, w, mult, dx, v) };
            v += 8;
        }
        while v + 4 <= m.in_vectors {
            // SAFETY: the function's.
            unsafe { input_vectors::<4>(m, dy, w, mult, dx, v) };
            v += 4;
        }
        while v < m.in_vectors {
            // SAFETY: the function's.
            unsafe { input_vectors::<1>(m, dy, w, mult, dx, v) };
            v += 1;
        }
    }

    /// Input-gradient vectors `v0..v0 + U`.
    ///
    /// # Safety
    /// As [`input_grad_plane`], and `v0 + U <= m.in_vectors`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn input_vectors<const U: usize>(
        m: &Masked,
        dy: &[f32],
        w: &[f32],
        mult: usize,
        dx: &mut [f32],
        v0: usize,
    ) {
        let kk = m.offs.len();
        let mut acc = [_mm512_setzero_ps(); U];
        for q in 0..mult {
            let dy_q = dy[q * m.out_plane..].as_ptr();
            let masks = m.backward.chunks_exact(m.in_vectors.max(1));
            for ((&off, &wk), masks) in m.offs.iter().zip(&w[q * kk..]).zip(masks) {
                let wk = _mm512_set1_ps(wk);
                let masks: &[u16; U] = masks[v0..v0 + U].try_into().expect("U masks");
                for (u, (acc_u, &mask)) in acc.iter_mut().zip(masks).enumerate() {
                    // SAFETY: `backward`'s mask enables the lanes whose
                    // output pixel lies in plane `q` of `dy`.
                    let d = unsafe { load(mask, dy_q, at(v0 + u) - off) };
                    *acc_u = _mm512_fmadd_ps(wk, d, *acc_u);
                }
            }
        }
        for (u, acc_u) in acc.iter().enumerate() {
            let v = v0 + u;
            // SAFETY: as in `forward_vectors`, for `dx`.
            unsafe {
                _mm512_mask_storeu_ps(dx.as_mut_ptr().add(v * LANES), tail(dx.len(), v), *acc_u)
            };
        }
    }
}
