//! Element-wise activation layers: ReLU, leaky ReLU, tanh, sigmoid, GELU.

use gradlab_autodiff::{expect_arity, Op, Result as AdResult, Var};
use gradlab_tensor::{Element, Tensor};

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::layer_info::{LayerInfo, LayerKind};
use crate::module::{HasParams, Module};
use crate::param::{Param, Scope};

/// Leaky ReLU `y = x` for `x > 0`, `slope * x` otherwise; VJP `g * (x > 0 ? 1 : slope)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakyReluOp {
    /// The negative slope (PyTorch's default 0.01).
    pub slope: f64,
}

impl<T: Element> Op<T> for LeakyReluOp {
    fn name(&self) -> &'static str {
        "leaky_relu"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> AdResult<Tensor<T>> {
        expect_arity("leaky_relu", inputs, 1)?;
        let s = T::of_f64(self.slope);
        Ok(inputs[0].map(|x| if x > T::zero() { x } else { s * x }))
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _output: &Tensor<T>,
        grad_output: &Tensor<T>,
        needs: &[bool],
    ) -> AdResult<Vec<Option<Tensor<T>>>> {
        if !needs[0] {
            return Ok(vec![None]);
        }
        let s = T::of_f64(self.slope);
        let mut g = grad_output.clone();
        for (g, &x) in g.as_slice_mut().iter_mut().zip(inputs[0].as_slice()) {
            if x <= T::zero() {
                *g = *g * s;
            }
        }
        Ok(vec![Some(g)])
    }
}

const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// The exact GELU (Hendrycks & Gimpel 2016), PyTorch's default
/// `approximate='none'`: `y = x Phi(x)` with `Phi(x) = (1 + erf(x / sqrt 2)) / 2`
/// the standard normal CDF. VJP `g * (Phi(x) + x phi(x))`, `phi` the normal
/// density. Evaluated in `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GeluOp;

fn phi_cdf(x: f64) -> f64 {
    0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))
}

impl<T: Element> Op<T> for GeluOp {
    fn name(&self) -> &'static str {
        "gelu"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> AdResult<Tensor<T>> {
        expect_arity("gelu", inputs, 1)?;
        Ok(inputs[0].map(|x| {
            let x = x.as_f64();
            T::of_f64(x * phi_cdf(x))
        }))
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _output: &Tensor<T>,
        grad_output: &Tensor<T>,
        needs: &[bool],
    ) -> AdResult<Vec<Option<Tensor<T>>>> {
        if !needs[0] {
            return Ok(vec![None]);
        }
        let mut g = grad_output.clone();
        for (g, &x) in g.as_slice_mut().iter_mut().zip(inputs[0].as_slice()) {
            let x = x.as_f64();
            let d = phi_cdf(x) + x * FRAC_1_SQRT_2PI * (-0.5 * x * x).exp();
            *g = T::of_f64(g.as_f64() * d);
        }
        Ok(vec![Some(g)])
    }
}

/// Which function an [`Activation`] applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ActivationKind {
    /// `max(x, 0)`, PyTorch's `nn.ReLU` (Nair & Hinton 2010).
    Relu,
    /// `x` for `x > 0`, `slope * x` otherwise, PyTorch's `nn.LeakyReLU` (Maas et al. 2013).
    LeakyRelu(f64),
    /// `tanh x`, PyTorch's `nn.Tanh`.
    Tanh,
    /// `1 / (1 + e^-x)`, PyTorch's `nn.Sigmoid`.
    Sigmoid,
    /// `x Phi(x)`, the exact GELU, PyTorch's `nn.GELU()` (Hendrycks & Gimpel 2016).
    Gelu,
}

impl ActivationKind {
    /// A short lower-case name (`"relu"`, `"leaky_relu"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ActivationKind::Relu => "relu",
            ActivationKind::LeakyRelu(_) => "leaky_relu",
            ActivationKind::Tanh => "tanh",
            ActivationKind::Sigmoid => "sigmoid",
            ActivationKind::Gelu => "gelu",
        }
    }
}

/// An element-wise activation layer (no parameters); taps its output under its name.
///
/// # Shapes
/// Any input; the output has the same shape.
///
/// # Examples
/// ```
/// use gradlab_nn::{Activation, ActivationKind, Ctx, Module, Scope};
/// use gradlab_tensor::Tensor;
/// let mut act = Activation::<f32>::new(&Scope::new(0).pp("act"), ActivationKind::LeakyRelu(0.1))?;
/// let mut cx = Ctx::new();
/// let x = cx.input(Tensor::from_vec(&[2], vec![-1.0, 2.0])?);
/// let y = act.forward(&mut cx, x)?;
/// assert_eq!(cx.value(y)?.to_vec(), vec![-0.1, 2.0]);
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Activation<T: Element = f32> {
    name: String,
    kind: ActivationKind,
    training: bool,
    _elem: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element> Activation<T> {
    /// An activation layer named by `scope`.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a non-finite leaky slope.
    pub fn new(scope: &Scope, kind: ActivationKind) -> Result<Self> {
        if let ActivationKind::LeakyRelu(s) = kind {
            if !s.is_finite() {
                return Err(NnError::config(
                    scope.prefix(),
                    format!("leaky ReLU slope must be finite, got {s}"),
                ));
            }
        }
        Ok(Activation {
            name: scope.prefix().to_string(),
            kind,
            training: true,
            _elem: std::marker::PhantomData,
        })
    }

    /// ReLU named by `scope`.
    pub fn relu(scope: &Scope) -> Self {
        Activation {
            name: scope.prefix().to_string(),
            kind: ActivationKind::Relu,
            training: true,
            _elem: std::marker::PhantomData,
        }
    }

    /// The function applied.
    pub fn kind(&self) -> ActivationKind {
        self.kind
    }
}

impl<T: Element> HasParams<T> for Activation<T> {
    fn visit_params<'a>(&'a self, _f: &mut dyn FnMut(&'a Param<T>)) {}
    fn visit_params_mut<'a>(&'a mut self, _f: &mut dyn FnMut(&'a mut Param<T>)) {}
}

impl<T: Element> Module<T> for Activation<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> Result<Var> {
        let g = cx.graph_mut();
        let y = match self.kind {
            ActivationKind::Relu => g.relu(x)?,
            ActivationKind::LeakyRelu(slope) => g.apply(LeakyReluOp { slope }, &[x])?,
            ActivationKind::Tanh => g.tanh(x)?,
            ActivationKind::Sigmoid => g.sigmoid(x)?,
            ActivationKind::Gelu => g.apply(GeluOp, &[x])?,
        };
        cx.tap(&self.name, y);
        Ok(y)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn describe(&self, out: &mut Vec<LayerInfo>) {
        out.push(LayerInfo::leaf(self, LayerKind::Activation(self.kind)));
    }
}
