//! `conv2d` and `conv2d_backward`: checks, then dispatch to the kernel that
//! fits the spec.
//!
//! Layout: `forward.rs` and `backward.rs` hold the im2col + GEMM kernels
//! (standard and grouped convolutions), `pointwise.rs` the GEMM on the input
//! planes that replaces im2col for 1x1 / stride 1 / no padding, and
//! `depthwise.rs` the direct loops for `groups == in_channels` (with their
//! masked-load f32 form for AVX-512, `depthwise_masked.rs`); `direct.rs`
//! (with its row-tiled f32 form for AVX-512, `rows.rs`) and `channels.rs`
//! the direct kernels of standard convolutions.

mod backward;
mod channels;
mod depthwise;
mod depthwise_masked;
mod direct;
mod forward;
mod pointwise;
mod rows;
mod simd;

pub use channels::with_channel_direct;
pub use direct::with_strided_direct;
pub use rows::with_row_tiles;
pub use simd::{madd, with_isa, Isa};

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::thread::LocalKey;

use gradlab_tensor::{Element, TensorError};
use ndarray::{Array1, Array4, ArrayBase, ArrayView1, ArrayView4, Data, Dimension};
use rayon::iter::ParallelExtend;

use crate::error::{ConvError, Result};
use crate::gemm::internal;
use crate::spec::{Conv2dSpec, Geometry};

/// Runs `f` with the thread-local `key` set to `value`, then puts the old
/// value back (also when `f` panics): the per-thread switches of the kernel
/// builds and routes, which the tests and benches flip around one call.
fn with_thread_local<V: Copy + 'static, R>(
    key: &'static LocalKey<Cell<V>>,
    value: V,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore<V: Copy + 'static>(&'static LocalKey<Cell<V>>, V);
    impl<V: Copy + 'static> Drop for Restore<V> {
        fn drop(&mut self) {
            self.0.with(|c| c.set(self.1));
        }
    }
    let _restore = Restore(key, key.with(|c| c.replace(value)));
    f()
}

/// The gradients of a convolution's loss with respect to its three operands.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dGrads<T> {
    /// Gradient with respect to the input, `[N, C_in, H, W]`.
    pub input: Array4<T>,
    /// Gradient with respect to the weight, `[C_out, C_in/groups, kH, kW]`.
    pub weight: Array4<T>,
    /// Gradient with respect to the bias, `[C_out]` (the bias's gradient
    /// does not depend on the bias, so it is returned whether or not the
    /// forward pass had one).
    pub bias: Array1<T>,
}

