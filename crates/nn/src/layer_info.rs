//! What a module says about its leaf layers ([`Module::describe`]): their
//! names, what they compute ([`LayerKind`]) and their parameter counts, for
//! summaries and for diagnostics that look layers up by kind.

use std::fmt;

use gradlab_conv::{Conv2dSpec, ConvKind, Pool2dSpec};
use gradlab_tensor::Element;

use crate::layers::ActivationKind;
use crate::module::Module;

/// What a leaf layer computes, with the hyper-parameters that set its
/// parameter and MAC counts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LayerKind {
    /// A 2-D convolution (standard, pointwise, depthwise or grouped).
    Conv2d {
        /// Its hyper-parameters.
        spec: Conv2dSpec,
        /// Whether it adds a bias.
        bias: bool,
    },
    /// A fully connected layer.
    Linear {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
        /// Whether it adds a bias.
        bias: bool,
    },
    /// Batch normalisation over image channels.
    BatchNorm2d {
        /// Channels.
        features: usize,
    },
    /// Batch normalisation over features.
    BatchNorm1d {
        /// Features.
        features: usize,
    },
    /// An element-wise non-linearity.
    Activation(ActivationKind),
    /// Max pooling.
    MaxPool2d(Pool2dSpec),
    /// Average pooling.
    AvgPool2d(Pool2dSpec),
    /// Global average pooling to `[N, C]`.
    GlobalAvgPool2d,
    /// Flattening to `[N, features]`.
    Flatten,
    /// The identity.
    Identity,
    /// Dropout with drop probability `p`.
    Dropout {
        /// Drop probability.
        p: f64,
    },
    /// The parameter-free "option A" shortcut of He et al. (2016): stride
    /// subsampling and zero-padded extra channels (`gradlab-arch`'s
    /// `ShortcutA`).
    ShortcutA {
        /// Input channels.
        in_channels: usize,
        /// Output channels (the extra ones are zeros).
        out_channels: usize,
        /// Subsampling step.
        stride: usize,
    },
    /// A layer this enum has no variant for, by its type or a short label
    /// (what the default [`Module::describe`] reports).
    Custom(&'static str),
}

impl LayerKind {
    /// Multiply-accumulates of one example through this layer, given the
    /// layer's output shape **without** the batch axis (`[C, H, W]` or `[F]`).
    ///
    /// Convolutions count `C_out H_out W_out (C_in / groups) kH kW` (what
    /// [`Conv2dSpec::macs`] gives for a batch of one), linear layers
    /// `in * out`; normalisation, activations, pooling, shortcuts, custom
    /// layers and the residual additions count 0, as the usual MAC tables do.
    pub fn macs(&self, output_shape: &[usize]) -> u64 {
        match self {
            LayerKind::Conv2d { spec, .. } => {
                let [_, cig, kh, kw] = spec.weight_shape();
                let plane: u64 = output_shape.iter().map(|&d| d as u64).product();
                plane * (cig * kh * kw) as u64
            }
            LayerKind::Linear {
                in_features,
                out_features,
                ..
            } => (*in_features as u64) * (*out_features as u64),
            _ => 0,
        }
    }
}

impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerKind::Conv2d { spec, .. } => {
                let kind = match spec.kind() {
                    ConvKind::Standard => "conv",
                    ConvKind::Pointwise => "pointwise conv",
                    ConvKind::Depthwise => "depthwise conv",
                    ConvKind::Grouped => "grouped conv",
                };
                write!(
                    f,
                    "{kind} {}x{}/{}",
                    spec.kernel[0], spec.kernel[1], spec.stride[0]
                )
            }
            LayerKind::Linear { .. } => f.write_str("linear"),
            LayerKind::BatchNorm2d { .. } => f.write_str("batchnorm2d"),
            LayerKind::BatchNorm1d { .. } => f.write_str("batchnorm1d"),
            LayerKind::Activation(a) => f.write_str(a.as_str()),
            LayerKind::MaxPool2d(p) => {
                write!(f, "maxpool {}x{}/{}", p.kernel[0], p.kernel[1], p.stride[0])
            }
            LayerKind::AvgPool2d(p) => {
                write!(f, "avgpool {}x{}/{}", p.kernel[0], p.kernel[1], p.stride[0])
            }
            LayerKind::GlobalAvgPool2d => f.write_str("global avgpool"),
            LayerKind::Flatten => f.write_str("flatten"),
            LayerKind::Identity => f.write_str("identity"),
            LayerKind::Dropout { p } => write!(f, "dropout p={p}"),
            LayerKind::ShortcutA { stride, .. } => write!(f, "shortcut A (pad)/{stride}"),
            LayerKind::Custom(label) => f.write_str(label),
        }
    }
}

/// One leaf layer of a model: its dotted name (also its tap name), what it
/// computes and its number of trainable parameters (buffers excluded).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerInfo {
    /// Dotted name, e.g. `stage2.block1.conv1`.
    pub name: String,
    /// What it computes.
    pub kind: LayerKind,
    /// Trainable parameters.
    pub params: usize,
}

impl LayerInfo {
    /// The description of the leaf layer `module`, which computes `kind`:
    /// its name and trainable parameter count come from the module.
    ///
    /// # Examples
    /// ```
    /// use gradlab_nn::{LayerInfo, LayerKind, Linear, LinearConfig, Scope};
    /// let fc = Linear::<f32>::new(&Scope::new(0).pp("fc"), 4, 3, LinearConfig::default())?;
    /// let info = LayerInfo::leaf(&fc, LayerKind::Custom("my linear"));
    /// assert_eq!((info.name.as_str(), info.params), ("fc", 15));
    /// # Ok::<(), gradlab_nn::NnError>(())
    /// ```
    pub fn leaf<T: Element, M: Module<T> + ?Sized>(module: &M, kind: LayerKind) -> Self {
        LayerInfo {
            name: module.name().to_string(),
            kind,
            params: module.num_trainable(),
        }
    }
}
