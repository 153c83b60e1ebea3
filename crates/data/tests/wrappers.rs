//! Wrappers over any dataset: subsets, label controls, standardisation, and
//! their composition through `Box<dyn Dataset>`.

use gradlab_data::{
    train_val_split, Batch, ByteImages, ChannelStats, CorruptedLabels, DataError, Dataset, Digits,
    Example, Noise, NoiseConfig, Patterns, PatternsConfig, ShuffledLabels, Standardized, Subset,
    TensorDataset,
};
use gradlab_tensor::Tensor;

fn digits() -> Digits {
    Digits::new(Default::default()).unwrap()
}

fn class_counts<D: Dataset + ?Sized>(data: &D) -> Vec<usize> {
    let mut counts = vec![0; data.num_classes()];
    for i in 0..data.len() {
        counts[data.label(i).unwrap()] += 1;
    }
    counts
}

#[test]
fn datasets_are_send_sync_and_object_safe() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Box<dyn Dataset>>();
    assert_send_sync::<Standardized<Subset<ShuffledLabels<Box<dyn Dataset>>>>>();
    let boxed: Box<dyn Dataset> = Box::new(digits());
    let stacked = Subset::fraction(ShuffledLabels::new(boxed, 1), 0.5, 2).unwrap();
    let stats = ChannelStats::compute(&stacked).unwrap();
    let standardized = Standardized::new(stacked, stats).unwrap();
    assert_eq!(standardized.len(), 899);
    assert_eq!(standardized.input_shape(), [1, 8, 8]);
    assert!(standardized
        .name()
        .starts_with("standardized(subset(899 of shuffled-labels(seed=1, digits(8x8)))"));
}

#[test]
fn subsets_select_and_validate() {
    let d = digits();
    let sub = Subset::new(&d, vec![5, 5, 0]).unwrap();
    assert_eq!(sub.len(), 3);
    assert_eq!(sub.get(0).unwrap(), d.get(5).unwrap());
    assert_eq!(sub.get(2).unwrap(), d.get(0).unwrap());
    assert!(matches!(
        sub.get(3).unwrap_err(),
        DataError::IndexOutOfRange {
            index: 3,
            len: 3,
            ..
        }
    ));
    let err = Subset::new(&d, vec![1, 1797]).unwrap_err();
    assert!(
        matches!(err, DataError::IndexOutOfRange { index: 1797, .. }),
        "{err}"
    );

    let a = Subset::fraction(&d, 0.25, 4).unwrap();
    let b = Subset::fraction(&d, 0.25, 4).unwrap();
    let c = Subset::fraction(&d, 0.25, 5).unwrap();
    assert_eq!(a.len(), 449);
    assert_eq!(a.indices(), b.indices());
    assert_ne!(a.indices(), c.indices());
    assert!(a.indices().windows(2).all(|w| w[0] < w[1]));
    assert_eq!(Subset::fraction(&d, 1.0, 0).unwrap().len(), 1797);
    for bad in [0.0, -0.5, 1.01, f64::NAN, 1e-6] {
        assert!(Subset::fraction(&d, bad, 0).is_err(), "{bad}");
    }
}

#[test]
fn shuffled_labels_keep_images_and_class_counts() {
    let d = digits();
    let s = ShuffledLabels::new(&d, 3);
    assert_eq!(class_counts(&s), class_counts(&d));
    let changed = (0..d.len())
        .filter(|&i| s.label(i).unwrap() != d.label(i).unwrap())
        .count();
    assert!(changed > 1400, "{changed} labels changed");
    for i in [0, 100, 1796] {
        let ex = s.get(i).unwrap();
        assert_eq!(ex.image, d.get(i).unwrap().image);
        assert_eq!(ex.label, s.label(i).unwrap());
    }
    let again = ShuffledLabels::new(&d, 3);
    let other = ShuffledLabels::new(&d, 4);
    let labels =
        |x: &ShuffledLabels<&Digits>| (0..100).map(|i| x.label(i).unwrap()).collect::<Vec<_>>();
    assert_eq!(labels(&s), labels(&again));
    assert_ne!(labels(&s), labels(&other));
    assert!(s.get(1797).is_err());
}

