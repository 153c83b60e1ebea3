//! The one error type of this crate.

use gradlab_autodiff::AutodiffError;
use gradlab_nn::NnError;
use gradlab_tensor::TensorError;
use thiserror::Error;

/// Everything building or running an architecture can reject, with the
/// network, the names and the values involved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ArchError {
    /// A layer, op or optimizer of `gradlab-nn` rejected something.
    #[error(transparent)]
    Nn(#[from] NnError),
    /// The autodiff tape rejected an operation.
    #[error(transparent)]
    Autodiff(#[from] AutodiffError),
    /// A tensor operation rejected its inputs (so that code building inputs
    /// and running a network can use one error type).
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A depth the network family cannot be built with (a CIFAR ResNet
    /// needs `6n + 2` layers, its bottleneck version `9n + 2`, ...).
    #[error("{network}: depth {depth} is not valid: {reason}")]
    InvalidDepth {
        /// The network family (`"resnet"`, `"plain-mlp"`, ...).
        network: String,
        /// The depth asked for.
        depth: usize,
        /// Which depths are valid, with examples.
        reason: String,
    },
    /// A configuration field with a value the network cannot be built with.
    #[error("{network}: invalid {field} = {value}: {reason}")]
    InvalidConfig {
        /// The network (or head) being configured.
        network: String,
        /// The configuration field.
        field: &'static str,
        /// The rejected value, printed.
        value: String,
        /// What is allowed.
        reason: String,
    },
    /// A feature or head attachment point that the network does not have.
    #[error("{network}: no block or stage named {name:?}; the named points are: {}", available.join(", "))]
    UnknownPoint {
        /// The network.
        network: String,
        /// The name asked for.
        name: String,
        /// Every name that exists, input to output.
        available: Vec<String>,
    },
    /// An input whose rank or channel count the network cannot take.
    #[error("{network}: expected input {expected}, got shape {got:?}")]
    InputShape {
        /// The network.
        network: String,
        /// The shape it takes, in words (`"[N, 3, H, W]"`).
        expected: String,
        /// The shape it was given.
        got: Vec<usize>,
    },
    /// An image smaller than the stem and the stride-2 layers allow.
    #[error("{network}: input of shape {got:?} is smaller than the network allows: its stem and stride-2 layers downsample by {min}, so H and W must be at least {min}")]
    InputTooSmall {
        /// The network.
        network: String,
        /// The smallest height and width it takes (its total stride).
        min: usize,
        /// The shape it was given.
        got: Vec<usize>,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = ArchError> = std::result::Result<T, E>;

impl ArchError {
    pub(crate) fn config(
        network: impl Into<String>,
        field: &'static str,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        ArchError::InvalidConfig {
            network: network.into(),
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Converts an input-check error into the layer error a
    /// [`Module::forward`](gradlab_nn::Module::forward) returns, keeping its message.
    pub(crate) fn into_nn(self) -> NnError {
        match self {
            ArchError::Nn(e) => e,
            ArchError::Autodiff(e) => NnError::Autodiff(e),
            ArchError::Tensor(e) => NnError::Tensor(e),
            ArchError::InputShape {
                network,
                expected,
                got,
            } => NnError::InputShape {
                layer: network,
                expected,
                got,
            },
            ArchError::InputTooSmall { network, min, got } => NnError::InputShape {
                layer: network,
                expected: format!("[N, C, H, W] with H, W >= {min} (the network's total stride)"),
                got,
            },
            other => NnError::InvalidConfig {
                what: "gradlab-arch".into(),
                reason: other.to_string(),
            },
        }
    }
}
