//! Pooling layers and the autodiff wiring of the `gradlab-conv` pooling kernels.

use gradlab_autodiff::{expect_arity, Op, Result as AdResult, Var};
use gradlab_conv::{
    avg_pool2d, avg_pool2d_backward, global_avg_pool2d, global_avg_pool2d_backward, max_pool2d,
    max_pool2d_backward, Pool2dSpec,
};
use gradlab_tensor::{Element, Tensor};

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::layer_info::{LayerInfo, LayerKind};
use crate::layers::{op_error, tensor_of, view4};
use crate::module::{HasParams, Module};
use crate::param::{Param, Scope};

/// Max pooling as an autodiff op ([`gradlab_conv::max_pool2d`]): each output
/// is the largest input of its window. VJP: each output gradient goes to the
/// arg-max of its window (the first one on ties).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxPool2dOp {
    /// The window.
    pub spec: Pool2dSpec,
}

impl<T: Element> Op<T> for MaxPool2dOp {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> AdResult<Tensor<T>> {
        expect_arity("max_pool2d", inputs, 1)?;
        let x = view4("max_pool2d", "input", inputs[0])?;
        let y = max_pool2d(x, &self.spec).map_err(|e| op_error("max_pool2d", e.to_string()))?;
        Ok(tensor_of(y))
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
        let x = view4("max_pool2d", "input", inputs[0])?;
        let dy = view4("max_pool2d", "grad_output", grad_output)?;
        let dx = max_pool2d_backward(x, dy, &self.spec)
            .map_err(|e| op_error("max_pool2d", e.to_string()))?;
        Ok(vec![Some(tensor_of(dx))])
    }
}

/// Average pooling as an autodiff op ([`gradlab_conv::avg_pool2d`]): each
/// output is the mean of its window. VJP: each output gradient is shared
/// equally by the inputs of its window (divided by the same divisor).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AvgPool2dOp {
    /// The window.
    pub spec: Pool2dSpec,
}

impl<T: Element> Op<T> for AvgPool2dOp {
    fn name(&self) -> &'static str {
        "avg_pool2d"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> AdResult<Tensor<T>> {
        expect_arity("avg_pool2d", inputs, 1)?;
        let x = view4("avg_pool2d", "input", inputs[0])?;
        let y = avg_pool2d(x, &self.spec).map_err(|e| op_error("avg_pool2d", e.to_string()))?;
        Ok(tensor_of(y))
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
        let x = view4("avg_pool2d", "input", inputs[0])?;
        let dy = view4("avg_pool2d", "grad_output", grad_output)?;
        let dx = avg_pool2d_backward(x, dy, &self.spec)
            .map_err(|e| op_error("avg_pool2d", e.to_string()))?;
        Ok(vec![Some(tensor_of(dx))])
    }
}

/// Global average pooling to `[N, C]` as an autodiff op
/// ([`gradlab_conv::global_avg_pool2d`]): `y[n, c] = mean_{h, w} x[n, c, h, w]`.
/// VJP: `dx[n, c, h, w] = dy[n, c] / (H W)`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GlobalAvgPool2dOp;

impl<T: Element> Op<T> for GlobalAvgPool2dOp {
    fn name(&self) -> &'static str {
        "global_avg_pool2d"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> AdResult<Tensor<T>> {
        expect_arity("global_avg_pool2d", inputs, 1)?;
        let x = view4("global_avg_pool2d", "input", inputs[0])?;
        let (n, c) = (x.shape()[0], x.shape()[1]);
        let y = global_avg_pool2d(x).map_err(|e| op_error("global_avg_pool2d", e.to_string()))?;
        Ok(Tensor::from_vec(&[n, c], y.into_raw_vec_and_offset().0)?)
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
        let x = view4("global_avg_pool2d", "input", inputs[0])?;
        let (n, c) = (x.shape()[0], x.shape()[1]);
        let dy = grad_output.reshape(&[n, c, 1, 1])?;
        let dy = view4("global_avg_pool2d", "grad_output", &dy)?;
        let dx = global_avg_pool2d_backward(x, dy)
            .map_err(|e| op_error("global_avg_pool2d", e.to_string()))?;
        Ok(vec![Some(tensor_of(dx))])
    }
}

fn check_image(layer: &str, cx: &Ctx<impl Element>, x: Var) -> Result<[usize; 4]> {
    let shape = cx.value(x)?.shape();
    match *shape {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(NnError::InputShape {
            layer: layer.to_string(),
            expected: "[N, C, H, W]".into(),
            got: shape.to_vec(),
        }),
    }
}

