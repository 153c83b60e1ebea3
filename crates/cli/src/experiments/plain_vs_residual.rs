//! Experiment 2: how skip connections carry gradient back through deep
//! networks. Residual networks and their plain twins (same layers, same
//! names, no shortcut additions) of several depths, with and without
//! BatchNorm, over several seeds: the depth profile and verdict at
//! initialisation (no update made), then the same after training, where
//! each plain network's depth control is its residual twin.

use gradlab_diag::depth_profile::depth_slope;
use gradlab_diag::stats::{geo_mean, mean_interval, paired_difference, MeanInterval};
use gradlab_diag::{diagnose_with, DepthControl, DiagnoseOptions, Verdict};
use gradlab_train::{
    diagnose_at_init, probe_datasets, run_diagnosed, DiagnosedRun, OptimizerSpec, RecorderOptions,
    RunConfig,
};
use rayon::prelude::*;
use serde_json::json;

use crate::charts::{line_chart, Line, LineChartStyle, XAxis};
use crate::data_spec::build_data;
use crate::error::Result;
use crate::experiments::{every, key_reason, mean_pm, num, Size};
use crate::model_spec::build_model;
use crate::progress::bar;
use crate::report::{Plot, Section, Table};

/// Batches of the diagnosis at initialisation.
const INIT_BATCHES: usize = 4;

/// One network of the sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Net {
    depth: usize,
    residual: bool,
    bn: bool,
}

impl Net {
    fn label(self) -> String {
        format!(
            "{}-{}",
            if self.residual { "ResNet" } else { "plain" },
            self.depth
        )
    }

    fn spec(self) -> String {
        format!(
            "{}:depth={},bn={}",
            if self.residual {
                "resnet"
            } else {
                "plain-resnet"
            },
            self.depth,
            self.bn
        )
    }

    fn twin(self) -> Net {
        Net {
            residual: !self.residual,
            ..self
        }
    }
}

/// One network with one seed: at initialisation and after training.
struct Trial {
    seed: u64,
    init: DiagnosedRun,
    trained: DiagnosedRun,
}

impl Trial {
    /// The step at which the loss or a gradient became non-finite.
    fn diverged_at(&self) -> Option<usize> {
        self.trained.diagnosis.indicators.first_non_finite_step
    }

    fn val_accuracy(&self) -> Option<f64> {
        self.trained
            .history
            .checks
            .last()
            .and_then(|c| c.val_accuracy)
    }

    /// Training loss over ln K on the training batches at the end of the
    /// window: what the verdict reads (the evaluation-mode loss of a deep
    /// BatchNorm network can be far off while its running statistics lag).
    fn loss_to_chance(&self) -> Option<f64> {
        self.trained.diagnosis.indicators.loss_to_chance
    }
}

/// A network over all seeds.
struct Row {
    net: Net,
    trials: Vec<Trial>,
}

/// The numbers of a row over its seeds.
#[derive(Debug, Clone, PartialEq)]
struct Summary {
    kappa_init: Option<MeanInterval>,
    kappa_trained: Option<MeanInterval>,
    loss_to_chance: Option<MeanInterval>,
    val_accuracy: Option<MeanInterval>,
    verdicts_init: Vec<Verdict>,
    verdicts_trained: Vec<Verdict>,
    /// Steps at which runs diverged (one per diverged seed).
    diverged: Vec<usize>,
}

/// Mean and interval of the finite values, `None` when there are none.
fn interval(values: impl Iterator<Item = Option<f64>>) -> Option<MeanInterval> {
    let v: Vec<f64> = values.flatten().filter(|x| x.is_finite()).collect();
    mean_interval(&v).ok()
}

impl Row {
    fn summary(&self) -> Summary {
        let t = &self.trials;
        Summary {
            kappa_init: interval(t.iter().map(|x| x.init.diagnosis.indicators.kappa)),
            // A run that blew up has no trained profile to speak of.
            kappa_trained: interval(
                t.iter()
                    .filter(|x| x.diverged_at().is_none())
                    .map(|x| x.trained.diagnosis.indicators.kappa),
            ),
            loss_to_chance: interval(t.iter().map(Trial::loss_to_chance)),
            val_accuracy: interval(t.iter().map(Trial::val_accuracy)),
            verdicts_init: t.iter().map(|x| x.init.diagnosis.verdict).collect(),
            verdicts_trained: t.iter().map(|x| x.trained.diagnosis.verdict).collect(),
            diverged: t.iter().filter_map(Trial::diverged_at).collect(),
        }
    }
}

