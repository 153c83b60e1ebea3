//! Experiment 3: auxiliary heads (deep supervision) on a small training
//! set — their effect on early-layer gradients and on overfitting — and
//! what an intermediate layer outputs (a feature map) against the final
//! layer (class scores) and an auxiliary head (an early class prediction).

use gradlab_arch::{AuxOutput, Classifier, HeadMode, OutputRequest};
use gradlab_data::{Batch, Dataset};
use gradlab_diag::stats::{mean_interval, paired_difference, MeanInterval};
use gradlab_nn::{accuracy, Ctx};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::charts::{line_chart, Line, LineChartStyle, XAxis};
use crate::data_spec::{build_data, DataSplits};
use crate::error::Result;
use crate::experiments::fit::{fit, FitConfig, FitPoint};
use crate::experiments::{effect_word, mean_pm, num, Size};
use crate::model_spec::build_model;
use crate::progress::bar;
use crate::report::{Plot, Section, Table};

// The setting: a 10% subset of the 8x8 digits overfits most (a gap of about
// 0.1) at a cost that lets five seeds of the pair run in about a minute.
const BASE: &str = "plain-resnet:depth=20,width=8";
const HEADS: &str = "stage1+stage2";
const DATA: &str = "subset:digits:size=8,frac=0.1";
const FRAC_WORDS: &str = "10%";
const QUICK_STEPS: usize = 16;
const FULL_STEPS: usize = 400;
/// What the settings measured before this one showed (5 seeds each).
const SETTING_NOTE: &str = " Five settings were measured over 5 seeds (16x16 digits, 25%, 300 steps; 8x8, 10%, 400 steps; the same at depth 32; 16x16, 10%, 150 steps; 8x8, 25%, 300 steps at depth 44): in none did the 95% interval of the paired gap difference exclude 0, the nearest being depth 32 at -0.060 ± 0.065.";

/// Accuracy of each auxiliary head's early prediction on `data`.
fn head_accuracy(net: &mut dyn Classifier<f32>, data: &dyn Dataset) -> Result<Vec<(String, f64)>> {
    net.set_training(false);
    let request = OutputRequest {
        heads: HeadMode::Always,
        features: Vec::new(),
    };
    let mut correct: Vec<(String, f64)> = Vec::new();
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(128) {
        let b = Batch::from_indices(data, chunk)?;
        let mut cx = Ctx::no_grad();
        let x = cx.input(b.images);
        let out = net.forward_outputs(&mut cx, x, &request)?;
        for (i, head) in out.aux.iter().enumerate() {
            let acc = accuracy(cx.value(head.logits)?, &b.labels)? * chunk.len() as f64;
            match correct.get_mut(i) {
                Some(c) => c.1 += acc,
                None => correct.push((head.name.clone(), acc)),
            }
        }
    }
    net.set_training(true);
    Ok(correct
        .into_iter()
        .map(|(n, c)| (n, c / data.len().max(1) as f64))
        .collect())
}

/// Index of the largest value.
fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .fold(0, |b, (i, &v)| if v > p[b] { i } else { b })
}

/// Each head's class probabilities for the first example of the batch,
/// computed from that head's own logits.
fn first_example_probabilities(
    cx: &mut Ctx<f32>,
    aux: &[AuxOutput],
) -> Result<Vec<(String, Vec<f32>)>> {
    let mut out = Vec::new();
    for head in aux {
        let probs = cx.graph_mut().softmax(head.logits, 1)?;
        let value = cx.value(probs)?;
        let k = value.shape()[1];
        out.push((head.name.clone(), value.as_slice()[..k].to_vec()));
    }
    Ok(out)
}

/// The table rows of the auxiliary heads: each head's held-out accuracy
/// and its own prediction for example 0 (`examples`, matched by name).
fn head_rows(
    accuracy: &[(String, f64)],
    examples: &[(String, Vec<f32>)],
    batch: usize,
    final_val: &str,
) -> Vec<Vec<String>> {
    accuracy
        .iter()
        .map(|(name, acc)| {
            let example = examples.iter().find(|(n, _)| n == name).map_or(
                "example 0: -".to_string(),
                |(_, p)| {
                    let c = argmax(p);
                    format!("example 0: class {c} with p = {:.3}", p[c])
                },
            );
            let k = examples.first().map_or(0, |(_, p)| p.len());
            vec![
                format!("auxiliary head {name}"),
                format!("[{batch}, {k}]"),
                "an early class prediction [N, K]".into(),
                format!(
                    "held-out accuracy {} as an early exit (final layer {final_val}); {example}",
                    num(*acc)
                ),
            ]
        })
        .collect()
}

