//! [`Noise`]: pure Gaussian inputs with random labels, the no-signal control.

use gradlab_tensor::Tensor;
use rand_distr::{Distribution, StandardNormal};

use crate::budget::{bytes_of, check_synthetic};
use crate::dataset::{check_index, image_numel, Dataset, Example};
use crate::error::{check_classes, check_positive, Result};
use crate::rng::{below, domain, stream_rng};

/// Configuration of a [`Noise`] dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoiseConfig {
    /// Number of examples.
    pub len: usize,
    /// Number of classes (at least 2).
    pub num_classes: usize,
    /// Image shape `[C, H, W]`.
    pub shape: [usize; 3],
    /// Seed of the pixels and labels.
    pub seed: u64,
}

impl Default for NoiseConfig {
    /// 10,000 examples, 10 classes, `[1, 16, 16]`, seed 0.
    fn default() -> Self {
        NoiseConfig {
            len: 10_000,
            num_classes: 10,
            shape: [1, 16, 16],
            seed: 0,
        }
    }
}

/// Pure-noise inputs with random labels: every pixel is an independent
/// standard normal, every label an independent uniform class, pixels and
/// labels from independent random streams. By construction there is nothing
/// to learn: the best possible held-out accuracy is chance, `1/K`, and the
/// best held-out cross-entropy is `ln K`. A model that fits the training set
/// has memorised it (Zhang et al. 2017's "Gaussian" inputs).
///
/// Example `i` is generated from `(seed, i)` when it is asked for; nothing is
/// stored, so `len` can be in the millions.
///
/// # Examples
/// ```
/// use gradlab_data::{Dataset, Noise, NoiseConfig};
/// let noise = Noise::new(NoiseConfig { len: 1_000_000, ..Default::default() })?;
/// assert_eq!(noise.get(999_999)?, noise.get(999_999)?);
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Noise {
    config: NoiseConfig,
    numel: usize,
}

impl Noise {
    /// Checks the configuration.
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`](crate::DataError::InvalidArgument) for
    /// fewer than 2 classes or a zero image dimension;
    /// [`DataError::TooMuchMemory`](crate::DataError::TooMuchMemory) when one
    /// image, the order of an epoch or one score per class would not fit in
    /// memory.
    pub fn new(config: NoiseConfig) -> Result<Self> {
        check_classes("Noise::new", config.num_classes)?;
        for (d, dim) in ["channels", "height", "width"].iter().zip(config.shape) {
            check_positive("Noise::new", d, dim)?;
        }
        let [c, h, w] = config.shape;
        // An image is built as f32 values directly.
        let example = bytes_of(&[c, h, w, 4]);
        check_synthetic(
            "Noise::new",
            config.len,
            config.num_classes,
            config.shape,
            example,
        )?;
        let numel = image_numel("Noise::new", config.shape)?;
        Ok(Noise { config, numel })
    }

    /// The configuration.
    pub fn config(&self) -> &NoiseConfig {
        &self.config
    }
}

impl Dataset for Noise {
    fn len(&self) -> usize {
        self.config.len
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn input_shape(&self) -> [usize; 3] {
        self.config.shape
    }

    fn get(&self, index: usize) -> Result<Example> {
        let label = self.label(index)?;
        let mut rng = stream_rng(self.config.seed, domain::NOISE_IMAGE, index as u64);
        let data = (0..self.numel)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                z as f32
            })
            .collect();
        Ok(Example {
            image: Tensor::from_vec(&self.config.shape, data)?,
            label,
        })
    }

    fn label(&self, index: usize) -> Result<usize> {
        check_index(self, index)?;
        let mut rng = stream_rng(self.config.seed, domain::NOISE_LABEL, index as u64);
        Ok(below(&mut rng, self.config.num_classes))
    }

    fn name(&self) -> String {
        let [c, h, w] = self.config.shape;
        format!(
            "noise(n={}, k={}, {c}x{h}x{w}, seed={})",
            self.config.len, self.config.num_classes, self.config.seed
        )
    }
}
