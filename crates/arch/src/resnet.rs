//! [`ResNet`]: residual networks (He et al. 2016) and their plain twins —
//! the CIFAR family `6n + 2` (20, 32, 44, 56, 110, ...), its bottleneck
//! version `9n + 2`, the ImageNet family (18, 34, 50, 101, 152), and any
//! stem, widths and blocks per stage in between.

use gradlab_conv::{Conv2dSpec, Pool2dSpec};
use gradlab_nn::{
    ActivationKind, GlobalAvgPool2d, Init, Linear, LinearConfig, MaxPool2d, Scope, Sequential,
};
use gradlab_tensor::Element;

use crate::block::{Block, BlockKind, BlockOptions, ShortcutOption};
use crate::body::{network_via_body, Body, Input, Stage, MAX_BLOCKS};
use crate::error::{ArchError, Result};

/// The layers before the first stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stem {
    /// A 3x3 convolution with stride 1 to `channels`, BN, activation
    /// (He et al. 2016, §4.2, for 32x32 images); no downsampling, so inputs
    /// down to 8x8 work. Pre-activation networks keep only the convolution.
    Small {
        /// Output channels (16 for the CIFAR networks).
        channels: usize,
    },
    /// A 7x7 convolution with stride 2 to `channels`, BN, activation, and
    /// a 3x3 max-pool with stride 2 (He et al. 2016, Table 1): downsamples by 4.
    ImageNet {
        /// Output channels (64 for the ImageNet networks).
        channels: usize,
    },
}

impl Stem {
    /// Output channels.
    pub fn channels(&self) -> usize {
        match *self {
            Stem::Small { channels } | Stem::ImageNet { channels } => channels,
        }
    }

    /// The factor the stem downsamples by.
    pub fn stride(&self) -> usize {
        match self {
            Stem::Small { .. } => 1,
            Stem::ImageNet { .. } => 4,
        }
    }
}

/// The configuration of a [`ResNet`] (or its plain twin). Start from
/// [`ResNetConfig::cifar`], [`ResNetConfig::cifar_bottleneck`] or
/// [`ResNetConfig::imagenet`] and change fields; [`ResNet::new`] validates.
///
/// Stage `i` (1-based) has `blocks[i-1]` blocks of width `widths[i-1]`
/// (a Bottleneck stage outputs `widths[i-1] * expansion` channels); every
/// stage after the first starts with a stride-2 block.
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetConfig {
    /// Input image channels (default 3).
    pub in_channels: usize,
    /// Number of classes `K` (default 10 for CIFAR, 1000 for ImageNet).
    pub num_classes: usize,
    /// The stem.
    pub stem: Stem,
    /// Width of each stage.
    pub widths: Vec<usize>,
    /// Blocks in each stage.
    pub blocks: Vec<usize>,
    /// [`BlockKind::Basic`] or [`BlockKind::Bottleneck`].
    pub block: BlockKind,
    /// Output channels of a Bottleneck block per unit of width (4).
    pub expansion: usize,
    /// Shortcut where shapes change (option A: CIFAR, B: ImageNet).
    pub shortcut: ShortcutOption,
    /// `true` for the residual network, `false` for its plain twin.
    pub residual: bool,
    /// Pre-activation blocks (He et al. 2016b) with a final BN + activation.
    pub preact: bool,
    /// The non-linearity (default ReLU; sigmoid/tanh for gradient studies).
    pub activation: ActivationKind,
    /// BatchNorm in stem and blocks (default `true`).
    pub batch_norm: bool,
    /// Initialisation of convolution weights (default Kaiming normal, as He et al.).
    pub init: Init,
    /// Multiplies the standard deviation of `init` (default 1).
    pub gain: f64,
}

