//! Memory budgets: sizes are checked against the machine's memory before
//! anything is allocated, so an impossible size is a [`DataError`] saying how
//! much memory it would need, not an abort from a failed allocation.
//!
//! The limit is the machine's physical memory (`MemTotal` in
//! `/proc/meminfo`), or [`FALLBACK_MEMORY_LIMIT`] where that cannot be read.
//! Physical memory rather than `MemAvailable`: whether a configuration is
//! valid should not change with what else happens to be running; a size
//! above the physical memory can never work, and an allocation below it that
//! fails anyway is caught by `try_reserve` ([`DataError::AllocationFailed`]).

use std::sync::OnceLock;

use crate::error::{DataError, Result};

/// The memory limit where `/proc/meminfo` cannot be read: 64 GiB.
pub const FALLBACK_MEMORY_LIMIT: u64 = 64 << 30;

/// The most memory, in bytes, a dataset may ask for: the machine's physical
/// memory (`MemTotal` in `/proc/meminfo`), or [`FALLBACK_MEMORY_LIMIT`] where
/// that cannot be read. Read once per process.
pub fn memory_limit() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| mem_total(&text))
            .unwrap_or(FALLBACK_MEMORY_LIMIT)
    })
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    if words.next() != Some("kB") {
        return None;
    }
    kib.checked_mul(1024).filter(|&b| b > 0)
}

/// The product of `factors` in bytes, saturating at `u128::MAX` (which is
/// then "more than any machine has", all the check needs).
pub(crate) fn bytes_of(factors: &[usize]) -> u128 {
    factors
        .iter()
        .try_fold(1u128, |acc, &f| acc.checked_mul(f as u128))
        .unwrap_or(u128::MAX)
}

/// An error unless `needed` bytes fit in [`memory_limit`]; `what` says what
/// they are for.
pub(crate) fn check_fits(needed: u128, what: impl FnOnce() -> String) -> Result<()> {
    let limit = memory_limit();
    if needed > u128::from(limit) {
        Err(DataError::TooMuchMemory {
            what: what(),
            needed,
            limit,
        })
    } else {
        Ok(())
    }
}

/// Checks the sizes of a synthetic classification dataset generated on
/// demand: one example (`example_bytes` to build a `[C, H, W]` image), the
/// order of an epoch (one index per example) and one score per class must
/// each fit in memory.
pub(crate) fn check_synthetic(
    what: &'static str,
    len: usize,
    num_classes: usize,
    shape: [usize; 3],
    example_bytes: u128,
) -> Result<()> {
    let [c, h, w] = shape;
    check_fits(example_bytes, || {
        format!("{what}: building one {c}x{h}x{w} image")
    })?;
    check_fits(bytes_of(&[len, std::mem::size_of::<usize>()]), || {
        format!("{what}: the order of an epoch over {len} examples")
    })?;
    check_fits(bytes_of(&[num_classes, std::mem::size_of::<f32>()]), || {
        format!("{what}: one score for each of {num_classes} classes")
    })
}

/// An empty vector with room for `len` items: checked against the limit, then
/// reserved with `try_reserve_exact`, so a size that cannot be had is an
/// error rather than an abort.
pub(crate) fn try_vec<T>(len: usize, what: impl Fn() -> String) -> Result<Vec<T>> {
    let needed = bytes_of(&[len, std::mem::size_of::<T>()]);
    check_fits(needed, &what)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| DataError::AllocationFailed {
            what: what(),
            needed,
        })?;
    Ok(v)
}

/// `0..len` collected into a vector, fallibly (see [`try_vec`]).
pub(crate) fn try_range(len: usize, what: impl Fn() -> String) -> Result<Vec<usize>> {
    let mut v = try_vec(len, what)?;
    v.extend(0..len);
    Ok(v)
}

/// Bytes in words: `1234 bytes (0.0 GiB)`, or "more than 2^128 bytes" for a
/// saturated count.
pub(crate) fn bytes_text(bytes: u128) -> String {
    if bytes == u128::MAX {
        "more than 2^128 bytes".to_string()
    } else {
        format!(
            "{bytes} bytes ({:.1} GiB)",
            bytes as f64 / (1u64 << 30) as f64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total() {
        let text = "MemTotal:       16303412 kB\nMemFree:  1 kB\n";
        assert_eq!(mem_total(text), Some(16_303_412 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: x kB\n"), None);
        assert_eq!(mem_total("MemTotal: 0 kB\n"), None);
    }

    #[test]
    fn products_saturate() {
        assert_eq!(bytes_of(&[2, 3, 4]), 24);
        assert_eq!(bytes_of(&[usize::MAX, usize::MAX, 4, 4]), u128::MAX);
        assert_eq!(bytes_text(u128::MAX), "more than 2^128 bytes");
        assert_eq!(bytes_text(1 << 30), "1073741824 bytes (1.0 GiB)");
    }

    #[test]
    fn vectors_beyond_the_limit_are_errors() {
        assert!(matches!(
            try_vec::<u64>(usize::MAX, || "x".into()),
            Err(DataError::TooMuchMemory { .. })
        ));
        assert_eq!(try_range(3, || "x".into()).unwrap(), [0, 1, 2]);
    }
}
