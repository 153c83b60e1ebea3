//! The tape itself: gradients of intermediates, retention, detach, no-grad,
//! user-defined ops, numerical robustness and errors on bad input.

use gradlab_autodiff::gradcheck::{gradcheck_op, GradcheckError, GradcheckOptions};
use gradlab_autodiff::{AutodiffError, Graph, Op, Retain};
use gradlab_tensor::{Element, Tensor};
use proptest::prelude::*;

/// `y = sin(x)` implemented outside the crate, as a user would.
struct Sin {
    /// When set, the backward is deliberately wrong (drops the cosine's sign).
    broken: bool,
}

impl<T: Element> Op<T> for Sin {
    fn name(&self) -> &'static str {
        "sin"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> gradlab_autodiff::Result<Tensor<T>> {
        gradlab_autodiff::expect_arity("sin", inputs, 1)?;
        Ok(inputs[0].map(|x| x.sin()))
    }
    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _: &Tensor<T>,
        g: &Tensor<T>,
        _: &[bool],
    ) -> gradlab_autodiff::Result<Vec<Option<Tensor<T>>>> {
        let d = if self.broken {
            inputs[0].map(|x| x.cos().abs())
        } else {
            inputs[0].map(|x| x.cos())
        };
        Ok(vec![Some(d.mul(g)?)])
    }
}

#[test]
fn user_defined_op_passes_gradcheck_and_a_wrong_backward_is_caught() {
    let x = Tensor::<f64>::from_vec(&[2, 3], vec![0.3, 1.9, 2.5, -0.7, 3.0, -2.2]).unwrap();
    let report = gradcheck_op(
        &Sin { broken: false },
        std::slice::from_ref(&x),
        &GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(report.elements_checked, 6);
    let err = gradcheck_op(&Sin { broken: true }, &[x], &GradcheckOptions::default()).unwrap_err();
    match &err {
        GradcheckError::Mismatch {
            input,
            index,
            analytic,
            numeric,
            failing,
            ..
        } => {
            assert_eq!(*input, 0);
            assert_eq!(index.len(), 2);
            assert!(
                (analytic + numeric).abs() < 1e-6,
                "sign flipped: {analytic} vs {numeric}"
            );
            assert_eq!(*failing, 4, "cos < 0 at 1.9, 2.5, 3.0, -2.2");
        }
        other => panic!("expected a mismatch, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("numerical") && msg.contains("analytical") && msg.contains("index"),
        "{msg}"
    );
}

#[test]
fn gradcheck_catches_wrong_shape_and_nonzero_for_zero() {
    struct WrongShape;
    impl Op<f64> for WrongShape {
        fn name(&self) -> &'static str {
            "wrong_shape"
        }
        fn forward(&self, i: &[&Tensor<f64>]) -> gradlab_autodiff::Result<Tensor<f64>> {
            Ok(i[0].clone())
        }
        fn backward(
            &self,
            i: &[&Tensor<f64>],
            _: &Tensor<f64>,
            g: &Tensor<f64>,
            _: &[bool],
        ) -> gradlab_autodiff::Result<Vec<Option<Tensor<f64>>>> {
            Ok(vec![Some(g.reshape(&[i[0].len()])?)])
        }
    }
    struct Offset;
    impl Op<f64> for Offset {
        fn name(&self) -> &'static str {
            "offset"
        }
        fn forward(&self, i: &[&Tensor<f64>]) -> gradlab_autodiff::Result<Tensor<f64>> {
            Ok(i[0].clone())
        }
        fn backward(
            &self,
            _: &[&Tensor<f64>],
            _: &Tensor<f64>,
            g: &Tensor<f64>,
            _: &[bool],
        ) -> gradlab_autodiff::Result<Vec<Option<Tensor<f64>>>> {
            Ok(vec![Some(g.add_scalar(1e-3))])
        }
    }
    let x = Tensor::<f64>::ones(&[2, 2]);
    assert!(matches!(
        gradcheck_op(&WrongShape, std::slice::from_ref(&x), &Default::default()),
        Err(GradcheckError::Shape { .. })
    ));
    assert!(matches!(
        gradcheck_op(&Offset, &[x], &Default::default()),
        Err(GradcheckError::NonZeroForZero { .. })
    ));
}

#[test]
fn intermediate_gradients_are_answered_and_retention_frees_the_rest() {
    let mut g = Graph::<f64>::new();
    let w = g.param(Tensor::from_vec(&[2], vec![2.0, -3.0]).unwrap());
    let h = g.mul_scalar(w, 3.0).unwrap(); // h = 3w
    let y = g.mul(h, h).unwrap(); // y = 9 w^2
    let loss = g.sum_all(y).unwrap();
    let all = g.backward(loss).unwrap();
    assert_eq!(all.get(h).unwrap().to_vec(), vec![12.0, -18.0]); // 2h
    assert_eq!(all.get(w).unwrap().to_vec(), vec![36.0, -54.0]); // 18w
    let some = g.backward_retain(loss, Retain::LeavesAnd(&[y])).unwrap();
    assert!(some.get(h).is_none());
    assert!(some.get(y).is_some());
    assert_eq!(some.get(w).unwrap().to_vec(), vec![36.0, -54.0]);
}

