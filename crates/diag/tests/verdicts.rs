//! The decision procedure on hand-made indicator sets: each gate, the
//! evidence it quotes, and the inconclusive fallback.

use gradlab_diag::{decide, Indicators, Thresholds, Verdict};

fn healthy_flow() -> Indicators {
    Indicators {
        kappa: Some(-0.05),
        kappa_r2: Some(0.3),
        attenuation: Some(-0.9),
        kappa_param: Some(0.01),
        ..Default::default()
    }
}

#[test]
fn vanishing_is_decided_by_the_depth_slope_and_quotes_it() {
    let ind = Indicators {
        kappa: Some(1.94),
        kappa_r2: Some(0.99),
        attenuation: Some(1.94 * 19.0),
        loss_to_chance: Some(1.0),
        loss_drop: Some(0.0),
        probe_accuracy: Some(0.9),
        probe_p_value: Some(1e-40),
        chance_accuracy: Some(0.1),
        forward_diversity: Some(1e-20),
        ..Default::default()
    };
    let d = decide(&ind, &Thresholds::default());
    assert_eq!(d.verdict, Verdict::Vanishing);
    assert!(d.confidence > 0.9, "{d:?}");
    let text = d.reasons.join(" | ");
    assert!(
        text.contains("1.94") && text.contains("R² = 0.99") && text.contains("4.61"),
        "{text}"
    );
    assert!(text.contains("collapses"), "{text}");
    assert!(!d.actions.is_empty());
}

#[test]
fn exploding_by_slope_and_by_numerics() {
    let ind = Indicators {
        kappa: Some(-0.55),
        kappa_r2: Some(1.0),
        attenuation: Some(-0.55 * 19.0),
        kappa_param: Some(0.04),
        ..Default::default()
    };
    let d = decide(&ind, &Thresholds::default());
    assert_eq!(d.verdict, Verdict::Exploding);
    assert!(
        d.reasons.join(" ").contains("per-parameter plots can hide"),
        "{:?}",
        d.reasons
    );
    let nan = Indicators {
        non_finite: true,
        ..Default::default()
    };
    assert_eq!(
        decide(&nan, &Thresholds::default()).verdict,
        Verdict::Exploding
    );
}

#[test]
fn dead_units_come_before_vanishing() {
    let ind = Indicators {
        dead_max: Some(0.92),
        kappa: Some(3.0),
        kappa_r2: Some(0.9),
        attenuation: Some(30.0),
        ..Default::default()
    };
    assert_eq!(
        decide(&ind, &Thresholds::default()).verdict,
        Verdict::DeadUnits
    );
}

#[test]
fn a_stall_with_healthy_flow_and_no_signal_in_the_data_is_no_signal() {
    let ind = Indicators {
        loss_to_chance: Some(1.0),
        loss_drop: Some(0.003),
        probe_accuracy: Some(0.11),
        probe_p_value: Some(0.4),
        chance_accuracy: Some(0.1),
        shuffle_gap: Some(0.001),
        snr: Some(0.02),
        cos_successive: Some(0.05),
        ..healthy_flow()
    };
    let d = decide(&ind, &Thresholds::default());
    assert_eq!(d.verdict, Verdict::NoSignal, "{d:?}");
    let text = d.reasons.join(" | ");
    assert!(
        text.contains("gradient flow is fine")
            && text.contains("probe")
            && text.contains("shuffled"),
        "{text}"
    );
}

#[test]
fn a_stall_on_data_with_signal_is_lr_or_model() {
    let base = Indicators {
        loss_to_chance: Some(0.99),
        loss_drop: Some(0.001),
        probe_accuracy: Some(0.9),
        probe_p_value: Some(1e-50),
        chance_accuracy: Some(0.1),
        shuffle_gap: Some(0.0),
        ..healthy_flow()
    };
    let tiny = Indicators {
        update_ratio: Some(2e-7),
        cos_successive: Some(0.7),
        ..base.clone()
    };
    assert_eq!(
        decide(&tiny, &Thresholds::default()).verdict,
        Verdict::LrTooSmall
    );
    let normal = Indicators {
        update_ratio: Some(1e-3),
        cos_successive: Some(0.05),
        ..base.clone()
    };
    assert_eq!(
        decide(&normal, &Thresholds::default()).verdict,
        Verdict::ModelCannotExtract
    );
    let learning = Indicators {
        shuffle_gap: Some(0.2),
        ..base
    };
    assert_eq!(
        decide(&learning, &Thresholds::default()).verdict,
        Verdict::SlowButLearning
    );
}

