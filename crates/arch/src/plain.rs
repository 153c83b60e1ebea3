//! Deep plain stacks for gradient studies: [`PlainMlp`] and [`PlainCnn`] of
//! any depth and width, with a chosen activation, initialisation (and gain),
//! with or without BatchNorm, optionally with identity shortcuts every `k`
//! layers.

use gradlab_autodiff::Var;
use gradlab_nn::{ActivationKind, Ctx, HasParams, Init, Module, Param, Scope};
use gradlab_tensor::Element;

use crate::block::Block;
use crate::classifier::{check_image, Classifier, Point, PointKind};
use crate::error::{ArchError, Result};
use crate::layer::{flatten, gap, Chain, LayerInfo, Units};
use crate::resnet::MAX_BLOCKS;

/// The options shared by [`PlainMlpConfig`] and [`PlainCnnConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct StackOptions {
    /// Number of weighted layers, the output layer included (`>= 2`).
    pub depth: usize,
    /// Units (MLP) or channels (CNN) of every hidden layer.
    pub width: usize,
    /// The non-linearity (default ReLU).
    pub activation: ActivationKind,
    /// BatchNorm after every hidden layer (default `false`).
    pub batch_norm: bool,
    /// Initialisation of every weight, the output layer's included
    /// (default PyTorch's, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, variance `1 / (3 fan_in)`).
    pub init: Init,
    /// Multiplies the standard deviation of `init` (default 1): with
    /// PyTorch's default, gain `g` gives variance `g^2 / (3 fan_in)`.
    pub gain: f64,
    /// Initialisation of biases (default PyTorch's; `Init::Constant(-2.0)`
    /// makes dead ReLUs). Layers have biases only without BatchNorm.
    pub bias_init: Init,
    /// `Some(k)`: an identity shortcut every `k` hidden layers,
    /// `h_i = layer_i(h_{i-1}) + h_{i-k}` for `i = 1 + k, 1 + 2k, ...`
    /// (the first hidden layer changes the width and starts the chain).
    /// `None` (default): a plain stack.
    pub shortcut_every: Option<usize>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            depth: 10,
            width: 64,
            activation: ActivationKind::Relu,
            batch_norm: false,
            init: Init::TorchDefault,
            gain: 1.0,
            bias_init: Init::TorchDefault,
            shortcut_every: None,
        }
    }
}

impl StackOptions {
    fn validate(&self, network: &str) -> Result<()> {
        if self.depth < 2 || self.depth > MAX_BLOCKS {
            return Err(ArchError::InvalidDepth {
                network: network.to_string(),
                depth: self.depth,
                reason: format!(
                    "a plain stack has between 2 weighted layers (one hidden, one output) and {MAX_BLOCKS}"
                ),
            });
        }
        if self.width == 0 {
            return Err(ArchError::config(network, "width", 0, "must be positive"));
        }
        if !(self.gain > 0.0 && self.gain.is_finite()) {
            return Err(ArchError::config(
                network,
                "gain",
                self.gain,
                "must be positive and finite",
            ));
        }
        if self.shortcut_every == Some(0) {
            return Err(ArchError::config(
                network,
                "shortcut_every",
                0,
                "a shortcut every k layers needs k >= 1",
            ));
        }
        Ok(())
    }

    fn units(&self) -> Units {
        Units {
            activation: self.activation,
            batch_norm: self.batch_norm,
            init: self.init.clone(),
            gain: self.gain,
            bias_init: self.bias_init.clone(),
        }
    }

    /// Whether hidden layer `i` (1-based) ends a shortcut group.
    fn residual_at(&self, i: usize) -> bool {
        match self.shortcut_every {
            Some(k) => i > 1 && (i - 1) % k == 0,
            None => false,
        }
    }

    fn suffix(&self) -> String {
        let mut s = format!("{}x{}-{}", self.depth, self.width, self.activation.as_str());
        if self.batch_norm {
            s.push_str("-bn");
        }
        if self.gain != 1.0 {
            s.push_str(&format!("-g{}", self.gain));
        }
        if let Some(k) = self.shortcut_every {
            s.push_str(&format!("-skip{k}"));
        }
        s
    }
}

