//! Sizes that cannot fit in memory are typed errors saying how much memory
//! they would need, never an abort from a failed allocation; a classifier's
//! data needs at least 2 classes.

use gradlab_data::{
    memory_limit, train_val_split, BatchConfig, Batches, DataError, Dataset, Example, Noise,
    NoiseConfig, Patterns, PatternsConfig, Subset,
};
use proptest::prelude::*;

/// Sizes no machine this runs on has the memory for (at least 2^40 of
/// anything, and at least 4 bytes per thing).
fn huge() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(usize::MAX),
        Just(100_000_000_000usize),
        (1usize << 40)..=usize::MAX,
    ]
}

fn assert_too_big<T: std::fmt::Debug>(result: Result<T, DataError>, what: &str) {
    match result {
        Err(ref e @ DataError::TooMuchMemory { needed, limit, .. }) => {
            assert!(needed > u128::from(limit), "{what}: {e}");
            let text = e.to_string();
            assert!(text.contains("bytes"), "{what}: {text}");
        }
        other => panic!("{what}: expected TooMuchMemory, got {other:?}"),
    }
}

#[test]
fn the_limit_is_the_machine_memory_or_64_gib() {
    let limit = memory_limit();
    assert!(limit > 0);
    if std::fs::read_to_string("/proc/meminfo").is_err() {
        assert_eq!(limit, 64 << 30);
    }
}

#[test]
fn a_hundred_billion_patterns_is_an_error_not_an_abort() {
    let config = PatternsConfig {
        len: 100_000_000_000,
        ..Default::default()
    };
    let err = Patterns::new(config).unwrap_err();
    assert_too_big(Err::<(), _>(err), "len 1e11");
    let text = Patterns::new(config).unwrap_err().to_string();
    assert!(text.contains("100000000000"), "{text}");

    let config = PatternsConfig {
        height: 100_000,
        width: 100_000,
        ..Default::default()
    };
    assert_too_big(Patterns::new(config), "100000x100000 images");
    let config = NoiseConfig {
        shape: [3, 100_000, 100_000],
        ..Default::default()
    };
    assert_too_big(Noise::new(config), "noise 3x100000x100000");
}

#[test]
fn reasonable_sizes_are_still_accepted() {
    Patterns::new(PatternsConfig {
        len: 10_000_000,
        channels: 3,
        height: 64,
        width: 64,
        ..Default::default()
    })
    .unwrap();
    let noise = Noise::new(NoiseConfig {
        len: 10_000_000,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(noise.get(9_999_999).unwrap().image.shape(), &[1, 16, 16]);
}

#[test]
fn a_classifier_needs_at_least_two_classes() {
    for k in [0, 1] {
        let err = Patterns::new(PatternsConfig {
            num_classes: k,
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("a classifier needs at least 2 classes"),
            "{err}"
        );
        let err = Noise::new(NoiseConfig {
            num_classes: k,
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("a classifier needs at least 2 classes"),
            "{err}"
        );
    }
    Patterns::new(PatternsConfig {
        num_classes: 2,
        ..Default::default()
    })
    .unwrap();
}

/// A dataset claiming `len` examples, as any implementation may.
#[derive(Debug)]
struct Claims {
    len: usize,
    shape: [usize; 3],
}

impl Dataset for Claims {
    fn len(&self) -> usize {
        self.len
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn get(&self, index: usize) -> gradlab_data::Result<Example> {
        Ok(Example {
            image: gradlab_tensor::Tensor::zeros(&[1, 1, 1]),
            label: index % 2,
        })
    }
    fn label(&self, index: usize) -> gradlab_data::Result<usize> {
        Ok(index % 2)
    }
    fn name(&self) -> String {
        "claims".into()
    }
}

#[test]
fn orders_and_batches_of_a_huge_dataset_are_errors() {
    let huge = Claims {
        len: 1 << 44,
        shape: [1, 1, 1],
    };
    for shuffle in [true, false] {
        let config = BatchConfig {
            batch_size: 4,
            shuffle,
            ..Default::default()
        };
        assert_too_big(Batches::new(&huge, &config, 0).map(|_| ()), "batches");
    }
    assert_too_big(train_val_split(huge, 0.2, 0).map(|_| ()), "split");
    let huge = Claims {
        len: 1 << 44,
        shape: [1, 1, 1],
    };
    assert_too_big(Subset::fraction(huge, 0.5, 0).map(|_| ()), "subset");

    let wide = Claims {
        len: 4,
        shape: [1 << 20, 1 << 20, 1 << 10],
    };
    assert_too_big(
        gradlab_data::Batch::from_indices(&wide, &[0, 1]).map(|_| ()),
        "batch of huge images",
    );
    assert_too_big(
        gradlab_data::TensorDataset::materialize(&wide).map(|_| ()),
        "materialize",
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any huge value in any size field of a synthetic data configuration is
    /// an error saying how much memory it needs, never an abort.
    #[test]
    fn huge_patterns_sizes_are_errors(field in 0usize..5, value in huge()) {
        let mut config = PatternsConfig::default();
        match field {
            0 => config.len = value,
            1 => config.num_classes = value,
            2 => config.channels = value,
            3 => config.height = value,
            _ => config.width = value,
        }
        assert_too_big(Patterns::new(config), &format!("{config:?}"));
    }

    #[test]
    fn huge_noise_sizes_are_errors(field in 0usize..5, value in huge()) {
        let mut config = NoiseConfig::default();
        match field {
            0 => config.len = value,
            1 => config.num_classes = value,
            2 => config.shape[0] = value,
            3 => config.shape[1] = value,
            _ => config.shape[2] = value,
        }
        assert_too_big(Noise::new(config), &format!("{config:?}"));
    }
}
