//! Line and bar charts for the report, drawn as SVG with plotters.

use plotters::prelude::*;

use crate::error::{CliError, Result};

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// One line: a label and `(x, y)` points; dashed lines for a second family.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Legend label.
    pub label: String,
    /// Points in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed.
    pub dashed: bool,
}

fn err(e: impl std::fmt::Display) -> CliError {
    CliError::Run(format!("chart: {e}"))
}

/// A line chart; `log_y` draws the y axis in decades (non-positive values are skipped).
///
/// # Errors
/// [`CliError::Run`] when no point can be drawn.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
    log_y: bool,
) -> Result<String> {
    let ok = |y: f64| y.is_finite() && (!log_y || y > 0.0);
    let pts = || {
        lines
            .iter()
            .flat_map(|l| l.points.iter())
            .filter(|(x, y)| x.is_finite() && ok(*y))
    };
    let (x0, x1) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (x, _)| {
        (a.min(*x), b.max(*x))
    });
    let (y0, y1) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (_, y)| {
        (a.min(*y), b.max(*y))
    });
    if !x0.is_finite() || !y0.is_finite() {
        return Err(err(format!("'{title}' has no point to draw")));
    }
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64);
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
                    .map_err(err)?;
                for (i, l) in lines.iter().enumerate() {
                    let color = PALETTE[i % PALETTE.len()];
                    let p: Vec<(f64, f64)> = l
                        .points
                        .iter()
                        .copied()
                        .filter(|(x, y)| x.is_finite() && ok(*y))
                        .collect();
                    let style = ShapeStyle::from(&color).stroke_width(2);
                    let series = if l.dashed {
                        chart
                            .draw_series(DashedLineSeries::new(p, 6, 4, style))
                            .map_err(err)?
                    } else {
                        chart.draw_series(LineSeries::new(p, style)).map_err(err)?
                    };
                    series.label(l.label.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()
                    .map_err(err)?;
            }};
        }
        if log_y {
            let (lo, hi) = (y0 / 2.0, if y1 > y0 { y1 * 2.0 } else { y0 * 4.0 });
            draw!(builder
                .build_cartesian_2d(x0..x1, (lo..hi).log_scale())
                .map_err(err)?);
        } else {
            let pad = ((y1 - y0) * 0.05).max(1e-3);
            draw!(builder
                .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                .map_err(err)?);
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Grouped bars: one group per category, one bar per series, on a log axis.
///
/// # Errors
/// [`CliError::Run`] when no value is positive.
pub fn bar_chart_log(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<String> {
    let vals = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        return Err(err(format!("'{title}' has no positive value")));
    }
    let groups = categories.len().max(1);
    let per = series.len().max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..groups as f64, ((lo / 3.0)..(hi * 3.0)).log_scale())
            .map_err(err)?;
        let cats = categories.to_vec();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(groups * 2 + 1)
            .x_label_formatter(&move |x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 0.26 {
                    cats.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(y_label)
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(err)?;
        let width = 0.8 / per as f64;
        for (s, (label, values)) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let bars = values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite() && **v > 0.0)
                .map(|(g, &v)| {
                    let x = g as f64 + 0.1 + s as f64 * width;
                    Rectangle::new([(x, lo / 3.0), (x + width * 0.9, v)], color.filled())
                });
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
