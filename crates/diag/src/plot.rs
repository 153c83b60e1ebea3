//! SVG charts drawn with plotters: the line chart every report uses, and the
//! depth profile of a run (gradient RMS against layer position, log scale)
//! at several steps.

use plotters::prelude::*;
use serde::Serialize;

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
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Line {
    /// Legend label.
    pub label: String,
    /// Points in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (a second family of lines).
    pub dashed: bool,
    /// Index into [`PALETTE`]; lines that share one are a pair (a plain
    /// network solid, its residual twin dashed). `None`: the line's position.
    pub colour: Option<usize>,
    /// The step at which the run diverged (its loss or gradients became
    /// NaN or infinite): marked on the plot, and said in the legend.
    pub diverged_at: Option<usize>,
}

impl Line {
    /// A solid line in the colour of its position.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Line {
            label: label.into(),
            points,
            ..Line::default()
        }
    }
}

/// What the x axis counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XAxis {
    /// A real quantity: ticks as plotters places them.
    #[default]
    Real,
    /// Whole numbers (layers, blocks): integer ticks only.
    Count,
    /// Training steps: integer ticks, and a diverged run is marked at its step.
    Step,
}

/// How a [`line_chart`] is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineChartStyle {
    /// The y axis in decades; non-positive values are not drawn.
    pub log_y: bool,
    /// A dot on every point.
    pub markers: bool,
    /// What the x axis counts.
    pub x_axis: XAxis,
}

/// One entry of a chart's legend, as drawn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LegendEntry {
    /// The label.
    pub label: String,
    /// How many of the series' points are drawn.
    pub points_drawn: usize,
    /// Drawn dashed.
    pub dashed: bool,
    /// What is said instead of (or besides) the series ("diverged at step 1").
    pub note: Option<String>,
}

/// A chart: its SVG and what its legend shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The SVG document.
    pub svg: String,
    /// The legend, one entry per series in order.
    pub legend: Vec<LegendEntry>,
    /// Whether the x axis counts whole numbers (its ticks are integers).
    pub integer_x: bool,
    /// Left edge of the legend panel, in SVG pixels: the plot and its data
    /// lie left of it.
    pub legend_left: u32,
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

/// Size of a whole chart in pixels; the report shows it at this size, so
/// font sizes are screen pixels.
pub const CHART_SIZE: (u32, u32) = (940, 430);
/// Width of the legend panel at the right of every chart.
pub const LEGEND_WIDTH: u32 = 270;
/// Font sizes: title, axis descriptions, tick labels and legend. plotters
/// writes 1/1.24 of these into the SVG: 16 is 12.9 px on the page.
pub const TITLE_FONT: u32 = 21;
/// See [`TITLE_FONT`].
pub const DESC_FONT: u32 = 17;
/// See [`TITLE_FONT`].
pub const TICK_FONT: u32 = 16;
/// See [`TITLE_FONT`].
pub const LEGEND_FONT: u32 = 16;

/// `text` broken into lines of at most `width` characters at spaces (or
/// after commas), for the legend panel.
pub fn wrap_label(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let pieces = text.split_inclusive([' ', ',']);
    for piece in pieces {
        if !line.is_empty() && line.chars().count() + piece.trim_end().chars().count() > width {
            lines.push(line.trim_end().to_string());
            line.clear();
        }
        line.push_str(piece);
    }
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_string());
    }
    lines
}

/// The legend of `entries` drawn in `area` (the panel right of the plot):
/// a swatch solid or dashed as its series, the label, and any note.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(RGBColor, &LegendEntry)],
) -> Result<()> {
    let font = ("sans-serif", LEGEND_FONT).into_font();
    let line_h = LEGEND_FONT as i32 + 2;
    let (x0, text_x) = (8, 44);
    let mut y = 44;
    for (colour, e) in entries {
        let mid = y + line_h / 2;
        let stroke = colour.stroke_width(2);
        if e.dashed {
            for k in 0..3 {
                let a = x0 + k * 11;
                area.draw(&PathElement::new(vec![(a, mid), (a + 7, mid)], stroke))
                    .map_err(plot_err)?;
            }
        } else {
            area.draw(&PathElement::new(vec![(x0, mid), (x0 + 29, mid)], stroke))
                .map_err(plot_err)?;
        }
        let width = ((LEGEND_WIDTH as i32 - text_x - 6) / 8).max(10) as usize;
        for l in wrap_label(&e.label, width) {
            area.draw(&Text::new(l, (text_x, y), font.clone().color(&BLACK)))
                .map_err(plot_err)?;
            y += line_h;
        }
        if let Some(note) = &e.note {
            for l in wrap_label(note, width) {
                area.draw(&Text::new(l, (text_x, y), font.clone().color(colour)))
                    .map_err(plot_err)?;
                y += line_h;
            }
        }
        y += 6;
    }
    Ok(())
}

