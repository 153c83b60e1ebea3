//! The fast kernels against the naive oracle, in f32 and f64, over random
//! valid specs, operand layouts and thread counts.

use crate::common;

use common::{
    depthwise_case, max_rel_err, operands, same_width_depthwise_case, stride2_case, valid_case,
    Case, Stored,
};
use gradlab_conv::{
    conv2d, conv2d_backward, conv2d_backward_params, conv2d_gradients, reference, with_isa,
    with_row_tiles, Conv2dSpec, ConvKind, GradsWanted, Isa,
};
use gradlab_tensor::Element;
use ndarray::Array4;
use proptest::prelude::*;

/// Runs reference forward and backward on a case, then the fast kernels
/// under every build this machine runs, and returns per build the largest
/// relative error of output, input, weight and bias gradients.
fn compare<T: Element>(c: &Case) -> Vec<(Isa, [f64; 4])> {
    let ops = operands::<T>(c);
    let xs = Stored::new(&ops.x, c.layout);
    let ws = Stored::new(&ops.w, c.layout);
    let (x, w) = (xs.view(), ws.view());
    let b = ops.b.as_ref().map(|b| b.view());
    let slow = reference::conv2d(x, w, b, &c.spec).expect("valid case");
    // Upstream gradient: random, and laid out like the other operands.
    let dy = common::rand4::<T>(
        [
            slow.shape()[0],
            slow.shape()[1],
            slow.shape()[2],
            slow.shape()[3],
        ],
        c.seed.wrapping_add(3),
    );
    let dys = Stored::new(&dy, c.layout);
    let gs = reference::conv2d_backward(x, w, dys.view(), &c.spec).expect("valid case");
    common::builds()
        .into_iter()
        .map(|isa| {
            let some = |input, bias| {
                let wanted = GradsWanted { input, bias };
                conv2d_gradients(x, w, dys.view(), &c.spec, wanted).expect("valid case")
            };
            let (fast, gf, gp, no_bias, weight_only) = with_isa(isa, || {
                (
                    conv2d(x, w, b, &c.spec).expect("valid case"),
                    conv2d_backward(x, w, dys.view(), &c.spec).expect("valid case"),
                    conv2d_backward_params(x, w, dys.view(), &c.spec).expect("valid case"),
                    some(true, false),
                    some(false, false),
                )
            })
            .expect("an available build");
            // Without the input or bias gradient, the others are the same bits.
            assert_eq!(gp.weight, gf.weight, "{isa}: params-only weight gradient");
            assert_eq!(gp.bias, gf.bias, "{isa}: params-only bias gradient");
            assert_eq!(
                no_bias.input.as_ref(),
                Some(&gf.input),
                "{isa}: input, no bias"
            );
            assert_eq!(no_bias.weight, gf.weight, "{isa}: weight, no bias");
            assert_eq!(weight_only.weight, gf.weight, "{isa}: weight alone");
            assert!(no_bias.bias.is_none() && weight_only.bias.is_none());
            assert!(weight_only.input.is_none(), "{isa}: input not wanted");
            let errs = [
                max_rel_err(&fast, &slow),
                max_rel_err(&gf.input, &gs.input),
                max_rel_err(&gf.weight, &gs.weight),
                max_rel_err(&gf.bias, &gs.bias),
            ];
            (isa, errs)
        })
        .collect()
}