/// Hidden layers of a plain stack, with their shortcut groups.
#[derive(Debug, Clone)]
struct Stack<T: Element> {
    layers: Vec<Block<T>>,
    every: Option<usize>,
}

impl<T: Element> Stack<T> {
    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> gradlab_nn::Result<Var> {
        // outs[i] is the output of hidden layer i (outs[0] unused).
        let mut outs: Vec<Var> = Vec::with_capacity(self.layers.len() + 1);
        outs.push(x);
        let mut h = x;
        for (idx, layer) in self.layers.iter_mut().enumerate() {
            let i = idx + 1;
            let skip = match self.every {
                Some(k) if layer.has_shortcut() => Some(outs[i - k]),
                _ => None,
            };
            h = layer.forward_skip(cx, h, skip)?;
            outs.push(h);
        }
        Ok(h)
    }

    fn points(&self, out: &mut Vec<Point>) {
        for b in &self.layers {
            out.push(Point {
                name: b.name().to_string(),
                kind: PointKind::Block,
                channels: b.out_channels(),
            });
        }
    }
}

/// The configuration of a [`PlainMlp`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlainMlpConfig {
    /// Input features (`C * H * W` for images, which are flattened).
    pub in_features: usize,
    /// Number of classes `K`.
    pub num_classes: usize,
    /// Depth, width, activation, initialisation, BatchNorm, shortcuts.
    pub stack: StackOptions,
}

impl PlainMlpConfig {
    /// An MLP from `in_features` to `num_classes` with `depth` linear layers
    /// of `width` units and the given activation; other options default.
    pub fn new(
        in_features: usize,
        num_classes: usize,
        depth: usize,
        width: usize,
        activation: ActivationKind,
    ) -> Self {
        PlainMlpConfig {
            in_features,
            num_classes,
            stack: StackOptions {
                depth,
                width,
                activation,
                ..StackOptions::default()
            },
        }
    }
}

/// A deep fully connected stack (the Glorot & Bengio 2010 setting): `depth`
/// linear layers, every hidden one followed by optional BN and the activation.
///
/// ```text
/// input [N, F] or [N, C, H, W] -> flatten (images only)      [N, F]
/// layer1: fc (F -> width) -> [bn] -> act                   tap "layer1"
/// layer2 .. layer{depth-1}: fc (width -> width) -> [bn] -> act  [+ h_{i-k}]
/// head.fc (width -> K)                                        logits [N, K]
/// ```
///
/// Taps: `flatten` (image inputs), then per hidden layer `layerI.fc`,
/// `layerI.bn`, `layerI.act` and the layer output `layerI` (after the
/// shortcut addition, when there is one), then `head.fc`. Points: the
/// `layerI`, as [`PointKind::Block`]. Depth indices: `layer1.fc` 0,
/// `layer1.bn` 1 (with BN), ..., `head.fc` last.
///
/// # Examples
/// ```
/// use gradlab_arch::{Classifier, PlainMlp, PlainMlpConfig};
/// use gradlab_nn::{ActivationKind, Ctx, HasParams, Module, Scope};
/// use gradlab_tensor::Tensor;
/// let cfg = PlainMlpConfig::new(64, 10, 20, 32, ActivationKind::Sigmoid);
/// let mut mlp = PlainMlp::<f32>::new(&Scope::new(0), &cfg)?;
/// assert_eq!(mlp.block_names().len(), 19);
/// let mut cx = Ctx::new();
/// let x = cx.input(Tensor::ones(&[2, 1, 8, 8])); // images are flattened
/// let y = mlp.forward(&mut cx, x)?;
/// assert_eq!(cx.value(y)?.shape(), &[2, 10]);
/// # Ok::<(), gradlab_arch::ArchError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PlainMlp<T: Element = f32> {
    name: String,
    config: PlainMlpConfig,
    label: String,
    flatten: Chain<T>,
    stack: Stack<T>,
    head: Chain<T>,
    training: bool,
}

