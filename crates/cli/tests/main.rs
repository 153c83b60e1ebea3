//! The crate's integration tests, one module per file of this folder.
//!
//! They build as one test binary: each binary of its own would link the
//! whole crate graph again and instantiate the same generic layers for
//! f32 and f64 again, which cost minutes of the test build on two cores.

mod bench_cli;
mod cli_errors;
mod demo_quick;
mod diagnose_history;
mod messages;
mod reliability;
mod test_files_declared;
mod train_resume;