#[test]
fn generalisation_gate_separates_healthy_overfitting_and_memorising() {
    let healthy = Indicators {
        loss_to_chance: Some(0.1),
        loss_drop: Some(0.5),
        val_loss_to_chance: Some(0.15),
        train_val_gap: Some(0.05),
        val_loss_rising: Some(0),
        val_accuracy: Some(0.95),
        chance_accuracy: Some(0.1),
        val_chance_band: Some(0.05),
        probe_p_value: Some(1e-30),
        ..healthy_flow()
    };
    assert_eq!(
        decide(&healthy, &Thresholds::default()).verdict,
        Verdict::Healthy
    );
    let overfit = Indicators {
        loss_to_chance: Some(0.01),
        val_loss_to_chance: Some(0.6),
        train_val_gap: Some(0.59),
        val_loss_rising: Some(5),
        val_loss_drop: Some(-0.05),
        val_accuracy: Some(0.7),
        ..healthy.clone()
    };
    assert_eq!(
        decide(&overfit, &Thresholds::default()).verdict,
        Verdict::Overfitting
    );
    let memorising = Indicators {
        val_accuracy: Some(0.11),
        probe_p_value: Some(0.5),
        ..overfit
    };
    assert_eq!(
        decide(&memorising, &Thresholds::default()).verdict,
        Verdict::NoSignal
    );
}

#[test]
fn thin_evidence_is_inconclusive_with_two_candidates() {
    let ind = Indicators {
        loss_to_chance: Some(1.0),
        loss_drop: Some(0.0),
        ..healthy_flow()
    };
    let d = decide(&ind, &Thresholds::default());
    assert_eq!(d.verdict, Verdict::Inconclusive);
    assert_eq!(d.candidates.len(), 2);
}

#[test]
fn indicators_and_decisions_round_trip_through_json() {
    let ind = Indicators {
        kappa: Some(1.5),
        shuffle_gap: None,
        non_finite: false,
        ..healthy_flow()
    };
    let json = serde_json::to_string(&ind).unwrap();
    assert!(json.contains("\"shuffle_gap\":null"), "{json}");
    let back: Indicators = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ind);
    let d = decide(&ind, &Thresholds::default());
    let json = serde_json::to_string(&d).unwrap();
    let back: gradlab_diag::Decision = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
    assert_eq!(
        serde_json::to_string(&Verdict::NoSignal).unwrap(),
        "\"no-signal\""
    );
}

/// A run on noise that memorises a little: its loss sits at the edge of the
/// near-chance band, and either side of the edge leads to `no-signal`.
fn memorising_noise(rho: f64) -> Indicators {
    Indicators {
        loss_to_chance: Some(rho),
        loss_drop: Some(0.05),
        probe_accuracy: Some(0.1),
        probe_p_value: Some(1.0),
        chance_accuracy: Some(0.11),
        shuffle_gap: Some(-0.005),
        val_accuracy: Some(0.1),
        val_chance_band: Some(0.04),
        train_val_gap: Some(0.25),
        val_loss_drop: Some(-0.03),
        update_ratio: Some(8e-3),
        ..healthy_flow()
    }
}

#[test]
fn a_comparison_that_cannot_change_the_verdict_does_not_lower_confidence() {
    for rho in [0.899, 0.901] {
        let d = decide(&memorising_noise(rho), &Thresholds::default());
        assert_eq!(d.verdict, Verdict::NoSignal, "{d:?}");
        assert!(d.confidence > 0.9, "ρ {rho}: {d:?}");
    }
    // A comparison that does decide lowers it and names the runner-up.
    let near = Indicators {
        shuffle_gap: Some(0.015),
        ..memorising_noise(0.95)
    };
    let d = decide(&near, &Thresholds::default());
    assert_eq!(d.verdict, Verdict::NoSignal);
    assert!((d.confidence - 0.25).abs() < 1e-9, "{d:?}");
    let text = d.reasons.join(" | ");
    assert!(
        text.contains("slow-but-learning") && text.contains("progress gap"),
        "{text}"
    );
}