impl<T: Element> PlainMlp<T> {
    /// Builds the MLP in `scope`.
    ///
    /// # Errors
    /// [`ArchError::InvalidDepth`] for `depth < 2`; [`ArchError::InvalidConfig`]
    /// for a zero width, input or class count, a bad gain or `shortcut_every = 0`.
    pub fn new(scope: &Scope, config: &PlainMlpConfig) -> Result<Self> {
        let o = &config.stack;
        let label = format!("plain-mlp-{}", o.suffix());
        o.validate("plain-mlp")?;
        if config.in_features == 0 || config.num_classes == 0 {
            return Err(ArchError::config(
                label,
                "in_features/num_classes",
                format!("{}/{}", config.in_features, config.num_classes),
                "must be positive",
            ));
        }
        let u = o.units();
        let mut fl = Chain::new();
        fl.push(flatten(&scope.pp("flatten")));
        let mut layers = Vec::with_capacity(o.depth - 1);
        let mut fin = config.in_features;
        for i in 1..o.depth {
            layers.push(Block::linear_layer(
                &scope.pp(format!("layer{i}")),
                fin,
                o.width,
                o.residual_at(i),
                &u,
            )?);
            fin = o.width;
        }
        let mut head = Chain::new();
        head.push(u.linear(&scope.pp("head").pp("fc"), fin, config.num_classes, true)?);
        Ok(PlainMlp {
            name: scope.prefix().to_string(),
            config: config.clone(),
            label,
            flatten: fl,
            stack: Stack {
                layers,
                every: o.shortcut_every,
            },
            head,
            training: true,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &PlainMlpConfig {
        &self.config
    }
}

impl<T: Element> HasParams<T> for PlainMlp<T> {
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        for b in &self.stack.layers {
            b.visit_params(f);
        }
        self.head.visit_params(f);
    }

    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        for b in &mut self.stack.layers {
            b.visit_params_mut(f);
        }
        self.head.visit_params_mut(f);
    }
}

impl<T: Element> Module<T> for PlainMlp<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> gradlab_nn::Result<Var> {
        let rank = cx.value(x)?.rank();
        self.check_input(cx.value(x)?.shape())
            .map_err(ArchError::into_nn)?;
        let x = if rank == 2 {
            x
        } else {
            self.flatten.forward(cx, x)?
        };
        let h = self.stack.forward(cx, x)?;
        self.head.forward(cx, h)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        for b in &mut self.stack.layers {
            b.set_training(training);
        }
        self.head.set_training(training);
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

impl<T: Element> Classifier<T> for PlainMlp<T> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        let f = self.config.in_features;
        let features = match shape {
            [_, f] => Some(*f),
            [_, rest @ ..] if !rest.is_empty() => {
                rest.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
            }
            _ => None,
        };
        if features != Some(f) {
            return Err(ArchError::InputShape {
                network: self.label.clone(),
                expected: format!("[N, {f}] or an image [N, C, H, W] with C*H*W = {f}"),
                got: shape.to_vec(),
            });
        }
        Ok(())
    }

    fn points(&self) -> Vec<Point> {
        let mut out = Vec::new();
        self.stack.points(&mut out);
        out
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut out = Vec::new();
        self.flatten.infos(&mut out);
        for b in &self.stack.layers {
            b.infos(&mut out);
        }
        self.head.infos(&mut out);
        out
    }
}

/// The configuration of a [`PlainCnn`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlainCnnConfig {
    /// Input image channels.
    pub in_channels: usize,
    /// Number of classes `K`.
    pub num_classes: usize,
    /// Depth, width (channels), activation, initialisation, BatchNorm, shortcuts.
    pub stack: StackOptions,
}

impl PlainCnnConfig {
    /// A CNN on `in_channels`-channel images with `depth` weighted layers
    /// (`depth - 1` convolutions of `width` channels and the output layer)
    /// and the given activation; other options default.
    pub fn new(
        in_channels: usize,
        num_classes: usize,
        depth: usize,
        width: usize,
        activation: ActivationKind,
    ) -> Self {
        PlainCnnConfig {
            in_channels,
            num_classes,
            stack: StackOptions {
                depth,
                width,
                activation,
                ..StackOptions::default()
            },
        }
    }
}

