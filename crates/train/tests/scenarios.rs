//! The scenario suite (ground truth by construction, docs/diagnostics.md,
//! "The scenario suite"):
//! every scenario of `gradlab_train::suite` with three seeds must get its
//! right verdict, vanishing and no-signal are never confused, and the
//! contrast the library exists for holds: the same over-parameterised
//! ResNet is `no-signal` on noise and `healthy` on patterns with a flat
//! depth profile in both, while a deep plain sigmoid net is `vanishing` on
//! the same patterns; deep plain BatchNorm networks are `degradation`
//! against their residual twins, which stay `healthy`.
//!
//! Live == replay: seed 0 of every scenario streams its history to a
//! `gradlab-history` file while it trains; the file read back holds the
//! same record and diagnoses to the same verdict, confidence, reasons and
//! indicators as the live run.
//!
//! Each scenario trains once per seed (shared between the tests of this
//! file) and takes one to eight seconds (D1-D4 about ten, with their depth
//! control); the whole file runs in about two minutes on two cores.

use std::sync::OnceLock;

use gradlab_diag::history_file::parse_history;
use gradlab_diag::{diagnose, Verdict};
use gradlab_train::suite::{confusion_matrix, Scenario, SuiteRun};

const SEEDS: [u64; 3] = [0, 1, 2];

/// A scenario's runs, and the history file seed 0 streamed while training.
struct Trained {
    runs: Vec<SuiteRun>,
    seed0_file: Vec<u8>,
}

static TRAINED: [OnceLock<Trained>; 14] = [const { OnceLock::new() }; 14];

/// The scenario's runs, trained on first use.
fn trained(s: Scenario) -> &'static Trained {
    let i = Scenario::ALL
        .iter()
        .position(|&x| x == s)
        .expect("a scenario of the suite");
    TRAINED[i].get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{s}.jsonl"));
        // The seeds train side by side: one small run keeps only part of
        // the cores busy, and each run's numbers do not depend on threads.
        let runs = std::thread::scope(|scope| {
            let handles: Vec<_> = SEEDS
                .iter()
                .map(|&seed| {
                    let path = &path;
                    scope.spawn(move || {
                        let run = if seed == 0 {
                            s.run_recorded(seed, path, &mut |_| {})
                        } else {
                            s.run(seed, &mut |_| {})
                        };
                        let run = run.unwrap_or_else(|e| panic!("{s} seed {seed}: {e}"));
                        SuiteRun {
                            scenario: s,
                            seed,
                            history: run.history,
                            diagnosis: run.diagnosis,
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a scenario run panicked"))
                .collect::<Vec<_>>()
        });
        let seed0_file = std::fs::read(&path).unwrap_or_else(|e| panic!("{s}: {e}"));
        Trained { runs, seed0_file }
    })
}

/// The scenario's runs, trained on first use.
fn runs(s: Scenario) -> &'static [SuiteRun] {
    &trained(s).runs
}

fn explain(r: &SuiteRun) -> String {
    let d = &r.diagnosis;
    format!(
        "{} seed {} ({}): got {} (confidence {:.2}), expected {}\n  reasons:\n    {}\n  indicators: {}",
        r.scenario,
        r.seed,
        r.scenario.description(),
        d.verdict,
        d.confidence,
        r.scenario.expected(),
        d.reasons.join("\n    "),
        serde_json::to_string(&d.indicators).unwrap_or_default()
    )
}

/// Every seed of `s` gets a right verdict.
fn check(s: Scenario) -> &'static [SuiteRun] {
    let runs = runs(s);
    for r in runs {
        assert!(r.is_right(), "{}", explain(r));
        assert!(!r.diagnosis.reasons.is_empty(), "{}", explain(r));
    }
    runs
}

fn close(value: Option<f64>, target: f64, tolerance: f64) -> bool {
    value.is_some_and(|v| (v - target).abs() <= tolerance * target.abs())
}