/// 2-D convolution (cross-correlation), exactly PyTorch's
/// `torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups)`.
///
/// `out[n, co, oh, ow] = bias[co] + sum_{c, i, j} x[n, g*C_in/groups + c, oh*sH + i*dH - pH, ow*sW + j*dW - pW] * w[co, c, i, j]`
/// where `g = co / (C_out/groups)` is the group of `co` and `x` is zero outside
/// the input.
///
/// # Shapes
/// - `input`: `[N, C_in, H, W]` (NCHW), any strides;
/// - `weight`: `[C_out, C_in/groups, kH, kW]` (OIHW), any strides;
/// - `bias`: `[C_out]`;
/// - output: `[N, C_out, H_out, W_out]` with `H_out = floor((H + 2*pH - dH*(kH-1) - 1) / sH) + 1`
///   (likewise for the width), see [`Conv2dSpec::output_size`].
///
/// # Kernels
/// Depthwise specs (`groups == C_in > 1`) run direct loops; a 1x1 kernel with
/// stride 1 and no padding runs one GEMM per image and group on the input
/// planes; everything else runs im2col + GEMM per image, group and band of
/// output rows. rayon spreads the images and bands over threads; the result
/// is the same bit for bit whatever the number of threads.
///
/// # Errors
/// [`ConvError::NonPositive`], [`ConvError::GroupsNotDivisible`] for a bad
/// spec; [`ConvError::WeightShape`], [`ConvError::InputChannels`],
/// [`ConvError::BiasShape`] for operands that disagree with it;
/// [`ConvError::KernelTooLarge`] when the dilated kernel does not fit the
/// padded input; [`ConvError::Overflow`] for sizes beyond `usize`;
/// [`ConvError::OutOfMemory`] when the output cannot be allocated.
///
/// # Examples
/// ```
/// use gradlab_conv::{conv2d, Conv2dSpec};
/// use ndarray::{Array1, Array4};
/// let spec = Conv2dSpec::new(3, 8, 3).padding(1);
/// let x = Array4::<f32>::ones((2, 3, 5, 5));
/// let w = Array4::<f32>::ones(spec.weight_shape());
/// let b = Array1::<f32>::zeros(8);
/// let y = conv2d(x.view(), w.view(), Some(b.view()), &spec)?;
/// assert_eq!(y.shape(), &[2, 8, 5, 5]);
/// assert_eq!(y[[0, 0, 2, 2]], 27.0); // 3 channels x 9 taps, all inside
/// assert_eq!(y[[0, 0, 0, 0]], 12.0); // a corner sees 3 channels x 4 taps
/// # Ok::<(), gradlab_conv::ConvError>(())
/// ```
pub fn conv2d<T: Element>(
    input: ArrayView4<'_, T>,
    weight: ArrayView4<'_, T>,
    bias: Option<ArrayView1<'_, T>>,
    spec: &Conv2dSpec,
) -> Result<Array4<T>> {
    let op = "conv2d";
    let g = spec.geometry(op, shape4(&input), shape4(&weight))?;
    check_bias(op, &g, bias.as_ref())?;
    let x = input.as_standard_layout();
    let w = weight.as_standard_layout();
    let b = bias.as_ref().map(|b| b.as_standard_layout());
    let (xs, ws) = (slice_of(&x)?, slice_of(&w)?);
    let bs = match &b {
        Some(b) => Some(slice_of(b)?),
        None => None,
    };
    let isa = Isa::current();
    let out = if g.is_depthwise() {
        depthwise::forward(isa, xs, ws, bs, &g)
    } else {
        forward::forward(isa, xs, ws, bs, &g)
    }?;
    into_array4(out, g.output_shape())
}

/// Backward pass of [`conv2d`]: the gradients of a loss `L` with respect to
/// input, weight and bias, given `grad_output = dL/d(out)`.
///
/// The vector-Jacobian products: for every multiply-accumulate
/// `out[n, co, oh, ow] += x[n, ci, ih, iw] * w[co, c, i, j]` of the forward
/// pass, `dx[n, ci, ih, iw] += w[co, c, i, j] * dy[n, co, oh, ow]` and
/// `dw[co, c, i, j] += x[n, ci, ih, iw] * dy[n, co, oh, ow]`;
/// `db[co] = sum_{n, oh, ow} dy[n, co, oh, ow]`.
///
/// # Shapes
/// `input` `[N, C_in, H, W]`, `weight` `[C_out, C_in/groups, kH, kW]`,
/// `grad_output` `[N, C_out, H_out, W_out]`; the gradients have the shapes of
/// input, weight and `[C_out]`.
///
/// # Kernels
/// im2col + GEMM specs: the input gradient is a GEMM into columns then
/// col2im, the weight gradient a GEMM accumulated over a fixed partition of
/// the batch then reduced in order (so the result does not depend on the
/// number of threads); pointwise specs skip im2col/col2im; depthwise specs run
/// direct loops.
///
/// # Errors
/// Those of [`conv2d`], and [`ConvError::GradOutputShape`] when
/// `grad_output` is not the shape of the forward output.
///
/// # Examples
/// ```
/// use gradlab_conv::{conv2d_backward, Conv2dSpec};
/// use ndarray::Array4;
/// let spec = Conv2dSpec::new(2, 4, 3);
/// let x = Array4::<f64>::ones((1, 2, 4, 4));
/// let w = Array4::<f64>::ones(spec.weight_shape());
/// let dy = Array4::<f64>::ones((1, 4, 2, 2));
/// let grads = conv2d_backward(x.view(), w.view(), dy.view(), &spec)?;
/// assert_eq!(grads.bias[0], 4.0);        // 2 x 2 output pixels
/// assert_eq!(grads.weight[[0, 0, 0, 0]], 4.0);
/// assert_eq!(grads.input[[0, 0, 0, 0]], 4.0); // one tap, 4 output channels
/// # Ok::<(), gradlab_conv::ConvError>(())
/// ```
pub fn conv2d_backward<T: Element>(
    input: ArrayView4<'_, T>,
    weight: ArrayView4<'_, T>,
    grad_output: ArrayView4<'_, T>,
    spec: &Conv2dSpec,
) -> Result<Conv2dGrads<T>> {
    let all = GradsWanted {
        input: true,
        bias: true,
    };
    let grads = gradients("conv2d_backward", (input, weight, grad_output), spec, all)?;
    let missing = |what| internal(what, 0);
    Ok(Conv2dGrads {
        input: grads.input.ok_or_else(|| missing("input gradient"))?,
        weight: grads.weight,
        bias: grads.bias.ok_or_else(|| missing("bias gradient"))?,
    })
}

