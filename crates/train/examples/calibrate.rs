//! Calibrates the verdict thresholds on the scenario suite.
//!
//! Trains every scenario of `gradlab_train::suite` once per seed, keeps the
//! histories, and re-diagnoses them (no retraining) while each threshold
//! moves a decade either way. Prints every run's verdict and key
//! indicators, the confusion matrix, and the accuracy at each setting.
//!
//! ```text
//! cargo run --release -p gradlab-train --example calibrate -- \
//!     [--seeds 0,1,2] [--only S1,S3] [--save runs.json | --load runs.json] [--verbose]
//! ```
//!
//! How a threshold "moves a decade" depends on its kind ("down" lowers the
//! value, "up" raises it):
//!
//! - scales and rates (attenuation, loss ratios, drops, π, p-value, update
//!   ratio, cosine, gap, confidence): divided and multiplied by 10;
//! - values near 1 (R², the near-chance loss ratio): their distance to 1
//!   multiplied and divided by 10 (R² 0.8 -> -1, i.e. no demand, and 0.98);
//! - fractions (dead and saturated units): their odds divided and
//!   multiplied by 10 (0.5 -> 0.09 and 0.91).

use std::sync::Mutex;
use std::time::Instant;

use gradlab_diag::{diagnose_with, DiagnoseOptions, Thresholds, Verdict};
use gradlab_train::suite::{confusion_matrix, Scenario, SuiteRun};

/// How a threshold moves a decade.
#[derive(Clone, Copy)]
enum Move {
    /// `x * 10` and `x / 10`.
    Scale,
    /// `1 - (1 - x) * 10` and `1 - (1 - x) / 10`.
    DistanceToOne,
    /// Odds `x / (1 - x)` times and over 10.
    Odds,
}

struct Knob {
    name: &'static str,
    moves: Move,
    get: fn(&Thresholds) -> f64,
    set: fn(&mut Thresholds, f64),
}

macro_rules! knob {
    ($field:ident, $moves:expr) => {
        Knob {
            name: stringify!($field),
            moves: $moves,
            get: |t| t.$field,
            set: |t, v| t.$field = v,
        }
    };
}

fn knobs() -> Vec<Knob> {
    vec![
        knob!(attenuation, Move::Scale),
        knob!(min_r2, Move::DistanceToOne),
        knob!(dead_fraction, Move::Odds),
        knob!(saturated_fraction, Move::Odds),
        knob!(exploding_loss_to_chance, Move::Scale),
        knob!(stall_loss_to_chance, Move::DistanceToOne),
        knob!(stall_drop, Move::Scale),
        knob!(shuffle_gap, Move::Scale),
        knob!(probe_alpha, Move::Scale),
        knob!(tiny_update, Move::Scale),
        knob!(consistent_cosine, Move::Scale),
        knob!(fitted_loss_to_chance, Move::Scale),
        knob!(overfit_gap, Move::Scale),
        knob!(min_confidence, Move::Scale),
        knob!(degradation_gap, Move::Scale),
    ]
}

/// The value one decade below (`down`) or above the default.
fn moved(m: Move, x: f64, down: bool) -> f64 {
    let f = if down { 0.1 } else { 10.0 };
    match m {
        Move::Scale => x * f,
        // A lower R² demand is a larger distance to 1.
        Move::DistanceToOne => 1.0 - (1.0 - x) / f,
        Move::Odds => {
            let odds = x / (1.0 - x) * f;
            odds / (1.0 + odds)
        }
    }
}

struct Args {
    seeds: Vec<u64>,
    only: Vec<Scenario>,
    save: Option<String>,
    load: Option<String>,
    verbose: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seeds: vec![0, 1, 2],
        only: Scenario::ALL.to_vec(),
        save: None,
        load: None,
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--seeds" => {
                args.seeds = value()?
                    .split(',')
                    .map(|s| s.parse().map_err(|e| format!("seed {s}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--only" => {
                args.only = value()?
                    .split(',')
                    .map(|s| Scenario::from_id(s).ok_or(format!("no scenario {s}")))
                    .collect::<Result<_, _>>()?
            }
            "--save" => args.save = Some(value()?),
            "--load" => args.load = Some(value()?),
            "--verbose" => args.verbose = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Trains the jobs on as many threads as there are cores.
fn train_all(jobs: Vec<(Scenario, u64)>) -> Vec<SuiteRun> {
    let n = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let done = Mutex::new(Vec::with_capacity(n));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let Some((i, (scenario, seed))) = queue.lock().expect("queue").pop() else {
                    break;
                };
                let t = Instant::now();
                let run = SuiteRun::train(scenario, seed)
                    .unwrap_or_else(|e| panic!("{scenario} seed {seed}: {e}"));
                eprintln!(
                    "trained {scenario} seed {seed} in {:.1} s: {}",
                    t.elapsed().as_secs_f64(),
                    run.diagnosis.verdict
                );
                done.lock().expect("results").push((i, run));
            });
        }
    });
    let mut done = done.into_inner().expect("results");
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

fn sci(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1e}")).unwrap_or_else(|| "-".into())
}

fn print_runs(runs: &[SuiteRun], verbose: bool) {
    println!("| run | expected | verdict | conf | κ | R² | A | ρ | π | probe | u | dead | sat | ζ | gap | val drop |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        let d = &r.diagnosis;
        let i = &d.indicators;
        println!(
            "| {}/{} | {} | {}{} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.seed,
            r.scenario.expected(),
            d.verdict,
            if r.is_right() { "" } else { " ✗" },
            d.confidence,
            opt(i.kappa, 2),
            opt(i.kappa_r2, 2),
            opt(i.attenuation, 1),
            if i.loss_to_chance.is_some_and(|x| x > 100.0) {
                sci(i.loss_to_chance)
            } else {
                opt(i.loss_to_chance, 3)
            },
            opt(i.shuffle_gap, 3),
            opt(i.probe_accuracy, 2),
            sci(i.update_ratio),
            opt(i.dead_max, 2),
            opt(i.saturated_max, 2),
            sci(i.forward_diversity),
            opt(i.train_val_gap, 3),
            opt(i.val_loss_drop, 3),
        );
        if verbose {
            for reason in &d.reasons {
                println!("|   | {reason} |");
            }
        }
    }
}

