//! The signal each dataset holds by construction, measured with a
//! nearest-class-mean classifier fitted on training examples and scored on
//! held-out ones. Chance-level assertions use the binomial spread of the
//! held-out accuracy: `|acc - 1/K| <= 4 * sqrt(p (1 - p) / n)`.

use gradlab_data::{
    train_val_split, CorruptedLabels, Dataset, Digits, Noise, NoiseConfig, Patterns,
    PatternsConfig, ShuffledLabels, Subset,
};

/// Class means of `train` (flattened images), in f64.
fn class_means<D: Dataset + ?Sized>(train: &D) -> Vec<Vec<f64>> {
    let [c, h, w] = train.input_shape();
    let k = train.num_classes();
    let mut sums = vec![vec![0.0f64; c * h * w]; k];
    let mut counts = vec![0usize; k];
    for i in 0..train.len() {
        let ex = train.get(i).unwrap();
        counts[ex.label] += 1;
        for (s, &v) in sums[ex.label].iter_mut().zip(ex.image.as_slice()) {
            *s += f64::from(v);
        }
    }
    for (sum, &n) in sums.iter_mut().zip(&counts) {
        assert!(n > 0, "a class has no training example");
        for s in sum {
            *s /= n as f64;
        }
    }
    sums
}

/// Held-out accuracy of the nearest-class-mean classifier.
fn ncm_accuracy<A: Dataset + ?Sized, B: Dataset + ?Sized>(train: &A, test: &B) -> f64 {
    let means = class_means(train);
    let mut correct = 0usize;
    for i in 0..test.len() {
        let ex = test.get(i).unwrap();
        let x = ex.image.as_slice();
        let predicted = means
            .iter()
            .map(|m| {
                m.iter()
                    .zip(x)
                    .map(|(a, &b)| (a - f64::from(b)).powi(2))
                    .sum::<f64>()
            })
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
            .0;
        correct += usize::from(predicted == ex.label);
    }
    correct as f64 / test.len() as f64
}

/// Four binomial standard deviations of an accuracy around `p` on `n` trials.
fn margin(p: f64, n: usize) -> f64 {
    4.0 * (p * (1.0 - p) / n as f64).sqrt()
}

fn patterns(signal: f64, seed: u64, len: usize) -> Patterns {
    Patterns::new(PatternsConfig {
        len,
        signal,
        seed,
        ..Default::default()
    })
    .unwrap()
}

const N_TRAIN: usize = 1000;
const N_TEST: usize = 2000;

#[test]
fn clean_patterns_are_separable_by_class_means() {
    // Held-out examples come from another seed: the classes do not depend
    // on it, only the jitter and noise do.
    let acc = ncm_accuracy(&patterns(1.0, 1, N_TRAIN), &patterns(1.0, 2, N_TEST));
    println!("nearest-class-mean accuracy, signal 1, jitter 0.1: {acc:.4}");
    assert!(acc >= 0.7, "signal 1: accuracy {acc}");
    assert!(acc > 0.1 + margin(0.1, N_TEST));
    // Without jitter every class is one fixed image: perfectly separable.
    let still = |seed, len| {
        Patterns::new(PatternsConfig {
            len,
            jitter: 0.0,
            seed,
            ..Default::default()
        })
        .unwrap()
    };
    let acc = ncm_accuracy(&still(1, 100), &still(2, 500));
    println!("nearest-class-mean accuracy, signal 1, jitter 0: {acc:.4}");
    assert_eq!(acc, 1.0);
}

#[test]
fn signal_zero_is_at_chance_on_held_out_data() {
    let acc = ncm_accuracy(&patterns(0.0, 1, N_TRAIN), &patterns(0.0, 2, N_TEST));
    println!("nearest-class-mean accuracy, signal 0: {acc:.4}");
    assert!(
        (acc - 0.1).abs() <= margin(0.1, N_TEST),
        "signal 0: accuracy {acc}"
    );
}

#[test]
fn accuracy_grows_with_signal() {
    let mut previous = 0.0;
    for signal in [0.02, 0.05, 0.1, 0.3] {
        let acc = ncm_accuracy(&patterns(signal, 3, N_TRAIN), &patterns(signal, 4, N_TEST));
        println!("nearest-class-mean accuracy, signal {signal}: {acc:.4}");
        assert!(
            acc + margin(0.5, N_TEST) >= previous,
            "signal {signal}: {acc} < {previous}"
        );
        previous = acc;
    }
    assert!(previous > 0.1 + margin(0.1, N_TEST));
}

#[test]
fn colour_non_square_patterns_carry_signal() {
    let make = |signal, seed, len| {
        Patterns::new(PatternsConfig {
            len,
            num_classes: 4,
            channels: 3,
            height: 12,
            width: 20,
            signal,
            jitter: 0.2,
            seed,
        })
        .unwrap()
    };
    let acc = ncm_accuracy(&make(1.0, 1, 400), &make(1.0, 2, 800));
    println!("4 classes, 3x12x20, jitter 0.2, signal 1: {acc:.4}");
    assert!(acc > 0.25 + margin(0.25, 800));
    let acc = ncm_accuracy(&make(0.0, 1, 400), &make(0.0, 2, 800));
    assert!((acc - 0.25).abs() <= margin(0.25, 800), "signal 0: {acc}");
}

#[test]
fn noise_is_at_chance() {
    let make = |seed, len| {
        Noise::new(NoiseConfig {
            len,
            num_classes: 10,
            shape: [1, 16, 16],
            seed,
        })
        .unwrap()
    };
    let acc = ncm_accuracy(&make(1, N_TRAIN), &make(2, N_TEST));
    println!("nearest-class-mean accuracy, noise: {acc:.4}");
    assert!((acc - 0.1).abs() <= margin(0.1, N_TEST), "noise: {acc}");
}

#[test]
fn shuffled_and_random_labels_are_unrelated_to_the_true_ones() {
    // Each example's new label agrees with its true label with probability
    // 1/K, as for labels drawn independently of the image.
    let n = 5000;
    let data = patterns(1.0, 1, n);
    let shuffled = ShuffledLabels::new(&data, 5);
    let random = CorruptedLabels::new(&data, 1.0, 5).unwrap();
    for (name, relabelled) in [
        ("shuffled", &shuffled as &dyn Dataset),
        ("random", &random as &dyn Dataset),
    ] {
        let agree = (0..n)
            .filter(|&i| relabelled.label(i).unwrap() == data.label(i).unwrap())
            .count() as f64
            / n as f64;
        println!("{name} labels agreeing with the true ones: {agree:.4}");
        assert!((agree - 0.1).abs() <= margin(0.1, n), "{name}: {agree}");
    }
}

#[test]
fn digits_hold_real_signal() {
    let (train, val) = train_val_split(Digits::new(Default::default()).unwrap(), 0.3, 0).unwrap();
    let acc = ncm_accuracy(&train, &val);
    println!("nearest-class-mean accuracy, digits 8x8: {acc:.4}");
    assert!(acc > 0.85, "digits: {acc}");
    // A tenth of the training set still carries it.
    let small = Subset::fraction(&train, 0.1, 1).unwrap();
    let acc_small = ncm_accuracy(&small, &val);
    println!("nearest-class-mean accuracy, digits with 10 % of training: {acc_small:.4}");
    assert!(acc_small > 0.1 + margin(0.1, val.len()));
}
