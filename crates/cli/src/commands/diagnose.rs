//! `gradlab diagnose`: train a model briefly with diagnostics on and say
//! why it learns or stalls, with the evidence; or diagnose a run recorded
//! in a `gradlab-history` file (by gradlab or another framework).

use std::path::{Path, PathBuf};

use gradlab_diag::plot::{depth_profile_svg, profile_steps};
use gradlab_diag::{
    data_probe, diagnose_with, read_history, DiagnoseOptions, ProbeOptions, RunInfo,
};
use std::sync::Arc;

use gradlab_train::{
    diagnose_at_init, probe_datasets, run_diagnosed, DepthReference, DiagnosedRun, OptimizerSpec,
    RecorderOptions, RunConfig, RunProgress,
};
use ndarray::{Array1, Array2};

use crate::error::CliError;

use crate::data_spec::build_data;
use crate::error::Result;
use crate::model_spec::{build_model, depth_reference};
use crate::output::{check_output, write_file, write_json};
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
    /// Run the depth control against this reference SPEC (`auto`: the
    /// default reference of [`depth_reference`]).
    pub depth_control: Option<String>,
    /// Diagnose at initialisation from this many batches instead of training.
    pub at_init: Option<usize>,
    /// Write the diagnosis as JSON here.
    pub json: Option<PathBuf>,
    /// Write the depth-profile plot into this folder.
    pub out: Option<PathBuf>,
    /// Stream the run's history to this file.
    pub history: Option<PathBuf>,
}

/// Trains and diagnoses, with a progress bar.
///
/// # Errors
/// Bad specs (exit code 2); training and file errors.
pub fn diagnose(args: &DiagnoseArgs) -> Result<DiagnosedRun> {
    // Bad settings and unusable output paths are refused before any data is
    // read or any step is trained.
    args.optimizer.build()?;
    if args.steps == 0 || args.batch == 0 {
        return Err(CliError::Usage(
            "diagnose: --steps and --batch must be at least 1".into(),
        ));
    }
    if let Some(path) = &args.json {
        check_output(path)?;
    }
    if let Some(dir) = &args.out {
        check_output(&dir.join("depth_profile.svg"))?;
    }
    let data = build_data(&args.data, args.seed)?;
    let (shape, classes) = (data.input_shape(), data.num_classes());
    if classes < 2 {
        return Err(CliError::Usage(format!(
            "diagnose: '{}' has {classes} class; a classifier needs at least 2",
            args.data
        )));
    }
    let probe = build_model(&args.model, shape, classes, args.seed)?;
    let depth_control = match args.depth_control.as_deref() {
        None => None,
        Some(spec) => {
            let spec = match spec {
                "auto" => depth_reference(&args.model)?,
                given => given.to_string(),
            };
            // A reference that cannot be built is refused before training.
            build_model(&spec, shape, classes, args.seed)?;
            let seed = args.seed;
            let name = spec.clone();
            Some(DepthReference {
                name,
                build: Arc::new(move || {
                    build_model(&spec, shape, classes, seed)
                        .map(|m| m.net)
                        .map_err(|e| e.to_string())
                }),
            })
        }
    };
    if args.at_init == Some(0) {
        return Err(CliError::Usage(
            "diagnose: --at-init needs at least 1 batch".into(),
        ));
    }
    let config = RunConfig {
        steps: args.steps,
        batch_size: args.batch.min(data.train.len()),
        optimizer: args.optimizer,
        seed: args.seed,
        shuffle_control: args.shuffle_control,
        depth_control,
        recorder: RecorderOptions {
            activation: Some(probe.activation),
            forward_stats_every: 10,
            ..Default::default()
        },
        history_file: args.history.clone(),
        run_info: RunInfo {
            source: Some(format!("gradlab diagnose {}", env!("CARGO_PKG_VERSION"))),
            model: Some(args.model.clone()),
            data: Some(args.data.clone()),
            ..Default::default()
        },
        ..RunConfig::default()
    };
    let make = || build_model(&args.model, shape, classes, args.seed).map(|m| m.net);
    let (total, first) = match args.at_init {
        Some(n) => (n, "init"),
        None => (args.steps, "train"),
    };
    let pb = bar(total as u64, first);
    let mut phase = first;
    let mut show = |p: &RunProgress| {
        if p.phase != phase {
            phase = p.phase;
            pb.set_prefix(p.phase);
            pb.set_length(p.total as u64);
        }
        pb.set_position(p.step as u64);
        if p.loss.is_finite() {
            pb.set_message(format!("loss {:.4}", p.loss));
        }
    };
    let run = match args.at_init {
        Some(batches) => diagnose_at_init(&make, &*data.train, &config, batches, &mut show),
        None => run_diagnosed(&make, &*data.train, &*data.val, &config, &mut show),
    };
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
    if let Some(path) = &args.history {
        println!("wrote {}\n", path.display());
    }
    report(&run, args.json.as_deref(), args.out.as_deref())
}