/// Which of a convolution's optional gradients [`conv2d_gradients`]
/// computes; the weight's always is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GradsWanted {
    /// The input's (`false` for a network's first layer, whose input is
    /// the data: standard, grouped and pointwise kernels then skip half of
    /// the backward's multiply-adds).
    pub input: bool,
    /// The bias's (`false` for a layer without bias, such as a convolution
    /// before BatchNorm: a pass over the output gradient less).
    pub bias: bool,
}

/// The gradients [`conv2d_gradients`] was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dGradients<T> {
    /// Gradient with respect to the input, `[N, C_in, H, W]`, when wanted.
    pub input: Option<Array4<T>>,
    /// Gradient with respect to the weight, `[C_out, C_in/groups, kH, kW]`.
    pub weight: Array4<T>,
    /// Gradient with respect to the bias, `[C_out]`, when wanted.
    pub bias: Option<Array1<T>>,
}

/// The gradients of [`conv2d_backward`] that `wanted` asks for, and only
/// those computed: the same bits as `conv2d_backward`'s for each.
///
/// # Errors
/// Those of [`conv2d_backward`].
///
/// # Examples
/// ```
/// use gradlab_conv::{conv2d_backward, conv2d_gradients, Conv2dSpec, GradsWanted};
/// use ndarray::Array4;
/// let spec = Conv2dSpec::new(3, 4, 3).padding(1);
/// let x = Array4::from_shape_fn((2, 3, 5, 5), |(n, c, h, w)| (n + 2 * c + h * w) as f64);
/// let w = Array4::from_elem(spec.weight_shape(), 0.5);
/// let dy = Array4::from_elem((2, 4, 5, 5), 1.0);
/// let wanted = GradsWanted { input: true, bias: false };
/// let some = conv2d_gradients(x.view(), w.view(), dy.view(), &spec, wanted)?;
/// let all = conv2d_backward(x.view(), w.view(), dy.view(), &spec)?;
/// assert_eq!(some.input, Some(all.input));
/// assert_eq!(some.weight, all.weight);
/// assert_eq!(some.bias, None);
/// # Ok::<(), gradlab_conv::ConvError>(())
/// ```
pub fn conv2d_gradients<T: Element>(
    input: ArrayView4<'_, T>,
    weight: ArrayView4<'_, T>,
    grad_output: ArrayView4<'_, T>,
    spec: &Conv2dSpec,
    wanted: GradsWanted,
) -> Result<Conv2dGradients<T>> {
    gradients(
        "conv2d_gradients",
        (input, weight, grad_output),
        spec,
        wanted,
    )
}

