//! # gradlab-nn
//!
//! Trainable layers on top of [`gradlab_autodiff`] and the
//! [`gradlab_conv`] kernels: modules with stable dotted parameter names,
//! CNN layers, BatchNorm, losses, optimizers, learning-rate schedules and
//! crash-safe safetensors checkpoints. Everything is generic over
//! [`Element`](gradlab_tensor::Element): `f32` to train, `f64` to gradcheck.
//!
//! ## The model contract
//! - A [`Param`] is a named tensor: its full dotted name
//!   (`features.3.conv1.weight`) is fixed at construction by a [`Scope`]
//!   (`scope.pp("features").pp(3)`, like candle's `VarBuilder::pp`), with a
//!   [`Role`] (weight, bias, gamma, beta, or a buffer such as BatchNorm's
//!   running statistics) and a depth index (its layer's position from
//!   input, 0, to output) taken from a counter the scopes of one model share.
//! - [`HasParams`] is the narrow, object-safe view that optimizers,
//!   checkpoints and diagnostics share: visit every `&Param` / `&mut Param`
//!   in a fixed, input-to-output order.
//! - [`Module`] adds `forward(&mut self, &mut Ctx, Var) -> Result<Var>`
//!   (mutable so BatchNorm updates its running statistics in training),
//!   a train/eval mode, and [`Module::describe`]: the leaf layers as
//!   [`LayerInfo`] (name, [`LayerKind`], parameters), so summaries need not
//!   know the concrete layer types.
//! - A [`Ctx`] is one step: the autodiff graph, the leaf bound to each
//!   parameter used (by name), the activations each layer taps under its
//!   name, and a seed stream for dropout. [`Ctx::backward`] returns a
//!   [`GradMap`] (`name -> gradient`, plus the loss) that clipping, the
//!   non-finite guard, optimizers and diagnostics read;
//!   [`Ctx::backward_with_taps`] also keeps every tapped activation's gradient.
//!
//! ## A training step
//! ```
//! use gradlab_conv::{Conv2dSpec, Pool2dSpec};
//! use gradlab_nn::*;
//! use gradlab_tensor::Tensor;
//! let root = Scope::new(0);
//! let mut model = Sequential::<f32>::new(&root);
//! model
//!     .add(|s| Conv2d::new(s, Conv2dSpec::new(1, 4, 3).padding(1), Conv2dConfig::kaiming_no_bias()))?
//!     .add(|s| BatchNorm2d::new(s, 4, BatchNormConfig::default()))?
//!     .add(|s| Ok(Activation::relu(s)))?
//!     .add(|s| Ok(GlobalAvgPool2d::new(s)))?
//!     .add(|s| Linear::new(s, 4, 2, LinearConfig::default()))?;
//! let mut opt = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() })?;
//! let schedule = CosineAnnealing::new(0.1, 0.0, 100)?;
//! let (images, labels) = (Tensor::rand_normal(&[8, 1, 6, 6], 0.0, 1.0, 1)?, vec![0, 1, 0, 1, 0, 1, 0, 1]);
//!
//! for step in 0..3u64 {
//!     let mut cx = Ctx::new().with_seed(step);
//!     let x = cx.input(images.clone());
//!     let logits = model.forward(&mut cx, x)?;
//!     let loss = cross_entropy(&mut cx, logits, &labels, &CrossEntropyOptions::default())?;
//!     let mut grads = cx.backward(loss)?;
//!     let _norm = clip_grad_norm(&mut grads, 5.0)?;
//!     opt.set_lr(schedule.lr(step));
//!     opt.step(&mut model, &grads)?; // NaN/inf -> Err naming the parameter, nothing changed
//! }
//! # Ok::<(), NnError>(())
//! ```
//!
//! ## Layout
//! One layer per snake_case file under `layers/`, its autodiff `Op` (forward
//! and vector-Jacobian product) beside it; kernels stay in `gradlab-conv`,
//! and the ops here only wire them. Model plumbing: `param.rs` (Param, Role,
//! Scope), `module.rs` (HasParams, Module), `layer_info.rs` (LayerInfo,
//! LayerKind: what `Module::describe` reports), `ctx.rs` (Ctx), `grads.rs`
//! (GradMap, clipping, the non-finite guard), `init.rs`, `loss.rs`,
//! `gradcheck.rs` (whole-module gradient checks).
//! Training: `optim/` (one optimizer per file, `schedule.rs`), and
//! `checkpoint.rs`; `atomic_file.rs` writes every saved file (checkpoints
//! here, reports and histories in the other crates) atomically.
//! Tests live in `tests/`, one file per concern.

mod atomic_file;
mod checkpoint;
mod ctx;
mod error;
mod gradcheck;
mod grads;
mod init;
mod layer_info;
mod layers;
mod loss;
mod module;
mod optim;
mod param;

pub use atomic_file::{check_output_path, write_atomic, write_atomic_bytes};
pub use checkpoint::{
    checkpoint_bytes, load_checkpoint, prepare_checkpoint, read_checkpoint_meta, save_checkpoint,
    CheckpointMeta, DataChecksum, OptimizerMeta, PendingCheckpoint, CHECKPOINT_FORMAT,
};
pub use ctx::Ctx;
pub use error::{NnError, Result};
pub use gradcheck::gradcheck_module;
pub use grads::{clip_grad_norm, GradMap};
pub use init::{FanMode, Fans, Init, Nonlinearity};
pub use layer_info::{LayerInfo, LayerKind};
pub use layers::{
    relu_name, Activation, ActivationKind, AvgPool2d, AvgPool2dOp, BatchNorm, BatchNorm1d,
    BatchNorm2d, BatchNormConfig, BatchNormEvalOp, BatchNormTrainOp, BatchStats, Conv2d,
    Conv2dConfig, Conv2dOp, Dropout, DropoutOp, Flatten, GeluOp, GlobalAvgPool2d,
    GlobalAvgPool2dOp, Identity, LeakyReluOp, Linear, LinearConfig, LinearOp, MaxPool2d,
    MaxPool2dOp, Sequential,
};
pub use loss::{accuracy, cross_entropy, mse, CrossEntropyOp, CrossEntropyOptions};
pub use module::{check_unique_names, HasParams, Module};
pub use optim::{
    Adam, AdamConfig, Constant, CosineAnnealing, LinearWarmup, LrSchedule, MultiStep, Optimizer,
    OptimizerState, Sgd, SgdConfig, StepDecay, Warmup,
};
pub use param::{validate_name, Param, Role, Scope};

/// The convolution and pooling specs the layers take, re-exported.
pub use gradlab_conv::{Conv2dSpec, ConvKind, Pool2dSpec};
