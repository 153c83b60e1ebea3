//! `gradlab summary`: a per-layer table of a model, like torchinfo.

use gradlab_arch::summarize;

use crate::error::{CliError, Result};
use crate::model_spec::build_model;

/// Parses `CxHxW` (or `HxW`, one channel).
///
/// # Errors
/// [`CliError::Usage`] for anything else.
pub fn parse_shape(text: &str) -> Result<[usize; 3]> {
    let parts: Vec<&str> = text.split('x').collect();
    let nums: Option<Vec<usize>> = parts.iter().map(|p| p.trim().parse().ok()).collect();
    match nums.as_deref() {
        Some([c, h, w]) if *c > 0 && *h > 0 && *w > 0 => Ok([*c, *h, *w]),
        Some([h, w]) if *h > 0 && *w > 0 => Ok([1, *h, *w]),
        _ => Err(CliError::Usage(format!(
            "'{text}' is not a shape like 3x32x32 (CxHxW) or 32x32 (HxW)"
        ))),
    }
}

/// Prints the table and the totals.
///
/// # Errors
/// Bad specs and shapes.
pub fn run(model: &str, input: &str, classes: usize) -> Result<()> {
    let shape = parse_shape(input)?;
    let mut built = build_model(model, shape, classes, 0)?;
    let summary = summarize(&mut *built.net, &shape)?;
    println!(
        "{} on input {}x{}x{}, {} classes\n",
        built.net.label(),
        shape[0],
        shape[1],
        shape[2],
        classes
    );
    println!(
        "{:<36} {:<14} {:>18} {:>10} {:>14}",
        "layer", "kind", "output shape", "params", "MACs"
    );
    println!("{}", "-".repeat(96));
    for l in &summary.layers {
        println!(
            "{:<36} {:<14} {:>18} {:>10} {:>14}",
            l.name,
            l.kind.to_string(),
            format!("{:?}", l.output_shape),
            l.params,
            l.macs
        );
    }
    println!("{}", "-".repeat(96));
    println!("total parameters: {}", summary.params);
    println!("total MACs per image: {}", summary.macs);
    Ok(())
}