/// Prints the diagnosis and writes the JSON and the depth-profile plot.
fn report(run: &DiagnosedRun, json: Option<&Path>, out: Option<&Path>) -> Result<()> {
    print_diagnosis(run);
    if let Some(path) = json {
        write_json(path, &run.diagnosis)?;
        println!("\nwrote {}", path.display());
    }
    if let Some(dir) = out {
        let svg = depth_profile_svg(&run.history, &profile_steps(&run.history), &plot_title(run))?;
        let path = dir.join("depth_profile.svg");
        write_file(&path, svg.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// "MODEL on DATA" from the run information, or what there is of it.
fn plot_title(run: &DiagnosedRun) -> String {
    let info = &run.history.run;
    match (&info.model, &info.data) {
        (Some(m), Some(d)) => format!("{m} on {d}"),
        (Some(m), None) => m.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => info.source.clone().unwrap_or_else(|| "recorded run".into()),
    }
}

/// The options of `gradlab diagnose --history FILE` without a model.
#[derive(Debug, Clone)]
pub struct ReplayArgs {
    /// The history file to read.
    pub history: PathBuf,
    /// Data for the probe when the history has none: `npy:X.npy,Y.npy` or a data SPEC.
    pub probe_data: Option<String>,
    /// Seed of the data SPEC's split.
    pub seed: u64,
    /// Write the diagnosis as JSON here.
    pub json: Option<PathBuf>,
    /// Write the depth-profile plot into this folder.
    pub out: Option<PathBuf>,
}

/// Reads a recorded run and diagnoses it as the live run was; warnings (a
/// torn last line) go to standard error.
///
/// # Errors
/// File and format errors naming the line and field (exit code 1); a bad
/// `--probe-data` (exit code 2 for a malformed spec).
pub fn replay(args: &ReplayArgs) -> Result<DiagnosedRun> {
    let read = read_history(&args.history)?;
    for w in &read.warnings {
        eprintln!("warning: {w}");
    }
    let mut history = read.history;
    if let Some(spec) = &args.probe_data {
        if history.probe.is_some() {
            eprintln!(
                "warning: {} has a probe line; --probe-data {spec} is not used",
                args.history.display()
            );
        } else {
            history.probe = probe_from_spec(spec, history.num_classes, args.seed)?;
        }
    }
    let diagnosis = diagnose_with(&history, &DiagnoseOptions::default())?;
    Ok(DiagnosedRun { diagnosis, history })
}

/// `gradlab diagnose --history FILE`.
///
/// # Errors
/// As [`replay`], and file errors.
pub fn run_replay(args: &ReplayArgs) -> Result<()> {
    let run = replay(args)?;
    report(&run, args.json.as_deref(), args.out.as_deref())
}

/// The data probe on `--probe-data`: `npy:FEATURES.npy,LABELS.npy` (every
/// fifth row held out) or a data SPEC (its own training and held-out split).
fn probe_from_spec(
    spec: &str,
    num_classes: usize,
    seed: u64,
) -> Result<Option<gradlab_diag::ProbeResult>> {
    if let Some(files) = spec.strip_prefix("npy:") {
        let (xf, yf) = files.split_once(',').ok_or_else(|| {
            CliError::Usage(format!(
                "--probe-data '{spec}': expected npy:FEATURES.npy,LABELS.npy"
            ))
        })?;
        let x = read_features(Path::new(xf))?;
        let y = read_labels(Path::new(yf), num_classes)?;
        if x.nrows() != y.len() {
            return Err(CliError::Run(format!(
                "--probe-data: {xf} has {} rows but {yf} has {} labels",
                x.nrows(),
                y.len()
            )));
        }
        let (mut tr, mut va) = (Vec::new(), Vec::new());
        for i in 0..y.len() {
            if i % 5 == 4 {
                va.push(i)
            } else {
                tr.push(i)
            }
        }
        if tr.is_empty() || va.is_empty() {
            return Err(CliError::Run(format!(
                "--probe-data: {} examples are too few to hold every fifth out",
                y.len()
            )));
        }
        let rows = |idx: &[usize]| x.select(ndarray::Axis(0), idx);
        let labels = |idx: &[usize]| idx.iter().map(|&i| y[i]).collect::<Vec<_>>();
        let probe = data_probe(
            rows(&tr).view(),
            &labels(&tr),
            rows(&va).view(),
            &labels(&va),
            num_classes,
            &ProbeOptions::default(),
        )?;
        return Ok(Some(probe));
    }
    let data = build_data(spec, seed)?;
    if data.num_classes() != num_classes {
        return Err(CliError::Usage(format!(
            "--probe-data '{spec}' has {} classes but the history has {num_classes}",
            data.num_classes()
        )));
    }
    Ok(probe_datasets(&*data.train, &*data.val, num_classes)?)
}

/// Features `[N, D]` of float32 or float64 from a .npy file.
fn read_features(path: &Path) -> Result<Array2<f32>> {
    use ndarray_npy::read_npy;
    let shown = path.display();
    if let Ok(x) = read_npy::<_, Array2<f32>>(path) {
        return Ok(x);
    }
    match read_npy::<_, Array2<f64>>(path) {
        Ok(x) => Ok(x.mapv(|v| v as f32)),
        Err(e) => Err(CliError::Run(format!(
            "--probe-data: {shown}: expected a float32 or float64 array of shape [N, D] ({e})"
        ))),
    }
}

/// Integer labels `[N]` in `0..num_classes` from a .npy file.
fn read_labels(path: &Path, num_classes: usize) -> Result<Vec<usize>> {
    use ndarray_npy::read_npy;
    let shown = path.display();
    let wide: Array1<i64> = if let Ok(y) = read_npy::<_, Array1<i64>>(path) {
        y
    } else if let Ok(y) = read_npy::<_, Array1<i32>>(path) {
        y.mapv(i64::from)
    } else if let Ok(y) = read_npy::<_, Array1<u8>>(path) {
        y.mapv(i64::from)
    } else {
        match read_npy::<_, Array1<u64>>(path) {
            Ok(y) => y.mapv(|v| i64::try_from(v).unwrap_or(i64::MAX)),
            Err(e) => {
                return Err(CliError::Run(format!(
                    "--probe-data: {shown}: expected an integer array (int64, int32, uint8 or uint64) of shape [N] ({e})"
                )))
            }
        }
    };
    wide.iter()
        .enumerate()
        .map(|(i, &v)| {
            usize::try_from(v)
                .ok()
                .filter(|&c| c < num_classes)
                .ok_or_else(|| {
                    CliError::Run(format!(
                        "--probe-data: {shown}: label {v} at row {i} is not in 0..{num_classes}"
                    ))
                })
        })
        .collect()
}
