//! Seeded random constructors. The generator is ChaCha8 seeded from a `u64`,
//! and samples are drawn in `f64` then rounded, so the same seed gives the same
//! tensor on every machine and for both element types.

use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::element::Element;
use crate::error::{checked_finite, Result, TensorError};
use crate::tensor::{checked_numel, Tensor};

/// The random generator gradlab uses everywhere a seed is given.
pub fn seeded_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

impl<T: Element> Tensor<T> {
    /// Uniform samples in `[low, high)`.
    ///
    /// # Errors
    /// [`TensorError::InvalidArgument`] unless `low <= high`, both finite.
    ///
    /// # Examples
    /// ```
    /// use gradlab_tensor::Tensor;
    /// let a = Tensor::<f32>::rand_uniform(&[3, 4], -1.0, 1.0, 7)?;
    /// assert_eq!(a, Tensor::<f32>::rand_uniform(&[3, 4], -1.0, 1.0, 7)?);
    /// # Ok::<(), gradlab_tensor::TensorError>(())
    /// ```
    pub fn rand_uniform(shape: &[usize], low: f64, high: f64, seed: u64) -> Result<Self> {
        checked_finite("rand_uniform", "low", low)?;
        checked_finite("rand_uniform", "high", high)?;
        if low > high {
            return Err(TensorError::InvalidArgument {
                op: "rand_uniform",
                reason: format!("low {low} is greater than high {high}"),
            });
        }
        let n = checked_numel(shape, "rand_uniform")?;
        let mut rng = seeded_rng(seed);
        let dist = rand_distr::Uniform::new(0.0f64, 1.0).expect("0 < 1");
        let data = (0..n)
            .map(|_| T::of_f64(low + (high - low) * dist.sample(&mut rng)))
            .collect();
        Tensor::from_vec(shape, data)
    }

    /// Normal samples with the given mean and standard deviation.
    ///
    /// # Errors
    /// [`TensorError::InvalidArgument`] unless `std >= 0` and both are finite.
    pub fn rand_normal(shape: &[usize], mean: f64, std: f64, seed: u64) -> Result<Self> {
        checked_finite("rand_normal", "mean", mean)?;
        checked_finite("rand_normal", "std", std)?;
        if std < 0.0 {
            return Err(TensorError::InvalidArgument {
                op: "rand_normal",
                reason: format!("standard deviation {std} is negative"),
            });
        }
        let n = checked_numel(shape, "rand_normal")?;
        let mut rng = seeded_rng(seed);
        let data = (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                T::of_f64(mean + std * z)
            })
            .collect();
        Tensor::from_vec(shape, data)
    }
}
