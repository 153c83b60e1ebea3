//! Data parallelism over a [`Communicator`]: what the ranks of a run
//! exchange besides the gradients of a step (which [`Trainer::step_parallel`]
//! reduces), and the gradient noise scale that the two gradient sizes give.
//!
//! - [`broadcast_model`]: rank 0's parameters and buffers to every rank.
//! - [`broadcast_training_state`]: the same and rank 0's optimizer state
//!   (after rank 0 alone has read a checkpoint).
//! - [`average_batch_norm_stats`]: every BatchNorm running mean and variance
//!   replaced by its mean over the ranks (before evaluation and checkpoints).
//! - [`agree`]: turns a result that only this rank knows into one that every
//!   rank returns, so that a rank that cannot read its data stops the whole
//!   run with its error instead of leaving the others waiting.
//! - [`config_digest`]: the 64-bit digest of a configuration that
//!   [`check_same_config`](gradlab_dist::check_same_config) compares.
//! - [`NoiseScale`]: McCandlish et al.'s simple noise scale from the
//!   per-rank (small-batch) and all-reduced (large-batch) gradient norms.
//!
//! With one rank every function here returns at once and changes nothing,
//! so a single-process run is bit for bit what it was without them.
//!
//! [`Trainer::step_parallel`]: crate::Trainer::step_parallel

use gradlab_dist::Communicator;
use gradlab_nn::{HasParams, Optimizer, OptimizerState, Role};
use gradlab_tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// The gradient noise scale of one step, from the gradients of two batch
/// sizes taken at the same parameters (McCandlish et al. 2018, "An
/// Empirical Model of Large-Batch Training", appendix A.1).
///
/// Each of the `N` ranks holds the gradient `g_r` of its shard of
/// `b_small` examples; their mean `ḡ` is the gradient of the global batch
/// of `b_big = N b_small` examples. With `|G_small|²` the mean over ranks
/// of `‖g_r‖²` and `|G_big|² = ‖ḡ‖²`, the unbiased estimates are
///
/// ```text
/// |G|²  = (b_big |G_big|² - b_small |G_small|²) / (b_big - b_small)
/// tr(Σ) = (|G_small|² - |G_big|²) / (1/b_small - 1/b_big)
/// B_simple = tr(Σ) / |G|²
/// ```
///
/// where `G` is the true gradient and `Σ` the per-example gradient
/// covariance. These are the quantities of gradlab-diag's bias-corrected
/// gradient SNR over the `N` shard gradients: `|G|²` is its numerator,
/// `tr(Σ) / b_small` its denominator, so `B_simple = b_small / SNR`.
///
/// One step's estimate is noisy (it can even be negative); McCandlish et
/// al. average `|G|²` and `tr(Σ)` over many steps before dividing, which is
/// why both are kept and logged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseScale {
    /// Examples per rank.
    pub small_batch: usize,
    /// Examples of the global batch.
    pub large_batch: usize,
    /// Unbiased estimate of the squared norm of the true gradient, `|G|²`.
    pub grad_sq: f64,
    /// Unbiased estimate of the trace of the per-example gradient
    /// covariance, `tr(Σ)`.
    pub trace: f64,
}

impl NoiseScale {
    /// The estimates from the mean squared norm of the small-batch
    /// gradients and the squared norm of the large-batch gradient; `None`
    /// unless `small_batch < large_batch`.
    ///
    /// ```
    /// use gradlab_train::NoiseScale;
    /// // Two shards of 4 with gradients [1, 0] and [0, 1]: the mean is [0.5, 0.5].
    /// let ns = NoiseScale::from_norms(4, 8, 1.0, 0.5).unwrap();
    /// assert_eq!(ns.grad_sq, 0.0);
    /// assert_eq!(ns.trace, 4.0);
    /// ```
    pub fn from_norms(
        small_batch: usize,
        large_batch: usize,
        small_sq: f64,
        large_sq: f64,
    ) -> Option<NoiseScale> {
        if small_batch == 0 || large_batch <= small_batch {
            return None;
        }
        let (bs, bb) = (small_batch as f64, large_batch as f64);
        Some(NoiseScale {
            small_batch,
            large_batch,
            grad_sq: (bb * large_sq - bs * small_sq) / (bb - bs),
            trace: (small_sq - large_sq) / (1.0 / bs - 1.0 / bb),
        })
    }

