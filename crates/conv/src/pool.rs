//! Max, average and global average pooling, forward and backward, over NCHW
//! arrays; PyTorch's `max_pool2d`, `avg_pool2d` and `adaptive_avg_pool2d(1)`
//! (floor mode, no dilation).
//!
//! Every `(image, channel)` plane is independent: rayon runs over planes and
//! nothing is summed across them, so results do not depend on the number of
//! threads.

use gradlab_tensor::Element;
use ndarray::{Array4, ArrayView4};
use rayon::prelude::*;

use crate::conv2d::{into_array4, shape4, slice_of, zeros};
use crate::error::{ConvError, Result};

/// The window of a pooling layer, as in PyTorch's `MaxPool2d(kernel_size,
/// stride, padding)` and `AvgPool2d(kernel_size, stride, padding,
/// count_include_pad=...)`. Two-element arrays are `[height, width]`.
///
/// # Examples
/// ```
/// use gradlab_conv::Pool2dSpec;
/// let spec = Pool2dSpec::new(3).stride(2).padding(1);
/// assert_eq!(spec.output_size(32, 32)?, [16, 16]);
/// assert!(Pool2dSpec::new(2).padding(2).validate().is_err()); // pad > kernel / 2
/// # Ok::<(), gradlab_conv::ConvError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2dSpec {
    /// Window size `[kH, kW]`.
    pub kernel: [usize; 2],
    /// Step between windows `[sH, sW]`.
    pub stride: [usize; 2],
    /// Implicit padding on each side `[pH, pW]`, at most half the kernel.
    /// Max pooling pads with negative infinity, average pooling with zeros.
    pub padding: [usize; 2],
    /// Average pooling only: whether padded positions count in the divisor
    /// (PyTorch's default, `true`) or only the input pixels of the window do.
    pub count_include_pad: bool,
}

impl Pool2dSpec {
    /// A square `kernel x kernel` window with stride equal to the kernel
    /// (PyTorch's default), no padding, `count_include_pad = true`.
    pub fn new(kernel: usize) -> Self {
        Pool2dSpec {
            kernel: [kernel, kernel],
            stride: [kernel, kernel],
            padding: [0, 0],
            count_include_pad: true,
        }
    }

    /// Sets the stride of both axes.
    pub fn stride(self, s: usize) -> Self {
        Pool2dSpec {
            stride: [s, s],
            ..self
        }
    }

    /// Sets the padding of both axes.
    pub fn padding(self, p: usize) -> Self {
        Pool2dSpec {
            padding: [p, p],
            ..self
        }
    }

    /// Sets whether average pooling divides by the full window
    /// (`true`) or by the input pixels it covers (`false`).
    pub fn count_include_pad(self, include: bool) -> Self {
        Pool2dSpec {
            count_include_pad: include,
            ..self
        }
    }

    /// Checks the spec on its own.
    ///
    /// # Errors
    /// [`ConvError::NonPositive`] for a zero kernel or stride,
    /// [`ConvError::PoolPadding`] when the padding exceeds half the kernel.
    pub fn validate(&self) -> Result<()> {
        self.validate_for("pool2d")
    }

    fn validate_for(&self, op: &'static str) -> Result<()> {
        for (name, value) in [("kernel_size", self.kernel), ("stride", self.stride)] {
            if value.contains(&0) {
                return Err(ConvError::NonPositive {
                    op,
                    name,
                    value: value.to_vec(),
                });
            }
        }
        if self.padding[0] > self.kernel[0] / 2 || self.padding[1] > self.kernel[1] / 2 {
            return Err(ConvError::PoolPadding {
                op,
                padding: self.padding,
                kernel: self.kernel,
            });
        }
        Ok(())
    }

    /// Output height and width for an `h x w` input:
    /// `floor((h + 2*pad - k) / stride) + 1` per axis.
    ///
    /// # Errors
    /// Those of [`validate`](Self::validate), and
    /// [`ConvError::KernelTooLarge`] when the window exceeds the padded input.
    pub fn output_size(&self, h: usize, w: usize) -> Result<[usize; 2]> {
        self.validate()?;
        self.output_size_for("pool2d", h, w)
    }

    fn output_size_for(&self, op: &'static str, h: usize, w: usize) -> Result<[usize; 2]> {
        let mut padded = [0; 2];
        for (a, size) in [h, w].into_iter().enumerate() {
            padded[a] = self.padding[a]
                .checked_mul(2)
                .and_then(|p| p.checked_add(size))
                .ok_or(ConvError::Overflow {
                    op,
                    what: "the padded input size",
                })?;
        }
        if padded[0] < self.kernel[0] || padded[1] < self.kernel[1] {
            return Err(ConvError::KernelTooLarge {
                op,
                padded,
                kernel: self.kernel,
            });
        }
        Ok([
            (padded[0] - self.kernel[0]) / self.stride[0] + 1,
            (padded[1] - self.kernel[1]) / self.stride[1] + 1,
        ])
    }

