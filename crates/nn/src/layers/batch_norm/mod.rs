//! [`BatchNorm2d`] and [`BatchNorm1d`] (Ioffe & Szegedy 2015) with fused
//! training and evaluation ops.
//!
//! Both layers see their input as `[N, C, S]` (`S` = every axis after the
//! channels, 1 for a `[N, C]` input) and normalise each channel over its
//! `m = N * S` values. Per-(image, channel) planes are processed in parallel;
//! per-channel sums are reduced over the batch in a fixed order, so results
//! do not depend on the number of threads. The per-plane passes
//! (`planes.rs`) run in the convolutions' kernel build; their sums
//! accumulate in the element type over independent lanes, flushed into
//! `f64` every 1024 values, and the per-channel totals are `f64`.

mod planes;

use gradlab_autodiff::{expect_arity, Op, Result as AdResult, Var};
use gradlab_conv::Isa;
use gradlab_tensor::{Element, Tensor};
use std::mem::MaybeUninit;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::init::{Fans, Init};
use crate::layer_info::{LayerInfo, LayerKind};
use crate::layers::op_error;
use crate::module::{HasParams, Module};
use crate::param::{Param, Role, Scope};
use planes::DxCoef;

/// `(N, C, S)` of a tensor of rank >= 2.
fn ncs(op: &'static str, shape: &[usize]) -> AdResult<(usize, usize, usize)> {
    if shape.len() < 2 {
        return Err(op_error(
            op,
            format!("input must have shape [N, C, ...], got {shape:?}"),
        ));
    }
    Ok((shape[0], shape[1], shape[2..].iter().product()))
}

/// Per-channel pairs of sums: `f(first plane, sums of the run)` on runs of
/// (image, channel) planes of `s` values in parallel, each writing one pair
/// per plane, then added up over the images in order (so the result does
/// not depend on the number of threads or on how the planes are grouped).
fn per_channel(
    n: usize,
    c: usize,
    s: usize,
    f: impl Fn(usize, &mut [[f64; 2]]) + Sync,
) -> Vec<(f64, f64)> {
    let mut planes = vec![[0.0; 2]; n * c];
    let run = planes::planes_per_task(s);
    planes
        .par_chunks_mut(run)
        .enumerate()
        .for_each(|(t, sums)| f(t * run, sums));
    let mut out = vec![(0.0, 0.0); c];
    for img in 0..n {
        for (ch, o) in out.iter_mut().enumerate() {
            let [a, b] = planes[img * c + ch];
            o.0 += a;
            o.1 += b;
        }
    }
    out
}

/// `(sum g, sum g (x - mu))` per channel, `g = dy` masked by the ReLU that
/// followed the normalisation `relu[channel] = [a, center, b]` when given.
fn grad_sums<T: Element>(
    dys: &[T],
    relu: Option<&[[T; 3]]>,
    xs: &[T],
    n: usize,
    s: usize,
    mu: &[T],
) -> Vec<(f64, f64)> {
    let c = mu.len();
    if s == 0 {
        return vec![(0.0, 0.0); c];
    }
    let isa = Isa::current();
    per_channel(n, c, s, |first, sums| {
        let r = first * s..(first + sums.len()) * s;
        planes::grad_sums(isa, &dys[r.clone()], relu, &xs[r], s, first, mu, sums);
    })
}

/// Batch mean and biased variance per channel, in one pass over the data:
/// sums of `x - k` and `(x - k)^2` with `k` the channel's first value (the
/// shifted-data algorithm, which stays accurate when the mean is large).
fn batch_stats<T: Element>(xs: &[T], n: usize, c: usize, s: usize) -> (Vec<f64>, Vec<f64>) {
    let m = (n * s) as f64;
    if n * s == 0 {
        return (vec![0.0; c], vec![0.0; c]);
    }
    let isa = Isa::current();
    let shift: Vec<T> = (0..c).map(|ch| xs[ch * s]).collect();
    let sums = per_channel(n, c, s, |first, sums| {
        let r = first * s..(first + sums.len()) * s;
        planes::shifted_sums(isa, &xs[r], s, first, &shift, sums);
    });
    let mut mean = Vec::with_capacity(c);
    let mut var = Vec::with_capacity(c);
    for (ch, (s1, s2)) in sums.into_iter().enumerate() {
        let d = s1 / m;
        mean.push(shift[ch].as_f64() + d);
        var.push((s2 / m - d * d).max(0.0));
    }
    (mean, var)
}

