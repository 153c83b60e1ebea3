//! Every layer's gradients (input and parameters) against central finite
//! differences in f64, over random shapes and hyper-parameters.

use gradlab_autodiff::gradcheck::{GradcheckOptions, GradcheckReport};
use gradlab_conv::{Conv2dSpec, ConvKind, Pool2dSpec};
use gradlab_nn::*;
use gradlab_tensor::Tensor;
use proptest::prelude::*;

fn opts(seed: u64) -> GradcheckOptions {
    GradcheckOptions {
        seed,
        ..GradcheckOptions::default()
    }
}

fn normal(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_normal(shape, 0.0, 1.0, seed).unwrap()
}

fn ok<E: std::fmt::Display>(
    r: std::result::Result<GradcheckReport, E>,
) -> Result<GradcheckReport, TestCaseError> {
    r.map_err(|e| TestCaseError::fail(e.to_string()))
}

/// Distinct values spaced 0.1 apart in a shuffled order: no ties in a
/// max-pooling window, even after a finite-difference step.
fn distinct(shape: &[usize]) -> Tensor<f64> {
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|i| ((i * 7919) % n) as f64 * 0.1 - 1.0)
        .collect();
    Tensor::from_vec(shape, data).unwrap()
}

/// A valid convolution of the requested kind with an input shape it fits.
#[allow(clippy::type_complexity)]
fn conv_case() -> impl Strategy<Value = (Conv2dSpec, Vec<usize>)> {
    (
        0usize..4,
        (1usize..3, 1usize..3, 2usize..4),
        (1usize..3, 0usize..2, 1usize..3),
        (1usize..3, 0usize..3, 0usize..3),
    )
        .prop_map(|(kind, (a, b, k), (stride, pad, dil), (batch, eh, ew))| {
            let spec = match kind {
                0 => Conv2dSpec::new(a, b, k),
                1 => Conv2dSpec::new(a + 1, b, 1),
                2 => Conv2dSpec::new(a + 1, (a + 1) * b, k).groups(a + 1),
                _ => Conv2dSpec::new(4, 2 * b, k).groups(2),
            };
            let spec = spec.stride(stride).padding(pad).dilation(dil);
            let eff = spec.dilation[0] * (spec.kernel[0] - 1) + 1;
            let min = eff.saturating_sub(2 * spec.padding[0]).max(1);
            (spec, vec![batch, spec.in_channels, min + eh, min + ew])
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn conv2d_every_kind_with_bias((spec, shape) in conv_case(), seed in 0u64..1000) {
        let report = ok(gradcheck_module(
            || Conv2d::<f64>::new(&Scope::new(seed).pp("conv"), spec, Conv2dConfig::default()),
            |m, cx, x| m.forward(cx, x),
            &normal(&shape, seed),
            &opts(seed),
        ))?;
        prop_assert_eq!(report.inputs_checked, 3);
    }

    #[test]
    fn batch_norm_2d_training(n in 1usize..4, c in 1usize..4, h in 1usize..4, w in 1usize..4,
                              seed in 0u64..1000) {
        prop_assume!(n * h * w > 1);
        let x = normal(&[n, c, h, w], seed).map(|v| 3.0 * v + 1.0);
        // Non-trivial gamma and beta, drawn from the seed.
        let make = || {
            let mut bn = BatchNorm2d::<f64>::new(&Scope::new(seed).pp("bn"), c, BatchNormConfig::default())?;
            for (i, p) in bn.params_mut().into_iter().take(2).enumerate() {
                p.set_value(normal(&[c], seed + 10 + i as u64))?;
            }
            Ok(bn)
        };
        ok(gradcheck_module(make, |m, cx, x| m.forward(cx, x), &x, &opts(seed)))?;
    }

    #[test]
    fn batch_norm_1d_training(n in 2usize..6, c in 1usize..5, l in 0usize..3, seed in 0u64..1000) {
        let shape = if l == 0 { vec![n, c] } else { vec![n, c, l] };
        let x = normal(&shape, seed);
        ok(gradcheck_module(
            || BatchNorm1d::<f64>::new(&Scope::new(seed).pp("bn"), c, BatchNormConfig::default()),
            |m, cx, x| m.forward(cx, x),
            &x,
            &opts(seed),
        ))?;
    }

    #[test]
    fn batch_norm_eval(n in 1usize..3, c in 1usize..4, h in 1usize..3, seed in 0u64..1000) {
        let x = normal(&[n, c, h, h], seed);
        ok(gradcheck_module(
            || {
                let mut bn = BatchNorm2d::<f64>::new(&Scope::new(seed).pp("bn"), c, BatchNormConfig::default())?;
                bn.set_training(false);
                Ok(bn)
            },
            |m, cx, x| m.forward(cx, x),
            &x,
            &opts(seed),
        ))?;
    }

    #[test]
    fn linear(n in 1usize..4, i in 1usize..5, o in 1usize..4, bias in any::<bool>(), seed in 0u64..1000) {
        let report = ok(gradcheck_module(
            || Linear::<f64>::new(&Scope::new(seed).pp("fc"), i, o, LinearConfig { bias, ..Default::default() }),
            |m, cx, x| m.forward(cx, x),
            &normal(&[n, i], seed),
            &opts(seed),
        ))?;
        prop_assert_eq!(report.inputs_checked, if bias { 3 } else { 2 });
    }

    #[test]
    fn max_and_avg_pool(k in 1usize..4, stride in 1usize..3, pad in 0usize..2, include in any::<bool>(),
                        n in 1usize..3, c in 1usize..3, eh in 0usize..3, seed in 0u64..1000) {
        let spec = Pool2dSpec::new(k).stride(stride).padding(pad.min(k / 2)).count_include_pad(include);
        let shape = [n, c, k + eh, k + 1];
        ok(gradcheck_module(
            || MaxPool2d::<f64>::new(&Scope::new(0).pp("pool"), spec),
            |m, cx, x| m.forward(cx, x),
            &distinct(&shape),
            &opts(seed),
        ))?;
        ok(gradcheck_module(
            || AvgPool2d::<f64>::new(&Scope::new(0).pp("pool"), spec),
            |m, cx, x| m.forward(cx, x),
            &normal(&shape, seed),
            &opts(seed),
        ))?;
    }

    #[test]
    fn global_avg_pool(n in 1usize..3, c in 1usize..4, h in 1usize..4, w in 1usize..4, seed in 0u64..1000) {
        ok(gradcheck_module(
            || Ok(GlobalAvgPool2d::<f64>::new(&Scope::new(0).pp("gap"))),
            |m, cx, x| m.forward(cx, x),
            &normal(&[n, c, h, w], seed),
            &opts(seed),
        ))?;
    }

    #[test]
    fn dropout_with_fixed_mask(p in 0.0f64..0.9, n in 1usize..4, d in 1usize..6, seed in 0u64..1000) {
        // The context is seeded identically at every evaluation, so the mask is fixed.
        ok(gradcheck_module(
            || Dropout::<f64>::new(&Scope::new(seed).pp("drop"), p),
            |m, cx, x| m.forward(cx, x),
            &normal(&[n, d], seed),
            &opts(seed),
        ))?;
    }

    #[test]
    fn activations(shape in prop::collection::vec(1usize..4, 1..4), slope in -0.5f64..0.5, seed in 0u64..1000) {
        // Away from the kink at 0.
        let x = normal(&shape, seed).map(|v| if v >= 0.0 { v + 0.1 } else { v - 0.1 });
        for kind in [ActivationKind::Gelu, ActivationKind::LeakyRelu(slope), ActivationKind::Relu,
                     ActivationKind::Tanh, ActivationKind::Sigmoid] {
            ok(gradcheck_module(
                || Activation::<f64>::new(&Scope::new(0).pp("act"), kind),
                |m, cx, x| m.forward(cx, x),
                &x,
                &opts(seed),
            ))?;
        }
    }

    #[test]
    fn cross_entropy_smoothing_and_weights(n in 1usize..5, k in 2usize..5, eps in 0.0f64..0.5,
                                           weighted in any::<bool>(), seed in 0u64..1000) {
        let labels: Vec<usize> = (0..n).map(|i| (i * 7 + seed as usize) % k).collect();
        let weights = weighted.then(|| (0..n).map(|i| 0.5 + i as f64).collect());
        let options = CrossEntropyOptions { label_smoothing: eps, sample_weights: weights };
        ok(gradcheck_module(
            || Ok(Vec::<Param<f64>>::new()),
            |_, cx, x| cross_entropy(cx, x, &labels, &options),
            &normal(&[n, k], seed).map(|v| 3.0 * v),
            &opts(seed),
        ))?;
    }
}

/// A small CNN of the layers above, checked through its loss.
fn small_cnn(seed: u64) -> gradlab_nn::Result<Sequential<f64>> {
    let mut net = Sequential::new(&Scope::new(seed));
    net.add(|s| {
        Conv2d::new(
            s,
            Conv2dSpec::new(2, 3, 3).padding(1),
            Conv2dConfig::default(),
        )
    })?
    .add(|s| BatchNorm2d::new(s, 3, BatchNormConfig::default()))?
    .add(|s| Activation::new(s, ActivationKind::Gelu))?
    .add(|s| {
        Conv2d::new(
            s,
            Conv2dSpec::new(3, 3, 3).padding(1).groups(3),
            Conv2dConfig::default(),
        )
    })?
    .add(|s| MaxPool2d::new(s, Pool2dSpec::new(2)))?
    .add(|s| Dropout::new(s, 0.25))?
    .add(|s| Ok(Flatten::new(s)))?
    .add(|s| Linear::new(s, 3 * 2 * 2, 4, LinearConfig::default()))?
    .add(|s| BatchNorm1d::new(s, 4, BatchNormConfig::default()))?
    .add(|s| Activation::new(s, ActivationKind::Tanh))?
    .add(|s| Linear::new(s, 4, 2, LinearConfig::default()))?;
    Ok(net)
}

#[test]
fn small_sequential_through_its_loss() {
    for seed in 0..3 {
        let x = normal(&[3, 2, 4, 4], seed);
        let report = gradcheck_module(
            || small_cnn(seed),
            |m, cx, x| {
                let logits = m.forward(cx, x)?;
                cross_entropy(cx, logits, &[0, 1, 1], &CrossEntropyOptions::default())
            },
            &x,
            &opts(seed),
        )
        .unwrap();
        // x + conv w, b + bn gamma, beta + dw w, b + fc w, b + bn1d gamma, beta + fc w, b
        assert_eq!(report.inputs_checked, 13);
    }
}

#[test]
fn conv_kinds_are_covered() {
    // The strategy above produces every kind; pin it down.
    let kinds = [
        Conv2dSpec::new(1, 2, 3).kind(),
        Conv2dSpec::new(2, 2, 1).kind(),
        Conv2dSpec::new(2, 4, 3).groups(2).kind(),
        Conv2dSpec::new(4, 2, 3).groups(2).kind(),
    ];
    assert_eq!(
        kinds,
        [
            ConvKind::Standard,
            ConvKind::Pointwise,
            ConvKind::Depthwise,
            ConvKind::Grouped
        ]
    );
}

#[test]
fn wrong_backward_is_caught() {
    // The helper is not vacuous: a module whose op has a wrong VJP fails.
    use gradlab_autodiff::{Op, Var};
    struct Twice;
    impl Op<f64> for Twice {
        fn name(&self) -> &'static str {
            "twice"
        }
        fn forward(&self, i: &[&Tensor<f64>]) -> gradlab_autodiff::Result<Tensor<f64>> {
            Ok(i[0].mul_scalar(2.0))
        }
        fn backward(
            &self,
            _: &[&Tensor<f64>],
            _: &Tensor<f64>,
            g: &Tensor<f64>,
            _: &[bool],
        ) -> gradlab_autodiff::Result<Vec<Option<Tensor<f64>>>> {
            Ok(vec![Some(g.clone())]) // should be 2 g
        }
    }
    let r = gradcheck_module(
        || Ok(Vec::<Param<f64>>::new()),
        |_, cx: &mut Ctx<f64>, x: Var| Ok(cx.graph_mut().apply(Twice, &[x])?),
        &normal(&[3], 0),
        &opts(0),
    );
    assert!(r.is_err());
}
