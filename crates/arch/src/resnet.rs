//! [`ResNet`]: residual networks (He et al. 2016) and their plain twins —
//! the CIFAR family `6n + 2` (20, 32, 44, 56, 110, ...), its bottleneck
//! version `9n + 2`, the ImageNet family (18, 34, 50, 101, 152), and any
//! stem, widths and blocks per stage in between.

use gradlab_autodiff::Var;
use gradlab_conv::{Conv2dSpec, Pool2dSpec};
use gradlab_nn::{
    ActivationKind, Ctx, HasParams, Init, Linear, LinearConfig, Module, Param, Scope,
};
use gradlab_tensor::Element;

use crate::block::{Block, BlockKind, BlockOptions, ShortcutOption};
use crate::classifier::{check_image, Classifier, Point, PointKind};
use crate::error::{ArchError, Result};
use crate::layer::{gap, max_pool, Chain, Layer, LayerInfo};

/// The most blocks (or hidden layers) a network may have: far beyond any
/// trainable depth, it keeps absurd configurations from exhausting memory.
pub(crate) const MAX_BLOCKS: usize = 10_000;

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
        if depth < 8 || (depth - 2) % 6 != 0 {
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
        if depth < 11 || (depth - 2) % 9 != 0 {
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

/// A stage: blocks at one resolution, tapped under its name after the last.
#[derive(Debug, Clone)]
pub(crate) struct Stage<T: Element> {
    pub(crate) name: String,
    pub(crate) blocks: Vec<Block<T>>,
}

impl<T: Element> Stage<T> {
    pub(crate) fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> gradlab_nn::Result<Var> {
        let mut h = x;
        for b in &mut self.blocks {
            h = b.forward(cx, h)?;
        }
        cx.tap(&self.name, h);
        Ok(h)
    }

    pub(crate) fn points(&self, out: &mut Vec<Point>) {
        for b in &self.blocks {
            out.push(Point {
                name: b.name().to_string(),
                kind: PointKind::Block,
                channels: b.out_channels(),
            });
        }
        if let Some(last) = self.blocks.last() {
            out.push(Point {
                name: self.name.clone(),
                kind: PointKind::Stage,
                channels: last.out_channels(),
            });
        }
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
#[derive(Debug, Clone)]
pub struct ResNet<T: Element = f32> {
    name: String,
    config: ResNetConfig,
    label: String,
    stem: Chain<T>,
    stem_name: String,
    stages: Vec<Stage<T>>,
    head: Chain<T>,
    training: bool,
}

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
        let s = scope.pp("stem");
        let mut stem = Chain::new();
        let c0 = config.stem.channels();
        match config.stem {
            Stem::Small { .. } => {
                let spec = Conv2dSpec::new(config.in_channels, c0, 3).padding(1);
                if config.preact {
                    stem.push(u.conv(&s.pp("conv"), spec)?);
                } else {
                    u.conv_bn_act(&mut stem, &s, ["conv", "bn", "act"], spec, true)?;
                }
            }
            Stem::ImageNet { .. } => {
                let spec = Conv2dSpec::new(config.in_channels, c0, 7)
                    .stride(2)
                    .padding(3);
                u.conv_bn_act(&mut stem, &s, ["conv", "bn", "act"], spec, true)?;
                stem.push(max_pool(
                    &s.pp("pool"),
                    Pool2dSpec::new(3).stride(2).padding(1),
                )?);
            }
        }
        let mut stages = Vec::with_capacity(config.widths.len());
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
            stages.push(Stage {
                name: ss.prefix().to_string(),
                blocks,
            });
        }
        let h = scope.pp("head");
        let mut head = Chain::new();
        if config.preact {
            if let Some(bn) = u.bn2(&h.pp("bn"), cin)? {
                head.push(bn);
            }
            head.push(u.act(&h.pp("act"))?);
        }
        head.push(gap(&h.pp("pool")));
        head.push(Layer::Linear(Linear::new(
            &h.pp("fc"),
            cin,
            config.num_classes,
            LinearConfig::default(),
        )?));
        Ok(ResNet {
            name: scope.prefix().to_string(),
            config: config.clone(),
            label: config.label(),
            stem,
            stem_name: s.prefix().to_string(),
            stages,
            head,
            training: true,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }

    /// The blocks, input to output.
    pub fn blocks(&self) -> impl Iterator<Item = &Block<T>> {
        self.stages.iter().flat_map(|s| s.blocks.iter())
    }
}

impl<T: Element> HasParams<T> for ResNet<T> {
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

impl<T: Element> Module<T> for ResNet<T> {
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

impl<T: Element> Classifier<T> for ResNet<T> {
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
            channels: self.config.stem.channels(),
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