#[test]
fn s1_plain_sigmoid_mlp_vanishes_at_the_mean_field_rate() {
    // χ₁ = σ_w² E[φ'(z)²] with n σ_w² = 1/3 (PyTorch's default) and
    // φ' ≈ 1/4: κ = -½ ln(1/48) = 1.94 nats per layer.
    let theory = -0.5 * (1.0f64 / 48.0).ln();
    for r in check(Scenario::S1) {
        let i = &r.diagnosis.indicators;
        assert!(close(i.kappa, theory, 0.1), "{}", explain(r));
        assert!(
            i.forward_diversity.is_some_and(|z| z < 1e-3),
            "{}",
            explain(r)
        );
        assert!(i.probe_p_value.is_some_and(|p| p < 1e-3), "{}", explain(r));
    }
}

#[test]
fn s2_plain_sigmoid_cnn_without_batch_norm_vanishes() {
    for r in check(Scenario::S2) {
        let i = &r.diagnosis.indicators;
        assert!(i.kappa.is_some_and(|k| k > 1.0), "{}", explain(r));
    }
}

#[test]
fn s3_resnet_on_noise_has_no_signal() {
    for r in check(Scenario::S3) {
        let i = &r.diagnosis.indicators;
        assert!(i.probe_p_value.is_some_and(|p| p > 0.01), "{}", explain(r));
        assert!(
            i.shuffle_gap.is_some_and(|g| g.abs() < 0.02),
            "{}",
            explain(r)
        );
    }
}

#[test]
fn s4_resnet_on_shuffled_digits_has_no_signal() {
    for r in check(Scenario::S4) {
        let i = &r.diagnosis.indicators;
        assert!(i.probe_p_value.is_some_and(|p| p > 0.01), "{}", explain(r));
    }
}

#[test]
fn s5_resnet_on_patterns_is_healthy() {
    for r in check(Scenario::S5) {
        let i = &r.diagnosis.indicators;
        assert!(i.val_accuracy.is_some_and(|a| a > 0.9), "{}", explain(r));
    }
}

#[test]
fn s6_plain_relu_mlp_at_variance_six_explodes_at_the_mean_field_rate() {
    // χ₁ = σ_w² E[ReLU'(z)²] = 6 · ½ = 3: κ = -½ ln 3 = -0.55, measured
    // on the steps before the loss overflowed.
    let theory = -0.5 * 3f64.ln();
    for r in check(Scenario::S6) {
        let i = &r.diagnosis.indicators;
        assert!(close(i.kappa, theory, 0.1), "{}", explain(r));
    }
}

#[test]
fn s7_wide_mlp_on_five_percent_of_digits_overfits() {
    for r in check(Scenario::S7) {
        let i = &r.diagnosis.indicators;
        assert!(
            i.loss_to_chance.is_some_and(|rho| rho < 0.01),
            "{}",
            explain(r)
        );
    }
}

#[test]
fn c1_learning_rate_divided_by_1000_is_too_small() {
    for r in check(Scenario::C1) {
        let i = &r.diagnosis.indicators;
        assert!(i.update_ratio.is_some_and(|u| u < 1e-4), "{}", explain(r));
    }
}

#[test]
fn c2_biases_at_minus_two_kill_the_relus() {
    check(Scenario::C2);
}

#[test]
fn c3_deep_plain_cnn_with_batch_norm_does_not_vanish() {
    // Gradients do not shrink towards the input: if anything they grow a
    // little, as in BatchNorm plain networks at init (Yang et al. 2019).
    for r in check(Scenario::C3) {
        let i = &r.diagnosis.indicators;
        assert!(i.attenuation.is_some_and(|a| a < 1.0), "{}", explain(r));
    }
}

#[test]
fn d1_d3_deep_plain_networks_with_batch_norm_degrade_against_their_residual_twins() {
    for s in [Scenario::D1, Scenario::D3] {
        for r in check(s) {
            let i = &r.diagnosis.indicators;
            // Gradients flow (gate A passed) and the twin trains clearly better.
            assert!(
                i.attenuation.is_some_and(|a| a.abs() < 4.61),
                "{}",
                explain(r)
            );
            let (deep, twin) = (
                i.loss_to_chance.unwrap(),
                i.depth_control_loss_to_chance.unwrap(),
            );
            assert!(deep > twin, "{}", explain(r));
            assert!(
                r.diagnosis
                    .reasons
                    .iter()
                    .any(|t| t.contains(&format!("{twin:.3}"))),
                "the reasons quote the twin's loss: {}",
                explain(r)
            );
        }
    }
}

