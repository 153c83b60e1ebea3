//! `gradlab demo` and `gradlab experiment`: the four experiments and the report.

use std::path::Path;
use std::time::Instant;

use serde_json::json;

use crate::error::{CliError, Result};
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
        "seeds": size.seed_list(),
        "seconds": started.elapsed().as_secs_f64(),
        "experiments": names,
    });
    write_report(out, "gradlab: why training stalls", &sections, meta)?;
    println!("\nreport: {}", out.join("index.html").display());
    Ok(())
}

/// The [`Size`] of a run from the command line: `seeds` defaults to
/// [`Size::QUICK_SEEDS`] or [`Size::FULL_SEEDS`].
///
/// # Errors
/// [`CliError::Usage`] for a scale that is not a positive number or 0 seeds.
pub fn size(quick: bool, seed: u64, scale: f64, seeds: Option<usize>) -> Result<Size> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(CliError::Usage(format!(
            "--scale must be a positive number, got {scale}"
        )));
    }
    let seeds = seeds.unwrap_or(if quick {
        Size::QUICK_SEEDS
    } else {
        Size::FULL_SEEDS
    });
    if seeds == 0 {
        return Err(CliError::Usage(
            "--seeds must be at least 1 (each repeated experiment runs once per seed), got 0"
                .into(),
        ));
    }
    Ok(Size {
        quick,
        seed,
        scale,
        seeds,
    })
}

/// `gradlab demo`: all four experiments.
///
/// # Errors
/// As [`run`] and [`size`].
pub fn demo(out: &Path, quick: bool, seeds: Option<usize>) -> Result<()> {
    run(&NAMES, &size(quick, 0, 1.0, seeds)?, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_default_by_size_and_zero_is_a_usage_error() {
        assert_eq!(size(true, 0, 1.0, None).unwrap().seeds, Size::QUICK_SEEDS);
        assert_eq!(size(false, 3, 1.0, None).unwrap().seeds, Size::FULL_SEEDS);
        assert_eq!(size(false, 3, 1.0, Some(7)).unwrap().seed_list().len(), 7);
        let err = size(false, 0, 1.0, Some(0)).unwrap_err();
        assert!(
            matches!(err, CliError::Usage(ref m) if m.contains("--seeds")),
            "{err}"
        );
        assert!(size(false, 0, -1.0, None).is_err());
    }
}
