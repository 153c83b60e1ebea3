//! Property tests of the readers, the fuzzing of this crate: arbitrary bytes
//! (plain and gzip-wrapped), truncated files, wrong magic numbers, dimension
//! and length mismatches and labels out of range each give an `Err`, never a
//! panic, and valid files round-trip.

use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use gradlab_data::{
    decode_cifar10_batch, decode_idx_images, decode_idx_labels, idx_dataset, Dataset,
};
use proptest::prelude::*;

const PATH: &str = "prop/file";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn idx_file(ndims: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, ndims];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

/// A valid IDX image file: (count, rows, cols, bytes).
fn images_file() -> impl Strategy<Value = (u32, u32, u32, Vec<u8>)> {
    (1u32..6, 1u32..5, 1u32..5).prop_flat_map(|(n, r, c)| {
        proptest::collection::vec(any::<u8>(), (n * r * c) as usize)
            .prop_map(move |px| (n, r, c, idx_file(3, &[n, r, c], &px)))
    })
}

/// A valid CIFAR-10 batch of 1..3 records.
fn cifar_file() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((0u8..10, any::<u8>()), 1..3).prop_map(|records| {
        let mut out = Vec::new();
        for (label, fill) in records {
            out.push(label);
            out.extend(std::iter::repeat_n(fill, 3072));
        }
        out
    })
}

fn path() -> &'static Path {
    Path::new(PATH)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_idx_images(&bytes, path());
        let _ = decode_idx_labels(&bytes, path());
        let _ = decode_cifar10_batch(&bytes, path());
        // Behind a valid gzip wrapper, the same bytes reach the parsers.
        let gz = gzip(&bytes);
        let _ = decode_idx_images(&gz, path());
        let _ = decode_idx_labels(&gz, path());
        let _ = decode_cifar10_batch(&gz, path());
        // Starting like gzip but not gzip: a decompression error.
        let mut fake = vec![0x1f, 0x8b];
        fake.extend(&bytes);
        prop_assert!(decode_idx_images(&fake, path()).is_err());
        prop_assert!(decode_cifar10_batch(&fake, path()).is_err());
    }

    #[test]
    fn random_headers_with_random_data_are_checked(
        ndims in 0u8..5,
        dims in proptest::collection::vec(any::<u32>(), 0..5),
        small in proptest::collection::vec(0u32..4, 0..5),
        use_small in any::<bool>(),
        data in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let dims = if use_small { &small } else { &dims };
        let bytes = idx_file(ndims, dims, &data);
        // Ok only when the file is exactly what its header declares.
        if let Ok(images) = decode_idx_images(&bytes, path()) {
            prop_assert_eq!(ndims, 3);
            prop_assert_eq!(images.pixels.len(), images.count * images.rows * images.cols);
            prop_assert_eq!(bytes.len(), 16 + images.pixels.len());
        }
        if let Ok(labels) = decode_idx_labels(&bytes, path()) {
            prop_assert_eq!(ndims, 1);
            prop_assert_eq!(bytes.len(), 8 + labels.len());
        }
    }

    #[test]
    fn valid_idx_images_round_trip_plain_and_gzip((n, r, c, file) in images_file()) {
        for bytes in [file.clone(), gzip(&file)] {
            let images = decode_idx_images(&bytes, path()).unwrap();
            prop_assert_eq!((images.count, images.rows, images.cols), (n as usize, r as usize, c as usize));
            prop_assert_eq!(&images.pixels[..], &file[16..]);
        }
    }

    #[test]
    fn truncated_idx_files_are_errors((_n, _r, _c, file) in images_file(), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(file.len());
        prop_assert!(decode_idx_images(&file[..cut], path()).is_err());
        prop_assert!(decode_idx_images(&gzip(&file[..cut]), path()).is_err());
        let labels = idx_file(1, &[4], &[1, 2, 3, 4]);
        let cut = cut % labels.len();
        prop_assert!(decode_idx_labels(&labels[..cut], path()).is_err());
    }

    #[test]
    fn extended_idx_files_are_errors((_n, _r, _c, file) in images_file(), extra in proptest::collection::vec(any::<u8>(), 1..10)) {
        let mut long = file.clone();
        long.extend(&extra);
        prop_assert!(decode_idx_images(&long, path()).is_err());
        prop_assert!(decode_idx_images(&gzip(&long), path()).is_err());
    }

    #[test]
    fn wrong_magic_numbers_are_errors((_n, _r, _c, file) in images_file(), pos in 0usize..4, byte in any::<u8>()) {
        let mut bad = file.clone();
        prop_assume!(bad[pos] != byte);
        bad[pos] = byte;
        prop_assert!(decode_idx_images(&bad, path()).is_err());
    }

    #[test]
    fn dimension_length_mismatches_are_errors((n, r, c, file) in images_file(), which in 0usize..3, new in 0u32..10) {
        let old = [n, r, c][which];
        prop_assume!(new != old);
        let mut bad = file.clone();
        bad[4 + 4 * which..8 + 4 * which].copy_from_slice(&new.to_be_bytes());
        prop_assert!(decode_idx_images(&bad, path()).is_err());
    }

    #[test]
    fn labels_out_of_range_and_count_mismatches_are_errors(
        (n, r, c, file) in images_file(),
        classes in 1usize..12,
        labels in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let images = decode_idx_images(&file, path()).unwrap();
        let result = idx_dataset("prop", images, path(), labels.clone(), Path::new("prop/labels"), classes);
        let valid = labels.len() == n as usize && labels.iter().all(|&l| usize::from(l) < classes);
        prop_assert_eq!(result.is_ok(), valid);
        if let Ok(data) = result {
            prop_assert_eq!(data.input_shape(), [1, r as usize, c as usize]);
            prop_assert_eq!(data.len(), n as usize);
        }
    }

    #[test]
    fn cifar_batches_round_trip_and_reject_damage(file in cifar_file(), cut in 1usize..3073, label in 10u8..) {
        let data = decode_cifar10_batch(&file, path()).unwrap();
        prop_assert_eq!(data.len(), file.len() / 3073);
        prop_assert_eq!(data.label(0).unwrap(), usize::from(file[0]));
        prop_assert_eq!(decode_cifar10_batch(&gzip(&file), path()).unwrap(), data);
        // Truncated or extended by less than a record.
        prop_assert!(decode_cifar10_batch(&file[..file.len() - cut], path()).is_err());
        let mut long = file.clone();
        long.extend(std::iter::repeat_n(0u8, cut));
        prop_assert!(decode_cifar10_batch(&long, path()).is_err());
        // A label byte out of range.
        let mut bad = file.clone();
        bad[0] = label;
        prop_assert!(decode_cifar10_batch(&bad, path()).is_err());
    }
}
