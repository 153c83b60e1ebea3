//! Forward results of tensor ops against hand-computed and naive-loop values.

use gradlab_tensor::{broadcast_shape, Tensor, TensorError};
use ndarray::ArrayD;
use proptest::prelude::*;

fn t(shape: &[usize], data: &[f64]) -> Tensor<f64> {
    Tensor::from_vec(shape, data.to_vec()).unwrap()
}

#[test]
fn broadcasting_binary_ops_match_hand_values() {
    let a = t(&[2, 1], &[1.0, 2.0]);
    let b = t(&[3], &[10.0, 20.0, 30.0]);
    assert_eq!(a.add(&b).unwrap().shape(), &[2, 3]);
    assert_eq!(
        a.sub(&b).unwrap().to_vec(),
        vec![-9.0, -19.0, -29.0, -8.0, -18.0, -28.0]
    );
    assert_eq!(
        a.mul(&b).unwrap().to_vec(),
        vec![10.0, 20.0, 30.0, 20.0, 40.0, 60.0]
    );
    assert_eq!(
        b.div(&a).unwrap().to_vec(),
        vec![10.0, 20.0, 30.0, 5.0, 10.0, 15.0]
    );
    let c = t(&[3], &[1.5, -1.0, 2.0]);
    let d = t(&[1], &[1.0]);
    assert_eq!(c.maximum(&d).unwrap().to_vec(), vec![1.5, 1.0, 2.0]);
    assert_eq!(c.minimum(&d).unwrap().to_vec(), vec![1.0, -1.0, 1.0]);
    let s = Tensor::scalar(2.0);
    assert_eq!(c.mul(&s).unwrap().to_vec(), vec![3.0, -2.0, 4.0]);
}

#[test]
fn unary_ops_match_std() {
    let x = t(&[4], &[-2.0, -0.5, 0.25, 3.0]);
    let check = |got: Tensor<f64>, f: fn(f64) -> f64| {
        for (g, &v) in got.to_vec().iter().zip(x.as_slice()) {
            let want = f(v);
            assert!(
                (g - want).abs() <= 1e-15 * want.abs().max(1.0) || (g.is_nan() && want.is_nan())
            );
        }
    };
    check(x.neg(), |v| -v);
    check(x.exp(), f64::exp);
    check(x.abs().ln(), |v| v.abs().ln());
    check(x.abs().sqrt(), |v| v.abs().sqrt());
    check(x.tanh(), f64::tanh);
    check(x.sigmoid(), |v| 1.0 / (1.0 + (-v).exp()));
    check(x.relu(), |v| v.max(0.0));
    check(x.abs().powf(1.5), |v| v.abs().powf(1.5));
    check(x.add_scalar(1.0).mul_scalar(2.0), |v| (v + 1.0) * 2.0);
    // sigmoid stays finite and exact at the extremes
    let big = t(&[2], &[-1000.0, 1000.0]).sigmoid();
    assert_eq!(big.to_vec(), vec![0.0, 1.0]);
}

#[test]
fn reductions_match_hand_values() {
    let x = t(&[2, 3], &[1.0, 5.0, 3.0, 4.0, 2.0, 6.0]);
    assert_eq!(x.sum(&[0], false).unwrap().to_vec(), vec![5.0, 7.0, 9.0]);
    assert_eq!(x.sum(&[1], true).unwrap().shape(), &[2, 1]);
    assert_eq!(x.sum(&[0, 1], false).unwrap().item().unwrap(), 21.0);
    assert_eq!(x.mean(&[1], false).unwrap().to_vec(), vec![3.0, 4.0]);
    assert_eq!(x.max(&[1], false).unwrap().to_vec(), vec![5.0, 6.0]);
    assert_eq!(x.argmax(1).unwrap().into_raw_vec_and_offset().0, vec![1, 2]);
    assert_eq!(
        x.argmax(0).unwrap().into_raw_vec_and_offset().0,
        vec![1, 0, 1]
    );
    let var = x.variance(&[1], false).unwrap().to_vec();
    assert!((var[0] - 8.0 / 3.0).abs() < 1e-12 && (var[1] - 8.0 / 3.0).abs() < 1e-12);
    assert_eq!(x.sum_all(), 21.0);
}

