//! The naive oracle: [`conv2d`] and [`conv2d_backward`] as plain nested loops
//! over every multiply-accumulate, accumulating in `f64`.
//!
//! Same signatures, checks and errors as the fast kernels
//! ([`crate::conv2d`], [`crate::conv2d_backward`]); slow, and written to be
//! obviously right so the fast kernels can be property-tested against it.

use gradlab_tensor::Element;
use ndarray::{Array1, Array4, ArrayView1, ArrayView4};

use crate::conv2d::{check_bias, shape4, Conv2dGrads};
use crate::error::Result;
use crate::spec::{Conv2dSpec, Geometry};

/// One multiply-accumulate of the forward pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mac {
    pub n: usize,
    pub co: usize,
    pub oh: usize,
    pub ow: usize,
    /// Input channel (absolute).
    pub ci: usize,
    /// Input channel within the group: the weight's second index.
    pub cl: usize,
    pub i: usize,
    pub j: usize,
    /// The input pixel read, `None` when the tap falls in the zero padding.
    pub input: Option<(usize, usize)>,
}

/// Visits every multiply-accumulate of the forward pass in loop order:
/// image, output channel, output row, output column, input channel of the
/// group, kernel row, kernel column.
pub(crate) fn for_each_mac(g: &Geometry, mut f: impl FnMut(Mac)) {
    for n in 0..g.n {
        for co in 0..g.c_out {
            let group = co / g.cog;
            for oh in 0..g.oh {
                for ow in 0..g.ow {
                    for cl in 0..g.cig {
                        let ci = group * g.cig + cl;
                        for i in 0..g.k[0] {
                            for j in 0..g.k[1] {
                                let ih = (oh * g.s[0] + i * g.d[0]) as isize - g.p[0] as isize;
                                let iw = (ow * g.s[1] + j * g.d[1]) as isize - g.p[1] as isize;
                                let inside = ih >= 0
                                    && iw >= 0
                                    && (ih as usize) < g.h
                                    && (iw as usize) < g.w;
                                f(Mac {
                                    n,
                                    co,
                                    oh,
                                    ow,
                                    ci,
                                    cl,
                                    i,
                                    j,
                                    input: inside.then_some((ih as usize, iw as usize)),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Reference 2-D convolution: `out[n, co, oh, ow] = bias[co] + sum over the
/// group's input channels and kernel taps of x * w`, one loop per index.
///
/// # Errors
/// The same as [`crate::conv2d`].
pub fn conv2d<T: Element>(
    input: ArrayView4<'_, T>,
    weight: ArrayView4<'_, T>,
    bias: Option<ArrayView1<'_, T>>,
    spec: &Conv2dSpec,
) -> Result<Array4<T>> {
    let g = spec.geometry("conv2d", shape4(&input), shape4(&weight))?;
    check_bias("conv2d", &g, bias.as_ref())?;
    let mut out = Array4::<f64>::zeros(g.output_shape());
    if let Some(b) = &bias {
        for ((_, co, _, _), o) in out.indexed_iter_mut() {
            *o = b[co].as_f64();
        }
    }
    for_each_mac(&g, |m| {
        if let Some((ih, iw)) = m.input {
            out[[m.n, m.co, m.oh, m.ow]] +=
                input[[m.n, m.ci, ih, iw]].as_f64() * weight[[m.co, m.cl, m.i, m.j]].as_f64();
        }
    });
    Ok(out.mapv(T::of_f64))
}

/// Reference backward pass: for every multiply-accumulate `y += x * w` of the
/// forward pass, `dx += w * dy` and `dw += x * dy`; `db[co] = sum of dy[:, co]`.
///
/// # Errors
/// The same as [`crate::conv2d_backward`].
pub fn conv2d_backward<T: Element>(
    input: ArrayView4<'_, T>,
    weight: ArrayView4<'_, T>,
    grad_output: ArrayView4<'_, T>,
    spec: &Conv2dSpec,
) -> Result<Conv2dGrads<T>> {
    let op = "conv2d_backward";
    let g = spec.geometry(op, shape4(&input), shape4(&weight))?;
    g.check_grad_output(op, shape4(&grad_output))?;
    let mut gi = Array4::<f64>::zeros(g.input_shape());
    let mut gw = Array4::<f64>::zeros(spec.weight_shape());
    let mut gb = Array1::<f64>::zeros(g.c_out);
    for ((_, co, _, _), &d) in grad_output.indexed_iter() {
        gb[co] += d.as_f64();
    }
    for_each_mac(&g, |m| {
        if let Some((ih, iw)) = m.input {
            let dy = grad_output[[m.n, m.co, m.oh, m.ow]].as_f64();
            gi[[m.n, m.ci, ih, iw]] += weight[[m.co, m.cl, m.i, m.j]].as_f64() * dy;
            gw[[m.co, m.cl, m.i, m.j]] += input[[m.n, m.ci, ih, iw]].as_f64() * dy;
        }
    });
    Ok(Conv2dGrads {
        input: gi.mapv(T::of_f64),
        weight: gw.mapv(T::of_f64),
        bias: gb.mapv(T::of_f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ConvKind;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// Counts, by running the reference loops, the multiply-accumulates and
    /// the distinct weight entries they touch.
    fn brute_force(spec: &Conv2dSpec, n: usize, h: usize, w: usize) -> (u64, usize) {
        let g = spec
            .geometry("test", [n, spec.in_channels, h, w], spec.weight_shape())
            .unwrap();
        let mut macs = 0u64;
        let mut weights = HashSet::new();
        for_each_mac(&g, |m| {
            macs += 1;
            weights.insert((m.co, m.cl, m.i, m.j));
        });
        (macs, weights.len())
    }

    fn spec_strategy() -> impl Strategy<Value = Conv2dSpec> {
        // One strategy per kind, so all four are covered.
        prop_oneof![
            // standard
            (1usize..=4, 1usize..=4, 2usize..=4).prop_map(|(i, o, k)| Conv2dSpec::new(i, o, k)),
            // pointwise
            (1usize..=5, 1usize..=5).prop_map(|(i, o)| Conv2dSpec::new(i, o, 1)),
            // depthwise with multiplier
            (2usize..=5, 1usize..=3, 1usize..=4)
                .prop_map(|(c, m, k)| Conv2dSpec::new(c, c * m, k).groups(c)),
            // grouped
            (2usize..=3, 2usize..=3, 1usize..=2, 1usize..=4)
                .prop_map(|(g, ci, co, k)| Conv2dSpec::new(g * ci, g * co, k).groups(g)),
        ]
        .prop_flat_map(|s| (Just(s), 1usize..=2, 0usize..=1, 1usize..=2))
        .prop_map(|(s, st, p, d)| s.stride(st).padding(p).dilation(d))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// `param_count` and `macs` equal what the reference loops visit.
        #[test]
        fn counts_equal_brute_force(spec in spec_strategy(), n in 1usize..=3, eh in 0usize..=4, ew in 0usize..=4) {
            let eff = spec.effective_kernel("test").unwrap();
            let h = eff[0].saturating_sub(2 * spec.padding[0]).max(1) + eh;
            let w = eff[1].saturating_sub(2 * spec.padding[1]).max(1) + ew;
            let (macs, weights) = brute_force(&spec, n, h, w);
            prop_assert_eq!(spec.macs(n, h, w).unwrap(), macs);
            prop_assert_eq!(spec.param_count(false), weights);
            prop_assert_eq!(spec.param_count(true), weights + spec.out_channels);
        }
    }

    #[test]
    fn textbook_formulas_hold() {
        for (cin, cout, k) in [(3, 8, 3), (16, 32, 5), (7, 5, 2)] {
            let standard = Conv2dSpec::new(cin, cout, k);
            assert_eq!(standard.kind(), ConvKind::Standard);
            assert_eq!(standard.param_count(false), cin * cout * k * k);
            assert_eq!(
                standard.param_count(false),
                brute_force(&standard, 1, 6, 6).1
            );
            let pointwise = Conv2dSpec::new(cin, cout, 1);
            assert_eq!(pointwise.kind(), ConvKind::Pointwise);
            assert_eq!(pointwise.param_count(false), cin * cout);
            assert_eq!(
                pointwise.param_count(false),
                brute_force(&pointwise, 1, 6, 6).1
            );
            let depthwise = Conv2dSpec::new(cin, cin, k).groups(cin);
            assert_eq!(depthwise.kind(), ConvKind::Depthwise);
            assert_eq!(depthwise.param_count(false), cin * k * k);
            assert_eq!(
                depthwise.param_count(false),
                brute_force(&depthwise, 1, 6, 6).1
            );
            // MACs per output pixel and image: the same formulas.
            let [oh, ow] = standard.output_size(9, 9).unwrap();
            let pixels = (oh * ow) as u64;
            assert_eq!(
                standard.macs(1, 9, 9).unwrap(),
                (cin * cout * k * k) as u64 * pixels
            );
            assert_eq!(pointwise.macs(1, 9, 9).unwrap(), (cin * cout * 81) as u64);
            assert_eq!(
                depthwise.macs(1, 9, 9).unwrap(),
                (cin * k * k) as u64 * pixels
            );
        }
        let grouped = Conv2dSpec::new(8, 12, 3).groups(4);
        assert_eq!(grouped.kind(), ConvKind::Grouped);
        assert_eq!(grouped.param_count(true), 12 * 2 * 9 + 12);
    }
}