    /// `B_simple = tr(Σ) / |G|²`: about the batch size above which a larger
    /// batch stops reducing the number of steps much.
    pub fn b_simple(&self) -> f64 {
        self.trace / self.grad_sq
    }
}

/// FNV-1a, 64 bits: a digest of a configuration that is the same on every
/// machine and build (unlike `std`'s randomly seeded hasher).
///
/// ```
/// use gradlab_train::config_digest;
/// assert_eq!(config_digest(b""), 0xcbf2_9ce4_8422_2325);
/// assert_ne!(config_digest(b"seed=1"), config_digest(b"seed=2"));
/// ```
pub fn config_digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every rank learns whether any rank's `local` result is an error.
///
/// All ranks must call it at the same point. When no rank failed, each gets
/// its own value back. Otherwise the lowest failing rank's error message is
/// broadcast and every rank returns an error: the failing rank its own
/// error, the others [`TrainError::RankFailed`] naming it and its message.
/// With one rank, `local` is returned as it is.
///
/// # Errors
/// As said, and [`TrainError::Dist`] when the collectives fail.
pub fn agree<T>(comm: &dyn Communicator, step: Option<u64>, local: Result<T>) -> Result<T> {
    if comm.size() == 1 {
        return local;
    }
    let mut flags = vec![0.0f64; comm.size()];
    if local.is_err() {
        flags[comm.rank()] = 1.0;
    }
    comm.all_reduce_sum_f64(&mut flags)?;
    first_failure(comm, &flags, step, local)
}

/// After the ranks' failure `flags` (one per rank, summed over ranks) have
/// been exchanged: `Ok(local)` when none is set, else the error of the
/// lowest failing rank on every rank (see [`agree`]).
pub(crate) fn first_failure<T>(
    comm: &dyn Communicator,
    flags: &[f64],
    step: Option<u64>,
    local: Result<T>,
) -> Result<T> {
    let Some(rank) = flags.iter().position(|f| *f != 0.0) else {
        return local;
    };
    let mut message = match &local {
        Err(e) if comm.rank() == rank => e.to_string().into_bytes(),
        _ => Vec::new(),
    };
    comm.broadcast_bytes(&mut message, rank)?;
    match local {
        Err(e) if comm.rank() == rank => Err(e),
        _ => Err(TrainError::RankFailed {
            rank,
            size: comm.size(),
            step,
            message: String::from_utf8_lossy(&message).into_owned(),
        }),
    }
}

/// Every parameter and buffer of `model`, in its order, as one vector.
pub(crate) fn flatten_all(model: &dyn HasParams<f32>, keep: impl Fn(Role) -> bool) -> Vec<f32> {
    let mut flat = Vec::new();
    model.visit_params(&mut |p| {
        if keep(p.role()) {
            flat.extend_from_slice(p.value().as_slice());
        }
    });
    flat
}

/// Writes `flat` back into the tensors [`flatten_all`] read with `keep`.
pub(crate) fn unflatten_all(
    model: &mut dyn HasParams<f32>,
    keep: impl Fn(Role) -> bool,
    flat: &[f32],
) {
    let mut at = 0;
    model.visit_params_mut(&mut |p| {
        if keep(p.role()) {
            let n = p.len();
            p.data_mut().copy_from_slice(&flat[at..at + n]);
            at += n;
        }
    });
}

/// Copies rank 0's parameters and buffers into the model of every rank.
///
/// The ranks' models must have the same parameters in the same order (the
/// same architecture; [`check_same_config`](gradlab_dist::check_same_config)
/// is how a run makes sure).
///
/// # Errors
/// [`TrainError::Dist`], e.g. a length mismatch when the models differ.
pub fn broadcast_model(model: &mut dyn HasParams<f32>, comm: &dyn Communicator) -> Result<()> {
    if comm.size() == 1 {
        return Ok(());
    }
    let mut flat = flatten_all(model, |_| true);
    comm.broadcast_f32(&mut flat, 0)?;
    unflatten_all(model, |_| true, &flat);
    Ok(())
}

