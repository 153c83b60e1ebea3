//! [`Conv2d`] and the autodiff wiring of the `gradlab-conv` kernels.

use gradlab_autodiff::{expect_arity, Op, Result as AdResult, Var};
use gradlab_conv::{conv2d, conv2d_gradients, Conv2dSpec, ConvKind, GradsWanted};
use gradlab_tensor::{Element, Tensor};

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::init::{Fans, Init};
use crate::layer_info::{LayerInfo, LayerKind};
use crate::layers::{op_error, tensor_of, view1, view4};
use crate::module::{HasParams, Module};
use crate::param::{Param, Role, Scope};

/// 2-D convolution as an autodiff op: the kernels of
/// [`gradlab_conv::conv2d`] and [`gradlab_conv::conv2d_backward`], any
/// [`Conv2dSpec`] (standard, pointwise, depthwise, grouped).
///
/// Inputs: `x` `[N, C_in, H, W]`, `w` `[C_out, C_in/groups, kH, kW]`,
/// optionally `b` `[C_out]`; output `[N, C_out, H_out, W_out]`.
/// VJPs: `dx[n, ci, ih, iw] += w[co, c, i, j] dy[n, co, oh, ow]`,
/// `dw[co, c, i, j] += x[n, ci, ih, iw] dy[n, co, oh, ow]` over every tap of the
/// forward pass, `db[co] = sum_{n, oh, ow} dy[n, co, oh, ow]`. Gradients that
/// `needs` does not ask for are not returned; the input's and the bias's
/// are not computed either ([`gradlab_conv::conv2d_gradients`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2dOp {
    /// The convolution's hyper-parameters.
    pub spec: Conv2dSpec,
}

impl<T: Element> Op<T> for Conv2dOp {
    fn name(&self) -> &'static str {
        "conv2d"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> AdResult<Tensor<T>> {
        if inputs.len() != 3 {
            expect_arity("conv2d", inputs, 2)?;
        }
        let x = view4("conv2d", "input", inputs[0])?;
        let w = view4("conv2d", "weight", inputs[1])?;
        let b = match inputs.get(2) {
            Some(b) => Some(view1("conv2d", "bias", b)?),
            None => None,
        };
        let y = conv2d(x, w, b, &self.spec).map_err(|e| op_error("conv2d", e.to_string()))?;
        Ok(tensor_of(y))
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _output: &Tensor<T>,
        grad_output: &Tensor<T>,
        needs: &[bool],
    ) -> AdResult<Vec<Option<Tensor<T>>>> {
        let x = view4("conv2d", "input", inputs[0])?;
        let w = view4("conv2d", "weight", inputs[1])?;
        let dy = view4("conv2d", "grad_output", grad_output)?;
        let has_bias = inputs.len() == 3;
        let wanted = GradsWanted {
            input: needs[0],
            bias: has_bias && needs[2],
        };
        let grads = conv2d_gradients(x, w, dy, &self.spec, wanted)
            .map_err(|e| op_error("conv2d", e.to_string()))?;
        let mut out = vec![
            grads.input.map(tensor_of),
            needs[1].then(|| tensor_of(grads.weight)),
        ];
        if has_bias {
            out.push(grads.bias.map(tensor_of));
        }
        Ok(out)
    }
}

/// Options of a [`Conv2d`] layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dConfig {
    /// Whether the layer adds a bias (default `true`; set `false` before BatchNorm).
    pub bias: bool,
    /// Initialisation of the weight (default PyTorch's, [`Init::TorchDefault`]).
    pub weight_init: Init,
    /// Initialisation of the bias, with the weight's fans (default PyTorch's).
    pub bias_init: Init,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Conv2dConfig {
            bias: true,
            weight_init: Init::TorchDefault,
            bias_init: Init::TorchDefault,
        }
    }
}

impl Conv2dConfig {
    /// No bias, Kaiming-normal (fan-in, ReLU) weights: the usual convolution
    /// before BatchNorm and ReLU.
    pub fn kaiming_no_bias() -> Self {
        Conv2dConfig {
            bias: false,
            weight_init: Init::kaiming_relu(),
            bias_init: Init::Constant(0.0),
        }
    }
}

