//! Experiment 1: standard, pointwise (1x1) and depthwise convolutions on one
//! shape, counted, timed and checked for channel mixing; and the
//! depthwise-separable pair against the standard convolution it replaces.

use serde_json::json;

use crate::charts::bar_chart_log;
use crate::commands::conv_table::{compare, ConvShape};
use crate::error::Result;
use crate::experiments::{num, Size};
use crate::report::{Plot, Section, Table};

/// What changing one input channel did to the output channels, in words.
fn mixing_words(changed: usize, out: usize) -> &'static str {
    if changed == out && out > 1 {
        "it mixes every channel"
    } else if changed == 1 {
        "it keeps channels apart"
    } else if changed == 0 {
        "no output changed"
    } else {
        "it mixes some channels"
    }
}

/// Runs the comparison.
///
/// # Errors
/// Convolution errors.
pub fn run(size: &Size) -> Result<Section> {
    let shape = if size.quick {
        ConvShape {
            c_in: 16,
            c_out: 32,
            kernel: 3,
            height: 8,
            width: 8,
            batch: 4,
        }
    } else {
        ConvShape {
            c_in: 32,
            c_out: 64,
            kernel: 3,
            height: 16,
            width: 16,
            batch: 16,
        }
    };
    let rows = compare(&shape, if size.quick { 3 } else { 9 })?;
    let mut table = Table::new(
        "Standard vs pointwise vs depthwise (f32, median of the timed runs)",
        &[
            "operation",
            "kernel",
            "combines",
            "params (formula)",
            "params (counted)",
            "MACs per image",
            "forward ms (whole batch)",
            "backward ms (whole batch)",
            "output channels",
            "channels changed by one input channel",
        ],
    );
    for r in &rows {
        table.row(vec![
            r.name.clone(),
            r.kernel.clone(),
            r.combines.clone(),
            format!("{} = {}", r.formula, r.params_formula),
            r.params_counted.to_string(),
            r.macs_per_image.to_string(),
            num(r.forward_ms),
            num(r.backward_ms),
            r.out_channels.to_string(),
            format!("{} of {}", r.channels_changed, r.out_channels),
        ]);
    }
    let std = &rows[0];
    let rel = |f: &dyn Fn(&crate::commands::conv_table::ConvRow) -> f64| -> Vec<f64> {
        rows.iter().map(|r| f(r) / f(std)).collect()
    };
    let categories = vec![
        "parameters".to_string(),
        "MACs".into(),
        "forward time".into(),
        "backward time".into(),
    ];
    let per_metric = [
        rel(&|r| r.params_counted as f64),
        rel(&|r| r.macs_per_image as f64),
        rel(&|r| r.forward_ms),
        rel(&|r| r.backward_ms),
    ];
    let series: Vec<(String, Vec<f64>)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.clone(), per_metric.iter().map(|m| m[i]).collect()))
        .collect();
    let svg = bar_chart_log(
        "Cost relative to the standard convolution (log scale)",
        "x standard",
        &categories,
        &series,
    )?;
    let (pw, dw, sep) = (&rows[1], &rows[2], &rows[3]);
    let interpretation = vec![
        format!(
            "A pointwise (1x1) convolution holds C_in*C_out = {} weights, {:.0}x fewer than the standard {}x{} convolution's {}; perturbing one input channel changed {} of its {} output channels ({}), and {} of {} for the standard one ({}).",
            pw.params_counted, std.params_counted as f64 / pw.params_counted as f64, shape.kernel, shape.kernel, std.params_counted,
            pw.channels_changed, pw.out_channels, mixing_words(pw.channels_changed, pw.out_channels),
            std.channels_changed, std.out_channels, mixing_words(std.channels_changed, std.out_channels)
        ),
        format!(
            "A depthwise convolution holds C_in*K*K = {} weights; the same perturbation changed {} of its {} output channels ({}), and its output has {} channels where C_out = {} was asked for.",
            dw.params_counted, dw.channels_changed, dw.out_channels, mixing_words(dw.channels_changed, dw.out_channels), dw.out_channels, shape.c_out
        ),
        format!(
            "Depthwise then pointwise (depthwise-separable) has {:.1}% of the standard convolution's parameters and {:.1}% of its MACs, changed {} of {} output channels ({}), and measured {:.2} ms forward against {:.2} ms for the standard one (one median each, no spread measured: a ratio of {:.2}).",
            100.0 * sep.params_counted as f64 / std.params_counted as f64,
            100.0 * sep.macs_per_image as f64 / std.macs_per_image as f64,
            sep.channels_changed, sep.out_channels, mixing_words(sep.channels_changed, sep.out_channels),
            sep.forward_ms, std.forward_ms, sep.forward_ms / std.forward_ms
        ),
    ];
    Ok(Section {
        id: "conv-ops".into(),
        title: "1. Standard, pointwise and depthwise convolutions".into(),
        setup: format!(
            "Input [{}, {}, {}, {}], C_out = {}, kernel {}x{} with padding {}; channel mixing measured by adding 1 to input channel {} of one image and counting the output channels that change.",
            shape.batch, shape.c_in, shape.height, shape.width, shape.c_out, shape.kernel, shape.kernel, shape.kernel / 2, shape.c_in / 2
        ),
        interpretation,
        tables: vec![table],
        plots: vec![Plot::new(
            "conv_ops_cost.svg",
            "Parameters, MACs and measured time of each operation, relative to the standard convolution.",
            svg,
        )],
        results: json!({ "shape": shape, "rows": rows }),
    })
}

#[cfg(test)]
mod tests {
    use super::mixing_words;

    #[test]
    fn mixing_words_follow_the_counts() {
        assert_eq!(mixing_words(64, 64), "it mixes every channel");
        assert_eq!(mixing_words(1, 32), "it keeps channels apart");
        assert_eq!(mixing_words(5, 64), "it mixes some channels");
        assert_eq!(mixing_words(0, 64), "no output changed");
    }
}
