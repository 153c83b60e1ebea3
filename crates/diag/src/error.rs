//! The one error type of this crate.

use gradlab_nn::NnError;
use thiserror::Error;

/// Everything the diagnostics can reject.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DiagError {
    /// Too few points or mismatched lengths for a statistic.
    #[error("{indicator}: {reason}")]
    InsufficientData {
        /// The indicator being computed.
        indicator: &'static str,
        /// What is missing, with the counts.
        reason: String,
    },
    /// Vectors or matrices whose sizes disagree.
    #[error("{indicator}: lengths disagree ({left} vs {right})")]
    LengthMismatch {
        /// The indicator being computed.
        indicator: &'static str,
        /// First length.
        left: usize,
        /// Second length.
        right: usize,
    },
    /// A recorded step whose gradients are all exactly zero: almost always
    /// gradients read after they were zeroed, which must not be diagnosed.
    #[error("step {step}: every recorded gradient is exactly zero ({params} parameters); gradients were probably read after being zeroed")]
    AllZeroGradients {
        /// The step of the record.
        step: usize,
        /// How many parameter tensors were recorded.
        params: usize,
    },
    /// A layer or autodiff failure while recording.
    #[error(transparent)]
    Nn(#[from] NnError),
    /// A value that must be finite or in a range is not.
    #[error("{what}: invalid value {value}")]
    InvalidValue {
        /// What the value is.
        what: &'static str,
        /// The value.
        value: f64,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = DiagError> = std::result::Result<T, E>;
