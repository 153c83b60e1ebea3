//! The parameter-free "option A" shortcut of He et al. (2016): identity with
//! stride-`s` subsampling and zero-padded extra channels, as an autodiff op
//! ([`ShortcutAOp`]) and a layer ([`ShortcutA`]).

use gradlab_autodiff::{expect_arity, AutodiffError, Op, Result as AdResult, Var};
use gradlab_nn::{Ctx, HasParams, LayerInfo, LayerKind, Module, NnError, Param, Scope};
use gradlab_tensor::{Element, Tensor};
use rayon::prelude::*;

/// Subsampling plus channel zero-padding, the shortcut of He et al. 2016,
/// §4.2, option A: `y[n, front + c, i, j] = x[n, c, s i, s j]` for every
/// input channel `c`, zero in the `out_channels - in_channels` other
/// channels (`front = (out - in) / 2` of them before, the rest after, as
/// the usual `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))`
/// does for a doubling).
///
/// # Shapes
/// Input `[N, C_in, H, W]`, output `[N, C_out, ceil(H / s), ceil(W / s)]`
/// (the size a 3x3 convolution with padding 1 and stride `s` gives).
///
/// VJP: `dx[n, c, s i, s j] = dy[n, front + c, i, j]`, zero at the pixels the
/// subsampling skips; the padded channels receive no gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortcutAOp {
    /// Output channels (at least the input's).
    pub out_channels: usize,
    /// Subsampling step (1 keeps every pixel).
    pub stride: usize,
}

impl ShortcutAOp {
    fn geometry(&self, shape: &[usize]) -> AdResult<([usize; 4], [usize; 2], usize)> {
        let bad = |reason: String| AutodiffError::Op {
            op: "shortcut_a",
            reason,
        };
        let &[n, c, h, w] = shape else {
            return Err(bad(format!(
                "input must have shape [N, C, H, W], got {shape:?}"
            )));
        };
        if self.stride == 0 {
            return Err(bad("stride must be positive, got 0".into()));
        }
        if c > self.out_channels {
            return Err(bad(format!(
                "input has {c} channels, more than the {} output channels (option A only pads)",
                self.out_channels
            )));
        }
        let out = [h.div_ceil(self.stride), w.div_ceil(self.stride)];
        [n, self.out_channels, out[0], out[1]]
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| {
                bad(format!(
                    "an output of {} channels for input {shape:?} is too large",
                    self.out_channels
                ))
            })?;
        Ok(([n, c, h, w], out, (self.out_channels - c) / 2))
    }
}

impl<T: Element> Op<T> for ShortcutAOp {
    fn name(&self) -> &'static str {
        "shortcut_a"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> AdResult<Tensor<T>> {
        expect_arity("shortcut_a", inputs, 1)?;
        let ([n, c, h, w], [oh, ow], front) = self.geometry(inputs[0].shape())?;
        let co = self.out_channels;
        let s = self.stride;
        let xs = inputs[0].as_slice();
        let mut y = vec![T::zero(); n * co * oh * ow];
        // One task per image (the op ran on one thread, ~2% of a ResNet-20
        // step with the other idle).
        y.par_chunks_mut((co * oh * ow).max(1))
            .zip(xs.par_chunks((c * h * w).max(1)))
            .for_each(|(y_n, x_n)| {
                for ch in 0..c {
                    let src = &x_n[ch * h * w..][..h * w];
                    let dst = &mut y_n[(front + ch) * oh * ow..][..oh * ow];
                    for i in 0..oh {
                        for j in 0..ow {
                            dst[i * ow + j] = src[i * s * w + j * s];
                        }
                    }
                }
            });
        Ok(Tensor::from_vec(&[n, co, oh, ow], y)?)
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        _output: &Tensor<T>,
        grad_output: &Tensor<T>,
        needs: &[bool],
    ) -> AdResult<Vec<Option<Tensor<T>>>> {
        if !needs[0] {
            return Ok(vec![None]);
        }
        let ([n, c, h, w], [oh, ow], front) = self.geometry(inputs[0].shape())?;
        let co = self.out_channels;
        let s = self.stride;
        if grad_output.shape() != [n, co, oh, ow] {
            return Err(AutodiffError::Op {
                op: "shortcut_a",
                reason: format!(
                    "output gradient of shape {:?} for an output of shape {:?}",
                    grad_output.shape(),
                    [n, co, oh, ow]
                ),
            });
        }
        let dys = grad_output.as_slice();
        let mut dx = vec![T::zero(); n * c * h * w];
        dx.par_chunks_mut((c * h * w).max(1))
            .zip(dys.par_chunks((co * oh * ow).max(1)))
            .for_each(|(dx_n, dy_n)| {
                for ch in 0..c {
                    let src = &dy_n[(front + ch) * oh * ow..][..oh * ow];
                    let dst = &mut dx_n[ch * h * w..][..h * w];
                    for i in 0..oh {
                        for j in 0..ow {
                            dst[i * s * w + j * s] = src[i * ow + j];
                        }
                    }
                }
            });
        Ok(vec![Some(Tensor::from_vec(&[n, c, h, w], dx)?)])
    }
}

