//! The leaf layers the architectures are made of ([`Layer`], crate-private),
//! chains of them ([`Chain`]), how they build themselves from a network's
//! options ([`Units`]), and the public description of each leaf
//! ([`LayerInfo`], [`LayerKind`]) that summaries print.

use std::fmt;

use gradlab_autodiff::Var;
use gradlab_conv::{Conv2dSpec, ConvKind, Pool2dSpec};
use gradlab_nn::{
    Activation, ActivationKind, AvgPool2d, BatchNorm1d, BatchNorm2d, BatchNormConfig, Conv2d,
    Conv2dConfig, Ctx, Dropout, Fans, Flatten, GlobalAvgPool2d, Init, Linear, LinearConfig,
    MaxPool2d, Module, Param, Scope,
};
use gradlab_tensor::Element;

use crate::error::{ArchError, Result};
use crate::shortcut::ShortcutA;

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
    /// Dropout with drop probability `p`.
    Dropout {
        /// Drop probability.
        p: f64,
    },
    /// The parameter-free option-A shortcut ([`ShortcutA`]).
    ShortcutA {
        /// Input channels.
        in_channels: usize,
        /// Output channels (the extra ones are zeros).
        out_channels: usize,
        /// Subsampling step.
        stride: usize,
    },
}

impl LayerKind {
    /// Multiply-accumulates of one example through this layer, given the
    /// layer's output shape **without** the batch axis (`[C, H, W]` or `[F]`).
    ///
    /// Convolutions count `C_out H_out W_out (C_in / groups) kH kW` (what
    /// [`Conv2dSpec::macs`] gives for a batch of one), linear layers
    /// `in * out`; normalisation, activations, pooling, shortcuts and the
    /// residual additions count 0, as the usual MAC tables do.
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
            LayerKind::Dropout { p } => write!(f, "dropout p={p}"),
            LayerKind::ShortcutA { stride, .. } => write!(f, "shortcut A (pad)/{stride}"),
        }
    }
}

/// One leaf layer of a network: its dotted name (also its tap name), what it
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

/// A leaf layer of an architecture (one of the `gradlab-nn` layers, or the
/// option-A shortcut).
#[derive(Debug, Clone)]
pub(crate) enum Layer<T: Element> {
    Conv(Conv2d<T>),
    Bn2(BatchNorm2d<T>),
    Bn1(BatchNorm1d<T>),
    Act(Activation<T>),
    Linear(Linear<T>),
    MaxPool(MaxPool2d<T>),
    AvgPool(AvgPool2d<T>),
    Gap(GlobalAvgPool2d<T>),
    Flatten(Flatten<T>),
    Dropout(Dropout<T>),
    ShortcutA(ShortcutA<T>),
}

impl<T: Element> Layer<T> {
    fn module(&self) -> &dyn Module<T> {
        match self {
            Layer::Conv(m) => m,
            Layer::Bn2(m) => m,
            Layer::Bn1(m) => m,
            Layer::Act(m) => m,
            Layer::Linear(m) => m,
            Layer::MaxPool(m) => m,
            Layer::AvgPool(m) => m,
            Layer::Gap(m) => m,
            Layer::Flatten(m) => m,
            Layer::Dropout(m) => m,
            Layer::ShortcutA(m) => m,
        }
    }

    fn module_mut(&mut self) -> &mut dyn Module<T> {
        match self {
            Layer::Conv(m) => m,
            Layer::Bn2(m) => m,
            Layer::Bn1(m) => m,
            Layer::Act(m) => m,
            Layer::Linear(m) => m,
            Layer::MaxPool(m) => m,
            Layer::AvgPool(m) => m,
            Layer::Gap(m) => m,
            Layer::Flatten(m) => m,
            Layer::Dropout(m) => m,
            Layer::ShortcutA(m) => m,
        }
    }

    pub(crate) fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> gradlab_nn::Result<Var> {
        self.module_mut().forward(cx, x)
    }

    pub(crate) fn set_training(&mut self, training: bool) {
        self.module_mut().set_training(training)
    }

