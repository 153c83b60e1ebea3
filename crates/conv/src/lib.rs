//! # gradlab-conv
//!
//! 2-D convolution and pooling kernels for CNNs over plain [`ndarray`] views,
//! forward and backward, with PyTorch's semantics and no autodiff needed:
//! anyone with NCHW arrays can take this crate alone.
//!
//! - [`Conv2dSpec`] holds a convolution's hyper-parameters, classifies it
//!   ([`ConvKind`]: standard, pointwise, depthwise, grouped), and counts its
//!   parameters and multiply-accumulates;
//! - [`conv2d`] and [`conv2d_backward`] (and [`conv2d_backward_params`],
//!   without the input gradient) are the fast kernels: im2col + GEMM
//!   (matrixmultiply through [`gradlab_tensor::gemm`]) for standard and
//!   grouped convolutions, one GEMM on the input planes for 1x1 convolutions,
//!   direct vectorisable loops for depthwise ones, rayon over images and
//!   planes, bit-identical results whatever the number of threads;
//! - [`reference`](mod@reference) holds the same two functions as plain nested loops, the
//!   oracle every fast kernel is tested against;
//! - [`max_pool2d`], [`avg_pool2d`] and [`global_avg_pool2d`] with their
//!   backward passes, specified by [`Pool2dSpec`].
//!
//! ## Kernel builds and `GRADLAB_ISA`
//!
//! The hand-written vectorised kernels (the direct convolution, its weight
//! gradient, the depthwise loops) are compiled three times, one per [`Isa`]:
//! `plain` (portable, separate multiply and add), `avx2` (AVX2 + FMA,
//! 256-bit vectors) and `avx512` (AVX-512F, 512-bit vectors and larger
//! register tiles). Each call runs the best build the CPU has, unless
//!
//! - the environment variable `GRADLAB_ISA=plain|avx2|avx512` asks for
//!   another (read once per process; an unknown value or a build the CPU
//!   cannot run is not an error: the best build runs and a note goes to
//!   stderr once), or
//! - the call is made inside [`with_isa`], which overrides both for the
//!   calling thread and returns [`ConvError::IsaUnsupported`] for a build
//!   the CPU cannot run (the tests use it to compare every build with the
//!   reference).
//!
//! [`Isa::current`] tells which build a call would run. Builds round
//! differently (fused or not, different summation orders), so their results
//! agree to rounding; one build gives the same bits whatever the number of
//! threads. The GEMMs (matrixmultiply) pick their own instruction set,
//! whatever the build.
//!
//! Every call that can be fed bad input returns a [`ConvError`] naming the
//! shapes and values involved; nothing here panics on user data. Views with
//! any strides are accepted (copied to row-major where a kernel needs it).
//!
//! Layout: `spec.rs` (the spec and every check on it), `error.rs`,
//! `im2col.rs` (im2col and its adjoint col2im), `gemm.rs` (matrix views for
//! the GEMM entry point), `conv2d/` (one file per kernel: `forward.rs`,
//! `backward.rs`, `pointwise.rs`, `depthwise.rs`, dispatch in `mod.rs`),
//! `pool.rs`, `reference.rs` (the naive oracle).
//!
//! ```
//! use gradlab_conv::{conv2d, conv2d_backward, reference, Conv2dSpec};
//! use ndarray::{Array1, Array4};
//! let spec = Conv2dSpec::new(4, 8, 3).padding(1).groups(2);
//! let x = Array4::from_shape_fn((2, 4, 6, 6), |(n, c, h, w)| (n + c * h) as f64 - w as f64);
//! let w = Array4::from_shape_fn(spec.weight_shape(), |(o, c, i, j)| (o + c) as f64 * 0.1 - (i * j) as f64);
//! let b = Array1::from_elem(8, 0.5);
//! let y = conv2d(x.view(), w.view(), Some(b.view()), &spec)?;
//! let oracle = reference::conv2d(x.view(), w.view(), Some(b.view()), &spec)?;
//! assert!(y.iter().zip(&oracle).all(|(a, b)| (a - b).abs() < 1e-9));
//! let grads = conv2d_backward(x.view(), w.view(), y.view(), &spec)?;
//! assert_eq!(grads.weight.shape(), &[8, 2, 3, 3]);
//! # Ok::<(), gradlab_conv::ConvError>(())
//! ```

mod conv2d;
mod error;
mod gemm;
mod im2col;
mod pool;
pub mod reference;
mod spec;

pub use conv2d::{
    conv2d, conv2d_backward, conv2d_backward_params, conv2d_gradients, with_isa, Conv2dGradients,
    Conv2dGrads, Conv2dParamGrads, GradsWanted, Isa,
};
#[doc(hidden)]
pub use conv2d::{madd, with_channel_direct, with_row_tiles, with_strided_direct};
pub use error::{ConvError, Result};
pub use pool::{
    avg_pool2d, avg_pool2d_backward, global_avg_pool2d, global_avg_pool2d_backward, max_pool2d,
    max_pool2d_backward, Pool2dSpec,
};
pub use spec::{Conv2dSpec, ConvKind};
