//! Experiment 4: model capacity against the learnable signal in the data.
//! Each cell trains briefly and is diagnosed; stalled cells show the
//! evidence that separates "no learnable signal" from "vanishing gradient",
//! and a deep plain sigmoid network on clean data is the true-vanishing contrast.

use gradlab_diag::depth_profile::{pytorch_default_mean_field, MeanField};
use gradlab_diag::{Activation, Diagnosis, Thresholds, Verdict};
use gradlab_nn::HasParams;
use gradlab_train::{run_diagnosed, DiagnosedRun, OptimizerSpec, RecorderOptions, RunConfig};
use rayon::prelude::*;
use serde_json::json;

use crate::charts::{line_chart, Line, LineChartStyle, XAxis};
use crate::data_spec::build_data;
use crate::error::Result;
use crate::experiments::{num, verdict_cell, Size};
use crate::model_spec::build_model;
use crate::progress::bar;
use crate::report::{Plot, Section, Table};

/// The deep plain sigmoid network: the true-vanishing contrast.
pub const VANISHING_MODEL: &str = "plain-mlp:depth=20,width=32,act=sigmoid";
/// Its hidden width, for the mean-field prediction (a test keeps the two in step).
const VANISHING_WIDTH: usize = 32;

struct Cell {
    model: String,
    data: String,
    params: usize,
    run: DiagnosedRun,
}

fn diagnose_cell(
    model: &str,
    data: &str,
    steps: usize,
    size: &Size,
    tick: &mut dyn FnMut(usize),
) -> Result<Cell> {
    let splits = build_data(data, size.seed)?;
    let (shape, classes) = (splits.input_shape(), splits.num_classes());
    let built = build_model(model, shape, classes, size.seed)?;
    let params = built.net.num_trainable();
    let config = RunConfig {
        steps,
        batch_size: 32,
        optimizer: OptimizerSpec::sgd(0.05),
        seed: size.seed,
        checks: 4,
        snr_batches: if size.quick { 2 } else { 4 },
        eval_examples: 400,
        probe: true,
        // A no-signal verdict needs the model not to beat its own
        // label-shuffled twin; without the control it is capped at 0.8.
        shuffle_control: true,
        recorder: RecorderOptions {
            activation: Some(built.activation),
            forward_stats_every: 10,
            ..Default::default()
        },
        ..RunConfig::default()
    };
    let run = run_diagnosed(
        &|| build_model(model, shape, classes, size.seed).map(|m| m.net),
        &*splits.train,
        &*splits.val,
        &config,
        &mut |p| {
            if p.phase == "train" {
                tick(p.step)
            }
        },
    )?;
    Ok(Cell {
        model: model.into(),
        data: data.into(),
        params,
        run,
    })
}

fn last_profile(run: &DiagnosedRun) -> Vec<f64> {
    run.history
        .steps
        .last()
        .map(|s| s.positions.iter().map(|p| p.act_grad_rms).collect())
        .unwrap_or_default()
}

/// The numbers of one diagnosed run that the sentences quote.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Evidence {
    verdict: Verdict,
    kappa: Option<f64>,
    attenuation: Option<f64>,
    loss_to_chance: Option<f64>,
    probe_accuracy: Option<f64>,
    chance: Option<f64>,
    probe_p: Option<f64>,
}

