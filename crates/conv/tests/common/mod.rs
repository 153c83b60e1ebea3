//! Helpers shared by the integration tests: random valid convolution cases,
//! seeded arrays, strided views, tolerant comparison.

#![allow(dead_code)]

use gradlab_conv::{Conv2dSpec, Isa};
use gradlab_tensor::{Element, Tensor};
use ndarray::{s, Array4, ArrayView4, Ix4};
use proptest::prelude::*;

/// A valid convolution problem: spec, batch, input size, whether there is a
/// bias, how operands are laid out in memory, and a seed for the values.
#[derive(Debug, Clone)]
pub struct Case {
    pub spec: Conv2dSpec,
    pub batch: usize,
    pub h: usize,
    pub w: usize,
    pub bias: bool,
    /// 0: contiguous; 1: every other element of a larger array; 2: permuted axes.
    pub layout: u8,
    pub seed: u64,
}

fn divisors(n: usize) -> Vec<usize> {
    (1..=n).filter(|d| n.is_multiple_of(*d)).collect()
}

/// Smallest input extent on one axis for which the window fits, plus `extra`
/// (0 = the window barely fits).
fn extent(k: usize, d: usize, p: usize, extra: usize) -> usize {
    let eff = d * (k - 1) + 1;
    eff.saturating_sub(2 * p).max(1) + extra
}

/// Random valid specs as the issue asks: kernel 1..5, stride 1..3,
/// padding 0..2, dilation 1..2, groups among the common divisors, batch 1..3,
/// small inputs including ones where the window barely fits. Per-axis values
/// are drawn independently, so `(H + 2p - d(k-1) - 1) % stride != 0` and
/// stride > 1 with groups are covered.
pub fn valid_case() -> impl Strategy<Value = Case> {
    (1usize..=6, 1usize..=6, 0usize..8)
        .prop_flat_map(|(cin, cout, gsel)| {
            let common: Vec<usize> = divisors(cin)
                .into_iter()
                .filter(|d| cout % d == 0)
                .collect();
            let groups = common[gsel % common.len()];
            (
                Just((cin, cout, groups)),
                [1usize..=5, 1usize..=5],
                [1usize..=3, 1usize..=3],
                [0usize..=2, 0usize..=2],
                [1usize..=2, 1usize..=2],
                1usize..=3,
                [0usize..=4, 0usize..=4],
                any::<bool>(),
                0u8..3,
                any::<u64>(),
            )
        })
        .prop_map(
            |((cin, cout, groups), k, st, p, d, batch, extra, bias, layout, seed)| {
                let spec = Conv2dSpec {
                    in_channels: cin,
                    out_channels: cout,
                    kernel: k,
                    stride: st,
                    padding: p,
                    dilation: d,
                    groups,
                };
                Case {
                    spec,
                    batch,
                    h: extent(k[0], d[0], p[0], extra[0]),
                    w: extent(k[1], d[1], p[1], extra[1]),
                    bias,
                    layout,
                    seed,
                }
            },
        )
}

/// Depthwise cases (`groups == C_in`, multiplier 1..3), the kernel the
/// generic strategy reaches least often.
pub fn depthwise_case() -> impl Strategy<Value = Case> {
    (
        2usize..=5,
        1usize..=3,
        [1usize..=5, 1usize..=5],
        [1usize..=3, 1usize..=3],
        [0usize..=2, 0usize..=2],
        [1usize..=2, 1usize..=2],
        1usize..=3,
        [0usize..=12, 0usize..=12],
        any::<bool>(),
        0u8..3,
        any::<u64>(),
    )
        .prop_map(
            |(c, m, k, st, p, d, batch, extra, bias, layout, seed)| Case {
                spec: Conv2dSpec {
                    in_channels: c,
                    out_channels: c * m,
                    kernel: k,
                    stride: st,
                    padding: p,
                    dilation: d,
                    groups: c,
                },
                batch,
                h: extent(k[0], d[0], p[0], extra[0]),
                w: extent(k[1], d[1], p[1], extra[1]),
                bias,
                layout,
                seed,
            },
        )
}

/// Depthwise cases of stride 1 whose output rows are as wide as the input's
/// (`2*pW == dW*(kW - 1)`: odd kernel widths with "same" padding), the
/// shapes of the masked AVX-512 kernel: 1x1, 3x3 and 5x5 widths, any
/// kernel height and row padding, dilation 1..2, planes from one vector of
/// 16 lanes to several, widths that do and do not divide 16.
pub fn same_width_depthwise_case() -> impl Strategy<Value = Case> {
    (
        2usize..=4,
        1usize..=3,
        (1usize..=5, 0usize..=2),
        (0usize..=2, 0usize..=2),
        [1usize..=2, 1usize..=2],
        1usize..=3,
        (0usize..=20, 1usize..=40),
        any::<bool>(),
        0u8..3,
        any::<u64>(),
    )
        .prop_map(
            |(c, m, (kh, half), (ph, extra_h), d, batch, (extra, w), bias, layout, seed)| {
                let kw = 2 * half + 1;
                Case {
                    spec: Conv2dSpec {
                        in_channels: c,
                        out_channels: c * m,
                        kernel: [kh, kw],
                        stride: [1, 1],
                        padding: [ph, half * d[1]],
                        dilation: d,
                        groups: c,
                    },
                    batch,
                    h: extent(kh, d[0], ph, extra_h + extra),
                    w,
                    bias,
                    layout,
                    seed,
                }
            },
        )
}