    pub(crate) fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        self.module().visit_params(f)
    }

    pub(crate) fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        self.module_mut().visit_params_mut(f)
    }

    pub(crate) fn info(&self) -> LayerInfo {
        let kind = match self {
            Layer::Conv(m) => LayerKind::Conv2d {
                spec: *m.spec(),
                bias: m.bias().is_some(),
            },
            Layer::Bn2(m) => LayerKind::BatchNorm2d {
                features: m.num_features(),
            },
            Layer::Bn1(m) => LayerKind::BatchNorm1d {
                features: m.num_features(),
            },
            Layer::Act(m) => LayerKind::Activation(m.kind()),
            Layer::Linear(m) => LayerKind::Linear {
                in_features: m.in_features(),
                out_features: m.out_features(),
                bias: m.bias().is_some(),
            },
            Layer::MaxPool(m) => LayerKind::MaxPool2d(*m.spec()),
            Layer::AvgPool(m) => LayerKind::AvgPool2d(*m.spec()),
            Layer::Gap(_) => LayerKind::GlobalAvgPool2d,
            Layer::Flatten(_) => LayerKind::Flatten,
            Layer::Dropout(m) => LayerKind::Dropout { p: m.p() },
            Layer::ShortcutA(m) => LayerKind::ShortcutA {
                in_channels: m.in_channels(),
                out_channels: m.out_channels(),
                stride: m.stride(),
            },
        };
        LayerInfo {
            name: self.module().name().to_string(),
            kind,
            params: self.module().num_trainable(),
        }
    }
}

/// Leaf layers applied one after the other (no tap of its own).
#[derive(Debug, Clone)]
pub(crate) struct Chain<T: Element> {
    pub(crate) layers: Vec<Layer<T>>,
}

impl<T: Element> Chain<T> {
    pub(crate) fn new() -> Self {
        Chain { layers: Vec::new() }
    }

    pub(crate) fn push(&mut self, layer: Layer<T>) {
        self.layers.push(layer);
    }

    pub(crate) fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> gradlab_nn::Result<Var> {
        let mut h = x;
        for l in &mut self.layers {
            h = l.forward(cx, h)?;
        }
        Ok(h)
    }

    pub(crate) fn set_training(&mut self, training: bool) {
        for l in &mut self.layers {
            l.set_training(training);
        }
    }

    pub(crate) fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        for l in &self.layers {
            l.visit_params(f);
        }
    }

    pub(crate) fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        for l in &mut self.layers {
            l.visit_params_mut(f);
        }
    }

    pub(crate) fn infos(&self, out: &mut Vec<LayerInfo>) {
        out.extend(self.layers.iter().map(Layer::info));
    }
}

/// The weight initialisation `init` with its standard deviation multiplied
/// by `gain` (mean unchanged), resolved for a weight with fans `fans`.
///
/// # Errors
/// [`ArchError::InvalidConfig`] for a gain that is not positive and finite.
pub fn scaled_init(init: &Init, gain: f64, fans: Fans) -> Result<Init> {
    if !(gain > 0.0 && gain.is_finite()) {
        return Err(ArchError::config(
            "init",
            "gain",
            gain,
            "the gain must be positive and finite",
        ));
    }
    if gain == 1.0 {
        return Ok(init.clone());
    }
    let fan = |mode: gradlab_nn::FanMode| -> f64 {
        match mode {
            gradlab_nn::FanMode::FanIn => fans.fan_in.max(1) as f64,
            gradlab_nn::FanMode::FanOut => fans.fan_out.max(1) as f64,
        }
    };
    Ok(match *init {
        // A constant has no spread: the gain scales the value itself.
        Init::Constant(c) => Init::Constant(c * gain),
        Init::Normal { mean, std } => Init::Normal {
            mean,
            std: std * gain,
        },
        Init::Uniform { low, high } => {
            let (mid, half) = ((low + high) / 2.0, (high - low) / 2.0);
            Init::Uniform {
                low: mid - gain * half,
                high: mid + gain * half,
            }
        }
        Init::KaimingNormal { mode, nonlinearity } => Init::Normal {
            mean: 0.0,
            std: gain * nonlinearity.gain() / fan(mode).sqrt(),
        },
        Init::KaimingUniform { mode, nonlinearity } => {
            let b = gain * nonlinearity.gain() * (3.0 / fan(mode)).sqrt();
            Init::Uniform { low: -b, high: b }
        }
        Init::XavierNormal { gain: g } => Init::XavierNormal { gain: g * gain },
        Init::XavierUniform { gain: g } => Init::XavierUniform { gain: g * gain },
        Init::TorchDefault => {
            let b = gain / (fans.fan_in.max(1) as f64).sqrt();
            Init::Uniform { low: -b, high: b }
        }
    })
}

/// How a network builds its leaf layers: the activation, whether there is
/// BatchNorm (convolutions and linear layers get a bias exactly when there
/// is none), and the weight initialisation with its gain.
#[derive(Debug, Clone)]
pub(crate) struct Units {
    pub(crate) activation: ActivationKind,
    pub(crate) batch_norm: bool,
    pub(crate) init: Init,
    pub(crate) gain: f64,
    pub(crate) bias_init: Init,
}

