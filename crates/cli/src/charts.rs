//! Line and bar charts for the report, drawn as SVG with plotters.

use gradlab_diag::plot::{
    self, CHART_SIZE, DESC_FONT, LEGEND_FONT, LEGEND_WIDTH, PALETTE, TICK_FONT, TITLE_FONT,
};
pub use gradlab_diag::plot::{Chart, LegendEntry, Line, LineChartStyle, XAxis};
use plotters::prelude::*;

use crate::error::{CliError, Result};

fn err(e: impl std::fmt::Display) -> CliError {
    CliError::Run(format!("chart: {e}"))
}

/// A line chart with the report's style: [`gradlab_diag::plot::line_chart_drawn`].
///
/// # Errors
/// [`CliError::Run`] when no point can be drawn.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
    style: LineChartStyle,
) -> Result<Chart> {
    plot::line_chart_drawn(title, x_label, y_label, lines, style).map_err(err)
}

/// Grouped bars: one group per category, one bar per series, on a log
/// axis; the legend in a panel on the right, clear of the bars.
///
/// # Errors
/// [`CliError::Run`] when no value is positive.
pub fn bar_chart_log(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<Chart> {
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
        let root = SVGBackend::with_string(&mut svg, (CHART_SIZE.0, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (plot_area, legend_area) = root.split_horizontally(CHART_SIZE.0 - LEGEND_WIDTH);
        let font = ("sans-serif", LEGEND_FONT).into_font();
        let mut y = 44;
        for (s, (label, _)) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            legend_area
                .draw(&Rectangle::new([(8, y), (30, y + 14)], color.filled()))
                .map_err(err)?;
            for line in plot::wrap_label(label, 27) {
                legend_area
                    .draw(&Text::new(line, (40, y), font.clone()))
                    .map_err(err)?;
                y += LEGEND_FONT as i32 + 2;
            }
            y += 6;
        }
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(title, ("sans-serif", TITLE_FONT))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(72)
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
            .label_style(("sans-serif", TICK_FONT))
            .axis_desc_style(("sans-serif", DESC_FONT))
            .draw()
            .map_err(err)?;
        let width = 0.8 / per as f64;
        for (s, (_, values)) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let bars = values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite() && **v > 0.0)
                .map(|(g, &v)| {
                    let x = g as f64 + 0.1 + s as f64 * width;
                    Rectangle::new([(x, lo / 3.0), (x + width * 0.9, v)], color.filled())
                });
            chart.draw_series(bars).map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(Chart {
        svg,
        legend: series
            .iter()
            .map(|(label, values)| LegendEntry {
                label: label.clone(),
                points_drawn: values.iter().filter(|v| v.is_finite() && **v > 0.0).count(),
                dashed: false,
                note: None,
            })
            .collect(),
        integer_x: false,
        legend_left: CHART_SIZE.0 - LEGEND_WIDTH,
    })
}
