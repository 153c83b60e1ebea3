//! BatchNorm's passes over runs of consecutive (image, channel) planes,
//! each compiled once per kernel build (`gradlab_conv::Isa`, the build the
//! convolutions run), so that they use the CPU's widest vectors.
//!
//! A run holds whole planes of `s` values; plane `j` of a run starting at
//! plane `first` belongs to channel `(first + j) % c`. Running many small
//! planes per call (a MobileNet's 4x4 planes) keeps the per-call and
//! per-task costs off every plane.
//!
//! Sums are accumulated in `T` over [`LANES`] independent lanes (so the loop
//! vectorises) and moved into `f64` every [`BLOCK`] values (so a long plane
//! keeps close to `f64` accuracy: each lane adds at most `BLOCK / LANES`
//! values before its partial sum is flushed). A block's last partial chunk
//! of lanes is padded with values that add exact zeros, so it runs the same
//! vector code as the full chunks.

use std::mem::MaybeUninit;

use gradlab_conv::{isa_builds, madd};
use gradlab_tensor::Element;
use rayon::prelude::*;

/// Independent partial sums per accumulator.
const LANES: usize = 32;
/// Values summed in `T` before the lanes are flushed into `f64`.
const BLOCK: usize = 1024;
/// Values per element-wise chunk: a fixed trip count the compiler turns
/// into whole vectors, even for planes of 16 values.
const WIDE: usize = 64;
/// About how many values one parallel task handles (whole planes).
const TASK_VALUES: usize = 4 * 1024;

/// Whole planes of `s` values per parallel task.
pub(super) fn planes_per_task(s: usize) -> usize {
    (TASK_VALUES / s.max(1)).max(1)
}

/// Adds the lanes into `total` in `f64` and clears them: eight partial sums
/// of four lanes each, then a fixed tree (it vectorises; a chain of 32
/// dependent `f64` additions cost more than summing a small plane).
#[inline(always)]
fn flush<T: Element>(lanes: &mut [T; LANES], total: &mut f64) {
    const _: () = assert!(LANES == 32);
    let l = |i: usize| lanes[i].as_f64();
    let mut t = [0.0f64; 8];
    for (j, t) in t.iter_mut().enumerate() {
        *t = (l(j) + l(j + 8)) + (l(j + 16) + l(j + 24));
    }
    *lanes = [T::zero(); LANES];
    *total += ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]));
}

/// `values` padded to [`LANES`] with `pad`.
#[inline(always)]
fn padded<T: Element>(values: &[T], pad: T) -> [T; LANES] {
    let mut out = [pad; LANES];
    out[..values.len()].copy_from_slice(values);
    out
}

