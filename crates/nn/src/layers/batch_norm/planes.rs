//! BatchNorm's passes over one (image, channel) plane, each compiled once
//! per kernel build (`gradlab_conv::Isa`, the build the convolutions run),
//! so that they use the CPU's widest vectors.
//!
//! Sums are accumulated in `T` over [`LANES`] independent lanes (so the loop
//! vectorises) and moved into `f64` every [`BLOCK`] values (so a long plane
//! keeps close to `f64` accuracy: each lane adds at most `BLOCK / LANES`
//! values before its partial sum is flushed).

use std::mem::MaybeUninit;

use gradlab_conv::{isa_builds, madd};
use gradlab_tensor::Element;
use rayon::prelude::*;

/// Independent partial sums per accumulator.
const LANES: usize = 32;
/// Values summed in `T` before the lanes are flushed into `f64`.
const BLOCK: usize = 1024;

/// Adds the lanes into `total` in `f64` and clears them.
#[inline(always)]
fn flush<T: Element>(lanes: &mut [T; LANES], total: &mut f64) {
    let mut s = 0.0;
    for l in lanes.iter_mut() {
        s += l.as_f64();
        *l = T::zero();
    }
    *total += s;
}

/// `dy` masked by the ReLU that produced `y`: `dy` where `y > 0`, else
/// `0 * dy` (the bits the separate ReLU op's backward gives, NaN included).
#[inline(always)]
pub(super) fn relu_masked<T: Element>(dy: T, y: T) -> T {
    let zero = T::zero();
    if y > zero {
        dy
    } else {
        zero * dy
    }
}

isa_builds! {
    /// `[sum (x - k), sum (x - k)^2]` over `plane`.
    pub(super) fn shifted_sums<T: Element>(plane: &[T], k: T, out: &mut [f64; 2]) [FMA, _VB] {
        let (mut s, mut q) = ([T::zero(); LANES], [T::zero(); LANES]);
        let mut total = [0.0f64; 2];
        for block in plane.chunks(BLOCK) {
            let lanes = block.chunks_exact(LANES);
            let rest = lanes.remainder();
            for x in lanes {
                for l in 0..LANES {
                    let d = x[l] - k;
                    s[l] = s[l] + d;
                    q[l] = madd::<T, FMA>(q[l], d, d);
                }
            }
            for (l, &x) in rest.iter().enumerate() {
                let d = x - k;
                s[l] = s[l] + d;
                q[l] = madd::<T, FMA>(q[l], d, d);
            }
            flush(&mut s, &mut total[0]);
            flush(&mut q, &mut total[1]);
        }
        *out = total;
    }
}

/// [`grad_sums`] with `g = relu_masked(dy, y)` when `MASK`, else `g = dy`
/// (`y` unread).
#[inline(always)]
fn grad_sums_of<T: Element, const FMA: bool, const MASK: bool>(
    dy: &[T],
    y: &[T],
    x: &[T],
    mu: T,
) -> [f64; 2] {
    let (mut s, mut q) = ([T::zero(); LANES], [T::zero(); LANES]);
    let mut total = [0.0f64; 2];
    let g = |d: T, y: T| if MASK { relu_masked(d, y) } else { d };
    for ((dy, y), x) in dy.chunks(BLOCK).zip(y.chunks(BLOCK)).zip(x.chunks(BLOCK)) {
        let lanes = dy
            .chunks_exact(LANES)
            .zip(y.chunks_exact(LANES))
            .zip(x.chunks_exact(LANES));
        for ((dy, y), x) in lanes {
            for l in 0..LANES {
                let g = g(dy[l], y[l]);
                s[l] = s[l] + g;
                q[l] = madd::<T, FMA>(q[l], g, x[l] - mu);
            }
        }
        let done = dy.len() / LANES * LANES;
        let rest = dy[done..].iter().zip(&y[done..]).zip(&x[done..]);
        for (l, ((&dy, &y), &x)) in rest.enumerate() {
            let g = g(dy, y);
            s[l] = s[l] + g;
            q[l] = madd::<T, FMA>(q[l], g, x - mu);
        }
        flush(&mut s, &mut total[0]);
        flush(&mut q, &mut total[1]);
    }
    total
}

