//! IDX and CIFAR-10 readers on small files written by the test, gzip and
//! plain: round trips, and a clear error naming the file for every kind of
//! damage.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use gradlab_data::{
    load_cifar10_dir, load_idx, load_mnist, load_mnist_dir, read_cifar10_batch, read_idx_images,
    read_idx_labels, DataError, Dataset, Split,
};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn idx_images(count: u32, rows: u32, cols: u32, pixel: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 3];
    for d in [count, rows, cols] {
        out.extend(d.to_be_bytes());
    }
    out.extend((0..(count * rows * cols) as usize).map(pixel));
    out
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 1];
    out.extend((labels.len() as u32).to_be_bytes());
    out.extend(labels);
    out
}

fn cifar_records(labels: &[u8], offset: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &l) in labels.iter().enumerate() {
        out.push(l);
        out.extend((0..3072).map(|p| (p as u8).wrapping_add(i as u8).wrapping_add(offset)));
    }
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The error mentions the file and matches `pred`.
fn assert_err_names(err: DataError, path: &Path, pred: impl Fn(&DataError) -> bool) {
    let text = err.to_string();
    assert!(pred(&err), "unexpected error: {text}");
    assert!(
        text.contains(&path.display().to_string()),
        "error does not name {}: {text}",
        path.display()
    );
}

#[test]
fn mnist_round_trip_plain_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let pixel = |i: usize| (i * 7 % 256) as u8;
    let images = idx_images(5, 3, 4, pixel);
    let labels = idx_labels(&[3, 0, 9, 1, 1]);
    // Training files gzip-compressed, test files plain, as users have them.
    write(dir.path(), "train-images-idx3-ubyte.gz", &gzip(&images));
    write(dir.path(), "train-labels-idx1-ubyte.gz", &gzip(&labels));
    write(dir.path(), "t10k-images-idx3-ubyte", &images);
    write(dir.path(), "t10k-labels-idx1-ubyte", &labels);
    for split in [Split::Train, Split::Test] {
        let data = load_mnist_dir(dir.path(), split).unwrap();
        assert_eq!(data.len(), 5);
        assert_eq!(data.num_classes(), 10);
        assert_eq!(data.input_shape(), [1, 3, 4]);
        let labels: Vec<usize> = (0..5).map(|i| data.label(i).unwrap()).collect();
        assert_eq!(labels, vec![3, 0, 9, 1, 1]);
        let ex = data.get(2).unwrap();
        assert_eq!(ex.label, 9);
        for (j, &v) in ex.image.as_slice().iter().enumerate() {
            assert_eq!(v, f32::from(pixel(24 + j)) / 255.0);
        }
    }
    let raw = read_idx_images(dir.path().join("train-images-idx3-ubyte.gz")).unwrap();
    assert_eq!((raw.count, raw.rows, raw.cols), (5, 3, 4));
    assert_eq!(raw.pixels, images[16..]);
    let raw_labels = read_idx_labels(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    assert_eq!(raw_labels, vec![3, 0, 9, 1, 1]);
    // Gzip is detected by content, not by name.
    let disguised = write(dir.path(), "images.bin", &gzip(&images));
    assert_eq!(read_idx_images(disguised).unwrap(), raw);
}

#[test]
fn mnist_dot_names_and_more_classes() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "train-images.idx3-ubyte",
        &idx_images(2, 2, 2, |i| i as u8),
    );
    write(dir.path(), "train-labels.idx1-ubyte", &idx_labels(&[0, 1]));
    assert_eq!(load_mnist_dir(dir.path(), Split::Train).unwrap().len(), 2);
    // EMNIST-style: more than 10 classes through load_idx.
    let images = write(dir.path(), "e-images", &idx_images(2, 2, 2, |i| i as u8));
    let labels = write(dir.path(), "e-labels", &idx_labels(&[0, 46]));
    assert!(load_mnist(&images, &labels).is_err());
    assert_eq!(load_idx(&images, &labels, 47).unwrap().num_classes(), 47);
}

#[test]
fn missing_mnist_files_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_mnist_dir(dir.path(), Split::Test).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DataError::MissingFile { .. }), "{text}");
    assert!(text.contains("t10k-images-idx3-ubyte.gz"), "{text}");
    let err = load_mnist(dir.path().join("nope"), dir.path().join("nope2")).unwrap_err();
    assert_err_names(err, &dir.path().join("nope"), |e| {
        matches!(e, DataError::Io { .. })
    });
}