    /// Checks an input shape and returns the output shape.
    fn check(&self, op: &'static str, input: [usize; 4]) -> Result<[usize; 4]> {
        self.validate_for(op)?;
        if input[2] == 0 || input[3] == 0 {
            return Err(ConvError::EmptyInput { op, input });
        }
        let [oh, ow] = self.output_size_for(op, input[2], input[3])?;
        let shape = [input[0], input[1], oh, ow];
        crate::spec::checked_product(&shape, op, "the output size")?;
        Ok(shape)
    }

    /// The input rows (or columns) `lo..hi` covered by window `o` on axis `a`.
    #[inline]
    fn window(&self, a: usize, o: usize, size: usize) -> (usize, usize) {
        let start = (o * self.stride[a]) as isize - self.padding[a] as isize;
        let end = (start + self.kernel[a] as isize).min(size as isize);
        (start.max(0) as usize, end.max(0) as usize)
    }
}

/// Checks `grad_output` against the forward output shape.
fn check_grad(
    op: &'static str,
    input: [usize; 4],
    expected: [usize; 4],
    got: [usize; 4],
) -> Result<()> {
    if expected != got {
        return Err(ConvError::GradOutputShape {
            op,
            expected,
            got,
            input,
        });
    }
    Ok(())
}

/// The input rows `lo..hi` of every output row and the input columns of
/// every output column, computed once per call rather than per output.
fn windows(spec: &Pool2dSpec, h: usize, w: usize, oh_n: usize, ow_n: usize) -> Windows {
    Windows {
        rows: (0..oh_n).map(|oh| spec.window(0, oh, h)).collect(),
        cols: (0..ow_n).map(|ow| spec.window(1, ow, w)).collect(),
    }
}

struct Windows {
    rows: Vec<(usize, usize)>,
    cols: Vec<(usize, usize)>,
}

/// Index in the plane (`ih * W + iw`) and value of the maximum of the window
/// `rows x cols`: the first maximum in row-major order, a NaN if there is one
/// (PyTorch's rule).
#[inline]
fn argmax<T: Element>(
    plane: &[T],
    w: usize,
    (h0, h1): (usize, usize),
    (w0, w1): (usize, usize),
) -> (usize, T) {
    let mut best = T::neg_infinity();
    let mut at = h0 * w + w0;
    for ih in h0..h1 {
        for (iw, &v) in plane[ih * w + w0..ih * w + w1].iter().enumerate() {
            if v > best || v.is_nan() {
                best = v;
                at = ih * w + w0 + iw;
            }
        }
    }
    (at, best)
}

/// Max pooling, PyTorch's `max_pool2d(input, kernel_size, stride, padding)`:
/// `out[n, c, oh, ow] = max` of the window, padding counting as negative
/// infinity.
///
/// # Shapes
/// `[N, C, H, W]` in, `[N, C, H_out, W_out]` out, see
/// [`Pool2dSpec::output_size`].
///
/// # Errors
/// Those of [`Pool2dSpec::validate`], [`ConvError::EmptyInput`] for a zero
/// height or width, [`ConvError::KernelTooLarge`] when the window exceeds the
/// padded input, [`ConvError::OutOfMemory`] when the output cannot be
/// allocated.
///
/// # Examples
/// ```
/// use gradlab_conv::{max_pool2d, Pool2dSpec};
/// use ndarray::Array4;
/// let x = Array4::from_shape_vec((1, 1, 2, 2), vec![1.0f32, 4.0, 3.0, 2.0]).unwrap();
/// let y = max_pool2d(x.view(), &Pool2dSpec::new(2))?;
/// assert_eq!(y[[0, 0, 0, 0]], 4.0);
/// # Ok::<(), gradlab_conv::ConvError>(())
/// ```
pub fn max_pool2d<T: Element>(input: ArrayView4<'_, T>, spec: &Pool2dSpec) -> Result<Array4<T>> {
    let op = "max_pool2d";
    let ishape = shape4(&input);
    let oshape = spec.check(op, ishape)?;
    let x = input.as_standard_layout();
    let xs = slice_of(&x)?;
    let [_, _, h, w] = ishape;
    let [_, _, oh_n, ow_n] = oshape;
    let win = windows(spec, h, w, oh_n, ow_n);
    let mut out = zeros(op, oshape.iter().product())?;
    out.par_chunks_mut(oh_n * ow_n)
        .enumerate()
        .for_each(|(idx, out_p)| {
            let plane = &xs[idx * h * w..(idx + 1) * h * w];
            for (out_row, &rows) in out_p.chunks_exact_mut(ow_n).zip(&win.rows) {
                for (v, &cols) in out_row.iter_mut().zip(&win.cols) {
                    *v = argmax(plane, w, rows, cols).1;
                }
            }
        });
    into_array4(out, oshape)
}

