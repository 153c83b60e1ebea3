//! Element-wise unary ops and ops with a scalar constant.

use gradlab_tensor::{zip_broadcast, Element, Tensor};

use crate::error::Result;
use crate::graph::{Graph, Var};
use crate::op::{expect_arity, Op};

/// Which function a [`Unary`] op applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryKind {
    /// `-x`; VJP `-g`.
    Neg,
    /// `e^x`; VJP `g e^x`.
    Exp,
    /// `ln x`; VJP `g / x`.
    Ln,
    /// `sqrt x`; VJP `g / (2 sqrt x)`.
    Sqrt,
    /// `x^p`; VJP `g p x^(p-1)`.
    Powf(f64),
    /// `tanh x`; VJP `g (1 - tanh² x)`.
    Tanh,
    /// `σ(x)`; VJP `g σ(x) (1 - σ(x))`.
    Sigmoid,
    /// `max(x, 0)`; VJP `g [x > 0]`.
    Relu,
    /// `|x|`; VJP `g sign(x)` (0 at 0).
    Abs,
    /// `x + s`; VJP `g`.
    AddScalar(f64),
    /// `x * s`; VJP `g s`.
    MulScalar(f64),
}

/// An element-wise function of one tensor.
#[derive(Debug, Clone, Copy)]
pub struct Unary(pub UnaryKind);

impl<T: Element> Op<T> for Unary {
    fn name(&self) -> &'static str {
        match self.0 {
            UnaryKind::Neg => "neg",
            UnaryKind::Exp => "exp",
            UnaryKind::Ln => "ln",
            UnaryKind::Sqrt => "sqrt",
            UnaryKind::Powf(_) => "powf",
            UnaryKind::Tanh => "tanh",
            UnaryKind::Sigmoid => "sigmoid",
            UnaryKind::Relu => "relu",
            UnaryKind::Abs => "abs",
            UnaryKind::AddScalar(_) => "add_scalar",
            UnaryKind::MulScalar(_) => "mul_scalar",
        }
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        expect_arity(Op::<T>::name(self), inputs, 1)?;
        let x = inputs[0];
        Ok(match self.0 {
            UnaryKind::Neg => x.neg(),
            UnaryKind::Exp => x.exp(),
            UnaryKind::Ln => x.ln(),
            UnaryKind::Sqrt => x.sqrt(),
            UnaryKind::Powf(p) => x.powf(T::of_f64(p)),
            UnaryKind::Tanh => x.tanh(),
            UnaryKind::Sigmoid => x.sigmoid(),
            UnaryKind::Relu => x.relu(),
            UnaryKind::Abs => x.abs(),
            UnaryKind::AddScalar(s) => x.add_scalar(T::of_f64(s)),
            UnaryKind::MulScalar(s) => x.mul_scalar(T::of_f64(s)),
        })
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        y: &Tensor<T>,
        g: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        if !needs[0] {
            return Ok(vec![None]);
        }
        let x = inputs[0];
        let one = T::one();
        let zero = T::zero();
        // Local derivative dy/dx, from the input or the saved output.
        let d = match self.0 {
            UnaryKind::Neg => return Ok(vec![Some(g.neg())]),
            UnaryKind::AddScalar(_) => return Ok(vec![Some(g.clone())]),
            UnaryKind::MulScalar(s) => return Ok(vec![Some(g.mul_scalar(T::of_f64(s)))]),
            UnaryKind::Exp => y.clone(),
            UnaryKind::Ln => x.map(|v| one / v),
            UnaryKind::Sqrt => y.map(|v| one / (v + v)),
            UnaryKind::Powf(p) => {
                let p = T::of_f64(p);
                x.map(|v| p * v.powf(p - one))
            }
            UnaryKind::Tanh => y.map(|v| one - v * v),
            UnaryKind::Sigmoid => y.map(|v| v * (one - v)),
            UnaryKind::Relu => {
                // One pass instead of a 0/1 mask times g (same bits: 1*g, 0*g).
                let dx =
                    zip_broadcast("relu", x, g, |v, gv| if v > zero { gv } else { zero * gv })?;
                return Ok(vec![Some(dx)]);
            }
            UnaryKind::Abs => x.map(|v| {
                if v > zero {
                    one
                } else if v < zero {
                    -one
                } else {
                    zero
                }
            }),
        };
        Ok(vec![Some(d.mul(g)?)])
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $method:ident => $kind:expr;)*) => {
        impl<T: Element> Graph<T> {
            $(
                $(#[$doc])*
                ///
                /// # Errors
                /// [`AutodiffError::UnknownVar`](crate::AutodiffError::UnknownVar) for a foreign `Var`.
                pub fn $method(&mut self, x: Var) -> Result<Var> {
                    self.apply(Unary($kind), &[x])
                }
            )*
        }
    };
}

unary_methods! {
    /// `-x`.
    neg => UnaryKind::Neg;
    /// `e^x`.
    exp => UnaryKind::Exp;
    /// Natural logarithm.
    ln => UnaryKind::Ln;
    /// Square root.
    sqrt => UnaryKind::Sqrt;
    /// Hyperbolic tangent.
    tanh => UnaryKind::Tanh;
    /// Logistic sigmoid.
    sigmoid => UnaryKind::Sigmoid;
    /// `max(x, 0)`.
    relu => UnaryKind::Relu;
    /// `|x|`.
    abs => UnaryKind::Abs;
}

impl<T: Element> Graph<T> {
    /// `x^p` element-wise.
    ///
    /// # Errors
    /// [`AutodiffError::UnknownVar`](crate::AutodiffError::UnknownVar) for a foreign `Var`.
    pub fn powf(&mut self, x: Var, p: f64) -> Result<Var> {
        self.apply(Unary(UnaryKind::Powf(p)), &[x])
    }

    /// `x + s` element-wise.
    ///
    /// # Errors
    /// [`AutodiffError::UnknownVar`](crate::AutodiffError::UnknownVar) for a foreign `Var`.
    pub fn add_scalar(&mut self, x: Var, s: f64) -> Result<Var> {
        self.apply(Unary(UnaryKind::AddScalar(s)), &[x])
    }

    /// `x * s` element-wise.
    ///
    /// # Errors
    /// [`AutodiffError::UnknownVar`](crate::AutodiffError::UnknownVar) for a foreign `Var`.
    pub fn mul_scalar(&mut self, x: Var, s: f64) -> Result<Var> {
        self.apply(Unary(UnaryKind::MulScalar(s)), &[x])
    }
}
