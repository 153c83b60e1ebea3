//! Parameter initialisation: Kaiming (He), Xavier (Glorot), constant,
//! normal, uniform and PyTorch's default, all seeded and reproducible.

use gradlab_tensor::{Element, Tensor};

use crate::error::{NnError, Result};

/// Fan-in and fan-out of a weight, as PyTorch's
/// `_calculate_fan_in_and_fan_out` computes them: for a weight of shape
/// `[out, in, k...]`, `fan_in = in * prod(k)` and `fan_out = out * prod(k)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fans {
    /// Inputs feeding one output unit.
    pub fan_in: usize,
    /// Outputs fed by one input unit.
    pub fan_out: usize,
}

impl Fans {
    /// The fans of a weight of `shape` (`[out, in, k...]`); a rank-1 shape
    /// `[n]` has both fans `n`, a scalar both 1.
    ///
    /// # Examples
    /// ```
    /// use gradlab_nn::Fans;
    /// assert_eq!(Fans::of_shape(&[16, 3, 3, 3]), Fans { fan_in: 27, fan_out: 144 });
    /// assert_eq!(Fans::of_shape(&[10, 64]), Fans { fan_in: 64, fan_out: 10 });
    /// ```
    pub fn of_shape(shape: &[usize]) -> Fans {
        match shape {
            [] => Fans {
                fan_in: 1,
                fan_out: 1,
            },
            [n] => Fans {
                fan_in: *n,
                fan_out: *n,
            },
            [out, inp, rest @ ..] => {
                let field: usize = rest.iter().product();
                Fans {
                    fan_in: inp * field,
                    fan_out: out * field,
                }
            }
        }
    }
}

/// Which fan Kaiming initialisation preserves the variance of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    /// Preserve the variance of activations in the forward pass.
    FanIn,
    /// Preserve the variance of gradients in the backward pass.
    FanOut,
}

/// The non-linearity following a layer, for the gain of Kaiming and Xavier
/// initialisation (PyTorch's `nn.init.calculate_gain`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Nonlinearity {
    /// No non-linearity (or a convolution): gain 1.
    Linear,
    /// Logistic sigmoid: gain 1.
    Sigmoid,
    /// Hyperbolic tangent: gain 5/3.
    Tanh,
    /// ReLU: gain sqrt(2).
    Relu,
    /// Leaky ReLU with this negative slope: gain sqrt(2 / (1 + slope^2)).
    LeakyRelu(f64),
}

impl Nonlinearity {
    /// The recommended gain.
    pub fn gain(self) -> f64 {
        match self {
            Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
            Nonlinearity::Tanh => 5.0 / 3.0,
            Nonlinearity::Relu => 2f64.sqrt(),
            Nonlinearity::LeakyRelu(s) => (2.0 / (1.0 + s * s)).sqrt(),
        }
    }
}

