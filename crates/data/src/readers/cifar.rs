//! CIFAR-10 binary batches ("CIFAR-10 binary version").
//!
//! A batch file is a sequence of 3073-byte records: one label byte (0..=9)
//! then 3072 pixel bytes, the 1024 red values of the 32x32 image row by row,
//! then the 1024 green, then the 1024 blue: exactly the `[3, 32, 32]` layout
//! of an image tensor. The distribution directory `cifar-10-batches-bin`
//! holds `data_batch_1.bin` .. `data_batch_5.bin` (10,000 records each) and
//! `test_batch.bin`.

use std::path::{Path, PathBuf};

use super::{decode_bytes, read_file, Split};
use crate::error::{DataError, Result};
use crate::memory::ByteImages;

/// CIFAR-10 image shape.
pub const CIFAR10_SHAPE: [usize; 3] = [3, 32, 32];
/// Bytes per record: one label byte and `3 * 32 * 32` pixel bytes.
pub const CIFAR10_RECORD_BYTES: usize = 1 + 3 * 32 * 32;
/// Number of CIFAR-10 classes.
pub const CIFAR10_CLASSES: usize = 10;

/// Decodes a CIFAR-10 batch from its bytes (gzip or plain) into `[3, 32, 32]`
/// images with values in `[0, 1]`; `path` only names the file in errors.
/// Any whole number of records is accepted, not only 10,000.
///
/// # Errors
/// [`DataError::Decompress`], [`DataError::TooLarge`], [`DataError::Empty`]
/// for no bytes, [`DataError::RecordLength`] when the length is not a
/// multiple of 3073, [`DataError::LabelOutOfRange`] for a label byte above 9.
pub fn decode_cifar10_batch(bytes: &[u8], path: &Path) -> Result<ByteImages> {
    let bytes = decode_bytes(bytes, path)?;
    let record = CIFAR10_RECORD_BYTES;
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    if bytes.len() % record != 0 {
        return Err(DataError::RecordLength {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            record: record as u64,
            whole: (bytes.len() / record) as u64,
            rest: (bytes.len() % record) as u64,
        });
    }
    let count = bytes.len() / record;
    let mut labels = Vec::with_capacity(count);
    let mut pixels = Vec::with_capacity(count * (record - 1));
    for (index, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[0];
        if usize::from(label) >= CIFAR10_CLASSES {
            return Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                index,
                label: label.into(),
                num_classes: CIFAR10_CLASSES,
            });
        }
        labels.push(label);
        pixels.extend_from_slice(&rec[1..]);
    }
    ByteImages::new(
        format!("cifar10({})", path.display()),
        CIFAR10_SHAPE,
        CIFAR10_CLASSES,
        pixels,
        labels,
    )
}

/// Reads one CIFAR-10 batch file; see [`decode_cifar10_batch`].
///
/// # Errors
/// [`DataError::Io`] when the file cannot be read, and every error of
/// [`decode_cifar10_batch`].
pub fn read_cifar10_batch(path: impl AsRef<Path>) -> Result<ByteImages> {
    let path = path.as_ref();
    decode_cifar10_batch(&read_file(path)?, path)
}

/// The batch files of `split`.
fn batch_names(split: Split) -> Vec<String> {
    match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".to_string()],
    }
}

/// Reads the CIFAR-10 `split` from `dir`: the five training batches
/// `data_batch_1.bin` .. `data_batch_5.bin` joined in order (50,000 images),
/// or `test_batch.bin` (10,000 images). `dir` may be the
/// `cifar-10-batches-bin` directory itself or the directory the archive was
/// extracted into.
///
/// # Errors
/// [`DataError::MissingFile`] when a batch file is missing, and every error
/// of [`read_cifar10_batch`].
///
/// # Examples
/// ```no_run
/// use gradlab_data::{load_cifar10_dir, Dataset, Split};
/// let test = load_cifar10_dir("data/cifar-10-batches-bin", Split::Test)?;
/// assert_eq!((test.len(), test.input_shape()), (10_000, [3, 32, 32]));
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
pub fn load_cifar10_dir(dir: impl AsRef<Path>, split: Split) -> Result<ByteImages> {
    let given = dir.as_ref();
    let names = batch_names(split);
    let nested = given.join("cifar-10-batches-bin");
    let dir: PathBuf = if !given.join(&names[0]).is_file() && nested.join(&names[0]).is_file() {
        nested
    } else {
        given.to_path_buf()
    };
    let mut parts = Vec::with_capacity(names.len());
    for name in &names {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(DataError::MissingFile {
                dir,
                tried: vec![name.clone()],
            });
        }
        parts.push(read_cifar10_batch(&path)?);
    }
    let split_name = match split {
        Split::Train => "train",
        Split::Test => "test",
    };
    ByteImages::concat(format!("cifar10({}, {split_name})", dir.display()), parts)
}
