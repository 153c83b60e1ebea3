//! [`Block`]: every block of the architectures in one type — the residual
//! BasicBlock and Bottleneck (post- or pre-activation, shortcut option A or
//! B, or none for plain twins), the MobileNet depthwise-separable block, the
//! inverted-residual block, and one layer of a deep plain stack.
//!
//! A block is `pre -> main -> (+ shortcut) -> post`: `pre` is the
//! pre-activation (BN, activation) of the pre-activation variant, `main` the
//! residual branch, `post` the activation after the addition of the
//! post-activation variant. Its output is tapped under the block's name.

use gradlab_autodiff::Var;
use gradlab_conv::Conv2dSpec;
use gradlab_nn::{
    relu_name, ActivationKind, Ctx, HasParams, Init, LayerInfo, Module, Param, Scope, Sequential,
};
use gradlab_tensor::Element;

use crate::error::{ArchError, Result};
use crate::layer::Units;
use crate::shortcut::ShortcutA;

/// What a [`Block`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockKind {
    /// Two 3x3 convolutions (He et al. 2016, Fig. 2 left).
    Basic,
    /// 1x1 reduce, 3x3, 1x1 expand (He et al. 2016, Fig. 5 right); the 1x1
    /// convolutions do the channel mixing, the 3x3 one works on the reduced width.
    Bottleneck,
    /// Depthwise 3x3 + BN + activation, then pointwise 1x1 + BN + activation
    /// (Howard et al. 2017, MobileNet, Fig. 3 right).
    Separable,
    /// Expand 1x1, depthwise 3x3, linear 1x1 projection, shortcut when the
    /// shapes match (Sandler et al. 2018, MobileNetV2).
    InvertedResidual,
    /// One layer of a deep plain stack: convolution or linear layer,
    /// optional BN, activation ([`PlainCnn`](crate::PlainCnn), [`PlainMlp`](crate::PlainMlp)).
    Layer,
}

/// Which shortcut a residual block uses when its input and output shapes
/// differ (He et al. 2016, §3.3). When they match, both are the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ShortcutOption {
    /// Identity with stride-2 subsampling and zero-padded extra channels:
    /// no parameters ([`ShortcutA`]). The paper's CIFAR networks use it, so
    /// residual and plain networks have the same parameter count.
    #[default]
    A,
    /// A 1x1 projection convolution (stride 2 where the block downsamples)
    /// followed by BN (`<block>.shortcut.conv`, `<block>.shortcut.bn`); in a
    /// pre-activation block the convolution alone, applied to the
    /// pre-activated input (He et al. 2016b).
    B,
}

/// How a block builds its layers.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockOptions {
    /// `Some(option)` for a residual block, `None` for its plain twin
    /// (the same layers with the shortcut addition removed).
    pub shortcut: Option<ShortcutOption>,
    /// Pre-activation ordering (He et al., "Identity Mappings in Deep
    /// Residual Networks", 2016): BN and activation before each
    /// convolution, nothing after the addition.
    pub preact: bool,
    /// The non-linearity (default ReLU).
    pub activation: ActivationKind,
    /// BatchNorm after (or, pre-activation, before) each convolution
    /// (default `true`). Without it, convolutions get a bias.
    pub batch_norm: bool,
    /// Initialisation of convolution weights (default Kaiming normal,
    /// fan-in, ReLU gain, as He et al.).
    pub init: Init,
    /// Multiplies the standard deviation of `init` (default 1).
    pub gain: f64,
    /// Initialisation of biases, when there are any (default PyTorch's).
    pub bias_init: Init,
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions {
            shortcut: Some(ShortcutOption::A),
            preact: false,
            activation: ActivationKind::Relu,
            batch_norm: true,
            init: Init::kaiming_relu(),
            gain: 1.0,
            bias_init: Init::TorchDefault,
        }
    }
}

impl BlockOptions {
    pub(crate) fn units(&self) -> Units {
        Units {
            activation: self.activation,
            batch_norm: self.batch_norm,
            init: self.init.clone(),
            gain: self.gain,
            bias_init: self.bias_init.clone(),
        }
    }
}

