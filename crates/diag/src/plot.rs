//! SVG charts drawn with plotters: the line chart every report uses, and the
//! depth profile of a run (gradient RMS against layer position, log scale)
//! at several steps.

use plotters::prelude::*;

use crate::error::{DiagError, Result};
use crate::history::History;
use crate::recorder::StepRecord;

/// Colours of the series, in order (matplotlib's `tab10`), for every chart
/// of a report.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// One line of a [`line_chart`]: a label and `(x, y)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Legend label.
    pub label: String,
    /// Points in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (a second family of lines).
    pub dashed: bool,
}

/// How a [`line_chart`] is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineChartStyle {
    /// The y axis in decades; non-positive values are not drawn.
    pub log_y: bool,
    /// A dot on every point.
    pub markers: bool,
    /// The legend in the lower right corner instead of the upper right.
    pub legend_low: bool,
}

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

/// A line chart as an SVG document: one line per [`Line`], colours from
/// [`PALETTE`], non-finite points (and non-positive ones on a log axis)
/// left out.
///
/// # Errors
/// [`DiagError::InsufficientData`] when no point can be drawn.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
    style: LineChartStyle,
) -> Result<String> {
    let log_y = style.log_y;
    let ok = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0);
    let pts = || lines.iter().flat_map(|l| l.points.iter()).filter(|p| ok(p));
    let (x0, x1) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (x, _)| {
        (a.min(*x), b.max(*x))
    });
    let (y0, y1) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (_, y)| {
        (a.min(*y), b.max(*y))
    });
    if !x0.is_finite() || !y0.is_finite() {
        return Err(plot_err(format!("'{title}' has no point to draw")));
    }
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64);
        // The two axis types are different Rust types: one body for both.
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .y_label_formatter(&|v| {
                        if log_y {
                            format!("{v:.0e}")
                        } else {
                            format!("{v:.2}")
                        }
                    })
                    .draw()
                    .map_err(plot_err)?;
                for (i, l) in lines.iter().enumerate() {
                    let color = PALETTE[i % PALETTE.len()];
                    let p: Vec<(f64, f64)> = l.points.iter().copied().filter(|p| ok(p)).collect();
                    let stroke = ShapeStyle::from(&color).stroke_width(2);
                    let series = if l.dashed {
                        chart
                            .draw_series(DashedLineSeries::new(p.clone(), 6, 4, stroke))
                            .map_err(plot_err)?
                    } else {
                        chart
                            .draw_series(LineSeries::new(p.clone(), stroke))
                            .map_err(plot_err)?
                    };
                    series.label(l.label.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                    if style.markers {
                        chart
                            .draw_series(p.iter().map(|&q| Circle::new(q, 3, color.filled())))
                            .map_err(plot_err)?;
                    }
                }
                chart
                    .configure_series_labels()
                    .position(if style.legend_low {
                        SeriesLabelPosition::LowerRight
                    } else {
                        SeriesLabelPosition::UpperRight
                    })
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()
                    .map_err(plot_err)?;
            }};
        }
        if log_y {
            let (lo, hi) = (y0 / 2.0, if y1 > y0 { y1 * 2.0 } else { y0 * 4.0 });
            draw!(builder
                .build_cartesian_2d(x0..x1, (lo..hi).log_scale())
                .map_err(plot_err)?);
        } else {
            let pad = ((y1 - y0) * 0.05).max(1e-3);
            draw!(builder
                .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                .map_err(plot_err)?);
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Draws series against position (0 = input side) on a log-scale y axis,
/// with a dot on every value.
///
/// # Errors
/// [`DiagError::InsufficientData`] when no series has a positive finite value.
pub fn profile_svg(title: &str, y_label: &str, series: &[ProfileSeries]) -> Result<String> {
    let lines: Vec<Line> = series
        .iter()
        .map(|s| Line {
            label: s.label.clone(),
            points: s
                .values
                .iter()
                .enumerate()
                .map(|(x, &v)| (x as f64, v))
                .collect(),
            dashed: s.dashed,
        })
        .collect();
    let style = LineChartStyle {
        log_y: true,
        markers: true,
        legend_low: true,
    };
    line_chart(
        title,
        "layer position (input → output)",
        y_label,
        &lines,
        style,
    )
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