#[test]
fn corrupted_labels_change_the_expected_fraction() {
    let data = Patterns::new(PatternsConfig {
        len: 10_000,
        ..Default::default()
    })
    .unwrap();
    assert!(CorruptedLabels::new(&data, 1.5, 0).is_err());
    let none = CorruptedLabels::new(&data, 0.0, 1).unwrap();
    assert!((0..1000).all(|i| none.label(i).unwrap() == data.label(i).unwrap()));
    let some = CorruptedLabels::new(&data, 0.2, 1).unwrap();
    let changed = (0..data.len())
        .filter(|&i| some.label(i).unwrap() != data.label(i).unwrap())
        .count() as f64
        / data.len() as f64;
    // A corrupted label is uniform over the 10 classes, so it changes with
    // probability 0.2 * 0.9 = 0.18; 4 sd of the binomial is 0.015.
    assert!((changed - 0.18).abs() < 0.016, "{changed}");
    for i in [3, 77] {
        let ex = some.get(i).unwrap();
        assert_eq!(ex.label, some.label(i).unwrap());
        assert_eq!(ex.image, data.get(i).unwrap().image);
    }
}

#[test]
fn standardisation_uses_training_statistics_only() {
    let (train, val) = train_val_split(digits(), 0.25, 1).unwrap();
    let stats = ChannelStats::compute(&train).unwrap();
    assert_eq!(stats.channels(), 1);
    // Two-pass reference on the training split.
    let values: Vec<f64> = (0..train.len())
        .flat_map(|i| {
            train
                .get(i)
                .unwrap()
                .image
                .as_slice()
                .iter()
                .map(|&v| f64::from(v))
                .collect::<Vec<_>>()
        })
        .collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
    assert!((stats.mean[0] - mean).abs() < 1e-12 && (stats.std[0] - std).abs() < 1e-12);
    let val_stats = ChannelStats::compute(&val).unwrap();
    assert_ne!(stats, val_stats);

    let train_z = Standardized::new(&train, stats.clone()).unwrap();
    let val_z = Standardized::new(&val, stats.clone()).unwrap();
    let z = ChannelStats::compute(&train_z).unwrap();
    assert!(
        z.mean[0].abs() < 1e-5 && (z.std[0] - 1.0).abs() < 1e-5,
        "{z:?}"
    );
    // Validation images are mapped with the training statistics.
    let raw = val.get(4).unwrap().image;
    let out = val_z.get(4).unwrap().image;
    for (&x, &y) in raw.as_slice().iter().zip(out.as_slice()) {
        let expected = (f64::from(x) - mean) / std;
        assert!((f64::from(y) - expected).abs() < 1e-5);
    }
    assert_eq!(val_z.label(4).unwrap(), val.label(4).unwrap());
}

#[test]
fn standardisation_is_per_channel_and_checks_its_input() {
    // Channel 0 constant 3, channel 1 alternating 0 / 2.
    let n = 4;
    let mut data = Vec::new();
    for i in 0..n {
        data.extend([3.0f32; 4]);
        data.extend(if i % 2 == 0 { [0.0f32; 4] } else { [2.0f32; 4] });
    }
    let images = Tensor::from_vec(&[n, 2, 2, 2], data).unwrap();
    let set = TensorDataset::new("two-channel", images, vec![0, 1, 0, 1], 2).unwrap();
    let stats = ChannelStats::compute(&set).unwrap();
    assert_eq!(stats.mean, vec![3.0, 1.0]);
    assert_eq!(stats.std, vec![0.0, 1.0]);
    let z = Standardized::new(&set, stats.clone()).unwrap();
    let ex = z.get(1).unwrap().image;
    // The constant channel is only centred.
    assert_eq!(ex.as_slice(), &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);

    let wrong = ChannelStats {
        mean: vec![0.0],
        std: vec![1.0],
    };
    assert!(matches!(
        Standardized::new(&set, wrong).unwrap_err(),
        DataError::ShapeMismatch { .. }
    ));
    let bad = ChannelStats {
        mean: vec![0.0, f64::NAN],
        std: vec![1.0, 1.0],
    };
    assert!(Standardized::new(&set, bad).is_err());
    let negative = ChannelStats {
        mean: vec![0.0, 0.0],
        std: vec![1.0, -1.0],
    };
    assert!(Standardized::new(&set, negative).is_err());
    let empty = Subset::new(&set, vec![]).unwrap();
    assert!(ChannelStats::compute(&empty).is_err());
}

/// A dataset that lies about its shape: batching must notice.
struct Liar;