/// `y = a[c] (x - center[c]) + b[c]` per plane, in parallel, then the
/// addition of `skip` and the ReLU when asked for; `coef[c] = [a, center,
/// b]`.
fn affine_planes<T: Element>(
    xs: &[T],
    s: usize,
    coef: &[[T; 3]],
    relu: bool,
    skip: Option<&[T]>,
) -> Vec<T> {
    let isa = Isa::current();
    let run = planes::planes_per_task(s);
    let write = |t: usize, o: &mut [MaybeUninit<T>]| {
        let first = t * run;
        let r = first * s..first * s + o.len();
        let skip = skip.map(|k| &k[r.clone()]);
        planes::affine_planes(isa, o, &xs[r], skip, relu, s, first, coef);
    };
    // SAFETY: `affine_planes` writes every element of the run it is given
    // (runs of whole planes: `xs.len()` is a multiple of `s`).
    unsafe { planes::written_in_chunks(xs.len(), run * s, write) }
}

/// `dx = k g + kx (x - mu) + k0` per plane, in parallel, with `g = dy`
/// masked as in [`grad_sums`].
fn dx_planes<T: Element>(
    dy: &[T],
    relu: Option<&[[T; 3]]>,
    xs: &[T],
    s: usize,
    coef: &[DxCoef<T>],
) -> Vec<T> {
    let isa = Isa::current();
    let run = planes::planes_per_task(s);
    let write = |t: usize, o: &mut [MaybeUninit<T>]| {
        let first = t * run;
        let r = first * s..first * s + o.len();
        planes::dx_planes(isa, o, &dy[r.clone()], relu, &xs[r], s, first, coef);
    };
    // SAFETY: `dx_planes` writes every element of the run it is given
    // (runs of whole planes: `xs.len()` is a multiple of `s`).
    unsafe { planes::written_in_chunks(xs.len(), run * s, write) }
}

/// `[a, center, b]` per channel of the normalisation
/// `gamma (x - mean) / sqrt(var + eps) + beta`.
fn normalisation<T: Element>(
    gamma: &[T],
    beta: &[T],
    mean: &[f64],
    var: &[f64],
    eps: f64,
) -> Vec<[T; 3]> {
    gamma
        .iter()
        .zip(beta)
        .zip(mean.iter().zip(var))
        .map(|((g, &b), (&m, v))| [T::of_f64(g.as_f64() / (v + eps).sqrt()), T::of_f64(m), b])
        .collect()
}

fn check_affine<T: Element>(op: &'static str, inputs: &[&Tensor<T>], c: usize) -> AdResult<()> {
    for (i, what) in [(1, "gamma"), (2, "beta")] {
        if inputs[i].shape() != [c] {
            return Err(op_error(
                op,
                format!(
                    "{what} of shape {:?} for an input with {c} channels",
                    inputs[i].shape()
                ),
            ));
        }
    }
    Ok(())
}

