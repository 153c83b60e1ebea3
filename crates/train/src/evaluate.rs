//! [`evaluate`]: mean loss and accuracy of a model over a dataset.

use gradlab_data::{Batch, Dataset};
use gradlab_nn::{accuracy, cross_entropy, CrossEntropyOptions, Ctx, Module};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// What [`evaluate`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean cross-entropy (NaN over no example).
    pub loss: f64,
    /// Fraction classified correctly (NaN over no example).
    pub accuracy: f64,
    /// Examples evaluated.
    pub examples: usize,
}

/// Mean loss and accuracy over the first `limit` examples of `data` (all
/// of them for `None`), in evaluation mode, `batch` at a time.
///
/// The model's previous mode (training or evaluation) is restored
/// afterwards, also when evaluation fails.
///
/// # Errors
/// Data and model errors.
pub fn evaluate<M: Module<f32> + ?Sized>(
    model: &mut M,
    data: &dyn Dataset,
    batch: usize,
    limit: Option<usize>,
) -> Result<Evaluation> {
    let n = limit.map_or(data.len(), |l| data.len().min(l));
    if n == 0 {
        return Ok(Evaluation {
            loss: f64::NAN,
            accuracy: f64::NAN,
            examples: 0,
        });
    }
    let was_training = model.is_training();
    model.set_training(false);
    let result = mean_loss_and_accuracy(model, data, n, batch.max(1));
    model.set_training(was_training);
    let (loss, accuracy) = result?;
    Ok(Evaluation {
        loss,
        accuracy,
        examples: n,
    })
}

fn mean_loss_and_accuracy<M: Module<f32> + ?Sized>(
    model: &mut M,
    data: &dyn Dataset,
    n: usize,
    batch: usize,
) -> Result<(f64, f64)> {
    let indices: Vec<usize> = (0..n).collect();
    let (mut loss_sum, mut correct) = (0.0, 0.0);
    for chunk in indices.chunks(batch) {
        let b = Batch::from_indices(data, chunk)?;
        let mut cx = Ctx::no_grad();
        let x = cx.input(b.images);
        let logits = model.forward(&mut cx, x)?;
        correct += accuracy(cx.value(logits)?, &b.labels)? * chunk.len() as f64;
        let loss = cross_entropy(&mut cx, logits, &b.labels, &CrossEntropyOptions::default())?;
        let loss = cx.value(loss)?.item().map_err(gradlab_nn::NnError::from)?;
        loss_sum += f64::from(loss) * chunk.len() as f64;
    }
    Ok((loss_sum / n as f64, correct / n as f64))
}