fn check(results: Vec<(Isa, [f64; 4])>, tol: f64) -> Result<(), TestCaseError> {
    let names = ["output", "grad input", "grad weight", "grad bias"];
    for (isa, errs) in results {
        for (e, name) in errs.iter().zip(names) {
            prop_assert!(
                *e <= tol,
                "{} ({} build) differs from the reference by {:e} (> {:e})",
                name,
                isa,
                e,
                tol
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    #[test]
    fn fast_equals_reference_f64(c in valid_case()) {
        check(compare::<f64>(&c), 1e-10)?;
    }

    #[test]
    fn fast_equals_reference_f32(c in valid_case()) {
        check(compare::<f32>(&c), 1e-4)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn depthwise_equals_reference_f64(c in depthwise_case()) {
        prop_assert_eq!(c.spec.kind(), ConvKind::Depthwise);
        check(compare::<f64>(&c), 1e-10)?;
    }

    #[test]
    fn depthwise_equals_reference_f32(c in depthwise_case()) {
        check(compare::<f32>(&c), 1e-4)?;
    }

    #[test]
    fn same_width_depthwise_equals_reference_f32(c in same_width_depthwise_case()) {
        prop_assert_eq!(c.spec.kind(), ConvKind::Depthwise);
        check(compare::<f32>(&c), 1e-4)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stride2_direct_equals_reference_f64(c in stride2_case()) {
        check(compare::<f64>(&c), 1e-10)?;
    }

    #[test]
    fn stride2_direct_equals_reference_f32(c in stride2_case()) {
        check(compare::<f32>(&c), 1e-4)?;
    }
}

/// Fixed cases named by the bugs they guard against.
fn named_cases() -> Vec<(&'static str, Case)> {
    let case = |spec: Conv2dSpec, batch, h, w, layout| Case {
        spec,
        batch,
        h,
        w,
        bias: true,
        layout,
        seed: 7,
    };
    vec![
        // (H + 2p - d(k-1) - 1) % stride != 0: the last rows/columns are dropped.
        (
            "remainder rows",
            case(Conv2dSpec::new(3, 4, 3).stride(2), 2, 8, 10, 0),
        ),
        (
            "remainder with padding",
            case(Conv2dSpec::new(2, 3, 4).stride(3).padding(1), 1, 9, 7, 0),
        ),
        // stride > 1 with groups.
        (
            "strided groups",
            case(
                Conv2dSpec::new(6, 4, 3).stride(2).padding(1).groups(2),
                3,
                9,
                9,
                0,
            ),
        ),
        (
            "strided depthwise",
            case(
                Conv2dSpec::new(4, 8, 3).stride(2).padding(1).groups(4),
                2,
                11,
                9,
                0,
            ),
        ),
        // Non-contiguous weight, input and grad_output views.
        (
            "strided views",
            case(Conv2dSpec::new(3, 5, 3).padding(1), 2, 6, 7, 1),
        ),
        (
            "permuted views",
            case(
                Conv2dSpec::new(4, 6, 3).padding(2).dilation(2).groups(2),
                2,
                7,
                6,
                2,
            ),
        ),
        (
            "permuted pointwise",
            case(Conv2dSpec::new(5, 3, 1), 2, 4, 6, 2),
        ),
        // Pointwise off the direct path (stride, padding).
        (
            "pointwise stride 2",
            case(Conv2dSpec::new(3, 4, 1).stride(2), 2, 7, 5, 0),
        ),
        (
            "pointwise padding",
            case(Conv2dSpec::new(3, 4, 1).padding(1), 1, 3, 3, 0),
        ),
        (
            "grouped pointwise",
            case(Conv2dSpec::new(6, 9, 1).groups(3), 2, 5, 5, 0),
        ),
        // Window exactly as large as the padded input.
        (
            "window fills input",
            case(Conv2dSpec::new(2, 2, 5).padding(1), 1, 3, 3, 0),
        ),
        // Wide images: several bands of output rows per image.
        (
            "many bands",
            case(Conv2dSpec::new(2, 3, 3).padding(1), 2, 70, 40, 0),
        ),
        (
            "many bands depthwise",
            case(Conv2dSpec::new(3, 3, 3).padding(1).groups(3), 1, 40, 70, 1),
        ),
        // Stride 1 on images wide enough for the wide column layout: kernel
        // sizes, dilation, no padding, groups, channel counts that are not
        // multiples of any register tile, and more than 16 output channels
        // per group.
        (
            "wide 3x3",
            case(Conv2dSpec::new(5, 7, 3).padding(1), 2, 19, 33, 0),
        ),
        (
            "wide dilated",
            case(Conv2dSpec::new(3, 6, 3).padding(2).dilation(2), 1, 9, 41, 1),
        ),
        (
            "wide 5x5 no padding",
            case(Conv2dSpec::new(4, 5, 5), 2, 8, 37, 2),
        ),
        (
            "wide grouped",
            case(Conv2dSpec::new(6, 10, 3).padding(1).groups(2), 2, 6, 17, 0),
        ),
        (
            "wide asymmetric kernel",
            case(
                Conv2dSpec {
                    kernel: [1, 3],
                    padding: [0, 1],
                    ..Conv2dSpec::new(3, 4, 1)
                },
                1,
                7,
                23,
                0,
            ),
        ),
        (
            "wide many channels",
            case(Conv2dSpec::new(20, 27, 3).padding(1), 2, 5, 16, 0),
        ),
        // 3x3 stride 2 on images wide enough for the direct kernel on
        // phase-split bands: odd and even widths, no padding, groups, more
        // than one band of output rows.
        (
            "stride 2 direct",
            case(Conv2dSpec::new(5, 7, 3).stride(2).padding(1), 2, 9, 33, 0),
        ),
        (
            "stride 2 direct even, no padding",
            case(Conv2dSpec::new(4, 6, 3).stride(2).groups(2), 2, 8, 36, 1),
        ),
        (
            "stride 2 direct many bands",
            case(Conv2dSpec::new(3, 4, 3).stride(2).padding(2), 1, 70, 64, 2),
        ),
        // Stride 1 on images too narrow for the wide column layout, with
        // enough channels for the channel-vectorised kernel: output channels
        // not multiples of its tile, 16x16 without padding, groups and
        // dilation, more than one band of output rows, batch 1.
        (
            "channels 8x8",
            case(Conv2dSpec::new(36, 48, 3).padding(1), 1, 8, 8, 0),
        ),
        (
            "channels 16x16 no padding",
            case(Conv2dSpec::new(33, 48, 3), 2, 16, 16, 1),
        ),
        (
            "channels grouped dilated",
            case(
                Conv2dSpec::new(64, 96, 3).padding(2).dilation(2).groups(2),
                1,
                8,
                9,
                2,
            ),
        ),
        (
            "channels many bands",
            case(Conv2dSpec::new(32, 48, 3).padding(1), 2, 40, 8, 0),
        ),
        // 3x3 stride 2 with enough channels for the channel-vectorised
        // kernel: even and odd sizes, no padding, groups and dilation,
        // several bands of output rows with per-image tasks.
        (
            "channels stride 2",
            case(
                Conv2dSpec::new(32, 48, 3).stride(2).padding(1),
                2,
                16,
                16,
                0,
            ),
        ),
        (
            "channels stride 2 odd, no padding",
            case(Conv2dSpec::new(33, 48, 3).stride(2), 1, 17, 19, 1),
        ),
        (
            "channels stride 2 grouped dilated",
            case(
                Conv2dSpec::new(64, 96, 3)
                    .stride(2)
                    .padding(2)
                    .dilation(2)
                    .groups(2),
                1,
                17,
                16,
                2,
            ),
        ),
        (
            "channels stride 2, per-image tasks, many bands",
            case(
                Conv2dSpec::new(32, 32, 3).stride(2).padding(1),
                8,
                40,
                16,
                0,
            ),
        ),
        // Batch larger than the number of chunks of the weight gradient.
        (
            "large batch",
            case(Conv2dSpec::new(3, 4, 3).padding(1), 37, 5, 6, 0),
        ),
        // Batches of 8 and more run one forward task per image, which zeroes
        // its own output first: every route of the forward pass.
        (
            "per-image tasks, wide rows",
            case(Conv2dSpec::new(6, 16, 3).padding(1), 9, 18, 17, 0),
        ),
        (
            "per-image tasks, channels",
            case(Conv2dSpec::new(36, 48, 3).padding(1), 8, 8, 8, 1),
        ),
        (
            "per-image tasks, stride 2",
            case(Conv2dSpec::new(5, 7, 3).stride(2).padding(1), 9, 9, 33, 2),
        ),
        (
            "per-image tasks, pointwise",
            case(Conv2dSpec::new(8, 12, 1), 9, 5, 6, 0),
        ),
        // A weight so large that the weight gradient uses fewer batch chunks.
        (
            "large weight",
            case(Conv2dSpec::new(700, 700, 3), 4, 3, 3, 0),
        ),
        // A single input channel (groups == C_in == 1 is a standard convolution).
        (
            "one input channel",
            case(Conv2dSpec::new(1, 4, 3), 2, 5, 5, 0),
        ),
    ]
}

#[test]
fn named_edge_cases_equal_reference() {
    for (name, c) in named_cases() {
        for (isa, e64) in compare::<f64>(&c) {
            assert!(
                e64.iter().all(|&e| e <= 1e-10),
                "{name} (f64, {isa}): {e64:?}"
            );
        }
        for (isa, e32) in compare::<f32>(&c) {
            assert!(
                e32.iter().all(|&e| e <= 1e-4),
                "{name} (f32, {isa}): {e32:?}"
            );
        }
    }
}

#[test]
fn empty_batch_and_empty_planes() {
    // No images: empty output, zero weight and bias gradients.
    let spec = Conv2dSpec::new(2, 3, 3).padding(1);
    let x = Array4::<f32>::zeros((0, 2, 4, 4));
    let w = Array4::<f32>::ones(spec.weight_shape());
    let y = conv2d(x.view(), w.view(), None, &spec).unwrap();
    assert_eq!(y.shape(), &[0, 3, 4, 4]);
    let g = conv2d_backward(x.view(), w.view(), y.view(), &spec).unwrap();
    assert!(g.weight.iter().all(|&v| v == 0.0));
    // Zero-height input that padding makes large enough: only the bias remains.
    for spec in [
        Conv2dSpec::new(2, 2, 1).padding(1),
        Conv2dSpec::new(2, 2, 1).padding(1).groups(2),
    ] {
        let x = Array4::<f64>::zeros((1, 2, 0, 3));
        let w = Array4::<f64>::ones(spec.weight_shape());
        let b = ndarray::Array1::from_vec(vec![1.5, -2.0]);
        let fast = conv2d(x.view(), w.view(), Some(b.view()), &spec).unwrap();
        let slow = reference::conv2d(x.view(), w.view(), Some(b.view()), &spec).unwrap();
        assert_eq!(fast, slow);
        let gf = conv2d_backward(x.view(), w.view(), fast.view(), &spec).unwrap();
        let gs = reference::conv2d_backward(x.view(), w.view(), fast.view(), &spec).unwrap();
        assert_eq!(gf, gs);
    }
}

/// The same inputs give bit-identical results with 1, 2 and 3 threads, in
/// every build, on images below the direct kernel's width threshold (12x13:
/// im2col + GEMM) and above it (18x17: `direct::wide_width` wants at most
/// one junk column in 8, so padded 3x3 stride-1 outputs of 16 columns and
/// more take the direct kernel, forward, input gradient and weight gradient,
/// and 18 rows make two bands of output rows; 9x34 also takes the direct
/// forward of the 3x3 stride-2 spec, 17 output columns). 32->48 channels
/// on 8x8 and 12x13 images take the channel-vectorised kernel (forward and
/// input gradient), and so does its stride-2 form on 18x17 images (9x9
/// outputs).
#[test]
fn bit_identical_across_thread_counts() {
    let specs = [
        Conv2dSpec::new(32, 48, 3).padding(1),
        Conv2dSpec::new(32, 48, 3).stride(2).padding(1),
        Conv2dSpec::new(6, 8, 3).padding(1),
        Conv2dSpec::new(6, 8, 3).stride(2).padding(1).groups(2),
        Conv2dSpec::new(8, 12, 1),
        Conv2dSpec::new(6, 12, 3).padding(1).groups(6),
    ];
    for isa in common::builds() {
        for (spec, (h, w)) in specs
            .iter()
            .flat_map(|s| [(12, 13), (18, 17), (9, 34), (8, 8)].map(|hw| (s, hw)))
        {
            let x = common::rand4::<f32>([21, spec.in_channels, h, w], 1);
            let wt = common::rand4::<f32>(spec.weight_shape(), 2);
            let [oh, ow] = spec.output_size(h, w).unwrap();
            let dy = common::rand4::<f32>([21, spec.out_channels, oh, ow], 3);
            let run = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| {
                        with_isa(isa, || {
                            let y = conv2d(x.view(), wt.view(), None, spec).unwrap();
                            let g = conv2d_backward(x.view(), wt.view(), dy.view(), spec).unwrap();
                            (y, g)
                        })
                        .expect("an available build")
                    })
            };
            let one = run(1);
            for threads in [2, 3] {
                let other = run(threads);
                let what = format!("{threads} threads, {isa} build, {h}x{w}, {spec:?}");
                assert!(bits_equal(&one.0, &other.0), "forward differs with {what}");
                assert!(
                    bits_equal(&one.1.input, &other.1.input),
                    "grad input differs with {what}"
                );
                assert!(
                    bits_equal(&one.1.weight, &other.1.weight),
                    "grad weight differs with {what}"
                );
                assert!(
                    bits_equal(&one.1.bias, &other.1.bias),
                    "grad bias differs with {what}"
                );
            }
        }
    }
}

fn bits_equal<D: ndarray::Dimension>(
    a: &ndarray::Array<f32, D>,
    b: &ndarray::Array<f32, D>,
) -> bool {
    a.shape() == b.shape() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
}

/// Every build gives results within rounding of the others, and the plain
/// build is what runs when asked for even on a CPU with vector units.
#[test]
fn builds_agree_and_are_selectable() {
    assert!(Isa::available().contains(&Isa::Plain));
    assert_eq!(Isa::available().last(), Some(&Isa::best()));
    for isa in Isa::available() {
        assert_eq!(with_isa(isa, Isa::current).unwrap(), isa);
        // Nested overrides restore the outer one.
        let (inner, outer) = with_isa(isa, || {
            (with_isa(Isa::Plain, Isa::current).unwrap(), Isa::current())
        })
        .unwrap();
        assert_eq!((inner, outer), (Isa::Plain, isa));
    }
    for isa in Isa::ALL.into_iter().filter(|i| !i.is_supported()) {
        assert!(matches!(
            with_isa(isa, || ()),
            Err(gradlab_conv::ConvError::IsaUnsupported { .. })
        ));
    }
    assert_eq!("AVX512".parse::<Isa>().unwrap(), Isa::Avx512);
    assert!(matches!(
        "sse2".parse::<Isa>(),
        Err(gradlab_conv::ConvError::UnknownIsa { .. })
    ));
}

/// The row-tiled kernel (f32, AVX-512 build, 3x3 stride 1) on the ResNet
/// layers it was written for and on shapes that reach its edges: a last
/// row tile with fewer rows, outputs of 1, 2 and 3 vectors with a partial
/// last one, groups, channels not a multiple of 4. Forward and input
/// gradient (a forward pass on the flipped kernel) against the reference,
/// and against the wide kernel it replaces.
#[test]
fn row_tiled_kernel_equals_the_reference() {
    if !Isa::Avx512.is_supported() {
        eprintln!(
            "note: this CPU cannot run the AVX-512 build; the row-tiled kernel is not tested"
        );
        return;
    }
    let cases = [
        (Conv2dSpec::new(16, 16, 3).padding(1), 3, 32, 32),
        (Conv2dSpec::new(32, 32, 3).padding(1), 2, 16, 16),
        (Conv2dSpec::new(6, 7, 3).padding(1), 2, 18, 17),
        (Conv2dSpec::new(5, 9, 3).padding(1).groups(1), 2, 23, 40),
        (Conv2dSpec::new(8, 12, 3).padding(1).groups(2), 2, 13, 31),
        (Conv2dSpec::new(3, 16, 3).padding(1), 3, 32, 32),
    ];
    for (spec, n, h, w) in cases {
        let x = common::rand4::<f32>([n, spec.in_channels, h, w], 11);
        let wt = common::rand4::<f32>(spec.weight_shape(), 12);
        let [oh, ow] = spec.output_size(h, w).unwrap();
        let dy = common::rand4::<f32>([n, spec.out_channels, oh, ow], 13);
        let want = reference::conv2d(x.view(), wt.view(), None, &spec).unwrap();
        let want_dx = reference::conv2d_backward(x.view(), wt.view(), dy.view(), &spec)
            .unwrap()
            .input;
        let run = |rows: bool| {
            with_isa(Isa::Avx512, || {
                with_row_tiles(rows, || {
                    let y = conv2d(x.view(), wt.view(), None, &spec).unwrap();
                    let g = conv2d_backward(x.view(), wt.view(), dy.view(), &spec).unwrap();
                    (y, g.input)
                })
            })
            .unwrap()
        };
        let (rows, wide) = (run(true), run(false));
        let what = format!("{spec:?} on {h}x{w}");
        assert!(max_rel_err(&rows.0, &want) <= 1e-4, "forward, {what}");
        assert!(
            max_rel_err(&rows.1, &want_dx) <= 1e-4,
            "input gradient, {what}"
        );
        assert!(
            max_rel_err(&rows.0, &wide.0) <= 1e-5,
            "forward against the wide kernel, {what}"
        );
    }
}
