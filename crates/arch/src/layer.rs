//! How the architectures build their leaf layers (`gradlab-nn` layers)
//! from a network's options ([`Units`]), and [`scaled_init`]. The layers
//! describe themselves ([`Module::describe`](gradlab_nn::Module::describe));
//! chains of them are [`Sequential`]s.

use gradlab_conv::Conv2dSpec;
use gradlab_nn::{
    Activation, ActivationKind, BatchNorm1d, BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig,
    Fans, Init, Linear, LinearConfig, Scope, Sequential,
};
use gradlab_tensor::Element;

use crate::error::{ArchError, Result};

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
    /// A convolution with a bias exactly when there is no BatchNorm.
    pub(crate) fn conv<T: Element>(&self, scope: &Scope, spec: Conv2dSpec) -> Result<Conv2d<T>> {
        self.conv_biased(scope, spec, !self.batch_norm)
    }

    /// A convolution with a bias whatever the BatchNorm setting (heads).
    pub(crate) fn conv_with_bias<T: Element>(
        &self,
        scope: &Scope,
        spec: Conv2dSpec,
    ) -> Result<Conv2d<T>> {
        self.conv_biased(scope, spec, true)
    }

    fn conv_biased<T: Element>(
        &self,
        scope: &Scope,
        spec: Conv2dSpec,
        bias: bool,
    ) -> Result<Conv2d<T>> {
        // Validate first: the fans of an invalid spec would be meaningless.
        spec.validate().map_err(gradlab_nn::NnError::from)?;
        let fans = Fans::of_shape(&spec.weight_shape());
        let config = Conv2dConfig {
            bias,
            weight_init: scaled_init(&self.init, self.gain, fans)?,
            bias_init: self.bias_init.clone(),
        };
        Ok(Conv2d::new(scope, spec, config)?)
    }

    /// A linear layer; `bias` forces a bias (classifier heads always have one).
    pub(crate) fn linear<T: Element>(
        &self,
        scope: &Scope,
        in_features: usize,
        out_features: usize,
        bias: bool,
    ) -> Result<Linear<T>> {
        let fans = Fans::of_shape(&[out_features, in_features]);
        let config = LinearConfig {
            bias: bias || !self.batch_norm,
            weight_init: scaled_init(&self.init, self.gain, fans)?,
            bias_init: self.bias_init.clone(),
        };
        Ok(Linear::new(scope, in_features, out_features, config)?)
    }

    /// Appends a BatchNorm over `c` image channels to `seq`, if the network has BatchNorm.
    pub(crate) fn bn2<T: Element>(
        &self,
        seq: &mut Sequential<T>,
        scope: &Scope,
        c: usize,
    ) -> Result<()> {
        if self.batch_norm {
            let bn = BatchNorm2d::new(scope, c, BatchNormConfig::default())?;
            seq.push(Box::new(bn));
        }
        Ok(())
    }

    /// Appends a BatchNorm over `c` features to `seq`, if the network has BatchNorm.
    pub(crate) fn bn1<T: Element>(
        &self,
        seq: &mut Sequential<T>,
        scope: &Scope,
        c: usize,
    ) -> Result<()> {
        if self.batch_norm {
            let bn = BatchNorm1d::new(scope, c, BatchNormConfig::default())?;
            seq.push(Box::new(bn));
        }
        Ok(())
    }

    /// The network's activation.
    pub(crate) fn act<T: Element>(&self, scope: &Scope) -> Result<Activation<T>> {
        Ok(Activation::new(scope, self.activation)?)
    }

    /// Appends `conv -> [bn] -> [act]` named `<conv>`, `<bn>`, `<act>` in `scope`.
    pub(crate) fn conv_bn_act<T: Element>(
        &self,
        seq: &mut Sequential<T>,
        scope: &Scope,
        names: [&str; 3],
        spec: Conv2dSpec,
        with_act: bool,
    ) -> Result<()> {
        seq.push(Box::new(self.conv(&scope.pp(names[0]), spec)?));
        self.bn2(seq, &scope.pp(names[1]), spec.out_channels)?;
        if with_act {
            seq.push(Box::new(self.act(&scope.pp(names[2]))?));
        }
        Ok(())
    }
}
