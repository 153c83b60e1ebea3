//! Mini-batches: [`Batch`], [`BatchConfig`] and the per-epoch iterator
//! [`Batches`].

use gradlab_tensor::Tensor;

use crate::budget::{bytes_of, check_fits, try_range, try_vec};
use crate::dataset::{image_numel, Dataset};
use crate::error::{check_positive, DataError, Result};
use crate::rng::{domain, permutation, stream_rng, try_permutation};

/// A mini-batch of examples stacked along a new first axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Images, shape `[N, C, H, W]`.
    pub images: Tensor<f32>,
    /// One label per image.
    pub labels: Vec<usize>,
    /// The dataset index each image came from.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of examples in the batch.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch has no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Stacks the examples at `indices` (in that order, repeats allowed).
    ///
    /// # Shapes
    /// Each example `[C, H, W]`; the batch `[indices.len(), C, H, W]`.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] for a bad index,
    /// [`DataError::ShapeMismatch`] when an example's image does not have the
    /// dataset's input shape.
    pub fn from_indices<D: Dataset + ?Sized>(dataset: &D, indices: &[usize]) -> Result<Batch> {
        let shape = dataset.input_shape();
        let what = || {
            format!(
                "Batch::from_indices: {} images of shape {shape:?}",
                indices.len()
            )
        };
        let [c, h, w] = shape;
        // Checked before image_numel, whose overflow error says less.
        check_fits(bytes_of(&[indices.len(), c, h, w, 4]), what)?;
        let numel = image_numel("Batch::from_indices", shape)?;
        let mut data = try_vec(numel * indices.len(), what)?;
        let mut labels = Vec::with_capacity(indices.len());
        for &index in indices {
            let example = dataset.get(index)?;
            if example.image.shape() != shape {
                return Err(DataError::ShapeMismatch {
                    what: format!(
                        "{}: image of example {index} against the input shape",
                        dataset.name()
                    ),
                    expected: shape.to_vec(),
                    found: example.image.shape().to_vec(),
                });
            }
            data.extend_from_slice(example.image.as_slice());
            labels.push(example.label);
        }
        let images = Tensor::from_vec(&[indices.len(), shape[0], shape[1], shape[2]], data)?;
        Ok(Batch {
            images,
            labels,
            indices: indices.to_vec(),
        })
    }
}

/// How to cut a dataset into mini-batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Examples per batch (at least 1).
    pub batch_size: usize,
    /// Visit the examples in a fresh seeded order each epoch (`true`), or in
    /// index order (`false`).
    pub shuffle: bool,
    /// Drop the last batch when it would be smaller than `batch_size`.
    pub drop_last: bool,
    /// Seed of the per-epoch orders.
    pub seed: u64,
}

impl Default for BatchConfig {
    /// Batches of 32, shuffled, last partial batch kept, seed 0.
    fn default() -> Self {
        BatchConfig {
            batch_size: 32,
            shuffle: true,
            drop_last: false,
            seed: 0,
        }
    }
}

/// The order in which an epoch visits `0..len`: a permutation that depends
/// only on `(seed, epoch)`, so every epoch differs and any epoch can be
/// replayed on its own.
pub fn epoch_order(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    permutation(len, &mut stream_rng(seed, domain::EPOCH, epoch))
}

/// One epoch of mini-batches over a dataset; yields `Result<Batch>`.
///
/// Every example appears exactly once per epoch (except those in a dropped
/// last batch). Examples are built when their batch is requested, so lazily
/// generated datasets stay lazy.
///
/// # Examples
/// ```
/// use gradlab_data::{BatchConfig, Batches, Dataset, Noise, NoiseConfig};
/// let data = Noise::new(NoiseConfig { len: 10, num_classes: 2, shape: [1, 4, 4], seed: 1 })?;
/// let config = BatchConfig { batch_size: 4, shuffle: true, drop_last: false, seed: 7 };
/// let sizes: Vec<usize> = Batches::new(&data, &config, 0)?
///     .map(|b| b.map(|b| b.len()))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(sizes, vec![4, 4, 2]);
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
#[derive(Debug)]
pub struct Batches<'a, D: Dataset + ?Sized> {
    dataset: &'a D,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
    end: usize,
}

impl<'a, D: Dataset + ?Sized> Batches<'a, D> {
    /// The batches of epoch `epoch` (any number; epochs need not be visited in
    /// order).
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] when `batch_size` is 0;
    /// [`DataError::TooMuchMemory`] or [`DataError::AllocationFailed`] when
    /// the epoch's order (one index per example) cannot be held.
    pub fn new(dataset: &'a D, config: &BatchConfig, epoch: u64) -> Result<Self> {
        check_positive("Batches::new", "batch_size", config.batch_size)?;
        let len = dataset.len();
        let what = || format!("Batches::new: the order of an epoch over {len} examples");
        let order = if config.shuffle {
            // The stream of epoch_order, fallibly.
            let mut rng = stream_rng(config.seed, domain::EPOCH, epoch);
            try_permutation(len, &mut rng, what)?
        } else {
            try_range(len, what)?
        };
        let end = if config.drop_last {
            len - len % config.batch_size
        } else {
            len
        };
        Ok(Batches {
            dataset,
            order,
            batch_size: config.batch_size,
            next: 0,
            end,
        })
    }

    /// The indices this epoch visits, in order (dropped ones excluded).
    pub fn order(&self) -> &[usize] {
        &self.order[..self.end]
    }
}

impl<D: Dataset + ?Sized> Iterator for Batches<'_, D> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let stop = (self.next + self.batch_size).min(self.end);
        let batch = Batch::from_indices(self.dataset, &self.order[self.next..stop]);
        self.next = stop;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.end - self.next).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl<D: Dataset + ?Sized> ExactSizeIterator for Batches<'_, D> {}
