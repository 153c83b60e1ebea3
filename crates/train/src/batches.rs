//! [`BatchStream`]: endless training batches, epoch after epoch of seeded
//! shuffles, that can start at any step (for resuming).

use gradlab_data::{Batch, BatchConfig, Batches, Dataset};

use crate::error::{Result, TrainError};

/// Training batches without end: epoch `e` is the seeded shuffle
/// [`Batches::new`]`(data, config, e)` with the last partial batch dropped,
/// so the batch of any step depends only on the data, the seed and the step.
///
/// In a data-parallel run every rank walks the same stream and takes its
/// slice of each global batch ([`BatchStream::next_shard`]): the examples of
/// a step over all ranks are exactly those of the single-process step.
pub struct BatchStream<'a> {
    data: &'a dyn Dataset,
    config: BatchConfig,
    steps_per_epoch: u64,
    epoch: u64,
    index: u64,
    /// The order of epoch `epoch`, once its first batch was asked for.
    order: Option<Vec<usize>>,
}

impl<'a> BatchStream<'a> {
    /// Batches of `batch_size` from `data`, shuffled by `seed`.
    ///
    /// # Errors
    /// [`TrainError::TooFewExamples`] when `data` cannot fill one batch
    /// (or `batch_size` is 0).
    pub fn new(data: &'a dyn Dataset, batch_size: usize, seed: u64) -> Result<Self> {
        if batch_size == 0 || data.len() < batch_size {
            return Err(TrainError::TooFewExamples {
                examples: data.len(),
                batch: batch_size,
            });
        }
        Ok(BatchStream {
            data,
            config: BatchConfig {
                batch_size,
                shuffle: true,
                drop_last: true,
                seed,
            },
            steps_per_epoch: (data.len() / batch_size) as u64,
            epoch: 0,
            index: 0,
            order: None,
        })
    }

    /// Moves to global step `step` (epoch `step / steps_per_epoch`), so the
    /// next batch is the one an uninterrupted run would train on there.
    ///
    /// # Errors
    /// None at present (the order of the epoch is drawn with its first
    /// batch); kept fallible for streams that must read to skip.
    pub fn starting_at(mut self, step: u64) -> Result<Self> {
        self.epoch = step / self.steps_per_epoch;
        self.index = step % self.steps_per_epoch;
        self.order = None;
        Ok(self)
    }

    /// Full batches per epoch.
    pub fn steps_per_epoch(&self) -> u64 {
        self.steps_per_epoch
    }

    /// The epoch (0-based) of the next batch.
    pub fn epoch(&self) -> u64 {
        if self.index == self.steps_per_epoch {
            self.epoch + 1
        } else {
            self.epoch
        }
    }

    /// The dataset indices of the next global batch, in order.
    fn next_indices(&mut self) -> Result<&[usize]> {
        if self.index == self.steps_per_epoch {
            self.epoch += 1;
            self.index = 0;
            self.order = None;
        }
        if self.order.is_none() {
            let batches = Batches::new(self.data, &self.config, self.epoch)?;
            self.order = Some(batches.order().to_vec());
        }
        let b = self.config.batch_size;
        let at = self.index as usize * b;
        self.index += 1;
        Ok(self.order.as_ref().map_or(&[][..], |o| &o[at..at + b]))
    }

    /// The next batch.
    ///
    /// # Errors
    /// Data errors.
    pub fn next_batch(&mut self) -> Result<Batch> {
        let data = self.data;
        let indices = self.next_indices()?;
        Ok(Batch::from_indices(data, indices)?)
    }

    /// Rank `rank`'s shard of the next global batch, of `size` ranks: the
    /// examples `rank * b .. (rank + 1) * b` of it, `b = batch / size`.
    /// Only those examples are read.
    ///
    /// # Errors
    /// [`TrainError::Spec`] unless `size` divides the batch size and
    /// `rank < size`; data errors.
    pub fn next_shard(&mut self, rank: usize, size: usize) -> Result<Batch> {
        let batch = self.config.batch_size;
        if size == 0 || rank >= size || !batch.is_multiple_of(size) {
            return Err(TrainError::Spec(format!(
                "the global batch of {batch} cannot be split evenly over {size} ranks (rank {rank}); use a batch that is a multiple of the number of ranks"
            )));
        }
        let b = batch / size;
        let data = self.data;
        let indices = self.next_indices()?;
        Ok(Batch::from_indices(
            data,
            &indices[rank * b..(rank + 1) * b],
        )?)
    }
}