impl Evidence {
    fn of(d: &Diagnosis) -> Self {
        let i = &d.indicators;
        Evidence {
            verdict: d.verdict,
            kappa: i.kappa,
            attenuation: i.attenuation,
            loss_to_chance: i.loss_to_chance,
            probe_accuracy: i.probe_accuracy,
            chance: i.chance_accuracy,
            probe_p: i.probe_p_value,
        }
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or("-".into(), num)
}

/// The depth profile in words: flat only under the attenuation threshold
/// of the verdicts.
fn profile_words(attenuation: Option<f64>, th: &Thresholds) -> String {
    match attenuation {
        Some(a) if a.abs() < th.attenuation => format!(
            "a flat depth profile, {} nats of attenuation against the verdicts' threshold of {}",
            num(a),
            num(th.attenuation)
        ),
        Some(a) => format!(
            "{} nats of attenuation across its depth, beyond the verdicts' threshold of {}",
            num(a),
            num(th.attenuation)
        ),
        None => "no measured depth profile".into(),
    }
}

/// The large model on noise and on clean patterns, against the deep
/// sigmoid network on clean patterns.
fn contrast_sentence(
    large: &str,
    noise: &Evidence,
    clean: &Evidence,
    sigmoid: &Evidence,
    th: &Thresholds,
) -> String {
    let slope = match sigmoid.kappa {
        Some(k) if k > 0.0 => format!(
            "its activation gradients shrink towards the input by κ = {} nats per layer, {} nats in all",
            num(k),
            opt(sigmoid.attenuation)
        ),
        Some(k) => format!(
            "its activation gradients grow towards the input (κ = {} nats per layer)",
            num(k)
        ),
        None => "its depth profile could not be fitted".into(),
    };
    format!(
        "The same {large} is `{}` on pure noise ({}) and `{}` on clean patterns ({}), while the deep plain sigmoid network is `{}` on the same clean patterns: {slope}.",
        noise.verdict,
        profile_words(noise.attenuation, th),
        clean.verdict,
        profile_words(clean.attenuation, th),
        sigmoid.verdict,
    )
}

/// What the loss shows of the two stalls, and what the data probe adds.
fn probe_sentence(noise: &Evidence, sigmoid: &Evidence, th: &Thresholds) -> String {
    let near = |e: &Evidence| {
        e.loss_to_chance
            .is_some_and(|l| l >= th.stall_loss_to_chance)
    };
    let loss = if near(noise) && near(sigmoid) {
        format!(
            "Both losses stay near chance (loss / ln K = {} on noise and {} for the sigmoid network, at or above {}), so the loss does not tell the two stalls apart",
            opt(noise.loss_to_chance),
            opt(sigmoid.loss_to_chance),
            num(th.stall_loss_to_chance)
        )
    } else {
        format!(
            "The losses differ (loss / ln K = {} on noise, {} for the sigmoid network; near chance is {} or more)",
            opt(noise.loss_to_chance),
            opt(sigmoid.loss_to_chance),
            num(th.stall_loss_to_chance)
        )
    };
    let significant = |e: &Evidence| e.probe_p.is_some_and(|p| p < th.probe_alpha);
    let on_noise = format!(
        "on noise the model-independent probe reaches {} held-out accuracy against chance {} (p = {}), {}",
        opt(noise.probe_accuracy),
        opt(noise.chance),
        opt(noise.probe_p),
        if significant(noise) {
            format!("below {}: it finds signal", num(th.probe_alpha))
        } else {
            format!("not below {}: no signal it can find", num(th.probe_alpha))
        }
    );
    let on_clean = if significant(sigmoid) {
        let cause = if sigmoid.verdict == Verdict::Vanishing {
            ", so the sigmoid network's stall is not its data's"
        } else {
            ""
        };
        format!(
            "on clean patterns it reaches {} (p = {}){cause}",
            opt(sigmoid.probe_accuracy),
            opt(sigmoid.probe_p)
        )
    } else {
        format!(
            "on clean patterns it reaches {} (p = {}, not below {})",
            opt(sigmoid.probe_accuracy),
            opt(sigmoid.probe_p),
            num(th.probe_alpha)
        )
    };
    format!("{loss}; {on_noise}; {on_clean}.")
}

/// The sigmoid network's measured κ against the mean-field value.
fn theory_sentence(measured: Option<f64>, theory: &MeanField) -> String {
    let at = format!(
        "mean-field theory at initialisation gives κ = {} (fixed point q* = {} of the pre-activation variance, PyTorch's default init, width {VANISHING_WIDTH})",
        num(theory.kappa),
        num(theory.q_star)
    );
    match measured {
        Some(k) => format!(
            "The sigmoid network's measured κ is {} nats per layer over the last window; {at}: a difference of {} ({:.1}%).",
            num(k),
            num(k - theory.kappa),
            100.0 * (k - theory.kappa) / theory.kappa
        ),
        None => format!("The sigmoid network's κ could not be measured; {at}."),
    }
}

/// One cell of the grid as the summary sentence sees it.
#[derive(Debug, Clone, PartialEq)]
struct GridCell {
    model: String,
    column: String,
    /// Pure noise or shuffled labels: no learnable relation by construction.
    without_signal: bool,
    verdict: Verdict,
    confidence: f64,
}

/// The grid in one sentence: the verdict counts, the confidence of the
/// no-signal verdicts, and whether any model learns a column without signal.
fn grid_sentence(cells: &[GridCell]) -> String {
    let count = |v: Verdict| cells.iter().filter(|c| c.verdict == v).count();
    let (healthy, no_signal) = (count(Verdict::Healthy), count(Verdict::NoSignal));
    let conf: Vec<f64> = cells
        .iter()
        .filter(|c| c.verdict == Verdict::NoSignal)
        .map(|c| c.confidence)
        .collect();
    let conf_words = if conf.is_empty() {
        String::new()
    } else {
        format!(
            " (confidence {} to {})",
            num(conf.iter().cloned().fold(f64::INFINITY, f64::min)),
            num(conf.iter().cloned().fold(f64::NEG_INFINITY, f64::max))
        )
    };
    let rescued: Vec<String> = cells
        .iter()
        .filter(|c| c.without_signal && c.verdict == Verdict::Healthy)
        .map(|c| format!("{} on {}", c.model, c.column))
        .collect();
    let models_without: std::collections::BTreeSet<&str> = cells
        .iter()
        .filter(|c| c.without_signal)
        .map(|c| c.model.as_str())
        .collect();
    let capacity = if models_without.is_empty() {
        String::new()
    } else if rescued.is_empty() {
        format!(
            "; none of the {} models is healthy on a column without signal: capacity does not rescue it",
            models_without.len()
        )
    } else {
        format!(
            "; healthy on a column without signal: {}",
            rescued.join(", ")
        )
    };
    let other = cells.len() - healthy - no_signal;
    let cells_word = if healthy == 1 { "cell" } else { "cells" };
    format!(
        "Across the grid: {healthy} {cells_word} healthy, {no_signal} no-signal{conf_words}, {other} other{capacity}."
    )
}

/// Runs the grid.
///
/// # Errors
/// Training errors.
pub fn run(size: &Size) -> Result<Section> {
    let models: Vec<&str> = if size.quick {
        vec!["plain-mlp:depth=2,width=16", "resnet:depth=20,width=16"]
    } else {
        vec![
            "plain-mlp:depth=2,width=16",
            "resnet:depth=8,width=8",
            "resnet:depth=20,width=16",
        ]
    };
    let signals: Vec<f64> = if size.quick {
        vec![1.0, 0.0]
    } else {
        vec![1.0, 0.3, 0.1, 0.0]
    };
    let mut data: Vec<String> = signals
        .iter()
        .map(|s| format!("patterns:size=8,n=1500,signal={s}"))
        .collect();
    data.push("shuffled:digits".into());
    let steps = size.steps(30, 150);
    let pb = bar(
        ((models.len() * data.len() + 1) * steps) as u64,
        "capacity/signal",
    );
    // Every cell, then the contrast; they run side by side on the cores
    // (one small run keeps about 1.2 of 2 busy), each cell's numbers
    // independent of the threads.
    let jobs: Vec<(&str, &str)> = models
        .iter()
        .flat_map(|m| data.iter().map(move |d| (*m, d.as_str())))
        .chain(std::iter::once((VANISHING_MODEL, data[0].as_str())))
        .collect();
    let mut cells: Vec<Cell> = jobs
        .par_iter()
        .map(|&(m, d)| {
            pb.set_message(format!("{m} on {d}"));
            let mut last = 0;
            let cell = diagnose_cell(m, d, steps, size, &mut |s| {
                pb.inc(s.saturating_sub(last) as u64);
                last = s;
            })?;
            pb.inc(steps.saturating_sub(last) as u64);
            Ok(cell)
        })
        .collect::<Result<_>>()?;
    let contrast = cells.pop().expect("the contrast ran last");
    pb.finish_and_clear();

    let column = |d: &str| -> String {
        if d.starts_with("shuffled") {
            "digits, shuffled labels".into()
        } else if d.ends_with("signal=0") {
            "pure noise (signal 0)".into()
        } else {
            format!("patterns, signal {}", d.rsplit('=').next().unwrap_or("?"))
        }
    };
    let mut header = vec!["model (parameters)".to_string()];
    header.extend(data.iter().map(|d| column(d)));
    let mut grid = Table {
        caption: "Verdict (confidence) per cell, and the first reason for it".into(),
        header,
        rows: Vec::new(),
        notes: Vec::new(),
    };
    for m in &models {
        let mut row = vec![format!(
            "{m} ({})",
            cells.iter().find(|c| c.model == *m).map_or(0, |c| c.params)
        )];
        for d in &data {
            let c = cells
                .iter()
                .find(|c| c.model == *m && c.data == *d)
                .expect("every cell ran");
            row.push(verdict_cell(&c.run.diagnosis, true));
        }
        grid.rows.push(row);
    }
    let mut contrast_row = vec![format!("{VANISHING_MODEL} ({})", contrast.params)];
    contrast_row.push(verdict_cell(&contrast.run.diagnosis, true));
    contrast_row.extend((1..data.len()).map(|_| "-".to_string()));
    grid.rows.push(contrast_row);

    let mut evidence = Table::new(
        "Evidence for the cells that do not learn (and the contrast); the reasons of each verdict are listed beneath",
        &[
            "model on data",
            "verdict",
            "loss / ln K",
            "κ (nats/layer)",
            "attenuation (nats)",
            "probe accuracy (chance)",
            "probe p-value",
            "gradient SNR",
            "shuffle gap π",
            "held-out accuracy",
        ],
    );
    let stalled = |c: &Cell| {
        !matches!(
            c.run.diagnosis.verdict,
            Verdict::Healthy | Verdict::Overfitting
        )
    };
    for c in cells
        .iter()
        .filter(|c| stalled(c))
        .chain(std::iter::once(&contrast))
    {
        let d = &c.run.diagnosis;
        let i = &d.indicators;
        evidence.row(vec![
            format!("{} on {}", c.model, column(&c.data)),
            d.verdict.to_string(),
            i.loss_to_chance.map_or("-".into(), num),
            i.kappa.map_or("-".into(), num),
            i.attenuation.map_or("-".into(), num),
            format!(
                "{} ({})",
                i.probe_accuracy.map_or("-".into(), num),
                i.chance_accuracy.map_or("-".into(), num)
            ),
            i.probe_p_value.map_or("-".into(), num),
            i.snr.map_or("-".into(), num),
            i.shuffle_gap.map_or("-".into(), num),
            i.val_accuracy.map_or("-".into(), num),
        ]);
        evidence.note(
            format!(
                "{} on {}: `{}` because",
                c.model,
                column(&c.data),
                d.verdict
            ),
            d.reasons.clone(),
        );
    }

    let large = *models.last().expect("models");
    let find = |d: &str| cells.iter().find(|c| c.model == large && c.data == d);
    let clean = find(&data[0]);
    let noise = find(&data[signals.len() - 1]);
    let profile_line = |label: String, run: &DiagnosedRun, dashed: bool, colour: usize| Line {
        label,
        points: last_profile(run)
            .into_iter()
            .enumerate()
            .map(|(x, v)| (x as f64, v))
            .collect(),
        dashed,
        colour: Some(colour),
        diverged_at: run.diagnosis.indicators.first_non_finite_step,
    };
    let mut series = vec![profile_line(
        format!("{VANISHING_MODEL}, clean patterns"),
        &contrast.run,
        false,
        0,
    )];
    if let Some(c) = clean {
        series.push(profile_line(
            format!("{large}, clean patterns"),
            &c.run,
            false,
            1,
        ));
    }
    if let Some(c) = noise {
        series.push(profile_line(
            format!("{large}, pure noise"),
            &c.run,
            true,
            1,
        ));
    }
    let profile = line_chart(
        "Activation-gradient RMS per block/layer at the last step",
        "position (block or layer, input → output)",
        "gradient RMS (log)",
        &series,
        LineChartStyle {
            log_y: true,
            markers: true,
            x_axis: XAxis::Count,
        },
    )?;

    let th = Thresholds::default();
    let theory = pytorch_default_mean_field(Activation::Sigmoid, VANISHING_WIDTH)?;
    let sigmoid = Evidence::of(&contrast.run.diagnosis);
    let mut interpretation = Vec::new();
    if let (Some(c), Some(n)) = (clean, noise) {
        let (noise, clean) = (
            Evidence::of(&n.run.diagnosis),
            Evidence::of(&c.run.diagnosis),
        );
        interpretation.push(contrast_sentence(large, &noise, &clean, &sigmoid, &th));
        interpretation.push(probe_sentence(&noise, &sigmoid, &th));
    }
    interpretation.push(theory_sentence(sigmoid.kappa, &theory));
    let grid_cells: Vec<GridCell> = cells
        .iter()
        .map(|c| GridCell {
            model: c.model.clone(),
            column: column(&c.data),
            without_signal: c.data.starts_with("shuffled") || c.data.ends_with("signal=0"),
            verdict: c.run.diagnosis.verdict,
            confidence: c.run.diagnosis.confidence,
        })
        .collect();
    interpretation.push(grid_sentence(&grid_cells));
    let cell_json = |c: &Cell| {
        json!({ "model": c.model, "data": c.data, "params": c.params, "verdict": c.run.diagnosis.verdict,
                "confidence": c.run.diagnosis.confidence, "reasons": c.run.diagnosis.reasons,
                "indicators": c.run.diagnosis.indicators })
    };
    Ok(Section {
        id: "capacity-vs-signal".into(),
        title: "4. Capacity against signal: no learnable pattern, or vanishing gradients?".into(),
        setup: format!(
            "Models from {} to {} parameters against synthetic 8x8 patterns whose signal goes from 1 (clean) to 0 (pure noise), and the digits with shuffled labels; each cell trained {steps} SGD steps (batch 32) with diagnostics on, next to a copy trained on shuffled labels (the label-shuffle control), then diagnosed.",
            cells.iter().map(|c| c.params).min().unwrap_or(0),
            cells.iter().map(|c| c.params).max().unwrap_or(0)
        ),
        interpretation,
        tables: vec![grid, evidence],
        plots: vec![Plot::new(
            "capacity_vs_signal_profiles.svg",
            "Depth profile of activation gradients at the last step: the large ResNet on noise (dashed) and on clean patterns (solid), and the deep plain sigmoid network on clean patterns; a straight falling line on this log scale is geometric decay.",
            profile,
        )],
        results: json!({ "steps": steps, "mean_field_theory": theory, "cells": cells.iter().map(cell_json).collect::<Vec<_>>(), "vanishing_contrast": cell_json(&contrast) }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(verdict: Verdict) -> Evidence {
        Evidence {
            verdict,
            kappa: Some(1.98),
            attenuation: Some(0.5),
            loss_to_chance: Some(0.99),
            probe_accuracy: Some(0.13),
            chance: Some(0.105),
            probe_p: Some(0.2),
        }
    }

    #[test]
    fn the_vanishing_width_is_the_models() {
        assert!(VANISHING_MODEL.contains(&format!("width={VANISHING_WIDTH},")));
    }

    #[test]
    fn a_profile_is_flat_only_under_the_threshold() {
        let th = Thresholds::default();
        assert!(profile_words(Some(0.5), &th).starts_with("a flat depth profile"));
        assert!(!profile_words(Some(37.0), &th).contains("flat"));
        let (noise, mut clean) = (evidence(Verdict::NoSignal), evidence(Verdict::Healthy));
        let sigmoid = evidence(Verdict::Vanishing);
        let s = contrast_sentence("resnet", &noise, &clean, &sigmoid, &th);
        assert!(s.contains("shrink towards the input by κ = 1.980"), "{s}");
        clean.attenuation = Some(9.0);
        let s = contrast_sentence("resnet", &noise, &clean, &sigmoid, &th);
        assert!(
            s.contains("9.000 nats of attenuation across its depth"),
            "{s}"
        );
        let growing = Evidence {
            kappa: Some(-0.3),
            ..sigmoid
        };
        let s = contrast_sentence("resnet", &noise, &clean, &growing, &th);
        assert!(s.contains("grow towards the input"), "{s}");
    }

    #[test]
    fn the_probe_sentence_follows_the_p_values_and_losses() {
        let th = Thresholds::default();
        let noise = evidence(Verdict::NoSignal);
        let mut sigmoid = Evidence {
            probe_accuracy: Some(0.97),
            probe_p: Some(1e-40),
            ..evidence(Verdict::Vanishing)
        };
        let s = probe_sentence(&noise, &sigmoid, &th);
        assert!(s.contains("does not tell the two stalls apart"), "{s}");
        assert!(
            s.contains("no signal it can find") && s.contains("not its data's"),
            "{s}"
        );
        let found = Evidence {
            probe_p: Some(1e-5),
            ..noise
        };
        assert!(probe_sentence(&found, &sigmoid, &th).contains("it finds signal"));
        sigmoid.loss_to_chance = Some(0.3);
        assert!(probe_sentence(&noise, &sigmoid, &th).starts_with("The losses differ"));
        sigmoid.probe_p = Some(0.5);
        let s = probe_sentence(&noise, &sigmoid, &th);
        assert!(
            !s.contains("not its data's") && s.contains("not below"),
            "{s}"
        );
    }

    #[test]
    fn the_theory_sentence_quotes_the_difference() {
        let theory = MeanField {
            q_star: 0.1,
            chi1: 0.02,
            kappa: 2.0,
        };
        let s = theory_sentence(Some(2.2), &theory);
        assert!(
            s.contains("2.200") && s.contains("κ = 2.000") && s.contains("0.200 (10.0%)"),
            "{s}"
        );
        assert!(theory_sentence(None, &theory).contains("could not be measured"));
    }

    #[test]
    fn capacity_rescues_nothing_only_when_no_model_is_healthy_without_signal() {
        let cell = |model: &str, without_signal, verdict, confidence| GridCell {
            model: model.into(),
            column: if without_signal { "noise" } else { "clean" }.into(),
            without_signal,
            verdict,
            confidence,
        };
        let mut cells = vec![
            cell("small", false, Verdict::Healthy, 0.9),
            cell("small", true, Verdict::NoSignal, 0.95),
            cell("large", false, Verdict::Healthy, 0.9),
            cell("large", true, Verdict::NoSignal, 0.85),
        ];
        let s = grid_sentence(&cells);
        assert!(
            s.contains("2 cells healthy, 2 no-signal (confidence 0.850 to 0.950), 0 other"),
            "{s}"
        );
        assert!(s.contains("capacity does not rescue it"), "{s}");
        cells[3].verdict = Verdict::Healthy;
        let s = grid_sentence(&cells);
        assert!(
            !s.contains("does not rescue") && s.contains("large on noise"),
            "{s}"
        );
    }
}
