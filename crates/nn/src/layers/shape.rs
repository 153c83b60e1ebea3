//! Layers that only reshape or pass through: [`Flatten`], [`Identity`].

use gradlab_autodiff::Var;
use gradlab_tensor::Element;

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::layer_info::{LayerInfo, LayerKind};
use crate::module::{HasParams, Module};
use crate::param::{Param, Scope};

/// Flattens every axis after the batch axis, PyTorch's `nn.Flatten()`.
///
/// # Shapes
/// Input `[N, d1, d2, ...]`, output `[N, d1 * d2 * ...]`.
#[derive(Debug, Clone)]
pub struct Flatten<T: Element = f32> {
    name: String,
    training: bool,
    _elem: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element> Flatten<T> {
    /// A flatten layer named by `scope`.
    pub fn new(scope: &Scope) -> Self {
        Flatten {
            name: scope.prefix().to_string(),
            training: true,
            _elem: std::marker::PhantomData,
        }
    }
}

impl<T: Element> HasParams<T> for Flatten<T> {
    fn visit_params<'a>(&'a self, _f: &mut dyn FnMut(&'a Param<T>)) {}
    fn visit_params_mut<'a>(&'a mut self, _f: &mut dyn FnMut(&'a mut Param<T>)) {}
}

impl<T: Element> Module<T> for Flatten<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> Result<Var> {
        let shape = cx.value(x)?.shape().to_vec();
        let Some((&n, rest)) = shape.split_first() else {
            return Err(NnError::InputShape {
                layer: self.name.clone(),
                expected: "[N, ...]".into(),
                got: shape,
            });
        };
        let y = cx.graph_mut().reshape(x, &[n, rest.iter().product()])?;
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
        out.push(LayerInfo::leaf(self, LayerKind::Flatten));
    }
}

/// Passes its input through unchanged (and taps it), PyTorch's `nn.Identity`.
#[derive(Debug, Clone)]
pub struct Identity<T: Element = f32> {
    name: String,
    training: bool,
    _elem: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element> Identity<T> {
    /// An identity layer named by `scope`.
    pub fn new(scope: &Scope) -> Self {
        Identity {
            name: scope.prefix().to_string(),
            training: true,
            _elem: std::marker::PhantomData,
        }
    }
}

impl<T: Element> HasParams<T> for Identity<T> {
    fn visit_params<'a>(&'a self, _f: &mut dyn FnMut(&'a Param<T>)) {}
    fn visit_params_mut<'a>(&'a mut self, _f: &mut dyn FnMut(&'a mut Param<T>)) {}
}

impl<T: Element> Module<T> for Identity<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> Result<Var> {
        cx.tap(&self.name, x);
        Ok(x)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn describe(&self, out: &mut Vec<LayerInfo>) {
        out.push(LayerInfo::leaf(self, LayerKind::Identity));
    }
}
