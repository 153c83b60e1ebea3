//! Per-layer summaries (name, kind, output shape, parameters, MACs) of any
//! [`Classifier`], like torchinfo's.

use std::fmt;

use gradlab_nn::{Ctx, LayerKind};
use gradlab_tensor::{Element, Tensor};

use crate::classifier::{Classifier, HeadMode, OutputRequest};
use crate::error::Result;

/// One row of a [`Summary`]: a leaf layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSummary {
    /// Dotted name.
    pub name: String,
    /// What it computes.
    pub kind: LayerKind,
    /// Output shape of one example (no batch axis): `[C, H, W]` or `[F]`.
    pub output_shape: Vec<usize>,
    /// Trainable parameters.
    pub params: usize,
    /// Multiply-accumulates for one example ([`LayerKind::macs`]).
    pub macs: u64,
}

/// A network's layers with their output shapes, parameters and MACs at one
/// input size, and the totals.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The network's label.
    pub label: String,
    /// The shape of one example (`[C, H, W]`).
    pub input_shape: Vec<usize>,
    /// Every leaf layer in forward order (auxiliary heads last).
    pub layers: Vec<LayerSummary>,
    /// Trainable parameters of the whole network (buffers excluded).
    pub params: usize,
    /// Multiply-accumulates of one forward pass of one example.
    pub macs: u64,
}

/// Summarises `model` for examples of shape `input` (`[C, H, W]`, or `[F]`
/// for a fully connected stack): one forward pass of a zero example in
/// evaluation mode with every auxiliary head, reading each layer's output
/// shape from its tap. The model's mode is restored afterwards and its
/// parameters and running statistics are unchanged.
///
/// # Errors
/// The input checks of the model ([`ArchError::InputShape`](crate::ArchError::InputShape),
/// [`ArchError::InputTooSmall`](crate::ArchError::InputTooSmall)) and the layers' errors.
///
/// # Examples
/// ```
/// use gradlab_arch::{summarize, ResNet, ResNetConfig};
/// use gradlab_nn::Scope;
/// let mut net = ResNet::<f32>::new(&Scope::new(0), &ResNetConfig::cifar(20)?)?;
/// let s = summarize(&mut net, &[3, 32, 32])?;
/// assert_eq!(s.params, 269_722);
/// assert_eq!(s.macs, 40_551_040);
/// assert_eq!(s.layers[0].name, "stem.conv");
/// assert_eq!(s.layers[0].output_shape, [16, 32, 32]);
/// println!("{s}");
/// # Ok::<(), gradlab_arch::ArchError>(())
/// ```
pub fn summarize<T: Element, M: Classifier<T> + ?Sized>(
    model: &mut M,
    input: &[usize],
) -> Result<Summary> {
    let mut shape = vec![1];
    shape.extend_from_slice(input);
    model.check_input(&shape)?;
    let was_training = model.is_training();
    model.set_training(false);
    let mut cx = Ctx::<T>::no_grad();
    let x = cx.input(Tensor::zeros(&shape));
    let ran = model.forward_outputs(
        &mut cx,
        x,
        &OutputRequest {
            heads: HeadMode::Always,
            features: Vec::new(),
        },
    );
    model.set_training(was_training);
    ran?;
    let mut layers = Vec::new();
    for info in model.layers() {
        let out = match cx.tapped(&info.name) {
            Some(v) => cx.value(v)?.shape()[1..].to_vec(),
            // A layer the pass skipped (the flatten of an MLP fed vectors).
            None if info.params == 0 => continue,
            None => Vec::new(),
        };
        let macs = info.kind.macs(&out);
        layers.push(LayerSummary {
            name: info.name,
            kind: info.kind,
            output_shape: out,
            params: info.params,
            macs,
        });
    }
    Ok(Summary {
        label: model.label(),
        input_shape: input.to_vec(),
        macs: layers.iter().map(|l| l.macs).sum(),
        params: model.num_trainable(),
        layers,
    })
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Summary {
    /// A table: name, kind, output shape, parameters, MACs, then the totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = |s: &[usize]| {
            format!(
                "[{}]",
                s.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let rows: Vec<[String; 5]> = self
            .layers
            .iter()
            .map(|l| {
                [
                    l.name.clone(),
                    l.kind.to_string(),
                    shape(&l.output_shape),
                    thousands(l.params as u64),
                    thousands(l.macs),
                ]
            })
            .collect();
        let head = ["layer", "kind", "output", "params", "MACs"];
        let mut w = head.map(str::len);
        for r in &rows {
            for (wi, c) in w.iter_mut().zip(r) {
                *wi = (*wi).max(c.len());
            }
        }
        writeln!(f, "{} on input {}", self.label, shape(&self.input_shape))?;
        let line = |f: &mut fmt::Formatter<'_>, r: [&str; 5]| {
            writeln!(
                f,
                "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3],
                w4 = w[4]
            )
        };
        line(f, head)?;
        for r in &rows {
            line(f, [&r[0], &r[1], &r[2], &r[3], &r[4]])?;
        }
        writeln!(
            f,
            "total: {} trainable parameters, {} MACs per example",
            thousands(self.params as u64),
            thousands(self.macs)
        )
    }
}
