//! The one place that picks which build of the vectorised kernels runs: the
//! [`Isa`] builds, their detection, the `GRADLAB_ISA` override and
//! [`with_isa`], and the [`isa_builds!`] macro that compiles a kernel once
//! per build.
//!
//! The kernels are written once as plain loops over fixed-size arrays
//! (`#[inline(always)]`, generic over `const FMA: bool` and their tile
//! sizes) and compiled three times: as is, inside a
//! `#[target_feature(enable = "avx2,fma")]` function where the compiler keeps
//! the arrays in 256-bit registers, and inside an `avx512f` one (512-bit
//! registers, 32 of them, so the tiles are larger). Every call of
//! `conv2d`/`conv2d_backward` resolves the build once, on the calling thread,
//! and hands it down to every kernel it runs (on whatever rayon thread), so
//! one call never mixes builds and one build always gives the same bits.

use std::any::TypeId;
use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use gradlab_tensor::Element;

use crate::error::{ConvError, Result};

/// A build of the vectorised convolution kernels.
///
/// The builds differ in rounding (only [`Isa::Plain`] rounds products and
/// sums separately) and in tile sizes (hence summation order), so results
/// agree across builds to rounding, and are the same bits for one build
/// whatever the number of threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Portable loops, separate multiply and add; runs on every CPU.
    Plain,
    /// x86-64 AVX2 with fused multiply-add, 256-bit vectors.
    Avx2,
    /// x86-64 AVX-512 Foundation (with AVX2 and FMA), 512-bit vectors.
    Avx512,
}

impl Isa {
    /// Every build, from the most portable.
    pub const ALL: [Isa; 3] = [Isa::Plain, Isa::Avx2, Isa::Avx512];

    /// The name `GRADLAB_ISA` and [`FromStr`] accept.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Plain => "plain",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the build (checked once, then cached by std).
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Plain => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.is_supported() && std::arch::is_x86_feature_detected!("avx512f")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The builds this CPU can run, from the most portable.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
    }

    /// The fastest build this CPU can run.
    pub fn best() -> Isa {
        *Isa::available().last().unwrap_or(&Isa::Plain)
    }

    /// The build a convolution called on this thread now runs: the one set
    /// by an enclosing [`with_isa`], otherwise the one `GRADLAB_ISA` asks
    /// for, otherwise [`Isa::best`].
    ///
    /// `GRADLAB_ISA` (`plain`, `avx2` or `avx512`) is read once per process.
    /// A value that is not a build's name, or a build this CPU cannot run,
    /// does not fail: the best build runs instead, and a note saying so is
    /// printed once on stderr.
    pub fn current() -> Isa {
        OVERRIDE.with(Cell::get).unwrap_or_else(from_env)
    }

    /// Bytes per vector register of the build (the plain build is tiled like
    /// the AVX2 one).
    pub const fn vector_bytes(self) -> usize {
        match self {
            Isa::Plain | Isa::Avx2 => 32,
            Isa::Avx512 => 64,
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = ConvError;

    /// Parses a build's [name](Isa::name), ignoring ASCII case and
    /// surrounding blanks.
    ///
    /// # Errors
    /// [`ConvError::UnknownIsa`] for any other string.
    fn from_str(s: &str) -> Result<Isa> {
        let s = s.trim();
        Isa::ALL
            .into_iter()
            .find(|i| i.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ConvError::UnknownIsa {
                value: s.to_string(),
            })
    }
}

thread_local! {
    /// The build [`with_isa`] set for this thread, if any.
    static OVERRIDE: Cell<Option<Isa>> = const { Cell::new(None) };
}

/// The build `GRADLAB_ISA` selects (or the best one), resolved once.
fn from_env() -> Isa {
    static CHOSEN: OnceLock<Isa> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let best = Isa::best();
        let Some(raw) = std::env::var_os("GRADLAB_ISA") else {
            return best;
        };
        let raw = raw.to_string_lossy();
        match raw.parse::<Isa>() {
            Ok(isa) if isa.is_supported() => isa,
            Ok(isa) => {
                eprintln!("gradlab-conv: GRADLAB_ISA={isa}: this CPU cannot run it; using {best}");
                best
            }
            Err(_) => {
                eprintln!(
                    "gradlab-conv: GRADLAB_ISA={raw:?} is not one of plain, avx2, avx512; using {best}"
                );
                best
            }
        }
    })
}