/// A log-axis tick: `1e-3`, `2e-3`, `5e-3`; the ticks between are left
/// unlabelled so the labels do not run into each other.
fn decade_label(v: &f64) -> String {
    let t = format!("{v:.0e}");
    if t.starts_with(['1', '2', '5']) {
        t
    } else {
        String::new()
    }
}

fn integer_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        format!("{}", v.round() as i64)
    } else {
        String::new()
    }
}

/// A line chart as an SVG document: one line per [`Line`], colours from
/// [`PALETTE`], non-finite points (and non-positive ones on a log axis)
/// left out. See [`line_chart_drawn`].
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
    line_chart_drawn(title, x_label, y_label, lines, style).map(|c| c.svg)
}

/// A line chart and what its legend shows. The legend sits in a panel to
/// the right of the plot, so it never covers data; each swatch is solid or
/// dashed as its series. A run that diverged is said so in the legend, and
/// on a step axis a dashed vertical line marks the step, labelled in a
/// strip kept free of data at the top of the plot. Tick labels of a
/// [`XAxis::Count`] or [`XAxis::Step`] axis are integers.
///
/// # Errors
/// [`DiagError::InsufficientData`] when no point can be drawn.
pub fn line_chart_drawn(
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
    style: LineChartStyle,
) -> Result<Chart> {
    let log_y = style.log_y;
    let integer_x = style.x_axis != XAxis::Real;
    let step_x = style.x_axis == XAxis::Step;
    let ok = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0);
    let pts = || lines.iter().flat_map(|l| l.points.iter()).filter(|p| ok(p));
    let marks = || {
        lines
            .iter()
            .filter_map(|l| l.diverged_at)
            .filter(|_| step_x)
            .map(|s| s as f64)
    };
    let (x0, x1) = pts()
        .map(|p| p.0)
        .chain(marks())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    let (y0, y1) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (_, y)| {
        (a.min(*y), b.max(*y))
    });
    if !x0.is_finite() || !y0.is_finite() {
        return Err(plot_err(format!("'{title}' has no point to draw")));
    }
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let colour_of = |i: usize, l: &Line| PALETTE[l.colour.unwrap_or(i) % PALETTE.len()];
    let legend: Vec<LegendEntry> = lines
        .iter()
        .map(|l| {
            let drawn = l.points.iter().filter(|p| ok(p)).count();
            LegendEntry {
                label: l.label.clone(),
                points_drawn: drawn,
                dashed: l.dashed,
                note: l.diverged_at.map(|s| match (drawn, step_x) {
                    (0, true) => format!("diverged at step {s}: nothing finite to draw"),
                    (0, false) => format!("diverged at step {s}: not drawn, nothing is finite"),
                    _ => format!("diverged at step {s}"),
                }),
            }
        })
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (plot_area, legend_area) = root.split_horizontally(CHART_SIZE.0 - LEGEND_WIDTH);
        let entries: Vec<(RGBColor, &LegendEntry)> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| colour_of(i, l))
            .zip(&legend)
            .collect();
        draw_legend(&legend_area, &entries)?;
        let mut builder = ChartBuilder::on(&plot_area);
        builder
            .caption(title, ("sans-serif", TITLE_FONT))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(72);
        let x_ticks = if integer_x {
            ((x1 - x0).round() as usize + 1).clamp(2, 10)
        } else {
            10
        };
        // The two axis types are different Rust types: one body for both.
        macro_rules! draw {
            ($chart:expr, $top:expr) => {{
                let mut chart = $chart;
                let y_fmt = |v: &f64| {
                    if log_y {
                        decade_label(v)
                    } else {
                        format!("{v:.2}")
                    }
                };
                let x_fmt = |v: &f64| {
                    if integer_x {
                        integer_label(v)
                    } else {
                        let t = format!("{v:.2}");
                        t.trim_end_matches('0').trim_end_matches('.').to_string()
                    }
                };
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .x_labels(x_ticks)
                    .x_label_formatter(&x_fmt)
                    .y_label_formatter(&y_fmt)
                    .label_style(("sans-serif", TICK_FONT))
                    .axis_desc_style(("sans-serif", DESC_FONT))
                    .draw()
                    .map_err(plot_err)?;
                for (i, l) in lines.iter().enumerate() {
                    let color = colour_of(i, l);
                    let p: Vec<(f64, f64)> = l.points.iter().copied().filter(|p| ok(p)).collect();
                    let stroke = ShapeStyle::from(&color).stroke_width(2);
                    if l.dashed {
                        chart
                            .draw_series(DashedLineSeries::new(p.clone(), 6, 4, stroke))
                            .map_err(plot_err)?;
                    } else {
                        chart
                            .draw_series(LineSeries::new(p.clone(), stroke))
                            .map_err(plot_err)?;
                    }
                    if style.markers {
                        chart
                            .draw_series(p.iter().map(|&q| Circle::new(q, 3, color.filled())))
                            .map_err(plot_err)?;
                    }
                }
                // Diverged runs, in the strip at the top that holds no data.
                let mut texts = Vec::new();
                for (i, l) in lines.iter().enumerate() {
                    let Some(s) = l.diverged_at else { continue };
                    let color = colour_of(i, l);
                    let area = chart.plotting_area();
                    if step_x {
                        let x = s as f64;
                        let ylo = area.get_y_range().start;
                        area.draw(&PathElement::new(
                            vec![(x, ylo), (x, $top)],
                            color.stroke_width(1),
                        ))
                        .map_err(plot_err)?;
                        let px = chart.backend_coord(&(x, $top));
                        texts.push((
                            format!("{}: diverged at step {s}", l.label),
                            color,
                            px.0 + 4,
                        ));
                    } else {
                        texts.push((format!("{}: diverged at step {s}", l.label), color, -1));
                    }
                }
                let font = ("sans-serif", LEGEND_FONT).into_font();
                let (left, top) = chart.backend_coord(&(x0, $top));
                let right = chart.backend_coord(&(x1, $top)).0;
                for (k, (t, color, px)) in texts.into_iter().enumerate() {
                    let width = (t.chars().count() as i32) * 8;
                    let x = if px < 0 {
                        left + 6
                    } else {
                        px.min(right - width).max(left + 2)
                    };
                    plot_area
                        .draw(&Text::new(
                            t,
                            (x, top + 4 + k as i32 * 16),
                            font.clone().color(&color),
                        ))
                        .map_err(plot_err)?;
                }
            }};
        }
        // Room for the notes of diverged runs above the highest point.
        let noted = lines.iter().filter(|l| l.diverged_at.is_some()).count();
        let strip = 0.1 * noted.min(4) as f64;
        if log_y {
            let (lo, hi) = (y0 / 2.0, if y1 > y0 { y1 * 2.0 } else { y0 * 4.0 });
            let top = hi * (hi / lo).powf(strip);
            draw!(
                builder
                    .build_cartesian_2d(x0..x1, (lo..top).log_scale())
                    .map_err(plot_err)?,
                top
            );
        } else {
            let pad = ((y1 - y0) * 0.05).max(1e-3);
            let top = y1 + pad + (y1 - y0 + 2.0 * pad) * strip;
            draw!(
                builder
                    .build_cartesian_2d(x0..x1, (y0 - pad)..top)
                    .map_err(plot_err)?,
                top
            );
        }
        root.present().map_err(plot_err)?;
    }
    Ok(Chart {
        svg,
        legend,
        integer_x,
        legend_left: CHART_SIZE.0 - LEGEND_WIDTH,
    })
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
            points: position_points(s.values.iter().copied()),
            dashed: s.dashed,
            ..Line::default()
        })
        .collect();
    let style = LineChartStyle {
        log_y: true,
        markers: true,
        x_axis: XAxis::Count,
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
    // One colour per step: activation gradients solid, parameter gradients dashed.
    let mut lines = Vec::new();
    for (k, r) in records.iter().enumerate() {
        lines.push(Line {
            label: format!("activation grad, step {}", r.step),
            points: position_points(r.positions.iter().map(|p| p.act_grad_rms)),
            colour: Some(k),
            ..Line::default()
        });
    }
    for (k, r) in records.iter().enumerate() {
        lines.push(Line {
            label: format!("parameter grad, step {}", r.step),
            points: position_points(r.layers.iter().map(|l| l.grad_rms)),
            dashed: true,
            colour: Some(k),
            ..Line::default()
        });
    }
    let style = LineChartStyle {
        log_y: true,
        markers: true,
        x_axis: XAxis::Count,
    };
    line_chart(
        title,
        "layer position (input → output)",
        "gradient RMS (log scale)",
        &lines,
        style,
    )
}

fn position_points(values: impl Iterator<Item = f64>) -> Vec<(f64, f64)> {
    values.enumerate().map(|(x, v)| (x as f64, v)).collect()
}
