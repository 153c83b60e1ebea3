//! Line and bar charts for the report, drawn as SVG with plotters.

pub use gradlab_diag::plot::Line;
use gradlab_diag::plot::{self, LineChartStyle, PALETTE};
use plotters::prelude::*;

use crate::error::{CliError, Result};

fn err(e: impl std::fmt::Display) -> CliError {
    CliError::Run(format!("chart: {e}"))
}

/// A line chart; `log_y` draws the y axis in decades (non-positive values
/// are skipped). [`gradlab_diag::plot::line_chart`] with the report's style.
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
    let style = LineChartStyle {
        log_y,
        ..LineChartStyle::default()
    };
    plot::line_chart(title, x_label, y_label, lines, style).map_err(err)
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
