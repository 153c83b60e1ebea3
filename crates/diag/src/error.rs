//! The one error type of this crate.

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
        /// How many parameter tensors (or layers) were recorded.
        params: usize,
    },
    /// A value that must be finite or in a range is not.
    #[error("{what}: invalid value {value}")]
    InvalidValue {
        /// What the value is.
        what: &'static str,
        /// The value.
        value: f64,
    },
    /// A value in a sample that is NaN or infinite, with its position.
    #[error("{what}: value {index} is {value}, not a finite number")]
    NonFinite {
        /// What the sample is (`"mean interval"`).
        what: &'static str,
        /// Position of the value in the sample, from 0.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A computation this crate has no formula for (an activation without
    /// a known derivative, a fixed point that does not settle).
    #[error("{what}: {reason}")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
        /// Why it cannot be computed, with the values.
        reason: String,
    },
    /// A name that is not one of those known.
    #[error("unknown {what} '{name}' (expected {expected})")]
    UnknownName {
        /// What the name names (`"activation"`).
        what: &'static str,
        /// The name given.
        name: String,
        /// The names accepted.
        expected: &'static str,
    },
    /// A step record that a loop filled with impossible numbers (a negative
    /// RMS, a layer named twice, a step that does not come after the last).
    #[error("step {step}, {field}: {reason}")]
    InvalidRecord {
        /// The step of the record.
        step: usize,
        /// The field, as named in the history format (`layers[2].grad_rms`).
        field: String,
        /// What is wrong, with the value.
        reason: String,
    },
    /// A history file that cannot be read back: the line (1-based) and the
    /// field (as named in the format) that are wrong.
    #[error("{path} line {line}{}: {reason}", field_part(.field))]
    HistoryFormat {
        /// The file (or `<input>` when read from a stream).
        path: String,
        /// The line, counted from 1.
        line: usize,
        /// The field (`loss`, `layers[2].grad_rms`); empty for the whole line.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A history file could not be opened, read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done (`"cannot create history file"`).
        what: &'static str,
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn field_part(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!(", field `{field}`")
    }
}

/// Shorthand for results of this crate. Not re-exported at the crate root,
/// so that `use gradlab_diag::*` next to other crates' glob imports brings
/// no second `Result` into scope.
pub type Result<T, E = DiagError> = std::result::Result<T, E>;
