//! The [`Classifier`] trait every network implements, what a forward pass
//! returns ([`Outputs`]: class scores, auxiliary heads' class scores,
//! intermediate feature maps), and the combined deep-supervision loss.

use gradlab_autodiff::Var;
use gradlab_nn::{cross_entropy, CrossEntropyOptions, Ctx, LayerInfo, Module};
use gradlab_tensor::Element;

use crate::error::{ArchError, Result};

/// The default weight of an auxiliary head's loss, GoogLeNet's 0.3
/// (Szegedy et al. 2015).
pub const DEFAULT_AUX_WEIGHT: f64 = 0.3;

/// What a named point of a network is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PointKind {
    /// The output of the stem (the layers before the first block).
    Stem,
    /// The output of one block (one layer, in a plain stack): the unit of
    /// depth profiles.
    Block,
    /// The output of a stage (the same tensor as its last block's output).
    Stage,
}

/// A named point of a network where an intermediate output can be read
/// (and an auxiliary head attached): the tap name of a stem, block or stage
/// output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Full dotted name, also the tap name (`stage2.block1`, `stage3`).
    pub name: String,
    /// What it is.
    pub kind: PointKind,
    /// Channels of the feature map there (features, for a fully connected stack).
    pub channels: usize,
}

/// Which auxiliary heads a forward pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HeadMode {
    /// In training mode only: in evaluation mode the heads cost nothing.
    #[default]
    Auto,
    /// Always (early-exit predictions in evaluation).
    Always,
    /// Never.
    Never,
}

/// What [`Classifier::forward_outputs`] should return besides the logits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputRequest {
    /// Which auxiliary heads run (networks without heads ignore it).
    pub heads: HeadMode,
    /// Points whose feature maps to return, by full or network-relative
    /// name (see [`Classifier::points`]).
    pub features: Vec<String>,
}

impl OutputRequest {
    /// Heads as [`HeadMode::Auto`], plus the feature maps at `names`.
    pub fn features<S: AsRef<str>>(names: &[S]) -> Self {
        OutputRequest {
            heads: HeadMode::Auto,
            features: names.iter().map(|s| s.as_ref().to_string()).collect(),
        }
    }
}

/// An auxiliary head's prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct AuxOutput {
    /// The head's name (`aux.stage1`).
    pub name: String,
    /// The point it reads (`stage1`).
    pub at: String,
    /// Class scores (logits), `[N, K]`: an early-exit prediction.
    pub logits: Var,
    /// Its weight in the combined loss.
    pub weight: f64,
}

/// An intermediate feature map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// The point's full name.
    pub name: String,
    /// The activation there: a feature map `[N, C, H, W]` for a
    /// convolutional network (`[N, F]` for a fully connected stack); not
    /// class scores.
    pub map: Var,
}

/// What a classification network computed on a batch.
///
/// The difference matters: [`logits`](Outputs::logits) and each head's
/// [`AuxOutput::logits`] are class scores `[N, K]` (softmax them for class
/// probabilities); [`features`](Outputs::features) are intermediate
/// activations `[N, C, H, W]` with no class meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    /// The final class scores, `[N, K]`.
    pub logits: Var,
    /// The auxiliary heads that ran, input to output.
    pub aux: Vec<AuxOutput>,
    /// The requested feature maps and those the heads read, input to output.
    pub features: Vec<Feature>,
}

impl Outputs {
    /// The feature map at the point `name` (full name), if it was returned.
    pub fn feature(&self, name: &str) -> Option<Var> {
        self.features.iter().find(|f| f.name == name).map(|f| f.map)
    }

    /// The logits of the auxiliary head named `name` (`aux.stage1`) or
    /// reading the point `name` (`stage1`), if it ran.
    pub fn aux_logits(&self, name: &str) -> Option<Var> {
        self.aux
            .iter()
            .find(|a| a.name == name || a.at == name)
            .map(|a| a.logits)
    }
}

/// The terms of the combined loss.
#[derive(Debug, Clone, PartialEq)]
pub struct CombinedLoss {
    /// `main + sum_i weight_i * aux_i`: back-propagate this one.
    pub total: Var,
    /// Cross-entropy of the final logits.
    pub main: Var,
    /// Cross-entropy of each head's logits (unweighted), by head name.
    pub aux: Vec<(String, Var)>,
}