/// Backward pass of [`max_pool2d`]: each output gradient goes to the input
/// pixel that was the window's maximum (the first one on ties), and adds up
/// where windows overlap. The arg-max is recomputed from `input`.
///
/// # Shapes
/// `input` `[N, C, H, W]`, `grad_output` the forward output's shape; returns
/// the input's shape.
///
/// # Errors
/// Those of [`max_pool2d`], and [`ConvError::GradOutputShape`].
pub fn max_pool2d_backward<T: Element>(
    input: ArrayView4<'_, T>,
    grad_output: ArrayView4<'_, T>,
    spec: &Pool2dSpec,
) -> Result<Array4<T>> {
    let op = "max_pool2d_backward";
    let ishape = shape4(&input);
    let oshape = spec.check(op, ishape)?;
    check_grad(op, ishape, oshape, shape4(&grad_output))?;
    let x = input.as_standard_layout();
    let dy = grad_output.as_standard_layout();
    let (xs, dys) = (slice_of(&x)?, slice_of(&dy)?);
    let [_, _, h, w] = ishape;
    let [_, _, oh_n, ow_n] = oshape;
    let op_len = oh_n * ow_n;
    let win = windows(spec, h, w, oh_n, ow_n);
    let mut dx = zeros(op, ishape.iter().product())?;
    dx.par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(idx, dx_p)| {
            let plane = &xs[idx * h * w..(idx + 1) * h * w];
            let dy_p = &dys[idx * op_len..(idx + 1) * op_len];
            for (dy_row, &rows) in dy_p.chunks_exact(ow_n).zip(&win.rows) {
                for (&d, &cols) in dy_row.iter().zip(&win.cols) {
                    let (at, _) = argmax(plane, w, rows, cols);
                    dx_p[at] = dx_p[at] + d;
                }
            }
        });
    into_array4(dx, ishape)
}

/// The divisor of average window `(oh, ow)`.
#[inline]
fn divisor(spec: &Pool2dSpec, h: usize, w: usize, oh: usize, ow: usize) -> usize {
    if spec.count_include_pad {
        spec.kernel[0] * spec.kernel[1]
    } else {
        let (h0, h1) = spec.window(0, oh, h);
        let (w0, w1) = spec.window(1, ow, w);
        (h1 - h0) * (w1 - w0)
    }
}

/// Average pooling, PyTorch's `avg_pool2d(input, kernel_size, stride,
/// padding, count_include_pad=...)`: the sum of the window's input pixels
/// divided by `kH*kW` (or by the number of input pixels in the window when
/// `count_include_pad` is false).
///
/// # Shapes
/// `[N, C, H, W]` in, `[N, C, H_out, W_out]` out.
///
/// # Errors
/// Those of [`max_pool2d`].
///
/// # Examples
/// ```
/// use gradlab_conv::{avg_pool2d, Pool2dSpec};
/// use ndarray::Array4;
/// let x = Array4::from_shape_vec((1, 1, 2, 2), vec![1.0f64, 4.0, 3.0, 2.0]).unwrap();
/// let y = avg_pool2d(x.view(), &Pool2dSpec::new(2))?;
/// assert_eq!(y[[0, 0, 0, 0]], 2.5);
/// # Ok::<(), gradlab_conv::ConvError>(())
/// ```
pub fn avg_pool2d<T: Element>(input: ArrayView4<'_, T>, spec: &Pool2dSpec) -> Result<Array4<T>> {
    let op = "avg_pool2d";
    let ishape = shape4(&input);
    let oshape = spec.check(op, ishape)?;
    let x = input.as_standard_layout();
    let xs = slice_of(&x)?;
    let [_, _, h, w] = ishape;
    let [_, _, oh_n, ow_n] = oshape;
    let mut out = zeros(op, oshape.iter().product())?;
    out.par_chunks_mut(oh_n * ow_n)
        .enumerate()
        .for_each(|(idx, out_p)| {
            let plane = &xs[idx * h * w..(idx + 1) * h * w];
            for (o, v) in out_p.iter_mut().enumerate() {
                let (oh, ow) = (o / ow_n, o % ow_n);
                let (h0, h1) = spec.window(0, oh, h);
                let (w0, w1) = spec.window(1, ow, w);
                let mut acc = T::zero();
                for ih in h0..h1 {
                    for &xv in &plane[ih * w + w0..ih * w + w1] {
                        acc = acc + xv;
                    }
                }
                *v = acc / T::of_f64(divisor(spec, h, w, oh, ow) as f64);
            }
        });
    into_array4(out, oshape)
}

