//! # gradlab (command line)
//!
//! The `gradlab` command: train, diagnose and compare convolutional
//! networks, and the demo report. The library side holds everything the
//! binary runs, so that tests and benches call the same code.
//!
//! Layout: `spec.rs` (the `name:key=value,...` grammar), `model_spec.rs`
//! and `data_spec.rs` (specs to networks and datasets), `commands/` (one
//! file per subcommand), `experiments/` (the four experiments of the demo),
//! `report.rs` and `charts.rs` (the HTML report and its SVG charts),
//! `output.rs` (atomic result files), `help.rs` (the SPEC grammar),
//! `progress.rs`, `terminal.rs` (tables and lists fitted to the terminal's
//! width), `ranks.rs` (the ranks of a data-parallel run: MPI when launched
//! by mpirun).

pub mod charts;
pub mod commands;
pub mod data_spec;
mod error;
pub mod experiments;
pub mod help;
pub mod model_spec;
pub mod output;
pub mod progress;
pub mod ranks;
pub mod report;
pub mod spec;
pub mod terminal;

pub use error::{CliError, Result};
