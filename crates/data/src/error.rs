//! The one error type of this crate.

use std::path::PathBuf;

use gradlab_tensor::TensorError;
use thiserror::Error;

use crate::budget::bytes_text;

/// Everything a dataset, a wrapper or a file reader can reject, with the
/// paths, sizes and values involved.
///
/// Reader errors always name the file, so a message reads like
/// `data/train-images-idx3-ubyte.gz: truncated: the header declares 47040000 bytes of pixels but only 1024 are present`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DataError {
    /// An example index past the end of a dataset.
    #[error("{dataset}: index {index} is out of range for a dataset of {len} examples")]
    IndexOutOfRange {
        /// Name of the dataset.
        dataset: String,
        /// The index that was asked for.
        index: usize,
        /// Number of examples in the dataset.
        len: usize,
    },
    /// A configuration value outside its valid range.
    #[error("{what}: invalid argument: {reason}")]
    InvalidArgument {
        /// The constructor or function that rejected it.
        what: &'static str,
        /// What is wrong, with the values.
        reason: String,
    },
    /// Two things that must have the same shape do not (an image and the
    /// dataset's input shape, statistics and a dataset's channel count...).
    #[error("{what}: expected shape {expected:?}, got {found:?}")]
    ShapeMismatch {
        /// Where the mismatch was found.
        what: String,
        /// The shape required.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A file could not be opened or read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A gzip-compressed file whose compressed stream is corrupt or cut short.
    #[error("{}: corrupt or truncated gzip stream: {source}", path.display())]
    Decompress {
        /// The file.
        path: PathBuf,
        /// The error reported by the decompressor.
        source: std::io::Error,
    },
    /// A file (after decompression) larger than this crate accepts.
    #[error("{}: more than {limit} bytes after decompression; refusing to read it", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A file that does not start with the expected magic number.
    #[error("{}: wrong magic number 0x{found:08x}, expected 0x{expected:08x} ({what}){hint}", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// What the file was expected to be.
        what: &'static str,
        /// The magic number expected.
        expected: u32,
        /// The first four bytes of the file, big-endian.
        found: u32,
        /// A suggestion when the magic number belongs to another known kind of
        /// file (empty otherwise).
        hint: &'static str,
    },
    /// A file that ends before its header is complete.
    #[error("{}: truncated header: {what} needs {expected} bytes, the file has {found}", path.display())]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// What kind of file was expected.
        what: &'static str,
        /// Bytes the header needs.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// Header dimensions that are zero, or whose product overflows or exceeds
    /// the size limit.
    #[error("{}: invalid dimensions {dims:?}: {reason}", path.display())]
    BadDimensions {
        /// The file.
        path: PathBuf,
        /// The dimensions declared by the header.
        dims: Vec<u64>,
        /// What is wrong with them.
        reason: String,
    },
    /// A file with fewer data bytes than its header (or record size) requires.
    #[error("{}: truncated: {what} needs {expected} bytes but only {found} are present", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What the bytes were needed for.
        what: String,
        /// Bytes required.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// A file with more bytes than its header declares.
    #[error("{}: {extra} unexpected bytes after the {expected} bytes the header declares", path.display())]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Bytes the header declares (header included).
        expected: u64,
        /// Bytes past that (at least this many).
        extra: u64,
    },
    /// A CIFAR-10 batch whose length is not a whole number of records.
    #[error("{}: {len} bytes is not a whole number of {record}-byte records ({whole} whole records and {rest} bytes left over)", path.display())]
    RecordLength {
        /// The file.
        path: PathBuf,
        /// File length in bytes.
        len: u64,
        /// Record size in bytes.
        record: u64,
        /// Number of complete records.
        whole: u64,
        /// Bytes left over after the last complete record.
        rest: u64,
    },
    /// A file that holds no examples.
    #[error("{}: the file holds no examples", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A label outside `0..num_classes`.
    #[error("{}: label {label} of example {index} is out of range for {num_classes} classes", path.display())]
    LabelOutOfRange {
        /// The file holding the label.
        path: PathBuf,
        /// Index of the example within the file.
        index: usize,
        /// The label found.
        label: usize,
        /// The number of classes.
        num_classes: usize,
    },
    /// An image file and a label file that disagree on the number of examples.
    #[error("{} holds {images} images but {} holds {labels} labels", images_path.display(), labels_path.display())]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Number of images it holds.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Number of labels it holds.
        labels: usize,
    },
    /// None of the accepted file names exists in a directory.
    #[error("{}: none of {tried:?} exists", dir.display())]
    MissingFile {
        /// The directory searched.
        dir: PathBuf,
        /// The file names tried, in order.
        tried: Vec<String>,
    },
    /// The embedded digits file does not parse (the crate was built from a
    /// damaged copy).
    #[error("embedded digits file, line {line}: {reason}")]
    EmbeddedDigits {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A size (examples, image dimensions, classes) that would need more
    /// memory than this machine has (see [`memory_limit`](crate::memory_limit)).
    #[error("{what} would need {} of memory, more than the {} this machine has", bytes_text(*needed), bytes_text(u128::from(*limit)))]
    TooMuchMemory {
        /// What the memory is for, with the sizes.
        what: String,
        /// Bytes needed (`u128::MAX` when even that overflows).
        needed: u128,
        /// The limit, in bytes.
        limit: u64,
    },
    /// An allocation within the memory limit that failed anyway (other
    /// programs hold the memory).
    #[error("{what}: cannot allocate {}", bytes_text(*needed))]
    AllocationFailed {
        /// What the memory is for, with the sizes.
        what: String,
        /// Bytes asked for.
        needed: u128,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Rejects a value outside `[low, high]` or not finite.
pub(crate) fn check_unit_interval(what: &'static str, name: &str, x: f64) -> Result<()> {
    if x.is_finite() && (0.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err(DataError::InvalidArgument {
            what,
            reason: format!("{name} must be in [0, 1], got {x}"),
        })
    }
}

/// Rejects fewer than 2 classes: with one class there is nothing to tell
/// apart, and cross-entropy is identically 0.
pub(crate) fn check_classes(what: &'static str, num_classes: usize) -> Result<()> {
    if num_classes < 2 {
        Err(DataError::InvalidArgument {
            what,
            reason: format!("a classifier needs at least 2 classes, got {num_classes}"),
        })
    } else {
        Ok(())
    }
}

/// Rejects a zero count.
pub(crate) fn check_positive(what: &'static str, name: &str, x: usize) -> Result<()> {
    if x == 0 {
        Err(DataError::InvalidArgument {
            what,
            reason: format!("{name} must be at least 1, got 0"),
        })
    } else {
        Ok(())
    }
}
