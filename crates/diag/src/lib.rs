//! # gradlab-diag
//!
//! Gradient-flow diagnostics that tell true vanishing or exploding gradients
//! apart from a model that has nothing learnable in its data, and say why,
//! with the numbers behind every verdict.
//!
//! Layout: `stats.rs` (shared statistics), one file per indicator family —
//! `depth_profile.rs` (κ, I4), `gradient_noise.rs` (SNR and cosines, I7-I9),
//! `activations.rs` (dead units and forward collapse, I11-I12), `probe.rs`
//! (the model-independent data probe, I13) — and `verdict.rs` (the gated
//! decision procedure).

pub mod activations;
pub mod depth_profile;
mod error;
pub mod gradient_noise;
pub mod probe;
pub mod stats;
pub mod verdict;

pub use error::{DiagError, Result};
pub use verdict::{decide, Decision, Indicators, Thresholds, Verdict};
