//! SVG plots of a run, drawn with plotters: the depth profile (gradient RMS
//! against layer position, log scale) at several steps.

use plotters::prelude::*;

use crate::error::{DiagError, Result};
use crate::history::History;
use crate::recorder::StepRecord;

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One named line of a depth-profile plot: values from input to output.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSeries {
    /// Legend label.
    pub label: String,
    /// One value per position (non-positive values are not drawn on the log axis).
    pub values: Vec<f64>,
    /// Dashed (parameter gradients) or solid (activation gradients).
    pub dashed: bool,
}

fn plot_err(e: impl std::fmt::Display) -> DiagError {
    DiagError::InsufficientData {
        indicator: "plot",
        reason: e.to_string(),
    }
}

/// Draws series against position (0 = input side) on a log-scale y axis.
///
/// # Errors
/// [`DiagError::InsufficientData`] when no series has a positive finite value.
pub fn profile_svg(title: &str, y_label: &str, series: &[ProfileSeries]) -> Result<String> {
    let positive = series
        .iter()
        .flat_map(|s| s.values.iter())
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = positive.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return Err(plot_err("no positive finite value to draw"));
    }
    let (lo, hi) = (lo / 2.0, if hi > lo { hi * 2.0 } else { lo * 4.0 });
    let n = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..(n - 1) as f64, (lo..hi).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("layer position (input → output)")
            .y_desc(y_label)
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(plot_err)?;
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points: Vec<(f64, f64)> = s
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite() && **v > 0.0)
                .map(|(x, &v)| (x as f64, v))
                .collect();
            let style = ShapeStyle::from(&color).stroke_width(2);
            let drawn = if s.dashed {
                chart
                    .draw_series(DashedLineSeries::new(points.clone(), 6, 4, style))
                    .map_err(plot_err)?
            } else {
                chart
                    .draw_series(LineSeries::new(points.clone(), style))
                    .map_err(plot_err)?
            };
            drawn.label(s.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(plot_err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Steps at which to show the profile: the first, the middle and the last recorded.
pub fn profile_steps(history: &History) -> Vec<usize> {
    let steps: Vec<usize> = history.steps.iter().map(|s| s.step).collect();
    let mut out: Vec<usize> = match steps.len() {
        0 => Vec::new(),
        n => vec![steps[0], steps[n / 2], steps[n - 1]],
    };
    out.dedup();
    out
}

/// The depth profile of a run: activation-gradient RMS per position (solid)
/// and parameter-gradient RMS per layer (dashed) at the given steps.
///
/// # Errors
/// [`DiagError::InsufficientData`] when none of the steps was recorded or
/// nothing positive is left to draw.
pub fn depth_profile_svg(history: &History, steps: &[usize], title: &str) -> Result<String> {
    let records: Vec<&StepRecord> = steps
        .iter()
        .filter_map(|&t| history.steps.iter().find(|s| s.step == t))
        .collect();
    if records.is_empty() {
        return Err(plot_err(format!(
            "none of the steps {steps:?} was recorded"
        )));
    }
    let mut series = Vec::new();
    for r in &records {
        series.push(ProfileSeries {
            label: format!("activation grad, step {}", r.step),
            values: r.positions.iter().map(|p| p.act_grad_rms).collect(),
            dashed: false,
        });
    }
    for r in &records {
        series.push(ProfileSeries {
            label: format!("parameter grad, step {}", r.step),
            values: r.layers.iter().map(|l| l.grad_rms).collect(),
            dashed: true,
        });
    }
    profile_svg(title, "gradient RMS (log scale)", &series)
}
