//! Strict readers for real image files: MNIST/Fashion-MNIST IDX files
//! ([`idx`]) and CIFAR-10 binary batches ([`cifar`]).
//!
//! Every reader takes the whole file into memory (decompressing it when it
//! starts with the gzip magic bytes `1f 8b`, whatever its name), then checks
//! it completely before building anything: magic numbers, header dimensions
//! (with checked arithmetic, against [`MAX_FILE_BYTES`]), the data length
//! against the header, label ranges, and the agreement of image and label
//! counts. Memory is only ever allocated for bytes actually read, never from
//! a size declared by a header. A file that fails a check is a
//! [`DataError`] naming the file and what is wrong; no reader panics or
//! returns part of a file.
//!
//! Each reader has a `read_*` form taking a path and a `decode_*` form taking
//! the file's bytes (and the path to name in errors), which is what the
//! property tests feed arbitrary bytes to.

pub mod cifar;
pub mod idx;

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::error::{DataError, Result};

/// The largest file (after decompression) a reader accepts: 1 GiB. The
/// largest common files are far below it (MNIST training images: 47 MB;
/// a CIFAR-10 batch: 31 MB; EMNIST ByClass images: 550 MB).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Which part of a dataset distributed as separate files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training files.
    Train,
    /// The test files.
    Test,
}

/// Reads the first `n` bytes (fewer only at end of input).
fn read_prefix<R: Read>(reader: &mut R, n: usize, path: &Path) -> Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(n);
    reader
        .by_ref()
        .take(n as u64)
        .read_to_end(&mut prefix)
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(prefix)
}

/// Reads all of `reader`, decompressing gzip, refusing more than
/// [`MAX_FILE_BYTES`].
fn decode_stream<R: Read>(mut reader: R, path: &Path) -> Result<Vec<u8>> {
    let prefix = read_prefix(&mut reader, 2, path)?;
    let gzip = prefix == [0x1f, 0x8b];
    let stream = Cursor::new(prefix).chain(reader);
    let mut bytes = Vec::new();
    let limit = MAX_FILE_BYTES + 1;
    if gzip {
        MultiGzDecoder::new(stream)
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|source| DataError::Decompress {
                path: path.to_path_buf(),
                source,
            })?;
    } else {
        stream
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|source| DataError::Io {
                path: path.to_path_buf(),
                source,
            })?;
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_FILE_BYTES,
        });
    }
    Ok(bytes)
}

/// The bytes of a file, decompressed if it is gzip.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_stream(file, path)
}

/// Decompresses `bytes` if they are gzip, otherwise copies them.
pub(crate) fn decode_bytes(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    decode_stream(bytes, path)
}

/// The first of `names` that exists in `dir`.
pub(crate) fn find_file(dir: &Path, names: &[String]) -> Result<PathBuf> {
    names
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| DataError::MissingFile {
            dir: dir.to_path_buf(),
            tried: names.to_vec(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn plain_bytes_pass_through() {
        let p = Path::new("x");
        assert_eq!(decode_bytes(b"", p).unwrap(), b"");
        assert_eq!(decode_bytes(b"\x1f", p).unwrap(), b"\x1f");
        assert_eq!(decode_bytes(b"abc", p).unwrap(), b"abc");
    }

    #[test]
    fn gzip_is_detected_and_truncation_is_an_error() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&[7u8; 1000]).unwrap();
        let gz = enc.finish().unwrap();
        let p = Path::new("f.gz");
        assert_eq!(decode_bytes(&gz, p).unwrap(), vec![7u8; 1000]);
        for cut in [2, 10, gz.len() / 2, gz.len() - 1] {
            let err = decode_bytes(&gz[..cut], p).unwrap_err();
            assert!(matches!(err, DataError::Decompress { .. }), "{cut}: {err}");
        }
        // A corrupted CRC is caught.
        let mut bad = gz.clone();
        let n = bad.len();
        bad[n - 6] ^= 0xff;
        assert!(decode_bytes(&bad, p).is_err());
    }
}