macro_rules! pool_layer {
    ($(#[$doc:meta])* $name:ident, $op:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name<T: Element = f32> {
            name: String,
            spec: Pool2dSpec,
            training: bool,
            _elem: std::marker::PhantomData<fn() -> T>,
        }

        impl<T: Element> $name<T> {
            /// A pooling layer named by `scope`.
            ///
            /// # Errors
            /// [`NnError::Conv`] for a zero kernel or stride, or a padding
            /// above half the kernel.
            pub fn new(scope: &Scope, spec: Pool2dSpec) -> Result<Self> {
                spec.validate()?;
                Ok($name {
                    name: scope.prefix().to_string(),
                    spec,
                    training: true,
                    _elem: std::marker::PhantomData,
                })
            }

            /// The window.
            pub fn spec(&self) -> &Pool2dSpec {
                &self.spec
            }
        }

        impl<T: Element> HasParams<T> for $name<T> {
            fn visit_params<'a>(&'a self, _f: &mut dyn FnMut(&'a Param<T>)) {}
            fn visit_params_mut<'a>(&'a mut self, _f: &mut dyn FnMut(&'a mut Param<T>)) {}
        }

        impl<T: Element> Module<T> for $name<T> {
            fn name(&self) -> &str {
                &self.name
            }

            fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> Result<Var> {
                let [_, _, h, w] = check_image(&self.name, cx, x)?;
                self.spec.output_size(h, w)?;
                let y = cx.graph_mut().apply($op { spec: self.spec }, &[x])?;
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
                out.push(LayerInfo::leaf(self, LayerKind::$name(self.spec)));
            }
        }
    };
}

pool_layer!(
    /// Max pooling, PyTorch's `nn.MaxPool2d(kernel_size, stride, padding)`
    /// (floor mode, no dilation; padding counts as negative infinity).
    ///
    /// # Shapes
    /// Input `[N, C, H, W]`, output `[N, C, H_out, W_out]` with
    /// `H_out = floor((H + 2 p - k) / s) + 1`.
    ///
    /// # Examples
    /// ```
    /// use gradlab_conv::Pool2dSpec;
    /// use gradlab_nn::{Ctx, MaxPool2d, Module, Scope};
    /// use gradlab_tensor::Tensor;
    /// let mut pool = MaxPool2d::<f32>::new(&Scope::new(0).pp("pool"), Pool2dSpec::new(2))?;
    /// let mut cx = Ctx::new();
    /// let x = cx.input(Tensor::ones(&[1, 3, 8, 8]));
    /// let y = pool.forward(&mut cx, x)?;
    /// assert_eq!(cx.value(y)?.shape(), &[1, 3, 4, 4]);
    /// # Ok::<(), gradlab_nn::NnError>(())
    /// ```
    MaxPool2d,
    MaxPool2dOp
);

pool_layer!(
    /// Average pooling, PyTorch's `nn.AvgPool2d(kernel_size, stride,
    /// padding, count_include_pad)` (floor mode).
    ///
    /// # Shapes
    /// Input `[N, C, H, W]`, output `[N, C, H_out, W_out]` with
    /// `H_out = floor((H + 2 p - k) / s) + 1`.
    AvgPool2d,
    AvgPool2dOp
);

/// Global average pooling straight to features, PyTorch's
/// `nn.AdaptiveAvgPool2d(1)` followed by `nn.Flatten()`.
///
/// # Shapes
/// Input `[N, C, H, W]`, output `[N, C]`.
#[derive(Debug, Clone)]
pub struct GlobalAvgPool2d<T: Element = f32> {
    name: String,
    training: bool,
    _elem: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element> GlobalAvgPool2d<T> {
    /// A global average pooling layer named by `scope`.
    pub fn new(scope: &Scope) -> Self {
        GlobalAvgPool2d {
            name: scope.prefix().to_string(),
            training: true,
            _elem: std::marker::PhantomData,
        }
    }
}

impl<T: Element> HasParams<T> for GlobalAvgPool2d<T> {
    fn visit_params<'a>(&'a self, _f: &mut dyn FnMut(&'a Param<T>)) {}
    fn visit_params_mut<'a>(&'a mut self, _f: &mut dyn FnMut(&'a mut Param<T>)) {}
}

impl<T: Element> Module<T> for GlobalAvgPool2d<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> Result<Var> {
        let [_, _, h, w] = check_image(&self.name, cx, x)?;
        if h == 0 || w == 0 {
            return Err(NnError::InputShape {
                layer: self.name.clone(),
                expected: "[N, C, H, W] with H, W > 0".into(),
                got: cx.value(x)?.shape().to_vec(),
            });
        }
        let y = cx.graph_mut().apply(GlobalAvgPool2dOp, &[x])?;
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
        out.push(LayerInfo::leaf(self, LayerKind::GlobalAvgPool2d));
    }
}