#[test]
fn detach_and_no_grad_stop_gradient_flow() {
    let mut g = Graph::<f64>::new();
    let w = g.param(Tensor::from_vec(&[1], vec![2.0]).unwrap());
    let a = g.mul(w, w).unwrap();
    let d = g.detach(a).unwrap();
    let y = g.mul(d, w).unwrap(); // d treated as a constant 4
    let loss = g.sum_all(y).unwrap();
    let grads = g.backward(loss).unwrap();
    assert_eq!(grads.get(w).unwrap().to_vec(), vec![4.0]);
    assert!(grads.get(a).is_none());

    let mut ng = Graph::<f64>::no_grad();
    let p = ng.param(Tensor::ones(&[2]));
    let q = ng.exp(p).unwrap();
    assert!(!ng.requires_grad(q).unwrap());
    let s = ng.sum_all(q).unwrap();
    let grads = ng.backward(s).unwrap();
    assert!(grads.get(p).is_none());
}

#[test]
fn cross_entropy_is_finite_for_huge_logits() {
    for &scale in &[1e4f64, -1e4, 1e30] {
        let mut g = Graph::<f64>::new();
        let logits =
            g.param(Tensor::from_vec(&[2, 3], vec![scale, 0.0, -scale, 1.0, scale, 2.0]).unwrap());
        let loss = g.cross_entropy(logits, &[2, 1]).unwrap();
        let lv = g.value(loss).unwrap().item().unwrap();
        assert!(lv.is_finite(), "loss {lv} at scale {scale}");
        let grads = g.backward(loss).unwrap();
        assert!(grads.get(logits).unwrap().all_finite());
    }
    let mut g = Graph::<f32>::new();
    let logits = g.param(Tensor::from_vec(&[1, 2], vec![1e4f32, -1e4]).unwrap());
    let loss = g.cross_entropy(logits, &[1]).unwrap();
    assert_eq!(g.value(loss).unwrap().item().unwrap(), 2e4);
}

#[test]
fn taps_name_activations() {
    let mut g = Graph::<f32>::new();
    let x = g.param(Tensor::ones(&[2]));
    let y = g.relu(x).unwrap();
    g.tap("block1", y);
    assert_eq!(g.tapped("block1"), Some(y));
    assert_eq!(g.taps().len(), 1);
    assert!(g.tapped("nope").is_none());
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let mut g1 = Graph::<f64>::new();
    let mut g2 = Graph::<f64>::new();
    let a = g1.param(Tensor::ones(&[2, 3]));
    let b = g2.param(Tensor::ones(&[2, 3]));
    assert!(matches!(
        g1.add(a, b),
        Err(AutodiffError::UnknownVar { .. })
    ));
    assert!(matches!(
        g1.backward(a),
        Err(AutodiffError::NonScalarLoss { .. })
    ));
    let c = g1.param(Tensor::ones(&[4]));
    let err = g1.add(a, c).unwrap_err();
    assert!(
        err.to_string().contains("[2, 3]") && err.to_string().contains("[4]"),
        "{err}"
    );
    assert!(matches!(
        g1.cross_entropy(a, &[0]),
        Err(AutodiffError::InvalidLabels { .. })
    ));
    assert!(matches!(
        g1.cross_entropy(a, &[0, 3]),
        Err(AutodiffError::InvalidLabels { .. })
    ));
    assert!(g1.mse(a, c).is_err());
    assert!(g1
        .backward_from(a, Tensor::ones(&[3]), Retain::All)
        .is_err());
}

proptest! {
    /// Random bad shape pairs through the graph give `Err` naming both shapes.
    #[test]
    fn bad_shape_pairs_are_errors(l in prop::collection::vec(1usize..5, 1..4), r in prop::collection::vec(1usize..5, 1..4)) {
        let mut g = Graph::<f64>::new();
        let a = g.param(Tensor::zeros(&l));
        let b = g.param(Tensor::zeros(&r));
        let broadcastable = gradlab_tensor::broadcast_shape("t", &l, &r).is_ok();
        for res in [g.add(a, b), g.sub(a, b), g.mul(a, b), g.div(a, b), g.maximum(a, b), g.minimum(a, b)] {
            prop_assert_eq!(res.is_ok(), broadcastable);
            if let Err(e) = res {
                let msg = e.to_string();
                prop_assert!(msg.contains(&format!("{l:?}")) && msg.contains(&format!("{r:?}")), "{}", msg);
            }
        }
        let _ = g.matmul(a, b);
        let _ = g.concat(&[a, b], 0);
        prop_assert!(g.reshape(a, &[l.iter().product::<usize>() + 1]).is_err());
    }
}
