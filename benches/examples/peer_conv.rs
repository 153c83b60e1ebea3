//! Times gradlab's convolution kernels on the seven layers of the conv bench
//! with the protocol of `peers/torch_conv.py`, for the side-by-side
//! comparison in `peers/compare.py`: per (layer, pass), `--warmup` untimed
//! calls then `--reps` timed ones, one JSON object per line.
//!
//! - `forward`: `conv2d` with bias;
//! - `forward_backward`: `conv2d`, then `conv2d_backward` (gradients of
//!   input, weight and bias).
//!
//! Run: `cargo run --release -p gradlab-benches --example peer_conv -- [--warmup 3] [--reps 20] [--layer NAME]`
//! (`--layer`: only the layers whose name starts with NAME, e.g. `g`).

use std::hint::black_box;
use std::time::Instant;

use gradlab_benches::{conv_layers, CONV_BATCH};
use gradlab_conv::{conv2d, conv2d_backward};
use gradlab_tensor::Tensor;
use ndarray::{Array1, Array4, Ix4};

fn rand4(shape: [usize; 4], seed: u64) -> Array4<f32> {
    Tensor::<f32>::rand_normal(&shape, 0.0, 1.0, seed)
        .expect("valid shape")
        .into_array()
        .into_dimensionality::<Ix4>()
        .expect("rank 4")
}

fn timed(warmup: usize, reps: usize, mut f: impl FnMut()) -> Vec<f64> {
    for _ in 0..warmup {
        f();
    }
    (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| w[1].parse().expect("a number"))
        .unwrap_or(default)
}

fn main() {
    gradlab_tensor::retain_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let warmup = arg(&args, "--warmup", 3);
    let reps = arg(&args, "--reps", 20).max(1);
    let only = args
        .windows(2)
        .find(|w| w[0] == "--layer")
        .map(|w| w[1].clone());
    for (name, spec, hw) in conv_layers() {
        if only.as_ref().is_some_and(|o| !name.starts_with(o.as_str())) {
            continue;
        }
        let x = rand4([CONV_BATCH, spec.in_channels, hw, hw], 1);
        let w = rand4(spec.weight_shape(), 2);
        let b = Array1::<f32>::zeros(spec.out_channels);
        let [oh, ow] = spec.output_size(hw, hw).expect("valid layer");
        let dy = rand4([CONV_BATCH, spec.out_channels, oh, ow], 3);
        let fwd = timed(warmup, reps, || {
            black_box(conv2d(x.view(), w.view(), Some(b.view()), &spec).expect("valid"));
        });
        let both = timed(warmup, reps, || {
            let y = conv2d(x.view(), w.view(), Some(b.view()), &spec).expect("valid");
            let g = conv2d_backward(x.view(), w.view(), dy.view(), &spec).expect("valid");
            black_box((y, g));
        });
        for (pass, ms) in [("forward", fwd), ("forward_backward", both)] {
            let list: Vec<String> = ms.iter().map(|m| format!("{m:.4}")).collect();
            println!(
                "{{\"peer\": \"gradlab\", \"layer\": \"{name}\", \"pass\": \"{pass}\", \"ms\": [{}], \"median_ms\": {:.4}, \"threads\": {}}}",
                list.join(", "),
                median(&ms),
                rayon::current_num_threads()
            );
        }
    }
}