isa_builds! {
    /// `[sum g, sum g (x - mu)]` over a plane, with `g` the output gradient
    /// `dy`, masked by the ReLU's output `y` when given ([`relu_masked`]).
    pub(super) fn grad_sums<T: Element>(
        dy: &[T],
        y: Option<&[T]>,
        x: &[T],
        mu: T,
        out: &mut [f64; 2],
    ) [FMA, _VB] {
        *out = match y {
            Some(y) => grad_sums_of::<T, FMA, true>(dy, y, x, mu),
            None => grad_sums_of::<T, FMA, false>(dy, dy, x, mu),
        };
    }
}

/// The per-channel coefficients of BatchNorm's input gradient,
/// `dx = k g + kx (x - mu) + k0`.
#[derive(Clone, Copy)]
pub(super) struct DxCoef<T> {
    pub k: T,
    pub kx: T,
    pub k0: T,
    pub mu: T,
}

/// [`dx_plane`] with `g = relu_masked(dy, y)` when `MASK`, else `g = dy`.
#[inline(always)]
fn dx_plane_of<T: Element, const MASK: bool>(
    out: &mut [MaybeUninit<T>],
    dy: &[T],
    y: &[T],
    x: &[T],
    c: DxCoef<T>,
) {
    let values = out.iter_mut().zip(dy).zip(y).zip(x);
    for (((o, &d), &y), &x) in values {
        let g = if MASK { relu_masked(d, y) } else { d };
        o.write(c.k * g + c.kx * (x - c.mu) + c.k0);
    }
}

isa_builds! {
    /// `out = k g + kx (x - mu) + k0` over a plane, `g` as in [`grad_sums`];
    /// writes every element of `out` (`dy`, `y` and `x` are as long).
    pub(super) fn dx_plane<T: Element>(
        out: &mut [MaybeUninit<T>],
        dy: &[T],
        y: Option<&[T]>,
        x: &[T],
        coef: DxCoef<T>,
    ) [_FMA, _VB] {
        match y {
            Some(y) => dx_plane_of::<T, true>(out, dy, y, x, coef),
            None => dx_plane_of::<T, false>(out, dy, dy, x, coef),
        }
    }
}

/// [`affine_plane`] with the addition of `skip` when `SKIP` (else `skip`
/// is unread) and the ReLU when `RELU`.
#[inline(always)]
fn affine_plane_of<T: Element, const SKIP: bool, const RELU: bool>(
    out: &mut [MaybeUninit<T>],
    x: &[T],
    skip: &[T],
    [a, center, b]: [T; 3],
) {
    let zero = T::zero();
    for ((o, &x), &k) in out.iter_mut().zip(x).zip(skip) {
        let mut v = a * (x - center) + b;
        if SKIP {
            // The addition after the normalisation: `bn(x) + skip`.
            v = v + k;
        }
        if RELU {
            // The ReLU's forward: `x <= 0` gives 0, NaN passes. A select,
            // not a conditional store, so it vectorises.
            v = if v <= zero { zero } else { v };
        }
        o.write(v);
    }
}

isa_builds! {
    /// `out = a (x - center) + b` over a plane (centring first keeps
    /// precision when the mean is large), plus `skip` when given, then the
    /// ReLU when `relu`; writes every element of `out` (`x` and `skip` are
    /// as long).
    pub(super) fn affine_plane<T: Element>(
        out: &mut [MaybeUninit<T>],
        x: &[T],
        skip: Option<&[T]>,
        relu: bool,
        coef: [T; 3],
    ) [_FMA, _VB] {
        match (skip, relu) {
            (Some(k), true) => affine_plane_of::<T, true, true>(out, x, k, coef),
            (Some(k), false) => affine_plane_of::<T, true, false>(out, x, k, coef),
            (None, true) => affine_plane_of::<T, false, true>(out, x, x, coef),
            (None, false) => affine_plane_of::<T, false, false>(out, x, x, coef),
        }
    }
}

/// A vector of `len` values written in parallel, chunk after chunk of
/// `chunk` values, by `write(chunk index, chunk)`, without zeroing it first
/// (a zeroing pass was serial, on the calling thread, and took about as
/// long as the writing).
///
/// # Safety
/// `write` must initialise every element of the chunk it is given.
pub(super) unsafe fn written_in_chunks<T: Element>(
    len: usize,
    chunk: usize,
    write: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, c)| write(i, c));
    // SAFETY: the chunks cover `..len`, and the caller guarantees that
    // `write` initialised every element of each.
    unsafe { out.set_len(len) };
    out
}
