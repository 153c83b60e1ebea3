//! # gradlab-dist
//!
//! Communication for data-parallel training: each rank computes gradients on
//! its share of a batch, the ranks sum them with an all-reduce, and every
//! rank takes the same optimizer step.
//!
//! - [`Communicator`]: an object-safe, `Send` trait — [`rank`] and [`size`],
//!   [`all_reduce_sum_f32`] / [`all_reduce_sum_f64`], [`broadcast_f32`] /
//!   [`broadcast_f64`], [`broadcast_bytes`] (variable length), [`barrier`],
//!   and [`abort`] with `MPI_Abort` semantics.
//! - Three implementations: [`LocalComm`] (one rank, every collective a
//!   no-op), [`ThreadComm`] (N ranks as threads of one process, sharing
//!   memory; [`run_ranks`] runs a closure on each) and `MpiComm` (one rank per
//!   MPI process, through rsmpi, behind the `mpi` cargo feature, which needs
//!   an MPI library and libclang to build).
//! - [`check_same_config`]: every rank learns whether any rank runs with a
//!   configuration other than rank 0's.
//!
//! **Sums are reproducible.** Every all-reduce adds, element by element,
//! rank 0's value, then rank 1's, ..., then rank N-1's, on every rank and in
//! every implementation, so the same inputs give the same bits run after
//! run, on every rank, over threads or MPI alike. Mismatched calls (another
//! collective, another root, another length) are detected from headers that
//! all ranks exchange first, so every rank gets the same [`DistError`]; a
//! rank of a thread group that panics, aborts or drops its communicator
//! makes the others' collectives return an error instead of hanging.
//!
//! Layout: `communicator.rs` (the trait and [`check_same_config`]),
//! `protocol.rs` (headers, their checks and the rank-order sum that all
//! implementations share), one file per implementation (`local.rs`,
//! `thread.rs`, `mpi_comm.rs`), `error.rs`.
//!
//! ```
//! use gradlab_dist::{run_ranks, Communicator, DistError};
//!
//! // Four ranks each hold the gradient of their share of a batch.
//! let means = run_ranks(4, |comm| -> Result<Vec<f32>, DistError> {
//!     let mut grad = vec![comm.rank() as f32; 3];
//!     comm.all_reduce_sum_f32(&mut grad)?;
//!     let n = comm.size() as f32;
//!     Ok(grad.iter().map(|g| g / n).collect())
//! })?;
//! for mean in means {
//!     assert_eq!(mean?, [1.5, 1.5, 1.5]); // (0 + 1 + 2 + 3) / 4
//! }
//! # Ok::<(), DistError>(())
//! ```
//!
//! [`rank`]: Communicator::rank
//! [`size`]: Communicator::size
//! [`all_reduce_sum_f32`]: Communicator::all_reduce_sum_f32
//! [`all_reduce_sum_f64`]: Communicator::all_reduce_sum_f64
//! [`broadcast_f32`]: Communicator::broadcast_f32
//! [`broadcast_f64`]: Communicator::broadcast_f64
//! [`broadcast_bytes`]: Communicator::broadcast_bytes
//! [`barrier`]: Communicator::barrier
//! [`abort`]: Communicator::abort

mod communicator;
mod error;
mod local;
#[cfg(feature = "mpi")]
mod mpi_comm;
mod protocol;
mod thread;

pub use communicator::{check_same_config, Communicator};
pub use error::DistError;
pub use local::LocalComm;
#[cfg(feature = "mpi")]
pub use mpi_comm::MpiComm;
pub use thread::{run_ranks, ThreadComm};
