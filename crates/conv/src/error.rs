//! The one error type of this crate.

use gradlab_tensor::TensorError;
use thiserror::Error;

/// Everything a convolution or pooling call can reject, with the shapes and
/// values involved. Messages use PyTorch's wording where users search for it.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ConvError {
    /// A size that must be positive (kernel, stride, dilation, channels,
    /// groups) is zero.
    #[error("{op}: non-positive {name} is not supported, got {name}={value:?}")]
    NonPositive {
        /// The operation that was attempted.
        op: &'static str,
        /// The parameter (`"stride"`, `"dilation"`, `"kernel_size"`, ...).
        name: &'static str,
        /// Its value, per axis where it has two.
        value: Vec<usize>,
    },
    /// `in_channels` or `out_channels` is not a multiple of `groups`.
    #[error(
        "{op}: {which} must be divisible by groups, got {which}={channels} and groups={groups}"
    )]
    GroupsNotDivisible {
        /// The operation that was attempted.
        op: &'static str,
        /// `"in_channels"` or `"out_channels"`.
        which: &'static str,
        /// The channel count.
        channels: usize,
        /// The number of groups.
        groups: usize,
    },
    /// The input's channel axis disagrees with the spec and weight.
    #[error(
        "{op}: Given groups={groups}, weight of size {weight:?}, expected input{input:?} \
         to have {expected} channels, but got {got} channels instead"
    )]
    InputChannels {
        /// The operation that was attempted.
        op: &'static str,
        /// The number of groups.
        groups: usize,
        /// Shape of the weight, `[C_out, C_in/groups, kH, kW]`.
        weight: [usize; 4],
        /// Shape of the input, `[N, C, H, W]`.
        input: [usize; 4],
        /// Channels the spec expects.
        expected: usize,
        /// Channels the input has.
        got: usize,
    },
    /// The weight's shape is not `[C_out, C_in/groups, kH, kW]` of the spec.
    #[error("{op}: weight of size {got:?} does not match the spec, which expects a weight of size {expected:?}")]
    WeightShape {
        /// The operation that was attempted.
        op: &'static str,
        /// The shape the spec implies.
        expected: [usize; 4],
        /// The shape given.
        got: [usize; 4],
    },
    /// The bias does not have one element per output channel.
    #[error("{op}: bias of size [{got}] does not match out_channels={expected}")]
    BiasShape {
        /// The operation that was attempted.
        op: &'static str,
        /// Output channels of the spec.
        expected: usize,
        /// Elements in the bias.
        got: usize,
    },
    /// `grad_output` does not have the shape the forward pass produces.
    #[error("{op}: grad_output of size {got:?} does not match the forward output of size {expected:?} (input of size {input:?})")]
    GradOutputShape {
        /// The operation that was attempted.
        op: &'static str,
        /// Shape of the forward output.
        expected: [usize; 4],
        /// Shape given.
        got: [usize; 4],
        /// Shape of the input.
        input: [usize; 4],
    },
    /// The dilated kernel does not fit in the padded input.
    #[error(
        "{op}: Calculated padded input size per channel: ({} x {}). Kernel size: ({} x {}). \
         Kernel size can't be greater than actual input size",
        padded[0], padded[1], kernel[0], kernel[1]
    )]
    KernelTooLarge {
        /// The operation that was attempted.
        op: &'static str,
        /// Padded input size `H + 2*pad`, `W + 2*pad`.
        padded: [usize; 2],
        /// Effective (dilated) kernel size `dil*(k-1)+1` per axis.
        kernel: [usize; 2],
    },
    /// A pooling window whose padding exceeds half of the kernel, so some
    /// windows would see only padding.
    #[error("{op}: pad should be at most half of effective kernel size, but got pad={padding:?}, kernel_size={kernel:?}")]
    PoolPadding {
        /// The operation that was attempted.
        op: &'static str,
        /// The padding per axis.
        padding: [usize; 2],
        /// The kernel per axis.
        kernel: [usize; 2],
    },
    /// A pooling input without pixels (zero height or width).
    #[error(
        "{op}: input of size {input:?} has no pixels to pool; height and width must be positive"
    )]
    EmptyInput {
        /// The operation that was attempted.
        op: &'static str,
        /// Shape of the input.
        input: [usize; 4],
    },
    /// The memory for the result could not be allocated.
    #[error("{op}: not enough memory to allocate {elements} elements")]
    OutOfMemory {
        /// The operation that was attempted.
        op: &'static str,
        /// Number of elements asked for.
        elements: usize,
    },
    /// A size computation overflowed `usize` (or `u64` for MAC counts).
    #[error("{op}: size overflow computing {what}")]
    Overflow {
        /// The operation that was attempted.
        op: &'static str,
        /// What was being computed.
        what: &'static str,
    },
    /// A string that names no kernel build (see [`Isa`](crate::Isa)).
    #[error("unknown kernel build {value:?}: expected one of plain, avx2, avx512")]
    UnknownIsa {
        /// The string given.
        value: String,
    },
    /// A kernel build this CPU cannot run was asked for explicitly
    /// ([`with_isa`](crate::with_isa)).
    #[error("kernel build {isa} needs CPU features this machine lacks; available: {available:?}")]
    IsaUnsupported {
        /// The build asked for.
        isa: crate::Isa,
        /// The builds this CPU can run.
        available: Vec<crate::Isa>,
    },
    /// A tensor-level operation (GEMM) failed; a bug in this crate if it happens.
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] TensorError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = ConvError> = std::result::Result<T, E>;
