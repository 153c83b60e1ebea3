//! `gradlab diagnose`: train a model briefly with diagnostics on and say
//! why it learns or stalls, with the evidence.

use std::path::PathBuf;

use gradlab_diag::plot::{depth_profile_svg, profile_steps};
use gradlab_diag::RecorderOptions;
use gradlab_train::{run_diagnosed, DiagnosedRun, OptimizerSpec, RunConfig};

use crate::data_spec::build_data;
use crate::error::Result;
use crate::model_spec::build_model;
use crate::output::{write_file, write_json};
use crate::progress::bar;
use crate::terminal::{self, list_item, paragraph};

/// The options of `gradlab diagnose`.
#[derive(Debug, Clone)]
pub struct DiagnoseArgs {
    /// Model SPEC.
    pub model: String,
    /// Data SPEC.
    pub data: String,
    /// Training steps.
    pub steps: usize,
    /// Batch size.
    pub batch: usize,
    /// Optimizer and learning rate.
    pub optimizer: OptimizerSpec,
    /// Seed.
    pub seed: u64,
    /// Run the label-shuffle control.
    pub shuffle_control: bool,
    /// Write the diagnosis as JSON here.
    pub json: Option<PathBuf>,
    /// Write the depth-profile plot into this folder.
    pub out: Option<PathBuf>,
}

/// Trains and diagnoses, with a progress bar.
///
/// # Errors
/// Bad specs (exit code 2); training and file errors.
pub fn diagnose(args: &DiagnoseArgs) -> Result<DiagnosedRun> {
    args.optimizer.build()?; // bad settings are refused before any data is read
    let data = build_data(&args.data, args.seed)?;
    let (shape, classes) = (data.input_shape(), data.num_classes());
    let probe = build_model(&args.model, shape, classes, args.seed)?;
    let config = RunConfig {
        steps: args.steps,
        batch_size: args.batch.min(data.train.len()),
        optimizer: args.optimizer,
        seed: args.seed,
        shuffle_control: args.shuffle_control,
        recorder: RecorderOptions {
            activation: Some(probe.activation),
            forward_stats_every: 10,
            ..Default::default()
        },
        ..RunConfig::default()
    };
    let pb = bar(args.steps as u64, "train");
    let mut phase = "train";
    let run = run_diagnosed(
        &|| build_model(&args.model, shape, classes, args.seed).map(|m| m.net),
        &*data.train,
        &*data.val,
        &config,
        &mut |p| {
            if p.phase != phase {
                phase = p.phase;
                pb.set_prefix(p.phase);
                pb.set_length(p.total as u64);
            }
            pb.set_position(p.step as u64);
            if p.loss.is_finite() {
                pb.set_message(format!("loss {:.4}", p.loss));
            }
        },
    );
    pb.finish_and_clear();
    Ok(run?)
}

/// Prints the verdict, reasons, actions and per-layer table.
pub fn print_diagnosis(run: &DiagnosedRun) {
    print!("{}", diagnosis_text(run, terminal::width()));
}

/// What [`print_diagnosis`] prints, for a terminal `width` columns wide:
/// reasons and actions as indented lists, the layer table fitted.
pub fn diagnosis_text(run: &DiagnosedRun, width: usize) -> String {
    let d = &run.diagnosis;
    let mut out = paragraph(
        &format!(
            "verdict: {} (confidence {:.2}, steps {}..{})",
            d.verdict, d.confidence, d.window[0], d.window[1]
        ),
        width,
    );
    if d.candidates.len() > 1 {
        let c: Vec<String> = d.candidates.iter().map(|v| v.to_string()).collect();
        out.push_str(&paragraph(
            &format!("candidates: {}", c.join(" or ")),
            width,
        ));
    }
    out.push_str("because:\n");
    for r in &d.reasons {
        out.push_str(&list_item(2, "-", r, width));
    }
    if !d.actions.is_empty() {
        out.push_str("try:\n");
        for a in &d.actions {
            out.push_str(&list_item(2, "-", a, width));
        }
    }
    out.push('\n');
    let fmt = |v: Option<f64>| v.map(|x| format!("{x:.3e}")).unwrap_or_else(|| "-".into());
    let header: Vec<String> = [
        "layer",
        "index",
        "grad rms",
        "act grad",
        "weight rms",
        "update/w",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = d
        .layers
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.index.to_string(),
                fmt(Some(l.grad_rms)),
                fmt(l.act_grad_rms),
                fmt(Some(l.weight_rms)),
                fmt(l.update_ratio),
            ]
        })
        .collect();
    out.push_str(&terminal::table(&header, &rows, &[1, 2, 3, 4, 5], width));
    out
}

/// `gradlab diagnose`.
///
/// # Errors
/// As [`diagnose`], and file errors.
pub fn run(args: &DiagnoseArgs) -> Result<()> {
    let run = diagnose(args)?;
    print_diagnosis(&run);
    if let Some(path) = &args.json {
        write_json(path, &run.diagnosis)?;
        println!("\nwrote {}", path.display());
    }
    if let Some(dir) = &args.out {
        let title = format!("{} on {}", args.model, args.data);
        let svg = depth_profile_svg(&run.history, &profile_steps(&run.history), &title)?;
        let path = dir.join("depth_profile.svg");
        write_file(&path, svg.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