#[test]
fn damaged_idx_files_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good_images = idx_images(4, 2, 3, |i| i as u8);
    let good_labels = idx_labels(&[1, 2, 3, 4]);
    let images = write(d, "images", &good_images);
    let labels = write(d, "labels", &good_labels);
    assert_eq!(load_mnist(&images, &labels).unwrap().len(), 4);

    // Truncated data, in a plain and in a gzip file.
    let cut = write(d, "cut", &good_images[..good_images.len() - 1]);
    assert_err_names(load_mnist(&cut, &labels).unwrap_err(), &cut, |e| {
        matches!(
            e,
            DataError::Truncated {
                expected: 24,
                found: 23,
                ..
            }
        )
    });
    let cut_gz = write(d, "cut.gz", &gzip(&good_images[..20]));
    assert_err_names(load_mnist(&cut_gz, &labels).unwrap_err(), &cut_gz, |e| {
        matches!(e, DataError::Truncated { .. })
    });
    // A gzip stream cut short.
    let gz = gzip(&good_images);
    let broken_gz = write(d, "broken.gz", &gz[..gz.len() - 5]);
    assert_err_names(
        load_mnist(&broken_gz, &labels).unwrap_err(),
        &broken_gz,
        |e| matches!(e, DataError::Decompress { .. }),
    );
    // Truncated header.
    let header = write(d, "header", &good_images[..10]);
    assert_err_names(load_mnist(&header, &labels).unwrap_err(), &header, |e| {
        matches!(
            e,
            DataError::TruncatedHeader {
                expected: 16,
                found: 10,
                ..
            }
        )
    });
    // Extra bytes.
    let mut long = good_images.clone();
    long.extend([0, 0, 0]);
    let long = write(d, "long", &long);
    assert_err_names(load_mnist(&long, &labels).unwrap_err(), &long, |e| {
        matches!(e, DataError::TrailingBytes { extra: 3, .. })
    });
    // Swapped paths: the hint says so.
    let err = load_mnist(&labels, &images).unwrap_err();
    assert!(err.to_string().contains("swapped"), "{err}");
    assert_err_names(err, &labels, |e| {
        matches!(
            e,
            DataError::BadMagic {
                found: 0x801,
                expected: 0x803,
                ..
            }
        )
    });
    // Another element type (0x0D = f32).
    let mut floats = good_images.clone();
    floats[2] = 0x0d;
    let floats = write(d, "floats", &floats);
    let err = load_mnist(&floats, &labels).unwrap_err();
    assert!(err.to_string().contains("unsigned bytes"), "{err}");
    // Counts disagree.
    let few = write(d, "few", &idx_labels(&[1, 2, 3]));
    let err = load_mnist(&images, &few).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 4,
                labels: 3,
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("images") && text.contains("few"), "{text}");
    // A label out of range names the label file and the example.
    let bad = write(d, "bad-labels", &idx_labels(&[1, 2, 10, 4]));
    assert_err_names(load_mnist(&images, &bad).unwrap_err(), &bad, |e| {
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 2,
                label: 10,
                ..
            }
        )
    });
    // Dimensions: zero, empty, and absurdly large without allocating.
    let zero = write(d, "zero", &idx_images(2, 0, 3, |_| 0));
    assert_err_names(load_mnist(&zero, &labels).unwrap_err(), &zero, |e| {
        matches!(e, DataError::BadDimensions { .. })
    });
    let empty = write(d, "empty", &idx_images(0, 2, 3, |_| 0));
    assert_err_names(load_mnist(&empty, &labels).unwrap_err(), &empty, |e| {
        matches!(e, DataError::Empty { .. })
    });
    let mut huge = vec![0, 0, 8, 3];
    huge.extend([0xff; 12]);
    huge.extend([1, 2, 3]);
    let huge = write(d, "huge", &huge);
    assert_err_names(load_mnist(&huge, &labels).unwrap_err(), &huge, |e| {
        matches!(e, DataError::BadDimensions { .. })
    });
    // Declared size within the limit but far beyond the file: truncated,
    // without allocating for the declaration.
    let mut big = vec![0, 0, 8, 3];
    for dim in [60_000u32, 28, 28] {
        big.extend(dim.to_be_bytes());
    }
    big.extend([0; 100]);
    let big = write(d, "big", &big);
    assert_err_names(load_mnist(&big, &labels).unwrap_err(), &big, |e| {
        matches!(
            e,
            DataError::Truncated {
                expected: 47_040_000,
                found: 100,
                ..
            }
        )
    });
    // An empty file.
    let nothing = write(d, "nothing", &[]);
    assert_err_names(load_mnist(&nothing, &labels).unwrap_err(), &nothing, |e| {
        matches!(e, DataError::TruncatedHeader { found: 0, .. })
    });
}

