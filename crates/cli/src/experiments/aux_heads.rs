//! Experiment 3: auxiliary heads (deep supervision) on a small training
//! set — their effect on early-layer gradients and on overfitting — and
//! what an intermediate layer outputs (a feature map) against the final
//! layer (class scores) and an auxiliary head (an early class prediction).

use gradlab_arch::{AuxOutput, Classifier, HeadMode, OutputRequest};
use gradlab_data::{Batch, Dataset};
use gradlab_nn::{accuracy, Ctx};
use serde_json::json;

use crate::charts::{line_chart, Line, LineChartStyle, XAxis};
use crate::data_spec::build_data;
use crate::error::Result;
use crate::experiments::fit::{fit, FitConfig, FitPoint};
use crate::experiments::{num, Size};
use crate::model_spec::build_model;
use crate::progress::bar;
use crate::report::{Plot, Section, Table};

const BASE: &str = "plain-resnet:depth=20,width=8";
const HEADS: &str = "stage1+stage2";

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

/// Runs the comparison.
///
/// # Errors
/// Training errors.
pub fn run(size: &Size) -> Result<Section> {
    let data = build_data("subset:digits:size=16,frac=0.25", size.seed)?;
    let (shape, classes) = (data.input_shape(), data.num_classes());
    let cfg = FitConfig {
        steps: size.steps(16, 300),
        batch: 32,
        lr: 0.05,
        seed: size.seed,
        // Frequent checks draw the accuracy curves; at this size they are cheap.
        checks: if size.quick { 8 } else { 30 },
    };
    let pb = bar(2 * cfg.steps as u64, "aux-heads");
    let mut curves: Vec<(String, Vec<FitPoint>)> = Vec::new();
    let mut with_heads = None;
    for spec in [BASE.to_string(), format!("{BASE},aux={HEADS}")] {
        pb.set_message(spec.clone());
        let mut net = build_model(&spec, shape, classes, size.seed)?.net;
        let points = fit(&mut *net, &*data.train, &*data.val, &cfg, &mut || pb.inc(1))?;
        curves.push((spec.clone(), points));
        if spec.contains("aux=") {
            with_heads = Some(net);
        }
    }
    pb.finish_and_clear();
    let mut net = with_heads.expect("the second run has heads");

    // What each output is, on held-out examples.
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

    let last = |i: usize| curves[i].1.last().cloned();
    let (bare, aux) = (last(0), last(1));
    let mut t1 = Table::new(
        "Training with and without auxiliary heads on 25% of the digits",
        &[
            "network",
            "train accuracy",
            "held-out accuracy",
            "gap",
            "first-layer gradient RMS (mean over training)",
        ],
    );
    let mean_grad = |pts: &[FitPoint]| {
        pts.iter().map(|p| p.first_layer_grad_rms).sum::<f64>() / pts.len().max(1) as f64
    };
    for (name, pts) in &curves {
        if let Some(p) = pts.last() {
            t1.row(vec![
                name.clone(),
                num(p.train_accuracy),
                num(p.val_accuracy),
                num(p.train_accuracy - p.val_accuracy),
                num(mean_grad(pts)),
            ]);
        }
    }
    let mut t2 = Table::new(
        "What each output is (held-out examples)",
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
    let final_val = aux.as_ref().map_or("-".into(), |p| num(p.val_accuracy));
    for row in head_rows(&heads, &head_p0, fmap.shape()[0], &final_val) {
        t2.row(row);
    }

    // One colour per network: held-out solid, training dashed.
    let acc_lines: Vec<Line> = curves
        .iter()
        .enumerate()
        .flat_map(|(k, (name, pts))| {
            let tag = if name.contains("aux") {
                "with heads"
            } else {
                "without heads"
            };
            [
                Line {
                    label: format!("{tag}: train"),
                    points: pts
                        .iter()
                        .map(|p| (p.step as f64, p.train_accuracy))
                        .collect(),
                    dashed: true,
                    colour: Some(k),
                    ..Line::default()
                },
                Line {
                    label: format!("{tag}: held-out"),
                    points: pts
                        .iter()
                        .map(|p| (p.step as f64, p.val_accuracy))
                        .collect(),
                    colour: Some(k),
                    ..Line::default()
                },
            ]
        })
        .collect();
    let grad_lines: Vec<Line> = curves
        .iter()
        .enumerate()
        .map(|(k, (name, pts))| Line {
            label: if name.contains("aux") {
                "with heads".into()
            } else {
                "without heads".into()
            },
            points: pts
                .iter()
                .map(|p| (p.step as f64, p.first_layer_grad_rms))
                .collect(),
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
            format!("Training (dashed) and held-out (solid) accuracy with and without auxiliary heads, checked {}; the space between them is the generalisation gap.", crate::experiments::every(cfg.steps, cfg.checks)),
            line_chart("Accuracy on 25% of the digits", "step", "accuracy", &acc_lines, steps_axis(false))?,
        ),
        Plot::new(
            "aux_heads_gradient.svg",
            "RMS of the first layer's weight gradient during training: the heads inject gradient close to the input.",
            line_chart("First-layer gradient", "step", "gradient RMS (log)", &grad_lines, steps_axis(true))?,
        ),
    ];
    let mut interpretation = Vec::new();
    if let (Some(b), Some(a)) = (&bare, &aux) {
        let (gb, ga) = (mean_grad(&curves[0].1), mean_grad(&curves[1].1));
        interpretation.push(format!(
            "The heads change the first layer's gradient RMS from {} to {} ({:.1}x): their losses reach the early layers through a few layers instead of the whole depth.",
            num(gb), num(ga), ga / gb
        ));
        interpretation.push(format!(
            "On this small training set the gap between training and held-out accuracy is {} without heads and {} with them (held-out {} against {}): {}",
            num(b.train_accuracy - b.val_accuracy), num(a.train_accuracy - a.val_accuracy), num(b.val_accuracy), num(a.val_accuracy),
            if a.train_accuracy - a.val_accuracy < b.train_accuracy - b.val_accuracy { "the heads act as a regulariser, as Szegedy et al. (2016) observed." } else { "here the heads did not narrow the gap." }
        ));
    }
    interpretation.push(format!(
        "An intermediate layer outputs a feature map of shape {:?} with no class meaning; the final layer outputs class scores whose softmax sums to 1; an auxiliary head turns an intermediate feature map into an early class prediction, here {} on held-out digits.",
        fmap.shape(),
        heads
            .iter()
            .map(|(n, a)| format!("{} accurate at {n}", num(*a)))
            .collect::<Vec<_>>()
            .join(" and ")
    ));
    Ok(Section {
        id: "aux-heads".into(),
        title: "3. Auxiliary heads: early gradient, regularisation, and what each output is".into(),
        setup: format!(
            "{BASE} with and without heads at {HEADS} (global pooling + linear, loss weight 0.3), trained {} SGD steps (batch 32) on 25% of the 16x16 digits ({} examples), held-out {} examples.",
            cfg.steps, data.train.len(), data.val.len()
        ),
        interpretation,
        tables: vec![t1, t2],
        plots,
        results: json!({
            "curves": curves.iter().map(|(n, p)| json!({"model": n, "checks": p})).collect::<Vec<_>>(),
            "feature_map": {"shape": fmap.shape(), "mean": mean, "std": std, "zero_fraction": zeros},
            "final_probabilities_example0": p0, "final_probability_sum": p0.iter().sum::<f32>(),
            "head_accuracy": heads.iter().map(|(n, a)| json!({"head": n, "val_accuracy": a})).collect::<Vec<_>>(),
            "head_probabilities_example0": head_p0.iter().map(|(n, p)| json!({"head": n, "probabilities": p})).collect::<Vec<_>>(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