impl Units {
    pub(crate) fn conv<T: Element>(&self, scope: &Scope, spec: Conv2dSpec) -> Result<Layer<T>> {
        spec.validate().map_err(gradlab_nn::NnError::from)?;
        let fans = Fans::of_shape(&spec.weight_shape());
        let config = Conv2dConfig {
            bias: !self.batch_norm,
            weight_init: scaled_init(&self.init, self.gain, fans)?,
            bias_init: self.bias_init.clone(),
        };
        Ok(Layer::Conv(Conv2d::new(scope, spec, config)?))
    }

    /// A convolution with a bias whatever the BatchNorm setting (heads).
    pub(crate) fn conv_with_bias<T: Element>(
        &self,
        scope: &Scope,
        spec: Conv2dSpec,
    ) -> Result<Layer<T>> {
        spec.validate().map_err(gradlab_nn::NnError::from)?;
        let fans = Fans::of_shape(&spec.weight_shape());
        let config = Conv2dConfig {
            bias: true,
            weight_init: scaled_init(&self.init, self.gain, fans)?,
            bias_init: self.bias_init.clone(),
        };
        Ok(Layer::Conv(Conv2d::new(scope, spec, config)?))
    }

    /// A linear layer; `bias` forces a bias (classifier heads always have one).
    pub(crate) fn linear<T: Element>(
        &self,
        scope: &Scope,
        in_features: usize,
        out_features: usize,
        bias: bool,
    ) -> Result<Layer<T>> {
        let fans = Fans::of_shape(&[out_features, in_features]);
        let config = LinearConfig {
            bias: bias || !self.batch_norm,
            weight_init: scaled_init(&self.init, self.gain, fans)?,
            bias_init: self.bias_init.clone(),
        };
        Ok(Layer::Linear(Linear::new(
            scope,
            in_features,
            out_features,
            config,
        )?))
    }

    pub(crate) fn bn2<T: Element>(&self, scope: &Scope, c: usize) -> Result<Option<Layer<T>>> {
        if !self.batch_norm {
            return Ok(None);
        }
        Ok(Some(Layer::Bn2(BatchNorm2d::new(
            scope,
            c,
            BatchNormConfig::default(),
        )?)))
    }

    pub(crate) fn bn1<T: Element>(&self, scope: &Scope, c: usize) -> Result<Option<Layer<T>>> {
        if !self.batch_norm {
            return Ok(None);
        }
        Ok(Some(Layer::Bn1(BatchNorm1d::new(
            scope,
            c,
            BatchNormConfig::default(),
        )?)))
    }

    pub(crate) fn act<T: Element>(&self, scope: &Scope) -> Result<Layer<T>> {
        Ok(Layer::Act(Activation::new(scope, self.activation)?))
    }

    /// Appends `conv -> [bn] -> [act]` named `<conv>`, `<bn>`, `<act>` in `scope`.
    pub(crate) fn conv_bn_act<T: Element>(
        &self,
        chain: &mut Chain<T>,
        scope: &Scope,
        names: [&str; 3],
        spec: Conv2dSpec,
        with_act: bool,
    ) -> Result<()> {
        chain.push(self.conv(&scope.pp(names[0]), spec)?);
        if let Some(bn) = self.bn2(&scope.pp(names[1]), spec.out_channels)? {
            chain.push(bn);
        }
        if with_act {
            chain.push(self.act(&scope.pp(names[2]))?);
        }
        Ok(())
    }
}

/// Global average pooling layer named by `scope`.
pub(crate) fn gap<T: Element>(scope: &Scope) -> Layer<T> {
    Layer::Gap(GlobalAvgPool2d::new(scope))
}

/// Flatten layer named by `scope`.
pub(crate) fn flatten<T: Element>(scope: &Scope) -> Layer<T> {
    Layer::Flatten(Flatten::new(scope))
}

/// Max-pooling layer named by `scope`.
pub(crate) fn max_pool<T: Element>(scope: &Scope, spec: Pool2dSpec) -> Result<Layer<T>> {
    Ok(Layer::MaxPool(MaxPool2d::new(scope, spec)?))
}

/// Average-pooling layer named by `scope`.
pub(crate) fn avg_pool<T: Element>(scope: &Scope, spec: Pool2dSpec) -> Result<Layer<T>> {
    Ok(Layer::AvgPool(AvgPool2d::new(scope, spec)?))
}

/// Dropout layer named by `scope`.
pub(crate) fn dropout<T: Element>(scope: &Scope, p: f64) -> Result<Layer<T>> {
    Ok(Layer::Dropout(Dropout::new(scope, p)?))
}

/// ReLU layer named by `scope` (heads use ReLU whatever the network's activation).
pub(crate) fn relu<T: Element>(scope: &Scope) -> Layer<T> {
    Layer::Act(Activation::relu(scope))
}
