//! [`TrainError`]: why training could not start or go on.

use gradlab_arch::ArchError;
use gradlab_autodiff::AutodiffError;
use gradlab_data::DataError;
use gradlab_diag::DiagError;
use gradlab_dist::DistError;
use gradlab_nn::NnError;
use gradlab_tensor::TensorError;
use thiserror::Error;

/// Why a training run, a step or a spec failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A malformed spec or an option out of range: the caller's input, not
    /// the run, is wrong (a command line exits with code 2 on it).
    #[error("{0}")]
    Spec(String),
    /// The training split cannot fill one batch.
    #[error("{examples} training examples cannot fill one batch of {batch}")]
    TooFewExamples {
        /// Examples in the split.
        examples: usize,
        /// The batch size asked for.
        batch: usize,
    },
    /// The loss or a gradient of a step is NaN or infinite; the update was
    /// not applied.
    #[error("training diverged at step {step}: {}; that update was not applied and training stopped (the last checkpoint is kept)", finding(cause))]
    NonFinite {
        /// The step (0-based) whose loss or gradient is not finite.
        step: u64,
        /// The guard's finding, naming the loss value or the parameter.
        cause: Box<NnError>,
    },
    /// The held-out loss after an epoch is NaN or infinite although every
    /// training step's loss and gradients were finite: the model in
    /// evaluation mode (BatchNorm on its running statistics) overflows, or
    /// the held-out data holds a value that is not finite. That epoch's
    /// checkpoint is not written.
    #[error("training diverged by epoch {epoch}: the held-out loss is {loss} although every training step's loss and gradients were finite; the largest magnitude among the model's parameters and buffers is {largest:.3e}, in {name}; that epoch's checkpoint was not written and training stopped (the last checkpoint is kept)")]
    NonFiniteHeldOut {
        /// The epoch (1-based) after which the model was evaluated.
        epoch: u64,
        /// The held-out loss.
        loss: f64,
        /// The parameter or buffer holding the value of largest magnitude.
        name: String,
        /// That magnitude (infinite or NaN when the tensor holds one).
        largest: f64,
    },
    /// A checkpoint written by another run (other model, data, seed or
    /// settings) was given to resume.
    #[error("checkpoint {path} is of another run: {}", differences.join("; "))]
    CheckpointMismatch {
        /// The checkpoint as the user gave it.
        path: String,
        /// Each differing setting, `key: A in the checkpoint, B now`.
        differences: Vec<String>,
    },
    /// The model factory failed.
    #[error("building the model failed: {reason}")]
    Model {
        /// The factory's message.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path as the user gave it.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Another rank of a data-parallel run failed (it could not read its
    /// data, its forward pass failed, or rank 0 could not write a file);
    /// every other rank returns this error, so none is left waiting.
    #[error("rank {rank} of {size} failed{}: {message}", step.map(|s| format!(" at step {s}")).unwrap_or_default())]
    RankFailed {
        /// The lowest rank that failed.
        rank: usize,
        /// The number of ranks.
        size: usize,
        /// The step (0-based) it failed at, when it failed in a step.
        step: Option<u64>,
        /// Its error, as text.
        message: String,
    },
    /// A collective failed (mismatched calls, a rank that left).
    #[error("communication: {0}")]
    Dist(#[from] DistError),
    /// A layer, optimizer or checkpoint failure.
    #[error(transparent)]
    Nn(Box<NnError>),
    /// A network failure (bad input shape, unknown point).
    #[error(transparent)]
    Arch(Box<ArchError>),
    /// A dataset failure.
    #[error(transparent)]
    Data(Box<DataError>),
    /// A diagnostics failure.
    #[error(transparent)]
    Diag(Box<DiagError>),
    /// An autodiff failure.
    #[error(transparent)]
    Autodiff(#[from] AutodiffError),
    /// A tensor failure.
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

/// What the non-finite guard found, without the optimizer's own advice
/// (which assumes the run goes on).
fn finding(cause: &NnError) -> String {
    match cause {
        NnError::NonFiniteLoss { value } => format!("the loss is {value}"),
        NnError::NonFiniteGradient { name, index, value } => {
            format!("the gradient of {name} is {value} at element {index}")
        }
        other => other.to_string(),
    }
}

impl TrainError {
    /// A closure that wraps an I/O error with what was done to which file.
    pub fn io(
        what: &'static str,
        path: impl std::fmt::Display,
    ) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.to_string();
        move |source| TrainError::Io { what, path, source }
    }
}

// Boxed: the library errors are 120 bytes, and every `Result` of the
// workspace's hot loops would carry that size otherwise.
macro_rules! boxed_from {
    ($($variant:ident($t:ty)),*) => {$(
        impl From<$t> for TrainError {
            fn from(e: $t) -> Self {
                TrainError::$variant(Box::new(e))
            }
        }
    )*};
}

boxed_from!(
    Nn(NnError),
    Arch(ArchError),
    Data(DataError),
    Diag(DiagError)
);

/// Shorthand for results of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
