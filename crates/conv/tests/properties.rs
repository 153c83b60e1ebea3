//! Behavioural properties: channel mixing measured by perturbation, bad specs
//! and shapes rejected with errors (never panics), PyTorch's error wording.

use crate::common;

use common::{rand4, valid_case};
use gradlab_conv::{
    conv2d, conv2d_backward, conv2d_backward_params, reference, Conv2dSpec, ConvError, ConvKind,
};
use ndarray::{s, Array1, Array4};
use proptest::prelude::*;

/// Output channels that change when input channel `c` of image 0 is perturbed
/// by random noise.
fn channels_touched(spec: &Conv2dSpec, h: usize, w: usize, c: usize, seed: u64) -> Vec<usize> {
    let x = rand4::<f64>([2, spec.in_channels, h, w], seed);
    let wt = rand4::<f64>(spec.weight_shape(), seed + 1);
    let mut x2 = x.clone();
    let noise = rand4::<f64>([1, 1, h, w], seed + 2);
    let mut plane = x2.slice_mut(s![0, c, .., ..]);
    plane += &noise.slice(s![0, 0, .., ..]);
    let y1 = conv2d(x.view(), wt.view(), None, spec).unwrap();
    let y2 = conv2d(x2.view(), wt.view(), None, spec).unwrap();
    // Image 1 is untouched.
    assert_eq!(y1.slice(s![1, .., .., ..]), y2.slice(s![1, .., .., ..]));
    (0..spec.out_channels)
        .filter(|&co| {
            let a = y1.slice(s![0, co, .., ..]);
            let b = y2.slice(s![0, co, .., ..]);
            a.iter().zip(b.iter()).any(|(p, q)| (p - q).abs() > 1e-9)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Standard and pointwise convolutions mix channels: one input channel
    /// reaches every output channel.
    #[test]
    fn standard_and_pointwise_mix_all_channels(
        cin in 1usize..=5, cout in 1usize..=6, k in prop_oneof![Just(1usize), 2usize..=4],
        pad in 0usize..=1, c_sel in 0usize..5, seed in 0u64..1000,
    ) {
        let spec = Conv2dSpec::new(cin, cout, k).padding(pad);
        prop_assert_eq!(spec.kind(), if k == 1 { ConvKind::Pointwise } else { ConvKind::Standard });
        let touched = channels_touched(&spec, 6, 5, c_sel % cin, seed);
        prop_assert_eq!(touched, (0..cout).collect::<Vec<_>>());
    }

    /// Depthwise convolutions do not: input channel `c` reaches exactly its
    /// `multiplier` output channels `c*m .. (c+1)*m`.
    #[test]
    fn depthwise_touches_only_its_multiplier_channels(
        cin in 2usize..=6, m in 1usize..=3, k in 1usize..=4, pad in 0usize..=1,
        c_sel in 0usize..6, seed in 0u64..1000,
    ) {
        let spec = Conv2dSpec::new(cin, cin * m, k).padding(pad).groups(cin);
        prop_assert_eq!(spec.kind(), ConvKind::Depthwise);
        let c = c_sel % cin;
        let touched = channels_touched(&spec, 6, 5, c, seed);
        prop_assert_eq!(touched, (c * m..(c + 1) * m).collect::<Vec<_>>());
    }

    /// Grouped convolutions mix within the block only.
    #[test]
    fn grouped_touches_its_block(
        g in 2usize..=3, ci in 2usize..=3, co in 1usize..=3, k in 1usize..=3,
        c_sel in 0usize..9, seed in 0u64..1000,
    ) {
        let spec = Conv2dSpec::new(g * ci, g * co, k).groups(g);
        prop_assert_eq!(spec.kind(), ConvKind::Grouped);
        let c = c_sel % (g * ci);
        let block = c / ci;
        let touched = channels_touched(&spec, 5, 5, c, seed);
        prop_assert_eq!(touched, (block * co..(block + 1) * co).collect::<Vec<_>>());
    }
}

/// One way for a call to be wrong, applied to a valid case.
#[derive(Debug, Clone)]
enum Defect {
    ZeroStride(usize),
    ZeroDilation(usize),
    ZeroKernel(usize),
    ZeroGroups,
    GroupsNotDividing,
    InputChannels(usize),
    WeightShape(usize, usize),
    KernelTooLarge,
    BiasLength(usize),
    GradOutputShape(usize, usize),
}

fn defect() -> impl Strategy<Value = Defect> {
    prop_oneof![
        (0usize..2).prop_map(Defect::ZeroStride),
        (0usize..2).prop_map(Defect::ZeroDilation),
        (0usize..2).prop_map(Defect::ZeroKernel),
        Just(Defect::ZeroGroups),
        Just(Defect::GroupsNotDividing),
        (1usize..4).prop_map(Defect::InputChannels),
        (0usize..4, 1usize..3).prop_map(|(a, d)| Defect::WeightShape(a, d)),
        Just(Defect::KernelTooLarge),
        (1usize..3).prop_map(Defect::BiasLength),
        (0usize..4, 1usize..3).prop_map(|(a, d)| Defect::GradOutputShape(a, d)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every defect gives the expected error from the fast kernels and the
    /// reference alike (the same error), never a panic.
    #[test]
    fn bad_specs_and_shapes_are_errors(c in valid_case(), d in defect()) {
        let mut spec = c.spec;
        let mut xshape = [c.batch, spec.in_channels, c.h, c.w];
        let mut wshape = spec.weight_shape();
        let mut blen = spec.out_channels;
        let [oh, ow] = spec.output_size(c.h, c.w).unwrap();
        let mut gshape = [c.batch, spec.out_channels, oh, ow];
        let mut forward_defect = true; // false when only grad_output is wrong
        let mut use_bias = c.bias;
        match d {
            Defect::ZeroStride(a) => spec.stride[a] = 0,
            Defect::ZeroDilation(a) => spec.dilation[a] = 0,
            Defect::ZeroKernel(a) => { spec.kernel[a] = 0; wshape[2 + a] = 0; }
            Defect::ZeroGroups => spec.groups = 0,
            Defect::GroupsNotDividing => {
                // A group count that divides neither channel count.
                spec.groups = spec.in_channels.max(spec.out_channels) + 1;
            }
            Defect::InputChannels(delta) => xshape[1] += delta,
            Defect::WeightShape(a, delta) => wshape[a] += delta,
            Defect::KernelTooLarge => {
                let eff = spec.dilation[0] * (spec.kernel[0] - 1) + 1;
                let shrink = c.h + 2 * spec.padding[0] + 1 - eff; // > 0 as the case is valid
                spec.kernel[0] += shrink.div_ceil(spec.dilation[0]);
                wshape[2] = spec.kernel[0];
            }
            Defect::BiasLength(delta) => { blen += delta; use_bias = true; }
            Defect::GradOutputShape(a, delta) => { gshape[a] += delta; forward_defect = false; }
        }
        let x = Array4::<f64>::zeros(xshape);
        let w = Array4::<f64>::zeros(wshape);
        let b = Array1::<f64>::zeros(blen);
        let bias = use_bias.then(|| b.view());
        let dy = Array4::<f64>::zeros(gshape);
        let fast = conv2d(x.view(), w.view(), bias, &spec);
        let slow = reference::conv2d(x.view(), w.view(), bias, &spec);
        prop_assert_eq!(fast.is_ok(), !forward_defect);
        if forward_defect {
            let err = fast.unwrap_err();
            prop_assert_eq!(Err::<(), _>(err.clone()), slow.map(|_| ()));
            let expected_kind = match d {
                Defect::ZeroStride(_) | Defect::ZeroDilation(_) | Defect::ZeroKernel(_) | Defect::ZeroGroups =>
                    matches!(err, ConvError::NonPositive { .. }),
                Defect::GroupsNotDividing => matches!(err, ConvError::GroupsNotDivisible { .. }),
                Defect::InputChannels(_) => matches!(err, ConvError::InputChannels { .. }),
                Defect::WeightShape(..) => matches!(err, ConvError::WeightShape { .. }),
                Defect::KernelTooLarge => matches!(err, ConvError::KernelTooLarge { .. }),
                Defect::BiasLength(_) => matches!(err, ConvError::BiasShape { .. }),
                Defect::GradOutputShape(..) => false,
            };
            prop_assert!(expected_kind, "{:?} gave {:?}", d, err);
            prop_assert!(!err.to_string().is_empty());
        }
        // Backward: every defect except the bias one is an error too.
        let gf = conv2d_backward(x.view(), w.view(), dy.view(), &spec);
        let gs = reference::conv2d_backward(x.view(), w.view(), dy.view(), &spec);
        let gp = conv2d_backward_params(x.view(), w.view(), dy.view(), &spec);
        prop_assert_eq!(gp.is_ok(), gf.is_ok());
        if matches!(d, Defect::BiasLength(_)) {
            prop_assert!(gf.is_ok() && gs.is_ok());
        } else {
            let err = gf.unwrap_err();
            prop_assert_eq!(Err::<(), _>(err.clone()), gs.map(|_| ()));
            if matches!(d, Defect::GradOutputShape(..)) {
                let is_grad_output_error = matches!(err, ConvError::GradOutputShape { .. });
                prop_assert!(is_grad_output_error, "{:?}", err);
            }
        }
        // Spec-level defects are caught without any array.
        if matches!(d, Defect::ZeroStride(_) | Defect::ZeroDilation(_) | Defect::ZeroKernel(_)
                     | Defect::ZeroGroups | Defect::GroupsNotDividing) {
            prop_assert!(spec.validate().is_err());
            prop_assert!(spec.output_size(c.h, c.w).is_err());
            prop_assert!(spec.macs(c.batch, c.h, c.w).is_err());
        }
    }

    /// Arbitrary small specs and shapes, valid or not: no panic, and the fast
    /// kernels accept exactly what the reference accepts, with equal results.
    #[test]
    fn arbitrary_inputs_never_panic(
        cin in 0usize..4, cout in 0usize..4, groups in 0usize..4,
        k in [0usize..4, 0usize..4], st in [0usize..3, 0usize..3], p in [0usize..3, 0usize..3],
        d in [0usize..3, 0usize..3], x in [0usize..3, 0usize..4, 0usize..5, 0usize..5],
        wsh in [0usize..4, 0usize..4, 0usize..4, 0usize..4], bias in proptest::option::of(0usize..4),
    ) {
        let spec = Conv2dSpec { in_channels: cin, out_channels: cout, kernel: k, stride: st,
                                padding: p, dilation: d, groups };
        let xa = rand4::<f64>(x, 1);
        let wa = rand4::<f64>(wsh, 2);
        let ba = bias.map(|n| Array1::from_elem(n, 0.25));
        let fast = conv2d(xa.view(), wa.view(), ba.as_ref().map(|b| b.view()), &spec);
        let slow = reference::conv2d(xa.view(), wa.view(), ba.as_ref().map(|b| b.view()), &spec);
        match (&fast, &slow) {
            (Ok(a), Ok(b)) => prop_assert!(common::max_rel_err(a, b) < 1e-10),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            _ => prop_assert!(false, "fast {:?} vs reference {:?}", fast, slow),
        }
        if let Ok(y) = fast {
            let gf = conv2d_backward(xa.view(), wa.view(), y.view(), &spec).unwrap();
            let gs = reference::conv2d_backward(xa.view(), wa.view(), y.view(), &spec).unwrap();
            prop_assert!(common::max_rel_err(&gf.input, &gs.input) < 1e-10);
            prop_assert!(common::max_rel_err(&gf.weight, &gs.weight) < 1e-10);
        }
    }
}

#[test]
fn error_messages_use_pytorch_wording() {
    let spec = Conv2dSpec {
        kernel: [3, 2],
        ..Conv2dSpec::new(4, 6, 3).groups(2)
    };
    let x = Array4::<f32>::zeros((2, 3, 6, 5));
    let w = Array4::<f32>::zeros(spec.weight_shape());
    let err = conv2d(x.view(), w.view(), None, &spec).unwrap_err();
    assert_eq!(
        err.to_string(),
        "conv2d: Given groups=2, weight of size [6, 2, 3, 2], expected input[2, 3, 6, 5] \
         to have 4 channels, but got 3 channels instead"
    );
    let spec = Conv2dSpec::new(1, 1, 5);
    let x = Array4::<f32>::zeros((1, 1, 2, 2));
    let w = Array4::<f32>::zeros(spec.weight_shape());
    let err = conv2d(x.view(), w.view(), None, &spec).unwrap_err();
    assert!(
        err.to_string()
            .contains("Kernel size can't be greater than actual input size"),
        "{err}"
    );
    assert!(Conv2dSpec::new(4, 6, 3)
        .groups(4)
        .validate()
        .unwrap_err()
        .to_string()
        .contains("out_channels must be divisible by groups"));
    assert!(Conv2dSpec::new(4, 4, 3)
        .stride(0)
        .validate()
        .unwrap_err()
        .to_string()
        .contains("non-positive stride"));
}

#[test]
fn outputs_too_large_for_memory_are_errors() {
    // A 1x1 input padded to about 8 million pixels per side: the output
    // would take hundreds of terabytes.
    let x = Array4::<f32>::ones((1, 2, 1, 1));
    for spec in [
        Conv2dSpec::new(2, 2, 1).padding(1 << 22),
        Conv2dSpec::new(2, 2, 1).padding(1 << 22).groups(2),
        Conv2dSpec::new(2, 2, 3).padding(1 << 22),
    ] {
        let w = Array4::<f32>::ones(spec.weight_shape());
        let err = conv2d(x.view(), w.view(), None, &spec).unwrap_err();
        assert!(matches!(err, ConvError::OutOfMemory { .. }), "{err}");
    }
}

#[test]
fn huge_sizes_overflow_into_errors() {
    let spec = Conv2dSpec::new(1, 1, usize::MAX).dilation(2);
    assert!(matches!(spec.validate(), Err(ConvError::Overflow { .. })));
    let spec = Conv2dSpec::new(usize::MAX, usize::MAX, 3);
    assert!(matches!(spec.validate(), Err(ConvError::Overflow { .. })));
    assert_eq!(spec.param_count(true), usize::MAX);
    let spec = Conv2dSpec::new(1, 1, 1).padding(usize::MAX / 2 + 1);
    assert!(matches!(
        spec.output_size(1, 1),
        Err(ConvError::Overflow { .. })
    ));
    let spec = Conv2dSpec::new(1 << 20, 1 << 20, 64);
    assert!(matches!(
        spec.macs(1 << 20, 1 << 16, 1 << 16),
        Err(ConvError::Overflow { .. })
    ));
}