/// What one seed measured for one network: the last check, and the first
/// layer's gradient RMS averaged over the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
struct Outcome {
    train_accuracy: f64,
    val_accuracy: f64,
    gap: f64,
    mean_first_layer_grad_rms: f64,
}

impl Outcome {
    fn of(points: &[FitPoint]) -> Option<Outcome> {
        let last = points.last()?;
        Some(Outcome {
            train_accuracy: last.train_accuracy,
            val_accuracy: last.val_accuracy,
            gap: last.train_accuracy - last.val_accuracy,
            mean_first_layer_grad_rms: points.iter().map(|p| p.first_layer_grad_rms).sum::<f64>()
                / points.len() as f64,
        })
    }
}

/// Per-check means over seeds (every seed checks at the same steps).
fn mean_curve(runs: &[Vec<FitPoint>], value: fn(&FitPoint) -> f64) -> Vec<(f64, f64)> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let vs: Vec<f64> = runs.iter().filter_map(|r| r.get(i)).map(value).collect();
            (p.step as f64, vs.iter().sum::<f64>() / vs.len() as f64)
        })
        .collect()
}

/// The sentence on the first layer's gradient: the ratio with/without
/// heads over seeds, and a mechanism only when the interval shows an increase.
fn gradient_sentence(without: &MeanInterval, with: &MeanInterval, ratio: &MeanInterval) -> String {
    let head = format!(
        "Over {} seeds the heads change the first layer's mean gradient RMS from {} to {}, a ratio of {} (with heads / without, per seed)",
        ratio.n,
        mean_pm(without),
        mean_pm(with),
        mean_pm(ratio)
    );
    // The ratio's effect is judged against 1, not 0.
    let shifted = MeanInterval {
        mean: ratio.mean - 1.0,
        ..*ratio
    };
    match effect_word(&shifted) {
        "increased" => format!("{head}: increased, as expected of losses that reach the early layers through a few layers instead of the whole depth."),
        "reduced" => format!("{head}: reduced."),
        word => format!("{head}: {word}."),
    }
}

/// The sentence on overfitting: the gaps with and without heads and the
/// paired difference that decides the word.
fn gap_sentence(
    without: &MeanInterval,
    with: &MeanInterval,
    diff: &MeanInterval,
    val_diff: &MeanInterval,
) -> String {
    let verdict = match effect_word(diff) {
        "reduced" => {
            "the heads reduced the gap, the regularising effect Szegedy et al. (2016) report"
                .to_string()
        }
        "increased" => "the heads increased the gap".to_string(),
        word => format!("{word}: the interval of the difference contains 0"),
    };
    format!(
        "The gap between training and held-out accuracy is {} without heads and {} with them; paired by seed, with heads minus without, the gap changes by {} and held-out accuracy by {}: {verdict}.",
        mean_pm(without),
        mean_pm(with),
        mean_pm(diff),
        mean_pm(val_diff),
    )
}

