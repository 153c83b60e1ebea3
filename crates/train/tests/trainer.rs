//! The training step, evaluation, batch streams and the specs.

use gradlab_arch::{combined_loss, Classifier, HeadMode, OutputRequest, PlainMlp, PlainMlpConfig};
use gradlab_data::{Batch, BatchConfig, Batches, Dataset, Patterns, PatternsConfig};
use gradlab_nn::{ActivationKind, Ctx, HasParams, Module, Optimizer, Scope, Sgd, SgdConfig};
use gradlab_train::{
    evaluate, flat_params, step_seed, BatchStream, OptimizerKind, OptimizerSpec, ScheduleKind,
    ScheduleSpec, TrainError, Trainer,
};
use proptest::prelude::*;

fn data(size: usize) -> Patterns {
    Patterns::new(PatternsConfig {
        len: 96,
        num_classes: 4,
        height: size,
        width: size,
        ..Default::default()
    })
    .unwrap()
}

fn mlp() -> PlainMlp<f32> {
    let cfg = PlainMlpConfig::new(64, 4, 3, 16, ActivationKind::Relu);
    PlainMlp::new(&Scope::new(7), &cfg).unwrap()
}

fn batch(d: &Patterns, from: usize) -> Batch {
    Batch::from_indices(d, &(from..from + 16).collect::<Vec<_>>()).unwrap()
}

