//! Experiment 2: how skip connections carry gradient back through deep
//! networks. Residual networks and their plain twins (same layers, same
//! names, no shortcut additions) of several depths, with and without
//! BatchNorm: the gradient of every layer from input to output at
//! initialisation and after training, the depth slope, and the curves.

use gradlab_train::{run_diagnosed, DiagnosedRun, OptimizerSpec, RecorderOptions, RunConfig};
use serde_json::json;

use crate::charts::{line_chart, Line, LineChartStyle, XAxis};
use crate::data_spec::build_data;
use crate::error::Result;
use crate::experiments::{num, verdict_cell, Size};
use crate::model_spec::build_model;
use crate::progress::bar;
use crate::report::{Plot, Section, Table};

struct Run {
    depth: usize,
    residual: bool,
    bn: bool,
    model: String,
    run: DiagnosedRun,
}

impl Run {
    fn label(&self) -> String {
        format!(
            "{}-{}",
            if self.residual { "ResNet" } else { "plain" },
            self.depth
        )
    }

    /// Per-layer weight-gradient RMS at a recorded step (input to output).
    fn grads_at(&self, first: bool) -> Vec<f64> {
        let steps = &self.run.history.steps;
        let s = if first { steps.first() } else { steps.last() };
        s.map(|s| s.layers.iter().map(|l| l.grad_rms).collect())
            .unwrap_or_default()
    }

    /// Per-block activation-gradient RMS at a recorded step (input to output).
    fn act_grads_at(&self, first: bool) -> Vec<f64> {
        let steps = &self.run.history.steps;
        let s = if first { steps.first() } else { steps.last() };
        s.map(|s| s.positions.iter().map(|p| p.act_grad_rms).collect())
            .unwrap_or_default()
    }

    /// The step at which the loss or a gradient became non-finite.
    fn diverged_at(&self) -> Option<usize> {
        self.run.diagnosis.indicators.first_non_finite_step
    }

    /// First-layer over last-hidden-layer gradient RMS.
    fn first_over_last(&self, first: bool) -> f64 {
        let g = self.grads_at(first);
        // The last entry is the classifier; compare the first conv with the last conv.
        match (g.first(), g.len().checked_sub(2).and_then(|i| g.get(i))) {
            (Some(&a), Some(&b)) if b > 0.0 => a / b,
            _ => f64::NAN,
        }
    }
}