/// Runs the comparison.
///
/// # Errors
/// Training errors.
pub fn run(size: &Size) -> Result<Section> {
    let seeds = size.seed_list();
    let cfg_for = |seed| FitConfig {
        steps: size.steps(QUICK_STEPS, FULL_STEPS),
        batch: 32,
        lr: 0.05,
        seed,
        // Each check evaluates both splits: enough to draw the curves, few enough to stay cheap.
        checks: if size.quick { 8 } else { 10 },
    };
    let cfg = cfg_for(size.seed);
    let specs = [BASE.to_string(), format!("{BASE},aux={HEADS}")];
    let pb = bar((2 * cfg.steps * seeds.len()) as u64, "aux-heads");
    // Seeds run side by side on the cores (one run at batch 32 keeps about
    // 1.2 of 2 busy); each run's numbers do not depend on the threads.
    type SeedRuns = (Vec<Vec<FitPoint>>, Box<dyn Classifier<f32>>, DataSplits);
    let per_seed: Vec<SeedRuns> = seeds
        .par_iter()
        .map(|&seed| -> Result<SeedRuns> {
            // The seed draws the training subset, the initial weights and the batch order.
            let data = build_data(DATA, seed)?;
            let (shape, classes) = (data.input_shape(), data.num_classes());
            let mut points = Vec::new();
            let mut with_heads = None;
            for spec in &specs {
                pb.set_message(format!("{spec}, seed {seed}"));
                let mut net = build_model(spec, shape, classes, seed)?.net;
                points.push(fit(
                    &mut *net,
                    &*data.train,
                    &*data.val,
                    &cfg_for(seed),
                    &mut || pb.inc(1),
                )?);
                with_heads = Some(net);
            }
            let net = with_heads.expect("two networks per seed");
            Ok((points, net, data))
        })
        .collect::<Result<_>>()?;
    // runs[k][s]: network k (0 without heads, 1 with) at seed s.
    let mut runs: [Vec<Vec<FitPoint>>; 2] = [Vec::new(), Vec::new()];
    let mut first = None;
    for (points, net, data) in per_seed {
        for (k, p) in points.into_iter().enumerate() {
            runs[k].push(p);
        }
        if first.is_none() {
            first = Some((net, data));
        }
    }
    let train_len = first.as_ref().map_or(0, |(_, d)| d.train.len());
    pb.finish_and_clear();
    let (mut net, data) = first.expect("at least one seed ran");

    // What each output is, on held-out examples, from the first seed's network.
    net.set_training(false);
    let probe = Batch::from_indices(&*data.val, &(0..data.val.len().min(64)).collect::<Vec<_>>())?;
    let mut cx = Ctx::no_grad();
    let x = cx.input(probe.images);
    let out = net.forward_outputs(
        &mut cx,
        x,
        &OutputRequest {
            heads: HeadMode::Always,
            features: vec!["stage1".into()],
        },
    )?;
    let feature = out
        .features
        .first()
        .map(|f| f.map)
        .expect("stage1 was requested");
    let fmap = cx.value(feature)?.clone();
    let probs_var = cx.graph_mut().softmax(out.logits, 1)?;
    let probs = cx.value(probs_var)?.clone();
    let k = probs.shape()[1];
    let p0: Vec<f32> = probs.as_slice()[..k].to_vec();
    let head_p0 = first_example_probabilities(&mut cx, &out.aux)?;
    net.set_training(true);
    let heads = head_accuracy(&mut *net, &*data.val)?;
    let mean = fmap.mean_all() as f64;
    let std = (fmap
        .as_slice()
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / fmap.len() as f64)
        .sqrt();
    let zeros = fmap.as_slice().iter().filter(|&&v| v == 0.0).count() as f64 / fmap.len() as f64;

    let outcomes: Vec<Vec<Outcome>> = runs
        .iter()
        .map(|r| r.iter().filter_map(|p| Outcome::of(p)).collect())
        .collect();
    let column =
        |k: usize, f: fn(&Outcome) -> f64| -> Vec<f64> { outcomes[k].iter().map(f).collect() };
    let interval = |k: usize, f: fn(&Outcome) -> f64| mean_interval(&column(k, f));
    let paired = |f: fn(&Outcome) -> f64| paired_difference(&column(1, f), &column(0, f));
    let train_acc = |o: &Outcome| o.train_accuracy;
    let val_acc = |o: &Outcome| o.val_accuracy;
    let gap = |o: &Outcome| o.gap;
    let grad = |o: &Outcome| o.mean_first_layer_grad_rms;
    let ratios: Vec<f64> = column(1, grad)
        .iter()
        .zip(column(0, grad))
        .map(|(a, b)| a / b)
        .collect();
    let ratio = mean_interval(&ratios)?;
    let (gap_without, gap_with, gap_diff) = (interval(0, gap)?, interval(1, gap)?, paired(gap)?);
    let val_diff = paired(val_acc)?;
    let (grad_without, grad_with) = (interval(0, grad)?, interval(1, grad)?);

    let n = seeds.len();
    let mut t1 = Table::new(
        format!("Training with and without auxiliary heads on {FRAC_WORDS} of the digits: mean ± 95% interval over {n} seeds, at the last step"),
        &[
            "network",
            "train accuracy",
            "held-out accuracy",
            "gap (train - held-out)",
            "first-layer gradient RMS (mean over training)",
        ],
    );
    for (k, spec) in specs.iter().enumerate() {
        t1.row(vec![
            spec.clone(),
            mean_pm(&interval(k, train_acc)?),
            mean_pm(&interval(k, val_acc)?),
            mean_pm(&interval(k, gap)?),
            mean_pm(&interval(k, grad)?),
        ]);
    }
    t1.row(vec![
        "with heads minus without (paired by seed)".into(),
        mean_pm(&paired(train_acc)?),
        mean_pm(&val_diff),
        mean_pm(&gap_diff),
        mean_pm(&paired(grad)?),
    ]);
    let mut t2 = Table::new(
        format!(
            "What each output is (held-out examples, the network with heads at seed {})",
            size.seed
        ),
        &["output", "shape", "what it holds", "values"],
    );
    t2.row(vec![
        "intermediate layer (stage1)".into(),
        format!("{:?}", fmap.shape()),
        "a feature map [N, C, H, W]: no class meaning".into(),
        format!(
            "mean {}, std {}, {:.0}% zeros (after ReLU)",
            num(mean),
            num(std),
            zeros * 100.0
        ),
    ]);
    t2.row(vec![
        "final layer (softmax of logits)".into(),
        format!("{:?}", probs.shape()),
        "class probabilities [N, K]".into(),
        format!(
            "example 0: class {} with p = {:.3}; the {k} probabilities sum to {:.4} (label {})",
            argmax(&p0),
            p0[argmax(&p0)],
            p0.iter().sum::<f32>(),
            probe.labels[0]
        ),
    ]);
    let final_val = runs[1][0]
        .last()
        .map_or("-".into(), |p| num(p.val_accuracy));
    for row in head_rows(&heads, &head_p0, fmap.shape()[0], &final_val) {
        t2.row(row);
    }

    // One colour per network: held-out solid, training dashed.
    let tags = ["without heads", "with heads"];
    let acc_lines: Vec<Line> = runs
        .iter()
        .enumerate()
        .flat_map(|(k, r)| {
            [
                Line {
                    label: format!("{}: train", tags[k]),
                    points: mean_curve(r, |p| p.train_accuracy),
                    dashed: true,
                    colour: Some(k),
                    ..Line::default()
                },
                Line {
                    label: format!("{}: held-out", tags[k]),
                    points: mean_curve(r, |p| p.val_accuracy),
                    colour: Some(k),
                    ..Line::default()
                },
            ]
        })
        .collect();
    let grad_lines: Vec<Line> = runs
        .iter()
        .enumerate()
        .map(|(k, r)| Line {
            label: tags[k].into(),
            points: mean_curve(r, |p| p.first_layer_grad_rms),
            colour: Some(k),
            ..Line::default()
        })
        .collect();
    let steps_axis = |log_y| LineChartStyle {
        log_y,
        x_axis: XAxis::Step,
        ..LineChartStyle::default()
    };
    let plots = vec![
        Plot::new(
            "aux_heads_accuracy.svg",
            format!("Training (dashed) and held-out (solid) accuracy with and without auxiliary heads, mean over {n} seeds, checked {}; the space between them is the generalisation gap.", crate::experiments::every(cfg.steps, cfg.checks)),
            line_chart(&format!("Accuracy on {FRAC_WORDS} of the digits"), "step", "accuracy", &acc_lines, steps_axis(false))?,
        ),
        Plot::new(
            "aux_heads_gradient.svg",
            format!("RMS of the first layer's weight gradient during training, mean over {n} seeds."),
            line_chart("First-layer gradient", "step", "gradient RMS (log)", &grad_lines, steps_axis(true))?,
        ),
    ];
    let interpretation = vec![
        gradient_sentence(&grad_without, &grad_with, &ratio),
        gap_sentence(&gap_without, &gap_with, &gap_diff, &val_diff),
        format!(
            "An intermediate layer outputs a feature map of shape {:?} with no class meaning; the final layer outputs class scores whose softmax sums to 1; an auxiliary head turns an intermediate feature map into an early class prediction, here (seed {}) {} on held-out digits.",
            fmap.shape(),
            size.seed,
            heads
                .iter()
                .map(|(n, a)| format!("{} accurate at {n}", num(*a)))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    ];
    Ok(Section {
        id: "aux-heads".into(),
        title: "3. Auxiliary heads: early gradient, regularisation, and what each output is".into(),
        setup: format!(
            "{BASE} with and without heads at {HEADS} (global pooling + linear, loss weight 0.3), trained {} SGD steps (batch 32) on {FRAC_WORDS} of the 8x8 digits ({train_len} examples), held-out {} examples; each of {n} seeds ({}) draws its own training subset, initial weights and batch order, shared by the pair with and without heads.{SETTING_NOTE}",
            cfg.steps, data.val.len(),
            seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
        ),
        interpretation,
        tables: vec![t1, t2],
        plots,
        results: json!({
            "seeds": seeds,
            "steps": cfg.steps,
            "models": specs,
            "outcomes": {"without_heads": outcomes[0], "with_heads": outcomes[1]},
            "intervals": {
                "gap_without_heads": gap_without, "gap_with_heads": gap_with,
                "gap_difference": gap_diff, "val_accuracy_difference": val_diff,
                "grad_without_heads": grad_without, "grad_with_heads": grad_with,
                "grad_ratio": ratio,
            },
            "curves": specs.iter().zip(&runs).map(|(n, r)| json!({"model": n, "checks_per_seed": r})).collect::<Vec<_>>(),
            "feature_map": {"seed": size.seed, "shape": fmap.shape(), "mean": mean, "std": std, "zero_fraction": zeros},
            "final_probabilities_example0": p0, "final_probability_sum": p0.iter().sum::<f32>(),
            "head_accuracy": heads.iter().map(|(n, a)| json!({"head": n, "val_accuracy": a})).collect::<Vec<_>>(),
            "head_probabilities_example0": head_p0.iter().map(|(n, p)| json!({"head": n, "probabilities": p})).collect::<Vec<_>>(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(values: &[f64]) -> MeanInterval {
        mean_interval(values).unwrap()
    }

    #[test]
    fn the_gradient_sentence_judges_the_ratio_against_one() {
        let (without, with) = (iv(&[0.02, 0.03]), iv(&[0.04, 0.05]));
        let up = gradient_sentence(&without, &with, &iv(&[1.9, 2.0, 2.1]));
        assert!(
            up.contains("increased, as expected") && up.contains("2.000 ±"),
            "{up}"
        );
        let down = gradient_sentence(&without, &with, &iv(&[0.5, 0.6, 0.55]));
        assert!(down.ends_with("reduced."), "{down}");
        // Mean above 1 but the interval reaches below it.
        let unclear = gradient_sentence(&without, &with, &iv(&[0.7, 1.9, 1.3]));
        assert!(
            unclear.ends_with("no effect measurable at this size."),
            "{unclear}"
        );
        assert!(unclear.contains("Over 3 seeds"), "{unclear}");
    }

    #[test]
    fn the_gap_sentence_follows_the_paired_interval() {
        let (without, with) = (iv(&[0.10, 0.12]), iv(&[0.05, 0.07]));
        let val = iv(&[0.01, 0.02, 0.03]);
        let reduced = gap_sentence(&without, &with, &iv(&[-0.05, -0.06, -0.04]), &val);
        assert!(reduced.contains("the heads reduced the gap"), "{reduced}");
        assert!(reduced.contains("-0.050 ± 0.025"), "{reduced}");
        let increased = gap_sentence(&without, &with, &iv(&[0.05, 0.06, 0.04]), &val);
        assert!(
            increased.contains("the heads increased the gap"),
            "{increased}"
        );
        let none = gap_sentence(&without, &with, &iv(&[-0.05, 0.03, -0.04]), &val);
        assert!(
            none.contains(
                "no effect measurable at this size: the interval of the difference contains 0"
            ),
            "{none}"
        );
    }

    #[test]
    fn each_head_row_quotes_its_own_prediction() {
        let accuracy = vec![("stage1".to_string(), 0.25), ("stage2".to_string(), 0.75)];
        let examples = vec![
            ("stage1".to_string(), vec![0.1, 0.7, 0.2]),
            ("stage2".to_string(), vec![0.05, 0.15, 0.8]),
        ];
        let rows = head_rows(&accuracy, &examples, 4, "0.900");
        assert!(rows[0][3].contains("class 1 with p = 0.700"), "{rows:?}");
        assert!(rows[1][3].contains("class 2 with p = 0.800"), "{rows:?}");
        assert!(rows[0][3].contains("0.250") && rows[1][3].contains("0.750"));
    }

    #[test]
    fn each_head_gets_the_probabilities_of_its_own_logits() {
        let data = build_data("digits", 0).unwrap();
        let mut net = build_model(
            "plain-resnet:depth=8,width=4,aux=stage1+stage2",
            data.input_shape(),
            data.num_classes(),
            0,
        )
        .unwrap()
        .net;
        net.set_training(false);
        let batch = Batch::from_indices(&*data.val, &[0, 1]).unwrap();
        let mut cx = Ctx::no_grad();
        let x = cx.input(batch.images);
        let request = OutputRequest {
            heads: HeadMode::Always,
            features: Vec::new(),
        };
        let out = net.forward_outputs(&mut cx, x, &request).unwrap();
        let probs = first_example_probabilities(&mut cx, &out.aux).unwrap();
        assert_eq!(probs.len(), 2);
        for ((name, p), head) in probs.iter().zip(&out.aux) {
            assert_eq!(name, &head.name);
            // Softmax of this head's logits, row 0.
            let logits = cx.value(head.logits).unwrap();
            let row = &logits.as_slice()[..p.len()];
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
            for (got, v) in p.iter().zip(row) {
                assert!((got - (v - max).exp() / sum).abs() < 1e-5, "{name}");
            }
        }
        assert_ne!(probs[0].1, probs[1].1, "two heads, two predictions");
    }
}
