//! The worked example of docs/architecture.md ("adding an op"), kept compiling
//! and correct here.

use gradlab_autodiff::gradcheck::{gradcheck_op, GradcheckOptions};
use gradlab_autodiff::{expect_arity, AutodiffError, Graph, Op, Var};
use gradlab_tensor::{sigmoid, Element, Tensor};

/// `softplus(x) = ln(1 + e^x)`; VJP `g σ(x)`.
pub struct Softplus;

impl<T: Element> Op<T> for Softplus {
    fn name(&self) -> &'static str {
        "softplus"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, AutodiffError> {
        expect_arity("softplus", inputs, 1)?;
        // max(x, 0) + ln(1 + e^-|x|) never overflows.
        Ok(inputs[0].map(|x| x.max(T::zero()) + (-x.abs()).exp().ln_1p()))
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _output: &Tensor<T>,
        grad_output: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>, AutodiffError> {
        if !needs[0] {
            return Ok(vec![None]);
        }
        Ok(vec![Some(inputs[0].map(sigmoid).mul(grad_output)?)])
    }
}

fn softplus(g: &mut Graph<f32>, x: Var) -> Result<Var, AutodiffError> {
    g.apply(Softplus, &[x])
}

#[test]
fn softplus_example_is_right() -> Result<(), Box<dyn std::error::Error>> {
    let x = Tensor::<f64>::rand_normal(&[3, 4], 0.0, 2.0, 7)?;
    gradcheck_op(&Softplus, &[x], &GradcheckOptions::default())?;

    let mut g = Graph::<f32>::new();
    let x = g.constant(Tensor::from_vec(&[3], vec![-1000.0, 0.0, 1000.0])?);
    let y = softplus(&mut g, x)?;
    assert_eq!(g.value(y)?.to_vec(), vec![0.0, 2f32.ln(), 1000.0]);
    Ok(())
}
