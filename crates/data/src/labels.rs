//! Label controls that destroy the relation between inputs and labels while
//! keeping the inputs: [`ShuffledLabels`] and [`CorruptedLabels`] (Zhang et
//! al. 2017, "Understanding deep learning requires rethinking
//! generalization", arXiv:1611.03530).

use crate::dataset::{check_index, Dataset, Example};
use crate::error::{check_unit_interval, DataError, Result};
use crate::rng::{below, domain, permutation, stream_rng, unit};

/// A dataset whose labels are permuted across examples by a fixed seeded
/// permutation: example `i` keeps its image and gets the label of example
/// `π(i)`.
///
/// The class counts are unchanged (so chance level is the same as on the
/// real labels), but which image carries which label is random: no model can
/// do better than chance on held-out data, and training accuracy above chance
/// is memorisation. This is the label-shuffle control of the diagnostics.
/// The permutation is fixed at construction, so every epoch sees the same
/// (wrong) labels, as in Zhang et al. 2017.
///
/// # Examples
/// ```
/// use gradlab_data::{Dataset, Digits, ShuffledLabels};
/// let digits = Digits::new(Default::default())?;
/// let shuffled = ShuffledLabels::new(&digits, 1);
/// assert_eq!(shuffled.get(5)?.image, digits.get(5)?.image);
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ShuffledLabels<D> {
    inner: D,
    seed: u64,
    source: Vec<usize>,
}

impl<D: Dataset> ShuffledLabels<D> {
    /// Permutes the labels of `inner` with `seed`. Holds one index per
    /// example; labels are looked up lazily through [`Dataset::label`].
    pub fn new(inner: D, seed: u64) -> Self {
        let source = permutation(
            inner.len(),
            &mut stream_rng(seed, domain::SHUFFLE_LABELS, 0),
        );
        ShuffledLabels {
            inner,
            seed,
            source,
        }
    }

    /// The wrapped dataset.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: Dataset> Dataset for ShuffledLabels<D> {
    fn len(&self) -> usize {
        self.inner.len()
    }

    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    fn input_shape(&self) -> [usize; 3] {
        self.inner.input_shape()
    }

    fn get(&self, index: usize) -> Result<Example> {
        check_index(self, index)?;
        let image = self.inner.get(index)?.image;
        let label = self.inner.label(self.source[index])?;
        Ok(Example { image, label })
    }

    fn label(&self, index: usize) -> Result<usize> {
        check_index(self, index)?;
        self.inner.label(self.source[index])
    }

    fn name(&self) -> String {
        format!("shuffled-labels(seed={}, {})", self.seed, self.inner.name())
    }
}

/// A dataset whose labels are, independently for each example with
/// probability `probability`, replaced by a class drawn uniformly from all
/// classes (possibly the true one): Zhang et al.'s "partially corrupted
/// labels". At probability 1 every label is random and independent of the
/// image.
///
/// Computed per example from `(seed, index)`, so it holds no memory.
///
/// # Examples
/// ```
/// use gradlab_data::{CorruptedLabels, Dataset, Digits};
/// let noisy = CorruptedLabels::new(Digits::new(Default::default())?, 0.2, 9)?;
/// assert_eq!(noisy.len(), 1797);
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CorruptedLabels<D> {
    inner: D,
    probability: f64,
    seed: u64,
}

impl<D: Dataset> CorruptedLabels<D> {
    /// Corrupts each label of `inner` with `probability`.
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] unless `probability` is in `[0, 1]`.
    pub fn new(inner: D, probability: f64, seed: u64) -> Result<Self> {
        check_unit_interval("CorruptedLabels::new", "probability", probability)?;
        if inner.num_classes() == 0 {
            return Err(DataError::InvalidArgument {
                what: "CorruptedLabels::new",
                reason: format!("{} has no classes", inner.name()),
            });
        }
        Ok(CorruptedLabels {
            inner,
            probability,
            seed,
        })
    }

    /// Whether example `index` got a random label, and if so which.
    fn replacement(&self, index: usize) -> Option<usize> {
        let mut rng = stream_rng(self.seed, domain::CORRUPT_LABELS, index as u64);
        let corrupt = unit(&mut rng) < self.probability;
        let label = below(&mut rng, self.inner.num_classes());
        corrupt.then_some(label)
    }

    /// The wrapped dataset.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: Dataset> Dataset for CorruptedLabels<D> {
    fn len(&self) -> usize {
        self.inner.len()
    }

    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    fn input_shape(&self) -> [usize; 3] {
        self.inner.input_shape()
    }

    fn get(&self, index: usize) -> Result<Example> {
        let mut example = self.inner.get(index)?;
        if let Some(label) = self.replacement(index) {
            example.label = label;
        }
        Ok(example)
    }

    fn label(&self, index: usize) -> Result<usize> {
        let label = self.inner.label(index)?;
        Ok(self.replacement(index).unwrap_or(label))
    }

    fn name(&self) -> String {
        format!(
            "corrupted-labels(p={}, seed={}, {})",
            self.probability,
            self.seed,
            self.inner.name()
        )
    }
}