#[test]
fn cifar10_round_trip_plain_and_gzip() {
    let root = tempfile::tempdir().unwrap();
    // The layout of the extracted archive: a nested cifar-10-batches-bin.
    let dir = root.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&dir).unwrap();
    for i in 1..=5u8 {
        let records = cifar_records(&[i, 9 - i], i);
        // One batch gzip-compressed: detected by content.
        let bytes = if i == 3 { gzip(&records) } else { records };
        write(&dir, &format!("data_batch_{i}.bin"), &bytes);
    }
    write(&dir, "test_batch.bin", &cifar_records(&[0, 1, 2], 100));
    let train = load_cifar10_dir(root.path(), Split::Train).unwrap();
    assert_eq!(train.len(), 10);
    assert_eq!(train.input_shape(), [3, 32, 32]);
    assert_eq!(train.num_classes(), 10);
    let labels: Vec<usize> = (0..10).map(|i| train.label(i).unwrap()).collect();
    assert_eq!(labels, vec![1, 8, 2, 7, 3, 6, 4, 5, 5, 4]);
    // Record 1 of batch 3 (index 5): pixel p = p + 1 + 3 (mod 256); the red
    // plane first, then green, then blue.
    let ex = train.get(5).unwrap();
    for p in [0usize, 1023, 1024, 3071] {
        let expected = (p as u8).wrapping_add(4);
        assert_eq!(ex.image.as_slice()[p], f32::from(expected) / 255.0);
    }
    let test = load_cifar10_dir(&dir, Split::Test).unwrap();
    assert_eq!(test.len(), 3);
    assert_eq!(test.label(2).unwrap(), 2);
    let one = read_cifar10_batch(dir.join("data_batch_3.bin")).unwrap();
    assert_eq!(one.labels(), &[3, 6]);
}

#[test]
fn damaged_cifar10_files_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = cifar_records(&[1, 2], 0);
    let short = write(d, "short.bin", &good[..good.len() - 1]);
    let err = read_cifar10_batch(&short).unwrap_err();
    assert!(err.to_string().contains("3073"), "{err}");
    assert_err_names(err, &short, |e| {
        matches!(
            e,
            DataError::RecordLength {
                whole: 1,
                rest: 3072,
                ..
            }
        )
    });
    let mut bad = good.clone();
    bad[3073] = 10;
    let bad = write(d, "bad.bin", &bad);
    assert_err_names(read_cifar10_batch(&bad).unwrap_err(), &bad, |e| {
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 1,
                label: 10,
                ..
            }
        )
    });
    let empty = write(d, "empty.bin", &[]);
    assert_err_names(read_cifar10_batch(&empty).unwrap_err(), &empty, |e| {
        matches!(e, DataError::Empty { .. })
    });
    let gz = gzip(&good);
    let cut = write(d, "cut.bin", &gz[..gz.len() / 2]);
    assert_err_names(read_cifar10_batch(&cut).unwrap_err(), &cut, |e| {
        matches!(e, DataError::Decompress { .. })
    });
    // A missing training batch is named.
    for i in [1, 2, 3, 5] {
        write(d, &format!("data_batch_{i}.bin"), &good);
    }
    let err = load_cifar10_dir(d, Split::Train).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err}");
    assert!(err.to_string().contains("data_batch_4.bin"), "{err}");
    // A damaged batch inside a directory names that batch.
    write(d, "data_batch_4.bin", &good[..100]);
    assert_err_names(
        load_cifar10_dir(d, Split::Train).unwrap_err(),
        &d.join("data_batch_4.bin"),
        |e| matches!(e, DataError::RecordLength { .. }),
    );
}
