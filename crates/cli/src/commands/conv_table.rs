//! `gradlab conv-table`: standard, pointwise (1x1) and depthwise
//! convolutions compared on one shape — counted, measured and checked for
//! channel mixing — and the depthwise-separable pair against the standard
//! convolution it replaces.

use std::time::Instant;

use gradlab_conv::{conv2d, conv2d_backward, Conv2dSpec};
use gradlab_tensor::Tensor;
use ndarray::{s, Array4, Ix4};
use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};
use crate::terminal::{self, list_item, paragraph};

/// The shape the comparison runs on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConvShape {
    /// Input channels.
    pub c_in: usize,
    /// Output channels of the standard and pointwise convolutions.
    pub c_out: usize,
    /// Kernel side of the standard and depthwise convolutions.
    pub kernel: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Images per batch for the timings.
    pub batch: usize,
}

/// One row of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvRow {
    /// What it is (`standard 3x3`, ...).
    pub name: String,
    /// Kernel size as `KxK`.
    pub kernel: String,
    /// What the operation combines.
    pub combines: String,
    /// The parameter formula.
    pub formula: String,
    /// Parameters by the formula.
    pub params_formula: usize,
    /// Parameters counted from the weight tensor(s) the layer holds.
    pub params_counted: usize,
    /// Multiply-accumulates for one image (the timings are for the batch).
    pub macs_per_image: u64,
    /// Median forward time in milliseconds.
    pub forward_ms: f64,
    /// Median backward time (input and weight gradients) in milliseconds.
    pub backward_ms: f64,
    /// Output channels.
    pub out_channels: usize,
    /// Output channels that change when one input channel is perturbed.
    pub channels_changed: usize,
    /// Whether channels mix (more than one output channel changed).
    pub mixes_channels: bool,
}

/// One operation of the comparison, before it is measured.
struct Candidate {
    name: &'static str,
    kernel: String,
    combines: &'static str,
    formula: &'static str,
    params: usize,
    specs: Vec<Conv2dSpec>,
}

fn rand4(shape: [usize; 4], seed: u64) -> Result<Array4<f32>> {
    Tensor::<f32>::rand_uniform(&shape, -1.0, 1.0, seed)?
        .into_array()
        .into_dimensionality::<Ix4>()
        .map_err(|e| CliError::Run(e.to_string()))
}

fn median_ms(samples: Vec<f64>) -> f64 {
    gradlab_diag::stats::median(&samples).unwrap_or(f64::NAN)
}

/// Runs `layers` in sequence on `x` and back, `reps` times; returns the
/// median forward and backward milliseconds and the output.
fn time_stack(
    layers: &[(Conv2dSpec, Array4<f32>)],
    x: &Array4<f32>,
    reps: usize,
) -> Result<(f64, f64, Array4<f32>)> {
    let (mut fwd, mut bwd) = (Vec::new(), Vec::new());
    let mut out = x.clone();
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let mut acts = vec![x.clone()];
        for (spec, w) in layers {
            let y = conv2d(acts.last().expect("input").view(), w.view(), None, spec)?;
            acts.push(y);
        }
        fwd.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let mut g = Array4::<f32>::ones(acts.last().expect("output").raw_dim());
        for (i, (spec, w)) in layers.iter().enumerate().rev() {
            g = conv2d_backward(acts[i].view(), w.view(), g.view(), spec)?.input;
        }
        bwd.push(t.elapsed().as_secs_f64() * 1e3);
        out = acts.pop().expect("output");
    }
    Ok((median_ms(fwd), median_ms(bwd), out))
}

/// Output channels of example 0 that change when input channel `c` of
/// example 0 is perturbed: channel mixing measured, not read off a label.
fn channels_changed(
    layers: &[(Conv2dSpec, Array4<f32>)],
    x: &Array4<f32>,
    c: usize,
) -> Result<usize> {
    let one = x.slice(s![0..1, .., .., ..]).to_owned();
    let mut bumped = one.clone();
    bumped.slice_mut(s![0, c, .., ..]).mapv_inplace(|v| v + 1.0);
    let (mut a, mut b) = (one, bumped);
    for (spec, w) in layers {
        a = conv2d(a.view(), w.view(), None, spec)?;
        b = conv2d(b.view(), w.view(), None, spec)?;
    }
    Ok((0..a.shape()[1])
        .filter(|&co| {
            a.slice(s![0, co, .., ..])
                .iter()
                .zip(b.slice(s![0, co, .., ..]).iter())
                .any(|(p, q)| (p - q).abs() > 1e-6)
        })
        .count())
}