#[test]
fn tiny_steps_explain_slow_learning_near_chance() {
    let ind = Indicators {
        loss_to_chance: Some(0.99),
        loss_drop: Some(0.035),
        shuffle_gap: Some(0.04),
        probe_accuracy: Some(0.97),
        probe_p_value: Some(1e-100),
        chance_accuracy: Some(0.1),
        update_ratio: Some(3e-5),
        cos_successive: Some(0.35),
        ..healthy_flow()
    };
    let d = decide(&ind, &Thresholds::default());
    assert_eq!(d.verdict, Verdict::LrTooSmall, "{d:?}");
    assert!(d.reasons.join(" ").contains("3.0e-5"), "{:?}", d.reasons);
    // With steps of normal size the same run is learning slowly.
    let normal = Indicators {
        update_ratio: Some(2e-3),
        ..ind.clone()
    };
    assert_eq!(
        decide(&normal, &Thresholds::default()).verdict,
        Verdict::SlowButLearning
    );
    // Without the control, a falling loss on data with signal is slow learning, capped.
    let uncontrolled = Indicators {
        shuffle_gap: None,
        ..normal
    };
    let d = decide(&uncontrolled, &Thresholds::default());
    assert_eq!(d.verdict, Verdict::SlowButLearning);
    assert!(d.confidence <= 0.7, "{d:?}");
}

#[test]
fn overfitting_needs_a_gap_and_a_held_out_loss_that_stopped_improving() {
    let fitted = Indicators {
        loss_to_chance: Some(2e-4),
        loss_drop: Some(0.3),
        train_val_gap: Some(0.28),
        val_accuracy: Some(0.85),
        chance_accuracy: Some(0.14),
        val_chance_band: Some(0.05),
        probe_p_value: Some(1e-150),
        ..healthy_flow()
    };
    for (drop, expected) in [
        (-0.02, Verdict::Overfitting),
        (0.01, Verdict::Overfitting),
        (0.2, Verdict::Healthy),
    ] {
        let ind = Indicators {
            val_loss_drop: Some(drop),
            ..fitted.clone()
        };
        assert_eq!(
            decide(&ind, &Thresholds::default()).verdict,
            expected,
            "held-out drop {drop}"
        );
    }
    // Held-out accuracy below chance is no evidence of signal: memorising.
    let below = Indicators {
        val_accuracy: Some(0.05),
        probe_p_value: Some(0.9),
        val_loss_drop: Some(-0.1),
        ..fitted
    };
    assert_eq!(
        decide(&below, &Thresholds::default()).verdict,
        Verdict::NoSignal
    );
}

#[test]
fn a_run_that_blew_up_quotes_the_step_and_the_profile_before_it() {
    let ind = Indicators {
        non_finite: true,
        first_non_finite_step: Some(1),
        loss_to_chance: Some(4.2e4),
        kappa: Some(-0.57),
        kappa_r2: Some(1.0),
        attenuation: Some(-10.3),
        ..Default::default()
    };
    let d = decide(&ind, &Thresholds::default());
    assert_eq!(d.verdict, Verdict::Exploding);
    let text = d.reasons.join(" | ");
    assert!(
        text.contains("at step 1") && text.contains("4.200e4") && text.contains("-0.57"),
        "{text}"
    );
}

#[test]
fn the_shuffle_control_is_quoted_whichever_gate_decides() {
    let learning = Indicators {
        loss_to_chance: Some(0.3),
        loss_drop: Some(0.4),
        train_val_gap: Some(0.02),
        shuffle_gap: Some(0.45),
        ..healthy_flow()
    };
    let d = decide(&learning, &Thresholds::default());
    assert_eq!(d.verdict, Verdict::Healthy);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("label-shuffle control") && r.contains("π = 0.450")),
        "{:#?}",
        d.reasons
    );
    // Gate C quotes it once, in its own words.
    let stalled = Indicators {
        loss_to_chance: Some(0.99),
        loss_drop: Some(0.001),
        shuffle_gap: Some(0.001),
        probe_p_value: Some(0.5),
        probe_accuracy: Some(0.1),
        ..healthy_flow()
    };
    let d = decide(&stalled, &Thresholds::default());
    assert_eq!(d.reasons.iter().filter(|r| r.contains("π =")).count(), 1);
}

