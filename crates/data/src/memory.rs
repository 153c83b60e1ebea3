//! Datasets held in memory: [`ByteImages`] (8-bit pixels, what the file
//! readers return) and [`TensorDataset`] (`f32` images from a tensor).

use gradlab_tensor::Tensor;

use crate::dataset::{check_index, image_numel, Dataset, Example};
use crate::error::{check_positive, DataError, Result};

/// Images stored as bytes (one per pixel value, `[C, H, W]` order per image)
/// with their labels; [`get`](Dataset::get) returns pixel values divided by
/// 255, so images lie in `[0, 1]`.
///
/// This is what [`load_mnist`](crate::load_mnist) and
/// [`load_cifar10_dir`](crate::load_cifar10_dir) return: a quarter of the
/// memory of `f32` storage (CIFAR-10's 50,000 training images take 154 MB).
#[derive(Debug, Clone, PartialEq)]
pub struct ByteImages {
    name: String,
    shape: [usize; 3],
    numel: usize,
    num_classes: usize,
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl ByteImages {
    /// Wraps `pixels` (all images back to back, each `[C, H, W]` row-major)
    /// and one label per image.
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] for a zero dimension or zero classes,
    /// [`DataError::ShapeMismatch`] when `pixels.len()` is not
    /// `labels.len() * C * H * W`, [`DataError::LabelOutOfRange`] for a label
    /// `>= num_classes` (the path is then the dataset name).
    pub fn new(
        name: impl Into<String>,
        shape: [usize; 3],
        num_classes: usize,
        pixels: Vec<u8>,
        labels: Vec<u8>,
    ) -> Result<Self> {
        let name = name.into();
        for (d, dim) in ["channels", "height", "width"].iter().zip(shape) {
            check_positive("ByteImages::new", d, dim)?;
        }
        check_positive("ByteImages::new", "num_classes", num_classes)?;
        let numel = image_numel("ByteImages::new", shape)?;
        let expected = labels.len().checked_mul(numel);
        if expected != Some(pixels.len()) {
            return Err(DataError::ShapeMismatch {
                what: format!(
                    "{name}: {} labels need that many images of shape {shape:?}, but the pixel buffer holds {} values",
                    labels.len(),
                    pixels.len()
                ),
                expected: vec![labels.len(), shape[0], shape[1], shape[2]],
                found: vec![pixels.len()],
            });
        }
        if let Some((index, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= num_classes)
        {
            return Err(DataError::LabelOutOfRange {
                path: name.into(),
                index,
                label: label.into(),
                num_classes,
            });
        }
        Ok(ByteImages {
            name,
            shape,
            numel,
            num_classes,
            pixels,
            labels,
        })
    }

    /// The raw bytes of image `index` (`[C, H, W]` row-major), or `None` past
    /// the end.
    pub fn pixels(&self, index: usize) -> Option<&[u8]> {
        let start = index.checked_mul(self.numel)?;
        self.pixels.get(start..start.checked_add(self.numel)?)
    }

    /// All labels, in order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Joins datasets of the same shape and class count, in order (the five
    /// CIFAR-10 training batches into one training set).
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] for an empty list,
    /// [`DataError::ShapeMismatch`] when shapes or class counts differ.
    pub fn concat(name: impl Into<String>, parts: Vec<ByteImages>) -> Result<Self> {
        let mut parts = parts.into_iter();
        let mut out = parts.next().ok_or(DataError::InvalidArgument {
            what: "ByteImages::concat",
            reason: "no datasets to join".into(),
        })?;
        out.name = name.into();
        for part in parts {
            if part.shape != out.shape || part.num_classes != out.num_classes {
                return Err(DataError::ShapeMismatch {
                    what: format!(
                        "ByteImages::concat: {} ({} classes) cannot be joined to {} ({} classes); shapes",
                        part.name, part.num_classes, out.name, out.num_classes
                    ),
                    expected: out.shape.to_vec(),
                    found: part.shape.to_vec(),
                });
            }
            out.pixels.extend_from_slice(&part.pixels);
            out.labels.extend_from_slice(&part.labels);
        }
        Ok(out)
    }
}