/// A chunk of exactly [`LANES`] values as an array.
#[inline(always)]
fn lanes<T>(chunk: &[T]) -> &[T; LANES] {
    chunk.try_into().expect("chunks of LANES values")
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

/// `[sum (x - k), sum (x - k)^2]` over one plane.
#[inline(always)]
fn shifted_sums_of<T: Element, const FMA: bool>(plane: &[T], k: T) -> [f64; 2] {
    let (mut s, mut q) = ([T::zero(); LANES], [T::zero(); LANES]);
    let mut total = [0.0f64; 2];
    let add = |s: &mut [T; LANES], q: &mut [T; LANES], x: &[T; LANES]| {
        for l in 0..LANES {
            let d = x[l] - k;
            s[l] = s[l] + d;
            q[l] = madd::<T, FMA>(q[l], d, d);
        }
    };
    for block in plane.chunks(BLOCK) {
        let chunks = block.chunks_exact(LANES);
        let rest = chunks.remainder();
        for x in chunks {
            add(&mut s, &mut q, lanes(x));
        }
        if !rest.is_empty() {
            // `x = k` adds `d = 0` to the unused lanes.
            add(&mut s, &mut q, &padded(rest, k));
        }
        flush(&mut s, &mut total[0]);
        flush(&mut q, &mut total[1]);
    }
    total
}

isa_builds! {
    /// `[sum (x - k), sum (x - k)^2]` per plane of the run `xs` (planes of
    /// `s` values, the first being plane `first`), `k = shift[channel]`.
    pub(super) fn shifted_sums<T: Element>(
        xs: &[T],
        s: usize,
        first: usize,
        shift: &[T],
        out: &mut [[f64; 2]],
    ) [FMA, _VB] {
        for (j, (plane, o)) in xs.chunks_exact(s).zip(out).enumerate() {
            *o = shifted_sums_of::<T, FMA>(plane, shift[(first + j) % shift.len()]);
        }
    }
}

/// `g` of one value: `dy`, or when `RELU`, `dy` masked by the ReLU that
/// followed the normalisation `[a, center, b]`. The output before the ReLU
/// is recomputed from `x` as the forward pass computed it (same operations,
/// same bits) rather than read from `y`: a BatchNorm pass is bound by
/// memory traffic, and `y` was two of the seven activation-sized reads
/// and writes of its backward.
#[inline(always)]
fn masked<T: Element, const RELU: bool>(dy: T, x: T, [a, center, b]: [T; 3]) -> T {
    if RELU {
        relu_masked(dy, a * (x - center) + b)
    } else {
        dy
    }
}

/// [`grad_sums`] over one plane, `g` as [`masked`] gives it.
#[inline(always)]
fn grad_sums_of<T: Element, const FMA: bool, const RELU: bool>(
    dy: &[T],
    x: &[T],
    mu: T,
    affine: [T; 3],
) -> [f64; 2] {
    let (mut s, mut q) = ([T::zero(); LANES], [T::zero(); LANES]);
    let mut total = [0.0f64; 2];
    let add = |s: &mut [T; LANES], q: &mut [T; LANES], dy: &[T; LANES], x: &[T; LANES]| {
        for l in 0..LANES {
            let g = masked::<T, RELU>(dy[l], x[l], affine);
            s[l] = s[l] + g;
            q[l] = madd::<T, FMA>(q[l], g, x[l] - mu);
        }
    };
    for (dy, x) in dy.chunks(BLOCK).zip(x.chunks(BLOCK)) {
        let (dyc, xc) = (dy.chunks_exact(LANES), x.chunks_exact(LANES));
        let rest = (dyc.remainder(), xc.remainder());
        for (dy, x) in dyc.zip(xc) {
            add(&mut s, &mut q, lanes(dy), lanes(x));
        }
        if !rest.0.is_empty() {
            // `dy = 0` and `x = mu` add zeros to the unused lanes.
            let (dy, x) = (padded(rest.0, T::zero()), padded(rest.1, mu));
            add(&mut s, &mut q, &dy, &x);
        }
        flush(&mut s, &mut total[0]);
        flush(&mut q, &mut total[1]);
    }
    total
}

isa_builds! {
    /// `[sum g, sum g (x - mu)]` per plane of the run (planes of `s` values,
    /// the first being plane `first`; `mu` per channel), with `g` the
    /// output gradient `dy`, masked by the ReLU that followed the
    /// normalisation `relu[channel] = [a, center, b]` when given
    /// ([`masked`]).
    pub(super) fn grad_sums<T: Element>(
        dy: &[T],
        relu: Option<&[[T; 3]]>,
        x: &[T],
        s: usize,
        first: usize,
        mu: &[T],
        out: &mut [[f64; 2]],
    ) [FMA, _VB] {
        let planes = dy.chunks_exact(s).zip(x.chunks_exact(s)).zip(out).enumerate();
        for (j, ((dy, x), o)) in planes {
            let ch = (first + j) % mu.len();
            *o = match relu {
                None => grad_sums_of::<T, FMA, false>(dy, x, mu[ch], [T::zero(); 3]),
                Some(aff) => grad_sums_of::<T, FMA, true>(dy, x, mu[ch], aff[ch]),
            };
        }
    }
}

/// `out[i] = f(a[i], b[i], c[i])` for every `i` (the inputs are at least
/// as long as `out`), in chunks of [`WIDE`] (whole vectors), then the
/// remainder.
#[inline(always)]
fn map3<T: Element>(out: &mut [MaybeUninit<T>], [a, b, c]: [&[T]; 3], f: impl Fn(T, T, T) -> T) {
    let n = out.len();
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    let mut oc = out.chunks_exact_mut(WIDE);
    let (ac, bc, cc) = (
        a.chunks_exact(WIDE),
        b.chunks_exact(WIDE),
        c.chunks_exact(WIDE),
    );
    let rest = (ac.remainder(), bc.remainder(), cc.remainder());
    for (((o, a), b), c) in (&mut oc).zip(ac).zip(bc).zip(cc) {
        for (((o, &a), &b), &c) in o.iter_mut().zip(a).zip(b).zip(c) {
            o.write(f(a, b, c));
        }
    }
    let tail = oc
        .into_remainder()
        .iter_mut()
        .zip(rest.0)
        .zip(rest.1)
        .zip(rest.2);
    for (((o, &a), &b), &c) in tail {
        o.write(f(a, b, c));
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

/// [`dx_planes`] over one plane, `g` as [`masked`] gives it.
#[inline(always)]
fn dx_plane_of<T: Element, const RELU: bool>(
    out: &mut [MaybeUninit<T>],
    dy: &[T],
    x: &[T],
    c: DxCoef<T>,
    affine: [T; 3],
) {
    map3(out, [dy, x, x], |dy, x, _| {
        let g = masked::<T, RELU>(dy, x, affine);
        c.k * g + c.kx * (x - c.mu) + c.k0
    });
}

isa_builds! {
    /// `out = k g + kx (x - mu) + k0` per plane of the run (planes of `s`
    /// values, the first being plane `first`; coefficients per channel),
    /// `g` as in [`grad_sums`]; writes every element of `out` (`dy` and
    /// `x` are as long).
    pub(super) fn dx_planes<T: Element>(
        out: &mut [MaybeUninit<T>],
        dy: &[T],
        relu: Option<&[[T; 3]]>,
        x: &[T],
        s: usize,
        first: usize,
        coef: &[DxCoef<T>],
    ) [_FMA, _VB] {
        for (j, o) in out.chunks_exact_mut(s).enumerate() {
            let (ch, r) = ((first + j) % coef.len(), j * s..(j + 1) * s);
            let (c, dy, x) = (coef[ch], &dy[r.clone()], &x[r]);
            match relu {
                None => dx_plane_of::<T, false>(o, dy, x, c, [T::zero(); 3]),
                Some(aff) => dx_plane_of::<T, true>(o, dy, x, c, aff[ch]),
            }
        }
    }
}

/// [`affine_planes`] over one plane, with the addition of `skip` when
/// `SKIP` (else `skip` is unread) and the ReLU when `RELU`.
#[inline(always)]
fn affine_plane_of<T: Element, const SKIP: bool, const RELU: bool>(
    out: &mut [MaybeUninit<T>],
    x: &[T],
    skip: &[T],
    [a, center, b]: [T; 3],
) {
    let zero = T::zero();
    map3(out, [x, skip, x], |x, k, _| {
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
        v
    });
}

isa_builds! {
    /// `out = a (x - center) + b` per plane of the run (planes of `s`
    /// values, the first being plane `first`; `coef = [a, center, b]` per
    /// channel; centring first keeps precision when the mean is large),
    /// plus `skip` when given, then the ReLU when `relu`; writes every
    /// element of `out` (`x` and `skip` are as long).
    pub(super) fn affine_planes<T: Element>(
        out: &mut [MaybeUninit<T>],
        x: &[T],
        skip: Option<&[T]>,
        relu: bool,
        s: usize,
        first: usize,
        coef: &[[T; 3]],
    ) [_FMA, _VB] {
        for (j, o) in out.chunks_exact_mut(s).enumerate() {
            let (c, r) = (coef[(first + j) % coef.len()], j * s..(j + 1) * s);
            let x = &x[r.clone()];
            match (skip, relu) {
                (Some(k), true) => affine_plane_of::<T, true, true>(o, x, &k[r], c),
                (Some(k), false) => affine_plane_of::<T, true, false>(o, x, &k[r], c),
                (None, true) => affine_plane_of::<T, false, true>(o, x, x, c),
                (None, false) => affine_plane_of::<T, false, false>(o, x, x, c),
            }
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