#[test]
fn a_rising_loss_is_said_to_rise_and_a_zero_diversity_is_not_printed_as_0e0() {
    let stalled = Indicators {
        loss_to_chance: Some(0.99),
        loss_drop: Some(-0.0014),
        probe_p_value: Some(0.5),
        probe_accuracy: Some(0.1),
        ..healthy_flow()
    };
    let reasons = decide(&stalled, &Thresholds::default()).reasons.join("\n");
    assert!(reasons.contains("rose 0.14% over the window"), "{reasons}");
    assert!(!reasons.contains("fell -"), "{reasons}");

    let vanishing = Indicators {
        kappa: Some(2.0),
        kappa_r2: Some(0.99),
        attenuation: Some(38.0),
        forward_diversity: Some(0.0),
        ..Default::default()
    };
    let reasons = decide(&vanishing, &Thresholds::default())
        .reasons
        .join("\n");
    assert!(reasons.contains("diversity is below 1e-30"), "{reasons}");
    assert!(!reasons.contains("0.0e0"), "{reasons}");

    let dead = Indicators {
        dead_max: Some(0.9),
        ..healthy_flow()
    };
    let reasons = decide(&dead, &Thresholds::default()).reasons.join("\n");
    assert!(reasons.contains("of a training batch"), "{reasons}");
    assert!(!reasons.contains("probe batch"), "{reasons}");
}

/// A deep network whose gradients flow, on data with signal, trailing its
/// depth control.
fn trailing_its_reference(deep: f64, reference: f64) -> Indicators {
    Indicators {
        loss_to_chance: Some(deep),
        loss_drop: Some(0.1),
        probe_accuracy: Some(0.97),
        probe_p_value: Some(0.0),
        chance_accuracy: Some(0.1),
        depth_control_loss_to_chance: Some(reference),
        depth_control_model: Some("its residual twin resnet:depth=56".into()),
        ..healthy_flow()
    }
}

#[test]
fn degradation_needs_the_depth_control_to_train_clearly_better() {
    let th = Thresholds::default();
    let d = decide(&trailing_its_reference(0.45, 0.03), &th);
    assert_eq!(d.verdict, Verdict::Degradation, "{d:?}");
    let text = d.reasons.join(" | ");
    assert!(text.contains("0.450") && text.contains("0.030"), "{text}");
    assert!(text.contains("p below 1e-300"), "{text}");
    assert!(
        d.actions[0].contains("resnet:depth=56") && d.actions[0].contains("0.030"),
        "{:?}",
        d.actions
    );
    // The same network without a clear gap is not degraded.
    let close = decide(&trailing_its_reference(0.05, 0.03), &th);
    assert_eq!(close.verdict, Verdict::Healthy, "{close:?}");
    assert!(close.reasons.join(" ").contains("+0.020"), "{close:?}");
    // Without signal in the data depth is not what holds it back.
    let no_signal = Indicators {
        probe_p_value: Some(0.5),
        probe_accuracy: Some(0.1),
        ..trailing_its_reference(0.95, 0.3)
    };
    assert_ne!(decide(&no_signal, &th).verdict, Verdict::Degradation);
    // Vanishing gradients are decided before the depth control.
    let vanishing = Indicators {
        kappa: Some(0.4),
        kappa_r2: Some(0.95),
        attenuation: Some(0.4 * 26.0),
        ..trailing_its_reference(0.95, 0.3)
    };
    assert_eq!(decide(&vanishing, &th).verdict, Verdict::Vanishing);
}

#[test]
fn without_the_depth_control_an_undecided_run_says_the_control_would_decide() {
    let ind = Indicators {
        depth_control_loss_to_chance: None,
        depth_control_model: None,
        // Near chance, data with signal, normal steps: model-cannot-extract.
        loss_to_chance: Some(0.95),
        loss_drop: Some(0.0),
        update_ratio: Some(1e-3),
        ..trailing_its_reference(0.95, 0.3)
    };
    let d = decide(&ind, &Thresholds::default());
    assert_eq!(d.verdict, Verdict::ModelCannotExtract, "{d:?}");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("depth control was not run")),
        "{:?}",
        d.reasons
    );
}

#[test]
fn at_initialisation_only_gradient_flow_decides() {
    let grows = Indicators {
        kappa: Some(-0.25),
        kappa_r2: Some(0.99),
        attenuation: Some(-0.25 * 26.0),
        loss_to_chance: Some(1.0),
        at_init: true,
        ..Default::default()
    };
    let d = decide(&grows, &Thresholds::default());
    assert_eq!(d.verdict, Verdict::Exploding);
    assert!(
        d.reasons[0].contains("at initialisation"),
        "{:?}",
        d.reasons
    );
    // Loss at chance is no evidence at step 0: flat flow is healthy.
    let flat = Indicators {
        at_init: true,
        loss_to_chance: Some(1.0),
        ..healthy_flow()
    };
    let d = decide(&flat, &Thresholds::default());
    assert_eq!(d.verdict, Verdict::Healthy, "{d:?}");
    assert!(d
        .reasons
        .iter()
        .any(|r| r.contains("loss-based gates do not apply")));
}
