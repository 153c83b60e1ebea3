//! The demo report: one HTML page with every plot (SVG files beside it),
//! the tables, and a sentence of interpretation per experiment; plus
//! `results.json` with every number behind the page.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::charts::{Chart, LegendEntry};
use crate::error::Result;
use crate::output::{write_file, write_json};
use crate::terminal::{self, list_item, paragraph};

/// A table: a header row and data rows, already formatted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// Caption.
    pub caption: String,
    /// Column headers.
    pub header: Vec<String>,
    /// Rows of cells; a `\n` in a cell starts a second line (a verdict,
    /// then why).
    pub rows: Vec<Vec<String>>,
    /// Lists printed beneath the table (the reasons behind each row).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

/// A titled list beneath a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// What the list is about (`resnet:depth=20 on pure noise: no-signal`).
    pub title: String,
    /// The items, in order.
    pub items: Vec<String>,
}

impl Table {
    /// A table with `header` columns.
    pub fn new(caption: impl Into<String>, header: &[&str]) -> Self {
        Table {
            caption: caption.into(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Appends a list to print beneath the table.
    pub fn note(&mut self, title: impl Into<String>, items: Vec<String>) {
        self.notes.push(Note {
            title: title.into(),
            items,
        });
    }

    /// Markdown rendering (for docs/experiments.md).
    pub fn to_markdown(&self) -> String {
        let cell = |c: &String| c.replace('|', "\\|").replace('\n', "<br>");
        let mut out = format!(
            "**{}**\n\n| {} |\n|{}\n",
            self.caption,
            self.header.iter().map(cell).collect::<Vec<_>>().join(" | "),
            "---|".repeat(self.header.len())
        );
        for r in &self.rows {
            out.push_str(&format!(
                "| {} |\n",
                r.iter().map(cell).collect::<Vec<_>>().join(" | ")
            ));
        }
        for n in &self.notes {
            out.push_str(&format!("\n{}:\n\n", n.title));
            for item in &n.items {
                out.push_str(&format!("- {item}\n"));
            }
        }
        out
    }

    /// Plain-text rendering for a terminal `width` columns wide: cells wrap
    /// inside their column, notes are indented lists.
    pub fn to_text(&self, width: usize) -> String {
        let mut out = paragraph(&self.caption, width);
        out.push_str(&terminal::table(&self.header, &self.rows, &[], width));
        for n in &self.notes {
            out.push('\n');
            out.push_str(&paragraph(&format!("{}:", n.title), width));
            for item in &n.items {
                out.push_str(&list_item(2, "-", item, width));
            }
        }
        out
    }
}

/// A plot: the SVG file name and its caption.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plot {
    /// File name inside the report folder (`plain_vs_residual_init.svg`).
    pub file: String,
    /// Caption under the plot.
    pub caption: String,
    /// The SVG text.
    #[serde(skip)]
    pub svg: String,
    /// What the legend shows: each series' label, how many of its points
    /// are drawn, and any note ("diverged at step 1").
    pub legend: Vec<LegendEntry>,
    /// Whether the x axis counts whole numbers (its ticks are integers).
    pub integer_x: bool,
    /// Left edge of the legend panel in the SVG: the data lies left of it.
    pub legend_left: u32,
}

impl Plot {
    /// A plot of `chart` saved as `file`.
    pub fn new(file: impl Into<String>, caption: impl Into<String>, chart: Chart) -> Self {
        Plot {
            file: file.into(),
            caption: caption.into(),
            svg: chart.svg,
            legend: chart.legend,
            integer_x: chart.integer_x,
            legend_left: chart.legend_left,
        }
    }
}

/// One experiment's part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Short id (`conv-ops`).
    pub id: String,
    /// Heading.
    pub title: String,
    /// What was run, in one sentence.
    pub setup: String,
    /// What the numbers show, stated from the numbers.
    pub interpretation: Vec<String>,
    /// Tables.
    pub tables: Vec<Table>,
    /// Plots.
    pub plots: Vec<Plot>,
    /// Every number behind the section.
    pub results: serde_json::Value,
}

impl Section {
    /// Prints the section's tables and interpretation to the terminal.
    pub fn print(&self) {
        print!("{}", self.to_text(terminal::width()));
    }

