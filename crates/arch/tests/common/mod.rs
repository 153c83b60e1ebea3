//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::cell::RefCell;

use gradlab_arch::{combined_loss, Classifier, OutputRequest};
use gradlab_autodiff::gradcheck::{check_vjp, GradcheckError, GradcheckOptions, GradcheckReport};
use gradlab_autodiff::Retain;
use gradlab_nn::Ctx;
use gradlab_tensor::{Element, Tensor};

/// Root-mean-square of a tensor's elements, in f64.
pub fn rms<T: Element>(t: &Tensor<T>) -> f64 {
    let s: f64 = t.as_slice().iter().map(|v| v.as_f64() * v.as_f64()).sum();
    (s / t.len().max(1) as f64).sqrt()
}

/// Deterministic labels in `0..k`.
pub fn labels(n: usize, k: usize) -> Vec<usize> {
    (0..n).map(|i| (i * 7 + 3) % k).collect()
}

/// What a whole-model gradient check differentiates.
pub enum Output<'a> {
    /// The final logits `[N, K]` (scalarised by gradcheck's random weighting).
    Logits,
    /// The combined loss (cross-entropy + weighted auxiliary cross-entropies).
    CombinedLoss(&'a [usize]),
}

/// Checks the gradient of the model's output with respect to the input and
/// every trainable parameter against central differences, with the model in
/// its current mode (BatchNorm in training mode uses batch statistics).
pub fn gradcheck_model<M: Classifier<f64>>(
    model: M,
    x: Tensor<f64>,
    output: Output<'_>,
    opts: &GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError> {
    let names: Vec<String> = model
        .params()
        .iter()
        .filter(|p| p.is_trainable())
        .map(|p| p.name().to_string())
        .collect();
    let mut inputs = vec![x];
    for n in &names {
        inputs.push(model.param(n).unwrap().value().clone());
    }
    let model = RefCell::new(model);
    // Builds the graph at `xs` and returns (ctx, input var, output var).
    let run = |xs: &[Tensor<f64>]| -> Result<
        (Ctx<f64>, gradlab_autodiff::Var, gradlab_autodiff::Var),
        gradlab_arch::ArchError,
    > {
        let mut m = model.borrow_mut();
        for (n, v) in names.iter().zip(&xs[1..]) {
            let mut found = None;
            m.visit_params_mut(&mut |p| {
                if p.name() == n {
                    found = Some(p.set_value(v.clone()));
                }
            });
            found.expect("parameter exists")?;
        }
        let mut cx = Ctx::<f64>::new().with_seed(5);
        let xv = cx.graph_mut().param(xs[0].clone());
        let out = m.forward_outputs(&mut cx, xv, &OutputRequest::default())?;
        let y = match &output {
            Output::Logits => out.logits,
            Output::CombinedLoss(labels) => combined_loss(&mut cx, &out, labels)?.total,
        };
        Ok((cx, xv, y))
    };
    check_vjp(
        |xs: &[Tensor<f64>]| {
            let (cx, _, y) = run(xs)?;
            Ok::<_, gradlab_arch::ArchError>(cx.value(y)?.clone())
        },
        |xs: &[Tensor<f64>], v: &Tensor<f64>| {
            let (cx, xv, y) = run(xs)?;
            let grads = cx
                .graph()
                .backward_from(y, v.clone(), Retain::LeavesAnd(&[]))?;
            let mut out = vec![Some(
                grads
                    .get(xv)
                    .cloned()
                    .unwrap_or_else(|| Tensor::zeros(xs[0].shape())),
            )];
            for (n, x) in names.iter().zip(&xs[1..]) {
                let g = cx
                    .var_of(n)
                    .and_then(|var| grads.get(var).cloned())
                    .unwrap_or_else(|| Tensor::zeros(x.shape()));
                out.push(Some(g));
            }
            Ok(out)
        },
        &inputs,
        opts,
    )
}