/// A 2-D convolution layer over any [`Conv2dSpec`], PyTorch's `nn.Conv2d`.
///
/// Parameters: `<name>.weight` `[C_out, C_in/groups, kH, kW]` and
/// `<name>.bias` `[C_out]`, one depth index.
///
/// # Shapes
/// Input `[N, C_in, H, W]`, output `[N, C_out, H_out, W_out]` with
/// `H_out = floor((H + 2 pH - dH (kH - 1) - 1) / sH) + 1` (likewise for W).
///
/// # Examples
/// ```
/// use gradlab_conv::Conv2dSpec;
/// use gradlab_nn::{Conv2d, Conv2dConfig, Ctx, Module, Scope};
/// use gradlab_tensor::Tensor;
/// let spec = Conv2dSpec::new(3, 8, 3).padding(1).stride(2);
/// let mut conv = Conv2d::<f32>::new(&Scope::new(0).pp("stem"), spec, Conv2dConfig::default())?;
/// let mut cx = Ctx::new();
/// let x = cx.input(Tensor::ones(&[2, 3, 16, 16]));
/// let y = conv.forward(&mut cx, x)?;
/// assert_eq!(cx.value(y)?.shape(), &[2, 8, 8, 8]);
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Conv2d<T: Element = f32> {
    name: String,
    spec: Conv2dSpec,
    weight: Param<T>,
    bias: Option<Param<T>>,
    training: bool,
}

impl<T: Element> Conv2d<T> {
    /// A convolution named by `scope`.
    ///
    /// # Errors
    /// [`NnError::Conv`] for an invalid spec; [`NnError::InvalidName`] for a
    /// bad scope name.
    pub fn new(scope: &Scope, spec: Conv2dSpec, config: Conv2dConfig) -> Result<Self> {
        spec.validate()?;
        let depth = scope.next_depth();
        let shape = spec.weight_shape();
        let fans = Fans::of_shape(&shape);
        let weight = scope.param(
            "weight",
            Role::Weight,
            depth,
            &shape,
            &config.weight_init,
            fans,
        )?;
        let bias = if config.bias {
            Some(scope.param(
                "bias",
                Role::Bias,
                depth,
                &[spec.out_channels],
                &config.bias_init,
                fans,
            )?)
        } else {
            None
        };
        Ok(Conv2d {
            name: scope.prefix().to_string(),
            spec,
            weight,
            bias,
            training: true,
        })
    }

    /// The spec.
    pub fn spec(&self) -> &Conv2dSpec {
        &self.spec
    }

    /// What the convolution does with channels.
    pub fn kind(&self) -> ConvKind {
        self.spec.kind()
    }

    /// The weight.
    pub fn weight(&self) -> &Param<T> {
        &self.weight
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&Param<T>> {
        self.bias.as_ref()
    }
}

impl<T: Element> HasParams<T> for Conv2d<T> {
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        f(&self.weight);
        if let Some(b) = &self.bias {
            f(b);
        }
    }

    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        f(&mut self.weight);
        if let Some(b) = &mut self.bias {
            f(b);
        }
    }
}

impl<T: Element> Module<T> for Conv2d<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> Result<Var> {
        let shape = cx.value(x)?.shape();
        if shape.len() != 4 || shape[1] != self.spec.in_channels {
            return Err(NnError::InputShape {
                layer: self.name.clone(),
                expected: format!("[N, {}, H, W]", self.spec.in_channels),
                got: shape.to_vec(),
            });
        }
        self.spec.output_size(shape[2], shape[3])?;
        let op = Conv2dOp { spec: self.spec };
        let w = cx.param(&self.weight);
        let y = match &self.bias {
            Some(b) => {
                let b = cx.param(b);
                cx.graph_mut().apply(op, &[x, w, b])?
            }
            None => cx.graph_mut().apply(op, &[x, w])?,
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
        out.push(LayerInfo::leaf(
            self,
            LayerKind::Conv2d {
                spec: self.spec,
                bias: self.bias.is_some(),
            },
        ));
    }
}
