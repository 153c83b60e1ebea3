//! The [`Dataset`] trait and the [`Example`] it yields.

use std::sync::Arc;

use gradlab_tensor::Tensor;

use crate::error::{DataError, Result};

/// One labelled image.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The image, shape `[C, H, W]`.
    pub image: Tensor<f32>,
    /// The class, in `0..num_classes`.
    pub label: usize,
}

/// A finite, indexable set of labelled images of one shape.
///
/// Object-safe and `Send + Sync`, so wrappers ([`Subset`](crate::Subset),
/// [`ShuffledLabels`](crate::ShuffledLabels),
/// [`Standardized`](crate::Standardized), ...) take any dataset, including a
/// `Box<dyn Dataset>` or an `Arc<dyn Dataset>`, and batches can be drawn from
/// several threads.
///
/// Implementations are deterministic: `get(i)` returns the same example every
/// time it is called.
///
/// # Examples
/// ```
/// use gradlab_data::{Dataset, Noise, NoiseConfig};
/// let data: Box<dyn Dataset> = Box::new(Noise::new(NoiseConfig {
///     len: 100, num_classes: 10, shape: [1, 8, 8], seed: 0,
/// })?);
/// let ex = data.get(3)?;
/// assert_eq!(ex.image.shape(), &[1, 8, 8]);
/// assert!(ex.label < data.num_classes());
/// assert!(data.get(100).is_err());
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
pub trait Dataset: Send + Sync {
    /// Number of examples.
    fn len(&self) -> usize;

    /// Whether the dataset has no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of classes; every label is in `0..num_classes()`.
    fn num_classes(&self) -> usize;

    /// Shape `[C, H, W]` of every image.
    fn input_shape(&self) -> [usize; 3];

    /// The example at `index`.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] when `index >= len()`.
    fn get(&self, index: usize) -> Result<Example>;

    /// The label of the example at `index`, without building its image when
    /// the dataset can avoid it.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] when `index >= len()`.
    fn label(&self, index: usize) -> Result<usize> {
        Ok(self.get(index)?.label)
    }

    /// A short description, e.g. `digits(8x8)` or
    /// `shuffled-labels(seed=1, patterns(...))`, for logs and reports.
    fn name(&self) -> String;
}

/// Rejects an index past the end of `dataset`.
pub(crate) fn check_index<D: Dataset + ?Sized>(dataset: &D, index: usize) -> Result<()> {
    let len = dataset.len();
    if index < len {
        Ok(())
    } else {
        Err(DataError::IndexOutOfRange {
            dataset: dataset.name(),
            index,
            len,
        })
    }
}

macro_rules! forward_dataset {
    ($($ty:ty),*) => {$(
        impl<D: Dataset + ?Sized> Dataset for $ty {
            fn len(&self) -> usize {
                (**self).len()
            }
            fn is_empty(&self) -> bool {
                (**self).is_empty()
            }
            fn num_classes(&self) -> usize {
                (**self).num_classes()
            }
            fn input_shape(&self) -> [usize; 3] {
                (**self).input_shape()
            }
            fn get(&self, index: usize) -> Result<Example> {
                (**self).get(index)
            }
            fn label(&self, index: usize) -> Result<usize> {
                (**self).label(index)
            }
            fn name(&self) -> String {
                (**self).name()
            }
        }
    )*};
}

forward_dataset!(&D, Box<D>, Arc<D>);

/// Number of values in one image of `shape`, or an error if it overflows.
pub(crate) fn image_numel(what: &'static str, shape: [usize; 3]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::InvalidArgument {
            what,
            reason: format!("image shape {shape:?} has more elements than fit in memory"),
        })
}

/// Rejects an input shape with a zero dimension.
pub(crate) fn check_shape<D: Dataset + ?Sized>(what: &'static str, dataset: &D) -> Result<()> {
    let shape = dataset.input_shape();
    if shape.contains(&0) {
        return Err(DataError::InvalidArgument {
            what,
            reason: format!(
                "{} has input shape {shape:?}; every dimension must be at least 1",
                dataset.name()
            ),
        });
    }
    Ok(())
}