/// "exploding in 5 of 5 seeds", "healthy in 3, exploding in 2 of 5 seeds".
fn verdict_counts(verdicts: &[Verdict]) -> String {
    let mut counts: Vec<(Verdict, usize)> = Vec::new();
    for &v in verdicts {
        match counts.iter_mut().find(|(x, _)| *x == v) {
            Some(c) => c.1 += 1,
            None => counts.push((v, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let parts: Vec<String> = counts.iter().map(|(v, n)| format!("{v} in {n}")).collect();
    format!(
        "{} of {} seed{}",
        parts.join(", "),
        verdicts.len(),
        if verdicts.len() == 1 { "" } else { "s" }
    )
}

/// Which way activation gradients go towards the input, from the interval
/// of κ: a direction only when the interval excludes 0.
fn direction(kappa: &MeanInterval) -> &'static str {
    if kappa.upper() < 0.0 {
        "grow towards the input"
    } else if kappa.lower() > 0.0 {
        "shrink towards the input"
    } else {
        "neither grow nor shrink measurably towards the input"
    }
}

/// "lower than", "higher than" or "not measurably different from", from the
/// interval of paired differences (first minus second).
fn comparison(diff: &MeanInterval) -> &'static str {
    if diff.upper() < 0.0 {
        "lower than"
    } else if diff.lower() > 0.0 {
        "higher than"
    } else {
        "not measurably different from"
    }
}

fn pm(iv: &Option<MeanInterval>) -> String {
    iv.as_ref().map_or("-".into(), mean_pm)
}

/// The sentence about one network at initialisation.
fn init_sentence(label: &str, s: &Summary) -> String {
    match &s.kappa_init {
        Some(k) => format!(
            "at initialisation the activation gradients of {label} {} (κ = {} nats per block; verdict {})",
            direction(k),
            mean_pm(k),
            verdict_counts(&s.verdicts_init)
        ),
        None => format!("at initialisation {label} has no measured depth profile"),
    }
}

/// The sentence about one network after training.
fn trained_sentence(s: &Summary, window: &str) -> String {
    let n = s.verdicts_trained.len();
    if s.diverged.len() == n && n > 0 {
        let mut steps = s.diverged.clone();
        steps.sort_unstable();
        steps.dedup();
        let at: Vec<String> = steps.iter().map(|x| x.to_string()).collect();
        return format!(
            "it diverged in every seed (at step {}), so it has no trained profile",
            at.join(" or ")
        );
    }
    let mut out = match &s.kappa_trained {
        Some(k) => format!(
            "after training ({window}) its gradients {} (κ = {}), verdict {}",
            direction(k),
            mean_pm(k),
            verdict_counts(&s.verdicts_trained)
        ),
        None => format!(
            "after training, verdict {}",
            verdict_counts(&s.verdicts_trained)
        ),
    };
    if !s.diverged.is_empty() {
        out.push_str(&format!(
            " ({} of {n} seeds diverged and are left out of κ)",
            s.diverged.len()
        ));
    }
    out
}

/// Held-out accuracy of a plain network against its twin, paired by seed.
fn accuracy_sentence(plain: &Row, residual: &Row) -> Option<String> {
    let pairs: Vec<(f64, f64)> = plain
        .trials
        .iter()
        .zip(&residual.trials)
        .filter_map(|(p, r)| Some((p.val_accuracy()?, r.val_accuracy()?)))
        .collect();
    let (p, r): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
    let diff = paired_difference(&p, &r).ok()?;
    let (pi, ri) = (mean_interval(&p).ok()?, mean_interval(&r).ok()?);
    Some(format!(
        "held-out accuracy of {} is {} {}'s ({} against {}; paired difference {})",
        plain.net.label(),
        comparison(&diff),
        residual.net.label(),
        mean_pm(&pi),
        mean_pm(&ri),
        mean_pm(&diff)
    ))
}

/// Zero-padding taps of a 3x3 kernel (padding 1) on an `h`x`w` map, as a
/// share of the 9, averaged over output positions.
fn padding_share(h: usize, w: usize) -> f64 {
    let inside = |n: usize, i: usize| {
        (0..3)
            .filter(|&d| {
                let j = i as isize + d as isize - 1;
                j >= 0 && (j as usize) < n
            })
            .count()
    };
    let total: usize = (0..h)
        .flat_map(|i| (0..w).map(move |j| (i, j)))
        .map(|(i, j)| inside(h, i) * inside(w, j))
        .sum();
    1.0 - total as f64 / (9 * h * w) as f64
}

/// Per-stage depth slopes of a run's profile (geometric mean over its
/// steps), with each stage's map side: `(stage, side, κ)`.
fn stage_slopes(run: &DiagnosedRun, input_side: usize) -> Vec<(String, usize, f64)> {
    let steps = &run.history.steps;
    let Some(first) = steps.first() else {
        return Vec::new();
    };
    let profile: Vec<(String, f64)> = first
        .positions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let over_steps = steps
                .iter()
                .filter_map(|s| s.positions.get(i))
                .map(|x| x.act_grad_rms);
            (p.name.clone(), geo_mean(over_steps))
        })
        .collect();
    let mut stages: Vec<String> = Vec::new();
    for (name, _) in &profile {
        let stage = name.split('.').next().unwrap_or(name).to_string();
        if !stages.contains(&stage) {
            stages.push(stage);
        }
    }
    stages
        .iter()
        .enumerate()
        .filter_map(|(i, stage)| {
            let values: Vec<f64> = profile
                .iter()
                .filter(|(n, _)| n.split('.').next() == Some(stage))
                .map(|(_, v)| *v)
                .collect();
            let fit = depth_slope(&values).ok()?;
            // Each stage after the first halves the map.
            let side = input_side.div_ceil(1 << i).max(1);
            Some((stage.clone(), side, fit.kappa))
        })
        .collect()
}