/// The shortcut path of a block.
#[derive(Debug)]
enum Path<T: Element> {
    /// Plain: no addition.
    None,
    /// `out = main(x) + x` (or + the skip input given to the block).
    Identity,
    /// `out = main(x) + shortcut_a(x)`.
    A(ShortcutA<T>),
    /// `out = main(x) + bn(conv1x1(x))`.
    Projection(Sequential<T>),
}

/// A block of a network, `pre -> main -> (+ shortcut) -> post`: `pre` is the
/// pre-activation (BN, activation) of pre-activation blocks, `main` the
/// residual branch, `post` the activation after the addition of
/// post-activation blocks. One type for every kind, built by
/// [`Block::basic`], [`Block::bottleneck`], [`Block::separable`],
/// [`Block::inverted_residual`]. Its output is tapped under its name.
///
/// Layer names inside a block named `b` (post-activation / pre-activation):
///
/// | kind | layers |
/// |---|---|
/// | Basic | `b.conv1 b.bn1 b.act1 b.conv2 b.bn2 [+] b.act2` / `b.bn1 b.act1 b.conv1 b.bn2 b.act2 b.conv2 [+]` |
/// | Bottleneck | `conv1 bn1 act1 conv2 bn2 act2 conv3 bn3 [+] act3` / `bn1 act1 conv1 bn2 act2 conv2 bn3 act3 conv3 [+]` |
/// | Separable | `dw bn1 act1 pw bn2 act2` |
/// | InvertedResidual | `expand bn1 act1 dw bn2 act2 project bn3 [+]` (no `expand` when the expansion is 1) |
///
/// `[+]` is the shortcut addition; the shortcut itself is `b.shortcut`
/// (option A, tapped) or `b.shortcut.conv`, `b.shortcut.bn` (option B;
/// no `bn` in pre-activation blocks).
/// Without BatchNorm the `bn*` layers are absent and convolutions have a bias.
///
/// # Shapes
/// Input `[N, C_in, H, W]`, output `[N, C_out, ceil(H / s), ceil(W / s)]`.
///
/// # Examples
/// ```
/// use gradlab_arch::{Block, BlockOptions};
/// use gradlab_nn::{Ctx, HasParams, Module, Scope};
/// use gradlab_tensor::Tensor;
/// let root = Scope::new(0);
/// let mut b = Block::<f32>::basic(&root.pp("stage2").pp("block1"), 16, 32, 2, &BlockOptions::default())?;
/// assert_eq!(b.num_trainable(), 16 * 32 * 9 + 32 * 32 * 9 + 4 * 32); // option A: no shortcut parameters
/// let mut cx = Ctx::new();
/// let x = cx.input(Tensor::ones(&[2, 16, 8, 8]));
/// let y = b.forward(&mut cx, x)?;
/// assert_eq!(cx.value(y)?.shape(), &[2, 32, 4, 4]);
/// assert_eq!(cx.tapped("stage2.block1"), Some(y));
/// # Ok::<(), gradlab_arch::ArchError>(())
/// ```
#[derive(Debug)]
pub struct Block<T: Element = f32> {
    name: String,
    kind: BlockKind,
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    preact: bool,
    pre: Sequential<T>,
    main: Sequential<T>,
    shortcut: Path<T>,
    post: Sequential<T>,
    training: bool,
}

