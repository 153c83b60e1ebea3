//! `gradlab summary`: a per-layer table of a model, like torchinfo.

use gradlab_arch::summarize;

use crate::error::{CliError, Result};
use crate::model_spec::build_model;
use crate::terminal::{self, paragraph};

/// Parses `CxHxW` (or `HxW`, one channel).
///
/// # Errors
/// [`CliError::Usage`] for anything else.
pub fn parse_shape(text: &str) -> Result<[usize; 3]> {
    let parts: Vec<&str> = text.split('x').collect();
    let nums: Option<Vec<usize>> = parts.iter().map(|p| p.trim().parse().ok()).collect();
    let shape = match nums.as_deref() {
        Some([c, h, w]) if *c > 0 && *h > 0 && *w > 0 => [*c, *h, *w],
        Some([h, w]) if *h > 0 && *w > 0 => [1, *h, *w],
        _ => {
            return Err(CliError::Usage(format!(
                "'{text}' is not a shape like 3x32x32 (CxHxW) or 32x32 (HxW)"
            )))
        }
    };
    check_memory(
        &format!("input {text}"),
        shape.iter().map(|&v| v as f64).product(),
        64.0,
    )?;
    Ok(shape)
}

/// Refuses work whose `floats` f32 values, times `layers` (the activations
/// a network keeps of each), cannot fit in memory, before allocating.
///
/// # Errors
/// [`CliError::Usage`] saying how much memory it would need.
pub fn check_memory(what: &str, floats: f64, layers: f64) -> Result<()> {
    let need = floats * 4.0 * layers;
    let limit = gradlab_data::memory_limit() as f64;
    if need > limit {
        return Err(CliError::Usage(format!(
            "{what}: would need about {} of memory, more than this machine's {}",
            crate::model_spec::human_bytes(need),
            crate::model_spec::human_bytes(limit)
        )));
    }
    Ok(())
}

/// Prints the table, the totals and the points where auxiliary heads can attach.
///
/// # Errors
/// Bad specs and shapes.
pub fn run(model: &str, input: &str, classes: usize) -> Result<()> {
    print!(
        "{}",
        summary_text(model, input, classes, terminal::width())?
    );
    Ok(())
}

/// What [`run`] prints, for a terminal `width` columns wide.
///
/// # Errors
/// Bad specs and shapes.
pub fn summary_text(model: &str, input: &str, classes: usize, width: usize) -> Result<String> {
    let shape = parse_shape(input)?;
    let mut built = build_model(model, shape, classes, 0)?;
    let summary = summarize(&mut *built.net, &shape)?;
    let mut out = format!(
        "{} on input {}x{}x{}, {} classes\n\n",
        built.net.label(),
        shape[0],
        shape[1],
        shape[2],
        classes
    );
    let header: Vec<String> = ["layer", "kind", "output shape", "params", "MACs"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows: Vec<Vec<String>> = summary
        .layers
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.kind.to_string(),
                format!("{:?}", l.output_shape),
                l.params.to_string(),
                l.macs.to_string(),
            ]
        })
        .collect();
    out.push_str(&terminal::table(&header, &rows, &[2, 3, 4], width));
    out.push_str(&format!("total parameters: {}\n", summary.params));
    out.push_str(&format!("total MACs per image: {}\n", summary.macs));
    let points: Vec<String> = built
        .net
        .points()
        .iter()
        .map(|p| format!("{} ({} channels)", p.name, p.channels))
        .collect();
    out.push('\n');
    out.push_str(&paragraph(
        &format!(
            "auxiliary heads attach at (aux=NAME+NAME): {}",
            points.join(", ")
        ),
        width,
    ));
    Ok(out)
}
