//! [`Conv2dSpec`]: the hyper-parameters of a 2-D convolution, every check on
//! them done once here with checked arithmetic, and [`ConvKind`].

use std::fmt;

use crate::error::{ConvError, Result};

/// The hyper-parameters of a 2-D convolution, as in PyTorch's
/// `torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
/// dilation, groups)`. Two-element arrays are `[height, width]`.
///
/// Build one with [`Conv2dSpec::new`] and the chaining setters, or set the
/// public fields directly for non-square kernels and per-axis values.
///
/// # Examples
/// ```
/// use gradlab_conv::{Conv2dSpec, ConvKind};
/// let spec = Conv2dSpec::new(16, 32, 3).stride(2).padding(1);
/// assert_eq!(spec.kind(), ConvKind::Standard);
/// assert_eq!(spec.weight_shape(), [32, 16, 3, 3]);
/// assert_eq!(spec.output_size(32, 32)?, [16, 16]);
/// assert_eq!(spec.param_count(true), 32 * 16 * 9 + 32);
/// let dw = Conv2dSpec::new(64, 64, 3).padding(1).groups(64);
/// assert_eq!(dw.kind(), ConvKind::Depthwise);
/// # Ok::<(), gradlab_conv::ConvError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    /// Channels of the input, `C_in`.
    pub in_channels: usize,
    /// Channels of the output, `C_out`.
    pub out_channels: usize,
    /// Kernel size `[kH, kW]`.
    pub kernel: [usize; 2],
    /// Step between windows `[sH, sW]`.
    pub stride: [usize; 2],
    /// Zeros added on each side `[pH, pW]`.
    pub padding: [usize; 2],
    /// Spacing between kernel taps `[dH, dW]`.
    pub dilation: [usize; 2],
    /// Number of blocked connections: input and output channels are split in
    /// `groups` contiguous blocks and block `g` of the output only sees block
    /// `g` of the input.
    pub groups: usize,
}

/// What a convolution does with channels, derived from its spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvKind {
    /// `groups == 1` and a kernel larger than 1x1: mixes channels and space.
    Standard,
    /// `groups == 1` and a 1x1 kernel: mixes channels only.
    Pointwise,
    /// `groups == in_channels > 1` (`out_channels` a multiple of it, the
    /// multiplier): filters each channel on its own, no channel mixing.
    Depthwise,
    /// `1 < groups < in_channels`: mixes channels within each block.
    Grouped,
}

impl fmt::Display for ConvKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConvKind::Standard => "standard",
            ConvKind::Pointwise => "pointwise",
            ConvKind::Depthwise => "depthwise",
            ConvKind::Grouped => "grouped",
        })
    }
}

