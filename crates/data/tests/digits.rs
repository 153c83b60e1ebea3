//! The embedded digits set: counts, classes, pixel range and upscaling.

use gradlab_data::{DataError, Dataset, Digits, DigitsConfig, PixelScale, Resample, DIGITS_LEN};

fn raw(side: usize, resample: Resample) -> Digits {
    Digits::new(DigitsConfig {
        side,
        resample,
        scale: PixelScale::Raw,
    })
    .unwrap()
}

#[test]
fn has_1797_examples_with_the_known_class_counts() {
    let digits = Digits::new(DigitsConfig::default()).unwrap();
    assert_eq!(digits.len(), 1797);
    assert_eq!(DIGITS_LEN, 1797);
    assert_eq!(digits.num_classes(), 10);
    assert_eq!(digits.input_shape(), [1, 8, 8]);
    let mut counts = [0usize; 10];
    for i in 0..digits.len() {
        counts[digits.label(i).unwrap()] += 1;
    }
    // The class counts of the UCI test set as distributed with scikit-learn.
    assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
}

#[test]
fn raw_pixels_are_integers_from_0_to_16() {
    let digits = raw(8, Resample::Nearest);
    let (mut min, mut max) = (f32::MAX, f32::MIN);
    for i in 0..digits.len() {
        let ex = digits.get(i).unwrap();
        assert_eq!(ex.label, digits.label(i).unwrap());
        let bytes = digits.raw_pixels(i).unwrap();
        for (&v, &b) in ex.image.as_slice().iter().zip(bytes.iter()) {
            assert_eq!(v, f32::from(b));
            assert_eq!(v.fract(), 0.0);
            min = min.min(v);
            max = max.max(v);
        }
    }
    assert_eq!((min, max), (0.0, 16.0));
    // The first image of the file is a 0.
    let first = digits.raw_pixels(0).unwrap();
    assert_eq!(&first[..8], &[0, 0, 5, 13, 9, 1, 0, 0]);
    assert_eq!(digits.label(0).unwrap(), 0);
}

#[test]
fn unit_scale_divides_by_16() {
    let unit = Digits::new(DigitsConfig::default()).unwrap();
    let raw = raw(8, Resample::Nearest);
    for i in [0, 1, 500, 1796] {
        let u = unit.get(i).unwrap().image;
        let r = raw.get(i).unwrap().image;
        for (a, b) in u.as_slice().iter().zip(r.as_slice()) {
            assert_eq!(*a, b / 16.0);
        }
    }
}

#[test]
fn nearest_upscaling_repeats_pixels() {
    let small = raw(8, Resample::Nearest);
    for side in [16, 32] {
        let big = raw(side, Resample::Nearest);
        assert_eq!(big.input_shape(), [1, side, side]);
        let f = side / 8;
        for i in [0, 7, 1000] {
            let s = small.get(i).unwrap().image;
            let b = big.get(i).unwrap().image;
            for y in 0..side {
                for x in 0..side {
                    assert_eq!(
                        b.as_slice()[y * side + x],
                        s.as_slice()[(y / f) * 8 + x / f]
                    );
                }
            }
        }
    }
}

#[test]
fn bilinear_upscaling_stays_in_range_and_keeps_corners() {
    let small = raw(8, Resample::Bilinear);
    let big = raw(32, Resample::Bilinear);
    for i in 0..50 {
        let s = small.get(i).unwrap().image;
        let b = big.get(i).unwrap().image;
        let b = b.as_slice();
        assert!(b.iter().all(|&v| (0.0..=16.0).contains(&v)));
        // Half-pixel centres: the outer output pixels clamp to the input's.
        assert_eq!(b[0], s.as_slice()[0]);
        assert_eq!(b[32 * 32 - 1], s.as_slice()[63]);
        // Interpolation roughly preserves the mean intensity.
        let mean_s: f32 = s.as_slice().iter().sum::<f32>() / 64.0;
        let mean_b: f32 = b.iter().sum::<f32>() / 1024.0;
        assert!((mean_s - mean_b).abs() < 0.5, "{mean_s} vs {mean_b}");
    }
    assert_eq!(big.name(), "digits(32x32, bilinear)");
}

#[test]
fn bad_sides_and_indices_are_errors() {
    for side in [0, 7, 257] {
        let err = Digits::new(DigitsConfig {
            side,
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(err, DataError::InvalidArgument { .. }), "{err}");
    }
    let digits = Digits::new(DigitsConfig::default()).unwrap();
    let err = digits.get(1797).unwrap_err();
    assert!(matches!(
        err,
        DataError::IndexOutOfRange {
            index: 1797,
            len: 1797,
            ..
        }
    ));
    assert!(err.to_string().contains("digits(8x8)"), "{err}");
    assert!(digits.raw_pixels(5000).is_err());
    assert!(digits.label(usize::MAX).is_err());
}