#[test]
fn shape_ops_move_elements_as_numpy_does() {
    let x = t(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(
        x.transpose(0, 1).unwrap().to_vec(),
        vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );
    assert_eq!(x.reshape(&[3, 2]).unwrap().to_vec(), x.to_vec());
    let y = t(&[2, 1, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let p = y.permute(&[2, 0, 1]).unwrap();
    assert_eq!(p.shape(), &[3, 2, 1]);
    assert_eq!(p.to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    let c = Tensor::concat(&[&x, &x.slice_axis(1, 1, 2).unwrap()], 1).unwrap();
    assert_eq!(c.shape(), &[2, 4]);
    assert_eq!(c.to_vec(), vec![0.0, 1.0, 2.0, 1.0, 3.0, 4.0, 5.0, 4.0]);
}

#[test]
fn sum_to_shape_reverses_broadcasting() {
    let g = Tensor::<f64>::ones(&[4, 2, 3]);
    assert_eq!(g.sum_to_shape(&[2, 1]).unwrap().to_vec(), vec![12.0, 12.0]);
    assert_eq!(g.sum_to_shape(&[3]).unwrap().to_vec(), vec![8.0, 8.0, 8.0]);
    assert_eq!(g.sum_to_shape(&[]).unwrap().item().unwrap(), 24.0);
    assert!(matches!(
        g.sum_to_shape(&[5]),
        Err(TensorError::NotReducible { .. })
    ));
}

#[test]
fn seeded_constructors_are_reproducible_and_distinct() {
    let a = Tensor::<f32>::rand_normal(&[1000], 0.0, 1.0, 3).unwrap();
    let b = Tensor::<f32>::rand_normal(&[1000], 0.0, 1.0, 3).unwrap();
    let c = Tensor::<f32>::rand_normal(&[1000], 0.0, 1.0, 4).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mean = a.mean_all();
    let var = a.variance(&[0], false).unwrap().item().unwrap();
    assert!(
        mean.abs() < 0.1 && (var - 1.0).abs() < 0.15,
        "mean {mean} var {var}"
    );
    // f32 and f64 draw the same numbers, rounded.
    let d = Tensor::<f64>::rand_normal(&[1000], 0.0, 1.0, 3).unwrap();
    assert_eq!(d.cast::<f32>(), a);
    let u = Tensor::<f64>::rand_uniform(&[1000], -2.0, 3.0, 9).unwrap();
    assert!(u.as_slice().iter().all(|&x| (-2.0..3.0).contains(&x)));
    assert!(Tensor::<f64>::rand_normal(&[2], 0.0, -1.0, 0).is_err());
    assert!(Tensor::<f64>::rand_uniform(&[2], 1.0, 0.0, 0).is_err());
    assert!(Tensor::<f64>::rand_uniform(&[2], f64::NAN, 0.0, 0).is_err());
}

fn naive_matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                c[i * n + j] += a[i * k + p] * b[p * n + j];
            }
        }
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn matmul_matches_naive_loop_f64(m in 1usize..9, k in 0usize..9, n in 1usize..9, batch in 1usize..4, seed in 0u64..1000) {
        let a = Tensor::<f64>::rand_normal(&[batch, m, k], 0.0, 1.0, seed).unwrap();
        let b = Tensor::<f64>::rand_normal(&[batch, k, n], 0.0, 1.0, seed + 1).unwrap();
        let c = a.matmul(&b).unwrap();
        prop_assert_eq!(c.shape(), &[batch, m, n]);
        for i in 0..batch {
            let ai = a.slice_axis(0, i, i + 1).unwrap();
            let bi = b.slice_axis(0, i, i + 1).unwrap();
            let want = naive_matmul(ai.as_slice(), bi.as_slice(), m, k, n);
            let got2 = ai.reshape(&[m, k]).unwrap().matmul(&bi.reshape(&[k, n]).unwrap()).unwrap();
            let got3 = c.slice_axis(0, i, i + 1).unwrap();
            for ((x, y), w) in got2.as_slice().iter().zip(got3.as_slice()).zip(&want) {
                prop_assert!((x - w).abs() <= 1e-12 * (1.0 + w.abs()));
                prop_assert!((y - w).abs() <= 1e-12 * (1.0 + w.abs()));
            }
        }
    }

    #[test]
    fn matmul_matches_naive_loop_f32(m in 1usize..17, k in 1usize..17, n in 1usize..17, seed in 0u64..1000) {
        let a = Tensor::<f32>::rand_normal(&[m, k], 0.0, 1.0, seed).unwrap();
        let b = Tensor::<f32>::rand_normal(&[k, n], 0.0, 1.0, seed + 1).unwrap();
        let c = a.matmul(&b).unwrap();
        let want = naive_matmul(&a.cast::<f64>().to_vec(), &b.cast::<f64>().to_vec(), m, k, n);
        for (x, w) in c.as_slice().iter().zip(&want) {
            prop_assert!((*x as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()));
        }
    }

    #[test]
    fn binary_ops_match_elementwise_loop(rows in 1usize..5, cols in 1usize..5, lhs_row in any::<bool>(), seed in 0u64..100) {
        // lhs is [rows, cols] or [1, cols]; rhs is [rows, 1]
        let lshape = if lhs_row { vec![1, cols] } else { vec![rows, cols] };
        let a = Tensor::<f64>::rand_normal(&lshape, 0.0, 1.0, seed).unwrap();
        let b = Tensor::<f64>::rand_normal(&[rows, 1], 0.0, 1.0, seed + 7).unwrap();
        let s = a.add(&b).unwrap();
        let p = a.mul(&b).unwrap();
        prop_assert_eq!(s.shape(), &[rows, cols]);
        for i in 0..rows {
            for j in 0..cols {
                let ai = if lhs_row { j } else { i * cols + j };
                let av = a.as_slice()[ai];
                let bv = b.as_slice()[i];
                prop_assert_eq!(s.as_slice()[i * cols + j], av + bv);
                prop_assert_eq!(p.as_slice()[i * cols + j], av * bv);
            }
        }
    }

    /// Incompatible shapes give an error naming both shapes, never a panic.
    #[test]
    fn incompatible_shapes_are_errors(l in prop::collection::vec(1usize..5, 0..4), r in prop::collection::vec(1usize..5, 0..4)) {
        let a = Tensor::<f64>::zeros(&l);
        let b = Tensor::<f64>::zeros(&r);
        let compatible = broadcast_shape("test", &l, &r).is_ok();
        for res in [a.add(&b), a.sub(&b), a.mul(&b), a.div(&b), a.maximum(&b), a.minimum(&b)] {
            match res {
                Ok(out) => {
                    prop_assert!(compatible);
                    let want = broadcast_shape("test", &l, &r).unwrap();
                    prop_assert_eq!(out.shape(), want.as_slice());
                }
                Err(e) => {
                    prop_assert!(!compatible);
                    let named_both = matches!(&e, TensorError::BroadcastMismatch { lhs, rhs, .. } if *lhs == l && *rhs == r);
                    prop_assert!(named_both, "{:?}", e);
                    let msg = e.to_string();
                    prop_assert!(msg.contains(&format!("{l:?}")) && msg.contains(&format!("{r:?}")), "{}", msg);
                }
            }
        }
        // matmul: errors unless ranks are 2 or 3 and inner sizes agree
        let mm = a.matmul(&b);
        let ok = (l.len() == 2 && r.len() == 2 && l[1] == r[0])
            || (l.len() == 3 && r.len() == 3 && l[0] == r[0] && l[2] == r[1]);
        prop_assert_eq!(mm.is_ok(), ok);
        // reshape to a wrong count, bad axes, bad slices
        prop_assert!(a.reshape(&[a.len() + 1]).is_err());
        prop_assert!(a.sum(&[l.len()], false).is_err());
        prop_assert!(a.permute(&[0; 5]).is_err());
        if !l.is_empty() {
            prop_assert!(a.slice_axis(0, 0, l[0] + 1).is_err());
            let mut other = l.clone();
            other[l.len() - 1] += 1;
            let b2 = Tensor::<f64>::zeros(&other);
            let expect_ok = l.len() == 1;
            prop_assert_eq!(Tensor::concat(&[&a, &b2], 0).is_ok(), expect_ok);
        }
    }
}

#[test]
fn from_vec_and_gemm_reject_bad_shapes() {
    assert!(matches!(
        Tensor::<f64>::from_vec(&[2, 3], vec![0.0; 5]),
        Err(TensorError::ElementCount { len: 5, .. })
    ));
    let a = ArrayD::<f64>::zeros(ndarray::IxDyn(&[2, 3]));
    let a = a.into_dimensionality::<ndarray::Ix2>().unwrap();
    let mut c = ndarray::Array2::<f64>::zeros((2, 2));
    let err = gradlab_tensor::gemm(1.0, a.view(), a.view(), 0.0, c.view_mut()).unwrap_err();
    assert!(err.to_string().contains("[2, 3]"), "{err}");
    assert!(Tensor::<f64>::zeros(&[0]).max(&[0], false).is_err());
}

/// Tensors large enough to be split over threads give, element for element,
/// what the element-wise loop gives (and keep their shape), for `map`, the
/// unary ops built on it and same-shape binary ops.
#[test]
fn parallel_elementwise_ops_equal_the_loop() {
    let shape = [3, 5, 71, 67]; // 71,355 elements, not a multiple of any chunk
    let len: usize = shape.iter().product();
    assert!(len >= gradlab_tensor::PARALLEL_MIN_ELEMENTS);
    let a = Tensor::<f32>::rand_normal(&shape, 0.0, 1.0, 11).unwrap();
    let b = Tensor::<f32>::rand_normal(&shape, 0.0, 1.0, 12).unwrap();
    let (av, bv) = (a.to_vec(), b.to_vec());
    let relu = a.relu();
    assert_eq!(relu.shape(), &shape);
    let want: Vec<f32> = av.iter().map(|&x| if x <= 0.0 { 0.0 } else { x }).collect();
    assert_eq!(relu.to_vec(), want);
    let mapped = a.map(|x| 3.0 * x - 1.0).to_vec();
    assert_eq!(
        mapped,
        av.iter().map(|&x| 3.0 * x - 1.0).collect::<Vec<_>>()
    );
    let prod = a.mul(&b).unwrap();
    assert_eq!(prod.shape(), &shape);
    let want: Vec<f32> = av.iter().zip(&bv).map(|(x, y)| x * y).collect();
    assert_eq!(prod.to_vec(), want);
    let diff = a.sub(&b).unwrap().to_vec();
    assert_eq!(
        diff,
        av.iter().zip(&bv).map(|(x, y)| x - y).collect::<Vec<_>>()
    );
}

#[test]
fn add_assign_is_the_element_wise_sum_on_both_sides_of_the_parallel_threshold() {
    // 3 elements (serial) and 3 * 2^15 + 7 (split over threads, with a
    // partial last chunk).
    for len in [3usize, 3 * (1 << 15) + 7] {
        let a = Tensor::<f32>::rand_normal(&[len], 0.0, 1.0, 1).unwrap();
        let b = Tensor::<f32>::rand_normal(&[len], 0.0, 1.0, 2).unwrap();
        let mut acc = a.clone();
        acc.add_assign(&b).unwrap();
        let want: Vec<f32> = a
            .as_slice()
            .iter()
            .zip(b.as_slice())
            .map(|(x, y)| x + y)
            .collect();
        assert_eq!(acc.to_vec(), want, "{len} elements");
    }
    let mut a = Tensor::<f32>::zeros(&[2, 3]);
    let err = a.add_assign(&Tensor::zeros(&[3, 2])).unwrap_err();
    assert!(
        matches!(err, TensorError::BroadcastMismatch { .. }),
        "{err:?}"
    );
}