impl Conv2dSpec {
    /// A square `kernel x kernel` convolution with stride 1, no padding,
    /// dilation 1 and one group.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Conv2dSpec {
            in_channels,
            out_channels,
            kernel: [kernel, kernel],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }

    /// Sets the stride of both axes.
    pub fn stride(self, s: usize) -> Self {
        Conv2dSpec {
            stride: [s, s],
            ..self
        }
    }

    /// Sets the zero padding of both axes.
    pub fn padding(self, p: usize) -> Self {
        Conv2dSpec {
            padding: [p, p],
            ..self
        }
    }

    /// Sets the dilation of both axes.
    pub fn dilation(self, d: usize) -> Self {
        Conv2dSpec {
            dilation: [d, d],
            ..self
        }
    }

    /// Sets the number of groups.
    pub fn groups(self, g: usize) -> Self {
        Conv2dSpec { groups: g, ..self }
    }

    /// Checks the spec on its own (without an input size).
    ///
    /// # Errors
    /// - [`ConvError::NonPositive`] for a zero channel count, kernel, stride,
    ///   dilation or group count;
    /// - [`ConvError::GroupsNotDivisible`] when `groups` does not divide both
    ///   channel counts;
    /// - [`ConvError::Overflow`] when the weight or the dilated kernel size
    ///   does not fit in `usize`.
    pub fn validate(&self) -> Result<()> {
        self.validate_for("conv2d")
    }

    pub(crate) fn validate_for(&self, op: &'static str) -> Result<()> {
        let positive = |name: &'static str, value: &[usize]| {
            if value.contains(&0) {
                Err(ConvError::NonPositive {
                    op,
                    name,
                    value: value.to_vec(),
                })
            } else {
                Ok(())
            }
        };
        positive("in_channels", &[self.in_channels])?;
        positive("out_channels", &[self.out_channels])?;
        positive("groups", &[self.groups])?;
        positive("kernel_size", &self.kernel)?;
        positive("stride", &self.stride)?;
        positive("dilation", &self.dilation)?;
        for (which, channels) in [
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
        ] {
            if channels % self.groups != 0 {
                return Err(ConvError::GroupsNotDivisible {
                    op,
                    which,
                    channels,
                    groups: self.groups,
                });
            }
        }
        self.effective_kernel(op)?;
        checked_product(&self.weight_shape(), op, "the weight size")?;
        Ok(())
    }

    /// Dilated kernel extent `dil*(k-1)+1` per axis.
    pub(crate) fn effective_kernel(&self, op: &'static str) -> Result<[usize; 2]> {
        let mut out = [0; 2];
        for ((o, &k), &d) in out.iter_mut().zip(&self.kernel).zip(&self.dilation) {
            *o = k
                .checked_sub(1)
                .and_then(|k| k.checked_mul(d))
                .and_then(|x| x.checked_add(1))
                .ok_or(ConvError::Overflow {
                    op,
                    what: "the dilated kernel size",
                })?;
        }
        Ok(out)
    }

    /// Classifies the convolution by what it does with channels: depthwise
    /// when `groups == in_channels > 1`, grouped when `groups > 1` otherwise,
    /// pointwise for a 1x1 kernel with one group, standard for the rest.
    pub fn kind(&self) -> ConvKind {
        if self.groups > 1 && self.groups == self.in_channels {
            ConvKind::Depthwise
        } else if self.groups > 1 {
            ConvKind::Grouped
        } else if self.kernel == [1, 1] {
            ConvKind::Pointwise
        } else {
            ConvKind::Standard
        }
    }

    /// Shape of the weight, `[C_out, C_in/groups, kH, kW]` (PyTorch's OIHW).
    /// With `groups == 0` the second entry is reported as `in_channels`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels
                .checked_div(self.groups)
                .unwrap_or(self.in_channels),
            self.kernel[0],
            self.kernel[1],
        ]
    }

    /// Output height and width for an input of `h x w`:
    /// `floor((h + 2*pad - dil*(k-1) - 1) / stride) + 1` per axis.
    ///
    /// # Errors
    /// Everything [`validate`](Self::validate) rejects, and
    /// [`ConvError::KernelTooLarge`] when the dilated kernel is larger than
    /// the padded input.
    pub fn output_size(&self, h: usize, w: usize) -> Result<[usize; 2]> {
        self.validate()?;
        self.output_size_for("conv2d", h, w)
    }

    /// [`output_size`](Self::output_size) for a spec already validated.
    pub(crate) fn output_size_for(
        &self,
        op: &'static str,
        h: usize,
        w: usize,
    ) -> Result<[usize; 2]> {
        let eff = self.effective_kernel(op)?;
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
        if padded[0] < eff[0] || padded[1] < eff[1] {
            return Err(ConvError::KernelTooLarge {
                op,
                padded,
                kernel: eff,
            });
        }
        Ok([
            (padded[0] - eff[0]) / self.stride[0] + 1,
            (padded[1] - eff[1]) / self.stride[1] + 1,
        ])
    }

    /// Number of learnable parameters: `C_out * C_in/groups * kH * kW`, plus
    /// `C_out` with a bias. Saturates at `usize::MAX` for specs that
    /// [`validate`](Self::validate) rejects as overflowing.
    pub fn param_count(&self, bias: bool) -> usize {
        let weight = self
            .weight_shape()
            .iter()
            .fold(1usize, |acc, &d| acc.saturating_mul(d));
        if bias {
            weight.saturating_add(self.out_channels)
        } else {
            weight
        }
    }

    /// Multiply-accumulates of one forward pass over a batch of `batch`
    /// images of `h x w`: `N * C_out * H_out * W_out * C_in/groups * kH * kW`
    /// (padding taps included, bias excluded, as profilers count them).
    ///
    /// # Errors
    /// Those of [`output_size`](Self::output_size), and
    /// [`ConvError::Overflow`] when the count does not fit in `u64`.
    pub fn macs(&self, batch: usize, h: usize, w: usize) -> Result<u64> {
        let [oh, ow] = self.output_size(h, w)?;
        let [_, cig, kh, kw] = self.weight_shape();
        [batch, self.out_channels, oh, ow, cig, kh, kw]
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .ok_or(ConvError::Overflow {
                op: "conv2d",
                what: "the MAC count",
            })
    }

    /// Checks a forward call's shapes and returns the sizes the kernels use.
    pub(crate) fn geometry(
        &self,
        op: &'static str,
        input: [usize; 4],
        weight: [usize; 4],
    ) -> Result<Geometry> {
        self.validate_for(op)?;
        let expected = self.weight_shape();
        if weight != expected {
            return Err(ConvError::WeightShape {
                op,
                expected,
                got: weight,
            });
        }
        if input[1] != self.in_channels {
            return Err(ConvError::InputChannels {
                op,
                groups: self.groups,
                weight,
                input,
                expected: self.in_channels,
                got: input[1],
            });
        }
        let [oh, ow] = self.output_size_for(op, input[2], input[3])?;
        let g = Geometry {
            n: input[0],
            c_in: input[1],
            h: input[2],
            w: input[3],
            c_out: self.out_channels,
            oh,
            ow,
            k: self.kernel,
            s: self.stride,
            p: self.padding,
            d: self.dilation,
            groups: self.groups,
            cig: self.in_channels / self.groups,
            cog: self.out_channels / self.groups,
        };
        checked_product(&g.output_shape(), op, "the output size")?;
        // im2col columns of one image: C_in/groups * kH * kW rows by H_out * W_out.
        checked_product(
            &[g.cig, g.k[0], g.k[1], oh, ow],
            op,
            "the im2col buffer size",
        )?;
        Ok(g)
    }
}

