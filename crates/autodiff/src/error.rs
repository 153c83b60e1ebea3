//! The one error type of this crate.

use gradlab_tensor::TensorError;
use thiserror::Error;

/// Everything building a graph or running backward can reject.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum AutodiffError {
    /// A tensor operation rejected its inputs.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A `Var` that does not belong to this graph (another graph's, or made up).
    #[error(
        "variable {index} does not belong to this graph (graph {graph}, which has {len} nodes)"
    )]
    UnknownVar {
        /// Index the variable claims.
        index: usize,
        /// Id of the graph that was asked.
        graph: u64,
        /// Number of nodes in that graph.
        len: usize,
    },
    /// A value that a consuming backward pass
    /// ([`Graph::backward_consuming`](crate::Graph::backward_consuming))
    /// has freed, or a second backward pass on a consumed graph.
    #[error("variable {index}: its value was freed by a consuming backward pass (graph {graph}); run backward_retain to keep values")]
    Consumed {
        /// Index of the variable.
        index: usize,
        /// Id of the graph.
        graph: u64,
    },
    /// An op was given the wrong number of inputs.
    #[error("{op}: expected {expected} inputs, got {got}")]
    Arity {
        /// The op's name.
        op: &'static str,
        /// Number of inputs it takes.
        expected: usize,
        /// Number it was given.
        got: usize,
    },
    /// `backward` was called on a loss with more than one element.
    #[error("backward: the loss must hold one element, got shape {shape:?}; use backward_from with an explicit output gradient")]
    NonScalarLoss {
        /// Shape of the would-be loss.
        shape: Vec<usize>,
    },
    /// An output gradient whose shape differs from the output's.
    #[error("{op}: gradient of shape {got:?} for input {input}, which has shape {expected:?}")]
    GradientShape {
        /// The op whose backward produced it (or `"backward_from"` for the seed).
        op: &'static str,
        /// Index of the input.
        input: usize,
        /// The input's shape.
        expected: Vec<usize>,
        /// The gradient's shape.
        got: Vec<usize>,
    },
    /// Integer class labels that do not fit the logits.
    #[error("{op}: {reason}")]
    InvalidLabels {
        /// The op's name.
        op: &'static str,
        /// What is wrong, with the values.
        reason: String,
    },
    /// An op-specific rejection (used by ops defined outside this crate too).
    #[error("{op}: {reason}")]
    Op {
        /// The op's name.
        op: &'static str,
        /// What is wrong, with the values.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = AutodiffError> = std::result::Result<T, E>;