fn accuracy(runs: &[SuiteRun], th: &Thresholds) -> (usize, Vec<String>) {
    let mut right = 0;
    let mut changed = Vec::new();
    for r in runs {
        let v = r
            .rediagnose(th)
            .map(|d| d.verdict)
            .unwrap_or(Verdict::Inconclusive);
        if r.scenario.accepts(v) {
            right += 1;
        }
        if v != r.diagnosis.verdict {
            changed.push(format!("{}/{} {v}", r.scenario, r.seed));
        }
    }
    (right, changed)
}

fn fmt_value(x: f64) -> String {
    if x.abs() < 1e-12 {
        return "0".into();
    }
    if x != 0.0 && (x.abs() < 1e-2 || x.abs() >= 1e3) {
        format!("{x:.0e}")
    } else {
        format!("{:.3}", x)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn print_calibration(runs: &[SuiteRun]) {
    let n = runs.len();
    let default = Thresholds::default();
    let (base, _) = accuracy(runs, &default);
    println!("\ndefault thresholds: {base}/{n} right\n");
    println!("| threshold | decade down | right | default | right | decade up | right | runs that change verdict |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for k in knobs() {
        let x = (k.get)(&default);
        let mut cells = Vec::new();
        let mut changes = Vec::new();
        for down in [true, false] {
            let v = moved(k.moves, x, down);
            let mut th = default.clone();
            (k.set)(&mut th, v);
            let (right, changed) = accuracy(runs, &th);
            cells.push((v, right));
            if !changed.is_empty() {
                changes.push(format!(
                    "{}: {}",
                    if down { "down" } else { "up" },
                    changed.join(", ")
                ));
            }
        }
        println!(
            "| {} | {} | {}/{n} | {} | {base}/{n} | {} | {}/{n} | {} |",
            k.name,
            fmt_value(cells[0].0),
            cells[0].1,
            fmt_value(x),
            fmt_value(cells[1].0),
            cells[1].1,
            changes.join("; ")
        );
    }
}

/// Verdicts of windows that end earlier in the run: the second half of the
/// steps up to 25 % and 50 % of the schedule, beside the default (100 %).
fn print_time_points(runs: &[SuiteRun]) {
    let fractions = [0.25, 0.5];
    let mut by_time: Vec<Vec<(Scenario, Verdict)>> = vec![Vec::new(); fractions.len()];
    println!("\n| run | expected | 25 % | 50 % | 100 % |");
    println!("|---|---|---|---|---|");
    for r in runs {
        let last = r.history.steps.last().map_or(0, |s| s.step);
        let mut cells = Vec::new();
        for (i, f) in fractions.iter().enumerate() {
            let options = DiagnoseOptions {
                window_end: Some((last as f64 * f) as usize),
                ..DiagnoseOptions::default()
            };
            let v = diagnose_with(&r.history, &options)
                .map(|d| d.verdict)
                .unwrap_or(Verdict::Inconclusive);
            by_time[i].push((r.scenario, v));
            cells.push(format!(
                "{v}{}",
                if r.scenario.accepts(v) { "" } else { " ✗" }
            ));
        }
        println!(
            "| {}/{} | {} | {} | {} | {} |",
            r.scenario,
            r.seed,
            r.scenario.expected(),
            cells[0],
            cells[1],
            r.diagnosis.verdict
        );
    }
    for (f, results) in fractions.iter().zip(&by_time) {
        let right = results.iter().filter(|(s, v)| s.accepts(*v)).count();
        println!(
            "\nwindow ending at {:.0} % of the run: {right}/{} right\n\n{}",
            f * 100.0,
            results.len(),
            confusion_matrix(results)
        );
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("calibrate: {e}");
            std::process::exit(2);
        }
    };
    let runs: Vec<SuiteRun> = match &args.load {
        Some(path) => {
            let text = std::fs::read_to_string(path).expect("read the saved runs");
            let all: Vec<SuiteRun> = serde_json::from_str(&text).expect("parse the saved runs");
            all.into_iter()
                .filter(|r| args.only.contains(&r.scenario) && args.seeds.contains(&r.seed))
                .map(|mut r| {
                    // Diagnose again: the procedure may have changed since the save.
                    r.diagnosis = r.rediagnose(&Thresholds::default()).expect("diagnose");
                    r
                })
                .collect()
        }
        None => {
            let jobs: Vec<(Scenario, u64)> = args
                .only
                .iter()
                .flat_map(|&s| args.seeds.iter().map(move |&seed| (s, seed)))
                .collect();
            let t = Instant::now();
            let runs = train_all(jobs);
            eprintln!(
                "trained {} runs in {:.0} s",
                runs.len(),
                t.elapsed().as_secs_f64()
            );
            runs
        }
    };
    if let Some(path) = &args.save {
        std::fs::write(path, serde_json::to_string(&runs).expect("serialise"))
            .expect("write the runs");
        eprintln!("saved {path}");
    }
    print_runs(&runs, args.verbose);
    let pairs: Vec<(Scenario, Verdict)> = runs
        .iter()
        .map(|r| (r.scenario, r.diagnosis.verdict))
        .collect();
    println!("\n{}", confusion_matrix(&pairs));
    print_calibration(&runs);
    print_time_points(&runs);
}
