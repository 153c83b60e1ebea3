//! What the vectorised kernels share: the run-time CPU check that picks their
//! AVX2+FMA builds, and the multiply-add those builds fuse.
//!
//! The kernels are written once as plain loops over fixed-size arrays
//! (`#[inline(always)]`, generic over a `const FMA: bool`) and compiled twice:
//! as is, and inside a `#[target_feature(enable = "avx2,fma")]` function where
//! the compiler keeps the arrays in 256-bit registers. The choice is made per
//! machine, so one machine always gets the same bits.

use gradlab_tensor::Element;

/// Whether the CPU has AVX2 and FMA (checked once, then cached by std).
#[inline]
pub(crate) fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `acc + a * b`, fused (one rounding) when `FMA`.
#[inline(always)]
pub(crate) fn madd<T: Element, const FMA: bool>(acc: T, a: T, b: T) -> T {
    if FMA {
        a.mul_add(b, acc)
    } else {
        acc + a * b
    }
}
