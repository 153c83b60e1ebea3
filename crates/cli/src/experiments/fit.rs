//! A short SGD loop for the experiments that need the trained network
//! afterwards, recording accuracy, held-out figures and the first layer's
//! gradient at evenly spaced checks.

use gradlab_arch::Classifier;
use gradlab_data::Dataset;
use gradlab_diag::stats::rms;
use gradlab_nn::Role;
use gradlab_train::{evaluate, BatchStream, OptimizerSpec, Trainer};
use serde::Serialize;

use crate::error::Result;

/// How to train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitConfig {
    /// SGD steps (momentum 0.9).
    pub steps: usize,
    /// Examples per step.
    pub batch: usize,
    /// Learning rate.
    pub lr: f64,
    /// Seed of batch order and dropout.
    pub seed: u64,
    /// Number of evenly spaced checks.
    pub checks: usize,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitPoint {
    /// Steps done.
    pub step: usize,
    /// Training loss and accuracy over the whole training split (evaluation mode).
    pub train_loss: f64,
    /// See `train_loss`.
    pub train_accuracy: f64,
    /// Held-out loss.
    pub val_loss: f64,
    /// Held-out accuracy.
    pub val_accuracy: f64,
    /// RMS of the first layer's weight gradient, averaged since the previous check.
    pub first_layer_grad_rms: f64,
}

/// Trains `net` on `train` and checks it on `val`; calls `tick` after every step.
///
/// # Errors
/// Training and data errors; a split too small for one batch.
pub fn fit(
    net: &mut dyn Classifier<f32>,
    train: &dyn Dataset,
    val: &dyn Dataset,
    cfg: &FitConfig,
    tick: &mut dyn FnMut(),
) -> Result<Vec<FitPoint>> {
    let first = net
        .params()
        .into_iter()
        .find(|p| p.role() == Role::Weight)
        .map(|p| p.name().to_string())
        .unwrap_or_default();
    let mut trainer = Trainer::new(&OptimizerSpec::sgd(cfg.lr), cfg.seed)?;
    let mut batches = BatchStream::new(train, cfg.batch, cfg.seed)?;
    let every = (cfg.steps / cfg.checks.max(1)).max(1);
    let (mut points, mut grad_sum, mut grad_n) = (Vec::new(), 0.0, 0usize);
    for step in 1..=cfg.steps {
        trainer
            .step_observed(net, batches.next_batch()?, &mut |_, pass| {
                if let Some(g) = pass.grads.get(&first) {
                    grad_sum += rms(g.as_slice());
                    grad_n += 1;
                }
                Ok(())
            })?
            .finite()?;
        tick();
        if step % every == 0 || step == cfg.steps {
            let on_train = evaluate(net, train, 128, None)?;
            let on_val = evaluate(net, val, 128, None)?;
            points.push(FitPoint {
                step,
                train_loss: on_train.loss,
                train_accuracy: on_train.accuracy,
                val_loss: on_val.loss,
                val_accuracy: on_val.accuracy,
                first_layer_grad_rms: grad_sum / grad_n.max(1) as f64,
            });
            (grad_sum, grad_n) = (0.0, 0);
        }
    }
    Ok(points)
}
