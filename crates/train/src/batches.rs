//! [`BatchStream`]: endless training batches, epoch after epoch of seeded
//! shuffles, that can start at any step (for resuming).

use gradlab_data::{Batch, BatchConfig, Batches, Dataset};

use crate::error::{Result, TrainError};

/// Training batches without end: epoch `e` is the seeded shuffle
/// [`Batches::new`]`(data, config, e)` with the last partial batch dropped,
/// so the batch of any step depends only on the data, the seed and the step.
pub struct BatchStream<'a> {
    data: &'a dyn Dataset,
    config: BatchConfig,
    steps_per_epoch: u64,
    epoch: u64,
    index: u64,
    current: Option<Batches<'a, dyn Dataset + 'a>>,
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
            current: None,
        })
    }

    /// Moves to global step `step` (epoch `step / steps_per_epoch`), so the
    /// next batch is the one an uninterrupted run would train on there.
    ///
    /// # Errors
    /// Data errors while skipping.
    pub fn starting_at(mut self, step: u64) -> Result<Self> {
        self.epoch = step / self.steps_per_epoch;
        self.index = 0;
        self.current = None;
        for _ in 0..step % self.steps_per_epoch {
            self.next_batch()?;
        }
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

    /// The next batch.
    ///
    /// # Errors
    /// Data errors.
    pub fn next_batch(&mut self) -> Result<Batch> {
        loop {
            if self.current.is_none() {
                if self.index == self.steps_per_epoch {
                    self.epoch += 1;
                    self.index = 0;
                }
                self.current = Some(Batches::new(self.data, &self.config, self.epoch)?);
            }
            match self.current.as_mut().and_then(Iterator::next) {
                Some(batch) => {
                    self.index += 1;
                    return Ok(batch?);
                }
                None => {
                    self.current = None;
                    self.index = self.steps_per_epoch;
                }
            }
        }
    }
}
