//! IDX files, the format of MNIST and Fashion-MNIST (and EMNIST, KMNIST).
//!
//! Layout (all integers big-endian): a 4-byte magic number `00 00 TT DD`
//! where `TT = 0x08` means unsigned bytes and `DD` is the number of
//! dimensions, then `DD` 32-bit dimension sizes, then the data, row-major.
//! Images are `0x00000803` (`count x rows x cols`), labels `0x00000801`
//! (`count`). Either file may be gzip-compressed.

use std::path::{Path, PathBuf};

use super::{decode_bytes, find_file, read_file, Split, MAX_FILE_BYTES};
use crate::error::{DataError, Result};
use crate::memory::ByteImages;

/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// The images of an IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// All pixels, `count * rows * cols` bytes, image after image, row-major.
    pub pixels: Vec<u8>,
}

/// Checks the header of an unsigned-byte IDX file with `ndims` dimensions
/// and returns the dimensions and the data.
fn parse<'a>(
    bytes: &'a [u8],
    path: &Path,
    ndims: u8,
    what: &'static str,
) -> Result<(Vec<u64>, &'a [u8])> {
    let expected = 0x0800 | u32::from(ndims);
    let file_len = bytes.len() as u64;
    let Some(magic) = bytes.first_chunk::<4>() else {
        return Err(DataError::TruncatedHeader {
            path: path.to_path_buf(),
            what,
            expected: 4,
            found: file_len,
        });
    };
    let magic = u32::from_be_bytes(*magic);
    if magic != expected {
        let hint = match (magic, expected) {
            (IDX_LABELS_MAGIC, IDX_IMAGES_MAGIC) => {
                " -- this is an IDX label file; are the image and label paths swapped?"
            }
            (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC) => {
                " -- this is an IDX image file; are the image and label paths swapped?"
            }
            (m, _) if m >> 16 == 0 && matches!((m >> 8) & 0xff, 0x09 | 0x0b..=0x0e) => {
                " -- an IDX file of another element type; only unsigned bytes (type 0x08) are supported"
            }
            _ => "",
        };
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            what,
            expected,
            found: magic,
            hint,
        });
    }
    let header_len = 4 + 4 * usize::from(ndims);
    let Some(header) = bytes.get(4..header_len) else {
        return Err(DataError::TruncatedHeader {
            path: path.to_path_buf(),
            what,
            expected: header_len as u64,
            found: file_len,
        });
    };
    let dims: Vec<u64> = header
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    if dims[0] == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    if dims.contains(&0) {
        return Err(DataError::BadDimensions {
            path: path.to_path_buf(),
            dims,
            reason: "a dimension is zero".into(),
        });
    }
    let Some(data_len) = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_FILE_BYTES)
    else {
        return Err(DataError::BadDimensions {
            path: path.to_path_buf(),
            reason: format!("they declare more than {MAX_FILE_BYTES} bytes of data"),
            dims,
        });
    };
    let data = &bytes[header_len..];
    let found = data.len() as u64;
    if found < data_len {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!("the data of dimensions {dims:?} declared by the header"),
            expected: data_len,
            found,
        });
    }
    if found > data_len {
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected: header_len as u64 + data_len,
            extra: found - data_len,
        });
    }
    Ok((dims, data))
}

/// Decodes an IDX image file (`0x00000803`) from its bytes, gzip or plain;
/// `path` only names the file in errors.
///
/// # Errors
/// [`DataError::Decompress`], [`DataError::TooLarge`],
/// [`DataError::BadMagic`] (with a hint when it is a label file),
/// [`DataError::TruncatedHeader`], [`DataError::Empty`],
/// [`DataError::BadDimensions`], [`DataError::Truncated`] or
/// [`DataError::TrailingBytes`].
pub fn decode_idx_images(bytes: &[u8], path: &Path) -> Result<IdxImages> {
    let bytes = decode_bytes(bytes, path)?;
    let (dims, data) = parse(&bytes, path, 3, "IDX images (3 dimensions)")?;
    // Every dimension is at most the data length, which fits in memory.
    let [count, rows, cols] = [dims[0], dims[1], dims[2]].map(|d| d as usize);
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: data.to_vec(),
    })
}

/// Reads an IDX image file; see [`decode_idx_images`].
///
/// # Errors
/// [`DataError::Io`] when the file cannot be read, and every error of
/// [`decode_idx_images`].
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    decode_idx_images(&read_file(path)?, path)
}

