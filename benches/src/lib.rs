//! Shared helpers for the criterion benches (see `benches/`) and the
//! side-by-side comparison with PyTorch (`peers/`, `examples/peer_conv.rs`).

use gradlab_conv::Conv2dSpec;

/// Images per call in the convolution benches.
pub const CONV_BATCH: usize = 64;

/// The seven benchmarked convolution layers: name, spec, input height and
/// width (square). `peers/torch_conv.py` lists the same layers.
pub fn conv_layers() -> Vec<(&'static str, Conv2dSpec, usize)> {
    vec![
        (
            "a_3x3_16-16_32x32",
            Conv2dSpec::new(16, 16, 3).padding(1),
            32,
        ),
        (
            "b_3x3_32-32_16x16",
            Conv2dSpec::new(32, 32, 3).padding(1),
            16,
        ),
        ("c_3x3_64-64_8x8", Conv2dSpec::new(64, 64, 3).padding(1), 8),
        (
            "d_3x3_16-32_s2_32x32",
            Conv2dSpec::new(16, 32, 3).stride(2).padding(1),
            32,
        ),
        ("e_1x1_64-128_16x16", Conv2dSpec::new(64, 128, 1), 16),
        (
            "f_dw3x3_128_16x16",
            Conv2dSpec::new(128, 128, 3).padding(1).groups(128),
            16,
        ),
        (
            "g_dw3x3_256_8x8",
            Conv2dSpec::new(256, 256, 3).padding(1).groups(256),
            8,
        ),
    ]
}
