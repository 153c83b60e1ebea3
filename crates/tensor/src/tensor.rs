//! The [`Tensor`] type: an owned, row-major n-dimensional array.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};
use rayon::prelude::*;

use crate::element::Element;
use crate::error::{Result, TensorError};

/// An owned n-dimensional array of [`Element`]s, row-major (NCHW for images).
///
/// A thin wrapper over [`ndarray::ArrayD`]: [`view`](Tensor::view) and
/// [`into_array`](Tensor::into_array) give the ndarray back at no cost, so
/// gradlab interoperates with anything built on ndarray. Operations that can be
/// fed incompatible shapes return [`Result`] with a [`TensorError`] naming them.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor<T: Element = f32> {
    data: ArrayD<T>,
}

impl<T: Element> Tensor<T> {
    /// Wraps an ndarray array. Non-standard layouts are made row-major so every
    /// kernel can rely on contiguous data.
    pub fn from_array(data: ArrayD<T>) -> Self {
        let data = if data.is_standard_layout() {
            data
        } else {
            data.as_standard_layout().into_owned()
        };
        Tensor { data }
    }

    /// Builds a tensor of `shape` from row-major `data`.
    ///
    /// # Errors
    /// [`TensorError::ElementCount`] when `data.len()` is not the product of `shape`.
    ///
    /// # Examples
    /// ```
    /// use gradlab_tensor::Tensor;
    /// let t = Tensor::<f32>::from_vec(&[2, 3], vec![1., 2., 3., 4., 5., 6.])?;
    /// assert_eq!(t.shape(), &[2, 3]);
    /// assert!(Tensor::<f32>::from_vec(&[2, 2], vec![1.0]).is_err());
    /// # Ok::<(), gradlab_tensor::TensorError>(())
    /// ```
    pub fn from_vec(shape: &[usize], data: Vec<T>) -> Result<Self> {
        let len = data.len();
        let expected = checked_numel(shape, "from_vec")?;
        if expected != len {
            return Err(TensorError::ElementCount {
                op: "from_vec",
                len,
                shape: shape.to_vec(),
            });
        }
        let data =
            ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|_| TensorError::ElementCount {
                op: "from_vec",
                len,
                shape: shape.to_vec(),
            })?;
        Ok(Tensor { data })
    }

    /// A scalar (rank-0) tensor.
    pub fn scalar(value: T) -> Self {
        Tensor {
            data: ArrayD::from_elem(IxDyn(&[]), value),
        }
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::zero())
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::one())
    }

    /// A tensor filled with `value`.
    pub fn full(shape: &[usize], value: T) -> Self {
        Tensor {
            data: ArrayD::from_elem(IxDyn(shape), value),
        }
    }

    /// The shape, outermost axis first.
    pub fn shape(&self) -> &[usize] {
        self.data.shape()
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.data.ndim()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A borrowed ndarray view.
    pub fn view(&self) -> ArrayViewD<'_, T> {
        self.data.view()
    }

    /// A mutable ndarray view.
    pub fn view_mut(&mut self) -> ArrayViewMutD<'_, T> {
        self.data.view_mut()
    }

    /// The underlying array.
    pub fn array(&self) -> &ArrayD<T> {
        &self.data
    }

    /// Unwraps into the underlying array.
    pub fn into_array(self) -> ArrayD<T> {
        self.data
    }

    /// The elements in row-major order.
    pub fn as_slice(&self) -> &[T] {
        self.data
            .as_slice()
            .expect("Tensor invariant: data is in standard layout")
    }

    /// The elements in row-major order, mutable.
    pub fn as_slice_mut(&mut self) -> &mut [T] {
        self.data
            .as_slice_mut()
            .expect("Tensor invariant: data is in standard layout")
    }

    /// Copies the elements into a vector, row-major.
    pub fn to_vec(&self) -> Vec<T> {
        self.as_slice().to_vec()
    }

    /// The value of a rank-0 or single-element tensor.
    ///
    /// # Errors
    /// [`TensorError::ElementCount`] when the tensor holds more or fewer than one element.
    pub fn item(&self) -> Result<T> {
        if self.len() != 1 {
            return Err(TensorError::ElementCount {
                op: "item",
                len: self.len(),
                shape: vec![1],
            });
        }
        Ok(self.as_slice()[0])
    }

    /// Converts every element to another [`Element`] type.
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        Tensor {
            data: self.data.mapv(|x| U::of_f64(x.as_f64())),
        }
    }

    /// Applies `f` to every element; tensors of at least
    /// [`PARALLEL_MIN_ELEMENTS`] elements are split over rayon's threads (the
    /// result is the same either way).
    pub fn map(&self, f: impl Fn(T) -> T + Sync + Send) -> Self {
        if self.len() >= PARALLEL_MIN_ELEMENTS {
            if let Some(src) = self.data.as_slice() {
                let mut out = Vec::with_capacity(src.len());
                out.par_extend(src.par_iter().map(|&x| f(x)));
                return Tensor::from_contiguous(self.shape(), out);
            }
        }
        Tensor {
            data: self.data.mapv(f),
        }
    }

    /// Whether every element is finite (no NaN, no infinity).
    pub fn all_finite(&self) -> bool {
        self.as_slice().iter().all(|x| x.is_finite())
    }
}

impl<T: Element> From<ArrayD<T>> for Tensor<T> {
    fn from(data: ArrayD<T>) -> Self {
        Tensor::from_array(data)
    }
}

impl<T: Element> Tensor<T> {
    /// A tensor of `shape` over `data`, row-major; `data.len()` is the
    /// product of `shape` (callers build it so).
    pub(crate) fn from_contiguous(shape: &[usize], data: Vec<T>) -> Self {
        let data = ArrayD::from_shape_vec(IxDyn(shape), data)
            .expect("a row-major buffer of the shape's element count");
        Tensor { data }
    }
}

/// Elements from which element-wise operations run on all rayon threads:
/// below it the split costs more than it saves (an activation of a CIFAR
/// ResNet at batch 128 has 2 million).
pub const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

/// Product of `shape`, or an error if it overflows `usize`.
pub(crate) fn checked_numel(shape: &[usize], op: &'static str) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| TensorError::InvalidArgument {
            op,
            reason: format!("shape {shape:?} has more elements than fit in memory"),
        })
}
