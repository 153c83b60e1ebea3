//! The BatchNorm fusions of training mode run where the layers sit in a
//! [`Sequential`] (boxed), and give the bits of the unfused layers: values,
//! the gradients of the input, the skip input, gamma and beta, and the
//! running statistics.

use gradlab_autodiff::Var;
use gradlab_nn::*;
use gradlab_tensor::Tensor;

const SHAPE: [usize; 4] = [4, 3, 5, 5];

/// BatchNorm over 3 channels, optionally followed by a ReLU, boxed in a Sequential.
fn chain(with_relu: bool) -> Sequential<f32> {
    let mut seq = Sequential::new(&Scope::new(3).pp("branch"));
    seq.add(|s| BatchNorm2d::new(s, 3, BatchNormConfig::default()))
        .unwrap();
    if with_relu {
        seq.add(|s| Ok(Activation::relu(s))).unwrap();
    }
    // Non-trivial gamma and beta, so that the ReLU cuts at different places per channel.
    seq.visit_params_mut(&mut |p| {
        if p.is_trainable() {
            let n = p.len();
            let v: Vec<f32> = (0..n).map(|i| 0.5 + 0.3 * i as f32).collect();
            p.set_value(Tensor::from_vec(&[n], v).unwrap()).unwrap();
        }
    });
    seq
}

fn tensor(seed: u64) -> Tensor<f32> {
    Tensor::rand_normal(&SHAPE, 0.3, 1.5, seed).unwrap()
}

/// `sum(y * r)` with a fixed random `r`: every output gets its own gradient.
fn weighted_sum(cx: &mut Ctx<f32>, y: Var) -> Var {
    let r = cx.input(tensor(99));
    let g = cx.graph_mut();
    let p = g.mul(y, r).unwrap();
    g.sum_all(p).unwrap()
}

/// The output, and the gradients of `vars` (input, skip, gamma, beta), as bits.
fn bits(cx: &Ctx<f32>, y: Var, loss: Var, vars: &[Var]) -> (Vec<u32>, Vec<Vec<u32>>) {
    let grads = cx.graph().backward(loss).unwrap();
    let b = |t: &Tensor<f32>| t.as_slice().iter().map(|v| v.to_bits()).collect();
    let out = b(cx.value(y).unwrap());
    let gs = vars.iter().map(|&v| b(grads.get(v).unwrap())).collect();
    (out, gs)
}

fn running_stats(seq: &Sequential<f32>) -> Vec<u32> {
    let mut out = Vec::new();
    seq.visit_params(&mut |p| {
        if !p.is_trainable() {
            out.extend(p.value().as_slice().iter().map(|v| v.to_bits()));
        }
    });
    out
}

#[test]
fn batch_norm_then_relu_in_a_sequential_is_one_op_with_the_same_bits() {
    let mut fused = chain(true);
    let mut cx = Ctx::new();
    let x = cx.graph_mut().param(tensor(1));
    let y = fused.forward(&mut cx, x).unwrap();
    // Fused: tapped under the ReLU's name only.
    assert!(
        cx.tapped("branch.0").is_none(),
        "BatchNorm and ReLU ran apart"
    );
    assert_eq!(cx.tapped("branch.1"), Some(y));
    let loss = weighted_sum(&mut cx, y);
    let gamma = cx.var_of("branch.0.gamma").unwrap();
    let beta = cx.var_of("branch.0.beta").unwrap();
    let got = bits(&cx, y, loss, &[x, gamma, beta]);

    let mut apart = chain(true);
    let mut cx = Ctx::new();
    let x = cx.graph_mut().param(tensor(1));
    let h = apart.layers_mut()[0].forward(&mut cx, x).unwrap();
    let y = apart.layers_mut()[1].forward(&mut cx, h).unwrap();
    assert!(cx.tapped("branch.0").is_some());
    let loss = weighted_sum(&mut cx, y);
    let gamma = cx.var_of("branch.0.gamma").unwrap();
    let beta = cx.var_of("branch.0.beta").unwrap();
    let want = bits(&cx, y, loss, &[x, gamma, beta]);

    assert!(want.0.contains(&0), "the ReLU cuts somewhere");
    assert_eq!(got, want);
    assert_eq!(running_stats(&fused), running_stats(&apart));
}

#[test]
fn batch_norm_add_relu_at_the_end_of_a_sequential_is_one_op_with_the_same_bits() {
    let mut fused = chain(false);
    let mut cx = Ctx::new();
    let x = cx.graph_mut().param(tensor(1));
    let skip = cx.graph_mut().param(tensor(2));
    let y = fused
        .forward_then_add_relu(&mut cx, x, skip, "act")
        .expect("a Sequential ending in BatchNorm fuses")
        .unwrap();
    assert!(
        cx.tapped("branch.0").is_none(),
        "BatchNorm and add_relu ran apart"
    );
    assert_eq!(cx.tapped("act"), Some(y));
    let loss = weighted_sum(&mut cx, y);
    let gamma = cx.var_of("branch.0.gamma").unwrap();
    let beta = cx.var_of("branch.0.beta").unwrap();
    let got = bits(&cx, y, loss, &[x, skip, gamma, beta]);

    let mut apart = chain(false);
    let mut cx = Ctx::new();
    let x = cx.graph_mut().param(tensor(1));
    let skip = cx.graph_mut().param(tensor(2));
    let h = apart.forward(&mut cx, x).unwrap();
    let y = cx.graph_mut().add_relu(h, skip).unwrap();
    let loss = weighted_sum(&mut cx, y);
    let gamma = cx.var_of("branch.0.gamma").unwrap();
    let beta = cx.var_of("branch.0.beta").unwrap();
    let want = bits(&cx, y, loss, &[x, skip, gamma, beta]);

    assert!(want.0.contains(&0), "the ReLU cuts somewhere");
    assert_eq!(got, want);
    assert_eq!(running_stats(&fused), running_stats(&apart));
}

#[test]
fn no_fusion_in_evaluation_mode() {
    let mut seq = chain(true);
    seq.set_training(false);
    let mut cx = Ctx::new();
    let x = cx.input(tensor(1));
    seq.forward(&mut cx, x).unwrap();
    assert!(cx.tapped("branch.0").is_some());
}

#[test]
fn a_sequential_ending_in_batch_norm_fuses_the_relu_after_it() {
    let mut fused = chain(false);
    let mut cx = Ctx::new();
    let x = cx.graph_mut().param(tensor(1));
    let y = fused
        .forward_then_relu(&mut cx, x, "act")
        .expect("a Sequential fuses")
        .unwrap();
    assert!(
        cx.tapped("branch.0").is_none(),
        "BatchNorm and ReLU ran apart"
    );
    assert_eq!(cx.tapped("act"), Some(y));
    let loss = weighted_sum(&mut cx, y);
    let gamma = cx.var_of("branch.0.gamma").unwrap();
    let got = bits(&cx, y, loss, &[x, gamma]);

    let mut apart = chain(false);
    let mut cx = Ctx::new();
    let x = cx.graph_mut().param(tensor(1));
    let h = apart.forward(&mut cx, x).unwrap();
    let y = cx.graph_mut().relu(h).unwrap();
    let loss = weighted_sum(&mut cx, y);
    let gamma = cx.var_of("branch.0.gamma").unwrap();
    assert_eq!(got, bits(&cx, y, loss, &[x, gamma]));
}
