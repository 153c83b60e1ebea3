//! Every indicator on hand-made inputs with known answers.

use gradlab_diag::activations::{forward_diversity, inactive_fraction};
use gradlab_diag::depth_profile::{depth_slope, mean_field_kappa};
use gradlab_diag::gradient_noise::{gradient_snr, mean_gradient_cosine, successive_cosine};
use gradlab_diag::probe::{data_probe, ProbeOptions};
use gradlab_diag::stats::{binomial_upper_tail, cosine, fit_line, median, rms};
use gradlab_diag::Activation;
use gradlab_tensor::{seeded_rng, Tensor};
use ndarray::Array2;
use proptest::prelude::*;
use rand::RngExt;

fn noise(n: usize, seed: u64) -> Vec<f32> {
    Tensor::<f32>::rand_normal(&[n], 0.0, 1.0, seed)
        .unwrap()
        .to_vec()
}

#[test]
fn identical_gradients_give_infinite_snr_and_cosine_one() {
    let g = noise(100, 1);
    let same = vec![g.clone(); 8];
    assert_eq!(gradient_snr(&same).unwrap(), f64::INFINITY);
    assert!((successive_cosine(&same).unwrap() - 1.0).abs() < 1e-12);
    assert!((mean_gradient_cosine(&same, &same).unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn independent_noise_gives_snr_near_zero_within_its_spread() {
    // For k batches of d-dimensional pure noise the bias-corrected SNR has
    // mean 0; its spread shrinks like sqrt(2/d).
    let (k, d) = (8, 2000);
    let snrs: Vec<f64> = (0..20)
        .map(|r| {
            let gs: Vec<Vec<f32>> = (0..k).map(|j| noise(d, 1000 * r + j as u64)).collect();
            gradient_snr(&gs).unwrap()
        })
        .collect();
    let mean = snrs.iter().sum::<f64>() / snrs.len() as f64;
    let sd_one = (2.0 / d as f64).sqrt();
    assert!(mean.abs() < 5.0 * sd_one, "mean SNR of pure noise {mean}");
    assert!(snrs.iter().all(|s| s.abs() < 0.1), "{snrs:?}");
    // A common signal as strong as the per-batch noise: ‖G‖² = tr Σ, SNR 1, cosine 1/2.
    let common = noise(d, 77);
    let gs: Vec<Vec<f32>> = (0..k)
        .map(|j| {
            noise(d, 500 + j as u64)
                .iter()
                .zip(&common)
                .map(|(n, c)| n + c)
                .collect()
        })
        .collect();
    let s = gradient_snr(&gs).unwrap();
    assert!(
        (s - 1.0).abs() < 0.2,
        "equal signal and noise variance: SNR {s}"
    );
    let c = successive_cosine(&gs).unwrap();
    assert!((c - 0.5).abs() < 0.1, "cosine of signal+noise pairs {c}");
}

#[test]
fn geometric_profile_gives_back_its_rate() {
    for &rate in &[1.94f64, 0.3, -0.55] {
        let n = 20;
        let a: Vec<f64> = (0..n)
            .map(|l| 1e-3 * (-rate * (n - 1 - l) as f64).exp())
            .collect();
        let fit = depth_slope(&a).unwrap();
        assert!((fit.kappa - rate).abs() < 1e-9, "{fit:?}");
        assert!((fit.r2 - 1.0).abs() < 1e-9);
        assert!((fit.attenuation - rate * (n - 1) as f64).abs() < 1e-6);
        assert_eq!(fit.zero_layers, 0);
    }
    // Zero layers are left out of the fit and counted.
    let fit = depth_slope(&[0.0, 0.0, 1e-4, 1e-3, 1e-2]).unwrap();
    assert_eq!((fit.zero_layers, fit.fitted), (2, 3));
    assert!((fit.kappa - 10f64.ln()).abs() < 1e-9);
    assert!(depth_slope(&[0.0, 1.0]).is_err());
    // Mean-field: sigmoid at PyTorch default init, sigma_w^2 = 1/3 and phi' ~ 1/4.
    assert!((mean_field_kappa(1.0 / 3.0 / 16.0) - 1.94).abs() < 0.01);
}

#[test]
fn activation_statistics() {
    // 4 examples x 3 units; unit 1 is dead (0 everywhere).
    let relu = [1.0, 0.0, 0.5, 0.0, 0.0, 2.0, 3.0, 0.0, 0.0, 0.2, 0.0, 1.0];
    assert!((inactive_fraction(&relu, 4, Activation::Relu).unwrap() - 1.0 / 3.0).abs() < 1e-12);
    let sig = [0.99999f32, 0.5, 0.999999, 0.4];
    assert_eq!(
        inactive_fraction(&sig, 2, Activation::Sigmoid).unwrap(),
        0.5
    );
    assert!(inactive_fraction(&sig, 3, Activation::Tanh).is_err());
    // Identical examples: no diversity. Zero-mean spread: full diversity.
    assert_eq!(forward_diversity(&[0.7, 0.2, 0.7, 0.2], 2).unwrap(), 0.0);
    assert!((forward_diversity(&[1.0, -1.0, -1.0, 1.0], 2).unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn statistics_helpers() {
    assert!((rms(&[3.0, 4.0]) - (12.5f64).sqrt()).abs() < 1e-12);
    assert_eq!(cosine(&[1.0, 0.0], &[0.0, 0.0]).unwrap(), None);
    assert!(cosine(&[1.0], &[1.0, 2.0]).is_err());
    let f = fit_line(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0]).unwrap();
    assert!(
        (f.slope - 2.0).abs() < 1e-12
            && (f.intercept - 1.0).abs() < 1e-12
            && (f.r2 - 1.0).abs() < 1e-12
    );
    assert!(fit_line(&[1.0, 1.0], &[0.0, 1.0]).is_err());
    assert_eq!(median(&[3.0, f64::NAN, 1.0, 2.0]), Some(2.0));
    // Binomial tails: P(X >= 3 | n=3, p=0.5) = 1/8; P(X >= 0) = 1; P(X >= 6 | 10, 0.5) = 386/1024.
    assert!((binomial_upper_tail(3, 3, 0.5).unwrap() - 0.125).abs() < 1e-12);
    assert_eq!(binomial_upper_tail(0, 10, 0.3).unwrap(), 1.0);
    assert!((binomial_upper_tail(6, 10, 0.5).unwrap() - 386.0 / 1024.0).abs() < 1e-12);
    assert!(binomial_upper_tail(11, 10, 0.5).is_err());
    assert!(binomial_upper_tail(1, 10, 1.5).is_err());
    // Large n stays finite and tiny far in the tail.
    let p = binomial_upper_tail(300, 1000, 0.1).unwrap();
    assert!(p > 0.0 && p < 1e-50, "{p}");
}

/// Two Gaussian classes `sep` apart along the first axis (or, with `xor`,
/// labelled by the sign of x0·x1, which no linear probe can see).
fn blobs(n: usize, d: usize, sep: f32, xor: bool, seed: u64) -> (Array2<f32>, Vec<usize>) {
    let mut rng = seeded_rng(seed);
    let mut x = Array2::<f32>::zeros((n, d));
    let mut y = vec![0; n];
    for i in 0..n {
        for j in 0..d {
            let u: f32 = rng.random::<f32>() * 2.0 - 1.0;
            x[[i, j]] = u;
        }
        y[i] = if xor {
            usize::from(x[[i, 0]] * x[[i, 1]] > 0.0)
        } else {
            let c = i % 2;
            x[[i, 0]] += if c == 1 { sep } else { 0.0 };
            c
        };
    }
    (x, y)
}

#[test]
fn probe_finds_linear_and_nonlinear_signal_and_none_in_noise() {
    let opts = ProbeOptions::default();
    let (tx, ty) = blobs(600, 10, 2.0, false, 1);
    let (vx, vy) = blobs(400, 10, 2.0, false, 2);
    let r = data_probe(tx.view(), &ty, vx.view(), &vy, 2, &opts).unwrap();
    assert!(r.linear_accuracy > 0.8 && r.beats_chance, "{r:?}");

    let (tx, ty) = blobs(800, 2, 0.0, true, 3);
    let (vx, vy) = blobs(400, 2, 0.0, true, 4);
    let r = data_probe(tx.view(), &ty, vx.view(), &vy, 2, &opts).unwrap();
    assert!(
        r.linear_accuracy < 0.65,
        "a linear probe cannot see XOR: {r:?}"
    );
    assert!(r.knn_accuracy > 0.85 && r.beats_chance, "{r:?}");

    // Pure noise with random labels: at chance on held-out data.
    let (tx, _) = blobs(600, 20, 0.0, false, 5);
    let (vx, _) = blobs(400, 20, 0.0, false, 6);
    let mut rng = seeded_rng(9);
    let ty: Vec<usize> = (0..600).map(|_| rng.random_range(0..4)).collect();
    let vy: Vec<usize> = (0..400).map(|_| rng.random_range(0..4)).collect();
    let r = data_probe(tx.view(), &ty, vx.view(), &vy, 4, &opts).unwrap();
    assert!(
        !r.beats_chance && r.accuracy < 0.25 + 3.0 * (0.25f64 * 0.75 / 400.0).sqrt(),
        "{r:?}"
    );
}

#[test]
fn probe_rejects_bad_input() {
    let x = Array2::<f32>::zeros((4, 3));
    let opts = ProbeOptions::default();
    assert!(data_probe(x.view(), &[0, 1, 0], x.view(), &[0, 1, 0, 1], 2, &opts).is_err());
    assert!(data_probe(x.view(), &[0, 1, 0, 5], x.view(), &[0, 1, 0, 1], 2, &opts).is_err());
    let y = Array2::<f32>::zeros((4, 2));
    assert!(data_probe(x.view(), &[0, 1, 0, 1], y.view(), &[0, 1, 0, 1], 2, &opts).is_err());
    let empty = Array2::<f32>::zeros((0, 3));
    assert!(data_probe(empty.view(), &[], x.view(), &[0, 1, 0, 1], 2, &opts).is_err());
}

proptest! {
    /// Ragged or empty gradient sets are errors, never panics.
    #[test]
    fn gradient_statistics_reject_bad_input(lens in prop::collection::vec(0usize..5, 0..5)) {
        let gs: Vec<Vec<f32>> = lens.iter().map(|&l| vec![1.0; l]).collect();
        let ragged = lens.windows(2).any(|w| w[0] != w[1]);
        if ragged || lens.len() < 2 {
            prop_assert!(gradient_snr(&gs).is_err());
        }
        if ragged {
            prop_assert!(successive_cosine(&gs).is_err());
        }
        let _ = mean_gradient_cosine(&gs, &gs);
    }
}
