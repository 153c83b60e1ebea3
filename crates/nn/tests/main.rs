//! The crate's integration tests, one module per file of this folder.
//!
//! They build as one test binary: each binary of its own would link the
//! whole crate graph again and instantiate the same generic layers for
//! f32 and f64 again, which cost minutes of the test build on two cores.

mod atomic_file;
mod batch_norm_builds;
mod checkpoint;
mod fusion;
mod gradcheck_layers;
mod guard;
mod module;
mod optim;
mod schedule;
mod train_bars;
