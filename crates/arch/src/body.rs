//! The one network body every architecture builds (`Body`): a stem, stages
//! of [`Block`]s and a head, with the input check, taps, points and layer
//! descriptions written once. [`ResNet`](crate::ResNet), its plain twin,
//! [`MobileNet`](crate::MobileNet), [`PlainCnn`](crate::PlainCnn) and
//! [`PlainMlp`](crate::PlainMlp) only differ in what they put in it;
//! `network_via_body!` gives each the traits of its body.

use gradlab_autodiff::Var;
use gradlab_nn::{Ctx, HasParams, LayerInfo, Module, Param, Scope, Sequential};
use gradlab_tensor::Element;

use crate::block::Block;
use crate::classifier::{Classifier, Point, PointKind};
use crate::error::{ArchError, Result};

/// The most blocks (or hidden layers) a network may have: far beyond any
/// trainable depth, it keeps absurd configurations from exhausting memory.
pub(crate) const MAX_BLOCKS: usize = 10_000;

/// What a network takes as input.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input {
    /// Images `[N, channels, H, W]` with `H, W >= min_size`.
    Image { channels: usize, min_size: usize },
    /// Vectors `[N, F]`, or images `[N, C, H, W]` with `C H W = F`, which
    /// the stem flattens.
    Features(usize),
}

/// Blocks one after the other, at one resolution.
#[derive(Debug)]
pub(crate) struct Stage<T: Element> {
    /// The tap and point name of the stage output; `None` for the single
    /// stage of a plain stack, which is no point of its own.
    name: Option<String>,
    blocks: Vec<Block<T>>,
    /// `Some(k)`: a block with an identity shortcut adds the output of the
    /// block `k` places back (plain stacks' shortcuts every `k` layers)
    /// instead of its own input.
    skip_every: Option<usize>,
}

impl<T: Element> Stage<T> {
    /// A stage named by `scope`, tapped under its name after the last block.
    pub(crate) fn named(scope: &Scope, blocks: Vec<Block<T>>) -> Self {
        Stage {
            name: Some(scope.prefix().to_string()),
            blocks,
            skip_every: None,
        }
    }

    /// The hidden layers of a plain stack, with shortcuts every `k` layers.
    pub(crate) fn stack(blocks: Vec<Block<T>>, skip_every: Option<usize>) -> Self {
        Stage {
            name: None,
            blocks,
            skip_every,
        }
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> gradlab_nn::Result<Var> {
        // outs[i] is the output of block i (outs[0] the stage input), kept
        // only for shortcuts that span blocks.
        let mut outs = Vec::new();
        if self.skip_every.is_some() {
            outs.reserve(self.blocks.len() + 1);
            outs.push(x);
        }
        let mut h = x;
        for (idx, b) in self.blocks.iter_mut().enumerate() {
            let skip = match self.skip_every {
                Some(k) if b.has_shortcut() => Some(outs[idx + 1 - k]),
                _ => None,
            };
            h = b.forward_skip(cx, h, skip)?;
            if self.skip_every.is_some() {
                outs.push(h);
            }
        }
        if let Some(name) = &self.name {
            cx.tap(name, h);
        }
        Ok(h)
    }

    fn points(&self, out: &mut Vec<Point>) {
        for b in &self.blocks {
            out.push(Point {
                name: b.name().to_string(),
                kind: PointKind::Block,
                channels: b.out_channels(),
            });
        }
        if let (Some(name), Some(last)) = (&self.name, self.blocks.last()) {
            out.push(Point {
                name: name.clone(),
                kind: PointKind::Stage,
                channels: last.out_channels(),
            });
        }
    }
}

/// A classification network: `stem -> stages -> head`. The stem's output
/// is a point (tapped under the stem's name) when `stem_point` gives its
/// channels; parameters, depth indices and taps follow the order in which
/// the builder created the layers, input to output.
#[derive(Debug)]
pub(crate) struct Body<T: Element> {
    name: String,
    label: String,
    num_classes: usize,
    input: Input,
    /// Named `<network>.stem`; may be empty.
    pub(crate) stem: Sequential<T>,
    /// The stem output's channels, when the stem output is a point.
    pub(crate) stem_point: Option<usize>,
    pub(crate) stages: Vec<Stage<T>>,
    /// Named `<network>.head`.
    pub(crate) head: Sequential<T>,
    training: bool,
}

impl<T: Element> Body<T> {
    /// An empty network in `scope`, to be filled by a builder.
    pub(crate) fn new(scope: &Scope, label: String, num_classes: usize, input: Input) -> Self {
        Body {
            name: scope.prefix().to_string(),
            label,
            num_classes,
            input,
            stem: Sequential::new(&scope.pp("stem")),
            stem_point: None,
            stages: Vec::new(),
            head: Sequential::new(&scope.pp("head")),
            training: true,
        }
    }

    /// The blocks, input to output.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &Block<T>> {
        self.stages.iter().flat_map(|s| s.blocks.iter())
    }
}

impl<T: Element> HasParams<T> for Body<T> {
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        self.stem.visit_params(f);
        for b in self.blocks() {
            b.visit_params(f);
        }
        self.head.visit_params(f);
    }

    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        self.stem.visit_params_mut(f);
        for s in &mut self.stages {
            for b in &mut s.blocks {
                b.visit_params_mut(f);
            }
        }
        self.head.visit_params_mut(f);
    }
}

