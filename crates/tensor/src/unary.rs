//! Element-wise unary operations and operations with a scalar.

use crate::element::Element;
use crate::tensor::Tensor;

/// Logistic sigmoid `1 / (1 + e^-x)`, written to avoid overflow for large |x|.
#[inline]
pub fn sigmoid<T: Element>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

impl<T: Element> Tensor<T> {
    /// `-x`.
    pub fn neg(&self) -> Self {
        self.map(|x| -x)
    }

    /// `e^x`.
    pub fn exp(&self) -> Self {
        self.map(|x| x.exp())
    }

    /// Natural logarithm (NaN for negative inputs, -inf at 0, as IEEE says).
    pub fn ln(&self) -> Self {
        self.map(|x| x.ln())
    }

    /// Square root (NaN for negative inputs).
    pub fn sqrt(&self) -> Self {
        self.map(|x| x.sqrt())
    }

    /// `x^p` for a real exponent `p`.
    pub fn powf(&self, p: T) -> Self {
        self.map(|x| x.powf(p))
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Self {
        self.map(|x| x.tanh())
    }

    /// Logistic sigmoid, overflow-safe.
    pub fn sigmoid(&self) -> Self {
        self.map(sigmoid)
    }

    /// `max(x, 0)`; NaN stays NaN, as in PyTorch, so bad values are not hidden.
    pub fn relu(&self) -> Self {
        self.map(|x| if x <= T::zero() { T::zero() } else { x })
    }

    /// `|x|`.
    pub fn abs(&self) -> Self {
        self.map(|x| x.abs())
    }

    /// `x + s`.
    pub fn add_scalar(&self, s: T) -> Self {
        self.map(|x| x + s)
    }

    /// `x * s`.
    pub fn mul_scalar(&self, s: T) -> Self {
        self.map(|x| x * s)
    }

    /// `x - s`.
    pub fn sub_scalar(&self, s: T) -> Self {
        self.map(|x| x - s)
    }

    /// `x / s`.
    pub fn div_scalar(&self, s: T) -> Self {
        self.map(|x| x / s)
    }
}
