//! The one error type of this crate.

use thiserror::Error;

/// Everything a tensor operation can reject, with the shapes and values involved.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum TensorError {
    /// Two shapes cannot be broadcast together (NumPy rules).
    #[error("{op}: shapes {lhs:?} and {rhs:?} cannot be broadcast together")]
    BroadcastMismatch {
        /// The operation that was attempted.
        op: &'static str,
        /// Shape of the left operand.
        lhs: Vec<usize>,
        /// Shape of the right operand.
        rhs: Vec<usize>,
    },
    /// The number of elements does not fit the requested shape.
    #[error("{op}: {len} elements cannot be viewed as shape {shape:?}")]
    ElementCount {
        /// The operation that was attempted.
        op: &'static str,
        /// Number of elements available.
        len: usize,
        /// The shape that was asked for.
        shape: Vec<usize>,
    },
    /// An axis is out of range for the tensor's rank.
    #[error("{op}: axis {axis} is out of range for a tensor of shape {shape:?}")]
    AxisOutOfRange {
        /// The operation that was attempted.
        op: &'static str,
        /// The offending axis.
        axis: usize,
        /// Shape of the tensor.
        shape: Vec<usize>,
    },
    /// A permutation is not a permutation of `0..rank`.
    #[error("permute: {axes:?} is not a permutation of the axes of a tensor of shape {shape:?}")]
    InvalidPermutation {
        /// The axes that were given.
        axes: Vec<usize>,
        /// Shape of the tensor.
        shape: Vec<usize>,
    },
    /// Matrix product operands whose inner dimensions (or batch dimensions) disagree.
    #[error("{op}: cannot multiply shapes {lhs:?} and {rhs:?}")]
    MatmulMismatch {
        /// The operation that was attempted.
        op: &'static str,
        /// Shape of the left operand.
        lhs: Vec<usize>,
        /// Shape of the right operand.
        rhs: Vec<usize>,
    },
    /// A tensor has the wrong number of dimensions for the operation.
    #[error("{op}: expected a tensor of rank {expected}, got shape {shape:?}")]
    RankMismatch {
        /// The operation that was attempted.
        op: &'static str,
        /// The rank the operation needs.
        expected: usize,
        /// The shape that was given.
        shape: Vec<usize>,
    },
    /// Tensors to concatenate disagree outside the concatenation axis.
    #[error("concat: shapes {first:?} and {other:?} differ outside axis {axis}")]
    ConcatMismatch {
        /// The concatenation axis.
        axis: usize,
        /// Shape of the first tensor.
        first: Vec<usize>,
        /// Shape of the first tensor that disagrees.
        other: Vec<usize>,
    },
    /// A slice range does not lie inside the axis.
    #[error(
        "slice: range {start}..{end} is outside axis {axis} of length {len} (shape {shape:?})"
    )]
    SliceOutOfRange {
        /// The sliced axis.
        axis: usize,
        /// Start of the range.
        start: usize,
        /// End of the range (exclusive).
        end: usize,
        /// Length of the axis.
        len: usize,
        /// Shape of the tensor.
        shape: Vec<usize>,
    },
    /// A reduction over an empty set of elements (max or argmax of nothing, mean of nothing).
    #[error("{op}: cannot reduce axis {axis} of length 0 (shape {shape:?})")]
    EmptyReduction {
        /// The operation that was attempted.
        op: &'static str,
        /// The reduced axis.
        axis: usize,
        /// Shape of the tensor.
        shape: Vec<usize>,
    },
    /// A target shape that a gradient cannot be summed down to.
    #[error("sum_to_shape: shape {from:?} cannot be reduced to {to:?}")]
    NotReducible {
        /// Shape of the tensor being reduced.
        from: Vec<usize>,
        /// The requested shape.
        to: Vec<usize>,
    },
    /// An argument outside its valid range (a negative standard deviation, an empty list...).
    #[error("{op}: invalid argument: {reason}")]
    InvalidArgument {
        /// The operation that was attempted.
        op: &'static str,
        /// What is wrong, with the values.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;

/// Rejects a non-finite argument.
pub(crate) fn checked_finite(op: &'static str, what: &str, x: f64) -> Result<f64> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(TensorError::InvalidArgument {
            op,
            reason: format!("{what} must be finite, got {x}"),
        })
    }
}
