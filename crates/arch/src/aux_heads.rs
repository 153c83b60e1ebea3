//! Auxiliary heads (deep supervision): [`AuxNet`] attaches classifier heads
//! after named stages or blocks of any [`Classifier`].

use gradlab_autodiff::Var;
use gradlab_conv::{Conv2dSpec, Pool2dSpec};
use gradlab_nn::{
    Activation, AvgPool2d, Ctx, Dropout, Flatten, GlobalAvgPool2d, HasParams, Init, LayerInfo,
    Module, Param, Scope, Sequential,
};
use gradlab_tensor::{Element, Tensor};

use crate::classifier::{
    AuxOutput, Classifier, HeadMode, OutputRequest, Outputs, Point, DEFAULT_AUX_WEIGHT,
};
use crate::error::{ArchError, Result};
use crate::layer::Units;

/// The shape of an auxiliary head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeadKind {
    /// Global average pooling and a linear layer to the classes (`pool`,
    /// `fc`); on a fully connected stack, the linear layer alone.
    Pooled,
    /// GoogLeNet's side classifier (Szegedy et al. 2015, §5): average
    /// pooling 5x5 with stride 3 (a smaller window on maps under 5x5), a
    /// 1x1 convolution to `channels` with ReLU, a linear layer to `hidden`
    /// with ReLU, dropout `p = dropout`, and a linear layer to the classes
    /// (`pool`, `conv`, `act1`, `flatten`, `fc1`, `act2`, `dropout`, `fc`).
    /// The paper's sizes are [`HeadKind::googlenet`].
    GoogLeNet {
        /// Channels of the 1x1 convolution (128 in the paper).
        channels: usize,
        /// Units of the hidden linear layer (1024 in the paper).
        hidden: usize,
        /// Dropout probability (0.7 in the paper).
        dropout: f64,
    },
}

impl HeadKind {
    /// GoogLeNet's head sizes: 128 channels, 1024 hidden units, dropout 0.7.
    pub fn googlenet() -> Self {
        HeadKind::GoogLeNet {
            channels: 128,
            hidden: 1024,
            dropout: 0.7,
        }
    }
}

/// Where and how to attach one auxiliary head.
#[derive(Debug, Clone, PartialEq)]
pub struct AuxHeadConfig {
    /// The point it reads: a stage or block name (`stage1`, `stage2.block3`,
    /// `layer5`), see [`Classifier::points`].
    pub at: String,
    /// Weight of its cross-entropy in [`combined_loss`](crate::combined_loss)
    /// (default [`DEFAULT_AUX_WEIGHT`], 0.3).
    pub weight: f64,
    /// Its shape (default [`HeadKind::Pooled`]).
    pub kind: HeadKind,
}

impl AuxHeadConfig {
    /// A pooled head at `at` with weight 0.3.
    pub fn new(at: impl Into<String>) -> Self {
        AuxHeadConfig {
            at: at.into(),
            weight: DEFAULT_AUX_WEIGHT,
            kind: HeadKind::Pooled,
        }
    }

    /// Sets the loss weight.
    pub fn with_weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the head's shape.
    pub fn with_kind(mut self, kind: HeadKind) -> Self {
        self.kind = kind;
        self
    }
}

/// One attached head.
#[derive(Debug)]
struct AuxHead<T: Element> {
    name: String,
    at: String,
    weight: f64,
    layers: Sequential<T>,
}