    /// The section as text for a terminal `width` columns wide.
    pub fn to_text(&self, width: usize) -> String {
        let mut out = format!(
            "\n{}\n{}\n",
            paragraph(&format!("== {} ==", self.title), width),
            paragraph(&self.setup, width)
        );
        for t in &self.tables {
            out.push_str(&t.to_text(width));
            out.push('\n');
        }
        for s in &self.interpretation {
            out.push_str(&list_item(0, "*", s, width));
        }
        out
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escaped text with Markdown's `code` spans as `<code>`.
fn inline(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len() < 3 {
        return esc(s);
    }
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        // An odd part is inside a pair of backticks, unless it is the
        // unclosed tail of an odd number of them.
        if i % 2 == 1 && i + 1 < parts.len() {
            out.push_str(&format!("<code>{}</code>", esc(part)));
        } else {
            if i % 2 == 1 {
                out.push('`');
            }
            out.push_str(&esc(part));
        }
    }
    out
}

/// The verdicts that colour the cell they start.
const VERDICT_CLASSES: [&str; 7] = [
    "vanishing",
    "exploding",
    "dead-units",
    "no-signal",
    "healthy",
    "overfitting",
    "inconclusive",
];

/// A table cell: its first line, then any further lines as a smaller "why".
fn html_cell(c: &str) -> String {
    let class = VERDICT_CLASSES
        .iter()
        .find(|v| c.starts_with(*v))
        .map(|v| format!(" class=\"v-{v}\""))
        .unwrap_or_default();
    let mut lines = c.split('\n');
    // Specs like `resnet:depth=20,width=16` may break after their commas.
    let mut out = format!(
        "<td{class}>{}",
        inline(lines.next().unwrap_or_default()).replace(',', ",<wbr>")
    );
    for l in lines {
        let _ = write!(out, "<br><span class=\"why\">{}</span>", inline(l));
    }
    out.push_str("</td>");
    out
}

fn html_table(t: &Table) -> String {
    let mut html = format!(
        "<div class=\"table\"><table><caption>{}</caption><tr>",
        inline(&t.caption)
    );
    for h in &t.header {
        let _ = write!(html, "<th>{}</th>", inline(h));
    }
    html.push_str("</tr>");
    for r in &t.rows {
        html.push_str("<tr>");
        for c in r {
            html.push_str(&html_cell(c));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table></div>\n");
    for n in &t.notes {
        let _ = write!(html, "<div class=\"note\"><p>{}</p><ul>", inline(&n.title));
        for item in &n.items {
            let _ = write!(html, "<li>{}</li>", inline(item));
        }
        html.push_str("</ul></div>\n");
    }
    html
}

/// The sections as Markdown: setup, tables, interpretation, plot captions.
pub fn to_markdown(sections: &[Section]) -> String {
    let mut md = String::new();
    for s in sections {
        let _ = writeln!(md, "## {}\n\n{}\n", s.title, s.setup);
        for t in &s.tables {
            let _ = writeln!(md, "{}", t.to_markdown());
        }
        for p in &s.interpretation {
            let _ = writeln!(md, "- {p}");
        }
        let _ = writeln!(md);
        for p in &s.plots {
            let _ = writeln!(md, "Plot `{}`: {}\n", p.file, p.caption);
        }
    }
    md
}

/// Writes `dir/index.html`, one SVG per plot, `dir/summary.md` and `dir/results.json`.
///
/// # Errors
/// File errors, naming the file.
pub fn write_report(
    dir: &Path,
    title: &str,
    sections: &[Section],
    meta: serde_json::Value,
) -> Result<()> {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222;line-height:1.45}}\
div.table{{max-width:100%;overflow-x:auto}}\
table{{border-collapse:collapse;margin:1em 0;font-size:0.9em}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}\
th{{background:#f3f3f3}}caption{{text-align:left;font-weight:bold;padding:4px 0}}figure{{margin:1em 0}}\
figure img{{max-width:100%;height:auto}}code{{background:#f0f0f0;padding:0 3px;border-radius:3px}}\
span.why{{font-size:0.85em;color:#444}}div.note p{{margin:0.8em 0 0.2em;font-weight:bold}}div.note ul{{margin:0}}\
figcaption{{font-size:0.9em;color:#555}}.interp{{background:#f7f9fc;border-left:4px solid #1f77b4;padding:0.5em 1em}}\
td.v-vanishing,td.v-exploding,td.v-dead-units{{background:#fde2e1}}td.v-no-signal,td.v-inconclusive{{background:#fff3cd}}\
td.v-healthy{{background:#e2f5e1}}td.v-overfitting{{background:#fde9d9}}\
</style></head><body>\n<h1>{t}</h1>\n<ul>",
        t = esc(title)
    );
    for s in sections {
        let _ = write!(
            html,
            "<li><a href=\"#{}\">{}</a></li>",
            esc(&s.id),
            esc(&s.title)
        );
    }
    html.push_str("</ul>\n");
    for s in sections {
        let _ = write!(
            html,
            "<section id=\"{}\"><h2>{}</h2>\n<p>{}</p>\n<div class=\"interp\">",
            esc(&s.id),
            inline(&s.title),
            inline(&s.setup)
        );
        for p in &s.interpretation {
            let _ = write!(html, "<p>{}</p>", inline(p));
        }
        html.push_str("</div>\n");
        for t in &s.tables {
            html.push_str(&html_table(t));
        }
        for p in &s.plots {
            write_file(&dir.join(&p.file), p.svg.as_bytes())?;
            let _ = writeln!(
                html,
                "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
                esc(&p.file),
                esc(&p.caption),
                inline(&p.caption)
            );
        }
        html.push_str("</section>\n");
    }
    html.push_str("<p>Every number on this page is in <a href=\"results.json\">results.json</a>.</p></body></html>\n");
    write_file(&dir.join("index.html"), html.as_bytes())?;
    write_file(&dir.join("summary.md"), to_markdown(sections).as_bytes())?;
    let results: serde_json::Map<String, serde_json::Value> = sections
        .iter()
        .map(|s| (s.id.clone(), serde_json::to_value(s).unwrap_or_default()))
        .collect();
    write_json(
        &dir.join("results.json"),
        &serde_json::json!({ "meta": meta, "experiments": results }),
    )
}
