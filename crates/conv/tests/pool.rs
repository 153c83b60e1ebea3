//! Pooling against naive loops written from PyTorch's definitions, and its
//! errors.

use crate::common;

use gradlab_conv::{
    avg_pool2d, avg_pool2d_backward, global_avg_pool2d, global_avg_pool2d_backward, max_pool2d,
    max_pool2d_backward, ConvError, Pool2dSpec,
};
use ndarray::{Array4, Axis};
use proptest::prelude::*;

/// A pooling window: its `(ih, iw)` input pixels and the number of positions
/// it spans including padding.
type Window = (Vec<(usize, usize)>, usize);

/// Naive pooling windows, per output row and column.
fn windows(spec: &Pool2dSpec, h: usize, w: usize) -> Vec<Vec<Window>> {
    let oh = (h + 2 * spec.padding[0] - spec.kernel[0]) / spec.stride[0] + 1;
    let ow = (w + 2 * spec.padding[1] - spec.kernel[1]) / spec.stride[1] + 1;
    (0..oh)
        .map(|a| {
            (0..ow)
                .map(|b| {
                    let mut pix = Vec::new();
                    for i in 0..spec.kernel[0] {
                        for j in 0..spec.kernel[1] {
                            let ih = (a * spec.stride[0] + i) as isize - spec.padding[0] as isize;
                            let iw = (b * spec.stride[1] + j) as isize - spec.padding[1] as isize;
                            if ih >= 0 && iw >= 0 && (ih as usize) < h && (iw as usize) < w {
                                pix.push((ih as usize, iw as usize));
                            }
                        }
                    }
                    (pix, spec.kernel[0] * spec.kernel[1])
                })
                .collect()
        })
        .collect()
}

fn pool_case() -> impl Strategy<Value = (Pool2dSpec, [usize; 4], u64)> {
    (
        [1usize..=4, 1usize..=4],
        [1usize..=3, 1usize..=3],
        any::<bool>(),
        [0usize..=2, 0usize..=2],
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
                0usize..=2,
                1usize..=3,
                k[0]..=k[0] + 6,
                k[1]..=k[1] + 6,
                any::<u64>(),
            )
        })
        .prop_map(|(spec, n, c, h, w, seed)| (spec, [n, c, h, w], seed))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn pooling_equals_naive_loops((spec, shape, seed) in pool_case(), layout in 0u8..3) {
        let x = common::rand4::<f64>(shape, seed);
        let stored = common::Stored::new(&x, layout);
        let xv = stored.view();
        let wins = windows(&spec, shape[2], shape[3]);
        let (oh, ow) = (wins.len(), wins[0].len());
        let dy = common::rand4::<f64>([shape[0], shape[1], oh, ow], seed ^ 1);
        let maxp = max_pool2d(xv, &spec).unwrap();
        let avgp = avg_pool2d(xv, &spec).unwrap();
        let dmax = max_pool2d_backward(xv, dy.view(), &spec).unwrap();
        let davg = avg_pool2d_backward(xv, dy.view(), &spec).unwrap();
        let mut dmax_naive = Array4::<f64>::zeros(shape);
        let mut davg_naive = Array4::<f64>::zeros(shape);
        for n in 0..shape[0] {
            for c in 0..shape[1] {
                for (a, row) in wins.iter().enumerate() {
                    for (b, (pix, span)) in row.iter().enumerate() {
                        let vals: Vec<f64> = pix.iter().map(|&(i, j)| x[[n, c, i, j]]).collect();
                        let best = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        prop_assert_eq!(maxp[[n, c, a, b]], best);
                        let first = pix[vals.iter().position(|&v| v == best).unwrap()];
                        dmax_naive[[n, c, first.0, first.1]] += dy[[n, c, a, b]];
                        let div = if spec.count_include_pad { *span } else { pix.len() } as f64;
                        let mean = vals.iter().sum::<f64>() / div;
                        prop_assert!((avgp[[n, c, a, b]] - mean).abs() < 1e-12);
                        for &(i, j) in pix {
                            davg_naive[[n, c, i, j]] += dy[[n, c, a, b]] / div;
                        }
                    }
                }
            }
        }
        prop_assert!(common::max_rel_err(&dmax, &dmax_naive) < 1e-12);
        prop_assert!(common::max_rel_err(&davg, &davg_naive) < 1e-12);
        let g = global_avg_pool2d(xv).unwrap();
        let mean = x.mean_axis(Axis(3)).unwrap().mean_axis(Axis(2)).unwrap();
        prop_assert!(g.iter().zip(mean.iter()).all(|(a, b)| (a - b).abs() < 1e-12));
        let gy = common::rand4::<f64>([shape[0], shape[1], 1, 1], seed ^ 2);
        let dg = global_avg_pool2d_backward(xv, gy.view()).unwrap();
        let hw = (shape[2] * shape[3]) as f64;
        prop_assert!(dg.indexed_iter().all(|((n, c, _, _), &v)| (v - gy[[n, c, 0, 0]] / hw).abs() < 1e-15));
    }
}