impl ResNetConfig {
    fn base(stem: Stem, widths: Vec<usize>, blocks: Vec<usize>, block: BlockKind) -> Self {
        ResNetConfig {
            in_channels: 3,
            num_classes: 10,
            stem,
            widths,
            blocks,
            block,
            expansion: 4,
            shortcut: ShortcutOption::A,
            residual: true,
            preact: false,
            activation: ActivationKind::Relu,
            batch_norm: true,
            init: Init::kaiming_relu(),
            gain: 1.0,
        }
    }

    /// The CIFAR ResNet of `depth = 6n + 2` layers (He et al. 2016, §4.2):
    /// a 3x3 stem to 16 channels, three stages of `n` BasicBlocks with 16,
    /// 32, 64 channels on 32x32, 16x16, 8x8 maps, global average pooling
    /// and a 10-way linear layer; option-A shortcuts.
    ///
    /// # Errors
    /// [`ArchError::InvalidDepth`] unless `depth = 6n + 2` with `n >= 1`.
    ///
    /// # Examples
    /// ```
    /// use gradlab_arch::{ResNet, ResNetConfig};
    /// use gradlab_nn::{HasParams, Scope};
    /// let net = ResNet::<f32>::new(&Scope::new(0), &ResNetConfig::cifar(20)?)?;
    /// assert_eq!(net.num_trainable(), 269_722);
    /// assert!(ResNetConfig::cifar(21).is_err());
    /// # Ok::<(), gradlab_arch::ArchError>(())
    /// ```
    pub fn cifar(depth: usize) -> Result<Self> {
        if depth < 8 || !(depth - 2).is_multiple_of(6) {
            return Err(ArchError::InvalidDepth {
                network: "resnet".into(),
                depth,
                reason:
                    "a CIFAR ResNet has 6n + 2 layers with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...)"
                        .into(),
            });
        }
        let n = (depth - 2) / 6;
        Ok(Self::base(
            Stem::Small { channels: 16 },
            vec![16, 32, 64],
            vec![n; 3],
            BlockKind::Basic,
        ))
    }

    /// The CIFAR ResNet with Bottleneck blocks, `depth = 9n + 2` (He et al.
    /// 2016b use it for ResNet-164): stage widths 16, 32, 64, outputs 64,
    /// 128, 256; option-A shortcuts.
    ///
    /// # Errors
    /// [`ArchError::InvalidDepth`] unless `depth = 9n + 2` with `n >= 1`.
    pub fn cifar_bottleneck(depth: usize) -> Result<Self> {
        if depth < 11 || !(depth - 2).is_multiple_of(9) {
            return Err(ArchError::InvalidDepth {
                network: "resnet-bottleneck".into(),
                depth,
                reason: "a CIFAR bottleneck ResNet has 9n + 2 layers with n >= 1 (11, 20, 29, 56, 110, 164, ...)"
                    .into(),
            });
        }
        let n = (depth - 2) / 9;
        Ok(Self::base(
            Stem::Small { channels: 16 },
            vec![16, 32, 64],
            vec![n; 3],
            BlockKind::Bottleneck,
        ))
    }

    /// The ImageNet ResNet-18/34 (BasicBlock) or -50/101/152 (Bottleneck)
    /// of He et al. 2016, Table 1: 7x7 stem and max-pool, four stages of
    /// widths 64, 128, 256, 512, option-B shortcuts, 1000 classes, inputs of
    /// 32x32 and more (use [`Stem::Small`] for smaller images).
    ///
    /// # Errors
    /// [`ArchError::InvalidDepth`] for another depth.
    pub fn imagenet(depth: usize) -> Result<Self> {
        let (blocks, kind) = match depth {
            18 => (vec![2, 2, 2, 2], BlockKind::Basic),
            34 => (vec![3, 4, 6, 3], BlockKind::Basic),
            50 => (vec![3, 4, 6, 3], BlockKind::Bottleneck),
            101 => (vec![3, 4, 23, 3], BlockKind::Bottleneck),
            152 => (vec![3, 8, 36, 3], BlockKind::Bottleneck),
            _ => {
                return Err(ArchError::InvalidDepth {
                    network: "resnet-imagenet".into(),
                    depth,
                    reason: "the ImageNet ResNets have 18, 34, 50, 101 or 152 layers".into(),
                })
            }
        };
        let mut c = Self::base(
            Stem::ImageNet { channels: 64 },
            vec![64, 128, 256, 512],
            blocks,
            kind,
        );
        c.shortcut = ShortcutOption::B;
        c.num_classes = 1000;
        Ok(c)
    }

