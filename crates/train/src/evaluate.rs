//! [`evaluate`]: mean loss and accuracy of a model over a dataset, and
//! [`evaluate_sharded`], the same split over the ranks of a data-parallel
//! run.

use std::ops::Range;

use gradlab_data::{Batch, Dataset};
use gradlab_dist::Communicator;
use gradlab_nn::{accuracy, cross_entropy, CrossEntropyOptions, Ctx, Module};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::step::on_pool_thread_if_small;

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
    let result = loss_and_correct_sums(model, data, 0..n, batch.max(1));
    model.set_training(was_training);
    let (loss_sum, correct) = result?;
    Ok(Evaluation {
        loss: loss_sum / n as f64,
        accuracy: correct / n as f64,
        examples: n,
    })
}

/// [`evaluate`] split over the ranks of `comm`: rank `r` of `N` evaluates
/// the examples `r n / N .. (r + 1) n / N` of the first `n`, and the sums
/// of losses and of correct answers are all-reduced, so every rank returns
/// the figures of the whole set. They equal [`evaluate`]'s up to the order
/// of the additions; with one rank, bit for bit. The ranks' models must
/// agree (BatchNorm statistics averaged first, see
/// [`average_batch_norm_stats`](crate::average_batch_norm_stats)).
///
/// # Errors
/// Data and model errors of any rank, on every rank (see
/// [`agree`](crate::agree)); [`TrainError::Dist`](crate::TrainError::Dist).
pub fn evaluate_sharded<M: Module<f32> + ?Sized>(
    model: &mut M,
    data: &dyn Dataset,
    batch: usize,
    limit: Option<usize>,
    comm: &dyn Communicator,
) -> Result<Evaluation> {
    let size = comm.size();
    if size == 1 {
        return evaluate(model, data, batch, limit);
    }
    let n = limit.map_or(data.len(), |l| data.len().min(l));
    let rank = comm.rank();
    let range = rank * n / size..(rank + 1) * n / size;
    let was_training = model.is_training();
    model.set_training(false);
    let local = loss_and_correct_sums(model, data, range, batch.max(1));
    model.set_training(was_training);
    // Failure flags, one per rank, then the two sums.
    let mut sums = vec![0.0f64; size + 2];
    match &local {
        Ok((loss, correct)) => (sums[size], sums[size + 1]) = (*loss, *correct),
        Err(_) => sums[rank] = 1.0,
    }
    comm.all_reduce_sum_f64(&mut sums)?;
    crate::parallel::first_failure(comm, &sums[..size], None, local)?;
    let (loss, accuracy) = if n == 0 {
        (f64::NAN, f64::NAN)
    } else {
        (sums[size] / n as f64, sums[size + 1] / n as f64)
    };
    Ok(Evaluation {
        loss,
        accuracy,
        examples: n,
    })
}

/// The sum of the losses and the number of correct answers over the
/// examples `range`, `batch` at a time.
fn loss_and_correct_sums<M: Module<f32> + ?Sized>(
    model: &mut M,
    data: &dyn Dataset,
    range: Range<usize>,
    batch: usize,
) -> Result<(f64, f64)> {
    let indices: Vec<usize> = range.collect();
    let (mut loss_sum, mut correct) = (0.0, 0.0);
    for chunk in indices.chunks(batch) {
        let b = Batch::from_indices(data, chunk)?;
        let (accuracy, loss) =
            on_pool_thread_if_small(b.images.len(), || -> Result<(f64, f32)> {
                let mut cx = Ctx::no_grad();
                let x = cx.input(b.images);
                let logits = model.forward(&mut cx, x)?;
                let accuracy = accuracy(cx.value(logits)?, &b.labels)?;
                let loss =
                    cross_entropy(&mut cx, logits, &b.labels, &CrossEntropyOptions::default())?;
                Ok((
                    accuracy,
                    cx.value(loss)?.item().map_err(gradlab_nn::NnError::from)?,
                ))
            })?;
        correct += accuracy * chunk.len() as f64;
        loss_sum += f64::from(loss) * chunk.len() as f64;
    }
    Ok((loss_sum, correct))
}