/// Batch normalisation with batch statistics (training mode), fused.
///
/// Inputs: `x` `[N, C, ...]`, `gamma` `[C]`, `beta` `[C]`. With `m = N * S`
/// values per channel, `mu` their mean, `var` their biased variance,
/// `xhat = (x - mu) / sqrt(var + eps)`, the output is `y = gamma xhat + beta`.
///
/// VJP (the statistics depend on `x`):
/// `dbeta = sum dy`, `dgamma = sum dy xhat`,
/// `dx = gamma / sqrt(var + eps) * (dy - dbeta / m - xhat dgamma / m)`.
///
/// The op can hand the batch statistics its forward pass computed to the
/// layer that applied it ([`with_stats_sink`](BatchNormTrainOp::with_stats_sink)),
/// so the running statistics cost no extra pass; forward and backward
/// depend on their inputs only.
///
/// With [`with_relu`](BatchNormTrainOp::with_relu) the op is BatchNorm
/// followed by a ReLU, `y = max(gamma xhat + beta, 0)`, as one op: its
/// backward masks `dy` where `y > 0` (as the ReLU's backward does, same
/// bits) and reads `x` and `y`, so the normalised values before the ReLU
/// are never stored.
///
/// With [`with_add_relu`](BatchNormTrainOp::with_add_relu) it takes a
/// fourth input `skip` of `x`'s shape and computes
/// `y = max(gamma xhat + beta + skip, 0)`, the end of a residual block
/// (BatchNorm, shortcut addition, ReLU) as one op; `dskip` is the masked
/// `dy`.
///
/// The stats sink is also the op's saved state: its backward reuses the
/// mean and variance its forward pass wrote there instead of recomputing
/// them (the same numbers: the same function of the same input).
#[derive(Debug, Clone)]
pub struct BatchNormTrainOp {
    eps: f64,
    sink: Option<Arc<OnceLock<BatchStats>>>,
    relu: bool,
    skip: bool,
}

/// Per-channel batch mean and biased variance.
pub type BatchStats = (Vec<f64>, Vec<f64>);

impl BatchNormTrainOp {
    /// The op with `eps` added to the variance (PyTorch's default `1e-5`).
    pub fn new(eps: f64) -> Self {
        BatchNormTrainOp {
            eps,
            sink: None,
            relu: false,
            skip: false,
        }
    }

    /// The same op followed by the addition of a fourth input and a ReLU:
    /// `y = max(BatchNorm(x) + skip, 0)`.
    pub fn with_add_relu(mut self) -> Self {
        self.relu = true;
        self.skip = true;
        self
    }

    /// The same op followed by a ReLU: `y = max(BatchNorm(x), 0)`.
    pub fn with_relu(mut self) -> Self {
        self.relu = true;
        self
    }

    /// Whether a ReLU follows the normalisation.
    pub fn has_relu(&self) -> bool {
        self.relu
    }

