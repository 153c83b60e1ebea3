//! Gradient checking by central finite differences, in `f64`, with the
//! semantics of `torch.autograd.gradcheck`.
//!
//! A non-scalar output `y = f(x)` is scalarised as `L = Σ v ⊙ y` with a
//! seeded random `v` (never a plain sum, which hides index bugs); the analytic
//! gradient is the backward pass given `v` as the output gradient, the numeric
//! one is `(L(x + ε e_i) - L(x - ε e_i)) / 2ε` for every element `i` of every
//! input. An element passes when `|a - n| <= atol + rtol · |n|`.
//!
//! Besides the values it checks that every gradient has its input's shape,
//! that a zero output gradient gives exactly zero gradients, and that two
//! backward runs agree bit for bit.
//!
//! Keep inputs away from kinks (ReLU at 0, ties of a max) by well over `eps`.

use std::fmt::Display;

use gradlab_tensor::Tensor;
use thiserror::Error;

use crate::error::AutodiffError;
use crate::graph::{Graph, Retain, Var};
use crate::op::Op;

/// Tolerances and step of a gradient check.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckOptions {
    /// Finite-difference step (default `1e-6`).
    pub eps: f64,
    /// Absolute tolerance (default `1e-5`).
    pub atol: f64,
    /// Relative tolerance (default `1e-3`).
    pub rtol: f64,
    /// Seed of the random output weighting (default 0).
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            seed: 0,
        }
    }
}

/// What a passing check looked at.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckReport {
    /// Number of inputs whose gradient was compared.
    pub inputs_checked: usize,
    /// Number of elements compared over all inputs.
    pub elements_checked: usize,
    /// Largest `|analytic - numeric|` seen.
    pub max_abs_error: f64,
}

/// Why a gradient check failed.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum GradcheckError {
    /// The analytic and numeric gradients disagree; the worst element is named.
    #[error("gradcheck: input {input}, index {index:?}: numerical {numeric:e}, analytical {analytic:e} (|diff| {diff:e} > atol + rtol*|numerical| = {allowed:e}); {failing} elements fail")]
    Mismatch {
        /// Input position.
        input: usize,
        /// Multi-index of the worst element.
        index: Vec<usize>,
        /// Backward's value.
        analytic: f64,
        /// Finite-difference value.
        numeric: f64,
        /// `|analytic - numeric|`.
        diff: f64,
        /// The tolerance at that element.
        allowed: f64,
        /// How many elements fail in all.
        failing: usize,
    },
    /// A gradient whose shape differs from its input's.
    #[error(
        "gradcheck: gradient of input {input} has shape {got:?}, the input has shape {expected:?}"
    )]
    Shape {
        /// Input position.
        input: usize,
        /// The input's shape.
        expected: Vec<usize>,
        /// The gradient's shape.
        got: Vec<usize>,
    },
    /// Backward returned a different number of gradients than there are inputs.
    #[error("gradcheck: backward returned {got} gradients for {expected} inputs")]
    Arity {
        /// Number of inputs.
        expected: usize,
        /// Number of gradients returned.
        got: usize,
    },
    /// A zero output gradient produced a non-zero input gradient.
    #[error("gradcheck: zero output gradient gave {value:e} at input {input}, index {index:?}")]
    NonZeroForZero {
        /// Input position.
        input: usize,
        /// Multi-index of the element.
        index: Vec<usize>,
        /// The value that should be 0.
        value: f64,
    },
    /// Two backward passes on the same inputs disagreed.
    #[error("gradcheck: backward is not deterministic at input {input}, flat index {flat}: {first:e} then {second:e}")]
    Nondeterministic {
        /// Input position.
        input: usize,
        /// Flat (row-major) element index.
        flat: usize,
        /// Value from the first run.
        first: f64,
        /// Value from the second run.
        second: f64,
    },
    /// The function failed to evaluate (at the inputs or a perturbed point).
    #[error("gradcheck: forward failed: {0}")]
    Forward(String),
    /// The backward pass failed.
    #[error("gradcheck: backward failed: {0}")]
    Backward(String),
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &d) in index.iter_mut().zip(shape).rev() {
        *slot = flat % d.max(1);
        flat /= d.max(1);
    }
    index
}

