//! Deep plain stacks for gradient studies: [`PlainMlp`] and [`PlainCnn`] of
//! any depth and width, with a chosen activation, initialisation (and gain),
//! with or without BatchNorm, optionally with identity shortcuts every `k`
//! layers.

use gradlab_nn::{ActivationKind, Flatten, GlobalAvgPool2d, Init, Scope};
use gradlab_tensor::Element;

use crate::block::Block;
use crate::body::{network_via_body, Body, Input, Stage, MAX_BLOCKS};
use crate::error::{ArchError, Result};
use crate::layer::Units;

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
    /// The defaults with this depth, width and activation.
    fn shaped(depth: usize, width: usize, activation: ActivationKind) -> Self {
        StackOptions {
            depth,
            width,
            activation,
            ..StackOptions::default()
        }
    }

    /// Validates the options and the network's input size and class count
    /// (`fields` names both); returns the network's label, `<network>-<suffix>`.
    fn checked_label(
        &self,
        network: &str,
        fields: &'static str,
        input: usize,
        num_classes: usize,
    ) -> Result<String> {
        let label = format!("{network}-{}", self.suffix());
        self.validate(network)?;
        if input == 0 || num_classes == 0 {
            return Err(ArchError::config(
                label,
                fields,
                format!("{input}/{num_classes}"),
                "must be positive",
            ));
        }
        Ok(label)
    }

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
            Some(k) => i > 1 && (i - 1).is_multiple_of(k),
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

    /// Builds the hidden layers `layer1 .. layer{depth-1}` (each by `layer`,
    /// from `input` to `width` units or channels) as the body's one stage;
    /// returns the width they end with.
    fn build_stack<T: Element>(
        &self,
        body: &mut Body<T>,
        scope: &Scope,
        input: usize,
        layer: LayerBuilder<T>,
    ) -> Result<usize> {
        let u = self.units();
        let mut layers = Vec::with_capacity(self.depth - 1);
        let mut fin = input;
        for i in 1..self.depth {
            let s = scope.pp(format!("layer{i}"));
            layers.push(layer(&s, fin, self.width, self.residual_at(i), &u)?);
            fin = self.width;
        }
        body.stages.push(Stage::stack(layers, self.shortcut_every));
        Ok(fin)
    }
}

/// `Block::linear_layer` or `Block::conv_layer`: one hidden layer from
/// its scope, input and output width, and whether it ends a shortcut.
type LayerBuilder<T> = fn(&Scope, usize, usize, bool, &Units) -> Result<Block<T>>;

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
            stack: StackOptions::shaped(depth, width, activation),
        }
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
            stack: StackOptions::shaped(depth, width, activation),
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
/// `layerI`, as [`PointKind::Block`](crate::PointKind::Block). Depth indices: `layer1.fc` 0,
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
#[derive(Debug)]
pub struct PlainMlp<T: Element = f32> {
    config: PlainMlpConfig,
    body: Body<T>,
}

network_via_body!(PlainMlp);

impl<T: Element> PlainMlp<T> {
    /// Builds the MLP in `scope`.
    ///
    /// # Errors
    /// [`ArchError::InvalidDepth`] for `depth < 2`; [`ArchError::InvalidConfig`]
    /// for a zero width, input or class count, a bad gain or `shortcut_every = 0`.
    pub fn new(scope: &Scope, config: &PlainMlpConfig) -> Result<Self> {
        let o = &config.stack;
        let label = o.checked_label(
            "plain-mlp",
            "in_features/num_classes",
            config.in_features,
            config.num_classes,
        )?;
        let input = Input::Features(config.in_features);
        let mut body = Body::new(scope, label, config.num_classes, input);
        body.stem.push(Box::new(Flatten::new(&scope.pp("flatten"))));
        let fin = o.build_stack(&mut body, scope, config.in_features, Block::linear_layer)?;
        let fc = o
            .units()
            .linear(&scope.pp("head").pp("fc"), fin, config.num_classes, true)?;
        body.head.push(Box::new(fc));
        Ok(PlainMlp {
            config: config.clone(),
            body,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &PlainMlpConfig {
        &self.config
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
#[derive(Debug)]
pub struct PlainCnn<T: Element = f32> {
    config: PlainCnnConfig,
    body: Body<T>,
}

network_via_body!(PlainCnn);

impl<T: Element> PlainCnn<T> {
    /// Builds the CNN in `scope`.
    ///
    /// # Errors
    /// As [`PlainMlp::new`].
    pub fn new(scope: &Scope, config: &PlainCnnConfig) -> Result<Self> {
        let o = &config.stack;
        let label = o.checked_label(
            "plain-cnn",
            "in_channels/num_classes",
            config.in_channels,
            config.num_classes,
        )?;
        let input = Input::Image {
            channels: config.in_channels,
            min_size: 1,
        };
        let mut body = Body::new(scope, label, config.num_classes, input);
        let cin = o.build_stack(&mut body, scope, config.in_channels, Block::conv_layer)?;
        let h = scope.pp("head");
        body.head
            .push(Box::new(GlobalAvgPool2d::new(&h.pp("pool"))));
        let fc = o
            .units()
            .linear(&h.pp("fc"), cin, config.num_classes, true)?;
        body.head.push(Box::new(fc));
        Ok(PlainCnn {
            config: config.clone(),
            body,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &PlainCnnConfig {
        &self.config
    }
}
