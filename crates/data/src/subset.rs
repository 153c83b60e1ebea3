//! Taking part of a dataset: [`Subset`] and [`train_val_split`].

use std::sync::Arc;

use crate::dataset::{check_index, Dataset, Example};
use crate::error::{check_unit_interval, DataError, Result};
use crate::rng::{domain, stream_rng, try_permutation};

/// The examples of a dataset at chosen indices, re-numbered `0..n`.
///
/// For overfitting studies use [`Subset::fraction`]: the same model on 1 %,
/// 10 % and 100 % of a dataset.
///
/// # Examples
/// ```
/// use gradlab_data::{Dataset, Digits, Subset};
/// let tenth = Subset::fraction(Digits::new(Default::default())?, 0.1, 3)?;
/// assert_eq!(tenth.len(), 180);
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Subset<D> {
    inner: D,
    indices: Vec<usize>,
}

impl<D: Dataset> Subset<D> {
    /// The examples of `inner` at `indices`, in that order.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] for an index past the end of `inner`.
    pub fn new(inner: D, indices: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= inner.len()) {
            check_index(&inner, bad)?;
        }
        Ok(Subset { inner, indices })
    }

    /// A seeded random `fraction` of `inner`: `round(fraction * len)`
    /// examples drawn without replacement, kept in index order.
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] unless `fraction` is in `(0, 1]` and
    /// keeps at least one example; [`DataError::TooMuchMemory`] or
    /// [`DataError::AllocationFailed`] when the permutation of `inner`'s
    /// examples cannot be held.
    pub fn fraction(inner: D, fraction: f64, seed: u64) -> Result<Self> {
        check_unit_interval("Subset::fraction", "fraction", fraction)?;
        let len = inner.len();
        let keep = (fraction * len as f64).round() as usize;
        if keep == 0 {
            return Err(DataError::InvalidArgument {
                what: "Subset::fraction",
                reason: format!(
                    "fraction {fraction} of {len} examples keeps none; {}",
                    inner.name()
                ),
            });
        }
        let mut indices = try_permutation(len, &mut stream_rng(seed, domain::SUBSET, 0), || {
            format!("Subset::fraction: a permutation of {len} examples")
        })?;
        indices.truncate(keep);
        indices.sort_unstable();
        Ok(Subset { inner, indices })
    }

    /// The indices into the wrapped dataset, in order.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The wrapped dataset.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    fn input_shape(&self) -> [usize; 3] {
        self.inner.input_shape()
    }

    fn get(&self, index: usize) -> Result<Example> {
        check_index(self, index)?;
        self.inner.get(self.indices[index])
    }

    fn label(&self, index: usize) -> Result<usize> {
        check_index(self, index)?;
        self.inner.label(self.indices[index])
    }

    fn name(&self) -> String {
        format!("subset({} of {})", self.indices.len(), self.inner.name())
    }
}

/// One part of a [`train_val_split`]: a subset of the dataset, which the two
/// parts share.
pub type SplitPart<D> = Subset<Arc<D>>;

/// Splits `dataset` into training and validation parts by a seeded random
/// permutation: `round(val_fraction * len)` examples go to validation, the
/// rest to training; the two are disjoint and together cover the dataset.
/// Both parts keep index order.
///
/// # Errors
/// [`DataError::InvalidArgument`] unless `val_fraction` is in `[0, 1]`;
/// [`DataError::TooMuchMemory`] or [`DataError::AllocationFailed`] when the
/// permutation of the dataset's examples cannot be held.
///
/// # Examples
/// ```
/// use gradlab_data::{train_val_split, Dataset, Digits};
/// let (train, val) = train_val_split(Digits::new(Default::default())?, 0.2, 42)?;
/// assert_eq!((train.len(), val.len()), (1438, 359));
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
pub fn train_val_split<D: Dataset>(
    dataset: D,
    val_fraction: f64,
    seed: u64,
) -> Result<(SplitPart<D>, SplitPart<D>)> {
    check_unit_interval("train_val_split", "val_fraction", val_fraction)?;
    let len = dataset.len();
    let n_val = (val_fraction * len as f64).round() as usize;
    let order = try_permutation(len, &mut stream_rng(seed, domain::SPLIT, 0), || {
        format!("train_val_split: a permutation of {len} examples")
    })?;
    let mut val = order[..n_val].to_vec();
    let mut train = order[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    let shared = Arc::new(dataset);
    Ok((
        Subset {
            inner: Arc::clone(&shared),
            indices: train,
        },
        Subset {
            inner: shared,
            indices: val,
        },
    ))
}