fn check_dims(name: &str, what: &[(&'static str, usize)]) -> Result<()> {
    for &(field, v) in what {
        if v == 0 {
            return Err(ArchError::config(name, field, v, "must be positive"));
        }
    }
    Ok(())
}

impl<T: Element> Block<T> {
    fn empty(scope: &Scope, kind: BlockKind, cin: usize, cout: usize, stride: usize) -> Self {
        Block {
            name: scope.prefix().to_string(),
            kind,
            in_channels: cin,
            out_channels: cout,
            stride,
            preact: false,
            pre: Sequential::new(scope),
            main: Sequential::new(scope),
            shortcut: Path::None,
            post: Sequential::new(scope),
            training: true,
        }
    }

    /// Builds the shortcut after the main path (so its depth index follows it).
    fn build_shortcut(&mut self, scope: &Scope, options: &BlockOptions, u: &Units) -> Result<()> {
        let same = self.in_channels == self.out_channels && self.stride == 1;
        self.shortcut = match options.shortcut {
            None => Path::None,
            Some(_) if same => Path::Identity,
            Some(ShortcutOption::A) => Path::A(ShortcutA::new(
                &scope.pp("shortcut"),
                self.in_channels,
                self.out_channels,
                self.stride,
            )?),
            Some(ShortcutOption::B) => {
                let s = scope.pp("shortcut");
                let mut chain = Sequential::new(&s);
                let spec =
                    Conv2dSpec::new(self.in_channels, self.out_channels, 1).stride(self.stride);
                // Post-activation: conv + BN, like the main path's end (a bias
                // instead of BN without BatchNorm). Pre-activation: the conv
                // alone, on the already normalised input (He et al. 2016b).
                chain.push(Box::new(u.conv(&s.pp("conv"), spec)?));
                if !self.preact {
                    u.bn2(&mut chain, &s.pp("bn"), self.out_channels)?;
                }
                Path::Projection(chain)
            }
        };
        Ok(())
    }

    /// The pre-activation of a pre-activation block: `bn1 -> act1` on the input.
    fn pre_activation(&mut self, scope: &Scope, u: &Units) -> Result<()> {
        u.bn2(&mut self.pre, &scope.pp("bn1"), self.in_channels)?;
        self.pre.push(Box::new(u.act(&scope.pp("act1"))?));
        Ok(())
    }

    /// Appends `bn{i} -> act{i} -> conv{i}` to the main path (pre-activation order).
    fn bn_act_conv(&mut self, scope: &Scope, u: &Units, i: usize, spec: Conv2dSpec) -> Result<()> {
        u.bn2(
            &mut self.main,
            &scope.pp(format!("bn{i}")),
            spec.in_channels,
        )?;
        self.main
            .push(Box::new(u.act(&scope.pp(format!("act{i}")))?));
        self.main
            .push(Box::new(u.conv(&scope.pp(format!("conv{i}")), spec)?));
        Ok(())
    }

    /// A BasicBlock: two 3x3 convolutions, the first with stride `stride`
    /// (He et al. 2016, Fig. 2 left; pre-activation: He et al. 2016b, Fig. 4e).
    /// PyTorch reference: torchvision's `BasicBlock`.
    ///
    /// # Errors
    /// [`ArchError::InvalidConfig`] for zero channels or stride, option A with
    /// fewer output than input channels; [`ArchError::Nn`] for a bad name.
    pub fn basic(
        scope: &Scope,
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        options: &BlockOptions,
    ) -> Result<Self> {
        let name = scope.prefix();
        check_dims(
            name,
            &[
                ("in_channels", in_channels),
                ("out_channels", out_channels),
                ("stride", stride),
            ],
        )?;
        let u = options.units();
        let mut b = Self::empty(scope, BlockKind::Basic, in_channels, out_channels, stride);
        b.preact = options.preact;
        let conv1 = Conv2dSpec::new(in_channels, out_channels, 3)
            .stride(stride)
            .padding(1);
        let conv2 = Conv2dSpec::new(out_channels, out_channels, 3).padding(1);
        if options.preact {
            b.pre_activation(scope, &u)?;
            b.main.push(Box::new(u.conv(&scope.pp("conv1"), conv1)?));
            b.bn_act_conv(scope, &u, 2, conv2)?;
            b.build_shortcut(scope, options, &u)?;
        } else {
            u.conv_bn_act(&mut b.main, scope, ["conv1", "bn1", "act1"], conv1, true)?;
            u.conv_bn_act(&mut b.main, scope, ["conv2", "bn2", ""], conv2, false)?;
            b.build_shortcut(scope, options, &u)?;
            b.post.push(Box::new(u.act(&scope.pp("act2"))?));
        }
        Ok(b)
    }

    /// A Bottleneck block: 1x1 reduce to `width`, 3x3 with stride `stride`,
    /// 1x1 expand to `width * expansion` output channels (He et al. 2016,
    /// Fig. 5 right; the stride sits on the 3x3 as in torchvision's
    /// `Bottleneck`, "ResNet v1.5").
    ///
    /// # Errors
    /// As [`Block::basic`], and for a zero expansion.
    pub fn bottleneck(
        scope: &Scope,
        in_channels: usize,
        width: usize,
        stride: usize,
        expansion: usize,
        options: &BlockOptions,
    ) -> Result<Self> {
        let name = scope.prefix();
        check_dims(
            name,
            &[
                ("in_channels", in_channels),
                ("width", width),
                ("stride", stride),
                ("expansion", expansion),
            ],
        )?;
        let out = width.checked_mul(expansion).ok_or_else(|| {
            ArchError::config(name, "expansion", expansion, "width * expansion overflows")
        })?;
        let u = options.units();
        let mut b = Self::empty(scope, BlockKind::Bottleneck, in_channels, out, stride);
        b.preact = options.preact;
        let conv1 = Conv2dSpec::new(in_channels, width, 1);
        let conv2 = Conv2dSpec::new(width, width, 3).stride(stride).padding(1);
        let conv3 = Conv2dSpec::new(width, out, 1);
        if options.preact {
            b.pre_activation(scope, &u)?;
            b.main.push(Box::new(u.conv(&scope.pp("conv1"), conv1)?));
            b.bn_act_conv(scope, &u, 2, conv2)?;
            b.bn_act_conv(scope, &u, 3, conv3)?;
            b.build_shortcut(scope, options, &u)?;
        } else {
            u.conv_bn_act(&mut b.main, scope, ["conv1", "bn1", "act1"], conv1, true)?;
            u.conv_bn_act(&mut b.main, scope, ["conv2", "bn2", "act2"], conv2, true)?;
            u.conv_bn_act(&mut b.main, scope, ["conv3", "bn3", ""], conv3, false)?;
            b.build_shortcut(scope, options, &u)?;
            b.post.push(Box::new(u.act(&scope.pp("act3"))?));
        }
        Ok(b)
    }

    /// A depthwise-separable block (MobileNet, Howard et al. 2017): a
    /// depthwise 3x3 convolution with stride `stride` (one filter per
    /// channel, no channel mixing: `9 C_in` weights), BN, activation, then a
    /// pointwise 1x1 convolution (all the channel mixing: `C_in C_out`
    /// weights), BN, activation. No shortcut; `options.shortcut` and
    /// `options.preact` are ignored.
    ///
    /// # Errors
    /// As [`Block::basic`].
    pub fn separable(
        scope: &Scope,
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        options: &BlockOptions,
    ) -> Result<Self> {
        let name = scope.prefix();
        check_dims(
            name,
            &[
                ("in_channels", in_channels),
                ("out_channels", out_channels),
                ("stride", stride),
            ],
        )?;
        let u = options.units();
        let mut b = Self::empty(
            scope,
            BlockKind::Separable,
            in_channels,
            out_channels,
            stride,
        );
        let dw = Conv2dSpec::new(in_channels, in_channels, 3)
            .stride(stride)
            .padding(1)
            .groups(in_channels);
        let pw = Conv2dSpec::new(in_channels, out_channels, 1);
        u.conv_bn_act(&mut b.main, scope, ["dw", "bn1", "act1"], dw, true)?;
        u.conv_bn_act(&mut b.main, scope, ["pw", "bn2", "act2"], pw, true)?;
        Ok(b)
    }

    /// An inverted-residual block (MobileNetV2, Sandler et al. 2018): a 1x1
    /// expansion to `in_channels * expansion` channels (skipped when the
    /// expansion is 1), BN, activation, a depthwise 3x3 convolution with
    /// stride `stride`, BN, activation, and a linear 1x1 projection to
    /// `out_channels`, BN, with no activation. The identity shortcut is added
    /// when `stride == 1`, the channel counts match and `options.shortcut`
    /// is `Some` (its option is not used: there is no shortcut otherwise).
    /// MobileNetV2 uses ReLU6; here the activation is `options.activation`.
    ///
    /// # Errors
    /// As [`Block::bottleneck`].
    pub fn inverted_residual(
        scope: &Scope,
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        expansion: usize,
        options: &BlockOptions,
    ) -> Result<Self> {
        let name = scope.prefix();
        check_dims(
            name,
            &[
                ("in_channels", in_channels),
                ("out_channels", out_channels),
                ("stride", stride),
                ("expansion", expansion),
            ],
        )?;
        let hidden = in_channels.checked_mul(expansion).ok_or_else(|| {
            ArchError::config(
                name,
                "expansion",
                expansion,
                "channels * expansion overflows",
            )
        })?;
        let u = options.units();
        let mut b = Self::empty(
            scope,
            BlockKind::InvertedResidual,
            in_channels,
            out_channels,
            stride,
        );
        if expansion != 1 {
            let expand = Conv2dSpec::new(in_channels, hidden, 1);
            u.conv_bn_act(&mut b.main, scope, ["expand", "bn1", "act1"], expand, true)?;
        }
        let dw = Conv2dSpec::new(hidden, hidden, 3)
            .stride(stride)
            .padding(1)
            .groups(hidden);
        let project = Conv2dSpec::new(hidden, out_channels, 1);
        u.conv_bn_act(&mut b.main, scope, ["dw", "bn2", "act2"], dw, true)?;
        u.conv_bn_act(&mut b.main, scope, ["project", "bn3", ""], project, false)?;
        if options.shortcut.is_some() && stride == 1 && in_channels == out_channels {
            b.shortcut = Path::Identity;
        }
        Ok(b)
    }

    /// One layer of a plain convolutional stack: 3x3 convolution (padding 1,
    /// stride 1), BN, activation, named `conv`, `bn`, `act`; an identity
    /// shortcut (added after the activation) when `residual`.
    pub(crate) fn conv_layer(
        scope: &Scope,
        in_channels: usize,
        out_channels: usize,
        residual: bool,
        u: &Units,
    ) -> Result<Self> {
        let mut b = Self::empty(scope, BlockKind::Layer, in_channels, out_channels, 1);
        let spec = Conv2dSpec::new(in_channels, out_channels, 3).padding(1);
        u.conv_bn_act(&mut b.main, scope, ["conv", "bn", "act"], spec, true)?;
        if residual {
            b.shortcut = Path::Identity;
        }
        Ok(b)
    }

    /// One layer of a plain fully connected stack: linear, BN, activation,
    /// named `fc`, `bn`, `act`; an identity shortcut when `residual`.
    pub(crate) fn linear_layer(
        scope: &Scope,
        in_features: usize,
        out_features: usize,
        residual: bool,
        u: &Units,
    ) -> Result<Self> {
        let mut b = Self::empty(scope, BlockKind::Layer, in_features, out_features, 1);
        let fc = u.linear(&scope.pp("fc"), in_features, out_features, false)?;
        b.main.push(Box::new(fc));
        u.bn1(&mut b.main, &scope.pp("bn"), out_features)?;
        b.main.push(Box::new(u.act(&scope.pp("act"))?));
        if residual {
            b.shortcut = Path::Identity;
        }
        Ok(b)
    }

    /// What the block is.
    pub fn kind(&self) -> BlockKind {
        self.kind
    }

    /// Input channels (features, for a fully connected layer).
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Output channels (features, for a fully connected layer).
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Stride of the block (the factor it downsamples by).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Whether the block adds a shortcut (false for plain twins and for
    /// blocks whose kind has none).
    pub fn has_shortcut(&self) -> bool {
        !matches!(self.shortcut, Path::None)
    }

    /// Whether the block uses pre-activation ordering.
    pub fn is_preact(&self) -> bool {
        self.preact
    }

    /// Its leaf layers, in forward order (pre, main, shortcut, post).
    pub fn layers(&self) -> Vec<LayerInfo> {
        let mut out = Vec::new();
        self.describe(&mut out);
        out
    }

    /// The shortcut path's output (not for [`Path::None`]).
    fn shortcut_forward(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        pre: Var,
        skip: Option<Var>,
    ) -> gradlab_nn::Result<Var> {
        match &mut self.shortcut {
            Path::None => Ok(x),
            Path::Identity => Ok(skip.unwrap_or(x)),
            Path::A(sc) => sc.forward(cx, x),
            Path::Projection(chain) => {
                // Pre-activation blocks project the pre-activated input (He et al. 2016b).
                let src = if self.preact { pre } else { x };
                chain.forward(cx, src)
            }
        }
    }

    /// Runs the block; an identity shortcut adds `skip` instead of the
    /// block's input when given (plain stacks with shortcuts every k layers).
    pub(crate) fn forward_skip(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        skip: Option<Var>,
    ) -> gradlab_nn::Result<Var> {
        let pre = self.pre.forward(cx, x)?;
        let relu = relu_name(&self.post);
        let y = match (&self.shortcut, relu) {
            // Post-activation with a shortcut: the branch's last BatchNorm,
            // the addition and the ReLU as one op where the branch allows
            // (else the addition and the ReLU as one): the same values,
            // without storing the normalised branch or the sum.
            (Path::Identity | Path::A(_) | Path::Projection(_), Some(relu)) => {
                let s = self.shortcut_forward(cx, x, pre, skip)?;
                match self.main.forward_then_add_relu(cx, pre, s, &relu) {
                    Some(y) => y?,
                    None => {
                        let h = self.main.forward(cx, pre)?;
                        let y = cx.graph_mut().add_relu(h, s)?;
                        cx.tap(&relu, y);
                        y
                    }
                }
            }
            // No shortcut, a ReLU after the branch (plain networks): the
            // branch's last BatchNorm and the ReLU as one op where it can.
            (Path::None, Some(relu)) => match self.main.forward_then_relu(cx, pre, &relu) {
                Some(y) => y?,
                None => {
                    let h = self.main.forward(cx, pre)?;
                    self.post.forward(cx, h)?
                }
            },
            (Path::None, None) => {
                let h = self.main.forward(cx, pre)?;
                self.post.forward(cx, h)?
            }
            (_, None) => {
                let h = self.main.forward(cx, pre)?;
                let s = self.shortcut_forward(cx, x, pre, skip)?;
                let h = cx.graph_mut().add(h, s)?;
                self.post.forward(cx, h)?
            }
        };
        cx.tap(&self.name, y);
        Ok(y)
    }
}

impl<T: Element> HasParams<T> for Block<T> {
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        self.pre.visit_params(f);
        self.main.visit_params(f);
        if let Path::Projection(c) = &self.shortcut {
            c.visit_params(f);
        }
        self.post.visit_params(f);
    }

    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        self.pre.visit_params_mut(f);
        self.main.visit_params_mut(f);
        if let Path::Projection(c) = &mut self.shortcut {
            c.visit_params_mut(f);
        }
        self.post.visit_params_mut(f);
    }
}

impl<T: Element> Module<T> for Block<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> gradlab_nn::Result<Var> {
        self.forward_skip(cx, x, None)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.pre.set_training(training);
        self.main.set_training(training);
        match &mut self.shortcut {
            Path::A(s) => s.set_training(training),
            Path::Projection(c) => c.set_training(training),
            Path::None | Path::Identity => {}
        }
        self.post.set_training(training);
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn describe(&self, out: &mut Vec<LayerInfo>) {
        self.pre.describe(out);
        self.main.describe(out);
        match &self.shortcut {
            Path::A(s) => s.describe(out),
            Path::Projection(c) => c.describe(out),
            Path::None | Path::Identity => {}
        }
        self.post.describe(out);
    }
}