/// A deep plain convolutional stack: `depth - 1` 3x3 convolutions (stride
/// 1, padding 1) of `width` channels, each followed by optional BN and the
/// activation, then global average pooling and a linear layer.
///
/// ```text
/// input [N, C, H, W]
/// layer1: conv 3x3 (C -> width) -> [bn] -> act             tap "layer1"  [N, width, H, W]
/// layer2 .. layer{depth-1}: conv 3x3 (width -> width) -> [bn] -> act  [+ h_{i-k}]
/// head.pool (global average) -> head.fc (width -> K)         logits [N, K]
/// ```
///
/// Taps: per layer `layerI.conv`, `layerI.bn`, `layerI.act`, then the
/// layer output `layerI`; then `head.pool`, `head.fc`. Points: the
/// `layerI`. No downsampling, so any input of at least 1x1 works.
///
/// # Examples
/// ```
/// use gradlab_arch::{PlainCnn, PlainCnnConfig};
/// use gradlab_nn::{ActivationKind, Ctx, Module, Scope};
/// use gradlab_tensor::Tensor;
/// let mut cfg = PlainCnnConfig::new(3, 10, 20, 16, ActivationKind::Sigmoid);
/// cfg.stack.batch_norm = false;
/// let mut net = PlainCnn::<f32>::new(&Scope::new(0), &cfg)?;
/// let mut cx = Ctx::new();
/// let x = cx.input(Tensor::ones(&[2, 3, 8, 8]));
/// let y = net.forward(&mut cx, x)?;
/// assert_eq!(cx.value(y)?.shape(), &[2, 10]);
/// # Ok::<(), gradlab_arch::ArchError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PlainCnn<T: Element = f32> {
    name: String,
    config: PlainCnnConfig,
    label: String,
    stack: Stack<T>,
    head: Chain<T>,
    training: bool,
}

impl<T: Element> PlainCnn<T> {
    /// Builds the CNN in `scope`.
    ///
    /// # Errors
    /// As [`PlainMlp::new`].
    pub fn new(scope: &Scope, config: &PlainCnnConfig) -> Result<Self> {
        let o = &config.stack;
        let label = format!("plain-cnn-{}", o.suffix());
        o.validate("plain-cnn")?;
        if config.in_channels == 0 || config.num_classes == 0 {
            return Err(ArchError::config(
                label,
                "in_channels/num_classes",
                format!("{}/{}", config.in_channels, config.num_classes),
                "must be positive",
            ));
        }
        let u = o.units();
        let mut layers = Vec::with_capacity(o.depth - 1);
        let mut cin = config.in_channels;
        for i in 1..o.depth {
            layers.push(Block::conv_layer(
                &scope.pp(format!("layer{i}")),
                cin,
                o.width,
                o.residual_at(i),
                &u,
            )?);
            cin = o.width;
        }
        let h = scope.pp("head");
        let mut head = Chain::new();
        head.push(gap(&h.pp("pool")));
        head.push(u.linear(&h.pp("fc"), cin, config.num_classes, true)?);
        Ok(PlainCnn {
            name: scope.prefix().to_string(),
            config: config.clone(),
            label,
            stack: Stack {
                layers,
                every: o.shortcut_every,
            },
            head,
            training: true,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &PlainCnnConfig {
        &self.config
    }
}

impl<T: Element> HasParams<T> for PlainCnn<T> {
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        for b in &self.stack.layers {
            b.visit_params(f);
        }
        self.head.visit_params(f);
    }

    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        for b in &mut self.stack.layers {
            b.visit_params_mut(f);
        }
        self.head.visit_params_mut(f);
    }
}

impl<T: Element> Module<T> for PlainCnn<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> gradlab_nn::Result<Var> {
        self.check_input(cx.value(x)?.shape())
            .map_err(ArchError::into_nn)?;
        let h = self.stack.forward(cx, x)?;
        self.head.forward(cx, h)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        for b in &mut self.stack.layers {
            b.set_training(training);
        }
        self.head.set_training(training);
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

impl<T: Element> Classifier<T> for PlainCnn<T> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        check_image(&self.label, shape, self.config.in_channels, 1)
    }

    fn points(&self) -> Vec<Point> {
        let mut out = Vec::new();
        self.stack.points(&mut out);
        out
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut out = Vec::new();
        for b in &self.stack.layers {
            b.infos(&mut out);
        }
        self.head.infos(&mut out);
        out
    }
}