impl Dataset for Liar {
    fn len(&self) -> usize {
        2
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn input_shape(&self) -> [usize; 3] {
        [1, 2, 2]
    }
    fn get(&self, index: usize) -> gradlab_data::Result<Example> {
        Ok(Example {
            image: Tensor::zeros(&[1, 3, 3]),
            label: index,
        })
    }
    fn name(&self) -> String {
        "liar".into()
    }
}

#[test]
fn batches_and_statistics_reject_images_of_the_wrong_shape() {
    let err = Batch::from_indices(&Liar, &[0, 1]).unwrap_err();
    assert!(matches!(err, DataError::ShapeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("liar"), "{err}");
    assert!(ChannelStats::compute(&Liar).is_err());
    let z = Standardized::new(
        Liar,
        ChannelStats {
            mean: vec![0.0],
            std: vec![1.0],
        },
    )
    .unwrap();
    assert!(z.get(0).is_err());
    // The default `label` goes through `get`.
    assert_eq!(Liar.label(1).unwrap(), 1);
}

#[test]
fn in_memory_datasets_validate() {
    let images = Tensor::<f32>::zeros(&[3, 1, 2, 2]);
    assert!(TensorDataset::new("x", images.clone(), vec![0, 1], 2).is_err());
    assert!(TensorDataset::new("x", images.clone(), vec![0, 1, 2], 2).is_err());
    assert!(TensorDataset::new("x", Tensor::zeros(&[3, 4]), vec![0, 1, 1], 2).is_err());
    let ok = TensorDataset::new("x", images, vec![0, 1, 1], 2).unwrap();
    assert_eq!(ok.labels(), &[0, 1, 1]);

    assert!(ByteImages::new("b", [1, 2, 2], 2, vec![0; 7], vec![0, 1]).is_err());
    assert!(ByteImages::new("b", [1, 2, 2], 2, vec![0; 8], vec![0, 2]).is_err());
    assert!(ByteImages::new("b", [0, 2, 2], 2, vec![], vec![]).is_err());
    let b = ByteImages::new(
        "b",
        [1, 2, 2],
        2,
        vec![0, 51, 102, 255, 1, 2, 3, 4],
        vec![1, 0],
    )
    .unwrap();
    assert_eq!(b.get(0).unwrap().image.as_slice(), &[0.0, 0.2, 0.4, 1.0]);
    assert_eq!(b.pixels(1), Some(&[1u8, 2, 3, 4][..]));
    assert_eq!(b.pixels(2), None);
    let joined = ByteImages::concat("j", vec![b.clone(), b.clone()]).unwrap();
    assert_eq!((joined.len(), joined.labels()), (4, &[1u8, 0, 1, 0][..]));
    let other = ByteImages::new("o", [1, 1, 4], 2, vec![0; 4], vec![0]).unwrap();
    assert!(ByteImages::concat("j", vec![b, other]).is_err());
    assert!(ByteImages::concat("j", vec![]).is_err());
}

#[test]
fn noise_and_patterns_validate_their_configuration() {
    let bad_noise = [
        NoiseConfig {
            num_classes: 0,
            ..Default::default()
        },
        NoiseConfig {
            shape: [1, 0, 4],
            ..Default::default()
        },
        NoiseConfig {
            shape: [usize::MAX, 2, 2],
            ..Default::default()
        },
    ];
    for config in bad_noise {
        assert!(Noise::new(config).is_err(), "{config:?}");
    }
    let base = PatternsConfig::default();
    let bad_patterns = [
        PatternsConfig {
            num_classes: 0,
            ..base
        },
        PatternsConfig {
            channels: 0,
            ..base
        },
        PatternsConfig { height: 3, ..base },
        PatternsConfig {
            signal: 1.1,
            ..base
        },
        PatternsConfig {
            signal: f64::NAN,
            ..base
        },
        PatternsConfig {
            jitter: 0.3,
            ..base
        },
        PatternsConfig {
            jitter: -0.1,
            ..base
        },
    ];
    for config in bad_patterns {
        assert!(Patterns::new(config).is_err(), "{config:?}");
    }
    let p = Patterns::new(PatternsConfig {
        channels: 3,
        ..base
    })
    .unwrap();
    let proto = p.prototype(2).unwrap();
    assert_eq!(proto.shape(), &[3, 16, 16]);
    assert!(p.prototype(10).is_err());
    // Classes are laid out on demand: a million classes cost nothing. (Sizes
    // beyond the machine's memory are errors: tests/sizes.rs.)
    let k = 1_000_000;
    let many = Patterns::new(PatternsConfig {
        num_classes: k,
        len: 100_000_000,
        ..base
    })
    .unwrap();
    assert_eq!(many.get(k + 3).unwrap().label, 3);
    // Without jitter and noise every example is its class prototype.
    let still = Patterns::new(PatternsConfig {
        jitter: 0.0,
        ..base
    })
    .unwrap();
    assert_eq!(still.get(12).unwrap().image, still.prototype(2).unwrap());
}