/// [`conv2d_gradients`] under the name `op` (for errors).
fn gradients<T: Element>(
    op: &'static str,
    operands: (ArrayView4<'_, T>, ArrayView4<'_, T>, ArrayView4<'_, T>),
    spec: &Conv2dSpec,
    wanted: GradsWanted,
) -> Result<Conv2dGradients<T>> {
    let (g, raw) = run_backward(op, operands, spec, |xs, ws, dys, g| {
        let isa = Isa::current();
        if g.is_depthwise() {
            // The input gradient comes out of the same loops as the
            // weight's, so it is computed either way.
            depthwise::backward(isa, xs, ws, dys, g, wanted.bias)
        } else {
            backward::backward(isa, xs, ws, dys, g, wanted)
        }
    })?;
    Ok(Conv2dGradients {
        input: if wanted.input {
            Some(into_array4(raw.input, g.input_shape())?)
        } else {
            None
        },
        weight: into_array4(raw.weight, spec.weight_shape())?,
        bias: wanted.bias.then(|| Array1::from_vec(raw.bias)),
    })
}

/// The gradients of a convolution's loss with respect to its parameters only.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dParamGrads<T> {
    /// Gradient with respect to the weight, `[C_out, C_in/groups, kH, kW]`.
    pub weight: Array4<T>,
    /// Gradient with respect to the bias, `[C_out]`.
    pub bias: Array1<T>,
}

/// [`conv2d_backward`] without the input gradient: the weight and bias
/// gradients only, for a layer whose input needs none (a network's first
/// layer, whose input is the data). Standard, grouped and pointwise kernels
/// then skip the input gradient's work (half of the backward's
/// multiply-adds); depthwise kernels compute it anyway (it comes out of the
/// same loops).
///
/// # Errors
/// Those of [`conv2d_backward`].
///
/// # Examples
/// ```
/// use gradlab_conv::{conv2d_backward, conv2d_backward_params, Conv2dSpec};
/// use ndarray::Array4;
/// let spec = Conv2dSpec::new(3, 4, 3).padding(1);
/// let x = Array4::from_shape_fn((2, 3, 5, 5), |(n, c, h, w)| (n + 2 * c + h * w) as f64);
/// let w = Array4::from_elem(spec.weight_shape(), 0.5);
/// let dy = Array4::from_elem((2, 4, 5, 5), 1.0);
/// let params = conv2d_backward_params(x.view(), w.view(), dy.view(), &spec)?;
/// let all = conv2d_backward(x.view(), w.view(), dy.view(), &spec)?;
/// assert_eq!(params.weight, all.weight);
/// assert_eq!(params.bias, all.bias);
/// # Ok::<(), gradlab_conv::ConvError>(())
/// ```
pub fn conv2d_backward_params<T: Element>(
    input: ArrayView4<'_, T>,
    weight: ArrayView4<'_, T>,
    grad_output: ArrayView4<'_, T>,
    spec: &Conv2dSpec,
) -> Result<Conv2dParamGrads<T>> {
    let wanted = GradsWanted {
        input: false,
        bias: true,
    };
    let operands = (input, weight, grad_output);
    let grads = gradients("conv2d_backward_params", operands, spec, wanted)?;
    Ok(Conv2dParamGrads {
        weight: grads.weight,
        bias: grads.bias.ok_or_else(|| internal("bias gradient", 0))?,
    })
}