    /// The plain twin: every shortcut removed, nothing else changed.
    pub fn plain(mut self) -> Self {
        self.residual = false;
        self
    }

    /// Sets the base width `w`: stem `w` channels, stage `i` width `w * 2^(i-1)`
    /// (`resnet:depth=20,width=32` gives 32/64/128).
    pub fn with_width(mut self, w: usize) -> Self {
        self.stem = match self.stem {
            Stem::Small { .. } => Stem::Small { channels: w },
            Stem::ImageNet { .. } => Stem::ImageNet { channels: w },
        };
        for (i, width) in self.widths.iter_mut().enumerate() {
            *width = w.saturating_mul(1 << i.min(30));
        }
        self
    }

    /// Output channels of stage `i` (0-based).
    fn stage_out(&self, i: usize) -> usize {
        match self.block {
            BlockKind::Bottleneck => self.widths[i].saturating_mul(self.expansion),
            _ => self.widths[i],
        }
    }

    /// Weighted layers counted as He et al. do: stem convolution, the
    /// convolutions of every block (2 per BasicBlock, 3 per Bottleneck; not
    /// the projection shortcuts) and the final linear layer.
    pub fn depth(&self) -> usize {
        let per = if self.block == BlockKind::Bottleneck {
            3
        } else {
            2
        };
        let blocks = self.blocks.iter().fold(0usize, |a, &b| a.saturating_add(b));
        blocks.saturating_mul(per).saturating_add(2)
    }

    /// The factor the network downsamples by (stem, then one stride-2
    /// block per stage after the first): the smallest input size it takes.
    pub fn total_stride(&self) -> usize {
        self.stem
            .stride()
            .saturating_mul(1usize << self.widths.len().saturating_sub(1).min(30))
    }

    /// A short label: `resnet-20`, `plain-resnet-56`, `preact-resnet-110`,
    /// `resnet-bottleneck-29`, with `-B` (or `-A`) for a shortcut option other
    /// than the family's default and `-w32` for a base width other than 16
    /// (64 with the ImageNet stem).
    pub fn label(&self) -> String {
        let mut s = String::new();
        if !self.residual {
            s.push_str("plain-");
        }
        if self.preact {
            s.push_str("preact-");
        }
        s.push_str("resnet-");
        if self.block == BlockKind::Bottleneck && matches!(self.stem, Stem::Small { .. }) {
            s.push_str("bottleneck-");
        }
        s.push_str(&self.depth().to_string());
        let default_b = matches!(self.stem, Stem::ImageNet { .. });
        if self.residual && (self.shortcut == ShortcutOption::B) != default_b {
            s.push_str(if default_b { "-A" } else { "-B" });
        }
        let default_width = if default_b { 64 } else { 16 };
        if self.stem.channels() != default_width {
            s.push_str(&format!("-w{}", self.stem.channels()));
        }
        s
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
        positive("stem channels", self.stem.channels())?;
        if self.widths.is_empty() || self.widths.len() != self.blocks.len() {
            return Err(ArchError::config(
                &net,
                "widths/blocks",
                format!("{:?} / {:?}", self.widths, self.blocks),
                "one width and one block count per stage, at least one stage",
            ));
        }
        if self.widths.len() > 8 {
            return Err(ArchError::config(
                &net,
                "widths",
                format!("{:?}", self.widths),
                "at most 8 stages",
            ));
        }
        for (i, (&w, &b)) in self.widths.iter().zip(&self.blocks).enumerate() {
            if w == 0 || b == 0 {
                return Err(ArchError::config(
                    &net,
                    "widths/blocks",
                    format!("stage {}: width {w}, {b} blocks", i + 1),
                    "every stage needs a positive width and at least one block",
                ));
            }
        }
        let total = self.blocks.iter().fold(0usize, |a, &b| a.saturating_add(b));
        if total > MAX_BLOCKS {
            return Err(ArchError::config(
                &net,
                "blocks",
                format!("{:?}", self.blocks),
                format!("at most {MAX_BLOCKS} blocks in all"),
            ));
        }
        if !matches!(self.block, BlockKind::Basic | BlockKind::Bottleneck) {
            return Err(ArchError::config(
                &net,
                "block",
                format!("{:?}", self.block),
                "a ResNet uses Basic or Bottleneck blocks",
            ));
        }
        if self.block == BlockKind::Bottleneck {
            positive("expansion", self.expansion)?;
        }
        if !(self.gain > 0.0 && self.gain.is_finite()) {
            return Err(ArchError::config(
                &net,
                "gain",
                self.gain,
                "must be positive and finite",
            ));
        }
        if self.residual && self.shortcut == ShortcutOption::A {
            let mut prev = self.stem.channels();
            for i in 0..self.widths.len() {
                let out = self.stage_out(i);
                if out < prev {
                    return Err(ArchError::config(
                        &net,
                        "widths",
                        format!("{:?}", self.widths),
                        format!("option-A shortcuts only add zero channels, but stage {} goes from {prev} to {out} channels; use option B", i + 1),
                    ));
                }
                prev = out;
            }
        }
        Ok(())
    }
}