/// How to fill a new parameter. Every variant is sampled from a seed, so the
/// same seed gives the same tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// Every element equal to the value.
    Constant(f64),
    /// `N(mean, std^2)`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// `U(low, high)`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// He et al. 2015: `N(0, std^2)` with `std = gain / sqrt(fan)`
    /// (PyTorch's `kaiming_normal_`).
    KaimingNormal {
        /// The fan whose variance is preserved.
        mode: FanMode,
        /// The following non-linearity (for the gain).
        nonlinearity: Nonlinearity,
    },
    /// He et al. 2015: `U(-b, b)` with `b = gain * sqrt(3 / fan)`
    /// (PyTorch's `kaiming_uniform_`).
    KaimingUniform {
        /// The fan whose variance is preserved.
        mode: FanMode,
        /// The following non-linearity (for the gain).
        nonlinearity: Nonlinearity,
    },
    /// Glorot & Bengio 2010: `N(0, std^2)` with
    /// `std = gain * sqrt(2 / (fan_in + fan_out))`.
    XavierNormal {
        /// Gain (1 for linear or sigmoid layers).
        gain: f64,
    },
    /// Glorot & Bengio 2010: `U(-b, b)` with
    /// `b = gain * sqrt(6 / (fan_in + fan_out))`.
    XavierUniform {
        /// Gain (1 for linear or sigmoid layers).
        gain: f64,
    },
    /// PyTorch's default for `Linear` and `Conv2d` weights and biases:
    /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` (its `kaiming_uniform_(a=sqrt(5))`),
    /// with `fan_in` of the layer's weight.
    TorchDefault,
}

impl Init {
    /// Kaiming normal, fan-in, for a ReLU network (the usual CNN choice).
    pub fn kaiming_relu() -> Init {
        Init::KaimingNormal {
            mode: FanMode::FanIn,
            nonlinearity: Nonlinearity::Relu,
        }
    }

    /// Samples a tensor of `shape`, using `fans` (usually those of the layer's
    /// weight, also for its bias) for the scaled variants.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a non-finite or negative spread, or a
    /// zero fan where one is needed.
    ///
    /// # Examples
    /// ```
    /// use gradlab_nn::{Fans, Init};
    /// use gradlab_tensor::Tensor;
    /// let w: Tensor<f32> = Init::kaiming_relu().sample(&[64, 32], Fans::of_shape(&[64, 32]), 7)?;
    /// let var = w.as_slice().iter().map(|x| (x * x) as f64).sum::<f64>() / w.len() as f64;
    /// assert!((var - 2.0 / 32.0).abs() < 0.01);
    /// # Ok::<(), gradlab_nn::NnError>(())
    /// ```
    pub fn sample<T: Element>(&self, shape: &[usize], fans: Fans, seed: u64) -> Result<Tensor<T>> {
        let fan = |mode: FanMode| -> Result<f64> {
            let f = match mode {
                FanMode::FanIn => fans.fan_in,
                FanMode::FanOut => fans.fan_out,
            };
            if f == 0 {
                return Err(NnError::config(
                    "init",
                    format!("a zero fan ({fans:?}) cannot scale an initialisation"),
                ));
            }
            Ok(f as f64)
        };
        let sum_fans = || -> Result<f64> {
            let s = fans.fan_in + fans.fan_out;
            if s == 0 {
                return Err(NnError::config("init", format!("zero fans {fans:?}")));
            }
            Ok(s as f64)
        };
        let t = match *self {
            Init::Constant(c) => {
                if !c.is_finite() {
                    return Err(NnError::config(
                        "init",
                        format!("constant {c} is not finite"),
                    ));
                }
                Tensor::full(shape, T::of_f64(c))
            }
            Init::Normal { mean, std } => Tensor::rand_normal(shape, mean, std, seed)?,
            Init::Uniform { low, high } => Tensor::rand_uniform(shape, low, high, seed)?,
            Init::KaimingNormal { mode, nonlinearity } => {
                let std = nonlinearity.gain() / fan(mode)?.sqrt();
                Tensor::rand_normal(shape, 0.0, std, seed)?
            }
            Init::KaimingUniform { mode, nonlinearity } => {
                let b = nonlinearity.gain() * (3.0 / fan(mode)?).sqrt();
                Tensor::rand_uniform(shape, -b, b, seed)?
            }
            Init::XavierNormal { gain } => {
                let std = gain * (2.0 / sum_fans()?).sqrt();
                Tensor::rand_normal(shape, 0.0, std, seed)?
            }
            Init::XavierUniform { gain } => {
                let b = gain * (6.0 / sum_fans()?).sqrt();
                Tensor::rand_uniform(shape, -b, b, seed)?
            }
            Init::TorchDefault => {
                let b = 1.0 / fan(FanMode::FanIn)?.sqrt();
                Tensor::rand_uniform(shape, -b, b, seed)?
            }
        };
        Ok(t)
    }
}