/// The shape of rank 0's optimizer state, sent ahead of its numbers.
#[derive(Serialize, Deserialize)]
struct StateLayout {
    kind: String,
    steps: u64,
    lr: f64,
    step: u64,
    tensors: Vec<(String, Vec<usize>)>,
}

/// Copies rank 0's parameters, buffers, optimizer state and `step` to every
/// rank, returning rank 0's step: how a resumed run starts when rank 0 alone
/// has read the checkpoint (the checkpoint need not be visible to the other
/// ranks' machines).
///
/// # Errors
/// [`TrainError::Dist`]; the optimizer's error when rank 0's state does not
/// fit this rank's optimizer (every rank returns an error, through
/// [`agree`]).
pub fn broadcast_training_state(
    model: &mut dyn HasParams<f32>,
    optimizer: &mut dyn Optimizer<f32>,
    step: u64,
    comm: &dyn Communicator,
) -> Result<u64> {
    if comm.size() == 1 {
        return Ok(step);
    }
    broadcast_model(model, comm)?;
    let state = optimizer.state();
    let layout = StateLayout {
        kind: state.kind,
        steps: state.steps,
        lr: state.lr,
        step,
        tensors: state
            .tensors
            .iter()
            .map(|(name, t)| (name.clone(), t.shape().to_vec()))
            .collect(),
    };
    let mut bytes = serde_json::to_vec(&layout).unwrap_or_default();
    comm.broadcast_bytes(&mut bytes, 0)?;
    let layout: std::result::Result<StateLayout, _> = serde_json::from_slice(&bytes);
    let layout = agree(
        comm,
        None,
        layout.map_err(|e| TrainError::Spec(format!("optimizer state from rank 0: {e}"))),
    )?;
    let mut flat: Vec<f32> = if comm.rank() == 0 {
        state
            .tensors
            .iter()
            .flat_map(|(_, t)| t.as_slice().iter().copied())
            .collect()
    } else {
        vec![
            0.0;
            layout
                .tensors
                .iter()
                .map(|(_, s)| s.iter().product::<usize>())
                .sum()
        ]
    };
    comm.broadcast_f32(&mut flat, 0)?;
    let loaded = if comm.rank() == 0 {
        Ok(())
    } else {
        let mut at = 0;
        let mut tensors = Vec::with_capacity(layout.tensors.len());
        let mut bad = None;
        for (name, shape) in &layout.tensors {
            let n: usize = shape.iter().product();
            match Tensor::from_vec(shape, flat[at..at + n].to_vec()) {
                Ok(t) => tensors.push((name.clone(), t)),
                Err(e) => bad = Some(e),
            }
            at += n;
        }
        match bad {
            Some(e) => Err(TrainError::from(e)),
            None => optimizer
                .load_state(OptimizerState {
                    kind: layout.kind,
                    steps: layout.steps,
                    lr: layout.lr,
                    tensors,
                })
                .map_err(TrainError::from),
        }
    };
    agree(comm, None, loaded)?;
    Ok(layout.step)
}

/// Whether a tensor is a BatchNorm running statistic.
fn is_running_stat(role: Role) -> bool {
    matches!(role, Role::RunningMean | Role::RunningVar)
}

/// Replaces every BatchNorm running mean and running variance by its mean
/// over the ranks (summed in rank order, then divided by the number of
/// ranks), so that every rank evaluates and checkpoints the same model.
///
/// During training each rank normalises with the statistics of its own
/// shard (PyTorch DDP's default, without SyncBatchNorm) and updates its
/// running statistics from them; the running statistics therefore drift
/// apart between these calls. With one rank nothing changes.
///
/// # Errors
/// [`TrainError::Dist`].
pub fn average_batch_norm_stats(
    model: &mut dyn HasParams<f32>,
    comm: &dyn Communicator,
) -> Result<()> {
    if comm.size() == 1 {
        return Ok(());
    }
    let mut flat = flatten_all(model, is_running_stat);
    if flat.is_empty() {
        return Ok(());
    }
    comm.all_reduce_sum_f32(&mut flat)?;
    let n = comm.size() as f32;
    for x in &mut flat {
        *x /= n;
    }
    unflatten_all(model, is_running_stat, &flat);
    Ok(())
}