/// Which stage carries most of the slope, and why small maps matter.
fn stage_sentence(label: &str, slopes: &[(String, usize, f64)]) -> Option<String> {
    let (worst, side, kappa) = slopes.iter().max_by(|a, b| a.2.total_cmp(&b.2))?.clone();
    let listed: Vec<String> = slopes
        .iter()
        .map(|(s, side, k)| format!("{s} ({side}x{side} maps) {}", num(*k)))
        .collect();
    let others_max = slopes
        .iter()
        .filter(|(s, _, _)| *s != worst)
        .map(|x| x.2)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut out = format!(
        "Per stage, the slope of {label} at initialisation (nats per block, first seed) is {}",
        listed.join(", ")
    );
    if kappa > 0.0 && kappa > 2.0 * others_max.max(0.0) {
        out.push_str(&format!(
            ": most of it comes from {worst}, whose {side}x{side} maps put {:.0}% of a 3x3 kernel's taps on zero padding (against {:.0}% at {}x{}); part of the plain network's attenuation here is an artefact of the small images.",
            100.0 * padding_share(side, side),
            100.0 * padding_share(slopes[0].1, slopes[0].1),
            slopes[0].1,
            slopes[0].1
        ));
    } else {
        out.push_str(": no single stage dominates.");
    }
    Some(out)
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
    let seeds = size.seed_list();
    let steps = size.steps(12, 120);
    let checks = steps.min(8);
    let data = build_data("digits", size.seed)?;
    let (shape, classes) = (data.input_shape(), data.num_classes());
    // Residual first: its losses are the plain twin's depth control.
    let nets: Vec<Net> = [true, false]
        .iter()
        .flat_map(|&bn| {
            depths.iter().flat_map(move |&depth| {
                [true, false].map(|residual| Net {
                    depth,
                    residual,
                    bn,
                })
            })
        })
        .collect();
    // The claims are about the deepest pairs: they run every seed; the
    // shallower networks, which draw the depth trend, the first seed only
    // (their rows say "one seed").
    let deepest = *depths.last().unwrap_or(&8);
    let runs_of = |net: &Net| {
        if net.depth == deepest {
            seeds.len()
        } else {
            1
        }
    };
    let total: usize = nets.iter().map(runs_of).sum();
    let pb = bar((total * (steps + INIT_BATCHES)) as u64, "plain/residual");
    // The data probe depends on the data alone: once for every run.
    let probe = probe_datasets(&*data.train, &*data.val, classes)?;
    let config = |net: Net, seed: u64| RunConfig {
        steps,
        batch_size: 32,
        // Without BatchNorm the deep networks need a smaller step to stay finite.
        optimizer: OptimizerSpec::sgd(if net.bn { 0.05 } else { 0.01 }),
        seed,
        // Held-out checks every few steps draw the accuracy curves;
        // 256 examples make each one cheap.
        checks,
        snr_batches: 0,
        eval_examples: 256,
        // The probe is run once for all networks (above).
        probe: false,
        recorder: RecorderOptions {
            forward_stats_every: 0,
            ..Default::default()
        },
        ..RunConfig::default()
    };
    // Every (seed, network) run is independent: they run side by side on
    // the cores, since one run at batch 32 on 8x8 images keeps only about
    // 1.2 of 2 cores busy. Each run's numbers do not depend on the threads.
    let jobs: Vec<(u64, usize)> = seeds
        .iter()
        .enumerate()
        .flat_map(|(k, &seed)| {
            nets.iter()
                .enumerate()
                .filter(move |(_, net)| k < runs_of(net))
                .map(move |(i, _)| (seed, i))
        })
        .collect();
    let done: Vec<(u64, usize, DiagnosedRun, DiagnosedRun)> = jobs
        .par_iter()
        .map(|&(seed, i)| {
            let net = nets[i];
            let spec = net.spec();
            pb.set_message(format!("{spec}, seed {seed}"));
            let make = || build_model(&spec, shape, classes, seed).map(|m| m.net);
            let cfg = config(net, seed);
            let init = diagnose_at_init(&make, &*data.train, &cfg, INIT_BATCHES, &mut |_| {})?;
            pb.inc(INIT_BATCHES as u64);
            let mut last = 0;
            let mut trained = run_diagnosed(&make, &*data.train, &*data.val, &cfg, &mut |p| {
                if p.phase == "train" {
                    pb.inc((p.step - last) as u64);
                    last = p.step;
                }
            })?;
            pb.inc((steps - last) as u64);
            trained.history.probe = probe.clone();
            Ok((seed, i, init, trained))
        })
        .collect::<Result<_>>()?;
    let mut rows: Vec<Row> = nets
        .iter()
        .map(|&net| Row {
            net,
            trials: Vec::new(),
        })
        .collect();
    for (seed, i, init, mut trained) in done {
        let net = nets[i];
        if !net.residual {
            // The twin trained on the same batches with the same seed and
            // optimizer: exactly the depth control `run_diagnosed` would
            // have trained, so its losses are reused. Residual networks
            // come first in `nets`, so the twin's trial is already here.
            let twin = rows
                .iter()
                .find(|r| r.net == net.twin())
                .and_then(|r| r.trials.iter().find(|t| t.seed == seed));
            if let Some(twin) = twin {
                trained.history.depth_control = Some(DepthControl {
                    model: format!("its residual twin {}", net.twin().spec()),
                    losses: twin
                        .trained
                        .history
                        .steps
                        .iter()
                        .map(|s| (s.step, s.loss))
                        .collect(),
                });
            }
        }
        trained.diagnosis = diagnose_with(&trained.history, &DiagnoseOptions::default())?;
        rows[i].trials.push(Trial {
            seed,
            init,
            trained,
        });
    }
    pb.finish_and_clear();

    let n = seeds.len();
    let window = rows
        .iter()
        .flat_map(|r| &r.trials)
        .find(|t| t.diverged_at().is_none())
        .map_or("-".into(), |t| {
            let w = t.trained.diagnosis.window;
            format!("steps {}–{}", w[0], w[1])
        });
    let mut table = Table::new(
        format!(
            "Gradient flow through depth at initialisation ({INIT_BATCHES} batches, no update) and after {steps} steps (window {window}): mean ± 95% interval over {n} seed{} for the {deepest}-layer networks, the first seed for the others",
            if n == 1 { "" } else { "s" }
        ),
        &[
            "network",
            "BatchNorm",
            "κ at init (nats/block)",
            "verdict at init",
            "κ after training",
            "train loss / ln K",
            "held-out accuracy",
            "verdict after training",
        ],
    );
    let summaries: Vec<Summary> = rows.iter().map(Row::summary).collect();
    for (r, s) in rows.iter().zip(&summaries) {
        let first_reason = r
            .trials
            .first()
            .map(|t| format!("\nfirst seed: {}", key_reason(&t.trained.diagnosis)))
            .unwrap_or_default();
        table.row(vec![
            r.net.label(),
            if r.net.bn { "yes" } else { "no" }.into(),
            pm(&s.kappa_init),
            verdict_counts(&s.verdicts_init),
            pm(&s.kappa_trained),
            pm(&s.loss_to_chance),
            pm(&s.val_accuracy),
            format!("{}{first_reason}", verdict_counts(&s.verdicts_trained)),
        ]);
    }

    // Plots from the first seed. A plain network and its residual twin share
    // a colour (one per depth): plain solid, residual dashed. Blocks are
    // placed by relative depth, so networks of different depths span the
    // same axis.
    let first = seeds.first().copied().unwrap_or(size.seed);
    let colour = |d: usize| depths.iter().position(|&x| x == d);
    let profile = |run: &DiagnosedRun| -> Vec<f64> {
        run.history
            .steps
            .last()
            .map(|s| s.positions.iter().map(|p| p.act_grad_rms).collect())
            .unwrap_or_default()
    };
    let mut plots = Vec::new();
    for bn in [true, false] {
        for at_init in [true, false] {
            let lines: Vec<Line> = rows
                .iter()
                .filter(|r| r.net.bn == bn)
                .filter_map(|r| {
                    let t = r.trials.first()?;
                    let g = profile(if at_init { &t.init } else { &t.trained });
                    let span = g.len().saturating_sub(1).max(1) as f64;
                    Some(Line {
                        label: r.net.label(),
                        points: g
                            .iter()
                            .enumerate()
                            .map(|(i, &g)| (i as f64 / span, g))
                            .collect(),
                        dashed: r.net.residual,
                        colour: colour(r.net.depth),
                        diverged_at: if at_init { None } else { t.diverged_at() },
                    })
                })
                .collect();
            let tag = format!(
                "{}_{}",
                if bn { "bn" } else { "nobn" },
                if at_init { "init" } else { "trained" }
            );
            let with = if bn { "with" } else { "without" };
            let when = if at_init {
                "at initialisation".to_string()
            } else {
                format!("after {steps} steps")
            };
            plots.push(Plot::new(
                format!("plain_vs_residual_{tag}.svg"),
                format!(
                    "Back-propagated gradient RMS at every block's output against relative depth (0: the first block, next to the input; 1: the last), {when}, {with} BatchNorm, seed {first}. One colour per depth; solid: plain, dashed: its residual twin."
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
    let curves: Vec<Line> = rows
        .iter()
        .filter(|r| r.net.depth == deepest)
        .filter_map(|r| {
            let t = r.trials.first()?;
            Some(Line {
                label: format!(
                    "{}, {} BN",
                    r.net.label(),
                    if r.net.bn { "with" } else { "no" }
                ),
                points: t
                    .trained
                    .history
                    .checks
                    .iter()
                    .filter_map(|c| Some((c.step as f64, c.val_accuracy?)))
                    .collect(),
                dashed: r.net.residual,
                colour: Some(usize::from(!r.net.bn)),
                diverged_at: t.diverged_at(),
            })
        })
        .collect();
    plots.push(Plot::new(
        "plain_vs_residual_curves.svg",
        format!("Held-out accuracy during training of the {deepest}-layer networks, seed {first}, checked {}. One colour per BatchNorm setting; solid: plain, dashed: residual.", every(steps, checks)),
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

    let find = |depth: usize, residual: bool, bn: bool| {
        rows.iter().zip(&summaries).find(|(r, _)| {
            r.net
                == Net {
                    depth,
                    residual,
                    bn,
                }
        })
    };
    let mut interpretation = Vec::new();
    for bn in [false, true] {
        let (Some((p, ps)), Some((r, rs))) = (find(deepest, false, bn), find(deepest, true, bn))
        else {
            continue;
        };
        let with = if bn { "With" } else { "Without" };
        let mut text = format!(
            "{with} BatchNorm, {}; for its residual twin, {}. ",
            init_sentence(&p.net.label(), ps),
            init_sentence(&r.net.label(), rs)
        );
        text.push_str(&format!(
            "For {}, {}; for {}, {}.",
            p.net.label(),
            trained_sentence(ps, &window),
            r.net.label(),
            trained_sentence(rs, &window)
        ));
        if let Some(acc) = accuracy_sentence(p, r) {
            text.push_str(&format!(" After {steps} steps the {acc}."));
        }
        interpretation.push(text);
    }
    let side = shape[1];
    for bn in [false, true] {
        if let Some((p, _)) = find(deepest, false, bn) {
            if let Some(t) = p.trials.first() {
                let label = format!(
                    "{} {} BatchNorm",
                    p.net.label(),
                    if bn { "with" } else { "without" }
                );
                if let Some(s) = stage_sentence(&label, &stage_slopes(&t.init, side)) {
                    interpretation.push(s);
                }
            }
        }
    }

    let results: Vec<_> = rows
        .iter()
        .zip(&summaries)
        .map(|(r, s)| {
            json!({
                "model": r.net.spec(), "depth": r.net.depth, "residual": r.net.residual, "batch_norm": r.net.bn,
                "kappa_init": s.kappa_init, "kappa_trained": s.kappa_trained,
                "loss_to_chance": s.loss_to_chance, "val_accuracy": s.val_accuracy,
                "verdicts_init": s.verdicts_init, "verdicts_trained": s.verdicts_trained,
                "stage_slopes_init_first_seed": r.trials.first().map(|t| stage_slopes(&t.init, side)),
                "seeds": r.trials.iter().map(|t| json!({
                    "seed": t.seed,
                    "init": {"indicators": t.init.diagnosis.indicators, "verdict": t.init.diagnosis.verdict,
                             "block_act_grad_rms": profile(&t.init)},
                    "trained": {"indicators": t.trained.diagnosis.indicators, "verdict": t.trained.diagnosis.verdict,
                                "reasons": t.trained.diagnosis.reasons, "window": t.trained.diagnosis.window,
                                "block_act_grad_rms": profile(&t.trained), "checks": t.trained.history.checks},
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Section {
        id: "plain-vs-residual".into(),
        title: "2. Skip connections and gradient flow: ResNets against their plain twins".into(),
        setup: format!(
            "CIFAR-style ResNets (option-A shortcuts) and their plain twins of depths {depths:?}, with and without BatchNorm, on the embedded 8x8 digits: the {deepest}-layer networks with seeds {seeds:?}, the shallower ones with seed {first} (they draw the depth trend). Each network is diagnosed at initialisation ({INIT_BATCHES} batches through the initial weights, no update: only the gradient-flow gates decide), then trained {steps} SGD steps (batch 32) and diagnosed over the second half of training with the data probe; a plain network's depth control is its residual twin, trained on the same batches."
        ),
        interpretation,
        tables: vec![table],
        plots,
        results: json!({ "steps": steps, "seeds": seeds, "init_batches": INIT_BATCHES, "runs": results }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(v: &[f64]) -> MeanInterval {
        mean_interval(v).unwrap()
    }

    #[test]
    fn the_direction_follows_the_interval_of_kappa() {
        assert_eq!(
            direction(&iv(&[-0.25, -0.27, -0.24])),
            "grow towards the input"
        );
        assert_eq!(
            direction(&iv(&[0.4, 0.41, 0.39])),
            "shrink towards the input"
        );
        assert!(direction(&iv(&[-0.2, 0.3, 0.01])).starts_with("neither"));
    }

    #[test]
    fn verdict_counts_list_the_most_frequent_first() {
        use Verdict::*;
        assert_eq!(verdict_counts(&[Exploding; 5]), "exploding in 5 of 5 seeds");
        assert_eq!(
            verdict_counts(&[Healthy, Exploding, Healthy]),
            "healthy in 2, exploding in 1 of 3 seeds"
        );
        assert_eq!(verdict_counts(&[Degradation]), "degradation in 1 of 1 seed");
    }

    fn summary(kappa_init: &[f64], verdicts_init: Vec<Verdict>) -> Summary {
        Summary {
            kappa_init: Some(iv(kappa_init)),
            kappa_trained: Some(iv(&[0.01, -0.02, 0.0])),
            loss_to_chance: None,
            val_accuracy: None,
            verdicts_trained: vec![Verdict::Degradation; 3],
            verdicts_init,
            diverged: Vec::new(),
        }
    }

    #[test]
    fn the_init_sentence_says_what_the_numbers_show() {
        let grows = summary(&[-0.25, -0.26, -0.24], vec![Verdict::Exploding; 3]);
        let text = init_sentence("plain-56", &grows);
        assert!(text.contains("grow towards the input"), "{text}");
        assert!(text.contains("exploding in 3 of 3"), "{text}");
        assert!(!text.contains("healthy"), "{text}");
        let flat = summary(&[-0.01, 0.02, 0.0], vec![Verdict::Healthy; 3]);
        let text = init_sentence("plain-56", &flat);
        assert!(text.contains("neither grow nor shrink"), "{text}");
        assert!(text.contains("healthy in 3 of 3"), "{text}");
    }

    #[test]
    fn the_trained_sentence_reports_divergence_instead_of_a_profile() {
        let mut s = summary(&[0.1, 0.1, 0.1], vec![Verdict::Healthy; 3]);
        let text = trained_sentence(&s, "steps 60–119");
        assert!(text.contains("degradation in 3 of 3"), "{text}");
        s.diverged = vec![1, 2, 1];
        s.verdicts_trained = vec![Verdict::Exploding; 3];
        let text = trained_sentence(&s, "steps 60–119");
        assert!(
            text.contains("diverged in every seed (at step 1 or 2)"),
            "{text}"
        );
        assert!(!text.contains("κ ="), "{text}");
    }

    #[test]
    fn comparisons_need_an_interval_that_excludes_zero() {
        assert_eq!(comparison(&iv(&[-0.6, -0.62, -0.58])), "lower than");
        assert_eq!(comparison(&iv(&[0.1, 0.12, 0.11])), "higher than");
        assert_eq!(
            comparison(&iv(&[-0.1, 0.1, 0.02])),
            "not measurably different from"
        );
    }

    #[test]
    fn padding_share_counts_the_taps_off_the_map() {
        assert!((padding_share(2, 2) - 5.0 / 9.0).abs() < 1e-12);
        assert!((padding_share(1, 1) - 8.0 / 9.0).abs() < 1e-12);
        // Interior positions of a large map see all nine taps.
        assert!(padding_share(64, 64) < 0.05);
    }

    #[test]
    fn the_stage_sentence_blames_a_stage_only_when_it_dominates() {
        let dominated = vec![
            ("stage1".to_string(), 8, 0.10),
            ("stage2".to_string(), 4, 0.28),
            ("stage3".to_string(), 2, 0.80),
        ];
        let text = stage_sentence("plain-56", &dominated).unwrap();
        assert!(text.contains("most of it comes from stage3"), "{text}");
        assert!(text.contains("2x2 maps put 56%"), "{text}");
        let even = vec![
            ("stage1".to_string(), 8, 0.30),
            ("stage2".to_string(), 4, 0.28),
            ("stage3".to_string(), 2, 0.35),
        ];
        let text = stage_sentence("plain-56", &even).unwrap();
        assert!(text.contains("no single stage dominates"), "{text}");
    }
}