    /// The same op, also writing the per-channel `(mean, biased variance)`
    /// of its first forward pass into `sink`.
    pub fn with_stats_sink(mut self, sink: Arc<OnceLock<BatchStats>>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The `eps` added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

impl<T: Element> Op<T> for BatchNormTrainOp {
    fn name(&self) -> &'static str {
        if self.skip {
            "batch_norm_add_relu"
        } else if self.relu {
            "batch_norm_relu"
        } else {
            "batch_norm"
        }
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> AdResult<Tensor<T>> {
        expect_arity("batch_norm", inputs, if self.skip { 4 } else { 3 })?;
        let x = inputs[0];
        let (n, c, s) = ncs("batch_norm", x.shape())?;
        let skip = if self.skip {
            if inputs[3].shape() != x.shape() {
                return Err(op_error(
                    "batch_norm_add_relu",
                    format!(
                        "skip input of shape {:?} for input of shape {:?}",
                        inputs[3].shape(),
                        x.shape()
                    ),
                ));
            }
            Some(inputs[3].as_slice())
        } else {
            None
        };
        check_affine("batch_norm", inputs, c)?;
        let (mean, var) = batch_stats(x.as_slice(), n, c, s);
        let coef = normalisation(
            inputs[1].as_slice(),
            inputs[2].as_slice(),
            &mean,
            &var,
            self.eps,
        );
        let y = affine_planes(x.as_slice(), s, &coef, self.relu, skip);
        if let Some(sink) = &self.sink {
            let _ = sink.set((mean, var));
        }
        Ok(Tensor::from_vec(x.shape(), y)?)
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        output: &Tensor<T>,
        grad_output: &Tensor<T>,
        needs: &[bool],
    ) -> AdResult<Vec<Option<Tensor<T>>>> {
        let x = inputs[0];
        let (n, c, s) = ncs("batch_norm", x.shape())?;
        // The ReLU's backward masks dy where y <= 0. With a skip input the
        // masked dy is also dskip, so it is written out once; otherwise
        // each pass masks dy as it reads it (one activation-sized buffer
        // and two passes less), recomputing y's sign from x.
        let masked: Option<Vec<T>> = self.skip.then(|| {
            const CHUNK: usize = 4096;
            let (g, y) = (grad_output.as_slice(), output.as_slice());
            let write = |i: usize, m: &mut [MaybeUninit<T>]| {
                let r = i * CHUNK..i * CHUNK + m.len();
                for ((m, &g), &y) in m.iter_mut().zip(&g[r.clone()]).zip(&y[r]) {
                    m.write(planes::relu_masked(g, y));
                }
            };
            // SAFETY: `write` writes every element of its chunk (`g` and
            // `y` are as long as the output).
            unsafe { planes::written_in_chunks(x.len(), CHUNK, write) }
        });
        let xs = x.as_slice();
        let (mean, var) = match self.sink.as_ref().and_then(|s| s.get()) {
            Some((m, v)) if m.len() == c => (m.clone(), v.clone()),
            _ => batch_stats(xs, n, c, s),
        };
        // Without a skip input, the ReLU's mask is recomputed from `x` with
        // the forward pass's coefficients rather than read from `y`.
        let affine = (self.relu && masked.is_none()).then(|| {
            let (gamma, beta) = (inputs[1].as_slice(), inputs[2].as_slice());
            normalisation(gamma, beta, &mean, &var, self.eps)
        });
        let dys = masked.as_deref().unwrap_or(grad_output.as_slice());
        let relu = affine.as_deref();
        let mu: Vec<T> = mean.iter().map(|&m| T::of_f64(m)).collect();
        let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + self.eps).sqrt()).collect();
        let sums = grad_sums(dys, relu, xs, n, s, &mu);
        let dbeta: Vec<f64> = sums.iter().map(|p| p.0).collect();
        let dgamma: Vec<f64> = sums.iter().zip(&invstd).map(|(p, is)| p.1 * is).collect();
        let dx = if needs[0] {
            let m = (n * s) as f64;
            let g = inputs[1].as_slice();
            // dx = k dy + kx (x - mu) + k0, per channel:
            // k = gamma invstd, kx = -k invstd dgamma / m, k0 = -k dbeta / m.
            let coef: Vec<DxCoef<T>> = (0..c)
                .map(|ch| {
                    let kk = g[ch].as_f64() * invstd[ch];
                    DxCoef {
                        k: T::of_f64(kk),
                        kx: T::of_f64(-kk * invstd[ch] * dgamma[ch] / m),
                        k0: T::of_f64(-kk * dbeta[ch] / m),
                        mu: mu[ch],
                    }
                })
                .collect();
            let dx = dx_planes(dys, relu, xs, s, &coef);
            Some(Tensor::from_vec(x.shape(), dx)?)
        } else {
            None
        };
        let to_t = |v: Vec<f64>| Tensor::from_vec(&[c], v.into_iter().map(T::of_f64).collect());
        let mut grads = vec![
            dx,
            if needs[1] { Some(to_t(dgamma)?) } else { None },
            if needs[2] { Some(to_t(dbeta)?) } else { None },
        ];
        if self.skip {
            // dskip is the masked dy: hand its buffer over rather than
            // copy it (one activation-sized buffer less, and no copy).
            grads.push(if needs[3] {
                let dskip = masked.unwrap_or_else(|| grad_output.as_slice().to_vec());
                Some(Tensor::from_vec(x.shape(), dskip)?)
            } else {
                None
            });
        }
        Ok(grads)
    }
}