/// A classifier with auxiliary heads (deep supervision, Lee et al. 2015;
/// GoogLeNet's side classifiers, Szegedy et al. 2015).
///
/// Each head reads the feature map at a named point of the inner network
/// (its tapped output) and predicts the classes. Head `aux.<point>` has
/// its layers named `aux.<point>.pool`, `aux.<point>.fc`, ... (the final
/// linear layer taps the head's logits as `aux.<point>.fc`); its parameters
/// come after the inner network's, with depth indices after them.
///
/// - [`Module::forward`] gives the final logits only; the heads do not run.
/// - [`Classifier::forward_outputs`] runs the heads in training mode (or as
///   [`HeadMode`] says) and returns their logits `[N, K]` and the feature
///   maps `[N, C, H, W]` they read; [`combined_loss`](crate::combined_loss)
///   makes the training loss. Train with these two: a step through
///   `forward` alone leaves the heads without gradients, which optimizers
///   reject.
/// - In evaluation mode the heads cost nothing unless asked for
///   ([`HeadMode::Always`]); each head's logits are then an early-exit
///   prediction.
///
/// # Examples
/// One training step of a ResNet-20 with heads after stages 1 and 2:
/// ```
/// use gradlab_arch::*;
/// use gradlab_nn::{Ctx, Module, Optimizer, Scope, Sgd, SgdConfig};
/// use gradlab_tensor::Tensor;
/// let root = Scope::new(0);
/// let net = ResNet::<f32>::new(&root, &ResNetConfig::cifar(20)?)?;
/// let heads = [AuxHeadConfig::new("stage1"), AuxHeadConfig::new("stage2")];
/// let mut model = AuxNet::new(&root, net, &heads, &[3, 8, 8])?;
/// let mut opt = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() })?;
///
/// let mut cx = Ctx::new().with_seed(0);
/// let x = cx.input(Tensor::rand_normal(&[4, 3, 8, 8], 0.0, 1.0, 1)?);
/// let out = model.forward_outputs(&mut cx, x, &OutputRequest::default())?;
/// assert_eq!(cx.value(out.aux[0].logits)?.shape(), &[4, 10]);         // class scores
/// assert_eq!(cx.value(out.features[0].map)?.shape(), &[4, 16, 8, 8]);  // a feature map
/// let loss = combined_loss(&mut cx, &out, &[0, 1, 2, 3])?;             // CE + 0.3 CE_1 + 0.3 CE_2
/// let grads = cx.backward(loss.total)?;
/// opt.step(&mut model, &grads)?;
/// # Ok::<(), gradlab_arch::ArchError>(())
/// ```
#[derive(Debug)]
pub struct AuxNet<T: Element, N: Classifier<T>> {
    inner: N,
    heads: Vec<AuxHead<T>>,
    label: String,
}

