//! # gradlab-diag
//!
//! Gradient-flow diagnostics that tell true vanishing or exploding gradients
//! apart from a model that has nothing learnable in its data, and say why,
//! with the numbers behind every verdict.
//!
//! A training loop calls a [`Recorder`] once per step with the model (through
//! `gradlab_nn::HasParams`, never a concrete architecture), its parameter
//! gradients and the gradients of its tapped activations; [`diagnose`] turns
//! the [`History`] into a [`Diagnosis`]: a [`Verdict`], the reasons that
//! quote each deciding value and threshold, a confidence, the indicators and
//! a per-layer table. `gradlab_train::run_diagnosed` is a complete loop
//! with the data probe and the label-shuffle control.
//!
//! ```no_run
//! # use gradlab_diag::*;
//! # struct Batch { images: gradlab_tensor::Tensor<f32>, labels: Vec<usize> }
//! # fn demo(model: &mut dyn gradlab_nn::Module<f32>, batch: Batch,
//! #         opt: &mut dyn gradlab_nn::Optimizer<f32>) -> Result<()> {
//! let mut recorder = Recorder::new(RecorderOptions::default(), 10);
//! for step in 0..100 {
//!     let mut cx = gradlab_nn::Ctx::new().with_seed(step as u64);
//!     let x = cx.input(batch.images.clone());
//!     let logits = model.forward(&mut cx, x)?;
//!     let loss = gradlab_nn::cross_entropy(&mut cx, logits, &batch.labels, &Default::default())?;
//!     let (grads, tap_grads) = cx.backward_with_taps(loss)?;
//!     recorder.record(step, &*model, &cx, &grads, &tap_grads, None)?; // before the update
//!     opt.step(&mut *model, &grads)?;
//! }
//! let diagnosis = diagnose(recorder.history())?;
//! println!("{}: {}", diagnosis.verdict, diagnosis.reasons.join("; "));
//! # Ok(()) }
//! ```
//!
//! Layout: `stats.rs` (shared statistics), one file per indicator family —
//! `depth_profile.rs` (κ, I4), `gradient_noise.rs` (SNR and cosines, I7-I9),
//! `activations.rs` (dead units and forward collapse, I11-I12), `probe.rs`
//! (the model-independent data probe, I13) — then `verdict.rs` (the gated
//! decision procedure), `recorder.rs`, `history.rs`, `diagnose.rs`,
//! `plot.rs` (SVG depth profiles). The diagnosed training loop and the
//! scenario suite (runs whose right verdict is known by construction) live
//! in `gradlab-train`, which trains.

pub mod activations;
pub mod depth_profile;
mod diagnose;
mod error;
pub mod gradient_noise;
mod history;
pub mod plot;
pub mod probe;
mod recorder;
pub mod stats;
pub mod verdict;

pub use diagnose::{diagnose, diagnose_with, DiagnoseOptions, Diagnosis};
pub use error::{DiagError, Result};
pub use history::{CheckRecord, History};
pub use recorder::{LayerStat, PositionStat, Recorder, RecorderOptions, StepRecord};
pub use verdict::{decide, Decision, Indicators, Thresholds, Verdict};