#[test]
fn d2_d4_residual_twins_stay_healthy_against_a_shallower_resnet() {
    for s in [Scenario::D2, Scenario::D4] {
        for r in check(s) {
            let i = &r.diagnosis.indicators;
            assert!(i.depth_control_loss_to_chance.is_some(), "{}", explain(r));
        }
    }
}

/// The contrast the whole project is about.
#[test]
fn the_same_resnet_is_no_signal_on_noise_and_healthy_on_patterns_where_a_sigmoid_net_vanishes() {
    // Trained in the reverse order of the per-scenario tests, so that two
    // test threads meet in the middle rather than wait for each other.
    let sigmoid = runs(Scenario::S1);
    let patterns = runs(Scenario::S5);
    let noise = runs(Scenario::S3);
    for ((n, p), s) in noise.iter().zip(patterns).zip(sigmoid) {
        assert_eq!(n.diagnosis.verdict, Verdict::NoSignal, "{}", explain(n));
        assert_eq!(p.diagnosis.verdict, Verdict::Healthy, "{}", explain(p));
        assert_eq!(s.diagnosis.verdict, Verdict::Vanishing, "{}", explain(s));
        // A flat depth profile: well under the ln 100 that counts as attenuated.
        for r in [n, p] {
            let a = r.diagnosis.indicators.attenuation;
            assert!(a.is_some_and(|a| a.abs() < 1.5), "{}", explain(r));
        }
        let a = s.diagnosis.indicators.attenuation;
        assert!(a.is_some_and(|a| a > 20.0), "{}", explain(s));
    }
}

#[test]
fn vanishing_and_no_signal_are_never_confused() {
    let mut results = Vec::new();
    for s in Scenario::ALL.into_iter().rev() {
        for r in runs(s) {
            results.push((r.scenario, r.diagnosis.verdict));
            let expected = s.expected();
            if expected.accepts(Verdict::Vanishing) {
                assert_ne!(r.diagnosis.verdict, Verdict::NoSignal, "{}", explain(r));
            }
            if expected.accepts(Verdict::NoSignal) {
                assert_ne!(r.diagnosis.verdict, Verdict::Vanishing, "{}", explain(r));
            }
        }
    }
    let right = results.iter().filter(|(s, v)| s.accepts(*v)).count();
    println!(
        "{right}/{} right\n{}",
        results.len(),
        confusion_matrix(&results)
    );
    assert_eq!(right, results.len(), "\n{}", confusion_matrix(&results));
}

#[test]
fn every_scenario_replays_from_its_history_file_to_the_same_diagnosis() {
    for scenario in Scenario::ALL {
        let t = trained(scenario);
        let live = &t.runs[0];
        assert_eq!(live.seed, 0);
        let name = format!("{scenario}.jsonl");
        let read =
            parse_history(&t.seed0_file, &name).unwrap_or_else(|e| panic!("{scenario}: {e}"));
        assert!(read.warnings.is_empty(), "{scenario}: {:?}", read.warnings);
        // Equal as JSON (NaN and a missing optional value both read as null).
        assert_eq!(
            serde_json::to_string(&read.history).unwrap(),
            serde_json::to_string(&live.history).unwrap(),
            "{scenario}: the history read back differs"
        );
        let replay = diagnose(&read.history).unwrap();
        let d = &live.diagnosis;
        assert_eq!(replay.verdict, d.verdict, "{scenario}");
        assert_eq!(
            replay.confidence.to_bits(),
            d.confidence.to_bits(),
            "{scenario}"
        );
        assert_eq!(replay.reasons, d.reasons, "{scenario}");
        assert_eq!(
            serde_json::to_string(&replay).unwrap(),
            serde_json::to_string(d).unwrap(),
            "{scenario}: the diagnosis JSON differs"
        );
    }
}
