//! Per-channel standardisation: [`ChannelStats`] computed on a training set,
//! applied by [`Standardized`] to any split.

use gradlab_tensor::Tensor;

use crate::dataset::{check_shape, Dataset, Example};
use crate::error::{DataError, Result};

/// Mean and standard deviation of each channel over every pixel of every
/// image of a dataset.
///
/// Compute them on the training split only and apply them to every split, so
/// that no information from validation or test data leaks into training.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStats {
    /// Mean of each channel.
    pub mean: Vec<f64>,
    /// Population standard deviation of each channel.
    pub std: Vec<f64>,
}

impl ChannelStats {
    /// Computes the statistics of `dataset` in one pass (Welford's
    /// algorithm in `f64`, numerically stable).
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] for an empty dataset; whatever
    /// `dataset.get` returns; [`DataError::ShapeMismatch`] for an image that
    /// does not have the input shape.
    pub fn compute<D: Dataset + ?Sized>(dataset: &D) -> Result<Self> {
        if dataset.is_empty() {
            return Err(DataError::InvalidArgument {
                what: "ChannelStats::compute",
                reason: format!("{} has no examples", dataset.name()),
            });
        }
        check_shape("ChannelStats::compute", dataset)?;
        let shape = dataset.input_shape();
        let channels = shape[0];
        let plane = shape[1] * shape[2];
        let mut count = 0u64;
        let mut mean = vec![0.0f64; channels];
        let mut m2 = vec![0.0f64; channels];
        for index in 0..dataset.len() {
            let image = dataset.get(index)?.image;
            if image.shape() != shape {
                return Err(DataError::ShapeMismatch {
                    what: format!("ChannelStats::compute: {} example {index}", dataset.name()),
                    expected: shape.to_vec(),
                    found: image.shape().to_vec(),
                });
            }
            // Merge this image's per-channel moments into the running ones
            // (Chan et al.'s parallel update), one channel plane at a time.
            let n_b = plane as f64;
            let n_a = count as f64;
            for (c, values) in image.as_slice().chunks_exact(plane).enumerate() {
                let mean_b = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n_b;
                let m2_b: f64 = values
                    .iter()
                    .map(|&v| (f64::from(v) - mean_b) * (f64::from(v) - mean_b))
                    .sum();
                let delta = mean_b - mean[c];
                let n = n_a + n_b;
                mean[c] += delta * n_b / n;
                m2[c] += m2_b + delta * delta * n_a * n_b / n;
            }
            count += plane as u64;
        }
        let std = m2.iter().map(|&m| (m / count as f64).sqrt()).collect();
        Ok(ChannelStats { mean, std })
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }
}

/// A dataset whose images are standardised channel by channel:
/// `(x - mean[c]) / std[c]`. A channel with zero standard deviation (a
/// constant channel) is only centred, not scaled.
///
/// # Examples
/// ```
/// use gradlab_data::{train_val_split, ChannelStats, Dataset, Digits, Standardized};
/// let (train, val) = train_val_split(Digits::new(Default::default())?, 0.2, 1)?;
/// let stats = ChannelStats::compute(&train)?; // training split only
/// let train = Standardized::new(train, stats.clone())?;
/// let val = Standardized::new(val, stats)?;
/// assert_eq!(val.input_shape(), [1, 8, 8]);
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Standardized<D> {
    inner: D,
    stats: ChannelStats,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl<D: Dataset> Standardized<D> {
    /// Applies `stats` to `inner`.
    ///
    /// # Errors
    /// [`DataError::ShapeMismatch`] when `stats` has a different number of
    /// channels than `inner`'s images; [`DataError::InvalidArgument`] for a
    /// non-finite or negative statistic or an input shape with a zero
    /// dimension.
    pub fn new(inner: D, stats: ChannelStats) -> Result<Self> {
        check_shape("Standardized::new", &inner)?;
        let channels = inner.input_shape()[0];
        if stats.mean.len() != channels || stats.std.len() != channels {
            return Err(DataError::ShapeMismatch {
                what: format!("Standardized: channel statistics for {}", inner.name()),
                expected: vec![channels],
                found: vec![stats.mean.len(), stats.std.len()],
            });
        }
        let valid = stats.mean.iter().all(|m| m.is_finite())
            && stats.std.iter().all(|s| s.is_finite() && *s >= 0.0);
        if !valid {
            return Err(DataError::InvalidArgument {
                what: "Standardized::new",
                reason: format!(
                    "statistics must be finite with std >= 0, got mean {:?}, std {:?}",
                    stats.mean, stats.std
                ),
            });
        }
        let mean = stats.mean.iter().map(|&m| m as f32).collect();
        let inv_std = stats
            .std
            .iter()
            .map(|&s| if s > 0.0 { (1.0 / s) as f32 } else { 1.0 })
            .collect();
        Ok(Standardized {
            inner,
            stats,
            mean,
            inv_std,
        })
    }

    /// The statistics applied.
    pub fn stats(&self) -> &ChannelStats {
        &self.stats
    }

    /// The wrapped dataset.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: Dataset> Dataset for Standardized<D> {
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
        let Example { image, label } = self.inner.get(index)?;
        let shape = self.inner.input_shape();
        if image.shape() != shape {
            return Err(DataError::ShapeMismatch {
                what: format!("Standardized: {} example {index}", self.inner.name()),
                expected: shape.to_vec(),
                found: image.shape().to_vec(),
            });
        }
        let plane = shape[1] * shape[2];
        let data: Vec<f32> = image
            .as_slice()
            .chunks_exact(plane)
            .enumerate()
            .flat_map(|(c, values)| {
                let (m, k) = (self.mean[c], self.inv_std[c]);
                values.iter().map(move |&v| (v - m) * k)
            })
            .collect();
        Ok(Example {
            image: Tensor::from_vec(&shape, data)?,
            label,
        })
    }

    fn label(&self, index: usize) -> Result<usize> {
        self.inner.label(index)
    }

    fn name(&self) -> String {
        format!("standardized({})", self.inner.name())
    }
}
