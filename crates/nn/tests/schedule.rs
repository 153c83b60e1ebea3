//! Learning-rate schedules produce the rates PyTorch's schedulers document.

use gradlab_nn::*;

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} vs {b}");
}

#[test]
fn constant() {
    let s = Constant::new(0.3).unwrap();
    for t in [0, 1, 1000] {
        close(s.lr(t), 0.3);
    }
    assert!(Constant::new(f64::NAN).is_err());
}

#[test]
fn step_decay() {
    // StepLR(step_size=30, gamma=0.1) from 0.05: 0.05 for t < 30, 0.005 for 30 <= t < 60, ...
    let s = StepDecay::new(0.05, 30, 0.1).unwrap();
    close(s.lr(0), 0.05);
    close(s.lr(29), 0.05);
    close(s.lr(30), 0.005);
    close(s.lr(59), 0.005);
    close(s.lr(60), 0.0005);
    assert!(StepDecay::new(0.1, 0, 0.1).is_err());
}

#[test]
fn multi_step() {
    // MultiStepLR(milestones=[30, 80], gamma=0.1) from 0.05.
    let s = MultiStep::new(0.05, &[30, 80], 0.1).unwrap();
    close(s.lr(0), 0.05);
    close(s.lr(29), 0.05);
    close(s.lr(30), 0.005);
    close(s.lr(79), 0.005);
    close(s.lr(80), 0.0005);
    close(s.lr(10_000), 0.0005);
    assert!(MultiStep::new(0.1, &[80, 30], 0.1).is_err());
}

#[test]
fn cosine() {
    let s = CosineAnnealing::new(0.1, 0.001, 100).unwrap();
    close(s.lr(0), 0.1);
    close(s.lr(50), 0.001 + (0.1 - 0.001) / 2.0);
    close(
        s.lr(25),
        0.001 + (0.1 - 0.001) * (1.0 + (std::f64::consts::PI / 4.0).cos()) / 2.0,
    );
    close(s.lr(100), 0.001);
    close(s.lr(150), 0.001);
    // Monotone decreasing over the period.
    assert!((0..100).all(|t| s.lr(t + 1) <= s.lr(t)));
    assert!(CosineAnnealing::new(0.1, 0.0, 0).is_err());
}

#[test]
fn linear_warmup_then_cosine() {
    let w = LinearWarmup::new(0.2, 0.25, 4).unwrap();
    // LinearLR(start_factor=0.25, total_iters=4): factors 0.25, 0.4375, 0.625, 0.8125, 1.
    for (t, f) in [
        (0, 0.25),
        (1, 0.4375),
        (2, 0.625),
        (3, 0.8125),
        (4, 1.0),
        (9, 1.0),
    ] {
        close(w.lr(t), 0.2 * f);
    }
    let s = Warmup::new(w, CosineAnnealing::new(0.2, 0.0, 10).unwrap());
    close(s.lr(0), 0.05);
    close(s.lr(3), 0.2 * 0.8125);
    close(s.lr(4), 0.2); // cosine's step 0
    close(s.lr(9), 0.1); // cosine's step 5: half-way
    close(s.lr(14), 0.0);
    assert!(LinearWarmup::new(0.1, 0.0, 5).is_err());
    assert!(LinearWarmup::new(0.1, 0.5, 0).is_err());
}

#[test]
fn schedules_drive_the_optimizer() {
    let s = StepDecay::new(0.1, 2, 0.5).unwrap();
    let mut opt = Sgd::<f32>::new(SgdConfig::default()).unwrap();
    let mut seen = Vec::new();
    for t in 0..5 {
        opt.set_lr(s.lr(t));
        seen.push(Optimizer::<f32>::lr(&opt));
    }
    assert_eq!(seen, [0.1, 0.1, 0.05, 0.05, 0.025]);
}
