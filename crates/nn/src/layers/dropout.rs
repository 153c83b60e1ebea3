//! [`Dropout`] (Srivastava et al. 2014), seeded, identity in evaluation mode.

use gradlab_autodiff::{expect_arity, Op, Result as AdResult, Var};
use gradlab_tensor::{Element, Tensor};

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::layer_info::{LayerInfo, LayerKind};
use crate::layers::op_error;
use crate::module::{HasParams, Module};
use crate::param::{fnv1a, mix_seed, Param, Scope};

/// Multiplication by a fixed mask: `y = x * mask`; VJP `g * mask`. The
/// mask (zeros and `1 / (1 - p)`) is drawn by the [`Dropout`] layer.
#[derive(Debug, Clone, PartialEq)]
pub struct DropoutOp<T: Element = f32> {
    /// The mask, of the input's shape.
    pub mask: Tensor<T>,
}

impl<T: Element> Op<T> for DropoutOp<T> {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> AdResult<Tensor<T>> {
        expect_arity("dropout", inputs, 1)?;
        if inputs[0].shape() != self.mask.shape() {
            return Err(op_error(
                "dropout",
                format!(
                    "mask of shape {:?} for an input of shape {:?}",
                    self.mask.shape(),
                    inputs[0].shape()
                ),
            ));
        }
        Ok(inputs[0].mul(&self.mask)?)
    }

    fn backward(
        &self,
        _inputs: &[&Tensor<T>],
        _output: &Tensor<T>,
        grad_output: &Tensor<T>,
        needs: &[bool],
    ) -> AdResult<Vec<Option<Tensor<T>>>> {
        if !needs[0] {
            return Ok(vec![None]);
        }
        Ok(vec![Some(grad_output.mul(&self.mask)?)])
    }
}

/// Dropout, PyTorch's `nn.Dropout(p)`: in training mode each element is
/// zeroed with probability `p` and the others are scaled by `1 / (1 - p)`;
/// in evaluation mode it is the identity.
///
/// The mask of each forward pass is drawn from a seed mixing a hash of the
/// layer's name with the next seed of the step ([`Ctx::next_seed`]): the
/// masks depend on nothing that a checkpoint does not restore, so a run is
/// reproducible and a resumed run draws the same masks when its steps are
/// seeded the same way (e.g. `Ctx::new().with_seed(step)`).
///
/// # Shapes
/// Any input; the output has the same shape.
#[derive(Debug, Clone)]
pub struct Dropout<T: Element = f32> {
    name: String,
    p: f64,
    seed: u64,
    training: bool,
    _elem: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element> Dropout<T> {
    /// A dropout layer with drop probability `p`, named by `scope`.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] unless `0 <= p <= 1`.
    pub fn new(scope: &Scope, p: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(NnError::config(
                scope.prefix(),
                format!("dropout probability has to be between 0 and 1, but got {p}"),
            ));
        }
        Ok(Dropout {
            name: scope.prefix().to_string(),
            p,
            seed: fnv1a(scope.prefix().as_bytes()),
            training: true,
            _elem: std::marker::PhantomData,
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The mask the layer draws for `shape` from the step seed `step_seed`:
    /// zeros with probability `p`, `1 / (1 - p)` elsewhere.
    ///
    /// # Errors
    /// [`NnError::Tensor`] for a shape too large to allocate.
    pub fn mask(&self, shape: &[usize], step_seed: u64) -> Result<Tensor<T>> {
        let u = Tensor::<f64>::rand_uniform(shape, 0.0, 1.0, mix_seed(self.seed, step_seed))?;
        let keep = if self.p < 1.0 {
            1.0 / (1.0 - self.p)
        } else {
            0.0
        };
        let data = u
            .as_slice()
            .iter()
            .map(|&v| T::of_f64(if v < self.p { 0.0 } else { keep }))
            .collect();
        Ok(Tensor::from_vec(shape, data)?)
    }
}

impl<T: Element> HasParams<T> for Dropout<T> {
    fn visit_params<'a>(&'a self, _f: &mut dyn FnMut(&'a Param<T>)) {}
    fn visit_params_mut<'a>(&'a mut self, _f: &mut dyn FnMut(&'a mut Param<T>)) {}
}

impl<T: Element> Module<T> for Dropout<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> Result<Var> {
        let y = if self.training && self.p > 0.0 {
            let shape = cx.value(x)?.shape().to_vec();
            let step_seed = cx.next_seed();
            let mask = self.mask(&shape, step_seed)?;
            cx.graph_mut().apply(DropoutOp { mask }, &[x])?
        } else {
            x
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
        out.push(LayerInfo::leaf(self, LayerKind::Dropout { p: self.p }));
    }
}
