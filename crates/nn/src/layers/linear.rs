//! [`Linear`]: `y = x W^T + b`, and its fused op.

use gradlab_autodiff::{expect_arity, Op, Result as AdResult, Var};
use gradlab_tensor::{gemm, Element, Tensor};
use ndarray::{Array2, Axis};

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::init::{Fans, Init};
use crate::layer_info::{LayerInfo, LayerKind};
use crate::layers::{op_error, tensor_of, view1, view2};
use crate::module::{HasParams, Module};
use crate::param::{Param, Role, Scope};

/// The fused affine map `y = x W^T + b` (PyTorch's `F.linear`).
///
/// Inputs: `x` `[N, in]`, `W` `[out, in]`, optionally `b` `[out]`; output
/// `[N, out]`. VJPs: `dx = dy W`, `dW = dy^T x`, `db = sum_n dy[n, :]`, each
/// computed only when `needs` asks for it; the products run on the shared
/// GEMM with transposed views (no copies).
#[derive(Debug, Clone, Copy, Default)]
pub struct LinearOp;

impl<T: Element> Op<T> for LinearOp {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> AdResult<Tensor<T>> {
        if inputs.len() != 3 {
            expect_arity("linear", inputs, 2)?;
        }
        let x = view2("linear", "input", inputs[0])?;
        let w = view2("linear", "weight", inputs[1])?;
        if x.ncols() != w.ncols() {
            return Err(op_error(
                "linear",
                format!(
                    "input of shape {:?} does not fit weight of shape {:?}",
                    inputs[0].shape(),
                    inputs[1].shape()
                ),
            ));
        }
        let mut y = Array2::<T>::zeros((x.nrows(), w.nrows()));
        gemm(T::one(), x, w.t(), T::zero(), y.view_mut())?;
        if let Some(b) = inputs.get(2) {
            let b = view1("linear", "bias", b)?;
            if b.len() != w.nrows() {
                return Err(op_error(
                    "linear",
                    format!("bias of shape {:?} for {} outputs", b.shape(), w.nrows()),
                ));
            }
            for mut row in y.rows_mut() {
                row.zip_mut_with(&b, |o, &bi| *o = *o + bi);
            }
        }
        Ok(tensor_of(y))
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _output: &Tensor<T>,
        grad_output: &Tensor<T>,
        needs: &[bool],
    ) -> AdResult<Vec<Option<Tensor<T>>>> {
        let x = view2("linear", "input", inputs[0])?;
        let w = view2("linear", "weight", inputs[1])?;
        let dy = view2("linear", "grad_output", grad_output)?;
        let mut out = Vec::with_capacity(inputs.len());
        out.push(if needs[0] {
            let mut dx = Array2::<T>::zeros(x.raw_dim());
            gemm(T::one(), dy, w, T::zero(), dx.view_mut())?;
            Some(tensor_of(dx))
        } else {
            None
        });
        out.push(if needs[1] {
            let mut dw = Array2::<T>::zeros(w.raw_dim());
            gemm(T::one(), dy.t(), x, T::zero(), dw.view_mut())?;
            Some(tensor_of(dw))
        } else {
            None
        });
        if inputs.len() == 3 {
            out.push(needs[2].then(|| tensor_of(dy.sum_axis(Axis(0)))));
        }
        Ok(out)
    }
}

/// Options of a [`Linear`] layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearConfig {
    /// Whether the layer adds a bias (default `true`).
    pub bias: bool,
    /// Initialisation of the weight (default PyTorch's, [`Init::TorchDefault`]).
    pub weight_init: Init,
    /// Initialisation of the bias, with the weight's fans (default PyTorch's).
    pub bias_init: Init,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig {
            bias: true,
            weight_init: Init::TorchDefault,
            bias_init: Init::TorchDefault,
        }
    }
}

/// A fully connected layer `y = x W^T + b`, PyTorch's `nn.Linear`.
///
/// Parameters: `<name>.weight` `[out, in]`, `<name>.bias` `[out]`, one depth index.
///
/// # Shapes
/// Input `[N, in]`, output `[N, out]`.
///
/// # Examples
/// ```
/// use gradlab_nn::{Ctx, Linear, LinearConfig, Module, Scope};
/// use gradlab_tensor::Tensor;
/// let mut fc = Linear::<f32>::new(&Scope::new(0).pp("fc"), 8, 3, LinearConfig::default())?;
/// let mut cx = Ctx::new();
/// let x = cx.input(Tensor::ones(&[5, 8]));
/// let y = fc.forward(&mut cx, x)?;
/// assert_eq!(cx.value(y)?.shape(), &[5, 3]);
/// assert_eq!(cx.tapped("fc"), Some(y));
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Linear<T: Element = f32> {
    name: String,
    in_features: usize,
    out_features: usize,
    weight: Param<T>,
    bias: Option<Param<T>>,
    training: bool,
}

impl<T: Element> Linear<T> {
    /// A layer named by `scope`, mapping `in_features` to `out_features`.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for zero features; [`NnError::InvalidName`]
    /// for a bad scope name.
    pub fn new(
        scope: &Scope,
        in_features: usize,
        out_features: usize,
        config: LinearConfig,
    ) -> Result<Self> {
        if in_features == 0 || out_features == 0 {
            return Err(NnError::config(
                scope.prefix(),
                format!("Linear needs positive features, got in={in_features}, out={out_features}"),
            ));
        }
        let depth = scope.next_depth();
        let shape = [out_features, in_features];
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
                &[out_features],
                &config.bias_init,
                fans,
            )?)
        } else {
            None
        };
        Ok(Linear {
            name: scope.prefix().to_string(),
            in_features,
            out_features,
            weight,
            bias,
            training: true,
        })
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The weight `[out, in]`.
    pub fn weight(&self) -> &Param<T> {
        &self.weight
    }

    /// The bias `[out]`, if any.
    pub fn bias(&self) -> Option<&Param<T>> {
        self.bias.as_ref()
    }
}

impl<T: Element> HasParams<T> for Linear<T> {
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

impl<T: Element> Module<T> for Linear<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> Result<Var> {
        let shape = cx.value(x)?.shape();
        if shape.len() != 2 || shape[1] != self.in_features {
            return Err(NnError::InputShape {
                layer: self.name.clone(),
                expected: format!("[N, {}]", self.in_features),
                got: shape.to_vec(),
            });
        }
        let w = cx.param(&self.weight);
        let y = match &self.bias {
            Some(b) => {
                let b = cx.param(b);
                cx.graph_mut().apply(LinearOp, &[x, w, b])?
            }
            None => cx.graph_mut().apply(LinearOp, &[x, w])?,
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
            LayerKind::Linear {
                in_features: self.in_features,
                out_features: self.out_features,
                bias: self.bias.is_some(),
            },
        ));
    }
}