/// Runs `f` with every convolution it calls on this thread using the build
/// `isa`, whatever `GRADLAB_ISA` says; the previous choice is restored
/// afterwards (also when `f` panics). Meant for tests and benches comparing
/// builds: unlike the environment variable, it affects this thread only, so
/// tests running in parallel do not disturb each other. (Convolutions called
/// from other threads that `f` starts are not affected; the kernels' own
/// rayon tasks are, as the build is fixed when the convolution is called.)
///
/// # Errors
/// [`ConvError::IsaUnsupported`] when this CPU cannot run `isa` (`f` is not
/// called).
///
/// # Examples
/// ```
/// use gradlab_conv::{conv2d, with_isa, Conv2dSpec, Isa};
/// use ndarray::Array4;
/// let spec = Conv2dSpec::new(2, 3, 3).padding(1);
/// let x = Array4::<f64>::ones((1, 2, 20, 20));
/// let w = Array4::<f64>::ones(spec.weight_shape());
/// for isa in Isa::available() {
///     let y = with_isa(isa, || conv2d(x.view(), w.view(), None, &spec))??;
///     assert_eq!(y[[0, 0, 5, 5]], 18.0);
/// }
/// # Ok::<(), gradlab_conv::ConvError>(())
/// ```
pub fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> Result<R> {
    if !isa.is_supported() {
        return Err(ConvError::IsaUnsupported {
            isa,
            available: Isa::available(),
        });
    }
    Ok(super::with_thread_local(&OVERRIDE, Some(isa), f))
}

// The kernels written with AVX-512 intrinsics (`rows.rs`, the weight
// gradient of `direct.rs`) take f32 slices; the generic code hands them
// its `T` slices through these views.

/// `s` as f32 when `T` is f32.
pub(crate) fn as_f32<T: 'static>(s: &[T]) -> Option<&[f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>()).then(|| {
        // SAFETY: `T` is `f32` (the same `TypeId`), so the memory of `s`
        // holds `s.len()` f32 values.
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) }
    })
}

/// `s` as f32 when `T` is f32.
pub(crate) fn as_f32_mut<T: 'static>(s: &mut [T]) -> Option<&mut [f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>()).then(|| {
        // SAFETY: as in `as_f32`; the borrow of `s` is handed on.
        unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) }
    })
}

/// `acc + a * b`, fused (one rounding) when `FMA`.
#[inline(always)]
pub fn madd<T: Element, const FMA: bool>(acc: T, a: T, b: T) -> T {
    if FMA {
        a.mul_add(b, acc)
    } else {
        acc + a * b
    }
}

/// Defines `fn $name<T: Element>(isa: Isa, args...)` that runs `$body`
/// compiled once per [`Isa`] build. In `$body` the constants `$fma: bool`
/// (whether to fuse multiply-adds, see [`madd`]) and `$vb: usize`
/// ([`Isa::vector_bytes`]) describe the build, so the body picks its const
/// tile sizes from them.
///
/// Exported (hidden) so that other crates' vectorised loops, such as
/// BatchNorm's, run in the same build as the convolutions (the caller
/// has `gradlab_tensor::Element` in scope).
#[doc(hidden)]
#[macro_export]
macro_rules! isa_builds {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident<T: Element>($($arg:ident: $ty:ty),* $(,)?)
        [$fma:ident, $vb:ident] $body:block
    ) => {
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<T: Element>(isa: $crate::Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx2<T: Element>($($arg: $ty),*) {
                const $fma: bool = true;
                const $vb: usize = $crate::Isa::Avx2.vector_bytes();
                $body
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx512<T: Element>($($arg: $ty),*) {
                const $fma: bool = true;
                const $vb: usize = $crate::Isa::Avx512.vector_bytes();
                $body
            }
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn plain<T: Element>($($arg: $ty),*) {
                const $fma: bool = false;
                const $vb: usize = $crate::Isa::Plain.vector_bytes();
                $body
            }
            match isa {
                #[cfg(target_arch = "x86_64")]
                $crate::Isa::Avx2 => {
                    debug_assert!(isa.is_supported());
                    // SAFETY: an `Isa` other than `Plain` reaches the kernels
                    // only once `is_supported` said the CPU runs it (see
                    // `with_isa` and `Isa::current`).
                    unsafe { avx2::<T>($($arg),*) }
                }
                #[cfg(target_arch = "x86_64")]
                $crate::Isa::Avx512 => {
                    debug_assert!(isa.is_supported());
                    // SAFETY: as above.
                    unsafe { avx512::<T>($($arg),*) }
                }
                _ => plain::<T>($($arg),*),
            }
        }
    };
}
pub(crate) use crate::isa_builds;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_views_only_of_f32() {
        assert_eq!(as_f32(&[1.0f32, 2.0]), Some(&[1.0f32, 2.0][..]));
        assert_eq!(as_f32(&[1.0f64]), None);
        assert!(as_f32_mut(&mut [1.0f64]).is_none());
    }
}
