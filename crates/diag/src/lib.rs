//! # gradlab-diag
//!
//! Gradient-flow diagnostics that tell true vanishing or exploding gradients
//! apart from a model that has nothing learnable in its data, and say why,
//! with the numbers behind every verdict.
//!
//! The crate needs no model and no framework: it reads numbers that any
//! training loop can produce (per-layer gradient and weight RMS, the
//! per-example RMS of the activation gradient at each depth position, the
//! loss), through a [`Recorder`] once per step or from a `gradlab-history`
//! file ([`history_file`]), and [`diagnose`] turns the [`History`] into a
//! [`Diagnosis`]: a [`Verdict`], the reasons that quote each deciding value
//! and threshold, a confidence, the indicators and a per-layer table.
//! gradlab's own networks are recorded by `gradlab_train::ModelRecorder`;
//! `gradlab_train::run_diagnosed` is a complete loop with the data probe and
//! the label-shuffle control; a PyTorch loop writes the history file with
//! `python/gradlab_torch.py`.
//!
//! ## A loop of your own
//! A plain sigmoid network of 12 layers, written with `ndarray` alone and
//! initialised like PyTorch's `nn.Linear` (variance `1/(3 fan_in)`, no
//! biases), trained by hand: gradients shrink towards the input by about
//! the 1.95 nats per layer that mean-field theory predicts at the fixed point
//! of the pre-activation variance ([`depth_profile::mean_field`]), and the
//! diagnosis says so.
//!
//! ```
//! use gradlab_diag::{diagnose, Recorder, Verdict};
//! use ndarray::Array2;
//!
//! let (depth, width, inputs, classes, batch) = (12, 32, 16, 4, 64);
//! let mut state = 0x9e37_79b9_7f4a_7c15u64;
//! let mut uniform = move || {
//!     state ^= state << 13;
//!     state ^= state >> 7;
//!     state ^= state << 17;
//!     ((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 // in [-1, 1)
//! };
//! let x = Array2::from_shape_simple_fn((batch, inputs), || uniform() * 3f32.sqrt());
//! let labels: Vec<usize> = (0..batch).map(|i| (0..classes)
//!     .max_by(|&a, &b| x[[i, a]].total_cmp(&x[[i, b]])).unwrap()).collect();
//! let mut weights: Vec<Array2<f32>> = (0..depth)
//!     .map(|l| {
//!         let fan_in = if l == 0 { inputs } else { width };
//!         let fan_out = if l + 1 == depth { classes } else { width };
//!         let bound = 1.0 / (fan_in as f32).sqrt();
//!         Array2::from_shape_simple_fn((fan_in, fan_out), || uniform() * bound)
//!     })
//!     .collect();
//!
//! let mut recorder = Recorder::new(classes);
//! for step in 0..30 {
//!     // Forward: sigmoid hidden layers, linear output, softmax cross-entropy.
//!     let mut hs = vec![x.clone()];
//!     for w in &weights[..depth - 1] {
//!         let h = hs.last().unwrap().dot(w).mapv(|z| 1.0 / (1.0 + (-z).exp()));
//!         hs.push(h);
//!     }
//!     let mut d = hs.last().unwrap().dot(&weights[depth - 1]);
//!     let mut loss = 0.0;
//!     for (i, mut row) in d.rows_mut().into_iter().enumerate() {
//!         let m = row.fold(f32::MIN, |a, &b| a.max(b));
//!         row.mapv_inplace(|v| (v - m).exp());
//!         let s = row.sum();
//!         row.mapv_inplace(|v| v / s);
//!         loss -= (row[labels[i]] as f64).ln() / batch as f64;
//!         row[labels[i]] -= 1.0;
//!     }
//!     d /= batch as f32; // ∂L/∂logits of the mean loss
//!     // Backward by hand, output to input.
//!     let mut grads = vec![Array2::zeros((0, 0)); depth];
//!     let mut act_grads = Vec::new(); // ∂L/∂h at each hidden output, output first
//!     for l in (0..depth).rev() {
//!         grads[l] = hs[l].t().dot(&d);
//!         if l > 0 {
//!             let dh = d.dot(&weights[l].t());
//!             d = &dh * &hs[l].mapv(|h| h * (1.0 - h));
//!             act_grads.push(dh);
//!         }
//!     }
//!     act_grads.reverse();
//!     // Record between backward and update, input to output.
//!     let mut s = recorder.step(step, loss);
//!     for (l, (g, w)) in grads.iter().zip(&weights).enumerate() {
//!         s.layer(&format!("fc{l}"), g.as_slice().unwrap(), w.as_slice().unwrap());
//!     }
//!     for (l, dh) in act_grads.iter().enumerate() {
//!         s.position_gradient(&format!("h{}", l + 1), dh.as_slice().unwrap(), batch);
//!     }
//!     s.finish()?;
//!     for (w, g) in weights.iter_mut().zip(&grads) {
//!         w.scaled_add(-0.5, g);
//!     }
//! }
//! let diagnosis = diagnose(recorder.history())?;
//! assert_eq!(diagnosis.verdict, Verdict::Vanishing, "{:?}", diagnosis.reasons);
//! let kappa = diagnosis.indicators.kappa.unwrap();
//! let theory = gradlab_diag::depth_profile::mean_field(gradlab_diag::Activation::Sigmoid, 1.0 / 3.0, 0.0)?;
//! assert!((kappa - theory.kappa).abs() < 0.3, "κ = {kappa}, theory {}", theory.kappa);
//! # Ok::<(), gradlab_diag::DiagError>(())
//! ```
//!
//! Depth positions are one tap per layer (or per residual block), input to
//! output: passing both a linear layer's output and its activation's as
//! positions counts every layer twice and halves κ per position.
//!
//! Layout: `stats.rs` (shared statistics), one file per indicator family —
//! `depth_profile.rs` (κ, I4), `gradient_noise.rs` (SNR and cosines, I7-I9),
//! `activations.rs` (the [`Activation`], dead units and forward collapse,
//! I11-I12), `probe.rs` (the model-independent data probe on plain arrays,
//! I13) — then `verdict.rs` (the gated decision procedure), `recorder.rs`
//! (the step builder), `history.rs`, `history_file.rs` (the JSON Lines
//! file), `diagnose.rs`, `plot.rs` (SVG depth profiles). The crate's
//! `Result` alias lives in [`error`], not at the root, so that glob imports
//! of several gradlab crates do not collide on it.

pub mod activations;
pub mod depth_profile;
mod diagnose;
pub mod error;
pub mod gradient_noise;
mod history;
pub mod history_file;
pub mod plot;
pub mod probe;
mod recorder;
pub mod stats;
pub mod verdict;

pub use activations::Activation;
pub use diagnose::{diagnose, diagnose_with, DiagnoseOptions, Diagnosis};
pub use error::DiagError;
pub use history::{CheckRecord, DepthControl, History, RunInfo};
pub use history_file::{read_history, write_history, HistoryRead, HistoryWriter};
pub use probe::{data_probe, ProbeOptions, ProbeResult};
pub use recorder::{LayerStat, PositionStat, Recorder, StepBuilder, StepRecord};
pub use verdict::{decide, Decision, Indicators, Thresholds, Verdict};