/// Checks the operands of a backward pass against `spec` and runs `kernel`
/// on their row-major elements (views with other strides are copied first).
#[allow(clippy::type_complexity)]
fn run_backward<T: Element>(
    op: &'static str,
    (input, weight, grad_output): (ArrayView4<'_, T>, ArrayView4<'_, T>, ArrayView4<'_, T>),
    spec: &Conv2dSpec,
    kernel: impl FnOnce(&[T], &[T], &[T], &Geometry) -> Result<RawGrads<T>>,
) -> Result<(Geometry, RawGrads<T>)> {
    let g = spec.geometry(op, shape4(&input), shape4(&weight))?;
    g.check_grad_output(op, shape4(&grad_output))?;
    let x = input.as_standard_layout();
    let w = weight.as_standard_layout();
    let dy = grad_output.as_standard_layout();
    let raw = kernel(slice_of(&x)?, slice_of(&w)?, slice_of(&dy)?, &g)?;
    Ok((g, raw))
}

/// Flat, row-major gradients as the kernels produce them (`input` is empty
/// when it was not asked for).
pub(crate) struct RawGrads<T> {
    pub input: Vec<T>,
    pub weight: Vec<T>,
    pub bias: Vec<T>,
}

/// A vector of `n` zeros written by all rayon threads (large outputs are
/// otherwise zeroed by the calling thread alone before the parallel work).
///
/// # Errors
/// [`ConvError::OutOfMemory`] when the allocation fails, rather than
/// aborting the process.
pub(crate) fn zeros<T: Element>(op: &'static str, n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| ConvError::OutOfMemory { op, elements: n })?;
    v.par_extend(rayon::iter::repeat_n(T::zero(), n));
    Ok(v)
}

/// An empty vector with room for `n` elements, for outputs written in
/// parallel tasks that each zero their part just before writing it (see
/// [`zero_filled`]): in cache, instead of a zeroing pass through memory.
pub(crate) fn reserved<T>(op: &'static str, n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| ConvError::OutOfMemory { op, elements: n })?;
    Ok(v)
}

/// `s` filled with zeros, as initialised values.
pub(crate) fn zero_filled<T: Element>(s: &mut [MaybeUninit<T>]) -> &mut [T] {
    for v in s.iter_mut() {
        v.write(T::zero());
    }
    // SAFETY: every element was just initialised, and `MaybeUninit<T>` has
    // the layout of `T`.
    unsafe { &mut *(s as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// `init + sum(values)`, summed in 8 interleaved partial sums (so the
/// additions vectorise instead of waiting on each other), always in the same
/// order.
#[inline]
pub(crate) fn lane_sum<T: Element>(init: T, values: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let mut chunks = values.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = *a + v;
        }
    }
    let tail = chunks.remainder().iter().fold(T::zero(), |a, &v| a + v);
    let pairs = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    init + (((pairs[0] + pairs[2]) + (pairs[1] + pairs[3])) + tail)
}

/// The shape of a 4-D array as an array.
pub(crate) fn shape4<S: Data>(a: &ArrayBase<S, ndarray::Ix4>) -> [usize; 4] {
    let (n, c, h, w) = a.dim();
    [n, c, h, w]
}

/// Checks that a bias has one element per output channel.
pub(crate) fn check_bias<T>(
    op: &'static str,
    g: &Geometry,
    bias: Option<&ArrayView1<'_, T>>,
) -> Result<()> {
    match bias {
        Some(b) if b.len() != g.c_out => Err(ConvError::BiasShape {
            op,
            expected: g.c_out,
            got: b.len(),
        }),
        _ => Ok(()),
    }
}

/// The elements of a standard-layout array.
pub(crate) fn slice_of<T, S, D>(a: &ArrayBase<S, D>) -> Result<&[T]>
where
    S: Data<Elem = T>,
    D: Dimension,
{
    a.as_slice().ok_or_else(|| {
        TensorError::ElementCount {
            op: "conv2d (internal: array not contiguous)",
            len: a.len(),
            shape: a.shape().to_vec(),
        }
        .into()
    })
}

/// Wraps a row-major buffer as a 4-D array.
pub(crate) fn into_array4<T>(data: Vec<T>, shape: [usize; 4]) -> Result<Array4<T>> {
    let len = data.len();
    Array4::from_shape_vec(shape, data).map_err(|_| {
        TensorError::ElementCount {
            op: "conv2d (internal: output buffer)",
            len,
            shape: shape.to_vec(),
        }
        .into()
    })
}
