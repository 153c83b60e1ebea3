//! The layers, one per file (an op's forward and backward live beside the
//! layer that applies it).

mod activation;
mod batch_norm;
mod conv2d;
mod dropout;
mod linear;
mod pool;
mod sequential;
mod shape;

pub use activation::{Activation, ActivationKind, GeluOp, LeakyReluOp};
pub use batch_norm::{
    BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig, BatchNormEvalOp, BatchNormTrainOp,
    BatchStats,
};
pub use conv2d::{Conv2d, Conv2dConfig, Conv2dOp};
pub use dropout::{Dropout, DropoutOp};
pub use linear::{Linear, LinearConfig, LinearOp};
pub use pool::{
    AvgPool2d, AvgPool2dOp, GlobalAvgPool2d, GlobalAvgPool2dOp, MaxPool2d, MaxPool2dOp,
};
pub use sequential::{relu_name, Sequential};
pub use shape::{Flatten, Identity};

use gradlab_autodiff::AutodiffError;
use gradlab_tensor::{Element, Tensor};
use ndarray::{ArrayView1, ArrayView2, ArrayView4, Ix1, Ix2, Ix4};

/// An op-level error with a message.
pub(crate) fn op_error(op: &'static str, reason: impl Into<String>) -> AutodiffError {
    AutodiffError::Op {
        op,
        reason: reason.into(),
    }
}

/// A 2-D view of a tensor, or an error naming the shape.
pub(crate) fn view2<'a, T: Element>(
    op: &'static str,
    what: &str,
    t: &'a Tensor<T>,
) -> Result<ArrayView2<'a, T>, AutodiffError> {
    t.view().into_dimensionality::<Ix2>().map_err(|_| {
        op_error(
            op,
            format!("{what} must have rank 2, got shape {:?}", t.shape()),
        )
    })
}

/// A 4-D view of a tensor, or an error naming the shape.
pub(crate) fn view4<'a, T: Element>(
    op: &'static str,
    what: &str,
    t: &'a Tensor<T>,
) -> Result<ArrayView4<'a, T>, AutodiffError> {
    t.view().into_dimensionality::<Ix4>().map_err(|_| {
        op_error(
            op,
            format!("{what} must have rank 4, got shape {:?}", t.shape()),
        )
    })
}

/// A 1-D view of a tensor, or an error naming the shape.
pub(crate) fn view1<'a, T: Element>(
    op: &'static str,
    what: &str,
    t: &'a Tensor<T>,
) -> Result<ArrayView1<'a, T>, AutodiffError> {
    t.view().into_dimensionality::<Ix1>().map_err(|_| {
        op_error(
            op,
            format!("{what} must have rank 1, got shape {:?}", t.shape()),
        )
    })
}

/// Wraps an `ndarray` result of any dimension as a tensor.
pub(crate) fn tensor_of<T: Element, D: ndarray::Dimension>(a: ndarray::Array<T, D>) -> Tensor<T> {
    Tensor::from_array(a.into_dyn())
}
