//! Seeds decide everything: the same seed gives identical batches, splits and
//! examples (pinned by golden values, so a change of generator shows up on
//! any machine); different seeds differ; every example appears exactly once
//! per epoch.

use std::collections::BTreeSet;

use gradlab_data::{
    epoch_order, train_val_split, Batch, BatchConfig, Batches, Dataset, Noise, NoiseConfig,
    Patterns, PatternsConfig, TensorDataset,
};

fn patterns(len: usize, signal: f64, seed: u64) -> Patterns {
    Patterns::new(PatternsConfig {
        len,
        signal,
        seed,
        ..Default::default()
    })
    .unwrap()
}

fn epoch<D: Dataset + ?Sized>(data: &D, config: &BatchConfig, e: u64) -> Vec<Batch> {
    Batches::new(data, config, e)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn same_seed_same_batches_different_seed_different_batches() {
    let data = patterns(103, 0.5, 1);
    let config = BatchConfig {
        batch_size: 10,
        shuffle: true,
        drop_last: false,
        seed: 42,
    };
    let a = epoch(&data, &config, 0);
    let b = epoch(&data, &config, 0);
    assert_eq!(a, b);
    let other_seed = epoch(&data, &BatchConfig { seed: 43, ..config }, 0);
    assert_ne!(a[0].indices, other_seed[0].indices);
    let other_epoch = epoch(&data, &config, 1);
    assert_ne!(a[0].indices, other_epoch[0].indices);
    // Epochs can be replayed out of order.
    assert_eq!(epoch(&data, &config, 1), other_epoch);
}

#[test]
fn every_example_exactly_once_per_epoch() {
    let data = patterns(103, 0.5, 1);
    for drop_last in [false, true] {
        for batch_size in [1, 7, 10, 103, 200] {
            let config = BatchConfig {
                batch_size,
                shuffle: true,
                drop_last,
                seed: 9,
            };
            for e in 0..3 {
                let batches = epoch(&data, &config, e);
                let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
                let expected = if drop_last {
                    103 - 103 % batch_size
                } else {
                    103
                };
                assert_eq!(seen.len(), expected);
                for b in &batches {
                    assert_eq!(b.images.shape()[1..], [1, 16, 16]);
                    assert_eq!(b.images.shape()[0], b.len());
                    assert!(!drop_last || b.len() == batch_size);
                    // Labels and images are those of the indexed examples.
                    let first = data.get(b.indices[0]).unwrap();
                    assert_eq!(b.labels[0], first.label);
                    assert_eq!(&b.images.as_slice()[..256], first.image.as_slice());
                }
                seen.sort_unstable();
                seen.dedup();
                assert_eq!(seen.len(), expected, "an example appeared twice");
                if !drop_last {
                    assert_eq!(seen, (0..103).collect::<Vec<_>>());
                }
            }
        }
    }
}

#[test]
fn batch_counts_and_unshuffled_order() {
    let data = patterns(10, 1.0, 0);
    let config = BatchConfig {
        batch_size: 4,
        shuffle: false,
        drop_last: false,
        seed: 0,
    };
    let it = Batches::new(&data, &config, 5).unwrap();
    assert_eq!(it.len(), 3);
    assert_eq!(it.order(), &(0..10).collect::<Vec<_>>()[..]);
    let sizes: Vec<usize> = it.map(|b| b.unwrap().len()).collect();
    assert_eq!(sizes, vec![4, 4, 2]);
    let dropped = Batches::new(
        &data,
        &BatchConfig {
            drop_last: true,
            ..config
        },
        0,
    )
    .unwrap();
    assert_eq!(dropped.len(), 2);
    assert!(Batches::new(
        &data,
        &BatchConfig {
            batch_size: 0,
            ..config
        },
        0
    )
    .is_err());
    // An empty dataset gives an empty epoch.
    let empty = patterns(0, 1.0, 0);
    assert_eq!(Batches::new(&empty, &config, 0).unwrap().count(), 0);
}

#[test]
fn splits_are_seeded_disjoint_and_complete() {
    let (train, val) = train_val_split(patterns(500, 1.0, 0), 0.2, 7).unwrap();
    assert_eq!((train.len(), val.len()), (400, 100));
    let t: BTreeSet<usize> = train.indices().iter().copied().collect();
    let v: BTreeSet<usize> = val.indices().iter().copied().collect();
    assert!(t.is_disjoint(&v));
    assert_eq!(t.union(&v).count(), 500);
    let (train2, val2) = train_val_split(patterns(500, 1.0, 0), 0.2, 7).unwrap();
    assert_eq!(train.indices(), train2.indices());
    assert_eq!(val.indices(), val2.indices());
    let (_, val3) = train_val_split(patterns(500, 1.0, 0), 0.2, 8).unwrap();
    assert_ne!(val.indices(), val3.indices());
    assert_eq!(
        val.get(3).unwrap(),
        val.inner().get(val.indices()[3]).unwrap()
    );
    for bad in [-0.1, 1.5, f64::NAN] {
        assert!(train_val_split(patterns(10, 1.0, 0), bad, 0).is_err());
    }
    let (all, none) = train_val_split(patterns(10, 1.0, 0), 0.0, 0).unwrap();
    assert_eq!((all.len(), none.len()), (10, 0));
}

#[test]
fn examples_are_functions_of_seed_and_index() {
    let a = patterns(1000, 0.5, 3);
    let b = patterns(1000, 0.5, 3);
    // Any order gives the same examples.
    for i in [999, 0, 500, 1] {
        assert_eq!(a.get(i).unwrap(), b.get(i).unwrap());
    }
    assert_ne!(a.get(1).unwrap().image, a.get(11).unwrap().image);
    assert_ne!(
        a.get(1).unwrap().image,
        patterns(1000, 0.5, 4).get(1).unwrap().image
    );
    let n1 = Noise::new(NoiseConfig {
        len: 50,
        seed: 1,
        ..Default::default()
    })
    .unwrap();
    let n2 = Noise::new(NoiseConfig {
        len: 50,
        seed: 2,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(n1.get(7).unwrap(), n1.get(7).unwrap());
    assert_ne!(n1.get(7).unwrap().image, n2.get(7).unwrap().image);
    let labels = |n: &Noise| (0..50).map(|i| n.label(i).unwrap()).collect::<Vec<_>>();
    assert_ne!(labels(&n1), labels(&n2));
}

#[test]
fn noise_is_standard_normal_with_uniform_labels() {
    let noise = Noise::new(NoiseConfig {
        len: 2000,
        num_classes: 4,
        shape: [2, 4, 4],
        seed: 11,
    })
    .unwrap();
    let (mut sum, mut sum_sq, mut n) = (0.0f64, 0.0f64, 0usize);
    let mut counts = [0usize; 4];
    for i in 0..noise.len() {
        let ex = noise.get(i).unwrap();
        counts[ex.label] += 1;
        for &v in ex.image.as_slice() {
            sum += f64::from(v);
            sum_sq += f64::from(v) * f64::from(v);
            n += 1;
        }
    }
    let mean = sum / n as f64;
    let var = sum_sq / n as f64 - mean * mean;
    // 64,000 draws: the standard error of the mean is 0.004, of the variance 0.006.
    assert!(
        mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
        "{mean} {var}"
    );
    // Each class has probability 1/4: 500 +- 4 sd (sd = 19.4).
    assert!(counts.iter().all(|&c| c.abs_diff(500) < 78), "{counts:?}");
}

#[test]
fn a_million_examples_cost_nothing() {
    let data = Patterns::new(PatternsConfig {
        len: 1_000_000,
        signal: 0.3,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(data.len(), 1_000_000);
    let last = data.get(999_999).unwrap();
    assert_eq!(last.label, 999_999 % 10);
    assert!(std::mem::size_of_val(&data) < 256);
}

#[test]
fn signal_zero_images_do_not_depend_on_the_label() {
    // Same seed and index, different class layouts: at signal 0 the images
    // are bit-identical, so they carry nothing about the label.
    let make = |k, jitter| {
        Patterns::new(PatternsConfig {
            len: 100,
            num_classes: k,
            signal: 0.0,
            jitter,
            seed: 5,
            ..Default::default()
        })
        .unwrap()
    };
    let (a, b) = (make(10, 0.1), make(7, 0.0));
    for i in 0..100 {
        let (ea, eb) = (a.get(i).unwrap(), b.get(i).unwrap());
        assert_eq!(ea.image, eb.image);
        assert_eq!((ea.label, eb.label), (i % 10, i % 7));
    }
}

#[test]
fn mixing_follows_the_formula_and_keeps_unit_variance() {
    let clean = patterns(200, 1.0, 8);
    let noise = patterns(200, 0.0, 8);
    for s in [0.25, 0.5, 0.9] {
        let mixed = patterns(200, s, 8);
        let mut energy = 0.0f64;
        let mut count = 0usize;
        for i in 0..200 {
            let (p, e, x) = (
                clean.get(i).unwrap().image,
                noise.get(i).unwrap().image,
                mixed.get(i).unwrap().image,
            );
            for ((&p, &e), &x) in p.as_slice().iter().zip(e.as_slice()).zip(x.as_slice()) {
                let expected = s.sqrt() * f64::from(p) + (1.0 - s).sqrt() * f64::from(e);
                assert!((f64::from(x) - expected).abs() < 1e-5);
                energy += f64::from(x) * f64::from(x);
                count += 1;
            }
        }
        let mean_square = energy / count as f64;
        assert!(
            (mean_square - 1.0).abs() < 0.02,
            "signal {s}: {mean_square}"
        );
    }
    // Clean patterns are normalised: zero mean, unit mean square per image.
    for i in 0..20 {
        let p = clean.get(i).unwrap().image;
        let n = p.len() as f64;
        let mean = p.as_slice().iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let ms = p
            .as_slice()
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 1e-6 && (ms - 1.0).abs() < 1e-5, "{mean} {ms}");
    }
}

/// Golden values: the generators must give these numbers on every machine
/// and with every build. A change here is a change of every seeded dataset.
#[test]
fn golden_values() {
    assert_eq!(epoch_order(10, 0, 0), GOLDEN_EPOCH_ORDER);
    let p = patterns(100, 0.5, 1).get(13).unwrap();
    assert_eq!(p.label, 3);
    let bits: Vec<u32> = p.image.as_slice()[..4]
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(bits, GOLDEN_PATTERN_BITS);
    let sum: f64 = p.image.as_slice().iter().map(|&v| f64::from(v)).sum();
    assert_eq!(sum.to_bits(), GOLDEN_PATTERN_SUM_BITS);
    let n = Noise::new(NoiseConfig::default()).unwrap().get(5).unwrap();
    let bits: Vec<u32> = n.image.as_slice()[..4]
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(
        (n.label, bits),
        (GOLDEN_NOISE_LABEL, GOLDEN_NOISE_BITS.to_vec())
    );
    let (_, val) = train_val_split(patterns(20, 1.0, 0), 0.25, 3).unwrap();
    assert_eq!(val.indices(), GOLDEN_SPLIT_VAL);
}

const GOLDEN_EPOCH_ORDER: [usize; 10] = [6, 1, 7, 4, 0, 9, 2, 3, 5, 8];
const GOLDEN_PATTERN_BITS: [u32; 4] = [0x3f4ff3aa, 0x3fb06dca, 0x3ef892e7, 0x3eeeb4c7];
const GOLDEN_PATTERN_SUM_BITS: u64 = 0xc023110088c00000;
const GOLDEN_NOISE_LABEL: usize = 1;
const GOLDEN_NOISE_BITS: [u32; 4] = [0x3f1edcd5, 0x3e497e2f, 0x3f505fa0, 0x3f1ed793];
const GOLDEN_SPLIT_VAL: [usize; 5] = [0, 4, 6, 7, 11];

#[test]
fn materialised_copies_match() {
    let data = patterns(30, 0.7, 2);
    let copy = TensorDataset::materialize(&data).unwrap();
    assert_eq!(copy.len(), 30);
    assert_eq!(copy.images().shape(), &[30, 1, 16, 16]);
    for i in [0, 17, 29] {
        assert_eq!(copy.get(i).unwrap(), data.get(i).unwrap());
    }
}

#[test]
fn batches_from_several_threads_agree() {
    let data = patterns(64, 0.5, 2);
    let config = BatchConfig {
        batch_size: 16,
        ..Default::default()
    };
    let reference = epoch(&data, &config, 3);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| epoch(&data, &config, 3)))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), reference);
        }
    });
}
