//! [`MobileNet`]: small depthwise-separable networks with a width
//! multiplier — MobileNet-style (separable blocks, Howard et al. 2017) and
//! MobileNetV2-style (inverted residuals, Sandler et al. 2018), with
//! strides for small images.

use gradlab_autodiff::Var;
use gradlab_conv::Conv2dSpec;
use gradlab_nn::{
    ActivationKind, Ctx, HasParams, Init, Linear, LinearConfig, Module, Param, Scope,
};
use gradlab_tensor::Element;

use crate::block::{Block, BlockOptions, ShortcutOption};
use crate::classifier::{check_image, Classifier, Point, PointKind};
use crate::error::{ArchError, Result};
use crate::layer::{gap, Chain, Layer, LayerInfo};
use crate::resnet::{Stage, MAX_BLOCKS};

/// Which block a [`MobileNet`] stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MobileBlock {
    /// The depthwise-separable block ([`Block::separable`]).
    Separable,
    /// The inverted-residual block ([`Block::inverted_residual`]), with each
    /// stage's expansion.
    InvertedResidual,
}

/// One stage of a [`MobileNet`]: `blocks` blocks with `channels` output
/// channels (before the width multiplier), the first with stride `stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MobileStage {
    /// Output channels at width multiplier 1.
    pub channels: usize,
    /// Number of blocks.
    pub blocks: usize,
    /// Stride of the first block (1 or 2).
    pub stride: usize,
    /// Expansion of inverted-residual blocks (ignored by separable ones).
    pub expansion: usize,
}

/// The configuration of a [`MobileNet`].
#[derive(Debug, Clone, PartialEq)]
pub struct MobileNetConfig {
    /// Input image channels (default 3).
    pub in_channels: usize,
    /// Number of classes (default 10).
    pub num_classes: usize,
    /// Multiplies every channel count (`alpha` of Howard et al.; default 1).
    pub width_multiplier: f64,
    /// Scaled channel counts are rounded to a multiple of this (at least
    /// this), as the reference implementations do with 8 (default 8).
    pub channel_divisor: usize,
    /// Stem (3x3 convolution, BN, activation) output channels at multiplier 1.
    pub stem_channels: usize,
    /// Stem stride (1 for small images, 2 for ImageNet).
    pub stem_stride: usize,
    /// The stages.
    pub stages: Vec<MobileStage>,
    /// The block.
    pub block: MobileBlock,
    /// Shortcuts of inverted-residual blocks (`false` for a plain twin).
    pub residual: bool,
    /// The non-linearity (default ReLU; the papers use ReLU / ReLU6).
    pub activation: ActivationKind,
    /// BatchNorm after every convolution (default `true`).
    pub batch_norm: bool,
    /// Initialisation of convolution weights (default Kaiming normal).
    pub init: Init,
    /// Multiplies the standard deviation of `init` (default 1).
    pub gain: f64,
}

impl MobileNetConfig {
    /// A small MobileNet for 32x32 images: a 3x3 stem to 32 channels
    /// (stride 1), then seven separable blocks in four stages —
    /// 64; 128 (stride 2), 128; 256 (stride 2), 256; 512 (stride 2), 512 —
    /// global average pooling and a 10-way linear layer. The first part of
    /// MobileNet v1 (Howard et al. 2017, Table 1) with its first stride
    /// removed; downsamples by 8.
    pub fn small() -> Self {
        let st = |channels, blocks, stride| MobileStage {
            channels,
            blocks,
            stride,
            expansion: 1,
        };
        MobileNetConfig {
            in_channels: 3,
            num_classes: 10,
            width_multiplier: 1.0,
            channel_divisor: 8,
            stem_channels: 32,
            stem_stride: 1,
            stages: vec![st(64, 1, 1), st(128, 2, 2), st(256, 2, 2), st(512, 2, 2)],
            block: MobileBlock::Separable,
            residual: true,
            activation: ActivationKind::Relu,
            batch_norm: true,
            init: Init::kaiming_relu(),
            gain: 1.0,
        }
    }

    /// A small MobileNetV2-style network for 32x32 images: a 3x3 stem to 32
    /// channels (stride 1), inverted-residual stages (expansion, channels,
    /// blocks, stride) = (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2),
    /// (6, 64, 3, 2), (6, 96, 2, 1), (6, 160, 2, 2): MobileNetV2 (Sandler et
    /// al. 2018, Table 2) with fewer blocks, the first two strides removed and
    /// no final 1x1 convolution to 1280 channels; downsamples by 8.
    pub fn small_v2() -> Self {
        let st = |expansion, channels, blocks, stride| MobileStage {
            channels,
            blocks,
            stride,
            expansion,
        };
        MobileNetConfig {
            stages: vec![
                st(1, 16, 1, 1),
                st(6, 24, 2, 1),
                st(6, 32, 3, 2),
                st(6, 64, 3, 2),
                st(6, 96, 2, 1),
                st(6, 160, 2, 2),
            ],
            block: MobileBlock::InvertedResidual,
            ..Self::small()
        }
    }

