//! One file per subcommand.

pub mod bench;
pub mod conv_table;
pub mod demo;
pub mod diagnose;
pub mod summary;
pub mod train;