/// Compares the convolutions on `shape`, timing each `reps` times.
///
/// # Errors
/// [`CliError::Usage`] for a shape the convolutions reject (kernel larger
/// than the padded input, zero sizes).
pub fn compare(shape: &ConvShape, reps: usize) -> Result<Vec<ConvRow>> {
    let ConvShape {
        c_in,
        c_out,
        kernel: k,
        height,
        width,
        batch,
    } = *shape;
    if [c_in, c_out, k, height, width, batch].contains(&0) {
        return Err(CliError::Usage(format!(
            "conv-table: every size must be at least 1, got {shape:?}"
        )));
    }
    let f = |v: usize| v as f64;
    // Weights, input and output of the largest layer, with their gradients.
    let floats =
        f(c_in) * f(c_out) * f(k) * f(k) + f(batch) * (f(c_in) + f(c_out)) * f(height) * f(width);
    crate::commands::summary::check_memory("conv-table", floats, 3.0)?;
    let pad = k / 2;
    let standard = Conv2dSpec::new(c_in, c_out, k).padding(pad);
    let pointwise = Conv2dSpec::new(c_in, c_out, 1);
    let depthwise = Conv2dSpec::new(c_in, c_in, k).padding(pad).groups(c_in);
    for spec in [&standard, &pointwise, &depthwise] {
        spec.output_size(height, width)
            .map_err(|e| CliError::Usage(format!("conv-table: {e}")))?;
    }
    let x = rand4([batch, c_in, height, width], 1)?;
    let kk = format!("{k}x{k}");
    let candidates = [
        Candidate {
            name: "standard",
            kernel: kk.clone(),
            combines: "space and channels: every output channel sums a KxK window over every input channel",
            formula: "C_in*C_out*K*K",
            params: c_in * c_out * k * k,
            specs: vec![standard],
        },
        Candidate {
            name: "pointwise (1x1)",
            kernel: "1x1".into(),
            combines: "channels only: each pixel's channels mixed linearly, no spatial context",
            formula: "C_in*C_out",
            params: c_in * c_out,
            specs: vec![pointwise],
        },
        Candidate {
            name: "depthwise",
            kernel: kk.clone(),
            combines: "space only: one KxK filter per channel, channels kept apart",
            formula: "C_in*K*K",
            params: c_in * k * k,
            specs: vec![depthwise],
        },
        Candidate {
            name: "depthwise-separable (depthwise + pointwise)",
            kernel: format!("{kk} + 1x1"),
            combines: "space, then channels: replaces the standard convolution",
            formula: "C_in*K*K + C_in*C_out",
            params: c_in * k * k + c_in * c_out,
            specs: vec![depthwise, pointwise],
        },
    ];
    let mut out = Vec::new();
    for (i, c) in candidates.into_iter().enumerate() {
        let Candidate {
            name,
            kernel,
            combines,
            formula,
            params: params_formula,
            specs,
        } = c;
        let layers: Vec<(Conv2dSpec, Array4<f32>)> = specs
            .iter()
            .enumerate()
            .map(|(j, s)| Ok((*s, rand4(s.weight_shape(), 10 + 3 * i as u64 + j as u64)?)))
            .collect::<Result<_>>()?;
        let params_counted = layers.iter().map(|(_, w)| w.len()).sum();
        let mut macs = 0;
        let (mut h, mut w) = (height, width);
        for s in &specs {
            macs += s.macs(1, h, w)?;
            [h, w] = s.output_size(h, w)?;
        }
        let (forward_ms, backward_ms, y) = time_stack(&layers, &x, reps)?;
        let changed = channels_changed(&layers, &x, c_in / 2)?;
        out.push(ConvRow {
            name: name.into(),
            kernel,
            combines: combines.into(),
            formula: formula.into(),
            params_formula,
            params_counted,
            macs_per_image: macs,
            forward_ms,
            backward_ms,
            out_channels: y.shape()[1],
            channels_changed: changed,
            mixes_channels: changed > 1,
        });
    }
    Ok(out)
}

/// The comparison as text for a terminal `width` columns wide: MACs per
/// image, times for the whole batch.
pub fn rows_text(shape: &ConvShape, rows: &[ConvRow], width: usize) -> String {
    let mut out = paragraph(
        &format!(
            "input [{}, {}, {}, {}], kernel {}, C_out {}; channel mixing: input channel {} perturbed",
            shape.batch,
            shape.c_in,
            shape.height,
            shape.width,
            shape.kernel,
            shape.c_out,
            shape.c_in / 2
        ),
        width,
    );
    out.push('\n');
    let header: Vec<String> = [
        "operation",
        "kernel",
        "params formula",
        "= params",
        "counted",
        "MACs per image",
        &format!("fwd ms (batch {})", shape.batch),
        &format!("bwd ms (batch {})", shape.batch),
        "C_out",
        "channels changed",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.kernel.clone(),
                r.formula.clone(),
                r.params_formula.to_string(),
                r.params_counted.to_string(),
                r.macs_per_image.to_string(),
                format!("{:.2}", r.forward_ms),
                format!("{:.2}", r.backward_ms),
                r.out_channels.to_string(),
                format!(
                    "{} of {}{}",
                    r.channels_changed,
                    r.out_channels,
                    if r.mixes_channels { "" } else { " (no mixing)" }
                ),
            ]
        })
        .collect();
    out.push_str(&terminal::table(
        &header,
        &cells,
        &[3, 4, 5, 6, 7, 8],
        width,
    ));
    out.push('\n');
    for r in rows {
        out.push_str(&list_item(
            2,
            "-",
            &format!("{}: {}", r.name, r.combines),
            width,
        ));
    }
    out
}

/// Prints the comparison as a table fitted to the terminal.
pub fn print_rows(shape: &ConvShape, rows: &[ConvRow]) {
    print!("{}", rows_text(shape, rows, terminal::width()));
}

/// `gradlab conv-table`.
///
/// # Errors
/// As [`compare`].
pub fn run(shape: &ConvShape) -> Result<()> {
    let rows = compare(shape, 5)?;
    print_rows(shape, &rows);
    Ok(())
}