#[test]
fn a_step_equals_a_hand_written_step_bit_for_bit() {
    let d = data(8);
    let (mut a, mut b) = (mlp(), mlp());
    let spec = OptimizerSpec::sgd(0.1).with_weight_decay(1e-3);
    let mut trainer = Trainer::new(&spec, 5).unwrap();
    let mut opt = Sgd::new(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 1e-3,
        ..SgdConfig::default()
    })
    .unwrap();
    for step in 0..3u64 {
        let bt = batch(&d, 16 * step as usize);
        let out = trainer.step(&mut a, bt.clone()).unwrap().finite().unwrap();

        let mut cx = Ctx::new().with_seed(step_seed(5, step));
        let x = cx.input(bt.images);
        let request = OutputRequest {
            heads: HeadMode::Auto,
            features: Vec::new(),
        };
        let outputs = b.forward_outputs(&mut cx, x, &request).unwrap();
        let loss = combined_loss(&mut cx, &outputs, &bt.labels).unwrap().total;
        let grads = cx.backward(loss).unwrap();
        assert_eq!(out.loss.to_bits(), grads.loss().unwrap().to_bits());
        opt.step(&mut b, &grads).unwrap();
        let (pa, pb) = (flat_params(&a), flat_params(&b));
        assert!(pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
    assert_eq!(trainer.steps(), 3);
}

#[test]
fn a_non_finite_step_is_not_applied_and_names_the_step() {
    let d = data(8);
    let mut net = mlp();
    let mut trainer = Trainer::new(&OptimizerSpec::sgd(0.1), 0).unwrap();
    let mut bt = batch(&d, 0);
    bt.images.as_slice_mut()[0] = f32::NAN;
    let before = flat_params(&net);
    let out = trainer.step(&mut net, bt).unwrap();
    assert!(out.non_finite.is_some());
    assert_eq!(flat_params(&net), before);
    let e = out.finite().unwrap_err();
    assert!(matches!(e, TrainError::NonFinite { step: 0, .. }), "{e}");
    let text = e.to_string();
    assert!(text.starts_with("training diverged at step 0:"), "{text}");
    assert!(
        !text.contains("skipped"),
        "the run stops; it skips nothing: {text}"
    );
}

#[test]
fn evaluate_restores_the_mode_also_on_error() {
    let mut net = mlp();
    for training in [true, false] {
        net.set_training(training);
        let ok = evaluate(&mut net, &data(8), 32, Some(50)).unwrap();
        assert_eq!(ok.examples, 50);
        assert!(ok.loss.is_finite() && (0.0..=1.0).contains(&ok.accuracy));
        assert_eq!(net.is_training(), training);
        // 16x16 images do not fit an MLP over 64 features.
        assert!(evaluate(&mut net, &data(16), 32, None).is_err());
        assert_eq!(net.is_training(), training, "mode after an error");
    }
}

#[test]
fn a_batch_stream_started_at_a_step_continues_the_uninterrupted_stream() {
    let d = data(8);
    let mut whole = BatchStream::new(&d, 20, 3).unwrap();
    assert_eq!(whole.steps_per_epoch(), 4);
    let seen: Vec<Vec<usize>> = (0..11)
        .map(|_| whole.next_batch().unwrap().indices)
        .collect();
    // The stream is Batches epoch after epoch.
    let config = BatchConfig {
        batch_size: 20,
        shuffle: true,
        drop_last: true,
        seed: 3,
    };
    let epoch1: Vec<Vec<usize>> = Batches::new(&d as &dyn Dataset, &config, 1)
        .unwrap()
        .map(|b| b.unwrap().indices)
        .collect();
    assert_eq!(&seen[4..8], &epoch1[..]);
    for start in [0u64, 3, 4, 9] {
        let mut resumed = BatchStream::new(&d, 20, 3)
            .unwrap()
            .starting_at(start)
            .unwrap();
        assert_eq!(resumed.epoch(), start / 4);
        for expected in &seen[start as usize..] {
            assert_eq!(&resumed.next_batch().unwrap().indices, expected);
        }
    }
    assert!(matches!(
        BatchStream::new(&d, 97, 0),
        Err(TrainError::TooFewExamples {
            examples: 96,
            batch: 97
        })
    ));
}

#[test]
fn every_optimizer_and_schedule_combination_builds_and_trains() {
    let d = data(8);
    let schedules = [
        "constant",
        "constant:warmup=1",
        "step:every=1,gamma=0.5",
        "multistep:at=1+2,gamma=0.5,warmup=1",
        "cosine:min=0.001",
    ];
    for kind in OptimizerKind::ALL {
        for text in schedules {
            let spec = OptimizerSpec::new(kind, 0.01);
            let schedule: ScheduleSpec = text.parse().unwrap();
            let built = schedule.build(spec.lr, 6, 18).unwrap();
            let mut trainer = Trainer::new(&spec, 0).unwrap().with_schedule(built);
            let mut net = mlp();
            let out = trainer
                .step(&mut net, batch(&d, 0))
                .unwrap()
                .finite()
                .unwrap();
            assert!(
                out.lr > 0.0 && out.lr <= 0.01 * (1.0 + 1e-12),
                "{kind} {text}: lr {}",
                out.lr
            );
            assert_eq!(trainer.optimizer().steps(), 1, "{kind} {text}");
        }
    }
}

#[test]
fn bad_specs_are_refused_with_the_reason() {
    let cases = [
        ("sgd:lr=-1", "greater than zero"),
        ("sgd:lr=0.1,lr=0.2", "duplicate key 'lr'"),
        ("adam:momentum=0.9", "unknown key 'momentum'"),
        ("rmsprop", "valid optimizers: sgd, adam, adamw"),
        ("sgd:weight-decay=-0.1", "negative"),
    ];
    for (text, want) in cases {
        let e = text.parse::<OptimizerSpec>().unwrap_err().to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
    assert!(OptimizerSpec::sgd(0.1)
        .with_weight_decay(f64::NAN)
        .build()
        .is_err());
    let cases = [
        ("multistep", "needs its milestones"),
        ("multistep:at=3+2", "must increase"),
        ("step:every=0", "every=0"),
        ("cosine:min=-1", "negative"),
        ("linear", "valid schedules"),
    ];
    for (text, want) in cases {
        let e = text.parse::<ScheduleSpec>().unwrap_err().to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
    // A cosine floor above the base rate would make the rate rise.
    let cosine: ScheduleSpec = "cosine:min=1".parse().unwrap();
    let e = cosine.build(0.05, 10, 100).err().unwrap().to_string();
    assert!(e.contains("below the base learning rate"), "{e}");
}

fn optimizer_spec() -> impl Strategy<Value = OptimizerSpec> {
    (
        0usize..3,
        1e-6f64..10.0,
        0.0f64..0.99,
        any::<bool>(),
        0.0f64..0.1,
    )
        .prop_map(|(k, lr, momentum, nesterov, weight_decay)| {
            let kind = OptimizerKind::ALL[k];
            let mut spec = OptimizerSpec::new(kind, lr).with_weight_decay(weight_decay);
            if kind == OptimizerKind::Sgd {
                spec.momentum = momentum;
                spec.nesterov = nesterov;
            }
            spec
        })
}

fn schedule_spec() -> impl Strategy<Value = ScheduleSpec> {
    let kind = prop_oneof![
        Just(ScheduleKind::Constant),
        (1usize..100, 1e-3f64..1.0).prop_map(|(every, gamma)| ScheduleKind::Step { every, gamma }),
        (
            proptest::collection::btree_set(0usize..200, 1..4),
            1e-3f64..1.0
        )
            .prop_map(|(at, gamma)| ScheduleKind::MultiStep {
                at: at.into_iter().collect(),
                gamma
            }),
        (0.0f64..1.0).prop_map(|min| ScheduleKind::Cosine { min }),
    ];
    (kind, 0usize..5).prop_map(|(kind, warmup)| ScheduleSpec { kind, warmup })
}

proptest! {
    #[test]
    fn specs_round_trip_through_their_text(o in optimizer_spec(), s in schedule_spec()) {
        prop_assert_eq!(o.to_string().parse::<OptimizerSpec>().unwrap(), o);
        prop_assert_eq!(s.to_string().parse::<ScheduleSpec>().unwrap(), s);
    }
}

#[test]
fn the_step_seed_separates_neighbouring_seeds() {
    assert_ne!(step_seed(1, 0), step_seed(0, 1));
    assert_eq!(step_seed(0, 7), 7);
    let net = mlp();
    assert!(net.num_trainable() > 0);
}