impl<T: Element> Module<T> for Body<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> gradlab_nn::Result<Var> {
        let shape = cx.value(x)?.shape();
        let rank = shape.len();
        self.check_input(shape).map_err(ArchError::into_nn)?;
        // A fully connected network takes vectors as they are: its stem
        // only flattens images.
        let mut h = match self.input {
            Input::Features(_) if rank == 2 => x,
            _ => self.stem.forward(cx, x)?,
        };
        if self.stem_point.is_some() {
            cx.tap(self.stem.name(), h);
        }
        for s in &mut self.stages {
            h = s.forward(cx, h)?;
        }
        self.head.forward(cx, h)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.stem.set_training(training);
        for s in &mut self.stages {
            for b in &mut s.blocks {
                b.set_training(training);
            }
        }
        self.head.set_training(training);
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn describe(&self, out: &mut Vec<LayerInfo>) {
        self.stem.describe(out);
        for b in self.blocks() {
            b.describe(out);
        }
        self.head.describe(out);
    }
}

impl<T: Element> Classifier<T> for Body<T> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        match self.input {
            Input::Image { channels, min_size } => {
                check_image(&self.label, shape, channels, min_size)
            }
            Input::Features(want) => {
                let features = match shape {
                    [_, f] => Some(*f),
                    [_, rest @ ..] if !rest.is_empty() => {
                        rest.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
                    }
                    _ => None,
                };
                if features != Some(want) {
                    return Err(ArchError::InputShape {
                        network: self.label.clone(),
                        expected: format!(
                            "[N, {want}] or an image [N, C, H, W] with C*H*W = {want}"
                        ),
                        got: shape.to_vec(),
                    });
                }
                Ok(())
            }
        }
    }

    fn points(&self) -> Vec<Point> {
        let mut out = Vec::new();
        if let Some(channels) = self.stem_point {
            out.push(Point {
                name: self.stem.name().to_string(),
                kind: PointKind::Stem,
                channels,
            });
        }
        for s in &self.stages {
            s.points(&mut out);
        }
        out
    }
}

/// Checks an image input `[N, channels, H, W]` with `H, W >= min`.
fn check_image(label: &str, shape: &[usize], channels: usize, min: usize) -> Result<()> {
    let &[_, c, h, w] = shape else {
        return Err(ArchError::InputShape {
            network: label.to_string(),
            expected: format!("[N, {channels}, H, W]"),
            got: shape.to_vec(),
        });
    };
    if c != channels {
        return Err(ArchError::InputShape {
            network: label.to_string(),
            expected: format!("[N, {channels}, H, W]"),
            got: shape.to_vec(),
        });
    }
    if h < min || w < min {
        return Err(ArchError::InputTooSmall {
            network: label.to_string(),
            min,
            got: shape.to_vec(),
        });
    }
    Ok(())
}

/// Implements `HasParams`, `Module` and `Classifier` for a network type
/// `$net<T>` by handing every call to its field `body` (a `Body`): the
/// architectures differ in what they build, not in how a built network
/// runs. The provided methods (`forward_outputs`, `resolve_point`, ...)
/// keep their defaults, which is what the body would do too.
macro_rules! network_via_body {
    ($net:ident) => {
        impl<T: gradlab_tensor::Element> gradlab_nn::HasParams<T> for $net<T> {
            fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a gradlab_nn::Param<T>)) {
                gradlab_nn::HasParams::visit_params(&self.body, f)
            }

            fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut gradlab_nn::Param<T>)) {
                gradlab_nn::HasParams::visit_params_mut(&mut self.body, f)
            }
        }

        impl<T: gradlab_tensor::Element> gradlab_nn::Module<T> for $net<T> {
            fn name(&self) -> &str {
                gradlab_nn::Module::name(&self.body)
            }

            fn forward(
                &mut self,
                cx: &mut gradlab_nn::Ctx<T>,
                x: gradlab_autodiff::Var,
            ) -> gradlab_nn::Result<gradlab_autodiff::Var> {
                gradlab_nn::Module::forward(&mut self.body, cx, x)
            }

            fn set_training(&mut self, training: bool) {
                gradlab_nn::Module::set_training(&mut self.body, training)
            }

            fn is_training(&self) -> bool {
                gradlab_nn::Module::is_training(&self.body)
            }

            fn describe(&self, out: &mut Vec<gradlab_nn::LayerInfo>) {
                gradlab_nn::Module::describe(&self.body, out)
            }
        }

        impl<T: gradlab_tensor::Element> $crate::Classifier<T> for $net<T> {
            fn label(&self) -> String {
                $crate::Classifier::label(&self.body)
            }

            fn num_classes(&self) -> usize {
                $crate::Classifier::num_classes(&self.body)
            }

            fn check_input(&self, shape: &[usize]) -> $crate::Result<()> {
                $crate::Classifier::check_input(&self.body, shape)
            }

            fn points(&self) -> Vec<$crate::Point> {
                $crate::Classifier::points(&self.body)
            }
        }
    };
}

pub(crate) use network_via_body;