    /// Sets the width multiplier (`mobilenet:width=0.5`).
    pub fn with_width(mut self, multiplier: f64) -> Self {
        self.width_multiplier = multiplier;
        self
    }

    /// `channels * width_multiplier` rounded to the nearest multiple of the
    /// divisor (at least the divisor, and never below 90% of the exact
    /// value), as the MobileNet reference code's `_make_divisible`.
    pub fn scaled(&self, channels: usize) -> usize {
        let d = self.channel_divisor.max(1);
        let v = channels as f64 * self.width_multiplier;
        let mut r = (((v + d as f64 / 2.0) / d as f64).floor() as usize)
            .saturating_mul(d)
            .max(d);
        if (r as f64) < 0.9 * v {
            r = r.saturating_add(d);
        }
        r
    }

    /// The factor the network downsamples by: the smallest input size it takes.
    pub fn total_stride(&self) -> usize {
        self.stages.iter().fold(self.stem_stride.max(1), |acc, s| {
            acc.saturating_mul(s.stride.max(1))
        })
    }

    /// A short label: `mobilenet-w0.5`, `mobilenetv2-w1`, `plain-mobilenetv2-w1`.
    pub fn label(&self) -> String {
        let base = match self.block {
            MobileBlock::Separable => "mobilenet",
            MobileBlock::InvertedResidual if self.residual => "mobilenetv2",
            MobileBlock::InvertedResidual => "plain-mobilenetv2",
        };
        format!("{base}-w{}", self.width_multiplier)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`ArchError::InvalidConfig`] naming the field and value.
    pub fn validate(&self) -> Result<()> {
        let net = self.label();
        let positive = |field: &'static str, v: usize| {
            if v == 0 {
                Err(ArchError::config(&net, field, v, "must be positive"))
            } else {
                Ok(())
            }
        };
        positive("in_channels", self.in_channels)?;
        positive("num_classes", self.num_classes)?;
        positive("channel_divisor", self.channel_divisor)?;
        positive("stem_channels", self.stem_channels)?;
        positive("stem_stride", self.stem_stride)?;
        if !(self.width_multiplier > 0.0 && self.width_multiplier <= 64.0) {
            return Err(ArchError::config(
                &net,
                "width_multiplier",
                self.width_multiplier,
                "must lie in (0, 64]",
            ));
        }
        if !(self.gain > 0.0 && self.gain.is_finite()) {
            return Err(ArchError::config(
                &net,
                "gain",
                self.gain,
                "must be positive and finite",
            ));
        }
        if self.stages.is_empty() || self.stages.len() > 16 {
            return Err(ArchError::config(
                &net,
                "stages",
                self.stages.len(),
                "between 1 and 16 stages",
            ));
        }
        let blocks = self
            .stages
            .iter()
            .fold(0usize, |a, s| a.saturating_add(s.blocks));
        if blocks > MAX_BLOCKS {
            return Err(ArchError::config(
                &net,
                "stages",
                format!("{blocks} blocks"),
                format!("at most {MAX_BLOCKS} blocks in all"),
            ));
        }
        for (i, s) in self.stages.iter().enumerate() {
            if s.channels == 0 || s.blocks == 0 || !(1..=2).contains(&s.stride) || s.expansion == 0
            {
                return Err(ArchError::config(
                    &net,
                    "stages",
                    format!("stage {}: {s:?}", i + 1),
                    "every stage needs positive channels, blocks and expansion, and stride 1 or 2",
                ));
            }
        }
        Ok(())
    }
}

/// A small MobileNet-style network (see [`MobileNetConfig::small`] and
/// [`MobileNetConfig::small_v2`]).
///
/// ```text
/// input [N, 3, H, W]
/// stem.conv 3x3 -> stem.bn -> stem.act                    tap "stem"
/// stage1.block1                                           taps "stage1.block1", "stage1"
/// stage2.block1 (stride 2), stage2.block2 ...             ...
/// head.pool (global average) -> head.fc                   logits [N, K]
/// ```
///
/// Separable blocks are `dw bn1 act1 pw bn2 act2`; inverted-residual ones
/// `expand bn1 act1 dw bn2 act2 project bn3 [+]`. Taps: every leaf layer,
/// `stem`, every `stageS.blockB` and `stageS` (input to output).
///
/// # Examples
/// ```
/// use gradlab_arch::{MobileNet, MobileNetConfig};
/// use gradlab_nn::{Ctx, Module, Scope};
/// use gradlab_tensor::Tensor;
/// let mut net = MobileNet::<f32>::new(&Scope::new(0), &MobileNetConfig::small().with_width(0.5))?;
/// let mut cx = Ctx::new();
/// let x = cx.input(Tensor::ones(&[2, 3, 8, 8]));
/// let y = net.forward(&mut cx, x)?;
/// assert_eq!(cx.value(y)?.shape(), &[2, 10]);
/// # Ok::<(), gradlab_arch::ArchError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MobileNet<T: Element = f32> {
    name: String,
    config: MobileNetConfig,
    label: String,
    stem: Chain<T>,
    stem_name: String,
    stem_channels: usize,
    stages: Vec<Stage<T>>,
    head: Chain<T>,
    training: bool,
}

