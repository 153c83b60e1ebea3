//! The [`Op`] trait: one differentiable operation, forward and backward together.

use gradlab_tensor::{Element, Tensor};

use crate::error::{AutodiffError, Result};

/// A differentiable operation. One type per op; its forward and its
/// vector-Jacobian product live side by side in one file.
///
/// Implement it for your own operation and apply it with
/// [`Graph::apply`](crate::Graph::apply); [`gradcheck`](crate::gradcheck) then
/// checks your backward against finite differences.
///
/// # Examples
/// ```
/// use gradlab_autodiff::{AutodiffError, Graph, Op};
/// use gradlab_tensor::{Element, Tensor};
///
/// /// `y = x^3`, with `dy/dx = 3 x^2`.
/// struct Cube;
/// impl<T: Element> Op<T> for Cube {
///     fn name(&self) -> &'static str { "cube" }
///     fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, AutodiffError> {
///         Ok(inputs[0].map(|x| x * x * x))
///     }
///     fn backward(&self, inputs: &[&Tensor<T>], _output: &Tensor<T>, grad_output: &Tensor<T>,
///                 _needs: &[bool]) -> Result<Vec<Option<Tensor<T>>>, AutodiffError> {
///         let three = T::of_f64(3.0);
///         Ok(vec![Some(inputs[0].map(|x| three * x * x).mul(grad_output)?)])
///     }
/// }
///
/// let mut g = Graph::<f64>::new();
/// let x = g.param(Tensor::from_vec(&[2], vec![1.0, 2.0])?);
/// let y = g.apply(Cube, &[x])?;
/// let loss = g.sum_all(y)?;
/// let grads = g.backward(loss)?;
/// assert_eq!(grads.get(x).unwrap().to_vec(), vec![3.0, 12.0]);
/// # Ok::<(), AutodiffError>(())
/// ```
pub trait Op<T: Element>: Send + Sync {
    /// Short name used in error messages.
    fn name(&self) -> &'static str;

    /// Computes the output from the inputs.
    ///
    /// # Errors
    /// When the inputs do not fit the op (shapes, arity).
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>>;

    /// Gradient of the loss with respect to each input, given the output's
    /// gradient `grad_output` (a vector-Jacobian product). `needs[i]` says
    /// whether input `i` wants a gradient; return `None` where it does not (or
    /// where the input is not differentiable, like integer indices).
    ///
    /// # Errors
    /// When the saved inputs or gradient are inconsistent.
    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        output: &Tensor<T>,
        grad_output: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>>;
}

/// Checks the number of inputs an op received.
///
/// # Errors
/// [`AutodiffError::Arity`] when `inputs.len() != expected`.
pub fn expect_arity<T: Element>(
    op: &'static str,
    inputs: &[&Tensor<T>],
    expected: usize,
) -> Result<()> {
    if inputs.len() == expected {
        Ok(())
    } else {
        Err(AutodiffError::Arity {
            op,
            expected,
            got: inputs.len(),
        })
    }
}
