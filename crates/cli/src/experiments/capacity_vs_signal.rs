//! Experiment 4: model capacity against the learnable signal in the data.
//! Each cell trains briefly and is diagnosed; stalled cells show the
//! evidence that separates "no learnable signal" from "vanishing gradient",
//! and a deep plain sigmoid network on clean data is the true-vanishing contrast.

use gradlab_diag::Verdict;
use gradlab_nn::HasParams;
use gradlab_train::{run_diagnosed, DiagnosedRun, OptimizerSpec, RecorderOptions, RunConfig};
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
    let mut cells = Vec::new();
    for m in &models {
        for d in &data {
            pb.set_message(format!("{m} on {d}"));
            let base = pb.position();
            cells.push(diagnose_cell(m, d, steps, size, &mut |s| {
                pb.set_position(base + s as u64)
            })?);
            pb.set_position(base + steps as u64);
        }
    }
    pb.set_message(format!("{VANISHING_MODEL} on {}", data[0]));
    let base = pb.position();
    let contrast = diagnose_cell(VANISHING_MODEL, &data[0], steps, size, &mut |s| {
        pb.set_position(base + s as u64)
    })?;
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

    let mut interpretation = Vec::new();
    if let (Some(c), Some(n)) = (clean, noise) {
        let att = |r: &DiagnosedRun| r.diagnosis.indicators.attenuation.map_or("-".into(), num);
        interpretation.push(format!(
            "The same over-parameterised {large} is `{}` on pure noise and `{}` on clean patterns, with a flat depth profile in both (attenuation {} and {} nats), while the deep plain sigmoid network is `{}` on the same clean patterns: its activation gradients shrink by κ = {} nats per layer, {} nats in all.",
            n.run.diagnosis.verdict, c.run.diagnosis.verdict, att(&n.run), att(&c.run),
            contrast.run.diagnosis.verdict,
            contrast.run.diagnosis.indicators.kappa.map_or("-".into(), num), att(&contrast.run)
        ));
        let ni = &n.run.diagnosis.indicators;
        interpretation.push(format!(
            "What tells the ResNet on noise from the sigmoid network is not the loss curve (both sit near ln K) but the evidence: on noise the model-independent probe reaches {} held-out accuracy against chance {} (p = {}), so there is nothing to learn; on clean patterns the same probe reaches {}, so the sigmoid network's stall comes from its depth, not its data.",
            ni.probe_accuracy.map_or("-".into(), num), ni.chance_accuracy.map_or("-".into(), num), ni.probe_p_value.map_or("-".into(), num),
            contrast.run.diagnosis.indicators.probe_accuracy.map_or("-".into(), num)
        ));
    }
    let verdicts: Vec<String> = cells
        .iter()
        .map(|c| c.run.diagnosis.verdict.to_string())
        .collect();
    interpretation.push(format!(
        "Across the grid: {} cells healthy, {} no-signal, {} other; capacity does not rescue a column without signal.",
        verdicts.iter().filter(|v| *v == "healthy").count(),
        verdicts.iter().filter(|v| *v == "no-signal").count(),
        verdicts.iter().filter(|v| *v != "healthy" && *v != "no-signal").count()
    ));
    let cell_json = |c: &Cell| {
        json!({ "model": c.model, "data": c.data, "params": c.params, "verdict": c.run.diagnosis.verdict,
                "confidence": c.run.diagnosis.confidence, "reasons": c.run.diagnosis.reasons,
                "indicators": c.run.diagnosis.indicators })
    };
    Ok(Section {
        id: "capacity-vs-signal".into(),
        title: "4. Capacity against signal: no learnable pattern is not vanishing gradient".into(),
        setup: format!(
            "Models from {} to {} parameters against synthetic 8x8 patterns whose signal goes from 1 (clean) to 0 (pure noise), and the digits with shuffled labels; each cell trained {steps} SGD steps (batch 32) with diagnostics on, then diagnosed.",
            cells.iter().map(|c| c.params).min().unwrap_or(0),
            cells.iter().map(|c| c.params).max().unwrap_or(0)
        ),
        interpretation,
        tables: vec![grid, evidence],
        plots: vec![Plot::new(
            "capacity_vs_signal_profiles.svg",
            "Depth profile of activation gradients: flat for the ResNet on noise (dashed) and on clean data (solid), geometric decay for the deep plain sigmoid network.",
            profile,
        )],
        results: json!({ "steps": steps, "cells": cells.iter().map(cell_json).collect::<Vec<_>>(), "vanishing_contrast": cell_json(&contrast) }),
    })
}