impl<T: Element> MobileNet<T> {
    /// Builds the network in `scope`.
    ///
    /// # Errors
    /// [`ArchError::InvalidConfig`] from [`MobileNetConfig::validate`].
    pub fn new(scope: &Scope, config: &MobileNetConfig) -> Result<Self> {
        config.validate()?;
        let options = BlockOptions {
            shortcut: config.residual.then_some(ShortcutOption::A),
            preact: false,
            activation: config.activation,
            batch_norm: config.batch_norm,
            init: config.init.clone(),
            gain: config.gain,
            bias_init: Init::TorchDefault,
        };
        let u = options.units();
        let s = scope.pp("stem");
        let c0 = config.scaled(config.stem_channels);
        let mut stem = Chain::new();
        let spec = Conv2dSpec::new(config.in_channels, c0, 3)
            .stride(config.stem_stride)
            .padding(1);
        u.conv_bn_act(&mut stem, &s, ["conv", "bn", "act"], spec, true)?;
        let mut cin = c0;
        let mut stages = Vec::with_capacity(config.stages.len());
        for (i, st) in config.stages.iter().enumerate() {
            let ss = scope.pp(format!("stage{}", i + 1));
            let cout = config.scaled(st.channels);
            let mut blocks = Vec::with_capacity(st.blocks);
            for j in 0..st.blocks {
                let bs = ss.pp(format!("block{}", j + 1));
                let stride = if j == 0 { st.stride } else { 1 };
                blocks.push(match config.block {
                    MobileBlock::Separable => Block::separable(&bs, cin, cout, stride, &options)?,
                    MobileBlock::InvertedResidual => {
                        Block::inverted_residual(&bs, cin, cout, stride, st.expansion, &options)?
                    }
                });
                cin = cout;
            }
            stages.push(Stage {
                name: ss.prefix().to_string(),
                blocks,
            });
        }
        let h = scope.pp("head");
        let mut head = Chain::new();
        head.push(gap(&h.pp("pool")));
        head.push(Layer::Linear(Linear::new(
            &h.pp("fc"),
            cin,
            config.num_classes,
            LinearConfig::default(),
        )?));
        Ok(MobileNet {
            name: scope.prefix().to_string(),
            config: config.clone(),
            label: config.label(),
            stem,
            stem_name: s.prefix().to_string(),
            stem_channels: c0,
            stages,
            head,
            training: true,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &MobileNetConfig {
        &self.config
    }

    /// The blocks, input to output.
    pub fn blocks(&self) -> impl Iterator<Item = &Block<T>> {
        self.stages.iter().flat_map(|s| s.blocks.iter())
    }
}

impl<T: Element> HasParams<T> for MobileNet<T> {
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        self.stem.visit_params(f);
        for b in self.blocks() {
            b.visit_params(f);
        }
        self.head.visit_params(f);
    }

    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        self.stem.visit_params_mut(f);
        for s in &mut self.stages {
            for b in &mut s.blocks {
                b.visit_params_mut(f);
            }
        }
        self.head.visit_params_mut(f);
    }
}

impl<T: Element> Module<T> for MobileNet<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> gradlab_nn::Result<Var> {
        self.check_input(cx.value(x)?.shape())
            .map_err(ArchError::into_nn)?;
        let mut h = self.stem.forward(cx, x)?;
        cx.tap(&self.stem_name, h);
        for s in &mut self.stages {
            h = s.forward(cx, h)?;
        }
        self.head.forward(cx, h)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.stem.set_training(training);
        for s in &mut self.stages {
            for b in &mut s.blocks {
                b.set_training(training);
            }
        }
        self.head.set_training(training);
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

impl<T: Element> Classifier<T> for MobileNet<T> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        check_image(
            &self.label,
            shape,
            self.config.in_channels,
            self.config.total_stride(),
        )
    }

    fn points(&self) -> Vec<Point> {
        let mut out = vec![Point {
            name: self.stem_name.clone(),
            kind: PointKind::Stem,
            channels: self.stem_channels,
        }];
        for s in &self.stages {
            s.points(&mut out);
        }
        out
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut out = Vec::new();
        self.stem.infos(&mut out);
        for b in self.blocks() {
            b.infos(&mut out);
        }
        self.head.infos(&mut out);
        out
    }
}
