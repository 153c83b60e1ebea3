//! The depth slope κ of a freshly initialised plain network against the
//! mean-field prediction κ = -½ ln χ₁, χ₁ = σ_w² E[φ'(z)²] (Schoenholz et
//! al. 2017), where σ_w² = n Var[W] (n the units a gradient fans back from)
//! and z a hidden pre-activation.
//!
//! χ₁ is computed twice: from theory for PyTorch's default initialisation
//! (n Var[W] = 1/3; for the sigmoid φ'(z) ≈ φ'(0) = 1/4, so χ₁ = 1/48 and
//! κ = 1.94; for ReLU at variance 6/fan_in, χ₁ = 6 · ½ = 3 and κ = -0.55),
//! and measured on the network itself: n · mean(W²) of each hidden weight
//! matrix times the mean of φ'(z)² over the pre-activations of one batch,
//! averaged over layers in log space. The measured χ₁ accounts for the
//! weights actually drawn and for pre-activations that are not exactly 0
//! (sigmoid: E[φ'(z)²] is a little below 1/16); κ must match it within 10%,
//! and the theory value within 10% too.

use gradlab_arch::{PlainMlp, PlainMlpConfig};
use gradlab_diag::depth_profile::{depth_slope, mean_field_kappa};
use gradlab_diag::stats::rms;
use gradlab_nn::{cross_entropy, ActivationKind, Ctx, HasParams, Module, Scope};
use gradlab_tensor::Tensor;

const DEPTH: usize = 20;
const WIDTH: usize = 128;
const BATCH: usize = 256;

struct Measured {
    /// κ fitted to the per-example activation-gradient RMS of the hidden layers.
    kappa: f64,
    r2: f64,
    /// χ₁ from the network's own weights and pre-activations (geometric mean over layers).
    chi1: f64,
}

fn measure(activation: ActivationKind, gain: f64, seed: u64) -> Measured {
    let mut cfg = PlainMlpConfig::new(64, 10, DEPTH, WIDTH, activation);
    cfg.stack.gain = gain;
    let mut net = PlainMlp::<f32>::new(&Scope::new(seed), &cfg).unwrap();
    let mut cx = Ctx::new();
    let x = cx.input(Tensor::rand_normal(&[BATCH, 1, 8, 8], 0.0, 1.0, seed + 100).unwrap());
    let labels: Vec<usize> = (0..BATCH).map(|i| i % 10).collect();
    let logits = net.forward(&mut cx, x).unwrap();
    let loss = cross_entropy(&mut cx, logits, &labels, &Default::default()).unwrap();
    let (_, taps) = cx.backward_with_taps(loss).unwrap();

    // Per-example activation-gradient RMS at each hidden layer's output.
    let profile: Vec<f64> = (1..DEPTH)
        .map(|l| {
            let var = cx.tapped(&format!("layer{l}")).unwrap();
            rms(taps.get(var).unwrap().as_slice()) * BATCH as f64
        })
        .collect();
    let fit = depth_slope(&profile).unwrap();

    // χ₁ of the step from layer l's output back to layer l-1's, for the
    // square hidden layers l = 2 .. DEPTH-1: n_out mean(W_l²) E[φ'(z_l)²].
    let mut weights = std::collections::HashMap::new();
    net.visit_params(&mut |p| {
        weights.insert(p.name().to_string(), p.value().to_vec());
    });
    let dphi: fn(f64) -> f64 = match activation {
        ActivationKind::Sigmoid => |z| {
            let s = 1.0 / (1.0 + (-z).exp());
            s * (1.0 - s)
        },
        ActivationKind::Relu => |z| if z > 0.0 { 1.0 } else { 0.0 },
        _ => unreachable!("sigmoid and ReLU only"),
    };
    let mut ln_chi = 0.0;
    for l in 2..DEPTH {
        let w = &weights[&format!("layer{l}.fc.weight")];
        let sigma_w2 =
            WIDTH as f64 * w.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / w.len() as f64;
        let z = cx
            .value(cx.tapped(&format!("layer{l}.fc")).unwrap())
            .unwrap();
        let e_dphi2 = z
            .as_slice()
            .iter()
            .map(|&v| dphi(v as f64).powi(2))
            .sum::<f64>()
            / z.len() as f64;
        ln_chi += (sigma_w2 * e_dphi2).ln();
    }
    Measured {
        kappa: fit.kappa,
        r2: fit.r2,
        chi1: (ln_chi / (DEPTH - 2) as f64).exp(),
    }
}

fn within(value: f64, target: f64, relative: f64) -> bool {
    (value - target).abs() <= relative * target.abs()
}

#[test]
fn sigmoid_mlp_at_default_init_attenuates_at_the_mean_field_rate() {
    let theory = mean_field_kappa(1.0 / 3.0 / 16.0);
    assert!((theory - 1.94).abs() < 0.01);
    for seed in 0..3 {
        let m = measure(ActivationKind::Sigmoid, 1.0, seed);
        let predicted = mean_field_kappa(m.chi1);
        println!(
            "seed {seed}: κ {:.3} (R² {:.4}), measured χ₁ {:.5} -> {predicted:.3}, theory {theory:.3}",
            m.kappa, m.r2, m.chi1
        );
        assert!(m.r2 > 0.99, "seed {seed}: R² {}", m.r2);
        assert!(
            within(m.kappa, predicted, 0.1),
            "seed {seed}: κ {:.3} against -½ ln χ₁ = {predicted:.3} (measured χ₁ {:.4})",
            m.kappa,
            m.chi1
        );
        assert!(
            within(m.kappa, theory, 0.1),
            "seed {seed}: κ {:.3} against the theory value {theory:.3}",
            m.kappa
        );
        // Pre-activations spread a little around 0, where φ' is largest: χ₁ just under 1/48.
        assert!(m.chi1 < 1.0 / 48.0 && m.chi1 > 0.8 / 48.0, "χ₁ {}", m.chi1);
    }
}

#[test]
fn relu_mlp_at_variance_six_over_fan_in_grows_at_the_mean_field_rate() {
    // PyTorch's default variance is 1/(3 fan_in); gain √18 makes it 6/fan_in.
    let theory = mean_field_kappa(3.0);
    for seed in 0..3 {
        let m = measure(ActivationKind::Relu, 18f64.sqrt(), seed);
        let predicted = mean_field_kappa(m.chi1);
        println!(
            "seed {seed}: κ {:.3} (R² {:.4}), measured χ₁ {:.5} -> {predicted:.3}, theory {theory:.3}",
            m.kappa, m.r2, m.chi1
        );
        assert!(m.r2 > 0.99, "seed {seed}: R² {}", m.r2);
        assert!(
            within(m.kappa, predicted, 0.1),
            "seed {seed}: κ {:.3} against -½ ln χ₁ = {predicted:.3} (measured χ₁ {:.3})",
            m.kappa,
            m.chi1
        );
        assert!(
            within(m.kappa, theory, 0.1),
            "seed {seed}: κ {:.3} against the theory value {theory:.3}",
            m.kappa
        );
    }
}