/// Batch normalisation with fixed statistics (evaluation mode):
/// `y = gamma (x - mean) / sqrt(var + eps) + beta`, the running statistics
/// held by the op as constants.
///
/// Inputs: `x` `[N, C, ...]`, `gamma` `[C]`, `beta` `[C]`. VJPs:
/// `dx = dy gamma / sqrt(var + eps)`, `dgamma = sum dy (x - mean) / sqrt(var + eps)`,
/// `dbeta = sum dy`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormEvalOp {
    /// Per-channel mean used for normalisation.
    pub mean: Vec<f64>,
    /// Per-channel variance used for normalisation.
    pub var: Vec<f64>,
    /// Added to the variance.
    pub eps: f64,
}

impl BatchNormEvalOp {
    fn check<T: Element>(&self, inputs: &[&Tensor<T>]) -> AdResult<(usize, usize, usize)> {
        expect_arity("batch_norm_eval", inputs, 3)?;
        let (n, c, s) = ncs("batch_norm_eval", inputs[0].shape())?;
        check_affine("batch_norm_eval", inputs, c)?;
        if self.mean.len() != c || self.var.len() != c {
            return Err(op_error(
                "batch_norm_eval",
                format!("statistics for {} channels, input has {c}", self.mean.len()),
            ));
        }
        Ok((n, c, s))
    }
}

impl<T: Element> Op<T> for BatchNormEvalOp {
    fn name(&self) -> &'static str {
        "batch_norm_eval"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> AdResult<Tensor<T>> {
        let (_, _, s) = self.check(inputs)?;
        let coef = normalisation(
            inputs[1].as_slice(),
            inputs[2].as_slice(),
            &self.mean,
            &self.var,
            self.eps,
        );
        let y = affine_planes(inputs[0].as_slice(), s, &coef, false, None);
        Ok(Tensor::from_vec(inputs[0].shape(), y)?)
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _output: &Tensor<T>,
        grad_output: &Tensor<T>,
        needs: &[bool],
    ) -> AdResult<Vec<Option<Tensor<T>>>> {
        let (n, c, s) = self.check(inputs)?;
        let (xs, dys) = (inputs[0].as_slice(), grad_output.as_slice());
        let invstd: Vec<f64> = self
            .var
            .iter()
            .map(|v| 1.0 / (v + self.eps).sqrt())
            .collect();
        let dx = if needs[0] {
            let g = inputs[1].as_slice();
            let zero = T::zero();
            let k: Vec<[T; 3]> = (0..c)
                .map(|ch| [T::of_f64(g[ch].as_f64() * invstd[ch]), zero, zero])
                .collect();
            Some(Tensor::from_vec(
                inputs[0].shape(),
                affine_planes(dys, s, &k, false, None),
            )?)
        } else {
            None
        };
        let to_t = |v: Vec<f64>| Tensor::from_vec(&[c], v.into_iter().map(T::of_f64).collect());
        let sums = if needs[1] || needs[2] {
            let mu: Vec<T> = self.mean.iter().map(|&m| T::of_f64(m)).collect();
            grad_sums(dys, None, xs, n, s, &mu)
        } else {
            vec![(0.0, 0.0); c]
        };
        let dgamma = if needs[1] {
            Some(to_t(
                sums.iter().zip(&invstd).map(|(p, is)| p.1 * is).collect(),
            )?)
        } else {
            None
        };
        let dbeta = if needs[2] {
            Some(to_t(sums.iter().map(|p| p.0).collect())?)
        } else {
            None
        };
        Ok(vec![dx, dgamma, dbeta])
    }
}

