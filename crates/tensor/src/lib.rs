//! # gradlab-tensor
//!
//! The foundation of gradlab: [`Tensor<T>`], an owned row-major array over
//! [`ndarray::ArrayD`], generic over the [`Element`] types `f32` (training) and
//! `f64` (gradient checks). It provides NumPy-broadcasting element-wise ops,
//! reductions over chosen axes, reshaping and slicing, 2-D and batched matrix
//! products, and seeded random constructors that give the same numbers on
//! every machine. [`gemm`] is the one GEMM entry point every kernel in gradlab
//! goes through (matrixmultiply's `sgemm`/`dgemm`).
//!
//! Every operation that can be fed incompatible shapes returns a
//! [`TensorError`] that names them; nothing here panics on user data.
//!
//! Layout: one file per family of operations — `element.rs` (scalar types and
//! GEMM), `tensor.rs` (the type and constructors), `broadcast.rs` (binary ops),
//! `unary.rs`, `reduce.rs`, `shape_ops.rs`, `matmul.rs`, `random.rs`,
//! `memory.rs` (allocator settings for training loops).
//!
//! ```
//! use gradlab_tensor::Tensor;
//! let x = Tensor::<f32>::rand_normal(&[4, 3], 0.0, 1.0, 42)?;
//! let w = Tensor::<f32>::ones(&[3, 2]);
//! let y = x.matmul(&w)?.relu();
//! assert_eq!(y.shape(), &[4, 2]);
//! # Ok::<(), gradlab_tensor::TensorError>(())
//! ```

mod broadcast;
mod element;
mod error;
mod matmul;
mod memory;
mod random;
mod reduce;
mod shape_ops;
mod tensor;
mod unary;

pub use broadcast::{broadcast_shape, zip_broadcast};
pub use element::{gemm, Element};
pub use error::{Result, TensorError};
pub use memory::retain_freed_memory;
pub use random::seeded_rng;
pub use tensor::{Tensor, PARALLEL_MIN_ELEMENTS};
pub use unary::sigmoid;

pub use ndarray;