impl<T: Element, N: Classifier<T>> AuxNet<T, N> {
    /// Attaches `heads` to `inner`. `scope` names the heads (`aux.<point>`
    /// inside it); pass the scope `inner` was built in so that the depth
    /// indices continue. `input` is the shape of one example (`[C, H, W]`),
    /// used to size the heads: one forward pass of one zero example through
    /// `inner` in evaluation mode reads the feature-map shapes.
    ///
    /// # Errors
    /// [`ArchError::UnknownPoint`] for a head at a name that does not exist,
    /// with the list of names that do; [`ArchError::InvalidConfig`] for two
    /// heads at one point, a negative or non-finite weight, zero head
    /// sizes or a dropout outside `[0, 1)`; the input checks of `inner`.
    pub fn new(
        scope: &Scope,
        mut inner: N,
        heads: &[AuxHeadConfig],
        input: &[usize],
    ) -> Result<Self> {
        let label = format!(
            "{}+aux({})",
            inner.label(),
            heads
                .iter()
                .map(|h| h.at.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut resolved = Vec::with_capacity(heads.len());
        for h in heads {
            let at = inner.resolve_point(&h.at)?;
            if resolved.contains(&at) {
                return Err(ArchError::config(
                    &label,
                    "heads",
                    &h.at,
                    "two heads at one point",
                ));
            }
            if !(h.weight >= 0.0 && h.weight.is_finite()) {
                return Err(ArchError::config(
                    &label,
                    "weight",
                    h.weight,
                    "an auxiliary loss weight must be finite and non-negative",
                ));
            }
            if let HeadKind::GoogLeNet {
                channels,
                hidden,
                dropout,
            } = h.kind
            {
                if channels == 0 || hidden == 0 || !(0.0..1.0).contains(&dropout) {
                    return Err(ArchError::config(
                        &label,
                        "kind",
                        format!("{:?}", h.kind),
                        "channels and hidden must be positive, dropout in [0, 1)",
                    ));
                }
            }
            resolved.push(at);
        }
        // Shapes at the points: one zero example through the network in eval mode.
        let shapes = probe_shapes(&mut inner, input, &resolved)?;
        let classes = inner.num_classes();
        let units = Units {
            activation: gradlab_nn::ActivationKind::Relu,
            batch_norm: false,
            init: Init::TorchDefault,
            gain: 1.0,
            bias_init: Init::TorchDefault,
        };
        let prefix = inner.name().to_string();
        let mut built = Vec::with_capacity(heads.len());
        for ((h, at), shape) in heads.iter().zip(&resolved).zip(&shapes) {
            let rel = if !prefix.is_empty() && at.starts_with(&format!("{prefix}.")) {
                &at[prefix.len() + 1..]
            } else {
                at.as_str()
            };
            let s = scope.pp("aux").pp(rel);
            let layers = build_head(&s, h.kind, shape, classes, &units)?;
            built.push(AuxHead {
                name: s.prefix().to_string(),
                at: at.clone(),
                weight: h.weight,
                layers,
            });
        }
        Ok(AuxNet {
            inner,
            heads: built,
            label,
        })
    }

    /// The network the heads are attached to.
    pub fn inner(&self) -> &N {
        &self.inner
    }

    /// The network the heads are attached to, mutable.
    pub fn inner_mut(&mut self) -> &mut N {
        &mut self.inner
    }

    /// Detaches the heads and gives the network back.
    pub fn into_inner(self) -> N {
        self.inner
    }

    /// `(head name, point, weight)` of each head.
    pub fn heads(&self) -> Vec<(String, String, f64)> {
        self.heads
            .iter()
            .map(|h| (h.name.clone(), h.at.clone(), h.weight))
            .collect()
    }

    /// Sets the loss weight of the head named `name` (or reading point `name`).
    ///
    /// # Errors
    /// [`ArchError::UnknownPoint`] when no head has that name;
    /// [`ArchError::InvalidConfig`] for a negative or non-finite weight.
    pub fn set_weight(&mut self, name: &str, weight: f64) -> Result<()> {
        if !(weight >= 0.0 && weight.is_finite()) {
            return Err(ArchError::config(
                &self.label,
                "weight",
                weight,
                "an auxiliary loss weight must be finite and non-negative",
            ));
        }
        let full = self.inner.resolve_point(name).ok();
        match self
            .heads
            .iter_mut()
            .find(|h| h.name == name || h.at == name || Some(&h.at) == full.as_ref())
        {
            Some(h) => {
                h.weight = weight;
                Ok(())
            }
            None => Err(ArchError::UnknownPoint {
                network: self.label.clone(),
                name: name.to_string(),
                available: self.heads.iter().map(|h| h.name.clone()).collect(),
            }),
        }
    }
}

fn probe_shapes<T: Element, N: Classifier<T>>(
    inner: &mut N,
    input: &[usize],
    points: &[String],
) -> Result<Vec<Vec<usize>>> {
    let mut shape = vec![1];
    shape.extend_from_slice(input);
    inner.check_input(&shape)?;
    let was_training = inner.is_training();
    inner.set_training(false);
    let mut cx = Ctx::<T>::no_grad();
    let x = cx.input(Tensor::zeros(&shape));
    let out = inner.forward_outputs(
        &mut cx,
        x,
        &OutputRequest {
            heads: HeadMode::Never,
            features: points.to_vec(),
        },
    );
    inner.set_training(was_training);
    let out = out?;
    out.features
        .iter()
        .map(|f| Ok(cx.value(f.map)?.shape()[1..].to_vec()))
        .collect()
}

fn build_head<T: Element>(
    s: &Scope,
    kind: HeadKind,
    shape: &[usize],
    classes: usize,
    u: &Units,
) -> Result<Sequential<T>> {
    let mut c = Sequential::new(s);
    match (kind, shape) {
        (HeadKind::Pooled, &[ch, _, _]) => {
            c.push(Box::new(GlobalAvgPool2d::new(&s.pp("pool"))));
            c.push(Box::new(u.linear(&s.pp("fc"), ch, classes, true)?));
        }
        (HeadKind::Pooled, &[f]) => {
            c.push(Box::new(u.linear(&s.pp("fc"), f, classes, true)?));
        }
        (
            HeadKind::GoogLeNet {
                channels,
                hidden,
                dropout: p,
            },
            shape,
        ) => {
            let features = if let &[ch, h, w] = shape {
                let k = 5.min(h).min(w);
                let pool = Pool2dSpec::new(k).stride(3);
                let [ph, pw] = pool.output_size(h, w).map_err(gradlab_nn::NnError::from)?;
                c.push(Box::new(AvgPool2d::new(&s.pp("pool"), pool)?));
                let conv = u.conv_with_bias(&s.pp("conv"), Conv2dSpec::new(ch, channels, 1))?;
                c.push(Box::new(conv))
                    .push(Box::new(Activation::relu(&s.pp("act1"))))
                    .push(Box::new(Flatten::new(&s.pp("flatten"))));
                channels * ph * pw
            } else {
                shape.iter().product()
            };
            let fc1 = u.linear(&s.pp("fc1"), features, hidden, true)?;
            c.push(Box::new(fc1))
                .push(Box::new(Activation::relu(&s.pp("act2"))))
                .push(Box::new(Dropout::new(&s.pp("dropout"), p)?));
            c.push(Box::new(u.linear(&s.pp("fc"), hidden, classes, true)?));
        }
        (HeadKind::Pooled, other) => {
            return Err(ArchError::config(
                s.prefix(),
                "at",
                format!("{other:?}"),
                "a head reads a feature map [C, H, W] or features [F]",
            ))
        }
    }
    Ok(c)
}

impl<T: Element, N: Classifier<T>> HasParams<T> for AuxNet<T, N> {
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        self.inner.visit_params(f);
        for h in &self.heads {
            h.layers.visit_params(f);
        }
    }

    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        self.inner.visit_params_mut(f);
        for h in &mut self.heads {
            h.layers.visit_params_mut(f);
        }
    }
}