/// A residual network (He et al. 2016) or its plain twin.
///
/// Layout and names (CIFAR ResNet-20 shown; `stageS.blockB` are 1-based):
///
/// ```text
/// input [N, 3, H, W]
/// stem.conv 3x3 -> stem.bn -> stem.act                   tap "stem"      [N, 16, H, W]
/// stage1.block1 .. stage1.block3   (BasicBlock, 16)     taps "stage1.blockB", "stage1"
/// stage2.block1 (stride 2) .. stage2.block3   (32)      [N, 32, H/2, W/2]
/// stage3.block1 (stride 2) .. stage3.block3   (64)      [N, 64, H/4, W/4]
/// [head.bn -> head.act]   (pre-activation only)
/// head.pool (global average) -> head.fc                 logits [N, K]
/// ```
///
/// Taps, input to output: every leaf layer under its name (`stem.conv`,
/// `stage1.block1.conv1`, ..., `head.fc`), `stem`, then for each stage every
/// `stageS.blockB` output followed by `stageS`. Parameters carry depth
/// indices in that order (a projection shortcut after its block's main path).
///
/// The plain twin ([`ResNetConfig::plain`]) has the same layers, names and
/// (under option A) parameter count; only the additions are gone.
///
/// # Shapes
/// Input `[N, C_in, H, W]` with `H, W >=` [`ResNetConfig::total_stride`];
/// output `[N, K]`.
///
/// # Examples
/// One training step of a ResNet-20 (on 8x8 images to keep it quick):
/// ```
/// use gradlab_arch::{ResNet, ResNetConfig};
/// use gradlab_nn::{cross_entropy, CrossEntropyOptions, Ctx, Module, Optimizer, Scope, Sgd, SgdConfig};
/// use gradlab_tensor::Tensor;
/// let mut net = ResNet::<f32>::new(&Scope::new(0), &ResNetConfig::cifar(20)?)?;
/// let mut opt = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() })?;
/// let mut cx = Ctx::new().with_seed(0);
/// let x = cx.input(Tensor::rand_normal(&[4, 3, 8, 8], 0.0, 1.0, 1)?);
/// let logits = net.forward(&mut cx, x)?;
/// assert_eq!(cx.value(logits)?.shape(), &[4, 10]);
/// let loss = cross_entropy(&mut cx, logits, &[0, 1, 2, 3], &CrossEntropyOptions::default())?;
/// let grads = cx.backward(loss)?;
/// opt.step(&mut net, &grads)?;
/// # Ok::<(), gradlab_arch::ArchError>(())
/// ```
#[derive(Debug)]
pub struct ResNet<T: Element = f32> {
    config: ResNetConfig,
    body: Body<T>,
}

