//! Matrix product, 2-D and batched.

use gradlab_tensor::{gemm, Element, Tensor};
use ndarray::{Ix2, Ix3};

use crate::error::{AutodiffError, Result};
use crate::graph::{Graph, Var};
use crate::op::{expect_arity, Op};

/// `C = A B` for `[m, k] x [k, n]`, or batched `[b, m, k] x [b, k, n]`.
///
/// VJP: `dA = g Bᵀ`, `dB = Aᵀ g` (per batch), computed by GEMM on transposed
/// views without copying.
#[derive(Debug, Clone, Copy)]
pub struct MatMul;

fn internal(reason: String) -> AutodiffError {
    AutodiffError::Op {
        op: "matmul",
        reason,
    }
}

impl<T: Element> Op<T> for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        expect_arity("matmul", inputs, 2)?;
        Ok(inputs[0].matmul(inputs[1])?)
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _: &Tensor<T>,
        g: &Tensor<T>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        let (a, b) = (inputs[0], inputs[1]);
        let mut ga = needs[0].then(|| Tensor::<T>::zeros(a.shape()));
        let mut gb = needs[1].then(|| Tensor::<T>::zeros(b.shape()));
        if a.rank() == 2 {
            let av = a
                .view()
                .into_dimensionality::<Ix2>()
                .map_err(|e| internal(e.to_string()))?;
            let bv = b
                .view()
                .into_dimensionality::<Ix2>()
                .map_err(|e| internal(e.to_string()))?;
            let gv = g
                .view()
                .into_dimensionality::<Ix2>()
                .map_err(|e| internal(e.to_string()))?;
            if let Some(ga) = ga.as_mut() {
                let out = ga
                    .view_mut()
                    .into_dimensionality::<Ix2>()
                    .map_err(|e| internal(e.to_string()))?;
                gemm(T::one(), gv, bv.t(), T::zero(), out)?;
            }
            if let Some(gb) = gb.as_mut() {
                let out = gb
                    .view_mut()
                    .into_dimensionality::<Ix2>()
                    .map_err(|e| internal(e.to_string()))?;
                gemm(T::one(), av.t(), gv, T::zero(), out)?;
            }
        } else {
            let av = a
                .view()
                .into_dimensionality::<Ix3>()
                .map_err(|e| internal(e.to_string()))?;
            let bv = b
                .view()
                .into_dimensionality::<Ix3>()
                .map_err(|e| internal(e.to_string()))?;
            let gv = g
                .view()
                .into_dimensionality::<Ix3>()
                .map_err(|e| internal(e.to_string()))?;
            if let Some(ga) = ga.as_mut() {
                let mut out = ga
                    .view_mut()
                    .into_dimensionality::<Ix3>()
                    .map_err(|e| internal(e.to_string()))?;
                for ((gi, bi), oi) in gv
                    .outer_iter()
                    .zip(bv.outer_iter())
                    .zip(out.outer_iter_mut())
                {
                    gemm(T::one(), gi, bi.t(), T::zero(), oi)?;
                }
            }
            if let Some(gb) = gb.as_mut() {
                let mut out = gb
                    .view_mut()
                    .into_dimensionality::<Ix3>()
                    .map_err(|e| internal(e.to_string()))?;
                for ((ai, gi), oi) in av
                    .outer_iter()
                    .zip(gv.outer_iter())
                    .zip(out.outer_iter_mut())
                {
                    gemm(T::one(), ai.t(), gi, T::zero(), oi)?;
                }
            }
        }
        Ok(vec![ga, gb])
    }
}

impl<T: Element> Graph<T> {
    /// Matrix product, 2-D or batched 3-D.
    ///
    /// # Errors
    /// When ranks or inner sizes disagree, or a `Var` is foreign.
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.apply(MatMul, &[a, b])
    }
}