/// The option-A shortcut as a layer (no parameters): applies
/// [`ShortcutAOp`] and taps its output under its name (`<block>.shortcut`).
///
/// # Shapes
/// Input `[N, C_in, H, W]`, output `[N, C_out, ceil(H / s), ceil(W / s)]`.
///
/// # Examples
/// ```
/// use gradlab_arch::ShortcutA;
/// use gradlab_nn::{Ctx, Module, Scope};
/// use gradlab_tensor::Tensor;
/// let mut sc = ShortcutA::<f32>::new(&Scope::new(0).pp("shortcut"), 2, 4, 2)?;
/// let mut cx = Ctx::new();
/// let x = cx.input(Tensor::ones(&[1, 2, 5, 5]));
/// let y = sc.forward(&mut cx, x)?;
/// let y = cx.value(y)?;
/// assert_eq!(y.shape(), &[1, 4, 3, 3]);
/// // one zero channel before the input's two, one after
/// assert_eq!(y.sum(&[0, 2, 3], false)?.to_vec(), vec![0.0, 9.0, 9.0, 0.0]);
/// # Ok::<(), gradlab_arch::ArchError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ShortcutA<T: Element = f32> {
    name: String,
    in_channels: usize,
    op: ShortcutAOp,
    training: bool,
    _elem: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element> ShortcutA<T> {
    /// A shortcut from `in_channels` to `out_channels` with subsampling
    /// step `stride`, named by `scope`.
    ///
    /// # Errors
    /// [`ArchError::InvalidConfig`](crate::ArchError::InvalidConfig) for a zero
    /// channel count or stride, or fewer output than input channels.
    pub fn new(
        scope: &Scope,
        in_channels: usize,
        out_channels: usize,
        stride: usize,
    ) -> crate::Result<Self> {
        let name = scope.prefix().to_string();
        if in_channels == 0 || stride == 0 {
            return Err(crate::ArchError::config(
                name,
                "shortcut",
                format!("in_channels={in_channels}, stride={stride}"),
                "channels and stride must be positive",
            ));
        }
        if out_channels < in_channels {
            return Err(crate::ArchError::config(
                name,
                "shortcut",
                format!("{in_channels} -> {out_channels} channels"),
                "option A only zero-pads channels; it cannot reduce them (use option B)",
            ));
        }
        Ok(ShortcutA {
            name,
            in_channels,
            op: ShortcutAOp {
                out_channels,
                stride,
            },
            training: true,
            _elem: std::marker::PhantomData,
        })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.op.out_channels
    }

    /// Subsampling step.
    pub fn stride(&self) -> usize {
        self.op.stride
    }
}

impl<T: Element> HasParams<T> for ShortcutA<T> {
    fn visit_params<'a>(&'a self, _f: &mut dyn FnMut(&'a Param<T>)) {}
    fn visit_params_mut<'a>(&'a mut self, _f: &mut dyn FnMut(&'a mut Param<T>)) {}
}

impl<T: Element> Module<T> for ShortcutA<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> gradlab_nn::Result<Var> {
        let shape = cx.value(x)?.shape();
        if shape.len() != 4 || shape[1] != self.in_channels {
            return Err(NnError::InputShape {
                layer: self.name.clone(),
                expected: format!("[N, {}, H, W]", self.in_channels),
                got: shape.to_vec(),
            });
        }
        let y = cx.graph_mut().apply(self.op, &[x])?;
        cx.tap(&self.name, y);
        Ok(y)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn describe(&self, out: &mut Vec<LayerInfo>) {
        let kind = LayerKind::ShortcutA {
            in_channels: self.in_channels,
            out_channels: self.op.out_channels,
            stride: self.op.stride,
        };
        out.push(LayerInfo::leaf(self, kind));
    }
}