/// Backward pass of [`avg_pool2d`]: each output gradient, divided by its
/// window's divisor, is added to every input pixel of the window.
///
/// # Shapes
/// `input` `[N, C, H, W]` (only its shape is used), `grad_output` the
/// forward output's shape; returns the input's shape.
///
/// # Errors
/// Those of [`max_pool2d`], and [`ConvError::GradOutputShape`].
pub fn avg_pool2d_backward<T: Element>(
    input: ArrayView4<'_, T>,
    grad_output: ArrayView4<'_, T>,
    spec: &Pool2dSpec,
) -> Result<Array4<T>> {
    let op = "avg_pool2d_backward";
    let ishape = shape4(&input);
    let oshape = spec.check(op, ishape)?;
    check_grad(op, ishape, oshape, shape4(&grad_output))?;
    let dy = grad_output.as_standard_layout();
    let dys = slice_of(&dy)?;
    let [_, _, h, w] = ishape;
    let [_, _, oh_n, ow_n] = oshape;
    let op_len = oh_n * ow_n;
    let mut dx = zeros(op, ishape.iter().product())?;
    dx.par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(idx, dx_p)| {
            let dy_p = &dys[idx * op_len..(idx + 1) * op_len];
            for (o, &d) in dy_p.iter().enumerate() {
                let (oh, ow) = (o / ow_n, o % ow_n);
                let share = d / T::of_f64(divisor(spec, h, w, oh, ow) as f64);
                let (h0, h1) = spec.window(0, oh, h);
                let (w0, w1) = spec.window(1, ow, w);
                for ih in h0..h1 {
                    for v in &mut dx_p[ih * w + w0..ih * w + w1] {
                        *v = *v + share;
                    }
                }
            }
        });
    into_array4(dx, ishape)
}

/// Global average pooling, PyTorch's `adaptive_avg_pool2d(input, 1)`: the
/// mean of each `(image, channel)` plane.
///
/// # Shapes
/// `[N, C, H, W]` in, `[N, C, 1, 1]` out.
///
/// # Errors
/// [`ConvError::EmptyInput`] for a zero height or width.
///
/// # Examples
/// ```
/// use gradlab_conv::global_avg_pool2d;
/// use ndarray::Array4;
/// let x = Array4::from_shape_vec((1, 2, 1, 2), vec![1.0f32, 3.0, 10.0, 20.0]).unwrap();
/// let y = global_avg_pool2d(x.view())?;
/// assert_eq!(y.shape(), &[1, 2, 1, 1]);
/// assert_eq!(y[[0, 1, 0, 0]], 15.0);
/// # Ok::<(), gradlab_conv::ConvError>(())
/// ```
pub fn global_avg_pool2d<T: Element>(input: ArrayView4<'_, T>) -> Result<Array4<T>> {
    let op = "global_avg_pool2d";
    let ishape = shape4(&input);
    if ishape[2] == 0 || ishape[3] == 0 {
        return Err(ConvError::EmptyInput { op, input: ishape });
    }
    let x = input.as_standard_layout();
    let xs = slice_of(&x)?;
    let hw = ishape[2] * ishape[3];
    let scale = T::of_f64(hw as f64);
    let out: Vec<T> = xs
        .par_chunks(hw)
        .map(|plane| plane.iter().fold(T::zero(), |a, &v| a + v) / scale)
        .collect();
    into_array4(out, [ishape[0], ishape[1], 1, 1])
}

/// Backward pass of [`global_avg_pool2d`]: every pixel of plane `(n, c)`
/// receives `grad_output[n, c, 0, 0] / (H*W)`.
///
/// # Shapes
/// `input` `[N, C, H, W]` (only its shape is used), `grad_output`
/// `[N, C, 1, 1]`; returns the input's shape.
///
/// # Errors
/// [`ConvError::EmptyInput`], and [`ConvError::GradOutputShape`].
pub fn global_avg_pool2d_backward<T: Element>(
    input: ArrayView4<'_, T>,
    grad_output: ArrayView4<'_, T>,
) -> Result<Array4<T>> {
    let op = "global_avg_pool2d_backward";
    let ishape = shape4(&input);
    if ishape[2] == 0 || ishape[3] == 0 {
        return Err(ConvError::EmptyInput { op, input: ishape });
    }
    let oshape = [ishape[0], ishape[1], 1, 1];
    check_grad(op, ishape, oshape, shape4(&grad_output))?;
    let hw = ishape[2] * ishape[3];
    let scale = T::of_f64(hw as f64);
    let dy: Vec<T> = grad_output.iter().copied().collect();
    let mut dx = zeros(op, ishape.iter().product())?;
    dx.par_chunks_mut(hw)
        .zip(dy.par_iter())
        .for_each(|(plane, &d)| plane.fill(d / scale));
    into_array4(dx, ishape)
}