/// Runs the sweep.
///
/// # Errors
/// Training errors.
pub fn run(size: &Size) -> Result<Section> {
    let depths: Vec<usize> = if size.quick {
        vec![8, 20]
    } else {
        vec![8, 20, 56]
    };
    let steps = size.steps(12, 120);
    let checks = steps.min(24);
    let data = build_data("digits", size.seed)?;
    let (shape, classes) = (data.input_shape(), data.num_classes());
    let configs: Vec<(usize, bool, bool)> = [true, false]
        .iter()
        .flat_map(|&bn| {
            depths
                .iter()
                .flat_map(move |&d| [(d, false, bn), (d, true, bn)])
        })
        .collect();
    let pb = bar((configs.len() * steps) as u64, "plain/residual");
    let mut runs = Vec::new();
    for &(depth, residual, bn) in &configs {
        let model = format!(
            "{}:depth={depth},bn={bn}",
            if residual { "resnet" } else { "plain-resnet" }
        );
        pb.set_message(model.clone());
        let config = RunConfig {
            steps,
            batch_size: 32,
            // Without BatchNorm the deep networks need a smaller step to stay finite.
            optimizer: OptimizerSpec::sgd(if bn { 0.05 } else { 0.01 }),
            seed: size.seed,
            // Held-out checks every few steps draw the accuracy curves;
            // 256 examples make each one cheap.
            checks,
            snr_batches: 0,
            eval_examples: 256,
            probe: false,
            recorder: RecorderOptions {
                forward_stats_every: 0,
                ..Default::default()
            },
            ..RunConfig::default()
        };
        let done = pb.position();
        let run = run_diagnosed(
            &|| build_model(&model, shape, classes, size.seed).map(|m| m.net),
            &*data.train,
            &*data.val,
            &config,
            &mut |p| pb.set_position(done + p.step as u64),
        )?;
        pb.set_position(done + steps as u64);
        runs.push(Run {
            depth,
            residual,
            bn,
            model,
            run,
        });
    }
    pb.finish_and_clear();

    let mut table = Table::new(
        "Gradient flow through depth: weight-gradient RMS of the first conv over the last conv, and the depth slope of activation gradients",
        &["network", "BatchNorm", "first/last at init", "first/last after training", "κ (nats/block)", "attenuation (nats)", "final train loss", "held-out accuracy", "verdict"],
    );
    for r in &runs {
        let d = &r.run.diagnosis;
        let last = r.run.history.checks.last();
        table.row(vec![
            r.label(),
            if r.bn { "yes" } else { "no" }.into(),
            num(r.first_over_last(true)),
            num(r.first_over_last(false)),
            d.indicators.kappa.map_or("-".into(), num),
            d.indicators.attenuation.map_or("-".into(), num),
            last.map_or("-".into(), |c| num(c.train_loss)),
            last.and_then(|c| c.val_accuracy).map_or("-".into(), num),
            verdict_cell(d, false),
        ]);
    }

    // A plain network and its residual twin share a colour (one per depth):
    // plain solid, residual dashed. Blocks are placed by relative depth, so
    // networks of different depths span the same axis.
    let colour = |d: usize| depths.iter().position(|&x| x == d);
    let mut plots = Vec::new();
    for bn in [true, false] {
        for (first, when) in [(true, "at initialisation"), (false, "after training")] {
            let lines: Vec<Line> = runs
                .iter()
                .filter(|r| r.bn == bn)
                .map(|r| {
                    let g = r.act_grads_at(first);
                    let span = g.len().saturating_sub(1).max(1) as f64;
                    Line {
                        label: r.label(),
                        points: g
                            .iter()
                            .enumerate()
                            .map(|(i, &g)| (i as f64 / span, g))
                            .collect(),
                        dashed: r.residual,
                        colour: colour(r.depth),
                        diverged_at: r.diverged_at(),
                    }
                })
                .collect();
            let tag = format!(
                "{}_{}",
                if bn { "bn" } else { "nobn" },
                if first { "init" } else { "trained" }
            );
            let with = if bn { "with" } else { "without" };
            plots.push(Plot::new(
                format!("plain_vs_residual_{tag}.svg"),
                format!(
                    "Back-propagated gradient RMS at every block's output against relative depth (0: the first block, next to the input; 1: the last), {when}, {with} BatchNorm. One colour per depth; solid: plain, dashed: its residual twin."
                ),
                line_chart(
                    &format!("Gradient per block {when}, {with} BatchNorm"),
                    "relative depth of the block (0 = input side, 1 = output side)",
                    "activation-gradient RMS (log)",
                    &lines,
                    LineChartStyle {
                        log_y: true,
                        ..LineChartStyle::default()
                    },
                )?,
            ));
        }
    }
    let deepest = *depths.last().unwrap_or(&8);
    let curves: Vec<Line> = runs
        .iter()
        .filter(|r| r.depth == deepest)
        .map(|r| Line {
            label: format!("{}, {} BN", r.label(), if r.bn { "with" } else { "no" }),
            points: r
                .run
                .history
                .checks
                .iter()
                .filter_map(|c| Some((c.step as f64, c.val_accuracy?)))
                .collect(),
            dashed: r.residual,
            colour: Some(usize::from(!r.bn)),
            diverged_at: r.diverged_at(),
        })
        .collect();
    plots.push(Plot::new(
        "plain_vs_residual_curves.svg",
        format!("Held-out accuracy during training of the {deepest}-layer networks, checked {}. One colour per BatchNorm setting; solid: plain, dashed: residual.", crate::experiments::every(steps, checks)),
        line_chart(
            &format!("Held-out accuracy, depth {deepest}"),
            "step",
            "accuracy",
            &curves,
            LineChartStyle {
                x_axis: XAxis::Step,
                ..LineChartStyle::default()
            },
        )?,
    ));

    let find = |d: usize, res: bool, bn: bool| {
        runs.iter()
            .find(|r| r.depth == d && r.residual == res && r.bn == bn)
    };
    let mut interpretation = Vec::new();
    if let (Some(p), Some(r)) = (find(deepest, false, false), find(deepest, true, false)) {
        interpretation.push(format!(
            "Without BatchNorm, at initialisation the first layer of the plain {deepest}-layer network receives {} of the gradient of its last layer; its residual twin, identical but for the shortcuts, {}. Activation gradients decay by κ = {} nats per block in the plain network against {} with shortcuts: the identity path carries ∂L/∂x_L back unattenuated.",
            num(p.first_over_last(true)), num(r.first_over_last(true)),
            p.run.diagnosis.indicators.kappa.map_or("-".into(), num),
            r.run.diagnosis.indicators.kappa.map_or("-".into(), num)
        ));
    }
    if let (Some(p), Some(r)) = (find(deepest, false, true), find(deepest, true, true)) {
        interpretation.push(format!(
            "With BatchNorm both keep healthy gradient norms (first/last {} plain, {} residual at init), as He et al. 2016 report; the plain network's trouble there is optimisation, not vanishing: held-out accuracy {} plain against {} residual after {steps} steps.",
            num(p.first_over_last(true)), num(r.first_over_last(true)),
            p.run.history.checks.last().and_then(|c| c.val_accuracy).map_or("-".into(), num),
            r.run.history.checks.last().and_then(|c| c.val_accuracy).map_or("-".into(), num)
        ));
    }
    let results: Vec<_> = runs
        .iter()
        .map(|r| {
            json!({
                "model": r.model, "depth": r.depth, "residual": r.residual, "batch_norm": r.bn,
                "layer_grad_rms_init": r.grads_at(true), "layer_grad_rms_trained": r.grads_at(false),
                "block_act_grad_rms_init": r.act_grads_at(true), "block_act_grad_rms_trained": r.act_grads_at(false),
                "first_over_last_init": r.first_over_last(true), "first_over_last_trained": r.first_over_last(false),
                "indicators": r.run.diagnosis.indicators, "verdict": r.run.diagnosis.verdict,
                "checks": r.run.history.checks,
            })
        })
        .collect();
    Ok(Section {
        id: "plain-vs-residual".into(),
        title: "2. Skip connections and gradient flow: ResNets against their plain twins".into(),
        setup: format!(
            "CIFAR-style ResNets (option-A shortcuts) and their plain twins of depths {depths:?}, with and without BatchNorm, trained {steps} SGD steps (batch 32) on the embedded 8x8 digits."
        ),
        interpretation,
        tables: vec![table],
        plots,
        results: json!({ "steps": steps, "runs": results }),
    })
}
