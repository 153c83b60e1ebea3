//! The command line's error: a one-line message and an exit code.

use thiserror::Error;

/// Why a command failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CliError {
    /// A malformed model or data SPEC, or an option value out of range (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written (exit code 1).
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A library error while running (exit code 1).
    #[error("{0}")]
    Run(String),
    /// A signal stopped the run after its state was saved (exit code
    /// 128 + the signal: 130 for SIGINT, 143 for SIGTERM).
    #[error("{message}")]
    Interrupted {
        /// The signal's number.
        signal: i32,
        /// What was saved and how to go on.
        message: String,
    },
}

impl CliError {
    /// The process exit code: 2 for usage errors, 128 + the signal for an
    /// interrupted run, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Interrupted { signal, .. } => 128 + signal,
            _ => 1,
        }
    }

    /// A closure that wraps an I/O error with what was done to which file.
    pub fn io(
        what: &'static str,
        path: impl std::fmt::Display,
    ) -> impl FnOnce(std::io::Error) -> CliError {
        let path = path.to_string();
        move |source| CliError::Io { what, path, source }
    }
}

impl From<gradlab_train::TrainError> for CliError {
    fn from(e: gradlab_train::TrainError) -> Self {
        match e {
            gradlab_train::TrainError::Spec(m) => CliError::Usage(m),
            e => CliError::Run(e.to_string()),
        }
    }
}

macro_rules! run_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                CliError::Run(e.to_string())
            }
        }
    )*};
}

run_errors!(
    gradlab_tensor::TensorError,
    gradlab_autodiff::AutodiffError,
    gradlab_conv::ConvError,
    gradlab_nn::NnError,
    gradlab_arch::ArchError,
    gradlab_data::DataError,
    gradlab_diag::DiagError,
    serde_json::Error
);

/// Shorthand for results of the command line.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
