//! Diagnoses a plain MLP three ways, built from gradlab-nn layers directly:
//! a 20-layer sigmoid net on the digits (true vanishing), a 4-layer ReLU net
//! on the digits (healthy), and the same on pure noise (no signal).
//!
//! `cargo run --release -p gradlab-train --example diagnose_mlp -- sigmoid|relu|noise`

use gradlab_arch::{ArchError, PlainMlp, PlainMlpConfig};
use gradlab_data::{
    train_val_split, Dataset, Digits, DigitsConfig, Noise, NoiseConfig, PixelScale,
};
use gradlab_nn::{ActivationKind, Scope};
use gradlab_train::{run_diagnosed, OptimizerSpec, RecorderOptions, RunConfig};

/// `depth` layers of width 64 with PyTorch-default initialisation.
fn mlp(depth: usize, act: ActivationKind) -> Result<PlainMlp<f32>, ArchError> {
    PlainMlp::new(&Scope::new(0), &PlainMlpConfig::new(64, 10, depth, 64, act))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("sigmoid");
    let digits = Digits::new(DigitsConfig {
        scale: PixelScale::Unit,
        ..Default::default()
    })
    .unwrap();
    let (train, val) = train_val_split(digits, 0.2, 1).unwrap();
    let noise = Noise::new(NoiseConfig {
        len: 1500,
        num_classes: 10,
        shape: [1, 8, 8],
        seed: 3,
    })
    .unwrap();
    let (ntrain, nval) = train_val_split(noise, 0.2, 1).unwrap();
    let (depth, act, tr, va): (usize, ActivationKind, &dyn Dataset, &dyn Dataset) = match which {
        "sigmoid" => (20, ActivationKind::Sigmoid, &train, &val),
        "relu" => (4, ActivationKind::Relu, &train, &val),
        _ => (4, ActivationKind::Relu, &ntrain, &nval),
    };
    let cfg = RunConfig {
        steps: 200,
        optimizer: OptimizerSpec::sgd(0.05),
        shuffle_control: true,
        recorder: RecorderOptions {
            activation: Some(act),
            forward_stats_every: 10,
            ..Default::default()
        },
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let run = run_diagnosed(&|| mlp(depth, act), tr, va, &cfg, &mut |_| {}).unwrap();
    let d = &run.diagnosis;
    println!(
        "{which}: {} conf {:.2} ({:?})",
        d.verdict,
        d.confidence,
        t.elapsed()
    );
    for r in &d.reasons {
        println!("  - {r}");
    }
    println!("{}", serde_json::to_string_pretty(&d.indicators).unwrap());
}
