//! Finite-difference gradient checks (f64, `gradlab_autodiff::gradcheck`) of
//! the backward passes of the reference and fast kernels, for input, weight
//! and bias, and of the pooling backward passes.

use crate::common;

use gradlab_autodiff::gradcheck::{check_vjp, GradcheckOptions};
use gradlab_conv::{
    avg_pool2d, avg_pool2d_backward, conv2d, conv2d_backward, global_avg_pool2d,
    global_avg_pool2d_backward, max_pool2d, max_pool2d_backward, reference, Conv2dGrads,
    Conv2dSpec, ConvError, Pool2dSpec,
};
use gradlab_tensor::Tensor;
use ndarray::{Array1, Array4, ArrayView1, ArrayView4, Ix1, Ix4};
use proptest::prelude::*;

type Forward = fn(
    ArrayView4<f64>,
    ArrayView4<f64>,
    Option<ArrayView1<f64>>,
    &Conv2dSpec,
) -> Result<Array4<f64>, ConvError>;
type Backward = fn(
    ArrayView4<f64>,
    ArrayView4<f64>,
    ArrayView4<f64>,
    &Conv2dSpec,
) -> Result<Conv2dGrads<f64>, ConvError>;

fn view4(t: &Tensor<f64>) -> Result<ArrayView4<'_, f64>, String> {
    t.view()
        .into_dimensionality::<Ix4>()
        .map_err(|e| e.to_string())
}

fn tensor<D: ndarray::Dimension>(a: ndarray::Array<f64, D>) -> Tensor<f64> {
    Tensor::from_array(a.into_dyn())
}

/// Gradchecks `forward`/`backward` on `[x, w, b]`.
fn gradcheck_conv(c: &common::Case, forward: Forward, backward: Backward) -> Result<(), String> {
    let ops = common::operands::<f64>(c);
    let b = ops
        .b
        .unwrap_or_else(|| Array1::from_elem(c.spec.out_channels, 0.1));
    let inputs = [tensor(ops.x), tensor(ops.w), tensor(b)];
    let spec = c.spec;
    let opts = GradcheckOptions {
        seed: c.seed,
        ..GradcheckOptions::default()
    };
    check_vjp(
        |xs: &[Tensor<f64>]| -> Result<Tensor<f64>, String> {
            let b = xs[2]
                .view()
                .into_dimensionality::<Ix1>()
                .map_err(|e| e.to_string())?;
            let y = forward(view4(&xs[0])?, view4(&xs[1])?, Some(b), &spec)
                .map_err(|e| e.to_string())?;
            Ok(tensor(y))
        },
        |xs: &[Tensor<f64>], v: &Tensor<f64>| -> Result<Vec<Option<Tensor<f64>>>, String> {
            let g = backward(view4(&xs[0])?, view4(&xs[1])?, view4(v)?, &spec)
                .map_err(|e| e.to_string())?;
            Ok(vec![
                Some(tensor(g.input)),
                Some(tensor(g.weight)),
                Some(tensor(g.bias)),
            ])
        },
        &inputs,
        &opts,
    )
    .map(|_| ())
    .map_err(|e| format!("{e} for {c:?}"))
}