network_via_body!(ResNet);

impl<T: Element> ResNet<T> {
    /// Builds the network in `scope` (usually a root [`Scope::new`]`(seed)`).
    ///
    /// # Errors
    /// [`ArchError::InvalidConfig`] from [`ResNetConfig::validate`];
    /// [`ArchError::Nn`] for a bad scope name.
    pub fn new(scope: &Scope, config: &ResNetConfig) -> Result<Self> {
        config.validate()?;
        let options = BlockOptions {
            shortcut: config.residual.then_some(config.shortcut),
            preact: config.preact,
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
        let s = scope.pp("stem");
        let c0 = config.stem.channels();
        body.stem_point = Some(c0);
        let stem = &mut body.stem;
        match config.stem {
            Stem::Small { .. } => {
                let spec = Conv2dSpec::new(config.in_channels, c0, 3).padding(1);
                if config.preact {
                    stem.push(Box::new(u.conv(&s.pp("conv"), spec)?));
                } else {
                    u.conv_bn_act(stem, &s, ["conv", "bn", "act"], spec, true)?;
                }
            }
            Stem::ImageNet { .. } => {
                let spec = Conv2dSpec::new(config.in_channels, c0, 7)
                    .stride(2)
                    .padding(3);
                u.conv_bn_act(stem, &s, ["conv", "bn", "act"], spec, true)?;
                let pool = Pool2dSpec::new(3).stride(2).padding(1);
                stem.push(Box::new(MaxPool2d::new(&s.pp("pool"), pool)?));
            }
        }
        let mut cin = c0;
        for (i, (&width, &n)) in config.widths.iter().zip(&config.blocks).enumerate() {
            let ss = scope.pp(format!("stage{}", i + 1));
            let mut blocks = Vec::with_capacity(n);
            for j in 0..n {
                let bs = ss.pp(format!("block{}", j + 1));
                let stride = if i > 0 && j == 0 { 2 } else { 1 };
                let b = match config.block {
                    BlockKind::Bottleneck => {
                        Block::bottleneck(&bs, cin, width, stride, config.expansion, &options)?
                    }
                    _ => Block::basic(&bs, cin, width, stride, &options)?,
                };
                cin = b.out_channels();
                blocks.push(b);
            }
            body.stages.push(Stage::named(&ss, blocks));
        }
        let h = scope.pp("head");
        let head = &mut body.head;
        if config.preact {
            u.bn2(head, &h.pp("bn"), cin)?;
            head.push(Box::new(u.act(&h.pp("act"))?));
        }
        head_pool_fc(head, &h, cin, config.num_classes)?;
        Ok(ResNet {
            config: config.clone(),
            body,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }

    /// The blocks, input to output.
    pub fn blocks(&self) -> impl Iterator<Item = &Block<T>> {
        self.body.blocks()
    }
}

/// Appends the classifier head of the staged networks: global average
/// pooling and a linear layer (PyTorch's default initialisation, whatever
/// the body's) from `channels` to `classes`, named `<h>.pool`, `<h>.fc`.
pub(crate) fn head_pool_fc<T: Element>(
    head: &mut Sequential<T>,
    h: &Scope,
    channels: usize,
    classes: usize,
) -> Result<()> {
    head.push(Box::new(GlobalAvgPool2d::new(&h.pp("pool"))));
    let fc = Linear::new(&h.pp("fc"), channels, classes, LinearConfig::default())?;
    head.push(Box::new(fc));
    Ok(())
}
