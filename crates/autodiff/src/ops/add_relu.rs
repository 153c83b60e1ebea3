//! `max(a + b, 0)` as one op: the end of a residual block.

use gradlab_tensor::{zip_broadcast, Element, Tensor};

use crate::error::Result;
use crate::graph::{Graph, Var};
use crate::op::{expect_arity, Op};

/// `y = max(a + b, 0)` with broadcasting: an addition followed by a ReLU,
/// fused so that the sum before the ReLU is never stored.
///
/// The values are those of [`Graph::add`] then [`Graph::relu`], bit for bit
/// (`a + b <= 0` gives 0, NaN passes). VJP: with `m = g` where `y > 0` and
/// `0 * g` elsewhere (the ReLU's, as `a + b > 0` exactly when `y > 0`), `m`
/// for both inputs, each summed to its input's shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddRelu;

impl<T: Element> Op<T> for AddRelu {
    fn name(&self) -> &'static str {
        "add_relu"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        expect_arity("add_relu", inputs, 2)?;
        let zero = T::zero();
        Ok(zip_broadcast("add_relu", inputs[0], inputs[1], |x, y| {
            let s = x + y;
            if s <= zero {
                zero
            } else {
                s
            }
        })?)
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        output: &Tensor<T>,
        g: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        let zero = T::zero();
        let m = zip_broadcast(
            "add_relu",
            output,
            g,
            |v, gv| {
                if v > zero {
                    gv
                } else {
                    zero * gv
                }
            },
        )?;
        Ok(vec![
            needs[0]
                .then(|| m.sum_to_shape(inputs[0].shape()))
                .transpose()?,
            needs[1]
                .then(|| m.sum_to_shape(inputs[1].shape()))
                .transpose()?,
        ])
    }
}

impl<T: Element> Graph<T> {
    /// `max(a + b, 0)` with broadcasting, as one op ([`AddRelu`]): the same
    /// values and gradients as `relu(add(a, b))` with one node less.
    ///
    /// # Errors
    /// When the shapes do not broadcast, or a `Var` is foreign.
    pub fn add_relu(&mut self, a: Var, b: Var) -> Result<Var> {
        self.apply(AddRelu, &[a, b])
    }
}