impl Dataset for ByteImages {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }

    fn get(&self, index: usize) -> Result<Example> {
        check_index(self, index)?;
        let start = index * self.numel;
        let data = self.pixels[start..start + self.numel]
            .iter()
            .map(|&p| f32::from(p) / 255.0)
            .collect();
        Ok(Example {
            image: Tensor::from_vec(&self.shape, data)?,
            label: self.labels[index].into(),
        })
    }

    fn label(&self, index: usize) -> Result<usize> {
        check_index(self, index)?;
        Ok(self.labels[index].into())
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

/// `f32` images from an `[N, C, H, W]` tensor with one label each.
///
/// # Examples
/// ```
/// use gradlab_data::{Dataset, TensorDataset};
/// use gradlab_tensor::Tensor;
/// let images = Tensor::<f32>::zeros(&[4, 1, 2, 2]);
/// let data = TensorDataset::new("toy", images, vec![0, 1, 1, 0], 2)?;
/// assert_eq!(data.len(), 4);
/// assert_eq!(data.input_shape(), [1, 2, 2]);
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDataset {
    name: String,
    shape: [usize; 3],
    numel: usize,
    num_classes: usize,
    images: Tensor<f32>,
    labels: Vec<usize>,
}

impl TensorDataset {
    /// Wraps `images` (`[N, C, H, W]`) and `N` labels in `0..num_classes`.
    ///
    /// # Errors
    /// [`DataError::ShapeMismatch`] when `images` is not rank 4 or its first
    /// dimension differs from `labels.len()`; [`DataError::InvalidArgument`]
    /// for a zero dimension, zero classes or a label out of range.
    pub fn new(
        name: impl Into<String>,
        images: Tensor<f32>,
        labels: Vec<usize>,
        num_classes: usize,
    ) -> Result<Self> {
        let name = name.into();
        let dims = images.shape();
        if dims.len() != 4 || dims[0] != labels.len() {
            return Err(DataError::ShapeMismatch {
                what: format!("TensorDataset {name}: images for {} labels", labels.len()),
                expected: vec![labels.len(), 0, 0, 0],
                found: dims.to_vec(),
            });
        }
        let shape = [dims[1], dims[2], dims[3]];
        for (d, dim) in ["channels", "height", "width"].iter().zip(shape) {
            check_positive("TensorDataset::new", d, dim)?;
        }
        check_positive("TensorDataset::new", "num_classes", num_classes)?;
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= num_classes) {
            return Err(DataError::InvalidArgument {
                what: "TensorDataset::new",
                reason: format!(
                    "label {label} of example {index} is out of range for {num_classes} classes"
                ),
            });
        }
        let numel = image_numel("TensorDataset::new", shape)?;
        Ok(TensorDataset {
            name,
            shape,
            numel,
            num_classes,
            images,
            labels,
        })
    }

    /// Builds every example of `dataset` into memory.
    ///
    /// # Errors
    /// Whatever `dataset.get` returns, and [`DataError::ShapeMismatch`] if an
    /// image does not have the dataset's input shape.
    pub fn materialize<D: Dataset + ?Sized>(dataset: &D) -> Result<Self> {
        let len = dataset.len();
        let indices = crate::budget::try_range(len, || {
            format!("TensorDataset::materialize: the indices of {len} examples")
        })?;
        let batch = crate::Batch::from_indices(dataset, &indices)?;
        TensorDataset::new(
            dataset.name(),
            batch.images,
            batch.labels,
            dataset.num_classes(),
        )
    }

    /// The images, `[N, C, H, W]`.
    pub fn images(&self) -> &Tensor<f32> {
        &self.images
    }

    /// The labels, in order.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }
}

impl Dataset for TensorDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }

    fn get(&self, index: usize) -> Result<Example> {
        check_index(self, index)?;
        let start = index * self.numel;
        let data = self.images.as_slice()[start..start + self.numel].to_vec();
        Ok(Example {
            image: Tensor::from_vec(&self.shape, data)?,
            label: self.labels[index],
        })
    }

    fn label(&self, index: usize) -> Result<usize> {
        check_index(self, index)?;
        Ok(self.labels[index])
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}