/// Product of `dims`, or [`ConvError::Overflow`].
pub(crate) fn checked_product(
    dims: &[usize],
    op: &'static str,
    what: &'static str,
) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or(ConvError::Overflow { op, what })
}

/// The sizes of one checked convolution call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub oh: usize,
    pub ow: usize,
    pub k: [usize; 2],
    pub s: [usize; 2],
    pub p: [usize; 2],
    pub d: [usize; 2],
    pub groups: usize,
    /// Input channels per group.
    pub cig: usize,
    /// Output channels per group.
    pub cog: usize,
}

impl Geometry {
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.c_out, self.oh, self.ow]
    }

    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.c_in, self.h, self.w]
    }

    /// Rows of the im2col matrix of one group: `C_in/groups * kH * kW`.
    pub fn col_rows(&self) -> usize {
        self.cig * self.k[0] * self.k[1]
    }

    pub fn in_plane(&self) -> usize {
        self.h * self.w
    }

    pub fn out_plane(&self) -> usize {
        self.oh * self.ow
    }

    /// A 1x1 kernel with stride 1 and no padding: the input planes are the
    /// im2col matrix already.
    pub fn is_pointwise_direct(&self) -> bool {
        self.k == [1, 1] && self.s == [1, 1] && self.p == [0, 0]
    }

    /// One group per input channel, more than one channel.
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.c_in
    }

    /// Checks `grad_output` against the forward output shape.
    pub fn check_grad_output(&self, op: &'static str, got: [usize; 4]) -> Result<()> {
        let expected = self.output_shape();
        if got != expected {
            return Err(ConvError::GradOutputShape {
                op,
                expected,
                got,
                input: self.input_shape(),
            });
        }
        Ok(())
    }
}
