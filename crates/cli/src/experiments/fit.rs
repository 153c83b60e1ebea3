//! A short SGD loop for the experiments that need the trained network
//! afterwards, recording accuracy, held-out figures and the first layer's
//! gradient at evenly spaced checks.

use gradlab_arch::{combined_loss, Classifier, HeadMode, OutputRequest};
use gradlab_data::{BatchConfig, Batches, Dataset};
use gradlab_diag::stats::rms;
use gradlab_nn::{Ctx, Optimizer, Role, Sgd, SgdConfig};
use serde::Serialize;

use crate::commands::train::evaluate;
use crate::error::{CliError, Result};

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
    if train.len() < cfg.batch {
        return Err(CliError::Usage(format!(
            "{} training examples cannot fill a batch of {}",
            train.len(),
            cfg.batch
        )));
    }
    let first = net
        .params()
        .into_iter()
        .find(|p| p.role() == Role::Weight)
        .map(|p| p.name().to_string())
        .unwrap_or_default();
    let mut opt = Sgd::new(SgdConfig {
        lr: cfg.lr,
        momentum: 0.9,
        ..SgdConfig::default()
    })?;
    let every = (cfg.steps / cfg.checks.max(1)).max(1);
    let request = OutputRequest {
        heads: HeadMode::Auto,
        features: Vec::new(),
    };
    let batches = BatchConfig {
        batch_size: cfg.batch,
        shuffle: true,
        drop_last: true,
        seed: cfg.seed,
    };
    let (mut points, mut grad_sum, mut grad_n) = (Vec::new(), 0.0, 0usize);
    let (mut step, mut epoch) = (0usize, 0u64);
    while step < cfg.steps {
        for batch in Batches::new(train, &batches, epoch)? {
            if step >= cfg.steps {
                break;
            }
            let batch = batch?;
            let mut cx = Ctx::new().with_seed(cfg.seed.wrapping_add(step as u64));
            let x = cx.input(batch.images);
            let out = net.forward_outputs(&mut cx, x, &request)?;
            let loss = combined_loss(&mut cx, &out, &batch.labels)?.total;
            let grads = cx.backward(loss)?;
            if let Some(g) = grads.get(&first) {
                grad_sum += rms(g.as_slice());
                grad_n += 1;
            }
            opt.step(&mut *net, &grads)?;
            step += 1;
            tick();
            if step % every == 0 || step == cfg.steps {
                let (train_loss, train_accuracy) = evaluate(&mut *net, train, 128)?;
                let (val_loss, val_accuracy) = evaluate(&mut *net, val, 128)?;
                points.push(FitPoint {
                    step,
                    train_loss,
                    train_accuracy,
                    val_loss,
                    val_accuracy,
                    first_layer_grad_rms: grad_sum / grad_n.max(1) as f64,
                });
                (grad_sum, grad_n) = (0.0, 0);
            }
        }
        epoch += 1;
    }
    Ok(points)
}
