//! Broadcasting binary ops: add, sub, mul, div, maximum, minimum.
//!
//! Each gradient is computed at the broadcast shape and then summed back to
//! its input's shape ([`Tensor::sum_to_shape`]).

use gradlab_tensor::{zip_broadcast, Element, Tensor};

use crate::error::Result;
use crate::graph::{Graph, Var};
use crate::op::{expect_arity, Op};

/// Which binary operation a [`Binary`] op performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `max(a, b)`; the gradient goes to `a` on ties.
    Maximum,
    /// `min(a, b)`; the gradient goes to `a` on ties.
    Minimum,
}

/// An element-wise binary op with NumPy broadcasting.
///
/// VJPs (`g` the output gradient, reduced to each input's shape):
/// add `(g, g)`, sub `(g, -g)`, mul `(g b, g a)`, div `(g / b, -g a / b²)`,
/// maximum/minimum route `g` to the selected operand.
#[derive(Debug, Clone, Copy)]
pub struct Binary(pub BinaryKind);

impl<T: Element> Op<T> for Binary {
    fn name(&self) -> &'static str {
        match self.0 {
            BinaryKind::Add => "add",
            BinaryKind::Sub => "sub",
            BinaryKind::Mul => "mul",
            BinaryKind::Div => "div",
            BinaryKind::Maximum => "maximum",
            BinaryKind::Minimum => "minimum",
        }
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        expect_arity(Op::<T>::name(self), inputs, 2)?;
        let (a, b) = (inputs[0], inputs[1]);
        Ok(match self.0 {
            BinaryKind::Add => a.add(b)?,
            BinaryKind::Sub => a.sub(b)?,
            BinaryKind::Mul => a.mul(b)?,
            BinaryKind::Div => a.div(b)?,
            BinaryKind::Maximum => a.maximum(b)?,
            BinaryKind::Minimum => a.minimum(b)?,
        })
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _output: &Tensor<T>,
        g: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        let (a, b) = (inputs[0], inputs[1]);
        let zero = T::zero();
        let (ga, gb) = match self.0 {
            BinaryKind::Add => {
                // g itself for both: one copy per input that needs it, not two.
                return Ok(vec![
                    needs[0].then(|| g.sum_to_shape(a.shape())).transpose()?,
                    needs[1].then(|| g.sum_to_shape(b.shape())).transpose()?,
                ]);
            }
            BinaryKind::Sub => (g.clone(), g.neg()),
            BinaryKind::Mul => (g.mul(b)?, g.mul(a)?),
            BinaryKind::Div => {
                let ga = g.div(b)?;
                let gb = zip_broadcast("div", a, b, |x, y| -x / (y * y))?.mul(g)?;
                (ga, gb)
            }
            BinaryKind::Maximum | BinaryKind::Minimum => {
                let max = self.0 == BinaryKind::Maximum;
                let pick_a = zip_broadcast("select", a, b, |x, y| {
                    let take_a = if max { x >= y } else { x <= y };
                    if take_a {
                        T::one()
                    } else {
                        zero
                    }
                })?;
                let ga = g.mul(&pick_a)?;
                let gb = g.sub(&ga)?;
                (ga, gb)
            }
        };
        Ok(vec![
            needs[0].then(|| ga.sum_to_shape(a.shape())).transpose()?,
            needs[1].then(|| gb.sum_to_shape(b.shape())).transpose()?,
        ])
    }
}

impl<T: Element> Graph<T> {
    /// `a + b` with broadcasting.
    ///
    /// # Errors
    /// When the shapes do not broadcast, or a `Var` is foreign.
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        self.apply(Binary(BinaryKind::Add), &[a, b])
    }

    /// `a - b` with broadcasting.
    ///
    /// # Errors
    /// When the shapes do not broadcast, or a `Var` is foreign.
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var> {
        self.apply(Binary(BinaryKind::Sub), &[a, b])
    }

    /// `a * b` element-wise with broadcasting.
    ///
    /// # Errors
    /// When the shapes do not broadcast, or a `Var` is foreign.
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.apply(Binary(BinaryKind::Mul), &[a, b])
    }

    /// `a / b` element-wise with broadcasting.
    ///
    /// # Errors
    /// When the shapes do not broadcast, or a `Var` is foreign.
    pub fn div(&mut self, a: Var, b: Var) -> Result<Var> {
        self.apply(Binary(BinaryKind::Div), &[a, b])
    }

    /// `max(a, b)` element-wise with broadcasting.
    ///
    /// # Errors
    /// When the shapes do not broadcast, or a `Var` is foreign.
    pub fn maximum(&mut self, a: Var, b: Var) -> Result<Var> {
        self.apply(Binary(BinaryKind::Maximum), &[a, b])
    }

    /// `min(a, b)` element-wise with broadcasting.
    ///
    /// # Errors
    /// When the shapes do not broadcast, or a `Var` is foreign.
    pub fn minimum(&mut self, a: Var, b: Var) -> Result<Var> {
        self.apply(Binary(BinaryKind::Minimum), &[a, b])
    }
}
