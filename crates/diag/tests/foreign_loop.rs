//! A training loop written without gradlab-nn (plain ndarray, gradients by
//! hand) records through the stats-only `Recorder` and gets the verdict it
//! should: a deep sigmoid chain vanishes, a shallow one is healthy.

use gradlab_diag::{diagnose, History, Recorder, Verdict};
use ndarray::Array2;

/// Trains a plain sigmoid MLP of `depth` linear layers (PyTorch's default
/// initialisation, no biases) by full-batch gradient descent on a 4-class
/// task, recording every step; returns the history.
fn sigmoid_mlp(depth: usize, steps: usize, lr: f32) -> History {
    let (width, inputs, classes, n) = (32, 16, 4, 256);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
    };
    let x = Array2::from_shape_simple_fn((n, inputs), || uniform() * 3f32.sqrt());
    let labels: Vec<usize> = (0..n)
        .map(|i| {
            (0..classes)
                .max_by(|&a, &b| x[[i, a]].total_cmp(&x[[i, b]]))
                .unwrap()
        })
        .collect();
    let mut weights: Vec<Array2<f32>> = (0..depth)
        .map(|l| {
            let fan_in = if l == 0 { inputs } else { width };
            let fan_out = if l + 1 == depth { classes } else { width };
            let bound = 1.0 / (fan_in as f32).sqrt();
            Array2::from_shape_simple_fn((fan_in, fan_out), || uniform() * bound)
        })
        .collect();
    let mut recorder = Recorder::new(classes);
    for step in 0..steps {
        let mut hs = vec![x.clone()];
        for w in &weights[..depth - 1] {
            let h = hs.last().unwrap().dot(w).mapv(|z| 1.0 / (1.0 + (-z).exp()));
            hs.push(h);
        }
        let mut d = hs.last().unwrap().dot(&weights[depth - 1]);
        let (mut loss, mut correct) = (0.0, 0);
        for (i, mut row) in d.rows_mut().into_iter().enumerate() {
            let m = row.fold(f32::MIN, |a, &b| a.max(b));
            let best = (0..classes).find(|&c| row[c] == m).unwrap();
            correct += usize::from(best == labels[i]);
            row.mapv_inplace(|v| (v - m).exp());
            let s = row.sum();
            row.mapv_inplace(|v| v / s);
            loss -= (row[labels[i]] as f64).ln() / n as f64;
            row[labels[i]] -= 1.0;
        }
        d /= n as f32;
        let mut grads = vec![Array2::zeros((0, 0)); depth];
        let mut act_grads = Vec::new();
        for l in (0..depth).rev() {
            grads[l] = hs[l].t().dot(&d);
            if l > 0 {
                let dh = d.dot(&weights[l].t());
                d = &dh * &hs[l].mapv(|h| h * (1.0 - h));
                act_grads.push(dh);
            }
        }
        act_grads.reverse();
        let mut s = recorder.step(step, loss);
        s.accuracy(correct as f64 / n as f64);
        for (l, (g, w)) in grads.iter().zip(&weights).enumerate() {
            s.layer(
                &format!("fc{l}"),
                g.as_slice().unwrap(),
                w.as_slice().unwrap(),
            );
        }
        for (l, dh) in act_grads.iter().enumerate() {
            s.position_gradient(&format!("h{}", l + 1), dh.as_slice().unwrap(), n);
        }
        s.finish().unwrap();
        for (w, g) in weights.iter_mut().zip(&grads) {
            w.scaled_add(-lr, g);
        }
    }
    recorder.into_history()
}

#[test]
fn a_deep_sigmoid_chain_vanishes_at_the_mean_field_rate() {
    let h = sigmoid_mlp(16, 40, 0.5);
    let d = diagnose(&h).unwrap();
    assert_eq!(d.verdict, Verdict::Vanishing, "{:#?}", d.reasons);
    let kappa = d.indicators.kappa.unwrap();
    assert!((kappa - 1.94).abs() < 0.25, "κ = {kappa}");
    // The update ratio, measured from the weights the loop handed over.
    assert!(d.indicators.update_ratio.unwrap() < 1e-4);
}

#[test]
fn a_shallow_sigmoid_net_is_healthy() {
    let h = sigmoid_mlp(2, 300, 2.0);
    let d = diagnose(&h).unwrap();
    assert_eq!(d.verdict, Verdict::Healthy, "{:#?}", d.reasons);
    assert!(d.indicators.loss_to_chance.unwrap() < 0.9);
    assert!(h.steps.last().unwrap().accuracy.unwrap() > 0.6);
}