/// Small valid cases (the check costs two forward passes per element).
fn small_case() -> impl Strategy<Value = common::Case> {
    common::valid_case().prop_filter("small enough for finite differences", |c| {
        c.batch * c.spec.in_channels * c.h * c.w <= 160 && c.spec.param_count(true) <= 120
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn reference_backward_matches_finite_differences(c in small_case()) {
        let r = gradcheck_conv(&c, reference::conv2d::<f64>, reference::conv2d_backward::<f64>);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }

    #[test]
    fn fast_backward_matches_finite_differences(c in small_case()) {
        let r = gradcheck_conv(&c, conv2d::<f64>, conv2d_backward::<f64>);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }

    #[test]
    fn fast_depthwise_backward_matches_finite_differences(
        c in common::depthwise_case().prop_filter("small", |c| c.batch * c.spec.in_channels * c.h * c.w <= 200)
    ) {
        let r = gradcheck_conv(&c, conv2d::<f64>, conv2d_backward::<f64>);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

/// Input values that are a random permutation of a grid spaced 0.01 apart,
/// so no two pixels of a window are within a finite-difference step of a tie.
fn tie_free(shape: [usize; 4], seed: u64) -> Array4<f64> {
    let noise = common::rand4::<f64>(shape, seed);
    let mut order: Vec<usize> = (0..noise.len()).collect();
    let flat: Vec<f64> = noise.iter().copied().collect();
    order.sort_by(|&a, &b| flat[a].total_cmp(&flat[b]));
    let mut values = vec![0.0; flat.len()];
    for (rank, &i) in order.iter().enumerate() {
        values[i] = rank as f64 * 0.01 - 0.5;
    }
    Array4::from_shape_vec(shape, values).unwrap()
}

fn pool_case() -> impl Strategy<Value = (Pool2dSpec, [usize; 4], u64)> {
    (
        [1usize..=3, 1usize..=3],
        [1usize..=3, 1usize..=3],
        any::<bool>(),
        [0usize..=1, 0usize..=1],
    )
        .prop_flat_map(|(k, s, include, p)| {
            let spec = Pool2dSpec {
                kernel: k,
                stride: s,
                padding: [p[0].min(k[0] / 2), p[1].min(k[1] / 2)],
                count_include_pad: include,
            };
            (
                Just(spec),
                1usize..=2,
                1usize..=3,
                k[0]..=k[0] + 4,
                k[1]..=k[1] + 4,
                any::<u64>(),
            )
        })
        .prop_map(|(spec, n, c, h, w, seed)| (spec, [n, c, h, w], seed))
}

fn check_pool(
    x: Array4<f64>,
    seed: u64,
    forward: impl Fn(ArrayView4<f64>) -> Result<Array4<f64>, ConvError>,
    backward: impl Fn(ArrayView4<f64>, ArrayView4<f64>) -> Result<Array4<f64>, ConvError>,
) -> Result<(), String> {
    let opts = GradcheckOptions {
        seed,
        ..GradcheckOptions::default()
    };
    check_vjp(
        |xs: &[Tensor<f64>]| -> Result<Tensor<f64>, String> {
            Ok(tensor(forward(view4(&xs[0])?).map_err(|e| e.to_string())?))
        },
        |xs: &[Tensor<f64>], v: &Tensor<f64>| -> Result<Vec<Option<Tensor<f64>>>, String> {
            let g = backward(view4(&xs[0])?, view4(v)?).map_err(|e| e.to_string())?;
            Ok(vec![Some(tensor(g))])
        },
        &[tensor(x)],
        &opts,
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn max_pool_backward_matches_finite_differences((spec, shape, seed) in pool_case()) {
        let r = check_pool(tie_free(shape, seed), seed,
            |x| max_pool2d(x, &spec), |x, dy| max_pool2d_backward(x, dy, &spec));
        prop_assert!(r.is_ok(), "{} for {:?} {:?}", r.unwrap_err(), spec, shape);
    }

    #[test]
    fn avg_pool_backward_matches_finite_differences((spec, shape, seed) in pool_case()) {
        let r = check_pool(common::rand4(shape, seed), seed,
            |x| avg_pool2d(x, &spec), |x, dy| avg_pool2d_backward(x, dy, &spec));
        prop_assert!(r.is_ok(), "{} for {:?} {:?}", r.unwrap_err(), spec, shape);
    }

    #[test]
    fn global_avg_pool_backward_matches_finite_differences((_spec, shape, seed) in pool_case()) {
        let r = check_pool(common::rand4(shape, seed), seed,
            global_avg_pool2d, global_avg_pool2d_backward);
        prop_assert!(r.is_ok(), "{} for {:?}", r.unwrap_err(), shape);
    }
}