/// The deep-supervision training loss: final cross-entropy plus
/// `sum_i weight_i * ` (cross-entropy of auxiliary head `i`), with each
/// head's weight as configured (default [`DEFAULT_AUX_WEIGHT`]). Without
/// heads it is the plain cross-entropy.
///
/// A head of weight 0 still enters the graph (multiplied by 0), so its
/// parameters get a (zero) gradient and optimizers find one for each.
///
/// # Errors
/// Those of [`cross_entropy`] (label count, label range).
///
/// # Examples
/// See [`AuxNet`](crate::AuxNet).
pub fn combined_loss<T: Element>(
    cx: &mut Ctx<T>,
    outputs: &Outputs,
    labels: &[usize],
) -> Result<CombinedLoss> {
    let opts = CrossEntropyOptions::default();
    let main = cross_entropy(cx, outputs.logits, labels, &opts)?;
    let mut total = main;
    let mut aux = Vec::with_capacity(outputs.aux.len());
    for head in &outputs.aux {
        let l = cross_entropy(cx, head.logits, labels, &opts)?;
        let w = cx.graph_mut().mul_scalar(l, head.weight)?;
        total = cx.graph_mut().add(total, w)?;
        aux.push((head.name.clone(), l));
    }
    Ok(CombinedLoss { total, main, aux })
}

/// A classification network: a [`Module`] whose `forward` maps images (or
/// feature vectors) to class scores `[N, K]`, with named intermediate
/// points, a layer list for summaries, and a richer forward pass returning
/// [`Outputs`]. Object-safe: the CLI and diagnostics hold
/// `Box<dyn Classifier<T>>`.
///
/// Every implementation taps each stem, block and stage output under its
/// point name (besides the per-layer taps of the leaf layers), so
/// [`Ctx::backward_with_taps`] gives the activation gradient at every block.
pub trait Classifier<T: Element = f32>: Module<T> {
    /// A short label (`"resnet-20"`, `"plain-mlp-10x64"`).
    fn label(&self) -> String;

    /// Number of classes `K`.
    fn num_classes(&self) -> usize;

    /// Checks that the network can take an input of `shape` (with batch axis).
    ///
    /// # Errors
    /// [`ArchError::InputShape`] for a wrong rank or channel count,
    /// [`ArchError::InputTooSmall`] for an image smaller than the total stride.
    fn check_input(&self, shape: &[usize]) -> Result<()>;

    /// The named points (stem, blocks, stages), input to output.
    fn points(&self) -> Vec<Point>;

    /// Every leaf layer, in forward order: what [`Module::describe`] lists.
    fn layers(&self) -> Vec<LayerInfo> {
        let mut out = Vec::new();
        self.describe(&mut out);
        out
    }

    /// The full name of the point `name`, given in full or relative to the
    /// network's own prefix.
    ///
    /// # Errors
    /// [`ArchError::UnknownPoint`] listing the points that exist.
    fn resolve_point(&self, name: &str) -> Result<String> {
        let points = self.points();
        let prefix = self.name();
        let full = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        if let Some(p) = points.iter().find(|p| p.name == name || p.name == full) {
            return Ok(p.name.clone());
        }
        Err(ArchError::UnknownPoint {
            network: self.label(),
            name: name.to_string(),
            available: points.into_iter().map(|p| p.name).collect(),
        })
    }

    /// The block outputs, input to output: the tap names a depth profile of
    /// activation gradients reads.
    fn block_names(&self) -> Vec<String> {
        self.points()
            .into_iter()
            .filter(|p| p.kind == PointKind::Block)
            .map(|p| p.name)
            .collect()
    }

    /// Runs the network and returns the logits, the auxiliary heads'
    /// logits (see [`HeadMode`]) and the requested feature maps.
    ///
    /// # Errors
    /// [`ArchError::UnknownPoint`] for a requested feature that does not
    /// exist (checked before running), the input checks of
    /// [`check_input`](Classifier::check_input), and the layers' errors.
    fn forward_outputs(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        request: &OutputRequest,
    ) -> Result<Outputs> {
        let names = request
            .features
            .iter()
            .map(|n| self.resolve_point(n))
            .collect::<Result<Vec<_>>>()?;
        self.check_input(cx.value(x)?.shape())?;
        let logits = self.forward(cx, x)?;
        let features = names
            .into_iter()
            .map(|name| {
                let map = cx.tapped(&name).ok_or_else(|| ArchError::UnknownPoint {
                    network: self.label(),
                    name: name.clone(),
                    available: self.points().into_iter().map(|p| p.name).collect(),
                })?;
                Ok(Feature { name, map })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Outputs {
            logits,
            aux: Vec::new(),
            features,
        })
    }
}

impl<T: Element, C: Classifier<T> + ?Sized> Classifier<T> for Box<C> {
    fn label(&self) -> String {
        (**self).label()
    }
    fn num_classes(&self) -> usize {
        (**self).num_classes()
    }
    fn check_input(&self, shape: &[usize]) -> Result<()> {
        (**self).check_input(shape)
    }
    fn points(&self) -> Vec<Point> {
        (**self).points()
    }
    fn layers(&self) -> Vec<LayerInfo> {
        (**self).layers()
    }
    fn resolve_point(&self, name: &str) -> Result<String> {
        (**self).resolve_point(name)
    }
    fn block_names(&self) -> Vec<String> {
        (**self).block_names()
    }
    fn forward_outputs(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        request: &OutputRequest,
    ) -> Result<Outputs> {
        (**self).forward_outputs(cx, x, request)
    }
}