#[test]
fn max_pool_ties_route_to_the_first_maximum_and_nan_propagates() {
    let x = Array4::from_shape_vec((1, 1, 2, 2), vec![3.0f32, 3.0, 1.0, 3.0]).unwrap();
    let dy = Array4::from_elem((1, 1, 1, 1), 1.0f32);
    let dx = max_pool2d_backward(x.view(), dy.view(), &Pool2dSpec::new(2)).unwrap();
    assert_eq!(
        dx.iter().copied().collect::<Vec<_>>(),
        vec![1.0, 0.0, 0.0, 0.0]
    );
    let x = Array4::from_shape_vec((1, 1, 2, 2), vec![3.0f32, f32::NAN, 1.0, 3.0]).unwrap();
    assert!(max_pool2d(x.view(), &Pool2dSpec::new(2)).unwrap()[[0, 0, 0, 0]].is_nan());
}

#[test]
fn bad_pool_specs_and_shapes_are_errors() {
    let x = Array4::<f32>::zeros((1, 2, 4, 4));
    let bad = [
        Pool2dSpec::new(0),
        Pool2dSpec::new(2).stride(0),
        Pool2dSpec::new(3).padding(2),
        Pool2dSpec::new(6),
    ];
    for spec in bad {
        assert!(max_pool2d(x.view(), &spec).is_err(), "{spec:?}");
        assert!(avg_pool2d(x.view(), &spec).is_err(), "{spec:?}");
    }
    assert!(matches!(
        max_pool2d(x.view(), &Pool2dSpec::new(3).padding(2)),
        Err(ConvError::PoolPadding { .. })
    ));
    assert!(Pool2dSpec::new(3)
        .padding(2)
        .validate()
        .unwrap_err()
        .to_string()
        .contains("pad should be at most half of effective kernel size"));
    let empty = Array4::<f32>::zeros((1, 2, 0, 4));
    assert!(matches!(
        max_pool2d(empty.view(), &Pool2dSpec::new(1)),
        Err(ConvError::EmptyInput { .. })
    ));
    assert!(matches!(
        global_avg_pool2d(empty.view()),
        Err(ConvError::EmptyInput { .. })
    ));
    let spec = Pool2dSpec::new(2);
    let wrong = Array4::<f32>::zeros((1, 2, 3, 2));
    assert!(matches!(
        max_pool2d_backward(x.view(), wrong.view(), &spec),
        Err(ConvError::GradOutputShape { .. })
    ));
    assert!(matches!(
        avg_pool2d_backward(x.view(), wrong.view(), &spec),
        Err(ConvError::GradOutputShape { .. })
    ));
    assert!(matches!(
        global_avg_pool2d_backward(x.view(), wrong.view()),
        Err(ConvError::GradOutputShape { .. })
    ));
}
