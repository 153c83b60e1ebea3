//! Diagnoses a plain MLP three ways, built from gradlab-nn layers directly:
//! a 20-layer sigmoid net on the digits (true vanishing), a 4-layer ReLU net
//! on the digits (healthy), and the same on pure noise (no signal).
//!
//! `cargo run --release -p gradlab-diag --example diagnose_mlp -- sigmoid|relu|noise`

use gradlab_data::{
    train_val_split, Dataset, Digits, DigitsConfig, Noise, NoiseConfig, PixelScale,
};
use gradlab_diag::*;
use gradlab_nn::*;

/// `depth` hidden layers of width 64 with PyTorch-default initialisation.
fn mlp(
    depth: usize,
    act: ActivationKind,
    seed: u64,
) -> std::result::Result<Sequential<f32>, NnError> {
    let root = Scope::new(seed);
    let mut net = Sequential::<f32>::new(&root.pp("net"));
    net.add(|s| Ok(Flatten::new(s)))?;
    let mut width_in = 64;
    for _ in 0..depth {
        net.add(|s| Linear::new(s, width_in, 64, LinearConfig::default()))?;
        net.add(|s| Activation::new(s, act))?;
        width_in = 64;
    }
    net.add(|s| Linear::new(s, 64, 10, LinearConfig::default()))?;
    Ok(net)
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
        lr: 0.05,
        shuffle_control: true,
        recorder: RecorderOptions {
            activation: Some(act),
            forward_stats_every: 10,
            ..Default::default()
        },
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let run = run_diagnosed(&|| mlp(depth, act, 0), tr, va, &cfg, &mut |_| {}).unwrap();
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
