//! Standard, pointwise and depthwise convolutions side by side on one worked
//! example: parameters and multiply-accumulates counted by `Conv2dSpec`,
//! output shape from `conv2d`, and channel mixing measured by perturbing one
//! input channel and listing the output channels that change.
//!
//! Run: `cargo run --release -p gradlab-conv --example compare`

use gradlab_conv::{conv2d, Conv2dSpec, ConvError};
use gradlab_tensor::Tensor;
use ndarray::{s, Array4, Ix4};

fn rand4(shape: [usize; 4], seed: u64) -> Array4<f64> {
    Tensor::<f64>::rand_uniform(&shape, -1.0, 1.0, seed)
        .expect("valid range")
        .into_array()
        .into_dimensionality::<Ix4>()
        .expect("rank 4")
}

/// Output channels of image 0 that change when input channel `c` changes.
fn touched(
    spec: &Conv2dSpec,
    x: &Array4<f64>,
    w: &Array4<f64>,
    c: usize,
) -> Result<usize, ConvError> {
    let y = conv2d(x.view(), w.view(), None, spec)?;
    let mut x2 = x.clone();
    x2.slice_mut(s![0, c, .., ..]).mapv_inplace(|v| v + 0.5);
    let y2 = conv2d(x2.view(), w.view(), None, spec)?;
    Ok((0..spec.out_channels)
        .filter(|&co| {
            let a = y.slice(s![0, co, .., ..]);
            let b = y2.slice(s![0, co, .., ..]);
            a.iter().zip(b.iter()).any(|(p, q)| (p - q).abs() > 1e-12)
        })
        .count())
}

fn main() -> Result<(), ConvError> {
    let (c_in, c_out, h, w) = (32, 64, 16, 16);
    println!("input [1, {c_in}, {h}, {w}]; the perturbation adds 0.5 to input channel 5\n");
    let rows: Vec<(&str, Vec<Conv2dSpec>)> = vec![
        (
            "standard 3x3",
            vec![Conv2dSpec::new(c_in, c_out, 3).padding(1)],
        ),
        ("pointwise 1x1", vec![Conv2dSpec::new(c_in, c_out, 1)]),
        (
            "depthwise 3x3",
            vec![Conv2dSpec::new(c_in, c_in, 3).padding(1).groups(c_in)],
        ),
        (
            "depthwise 3x3, multiplier 2",
            vec![Conv2dSpec::new(c_in, 2 * c_in, 3).padding(1).groups(c_in)],
        ),
        (
            "grouped 3x3, 4 groups",
            vec![Conv2dSpec::new(c_in, c_out, 3).padding(1).groups(4)],
        ),
        (
            "depthwise 3x3 + pointwise 1x1",
            vec![
                Conv2dSpec::new(c_in, c_in, 3).padding(1).groups(c_in),
                Conv2dSpec::new(c_in, c_out, 1),
            ],
        ),
    ];
    let standard_params = Conv2dSpec::new(c_in, c_out, 3).param_count(false);
    println!(
        "| convolution | kind | weight | params (no bias) | MACs per image | cost vs standard | output | output channels changed |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let x = rand4([1, c_in, h, w], 1);
    for (name, specs) in rows {
        let mut params = 0;
        let mut macs = 0;
        let mut input = x.clone();
        for (i, spec) in specs.iter().enumerate() {
            params += spec.param_count(false);
            macs += spec.macs(1, input.shape()[2], input.shape()[3])?;
            let wt = rand4(spec.weight_shape(), 2 + i as u64);
            input = conv2d(input.view(), wt.view(), None, spec)?;
        }
        // Channel mixing of the whole stack: compose the layers again on a
        // perturbed input.
        let changed = if specs.len() == 1 {
            let wt = rand4(specs[0].weight_shape(), 2);
            touched(&specs[0], &x, &wt, 5)?
        } else {
            let mut x2 = x.clone();
            x2.slice_mut(s![0, 5, .., ..]).mapv_inplace(|v| v + 0.5);
            let (mut a, mut b) = (x.clone(), x2);
            for (i, spec) in specs.iter().enumerate() {
                let wt = rand4(spec.weight_shape(), 2 + i as u64);
                a = conv2d(a.view(), wt.view(), None, spec)?;
                b = conv2d(b.view(), wt.view(), None, spec)?;
            }
            (0..a.shape()[1])
                .filter(|&co| {
                    let p = a.slice(s![0, co, .., ..]);
                    let q = b.slice(s![0, co, .., ..]);
                    p.iter().zip(q.iter()).any(|(u, v)| (u - v).abs() > 1e-12)
                })
                .count()
        };
        let kinds: Vec<String> = specs.iter().map(|s| s.kind().to_string()).collect();
        let weights: Vec<String> = specs
            .iter()
            .map(|s| format!("{:?}", s.weight_shape()))
            .collect();
        println!(
            "| {name} | {} | {} | {params} | {macs} | {:.3} | {:?} | {changed} of {} |",
            kinds.join(" + "),
            weights.join(" + "),
            params as f64 / standard_params as f64,
            input.shape(),
            input.shape()[1],
        );
    }
    Ok(())
}