impl<T: Element, N: Classifier<T>> Module<T> for AuxNet<T, N> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The final logits; the heads do not run (see [`Classifier::forward_outputs`]).
    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> gradlab_nn::Result<Var> {
        self.inner.forward(cx, x)
    }

    fn set_training(&mut self, training: bool) {
        self.inner.set_training(training);
        for h in &mut self.heads {
            h.layers.set_training(training);
        }
    }

    fn is_training(&self) -> bool {
        self.inner.is_training()
    }

    /// The inner network's layers, then each head's.
    fn describe(&self, out: &mut Vec<LayerInfo>) {
        self.inner.describe(out);
        for h in &self.heads {
            h.layers.describe(out);
        }
    }
}

impl<T: Element, N: Classifier<T>> Classifier<T> for AuxNet<T, N> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        self.inner.check_input(shape)
    }

    fn points(&self) -> Vec<Point> {
        self.inner.points()
    }

    fn forward_outputs(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        request: &OutputRequest,
    ) -> Result<Outputs> {
        let run = match request.heads {
            HeadMode::Auto => self.is_training(),
            HeadMode::Always => true,
            HeadMode::Never => false,
        };
        let mut features = Vec::with_capacity(request.features.len() + self.heads.len());
        for name in &request.features {
            features.push(self.inner.resolve_point(name)?);
        }
        if run {
            for h in &self.heads {
                if !features.contains(&h.at) {
                    features.push(h.at.clone());
                }
            }
        }
        // Input to output, as the points are.
        let order = self.inner.points();
        let pos = |n: &String| {
            order
                .iter()
                .position(|p| &p.name == n)
                .unwrap_or(usize::MAX)
        };
        features.sort_by_key(pos);
        let mut out = self.inner.forward_outputs(
            cx,
            x,
            &OutputRequest {
                heads: request.heads,
                features,
            },
        )?;
        if run {
            for h in &mut self.heads {
                let Some(map) = out.feature(&h.at) else {
                    return Err(ArchError::UnknownPoint {
                        network: self.label.clone(),
                        name: h.at.clone(),
                        available: order.iter().map(|p| p.name.clone()).collect(),
                    });
                };
                let logits = h.layers.forward(cx, map)?;
                out.aux.push(AuxOutput {
                    name: h.name.clone(),
                    at: h.at.clone(),
                    logits,
                    weight: h.weight,
                });
            }
        }
        Ok(out)
    }
}
