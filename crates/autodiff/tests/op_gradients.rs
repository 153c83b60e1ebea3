//! Every differentiable op: analytic gradient == finite differences, over
//! random shapes (broadcasting pairs, size-1 axes) and values, in f64.
// Inputs are cloned into fresh arrays per check; that reads more plainly here
// than slice::from_ref.
#![allow(clippy::cloned_ref_to_slice_refs)]

use gradlab_autodiff::gradcheck::{gradcheck, GradcheckOptions};
use gradlab_autodiff::{Graph, Var};
use gradlab_tensor::Tensor;
use proptest::prelude::*;

fn opts() -> GradcheckOptions {
    GradcheckOptions::default()
}

/// A random shape of rank 0..=3 with sizes 1..=3.
fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..4, 0..4)
}

/// A pair of shapes that broadcast: `b` is `a` with a random suffix kept and
/// random axes set to 1 (and `a` may be the one with size-1 axes instead).
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (shape(), any::<u64>(), any::<bool>()).prop_map(|(a, bits, swap)| {
        let keep = (bits % (a.len() as u64 + 1)) as usize;
        let b: Vec<usize> = a[a.len() - keep..]
            .iter()
            .enumerate()
            .map(|(i, &d)| if (bits >> (8 + i)) & 1 == 1 { 1 } else { d })
            .collect();
        if swap {
            (b, a)
        } else {
            (a, b)
        }
    })
}

fn normal(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_normal(shape, 0.0, 1.0, seed).unwrap()
}

/// Values bounded away from zero (for ln, sqrt, division, kinks).
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor<f64> {
    normal(shape, seed).map(|x| if x >= 0.0 { x + 0.5 } else { x - 0.5 })
}

fn check(
    f: impl Fn(&mut Graph<f64>, &[Var]) -> gradlab_autodiff::Result<Var>,
    inputs: &[Tensor<f64>],
) -> Result<(), TestCaseError> {
    gradcheck(f, inputs, &opts())
        .map(|_| ())
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn add_sub_mul_div((sa, sb) in broadcast_pair(), seed in 0u64..10_000) {
        let a = normal(&sa, seed);
        let b = away_from_zero(&sb, seed + 1);
        check(|g, x| g.add(x[0], x[1]), &[a.clone(), b.clone()])?;
        check(|g, x| g.sub(x[0], x[1]), &[a.clone(), b.clone()])?;
        check(|g, x| g.mul(x[0], x[1]), &[a.clone(), b.clone()])?;
        check(|g, x| g.div(x[0], x[1]), &[a, b])?;
    }

    #[test]
    fn maximum_minimum((sa, sb) in broadcast_pair(), seed in 0u64..10_000) {
        // Keep the operands apart so no element sits on a tie (a kink).
        let a = normal(&sa, seed).map(|x| (x * 4.0).round() + 0.25);
        let b = normal(&sb, seed + 1).map(|x| (x * 4.0).round() - 0.25);
        check(|g, x| g.maximum(x[0], x[1]), &[a.clone(), b.clone()])?;
        check(|g, x| g.minimum(x[0], x[1]), &[a, b])?;
    }

    #[test]
    fn unary_ops(s in shape(), seed in 0u64..10_000, p in 0.5f64..3.0, k in -2.0f64..2.0) {
        let x = normal(&s, seed);
        let pos = away_from_zero(&s, seed).abs();
        let off_zero = away_from_zero(&s, seed);
        check(|g, v| g.neg(v[0]), &[x.clone()])?;
        check(|g, v| g.exp(v[0]), &[x.clone()])?;
        check(|g, v| g.ln(v[0]), &[pos.clone()])?;
        check(|g, v| g.sqrt(v[0]), &[pos.clone()])?;
        check(|g, v| g.powf(v[0], p), &[pos])?;
        check(|g, v| g.tanh(v[0]), &[x.clone()])?;
        check(|g, v| g.sigmoid(v[0]), &[x.clone()])?;
        check(|g, v| g.relu(v[0]), &[off_zero.clone()])?;
        check(|g, v| g.abs(v[0]), &[off_zero])?;
        check(|g, v| g.add_scalar(v[0], k), &[x.clone()])?;
        check(|g, v| g.mul_scalar(v[0], k), &[x])?;
    }

    #[test]
    fn reductions(s in prop::collection::vec(1usize..4, 1..4), seed in 0u64..10_000, axis_bits in 1u8..8, keepdims in any::<bool>()) {
        let axes: Vec<usize> = (0..s.len()).filter(|i| axis_bits >> i & 1 == 1).collect();
        let axes = if axes.is_empty() { vec![0] } else { axes };
        // Distinct values so max has no ties.
        let n: usize = s.iter().product();
        let mut vals: Vec<f64> = (0..n).map(|i| i as f64 * 0.37).collect();
        let perm = normal(&[n], seed);
        vals.sort_by(|a, b| {
            let (ia, ib) = ((a / 0.37) as usize, (b / 0.37) as usize);
            perm.as_slice()[ia].total_cmp(&perm.as_slice()[ib])
        });
        let x = Tensor::from_vec(&s, vals).unwrap();
        check(|g, v| g.sum(v[0], &axes, keepdims), &[x.clone()])?;
        check(|g, v| g.mean(v[0], &axes, keepdims), &[x.clone()])?;
        check(|g, v| g.max(v[0], &axes, keepdims), &[x.clone()])?;
        check(|g, v| g.variance(v[0], &axes, keepdims), &[x.clone()])?;
        check(|g, v| g.sum_all(v[0]), &[x.clone()])?;
        check(|g, v| g.mean_all(v[0]), &[x])?;
    }

    #[test]
    fn shape_ops(s in prop::collection::vec(1usize..4, 1..4), seed in 0u64..10_000, rot in 0usize..3) {
        let x = normal(&s, seed);
        let n: usize = s.iter().product();
        check(|g, v| g.reshape(v[0], &[n]), &[x.clone()])?;
        let mut axes: Vec<usize> = (0..s.len()).collect();
        axes.rotate_left(rot % s.len());
        check(|g, v| g.permute(v[0], &axes), &[x.clone()])?;
        check(|g, v| g.transpose(v[0], 0, s.len() - 1), &[x.clone()])?;
        let last = s.len() - 1;
        let y = normal(&s, seed + 3);
        check(|g, v| g.concat(&[v[0], v[1], v[0]], last), &[x.clone(), y])?;
        let len = s[last];
        check(|g, v| g.slice(v[0], last, len / 2, len), &[x])?;
    }

    #[test]
    fn matmul_2d_and_batched(m in 1usize..5, k in 1usize..5, n in 1usize..5, b in 1usize..3, seed in 0u64..10_000) {
        check(|g, v| g.matmul(v[0], v[1]), &[normal(&[m, k], seed), normal(&[k, n], seed + 1)])?;
        check(|g, v| g.matmul(v[0], v[1]), &[normal(&[b, m, k], seed), normal(&[b, k, n], seed + 1)])?;
    }

    #[test]
    fn softmax_log_softmax(s in prop::collection::vec(1usize..5, 1..4), seed in 0u64..10_000, axis in 0usize..3) {
        let axis = axis % s.len();
        let x = normal(&s, seed).mul_scalar(3.0);
        check(|g, v| g.softmax(v[0], axis), &[x.clone()])?;
        check(|g, v| g.log_softmax(v[0], axis), &[x])?;
    }

    #[test]
    fn losses(n in 1usize..6, k in 1usize..6, seed in 0u64..10_000) {
        let logits = normal(&[n, k], seed).mul_scalar(2.0);
        let labels: Vec<usize> = (0..n).map(|i| (seed as usize + 3 * i) % k).collect();
        check(|g, v| g.cross_entropy(v[0], &labels), &[logits.clone()])?;
        let target = normal(&[n, k], seed + 5);
        check(|g, v| g.mse(v[0], v[1]), &[logits, target])?;
    }
}

