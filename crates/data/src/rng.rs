//! Seeded randomness that is the same on every machine.
//!
//! Every draw in this crate goes through [`stream_rng`]: a ChaCha8 generator
//! from [`gradlab_tensor::seeded_rng`], keyed by the user's seed mixed with a
//! fixed *domain* constant (so that, say, the label draws and the pixel draws
//! of one dataset are independent), and positioned on ChaCha's 64-bit stream
//! number (an example index, an epoch). Any example can therefore be produced
//! on its own, in any order, without generating the ones before it.
//!
//! Integer draws go through `u64` ranges and the Fisher-Yates shuffle is our
//! own, so nothing depends on the width of `usize`.

use gradlab_tensor::seeded_rng;
use rand::rngs::ChaCha8Rng;
use rand::RngExt;

/// Domains: one constant per independent use of a seed.
pub(crate) mod domain {
    pub const PATTERN_JITTER: u64 = 1;
    pub const PATTERN_NOISE: u64 = 2;
    pub const NOISE_IMAGE: u64 = 3;
    pub const NOISE_LABEL: u64 = 4;
    pub const CORRUPT_LABELS: u64 = 5;
    pub const SHUFFLE_LABELS: u64 = 6;
    pub const SUBSET: u64 = 7;
    pub const SPLIT: u64 = 8;
    pub const EPOCH: u64 = 9;
}

/// SplitMix64 finaliser: a bijective mix of 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator for `(seed, domain, stream)`.
pub(crate) fn stream_rng(seed: u64, domain: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = seeded_rng(mix64(seed ^ mix64(domain)));
    rng.set_stream(stream);
    rng
}

/// A uniform integer in `0..n` (`n >= 1`), independent of `usize`'s width.
pub(crate) fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    debug_assert!(n >= 1);
    // `n - 1` fits in u64 on every supported platform, and the result is < n.
    rng.random_range(0..=(n as u64 - 1)) as usize
}

/// A uniform `f64` in `[0, 1)`.
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    rng.random::<f64>()
}

/// Fisher-Yates shuffle with portable draws.
pub(crate) fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i + 1);
        items.swap(i, j);
    }
}

/// [`permutation`], with the memory for it checked and reserved fallibly:
/// an error naming `what` rather than an abort for an impossible `len`.
pub(crate) fn try_permutation(
    len: usize,
    rng: &mut ChaCha8Rng,
    what: impl Fn() -> String,
) -> crate::Result<Vec<usize>> {
    let mut order = crate::budget::try_range(len, what)?;
    shuffle(&mut order, rng);
    Ok(order)
}

/// `0..len` in the order of a seeded permutation.
pub(crate) fn permutation(len: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    shuffle(&mut order, rng);
    order
}

/// `(sin x, cos x)` from basic IEEE operations only, so the result is the
/// same on every platform (the standard library's `sin`/`cos` may differ in
/// the last bit between platforms). Accurate to about 1e-15 on `[-4, 4]`.
pub(crate) fn sin_cos(x: f64) -> (f64, f64) {
    // Reduce to [-pi/2, pi/2] so the Taylor series converges quickly.
    let pi = std::f64::consts::PI;
    let mut r = x % (2.0 * pi);
    if r > pi {
        r -= 2.0 * pi;
    } else if r < -pi {
        r += 2.0 * pi;
    }
    let (r, flip) = if r > pi / 2.0 {
        (pi - r, true)
    } else if r < -pi / 2.0 {
        (-pi - r, true)
    } else {
        (r, false)
    };
    let r2 = r * r;
    let mut term_s = r;
    let mut term_c = 1.0;
    let mut s = r;
    let mut c = 1.0;
    for n in 1..=12 {
        let n = n as f64;
        term_s *= -r2 / ((2.0 * n) * (2.0 * n + 1.0));
        term_c *= -r2 / ((2.0 * n - 1.0) * (2.0 * n));
        s += term_s;
        c += term_c;
    }
    if flip {
        (s, -c)
    } else {
        (s, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sin_cos_matches_std() {
        let mut x = -7.0;
        while x < 7.0 {
            let (s, c) = sin_cos(x);
            assert!((s - x.sin()).abs() < 1e-14, "sin {x}");
            assert!((c - x.cos()).abs() < 1e-14, "cos {x}");
            x += 0.0137;
        }
    }

    #[test]
    fn streams_and_domains_are_independent() {
        let a: u64 = stream_rng(1, 1, 0).random();
        let b: u64 = stream_rng(1, 1, 1).random();
        let c: u64 = stream_rng(1, 2, 0).random();
        let d: u64 = stream_rng(2, 1, 0).random();
        assert_eq!(a, stream_rng(1, 1, 0).random::<u64>());
        assert!(a != b && a != c && a != d && b != c);
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut rng = stream_rng(3, 0, 0);
        let mut p = permutation(100, &mut rng);
        assert_ne!(p, (0..100).collect::<Vec<_>>());
        p.sort_unstable();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
    }
}