/// Options of a BatchNorm layer (PyTorch's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormConfig {
    /// Weight of the new batch statistic in the running average:
    /// `running = (1 - momentum) running + momentum batch` (default 0.1).
    pub momentum: f64,
    /// Added to the variance before the square root (default `1e-5`).
    pub eps: f64,
    /// Initial `gamma` (default 1; 0 for the last BN of a residual branch
    /// gives the "zero-init residual" of Goyal et al. 2017).
    pub gamma_init: f64,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            momentum: 0.1,
            eps: 1e-5,
            gamma_init: 1.0,
        }
    }
}

/// The state and behaviour shared by [`BatchNorm2d`] and [`BatchNorm1d`].
#[derive(Debug, Clone)]
pub struct BatchNorm<T: Element = f32> {
    name: String,
    num_features: usize,
    config: BatchNormConfig,
    gamma: Param<T>,
    beta: Param<T>,
    running_mean: Param<T>,
    running_var: Param<T>,
    training: bool,
}

impl<T: Element> BatchNorm<T> {
    fn new(scope: &Scope, num_features: usize, config: BatchNormConfig) -> Result<Self> {
        if num_features == 0 {
            return Err(NnError::config(
                scope.prefix(),
                "BatchNorm needs at least one feature",
            ));
        }
        if !(config.momentum >= 0.0 && config.momentum <= 1.0) {
            return Err(NnError::config(
                scope.prefix(),
                format!("momentum must lie in [0, 1], got {}", config.momentum),
            ));
        }
        if !(config.eps > 0.0 && config.eps.is_finite()) {
            return Err(NnError::config(
                scope.prefix(),
                format!("eps must be positive and finite, got {}", config.eps),
            ));
        }
        let depth = scope.next_depth();
        let shape = [num_features];
        let fans = Fans::of_shape(&shape);
        let c = |v: f64| Init::Constant(v);
        Ok(BatchNorm {
            name: scope.prefix().to_string(),
            num_features,
            gamma: scope.param(
                "gamma",
                Role::Gamma,
                depth,
                &shape,
                &c(config.gamma_init),
                fans,
            )?,
            beta: scope.param("beta", Role::Beta, depth, &shape, &c(0.0), fans)?,
            running_mean: scope.param(
                "running_mean",
                Role::RunningMean,
                depth,
                &shape,
                &c(0.0),
                fans,
            )?,
            running_var: scope.param(
                "running_var",
                Role::RunningVar,
                depth,
                &shape,
                &c(1.0),
                fans,
            )?,
            config,
            training: true,
        })
    }

    /// Number of channels `C`.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// The configuration.
    pub fn config(&self) -> &BatchNormConfig {
        &self.config
    }

    /// The scale `gamma` `[C]`.
    pub fn gamma(&self) -> &Param<T> {
        &self.gamma
    }

    /// The shift `beta` `[C]`.
    pub fn beta(&self) -> &Param<T> {
        &self.beta
    }

    /// The running mean `[C]` (a buffer).
    pub fn running_mean(&self) -> &Param<T> {
        &self.running_mean
    }

    /// The running variance `[C]` (a buffer).
    pub fn running_var(&self) -> &Param<T> {
        &self.running_var
    }