/// 3x3 stride-2 cases on images wide enough for the direct kernel on
/// phase-split bands (at least 16 output columns), with
/// odd and even sizes, padding 0..2, groups and a batch of 1..3.
pub fn stride2_case() -> impl Strategy<Value = Case> {
    (1usize..=6, 1usize..=6, 0usize..8)
        .prop_flat_map(|(cin, cout, gsel)| {
            let common: Vec<usize> = divisors(cin)
                .into_iter()
                .filter(|d| cout % d == 0)
                .collect();
            (
                Just((cin, cout, common[gsel % common.len()])),
                0usize..=2,
                1usize..=3,
                3usize..=12,
                33usize..=70,
                any::<bool>(),
                0u8..3,
                any::<u64>(),
            )
        })
        .prop_map(
            |((cin, cout, groups), p, batch, h, w, bias, layout, seed)| Case {
                spec: Conv2dSpec::new(cin, cout, 3)
                    .stride(2)
                    .padding(p)
                    .groups(groups),
                batch,
                h,
                w,
                bias,
                layout,
                seed,
            },
        )
}

/// Uniform values in `[-1, 1)` of the given shape.
pub fn rand4<T: Element>(shape: [usize; 4], seed: u64) -> Array4<T> {
    Tensor::<T>::rand_uniform(&shape, -1.0, 1.0, seed)
        .expect("valid range")
        .into_array()
        .into_dimensionality::<Ix4>()
        .expect("rank 4")
}

/// Storage for an array that will be viewed with non-standard strides.
pub enum Stored<T> {
    Plain(Array4<T>),
    /// Twice as wide; the view takes every other column.
    Strided(Array4<T>),
    /// Stored as `[3, 2, 0, 1]`-permuted; the view permutes back.
    Permuted(Array4<T>),
}

impl<T: Element> Stored<T> {
    pub fn new(a: &Array4<T>, layout: u8) -> Self {
        match layout {
            1 => {
                let (n, c, h, w) = a.dim();
                let mut big = Array4::<T>::from_elem((n, c, h, 2 * w), T::of_f64(f64::NAN));
                big.slice_mut(s![.., .., .., ..;2]).assign(a);
                Stored::Strided(big)
            }
            2 => Stored::Permuted(
                a.view()
                    .permuted_axes([2, 3, 1, 0])
                    .as_standard_layout()
                    .into_owned(),
            ),
            _ => Stored::Plain(a.clone()),
        }
    }

    pub fn view(&self) -> ArrayView4<'_, T> {
        match self {
            Stored::Plain(a) => a.view(),
            Stored::Strided(big) => big.slice(s![.., .., .., ..;2]),
            Stored::Permuted(p) => p.view().permuted_axes([3, 2, 0, 1]),
        }
    }
}

/// Operands of a case.
pub struct Operands<T> {
    pub x: Array4<T>,
    pub w: Array4<T>,
    pub b: Option<ndarray::Array1<T>>,
}

pub fn operands<T: Element>(c: &Case) -> Operands<T> {
    let x = rand4::<T>([c.batch, c.spec.in_channels, c.h, c.w], c.seed);
    let w = rand4::<T>(c.spec.weight_shape(), c.seed.wrapping_add(1));
    let b = c.bias.then(|| {
        rand4::<T>([1, 1, 1, c.spec.out_channels], c.seed.wrapping_add(2))
            .into_shape_with_order(c.spec.out_channels)
            .expect("1-D")
    });
    Operands { x, w, b }
}

/// Largest `|a - b| / (1 + |b|)` over two arrays of the same shape.
pub fn max_rel_err<T: Element, D: ndarray::Dimension>(
    a: &ndarray::Array<T, D>,
    b: &ndarray::Array<T, D>,
) -> f64 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x.as_f64() - y.as_f64()).abs() / (1.0 + y.as_f64().abs()))
        .fold(0.0, f64::max)
}

/// The kernel builds this machine runs, each to be compared with the
/// reference (see `gradlab_conv::with_isa`); prints once which builds are
/// skipped because the CPU cannot run them.
pub fn builds() -> Vec<Isa> {
    static NOTE: std::sync::Once = std::sync::Once::new();
    let available = Isa::available();
    NOTE.call_once(|| {
        for isa in Isa::ALL.into_iter().filter(|i| !available.contains(i)) {
            eprintln!(
                "note: this CPU cannot run the {isa} build of the kernels; its tests are skipped"
            );
        }
    });
    available
}
