//! BatchNorm's training op in every kernel build this CPU runs, against the
//! written-out formulas in f64 and against finite differences, on planes
//! long enough for the vectorised lanes, the f64 flush every 1024 values
//! and a remainder (the layer gradchecks use planes of a few values only).

use gradlab_autodiff::gradcheck::{gradcheck_op, GradcheckOptions};
use gradlab_autodiff::Op;
use gradlab_conv::{with_isa, Isa};
use gradlab_nn::BatchNormTrainOp;
use gradlab_tensor::Tensor;

const EPS: f64 = 1e-5;

/// The op's forward and backward (`[y, dx, dgamma, dbeta, dskip?]`) in f32.
fn run_op(op: &BatchNormTrainOp, inputs: &[Tensor<f32>], dy: &Tensor<f32>) -> Vec<Vec<f64>> {
    let refs: Vec<&Tensor<f32>> = inputs.iter().collect();
    let y = op.forward(&refs).unwrap();
    let grads = op
        .backward(&refs, &y, dy, &vec![true; inputs.len()])
        .unwrap();
    let f64s = |t: &Tensor<f32>| t.as_slice().iter().map(|&v| v as f64).collect();
    let mut out = vec![f64s(&y)];
    out.extend(grads.iter().map(|g| f64s(g.as_ref().unwrap())));
    out
}

/// The same outputs from the formulas, in f64: `y = relu?(gamma xhat + beta
/// + skip?)`, `g = dy` masked where `y <= 0` (with the ReLU),
/// `dx = gamma invstd (g - sum g / m - xhat sum (g xhat) / m)`.
fn reference(inputs: &[Tensor<f32>], dy: &Tensor<f32>, relu: bool) -> Vec<Vec<f64>> {
    let v = |t: &Tensor<f32>| -> Vec<f64> { t.as_slice().iter().map(|&v| v as f64).collect() };
    let shape = inputs[0].shape();
    let (n, c, s) = (shape[0], shape[1], shape[2] * shape[3]);
    let (x, gamma, beta, dy) = (v(&inputs[0]), v(&inputs[1]), v(&inputs[2]), v(dy));
    let skip = inputs.get(3).map(v);
    let m = (n * s) as f64;
    let idx = |img: usize, ch: usize, p: usize| (img * c + ch) * s + p;
    let mut out = vec![vec![0.0; x.len()]; 2];
    let (mut dgamma, mut dbeta) = (vec![0.0; c], vec![0.0; c]);
    let mut g = vec![0.0; x.len()];
    for ch in 0..c {
        let all = || (0..n).flat_map(move |img| (0..s).map(move |p| idx(img, ch, p)));
        let mean = all().map(|i| x[i]).sum::<f64>() / m;
        let var = all().map(|i| (x[i] - mean).powi(2)).sum::<f64>() / m;
        let invstd = 1.0 / (var + EPS).sqrt();
        for i in all() {
            let mut z = gamma[ch] * (x[i] - mean) * invstd + beta[ch];
            if let Some(k) = &skip {
                z += k[i];
            }
            out[0][i] = if relu { z.max(0.0) } else { z };
            g[i] = if relu && z <= 0.0 { 0.0 } else { dy[i] };
            dbeta[ch] += g[i];
            dgamma[ch] += g[i] * (x[i] - mean) * invstd;
        }
        for i in all() {
            let xhat = (x[i] - mean) * invstd;
            out[1][i] = gamma[ch] * invstd * (g[i] - dbeta[ch] / m - xhat * dgamma[ch] / m);
        }
    }
    out.push(dgamma);
    out.push(dbeta);
    if skip.is_some() {
        out.push(g);
    }
    out
}

/// `max |a - b|` over `max |b|`.
fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

fn tensor(shape: &[usize], seed: u64, scale: f32, shift: f32) -> Tensor<f32> {
    Tensor::rand_normal(shape, 0.0, 1.0, seed)
        .unwrap()
        .map(|v| scale * v + shift)
}

#[test]
fn every_build_matches_the_written_out_formulas() {
    // Planes of 37x31 = 1147 values (two f64 flushes, a remainder), 8x8,
    // 4x4 (fewer values than lanes), and 2560 planes of 3x3: more planes
    // than one parallel run holds, so a run starts mid-batch at a channel
    // other than 0 and the last run is partial.
    for shape in [[2, 3, 37, 31], [4, 2, 8, 8], [3, 5, 4, 4], [64, 40, 3, 3]] {
        let c = shape[1];
        let inputs = vec![
            tensor(&shape, 1, 3.0, 5.0),
            tensor(&[c], 2, 0.5, 1.0),
            tensor(&[c], 3, 0.5, 0.0),
        ];
        let mut with_skip = inputs.clone();
        with_skip.push(tensor(&shape, 5, 1.0, 0.0));
        let dy = tensor(&shape, 4, 1.0, 0.0);
        for (name, op, inputs) in [
            ("batch_norm", BatchNormTrainOp::new(EPS), &inputs),
            (
                "batch_norm_relu",
                BatchNormTrainOp::new(EPS).with_relu(),
                &inputs,
            ),
            (
                "batch_norm_add_relu",
                BatchNormTrainOp::new(EPS).with_add_relu(),
                &with_skip,
            ),
        ] {
            let want = reference(inputs, &dy, op.has_relu());
            for isa in Isa::available() {
                let got = with_isa(isa, || run_op(&op, inputs, &dy)).unwrap();
                assert_eq!(got.len(), want.len(), "{name} {isa}");
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    let err = relative_error(g, w);
                    assert!(
                        err < 2e-5,
                        "{name} {shape:?} build {isa}: output {k} off by {err:e} (relative)"
                    );
                }
            }
        }
    }
}

#[test]
fn every_build_passes_gradcheck_on_long_planes() {
    // Planes of 6x7 = 42 values: one full set of 32 lanes and a remainder.
    let shape = [2, 2, 6, 7];
    let normal =
        |shape: &[usize], seed: u64| Tensor::<f64>::rand_normal(shape, 0.0, 1.0, seed).unwrap();
    let inputs = vec![
        normal(&shape, 11).map(|v| 2.0 * v + 3.0),
        normal(&[2], 12),
        normal(&[2], 13),
    ];
    let mut with_skip = inputs.clone();
    with_skip.push(normal(&shape, 14));
    for isa in Isa::available() {
        let opts = GradcheckOptions::default();
        let plain = with_isa(isa, || {
            gradcheck_op(&BatchNormTrainOp::new(EPS), &inputs, &opts)
        });
        let report = plain
            .unwrap()
            .unwrap_or_else(|e| panic!("batch_norm, build {isa}: {e}"));
        assert_eq!(report.inputs_checked, 3);
        let fused = BatchNormTrainOp::new(EPS).with_add_relu();
        let report = with_isa(isa, || gradcheck_op(&fused, &with_skip, &opts))
            .unwrap()
            .unwrap_or_else(|e| panic!("batch_norm_add_relu, build {isa}: {e}"));
        assert_eq!(report.inputs_checked, 4);
    }
}