    /// Applies the layer; with `relu = Some(name)` (training mode only) as
    /// one op with the ReLU layer `name` that follows it, tapping the result
    /// under the ReLU's name.
    fn run(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        expected: &str,
        rank_ok: bool,
        relu: Option<&str>,
        skip: Option<Var>,
    ) -> Result<Var> {
        let shape = cx.value(x)?.shape().to_vec();
        if !rank_ok || shape[1] != self.num_features {
            return Err(NnError::InputShape {
                layer: self.name.clone(),
                expected: expected.to_string(),
                got: shape,
            });
        }
        let training_m = if self.training {
            let m = shape[0] * shape[2..].iter().product::<usize>();
            if m <= 1 {
                return Err(NnError::BatchTooSmall {
                    layer: self.name.clone(),
                    shape,
                });
            }
            Some(m as f64)
        } else {
            None
        };
        let gamma = cx.param(&self.gamma);
        let beta = cx.param(&self.beta);
        let y = if let Some(m) = training_m {
            let sink = Arc::new(OnceLock::new());
            let mut op = BatchNormTrainOp::new(self.config.eps).with_stats_sink(Arc::clone(&sink));
            let y = match (relu, skip) {
                (Some(_), Some(k)) => {
                    op = op.with_add_relu();
                    cx.graph_mut().apply(op, &[x, gamma, beta, k])?
                }
                (Some(_), None) => {
                    op = op.with_relu();
                    cx.graph_mut().apply(op, &[x, gamma, beta])?
                }
                _ => cx.graph_mut().apply(op, &[x, gamma, beta])?,
            };
            // Running statistics: PyTorch updates them with the unbiased
            // variance. A batch with NaN or infinity leaves them alone (the
            // step will be refused by the non-finite guard anyway).
            if let Some((mean, var)) = sink.get() {
                if mean.iter().chain(var).all(|v| v.is_finite()) {
                    let mom = self.config.momentum;
                    let unbias = m / (m - 1.0);
                    for (r, bm) in self.running_mean.data_mut().iter_mut().zip(mean) {
                        *r = T::of_f64((1.0 - mom) * r.as_f64() + mom * bm);
                    }
                    for (r, bv) in self.running_var.data_mut().iter_mut().zip(var) {
                        *r = T::of_f64((1.0 - mom) * r.as_f64() + mom * bv * unbias);
                    }
                }
            }
            y
        } else {
            let f = |p: &Param<T>| p.value().as_slice().iter().map(|v| v.as_f64()).collect();
            let op = BatchNormEvalOp {
                mean: f(&self.running_mean),
                var: f(&self.running_var),
                eps: self.config.eps,
            };
            cx.graph_mut().apply(op, &[x, gamma, beta])?
        };
        cx.tap(relu.unwrap_or(&self.name), y);
        Ok(y)
    }
}

impl<T: Element> HasParams<T> for BatchNorm<T> {
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        f(&self.gamma);
        f(&self.beta);
        f(&self.running_mean);
        f(&self.running_var);
    }

    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        f(&mut self.gamma);
        f(&mut self.beta);
        f(&mut self.running_mean);
        f(&mut self.running_var);
    }
}

