//! Gradient checks of whole modules: the input and every trainable
//! parameter against central finite differences, through
//! [`gradlab_autodiff::gradcheck::check_vjp`].

use gradlab_autodiff::gradcheck::{check_vjp, GradcheckError, GradcheckOptions, GradcheckReport};
use gradlab_autodiff::{Retain, Var};
use gradlab_tensor::Tensor;

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::module::HasParams;

/// Builds the model with `make`, overwrites its trainable parameters with
/// `values` (in visiting order), runs it.
fn evaluate<M, B, R>(
    make: &B,
    run: &R,
    xs: &[Tensor<f64>],
    seed: u64,
) -> Result<(Ctx<f64>, Var, Var, Vec<String>)>
where
    M: HasParams<f64>,
    B: Fn() -> Result<M>,
    R: Fn(&mut M, &mut Ctx<f64>, Var) -> Result<Var>,
{
    let mut model = make()?;
    let mut names = Vec::new();
    let mut values = xs[1..].iter();
    let mut err = None;
    model.visit_params_mut(&mut |p| {
        if !p.is_trainable() || err.is_some() {
            return;
        }
        names.push(p.name().to_string());
        match values.next() {
            Some(v) => {
                if let Err(e) = p.set_value(v.clone()) {
                    err = Some(e);
                }
            }
            None => {
                err = Some(NnError::config(
                    "gradcheck_module",
                    "the model built by `make` has more trainable parameters than the first one",
                ))
            }
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    let mut cx = Ctx::new().with_seed(seed);
    let x = cx.graph_mut().param(xs[0].clone());
    let out = run(&mut model, &mut cx, x)?;
    Ok((cx, x, out, names))
}

/// Checks the gradients of a module (or any computation on one) with
/// respect to its input and every trainable parameter, in `f64`, against
/// central finite differences (PyTorch's `gradcheck` semantics, see
/// [`gradlab_autodiff::gradcheck`]).
///
/// `make` builds the model (the same model every time, e.g. from a fixed
/// seed; it is rebuilt for each evaluation so that layers with state, such
/// as BatchNorm in training mode, see the same state); `run` applies it to
/// the input on a fresh [`Ctx`] (seeded with `opts.seed`, so dropout masks
/// are the same at every evaluation) and returns the output to check, of any
/// shape (a loss, logits, a feature map).
///
/// In the report and errors, input 0 is `input` and input `i >= 1` is the
/// `i`-th trainable parameter in visiting order.
///
/// # Errors
/// A [`GradcheckError`] for the worst mismatching element, or if the model
/// cannot be built or run.
///
/// # Examples
/// ```
/// use gradlab_autodiff::gradcheck::GradcheckOptions;
/// use gradlab_nn::{gradcheck_module, Linear, LinearConfig, Module, Scope};
/// use gradlab_tensor::Tensor;
/// let x = Tensor::rand_normal(&[3, 4], 0.0, 1.0, 1)?;
/// let report = gradcheck_module(
///     || Linear::<f64>::new(&Scope::new(0).pp("fc"), 4, 2, LinearConfig::default()),
///     |m, cx, x| m.forward(cx, x),
///     &x,
///     &GradcheckOptions::default(),
/// ).expect("gradients agree");
/// assert_eq!(report.inputs_checked, 3); // x, weight, bias
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
pub fn gradcheck_module<M, B, R>(
    make: B,
    run: R,
    input: &Tensor<f64>,
    opts: &GradcheckOptions,
) -> std::result::Result<GradcheckReport, GradcheckError>
where
    M: HasParams<f64>,
    B: Fn() -> Result<M>,
    R: Fn(&mut M, &mut Ctx<f64>, Var) -> Result<Var>,
{
    let model = make().map_err(|e| GradcheckError::Forward(e.to_string()))?;
    let mut inputs = vec![input.clone()];
    model.visit_params(&mut |p| {
        if p.is_trainable() {
            inputs.push(p.value().clone());
        }
    });
    let seed = opts.seed;
    check_vjp(
        |xs: &[Tensor<f64>]| -> Result<Tensor<f64>> {
            let (cx, _, out, _) = evaluate(&make, &run, xs, seed)?;
            Ok(cx.value(out)?.clone())
        },
        |xs: &[Tensor<f64>], v: &Tensor<f64>| -> Result<Vec<Option<Tensor<f64>>>> {
            let (cx, x, out, names) = evaluate(&make, &run, xs, seed)?;
            let grads = cx
                .graph()
                .backward_from(out, v.clone(), Retain::LeavesAnd(&[]))?;
            let mut result = Vec::with_capacity(xs.len());
            let grad_of = |var: Option<Var>, like: &Tensor<f64>| {
                Some(
                    var.and_then(|var| grads.get(var).cloned())
                        .unwrap_or_else(|| Tensor::zeros(like.shape())),
                )
            };
            result.push(grad_of(Some(x), &xs[0]));
            for (name, like) in names.iter().zip(&xs[1..]) {
                result.push(grad_of(cx.var_of(name), like));
            }
            Ok(result)
        },
        &inputs,
        opts,
    )
}
