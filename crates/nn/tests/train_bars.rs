//! End to end: a small CNN (conv, BatchNorm, ReLU, max pooling, linear)
//! learns horizontal vs vertical bars in noise, deterministically.

use gradlab_conv::{Conv2dSpec, Pool2dSpec};
use gradlab_nn::*;
use gradlab_tensor::Tensor;

const SIDE: usize = 12;
const COUNT: usize = 256;

/// `COUNT` images `[1, SIDE, SIDE]`: class 0 has a horizontal bar, class 1 a
/// vertical one, of random position, length (6..=12) and offset, in
/// Gaussian noise of standard deviation 0.4.
fn bars(seed: u64) -> (Tensor<f32>, Vec<usize>) {
    let u = Tensor::<f64>::rand_uniform(&[COUNT, 3], 0.0, 1.0, seed).unwrap();
    let noise = Tensor::<f32>::rand_normal(&[COUNT, 1, SIDE, SIDE], 0.0, 0.4, seed + 1).unwrap();
    let mut data = noise.to_vec();
    let mut labels = Vec::with_capacity(COUNT);
    for i in 0..COUNT {
        let class = i % 2;
        let r = u.as_slice()[i * 3..i * 3 + 3].to_vec();
        let line = (r[0] * SIDE as f64) as usize;
        let len = 6 + (r[1] * 7.0) as usize;
        let start = (r[2] * (SIDE - len + 1) as f64) as usize;
        for k in start..(start + len).min(SIDE) {
            let (y, x) = if class == 0 { (line, k) } else { (k, line) };
            data[i * SIDE * SIDE + y * SIDE + x] += 1.0;
        }
        labels.push(class);
    }
    (
        Tensor::from_vec(&[COUNT, 1, SIDE, SIDE], data).unwrap(),
        labels,
    )
}

fn model(seed: u64) -> Sequential<f32> {
    let mut net = Sequential::new(&Scope::new(seed));
    net.add(|s| {
        Conv2d::new(
            s,
            Conv2dSpec::new(1, 8, 3).padding(1),
            Conv2dConfig::kaiming_no_bias(),
        )
    })
    .unwrap()
    .add(|s| BatchNorm2d::new(s, 8, BatchNormConfig::default()))
    .unwrap()
    .add(|s| Ok(Activation::relu(s)))
    .unwrap()
    .add(|s| MaxPool2d::new(s, Pool2dSpec::new(2)))
    .unwrap()
    .add(|s| Ok(Flatten::new(s)))
    .unwrap()
    .add(|s| Linear::new(s, 8 * 6 * 6, 2, LinearConfig::default()))
    .unwrap();
    net
}

/// Trains for `steps` mini-batches of 32 and returns the model and the
/// per-step losses.
fn train(steps: u64) -> (Sequential<f32>, Vec<f64>) {
    let (images, labels) = bars(11);
    let mut net = model(3);
    let mut opt = Sgd::new(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-4,
        ..Default::default()
    })
    .unwrap();
    let schedule = Warmup::new(
        LinearWarmup::new(0.05, 0.1, 10).unwrap(),
        CosineAnnealing::new(0.05, 0.001, steps - 10).unwrap(),
    );
    let batch = 32;
    let per_image = SIDE * SIDE;
    let mut losses = Vec::new();
    for step in 0..steps {
        let start = (step as usize * batch) % COUNT;
        let x = Tensor::from_vec(
            &[batch, 1, SIDE, SIDE],
            images.as_slice()[start * per_image..(start + batch) * per_image].to_vec(),
        )
        .unwrap();
        let y = &labels[start..start + batch];
        let mut cx = Ctx::new().with_seed(step);
        let xv = cx.input(x);
        let logits = net.forward(&mut cx, xv).unwrap();
        let loss = cross_entropy(&mut cx, logits, y, &CrossEntropyOptions::default()).unwrap();
        let mut grads = cx.backward(loss).unwrap();
        losses.push(grads.loss().unwrap());
        clip_grad_norm(&mut grads, 10.0).unwrap();
        opt.set_lr(schedule.lr(step));
        opt.step(&mut net, &grads).unwrap();
    }
    (net, losses)
}

fn train_accuracy(net: &mut Sequential<f32>) -> f64 {
    let (images, labels) = bars(11);
    net.set_training(false);
    let mut cx = Ctx::no_grad();
    let x = cx.input(images);
    let logits = net.forward(&mut cx, x).unwrap();
    let acc = accuracy(cx.value(logits).unwrap(), &labels).unwrap();
    net.set_training(true);
    acc
}

#[test]
fn small_cnn_learns_bars_deterministically() {
    let steps = 200;
    let (mut net, losses) = train(steps);
    let acc = train_accuracy(&mut net);
    eprintln!(
        "bars: first loss {:.4}, last loss {:.4}, train accuracy {:.3} after {steps} steps",
        losses[0],
        losses[losses.len() - 1],
        acc
    );
    assert!(acc >= 0.95, "train accuracy {acc} after {steps} steps");
    assert!(losses[0] > 0.5 && losses[losses.len() - 1] < 0.2);

    // The same seed gives the same run, bit for bit.
    let (net2, losses2) = train(steps);
    assert_eq!(
        losses.iter().map(|l| l.to_bits()).collect::<Vec<_>>(),
        losses2.iter().map(|l| l.to_bits()).collect::<Vec<_>>()
    );
    for (a, b) in net.params().iter().zip(net2.params()) {
        assert_eq!(a.value(), b.value(), "{}", a.name());
    }
}