/// Checks a forward function against its vector-Jacobian product.
///
/// `backward(inputs, v)` must return the gradient of `Σ v ⊙ forward(inputs)`
/// with respect to each input (`None` for an input that is not
/// differentiable; it is skipped). This needs no graph, so kernels outside
/// autodiff (convolutions, pooling) use it directly.
///
/// # Errors
/// A [`GradcheckError`] naming the first failed property; for a value
/// mismatch, the input, element index, analytic and numeric values of the worst element.
///
/// # Examples
/// ```
/// use gradlab_autodiff::gradcheck::{check_vjp, GradcheckOptions};
/// use gradlab_tensor::{Tensor, TensorError};
/// let x = Tensor::from_vec(&[3], vec![0.5, -1.0, 2.0])?;
/// // y = x², dy = 2 x v
/// let ok = check_vjp(
///     |xs: &[Tensor<f64>]| Ok::<_, TensorError>(xs[0].mul(&xs[0])?),
///     |xs: &[Tensor<f64>], v: &Tensor<f64>| Ok(vec![Some(xs[0].mul_scalar(2.0).mul(v)?)]),
///     &[x.clone()], &GradcheckOptions::default());
/// assert!(ok.is_ok());
/// // A wrong backward (missing factor 2) is caught.
/// let bad = check_vjp(
///     |xs: &[Tensor<f64>]| Ok::<_, TensorError>(xs[0].mul(&xs[0])?),
///     |xs: &[Tensor<f64>], v: &Tensor<f64>| Ok(vec![Some(xs[0].mul(v)?)]),
///     &[x], &GradcheckOptions::default());
/// assert!(bad.is_err());
/// # Ok::<(), TensorError>(())
/// ```
pub fn check_vjp<F, B, E>(
    forward: F,
    backward: B,
    inputs: &[Tensor<f64>],
    opts: &GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError>
where
    F: Fn(&[Tensor<f64>]) -> Result<Tensor<f64>, E>,
    B: Fn(&[Tensor<f64>], &Tensor<f64>) -> Result<Vec<Option<Tensor<f64>>>, E>,
    E: Display,
{
    let eval = |xs: &[Tensor<f64>]| forward(xs).map_err(|e| GradcheckError::Forward(e.to_string()));
    let vjp = |xs: &[Tensor<f64>], v: &Tensor<f64>| {
        let gs = backward(xs, v).map_err(|e| GradcheckError::Backward(e.to_string()))?;
        if gs.len() != xs.len() {
            return Err(GradcheckError::Arity {
                expected: xs.len(),
                got: gs.len(),
            });
        }
        for (i, (g, x)) in gs.iter().zip(xs).enumerate() {
            if let Some(g) = g {
                if g.shape() != x.shape() {
                    return Err(GradcheckError::Shape {
                        input: i,
                        expected: x.shape().to_vec(),
                        got: g.shape().to_vec(),
                    });
                }
            }
        }
        Ok(gs)
    };

    let y = eval(inputs)?;
    let v = Tensor::<f64>::rand_uniform(y.shape(), -1.0, 1.0, opts.seed)
        .map_err(|e| GradcheckError::Forward(e.to_string()))?;
    let weighted = |y: &Tensor<f64>| -> f64 {
        y.as_slice()
            .iter()
            .zip(v.as_slice())
            .map(|(a, b)| a * b)
            .sum()
    };

    let analytic = vjp(inputs, &v)?;

    // Determinism: a second backward must agree bit for bit.
    let again = vjp(inputs, &v)?;
    for (i, (a, b)) in analytic.iter().zip(&again).enumerate() {
        if let (Some(a), Some(b)) = (a, b) {
            if let Some((flat, (x, z))) = a
                .as_slice()
                .iter()
                .zip(b.as_slice())
                .enumerate()
                .find(|(_, (x, z))| x.to_bits() != z.to_bits())
            {
                return Err(GradcheckError::Nondeterministic {
                    input: i,
                    flat,
                    first: *x,
                    second: *z,
                });
            }
        }
    }

    // A zero upstream gradient must give exactly zero gradients.
    let zeros = vjp(inputs, &Tensor::zeros(y.shape()))?;
    for (i, g) in zeros.iter().enumerate() {
        if let Some(g) = g {
            if let Some((flat, &value)) = g.as_slice().iter().enumerate().find(|(_, &x)| x != 0.0) {
                return Err(GradcheckError::NonZeroForZero {
                    input: i,
                    index: unravel(flat, g.shape()),
                    value,
                });
            }
        }
    }

    let mut report = GradcheckReport {
        inputs_checked: 0,
        elements_checked: 0,
        max_abs_error: 0.0,
    };
    let mut worst: Option<GradcheckError> = None;
    let mut worst_excess = f64::NEG_INFINITY;
    let mut failing = 0;
    let mut xs: Vec<Tensor<f64>> = inputs.to_vec();
    for (i, a) in analytic.iter().enumerate() {
        let Some(a) = a else { continue };
        report.inputs_checked += 1;
        for flat in 0..xs[i].len() {
            let orig = xs[i].as_slice()[flat];
            xs[i].as_slice_mut()[flat] = orig + opts.eps;
            let plus = weighted(&eval(&xs)?);
            xs[i].as_slice_mut()[flat] = orig - opts.eps;
            let minus = weighted(&eval(&xs)?);
            xs[i].as_slice_mut()[flat] = orig;
            let numeric = (plus - minus) / (2.0 * opts.eps);
            let analytic = a.as_slice()[flat];
            let diff = (analytic - numeric).abs();
            let allowed = opts.atol + opts.rtol * numeric.abs();
            report.elements_checked += 1;
            if diff.is_finite() {
                report.max_abs_error = report.max_abs_error.max(diff);
            }
            // A NaN on either side fails.
            let passes = diff.is_finite() && diff <= allowed;
            if !passes {
                failing += 1;
                let excess = if diff.is_nan() {
                    f64::INFINITY
                } else {
                    diff - allowed
                };
                if excess > worst_excess {
                    worst_excess = excess;
                    worst = Some(GradcheckError::Mismatch {
                        input: i,
                        index: unravel(flat, xs[i].shape()),
                        analytic,
                        numeric,
                        diff,
                        allowed,
                        failing: 0,
                    });
                }
            }
        }
    }
    match worst {
        Some(GradcheckError::Mismatch {
            input,
            index,
            analytic,
            numeric,
            diff,
            allowed,
            ..
        }) => Err(GradcheckError::Mismatch {
            input,
            index,
            analytic,
            numeric,
            diff,
            allowed,
            failing,
        }),
        Some(other) => Err(other),
        None => Ok(report),
    }
}

/// Checks a whole computation built on a [`Graph`]: `f` receives a fresh
/// graph and one [`param`](Graph::param) per input, and returns the output
/// `Var` (of any shape). Every input is checked.
///
/// # Errors
/// As [`check_vjp`].
///
/// # Examples
/// ```
/// use gradlab_autodiff::{gradcheck::{gradcheck, GradcheckOptions}, Graph, Var, AutodiffError};
/// use gradlab_tensor::Tensor;
/// let a = Tensor::rand_normal(&[2, 3], 0.0, 1.0, 1)?;
/// let b = Tensor::rand_normal(&[3], 0.0, 1.0, 2)?;
/// gradcheck(|g: &mut Graph<f64>, x: &[Var]| {
///     let y = g.mul(x[0], x[1])?;   // broadcasting, and x[0] used twice:
///     let z = g.tanh(x[0])?;
///     g.add(y, z)
/// }, &[a, b], &GradcheckOptions::default()).map_err(|e| AutodiffError::Op { op: "test", reason: e.to_string() })?;
/// # Ok::<(), AutodiffError>(())
/// ```
pub fn gradcheck<F>(
    f: F,
    inputs: &[Tensor<f64>],
    opts: &GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError>
where
    F: Fn(&mut Graph<f64>, &[Var]) -> Result<Var, AutodiffError>,
{
    let build = |xs: &[Tensor<f64>]| -> Result<(Graph<f64>, Vec<Var>, Var), AutodiffError> {
        let mut g = Graph::new();
        let vars: Vec<Var> = xs.iter().map(|x| g.param(x.clone())).collect();
        let out = f(&mut g, &vars)?;
        Ok((g, vars, out))
    };
    check_vjp(
        |xs: &[Tensor<f64>]| {
            let (g, _, out) = build(xs)?;
            g.value(out).cloned()
        },
        |xs: &[Tensor<f64>], v: &Tensor<f64>| {
            let (g, vars, out) = build(xs)?;
            let grads = g.backward_from(out, v.clone(), Retain::LeavesAnd(&[]))?;
            // An input the output does not depend on has a zero gradient.
            Ok(vars
                .iter()
                .zip(xs)
                .map(|(&var, x)| {
                    Some(
                        grads
                            .get(var)
                            .cloned()
                            .unwrap_or_else(|| Tensor::zeros(x.shape())),
                    )
                })
                .collect())
        },
        inputs,
        opts,
    )
}

/// Checks one [`Op`] on its own: forward against its backward, every input
/// wanting a gradient.
///
/// # Errors
/// As [`check_vjp`].
pub fn gradcheck_op<O: Op<f64>>(
    op: &O,
    inputs: &[Tensor<f64>],
    opts: &GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError> {
    let needs = vec![true; inputs.len()];
    check_vjp(
        |xs: &[Tensor<f64>]| {
            let refs: Vec<&Tensor<f64>> = xs.iter().collect();
            op.forward(&refs)
        },
        |xs: &[Tensor<f64>], v: &Tensor<f64>| {
            let refs: Vec<&Tensor<f64>> = xs.iter().collect();
            let y = op.forward(&refs)?;
            op.backward(&refs, &y, v, &needs)
        },
        inputs,
        opts,
    )
}
