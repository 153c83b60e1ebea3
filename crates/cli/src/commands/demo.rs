//! `gradlab demo` and `gradlab experiment`: the four experiments and the report.

use std::path::Path;
use std::time::Instant;

use serde_json::json;

use crate::error::Result;
use crate::experiments::{self, Size, NAMES};
use crate::report::write_report;

/// Runs `names` at `size`, prints each summary, and writes the report into `out`.
///
/// # Errors
/// Experiment and file errors.
pub fn run(names: &[&str], size: &Size, out: &Path) -> Result<()> {
    // A report folder that cannot be written fails now, not after the experiments.
    crate::output::check_output_dir(out)?;
    let started = Instant::now();
    let mut sections = Vec::new();
    for name in names {
        let t = Instant::now();
        let section = experiments::run(name, size)?;
        section.print();
        eprintln!("({name}: {:.1} s)", t.elapsed().as_secs_f64());
        sections.push(section);
    }
    let meta = json!({
        "gradlab_version": env!("CARGO_PKG_VERSION"),
        "quick": size.quick,
        "seed": size.seed,
        "scale": size.scale,
        "seconds": started.elapsed().as_secs_f64(),
        "experiments": names,
    });
    write_report(out, "gradlab: why training stalls", &sections, meta)?;
    println!("\nreport: {}", out.join("index.html").display());
    Ok(())
}

/// `gradlab demo`: all four experiments.
///
/// # Errors
/// As [`run`].
pub fn demo(out: &Path, quick: bool) -> Result<()> {
    run(
        &NAMES,
        &Size {
            quick,
            seed: 0,
            scale: 1.0,
        },
        out,
    )
}
