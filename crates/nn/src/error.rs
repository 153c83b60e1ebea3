//! The one error type of this crate.

use std::path::PathBuf;

use gradlab_autodiff::AutodiffError;
use gradlab_conv::ConvError;
use gradlab_tensor::TensorError;
use thiserror::Error;

/// Everything building, running, training, saving or loading a model can
/// reject, with the names, shapes and values involved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NnError {
    /// The autodiff tape rejected an operation.
    #[error(transparent)]
    Autodiff(#[from] AutodiffError),
    /// A convolution or pooling kernel rejected its inputs or spec.
    #[error(transparent)]
    Conv(#[from] ConvError),
    /// A tensor operation rejected its inputs.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A layer, optimizer or schedule was configured with an invalid value.
    #[error("{what}: {reason}")]
    InvalidConfig {
        /// The layer (its dotted name) or component that was being configured.
        what: String,
        /// What is wrong, with the values.
        reason: String,
    },
    /// A layer received an input of a shape it cannot take.
    #[error("{layer}: expected input {expected}, got shape {got:?}")]
    InputShape {
        /// Dotted name of the layer.
        layer: String,
        /// The shape it wants, in words (`"[N, 16, H, W]"`).
        expected: String,
        /// The shape it was given.
        got: Vec<usize>,
    },
    /// A parameter or module name that cannot be used in a dotted path.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Two parameters of one model share a name.
    #[error("two parameters are named {name:?}; dotted names must be unique in a model")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A trainable parameter received no gradient (it was not used in the
    /// forward pass, or the gradients belong to another model).
    #[error("no gradient for trainable parameter {name:?}: it was not used in this step's forward pass (or the gradients come from another model)")]
    MissingGradient {
        /// Dotted name of the parameter.
        name: String,
    },
    /// A gradient whose shape differs from its parameter's.
    #[error("gradient for {name:?} has shape {got:?}, the parameter has shape {expected:?}")]
    GradientShape {
        /// Dotted name of the parameter.
        name: String,
        /// The parameter's shape.
        expected: Vec<usize>,
        /// The gradient's shape.
        got: Vec<usize>,
    },
    /// The loss of a training step is NaN or infinite; nothing was updated.
    #[error(
        "non-finite loss {value}; the step was skipped and no parameter or optimizer state changed"
    )]
    NonFiniteLoss {
        /// The loss value.
        value: f64,
    },
    /// A gradient holds NaN or infinity; nothing was updated.
    #[error("non-finite gradient for {name:?} (element {index} is {value}); the step was skipped and no parameter or optimizer state changed")]
    NonFiniteGradient {
        /// Dotted name of the first offending parameter (input to output order).
        name: String,
        /// Flat (row-major) index of the first non-finite element.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// A BatchNorm layer in training mode saw a single value per channel.
    #[error("{layer}: expected more than 1 value per channel when training, got input of shape {shape:?}")]
    BatchTooSmall {
        /// Dotted name of the layer.
        layer: String,
        /// Shape of the input.
        shape: Vec<usize>,
    },
    /// A file could not be read, written, synced or renamed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`"write"`, `"rename"`, `"read"`...).
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An output path that exists and is not a regular file: a directory, a
    /// device such as `/dev/null`, a FIFO or a socket. Saving never replaces
    /// one.
    #[error("{path} is {kind}, not a regular file; refusing to write over it")]
    NotRegularFile {
        /// The path as given.
        path: PathBuf,
        /// What it is (`"a directory"`, `"a FIFO"`, `"a character device"`...).
        kind: &'static str,
    },
    /// A checkpoint file that is not a valid (complete) safetensors file, or
    /// whose gradlab metadata is missing or malformed.
    #[error("checkpoint {path}: {reason}")]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the model (or optimizer) needs is not in the checkpoint.
    #[error("checkpoint {path}: missing tensor {name:?}")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// Name of the missing tensor.
        name: String,
    },
    /// The checkpoint holds a tensor the model (or optimizer) does not have.
    #[error("checkpoint {path}: unexpected tensor {name:?}, which the model does not have")]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// Name of the tensor.
        name: String,
    },
    /// A checkpoint tensor whose shape differs from the model's.
    #[error(
        "checkpoint {path}: tensor {name:?} has shape {found:?}, the model expects {expected:?}"
    )]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// Name of the tensor.
        name: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A checkpoint whose tensor data does not match the checksum stored in
    /// its metadata: the file was damaged after it was written.
    #[error("checkpoint {path}: the tensor data is damaged (CRC-32 {found:08x}, the file records {expected:08x})")]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// The checksum recorded in the file.
        expected: u32,
        /// The checksum of the data read.
        found: u32,
    },
    /// A checkpoint saved from a model (named in its metadata) that does not
    /// fit the model it is loaded into.
    #[error("checkpoint {path} is for model {checkpoint_model}, which does not fit this model: tensor {tensor:?} {}", mismatch_detail(mismatch))]
    ModelMismatch {
        /// The file.
        path: PathBuf,
        /// The model specification stored in the checkpoint.
        checkpoint_model: String,
        /// The first tensor (in the model's order) that does not fit.
        tensor: String,
        /// The mismatch itself: [`NnError::MissingTensor`],
        /// [`NnError::UnexpectedTensor`], [`NnError::ShapeMismatch`] or
        /// [`NnError::DtypeMismatch`].
        mismatch: Box<NnError>,
    },
    /// A tensor holding NaN or infinity, which a checkpoint never stores;
    /// nothing was written.
    #[error("refusing to save checkpoint {path}: tensor {name:?} is not finite (element {index} is {value}); the file was not written")]
    NonFiniteTensor {
        /// The file that was to be written (empty from
        /// [`checkpoint_bytes`](crate::checkpoint_bytes)).
        path: PathBuf,
        /// Name of the first offending tensor (model order, then optimizer
        /// state as `optim/<slot>/<parameter>`).
        name: String,
        /// Flat (row-major) index of its first non-finite element.
        index: usize,
        /// That element.
        value: f64,
    },
    /// A checkpoint tensor whose dtype differs from the model's.
    #[error("checkpoint {path}: tensor {name:?} has dtype {found}, the model expects {expected}")]
    DtypeMismatch {
        /// The file.
        path: PathBuf,
        /// Name of the tensor.
        name: String,
        /// The model's dtype (`"F32"`, `"F64"`).
        expected: String,
        /// The file's dtype.
        found: String,
    },
    /// Optimizer state of one kind loaded into an optimizer of another.
    #[error("optimizer state is for {found:?}, this optimizer is {expected:?}")]
    OptimizerMismatch {
        /// This optimizer's kind.
        expected: String,
        /// The state's kind.
        found: String,
    },
}

/// The part of a tensor mismatch that is not already in
/// [`NnError::ModelMismatch`]'s message.
fn mismatch_detail(e: &NnError) -> String {
    match e {
        NnError::MissingTensor { .. } => "is missing from the checkpoint".into(),
        NnError::UnexpectedTensor { .. } => "is in the checkpoint but not in the model".into(),
        NnError::ShapeMismatch {
            expected, found, ..
        } => format!("has shape {found:?} in the checkpoint, {expected:?} in the model"),
        NnError::DtypeMismatch {
            expected, found, ..
        } => format!("has dtype {found} in the checkpoint, {expected} in the model"),
        other => format!("does not fit: {other}"),
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = NnError> = std::result::Result<T, E>;

impl NnError {
    pub(crate) fn config(what: impl Into<String>, reason: impl Into<String>) -> Self {
        NnError::InvalidConfig {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
