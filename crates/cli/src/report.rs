//! The demo report: one HTML page with every plot (SVG files beside it),
//! the tables, and a sentence of interpretation per experiment; plus
//! `results.json` with every number behind the page.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::output::{write_file, write_json};

/// A table: a header row and data rows, already formatted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// Caption.
    pub caption: String,
    /// Column headers.
    pub header: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with `header` columns.
    pub fn new(caption: impl Into<String>, header: &[&str]) -> Self {
        Table {
            caption: caption.into(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Markdown rendering (for docs/experiments.md).
    pub fn to_markdown(&self) -> String {
        let cell = |c: &String| c.replace('|', "\\|");
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
        out
    }

    /// Plain-text rendering for the terminal.
    pub fn to_text(&self) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut out = format!("{}\n{}\n", self.caption, line(&self.header));
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
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
        println!("\n== {} ==\n{}\n", self.title, self.setup);
        for t in &self.tables {
            println!("{}", t.to_text());
        }
        for s in &self.interpretation {
            println!("* {s}");
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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
table{{border-collapse:collapse;margin:1em 0;font-size:0.9em}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
th{{background:#f3f3f3}}caption{{text-align:left;font-weight:bold;padding:4px 0}}figure{{margin:1em 0}}\
figcaption{{font-size:0.9em;color:#555}}.interp{{background:#f7f9fc;border-left:4px solid #1f77b4;padding:0.5em 1em}}\
td.v-vanishing,td.v-exploding,td.v-dead-units{{background:#fde2e1}}td.v-no-signal{{background:#fff3cd}}\
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
            esc(&s.title),
            esc(&s.setup)
        );
        for p in &s.interpretation {
            let _ = write!(html, "<p>{}</p>", esc(p));
        }
        html.push_str("</div>\n");
        for t in &s.tables {
            let _ = write!(html, "<table><caption>{}</caption><tr>", esc(&t.caption));
            for h in &t.header {
                let _ = write!(html, "<th>{}</th>", esc(h));
            }
            html.push_str("</tr>");
            for r in &t.rows {
                html.push_str("<tr>");
                for c in r {
                    let class = [
                        "vanishing",
                        "exploding",
                        "dead-units",
                        "no-signal",
                        "healthy",
                        "overfitting",
                    ]
                    .iter()
                    .find(|v| c.starts_with(*v))
                    .map(|v| format!(" class=\"v-{v}\""))
                    .unwrap_or_default();
                    let _ = write!(html, "<td{class}>{}</td>", esc(c));
                }
                html.push_str("</tr>");
            }
            html.push_str("</table>\n");
        }
        for p in &s.plots {
            write_file(&dir.join(&p.file), p.svg.as_bytes())?;
            let _ = writeln!(
                html,
                "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
                esc(&p.file),
                esc(&p.caption),
                esc(&p.caption)
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
