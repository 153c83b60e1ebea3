//! # gradlab-arch
//!
//! The architectures gradlab exists to study, on top of [`gradlab_nn`]:
//!
//! - [`ResNet`]: residual networks (He et al. 2016) with [`BlockKind::Basic`]
//!   or [`BlockKind::Bottleneck`] blocks, option-A ([`ShortcutA`],
//!   parameter-free) or option-B (projection) shortcuts, post- or
//!   pre-activation; the CIFAR family [`ResNetConfig::cifar`] (`6n + 2`:
//!   20, 32, 44, 56, 110, ...), its bottleneck version, the ImageNet family,
//!   and any stem, widths and blocks per stage. Each has a **plain twin**
//!   ([`ResNetConfig::plain`]): the same layers, names and (option A)
//!   parameter count, without the shortcut additions.
//! - Deep plain stacks for gradient studies: [`PlainMlp`] and [`PlainCnn`]
//!   of any depth, width, activation, initialisation and gain, with or
//!   without BatchNorm, optionally with shortcuts every `k` layers.
//! - Depthwise-separable networks: [`Block::separable`] (MobileNet),
//!   [`Block::inverted_residual`] (MobileNetV2), and [`MobileNet`] with a
//!   width multiplier.
//! - Auxiliary heads (deep supervision): [`AuxNet`] attaches heads after
//!   named stages or blocks of any of them; [`combined_loss`] is the
//!   training loss.
//!
//! Every network implements [`Classifier`]: `forward` maps a batch to
//! class scores `[N, K]`; [`Classifier::forward_outputs`] also returns the
//! auxiliary heads' class scores `[N, K]` and intermediate feature maps
//! `[N, C, H, W]` by name ([`Outputs`]); [`Classifier::points`] lists the
//! named stem/block/stage outputs; [`summarize`] gives a per-layer table with
//! parameters and MACs.
//!
//! ## Names, depth indices and taps
//! Every parameterised layer has a stable dotted name
//! (`stage2.block1.conv1.weight`, `aux.stage1.fc.bias`) and a depth index
//! from input (0) to output, in forward order. During a forward pass every
//! leaf layer taps its output under its name, and every stem, block and stage
//! taps its output under its point name, input to output:
//!
//! | network | point taps (besides the leaf layers') |
//! |---|---|
//! | [`ResNet`], [`MobileNet`] | `stem`, then per stage `stageS.block1` ... `stageS.blockB`, `stageS` |
//! | [`PlainCnn`], [`PlainMlp`] | `layer1` ... `layer{depth-1}` |
//! | [`AuxNet`] | those of the inner network, and `aux.<point>.fc` (each head's logits) |
//!
//! [`Classifier::block_names`] lists the block-level ones (the units of a
//! depth profile of activation gradients, read with
//! [`Ctx::backward_with_taps`](gradlab_nn::Ctx::backward_with_taps)).
//!
//! ## A training step
//! ```
//! use gradlab_arch::{Classifier, ResNet, ResNetConfig};
//! use gradlab_nn::{cross_entropy, CrossEntropyOptions, Ctx, Module, Optimizer, Scope, Sgd, SgdConfig};
//! use gradlab_tensor::Tensor;
//! let mut net: Box<dyn Classifier<f32>> =
//!     Box::new(ResNet::new(&Scope::new(0), &ResNetConfig::cifar(20)?.plain())?);
//! let mut opt = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() })?;
//! let mut cx = Ctx::new().with_seed(0);
//! let x = cx.input(Tensor::rand_normal(&[2, 3, 8, 8], 0.0, 1.0, 1)?);
//! let logits = net.forward(&mut cx, x)?;
//! let loss = cross_entropy(&mut cx, logits, &[3, 7], &CrossEntropyOptions::default())?;
//! let (grads, act_grads) = cx.backward_with_taps(loss)?;
//! let first = cx.tapped("stage1.block1").unwrap();
//! assert_eq!(act_grads.get(first).unwrap().shape(), &[2, 16, 8, 8]);
//! opt.step(&mut *net, &grads)?;
//! # Ok::<(), gradlab_arch::ArchError>(())
//! ```
//!
//! ## Layout
//! Every network is one body, written once in `body.rs`: a stem, stages of
//! [`Block`]s and a head, with the forward pass, taps, points, parameter
//! visits and the [`Classifier`] methods. The architectures are builders of
//! it, one per file: `resnet.rs` (and its plain twin), `mobilenet.rs`,
//! `plain.rs` (MLP and CNN stacks); `aux_heads.rs` wraps any network with
//! auxiliary heads. Every block kind is in `block.rs`; the option-A shortcut
//! op and layer in `shortcut.rs`; how leaf layers are built from a
//! network's options in `layer.rs`; the [`Classifier`] trait, outputs and
//! combined loss in `classifier.rs`; summaries in `summary.rs`; `error.rs`.
//! Leaf layers are `gradlab-nn` layers (or [`ShortcutA`]) chained in
//! [`Sequential`](gradlab_nn::Sequential)s; each describes itself through
//! [`Module::describe`](gradlab_nn::Module::describe) ([`LayerInfo`],
//! [`LayerKind`], re-exported from `gradlab-nn`), so a new `gradlab-nn`
//! layer needs no change here. Tests live in `tests/`, one file per concern.

mod aux_heads;
mod block;
mod body;
mod classifier;
mod error;
mod layer;
mod mobilenet;
mod plain;
mod resnet;
mod shortcut;
mod summary;

pub use aux_heads::{AuxHeadConfig, AuxNet, HeadKind};
pub use block::{Block, BlockKind, BlockOptions, ShortcutOption};
pub use classifier::{
    combined_loss, AuxOutput, Classifier, CombinedLoss, Feature, HeadMode, OutputRequest, Outputs,
    Point, PointKind, DEFAULT_AUX_WEIGHT,
};
pub use error::{ArchError, Result};
pub use gradlab_nn::{LayerInfo, LayerKind};
pub use layer::scaled_init;
pub use mobilenet::{MobileBlock, MobileNet, MobileNetConfig, MobileStage};
pub use plain::{PlainCnn, PlainCnnConfig, PlainMlp, PlainMlpConfig, StackOptions};
pub use resnet::{ResNet, ResNetConfig, Stem};
pub use shortcut::{ShortcutA, ShortcutAOp};
pub use summary::{summarize, LayerSummary, Summary};