/// Decodes an IDX label file (`0x00000801`) from its bytes, gzip or plain;
/// `path` only names the file in errors. Label values are checked against a
/// class count by [`load_idx`], not here.
///
/// # Errors
/// As [`decode_idx_images`].
pub fn decode_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let bytes = decode_bytes(bytes, path)?;
    let (_, data) = parse(&bytes, path, 1, "IDX labels (1 dimension)")?;
    Ok(data.to_vec())
}

/// Reads an IDX label file; see [`decode_idx_labels`].
///
/// # Errors
/// [`DataError::Io`] when the file cannot be read, and every error of
/// [`decode_idx_labels`].
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    decode_idx_labels(&read_file(path)?, path)
}

/// Pairs decoded IDX images and labels into a dataset of `[1, rows, cols]`
/// images with values in `[0, 1]` (bytes divided by 255).
///
/// # Errors
/// [`DataError::CountMismatch`] when the counts differ,
/// [`DataError::LabelOutOfRange`] (naming `labels_path`) for a label `>=
/// num_classes`, [`DataError::InvalidArgument`] for zero classes.
pub fn idx_dataset(
    name: impl Into<String>,
    images: IdxImages,
    images_path: &Path,
    labels: Vec<u8>,
    labels_path: &Path,
    num_classes: usize,
) -> Result<ByteImages> {
    if images.count != labels.len() {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: images.count,
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= num_classes)
    {
        return Err(DataError::LabelOutOfRange {
            path: labels_path.to_path_buf(),
            index,
            label: label.into(),
            num_classes,
        });
    }
    ByteImages::new(
        name,
        [1, images.rows, images.cols],
        num_classes,
        images.pixels,
        labels,
    )
}

/// Reads an IDX image file and its label file into a dataset with
/// `num_classes` classes (10 for MNIST and Fashion-MNIST, 47 for EMNIST
/// Balanced, ...). Images are `[1, rows, cols]` with values in `[0, 1]`.
///
/// # Errors
/// Every error of [`read_idx_images`], [`read_idx_labels`] and
/// [`idx_dataset`].
pub fn load_idx(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
    num_classes: usize,
) -> Result<ByteImages> {
    let (images_path, labels_path) = (images.as_ref(), labels.as_ref());
    let images = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path)?;
    idx_dataset(
        format!("idx({})", images_path.display()),
        images,
        images_path,
        labels,
        labels_path,
        num_classes,
    )
}

/// Reads an MNIST or Fashion-MNIST image file and label file (10 classes).
///
/// # Errors
/// As [`load_idx`].
///
/// # Examples
/// ```no_run
/// use gradlab_data::{load_mnist, Dataset};
/// let train = load_mnist("data/train-images-idx3-ubyte.gz", "data/train-labels-idx1-ubyte.gz")?;
/// assert_eq!(train.input_shape(), [1, 28, 28]);
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
pub fn load_mnist(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<ByteImages> {
    load_idx(images, labels, 10)
}

/// The file names tried for one MNIST-style file, in order.
fn idx_names(prefix: &str, kind: &str, ndims: u8) -> Vec<String> {
    let mut names = Vec::new();
    for base in [
        format!("{prefix}-{kind}-idx{ndims}-ubyte"),
        format!("{prefix}-{kind}.idx{ndims}-ubyte"),
    ] {
        names.push(format!("{base}.gz"));
        names.push(base);
    }
    names
}

/// Reads the MNIST or Fashion-MNIST files of `split` from `dir`, under their
/// distribution names: `train-images-idx3-ubyte` and
/// `train-labels-idx1-ubyte` for [`Split::Train`], `t10k-images-idx3-ubyte`
/// and `t10k-labels-idx1-ubyte` for [`Split::Test`], each with or without
/// `.gz` (a dot instead of the last dash, `train-images.idx3-ubyte`, is also
/// accepted).
///
/// # Errors
/// [`DataError::MissingFile`] listing the names tried, and every error of
/// [`load_idx`].
pub fn load_mnist_dir(dir: impl AsRef<Path>, split: Split) -> Result<ByteImages> {
    let dir = dir.as_ref();
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_path: PathBuf = find_file(dir, &idx_names(prefix, "images", 3))?;
    let labels_path: PathBuf = find_file(dir, &idx_names(prefix, "labels", 1))?;
    let images = read_idx_images(&images_path)?;
    let labels = read_idx_labels(&labels_path)?;
    idx_dataset(
        format!("idx({}, {prefix})", dir.display()),
        images,
        &images_path,
        labels,
        &labels_path,
        10,
    )
}