macro_rules! batch_norm_layer {
    ($(#[$doc:meta])* $name:ident, $expected:literal, $ranks:pat) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name<T: Element = f32>(BatchNorm<T>);

        impl<T: Element> $name<T> {
            /// A layer over `num_features` channels, named by `scope`.
            ///
            /// # Errors
            /// [`NnError::InvalidConfig`] for zero features, a momentum outside
            /// `[0, 1]` or a non-positive `eps`; [`NnError::InvalidName`].
            pub fn new(scope: &Scope, num_features: usize, config: BatchNormConfig) -> Result<Self> {
                Ok($name(BatchNorm::new(scope, num_features, config)?))
            }
        }

        impl<T: Element> std::ops::Deref for $name<T> {
            type Target = BatchNorm<T>;
            fn deref(&self) -> &BatchNorm<T> {
                &self.0
            }
        }

        impl<T: Element> HasParams<T> for $name<T> {
            fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
                self.0.visit_params(f)
            }
            fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
                self.0.visit_params_mut(f)
            }
        }

        impl<T: Element> Module<T> for $name<T> {
            fn name(&self) -> &str {
                &self.0.name
            }

            fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> Result<Var> {
                let rank = cx.value(x)?.rank();
                let expected = format!($expected, self.0.num_features);
                self.0.run(cx, x, &expected, matches!(rank, $ranks), None, None)
            }

            /// In training mode, BatchNorm and the ReLU after it as one op
            /// ([`BatchNormTrainOp::with_relu`]): the same values, one
            /// activation less to store. The result is tapped under the
            /// ReLU's name only.
            fn forward_then_relu(
                &mut self,
                cx: &mut Ctx<T>,
                x: Var,
                relu_name: &str,
            ) -> Option<Result<Var>> {
                if !self.0.training || !cx.grad_enabled() {
                    return None;
                }
                let rank = match cx.value(x) {
                    Ok(v) => v.rank(),
                    Err(e) => return Some(Err(e.into())),
                };
                let expected = format!($expected, self.0.num_features);
                Some(self.0.run(cx, x, &expected, matches!(rank, $ranks), Some(relu_name), None))
            }

            /// In training mode, BatchNorm, the addition of `skip` and a
            /// ReLU as one op ([`BatchNormTrainOp::with_add_relu`]), tapped
            /// under the ReLU's name only.
            fn forward_then_add_relu(
                &mut self,
                cx: &mut Ctx<T>,
                x: Var,
                skip: Var,
                relu_name: &str,
            ) -> Option<Result<Var>> {
                if !self.0.training || !cx.grad_enabled() {
                    return None;
                }
                let (rank, same) = match (cx.value(x), cx.value(skip)) {
                    (Ok(v), Ok(k)) => (v.rank(), v.shape() == k.shape()),
                    (Err(e), _) | (_, Err(e)) => return Some(Err(e.into())),
                };
                if !same {
                    return None;
                }
                let expected = format!($expected, self.0.num_features);
                Some(self.0.run(cx, x, &expected, matches!(rank, $ranks), Some(relu_name), Some(skip)))
            }

            fn set_training(&mut self, training: bool) {
                self.0.training = training;
            }

            fn is_training(&self) -> bool {
                self.0.training
            }

            fn describe(&self, out: &mut Vec<LayerInfo>) {
                let features = self.0.num_features;
                out.push(LayerInfo::leaf(self, LayerKind::$name { features }));
            }
        }
    };
}

batch_norm_layer!(
    /// Batch normalisation over the channels of images, PyTorch's
    /// `nn.BatchNorm2d` (Ioffe & Szegedy 2015).
    ///
    /// Training mode normalises with the batch mean and biased variance of
    /// each channel (over `N, H, W`) and updates the running statistics
    /// (`running_var` with the unbiased variance); evaluation mode normalises
    /// with the running statistics. Parameters: `<name>.gamma`, `<name>.beta`
    /// (trainable), `<name>.running_mean`, `<name>.running_var` (buffers).
    ///
    /// # Shapes
    /// Input and output `[N, C, H, W]`.
    ///
    /// # Examples
    /// ```
    /// use gradlab_nn::{BatchNorm2d, BatchNormConfig, Ctx, Module, Scope};
    /// use gradlab_tensor::Tensor;
    /// let mut bn = BatchNorm2d::<f64>::new(&Scope::new(0).pp("bn"), 3, BatchNormConfig::default())?;
    /// let mut cx = Ctx::new();
    /// let x = cx.input(Tensor::rand_normal(&[4, 3, 5, 5], 2.0, 3.0, 1)?);
    /// let y = bn.forward(&mut cx, x)?;
    /// let mean = cx.value(y)?.mean(&[0, 2, 3], false)?;
    /// assert!(mean.as_slice().iter().all(|m| m.abs() < 1e-9));
    /// assert!(bn.running_mean().value().as_slice()[0] > 0.1); // moved towards 2
    /// # Ok::<(), gradlab_nn::NnError>(())
    /// ```
    BatchNorm2d,
    "[N, {}, H, W]",
    4
);

batch_norm_layer!(
    /// Batch normalisation over features, PyTorch's `nn.BatchNorm1d`: as
    /// [`BatchNorm2d`] with statistics over `N` (and `L`).
    ///
    /// # Shapes
    /// Input and output `[N, C]` or `[N, C, L]`.
    BatchNorm1d,
    "[N, {}] or [N, {0}, L]",
    2 | 3
);
