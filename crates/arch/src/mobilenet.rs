//! [`MobileNet`]: small depthwise-separable networks with a width
//! multiplier — MobileNet-style (separable blocks, Howard et al. 2017) and
//! MobileNetV2-style (inverted residuals, Sandler et al. 2018), with
//! strides for small images.

use gradlab_conv::Conv2dSpec;
use gradlab_nn::{ActivationKind, Init, Scope};
use gradlab_tensor::Element;

use crate::block::{Block, BlockOptions, ShortcutOption};
use crate::body::{network_via_body, Body, Input, Stage, MAX_BLOCKS};
use crate::error::{ArchError, Result};
use crate::resnet::head_pool_fc;

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
#[derive(Debug)]
pub struct MobileNet<T: Element = f32> {
    config: MobileNetConfig,
    body: Body<T>,
}

network_via_body!(MobileNet);

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
        let input = Input::Image {
            channels: config.in_channels,
            min_size: config.total_stride(),
        };
        let mut body = Body::new(scope, config.label(), config.num_classes, input);
        let c0 = config.scaled(config.stem_channels);
        body.stem_point = Some(c0);
        let spec = Conv2dSpec::new(config.in_channels, c0, 3)
            .stride(config.stem_stride)
            .padding(1);
        let names = ["conv", "bn", "act"];
        u.conv_bn_act(&mut body.stem, &scope.pp("stem"), names, spec, true)?;
        let mut cin = c0;
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
            body.stages.push(Stage::named(&ss, blocks));
        }
        head_pool_fc(&mut body.head, &scope.pp("head"), cin, config.num_classes)?;
        Ok(MobileNet {
            config: config.clone(),
            body,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &MobileNetConfig {
        &self.config
    }

    /// The blocks, input to output.
    pub fn blocks(&self) -> impl Iterator<Item = &Block<T>> {
        self.body.blocks()
    }
}