/// Small random expression graphs: several ops composed, variables reused.
#[derive(Debug, Clone)]
enum Step {
    Add(usize, usize),
    Mul(usize, usize),
    Tanh(usize),
    Sigmoid(usize),
    Exp(usize),
    Scale(usize, f64),
    SumRows(usize),
    Softmax(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..16, 0usize..16).prop_map(|(a, b)| Step::Add(a, b)),
        (0usize..16, 0usize..16).prop_map(|(a, b)| Step::Mul(a, b)),
        (0usize..16).prop_map(Step::Tanh),
        (0usize..16).prop_map(Step::Sigmoid),
        (0usize..16).prop_map(Step::Exp),
        (0usize..16, -1.5f64..1.5).prop_map(|(a, s)| Step::Scale(a, s)),
        (0usize..16).prop_map(Step::SumRows),
        (0usize..16).prop_map(Step::Softmax),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_expression_graphs(steps in prop::collection::vec(step(), 1..8), seed in 0u64..10_000) {
        // Three inputs: [3, 2], [3, 2] and a broadcasting [2].
        let inputs = [normal(&[3, 2], seed).mul_scalar(0.5), normal(&[3, 2], seed + 1).mul_scalar(0.5), normal(&[2], seed + 2).mul_scalar(0.5)];
        let build = |g: &mut Graph<f64>, x: &[Var]| -> gradlab_autodiff::Result<Var> {
            let mut vars: Vec<Var> = x.to_vec();
            for s in &steps {
                let pick = |i: usize| vars[i % vars.len()];
                let v = match *s {
                    Step::Add(a, b) => g.add(pick(a), pick(b)).or_else(|_| g.add(pick(a), pick(a)))?,
                    Step::Mul(a, b) => g.mul(pick(a), pick(b)).or_else(|_| g.mul(pick(a), pick(a)))?,
                    Step::Tanh(a) => g.tanh(pick(a))?,
                    Step::Sigmoid(a) => g.sigmoid(pick(a))?,
                    Step::Exp(a) => { let t = g.tanh(pick(a))?; g.exp(t)? }
                    Step::Scale(a, k) => g.mul_scalar(pick(a), k)?,
                    Step::SumRows(a) => {
                        let r = g.value(pick(a))?.rank();
                        if r == 2 { g.sum(pick(a), &[0], true)? } else { g.sum_all(pick(a))? }
                    }
                    Step::Softmax(a) => {
                        let r = g.value(pick(a))?.rank();
                        if r >= 1 { g.softmax(pick(a), r - 1)? } else { g.exp(pick(a))? }
                    }
                };
                vars.push(v);
            }
            // Combine everything so every input and step feeds the output.
            let mut out = vars[0];
            for &v in &vars[1..] {
                let s = g.sum_all(v)?;
                out = g.add(out, s)?;
            }
            Ok(out)
        };
        gradcheck(build, &inputs, &opts()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
