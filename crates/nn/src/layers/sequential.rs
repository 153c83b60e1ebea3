//! [`Sequential`]: a chain of modules named `<name>.0`, `<name>.1`, ...

use std::fmt;

use gradlab_autodiff::Var;
use gradlab_tensor::Element;

use crate::ctx::Ctx;
use crate::error::Result;
use crate::layer_info::{LayerInfo, LayerKind};
use crate::layers::activation::ActivationKind;
use crate::module::{HasParams, Module};
use crate::param::{Param, Scope};

/// Modules applied one after the other, PyTorch's `nn.Sequential`. Child
/// `i` is built in the scope `<name>.i`, so its parameters are named
/// `<name>.i.weight` and so on. It taps nothing itself (its output is its
/// last child's, already tapped).
///
/// # Examples
/// ```
/// use gradlab_conv::{Conv2dSpec, Pool2dSpec};
/// use gradlab_nn::*;
/// use gradlab_tensor::Tensor;
/// let root = Scope::new(7);
/// let mut net = Sequential::<f32>::new(&root.pp("features"));
/// net.add(|s| Conv2d::new(s, Conv2dSpec::new(1, 4, 3).padding(1), Conv2dConfig::kaiming_no_bias()))?
///    .add(|s| BatchNorm2d::new(s, 4, BatchNormConfig::default()))?
///    .add(|s| Ok(Activation::relu(s)))?
///    .add(|s| MaxPool2d::new(s, Pool2dSpec::new(2)))?
///    .add(|s| Ok(Flatten::new(s)))?
///    .add(|s| Linear::new(s, 4 * 4 * 4, 2, LinearConfig::default()))?;
/// let names: Vec<&str> = net.params().iter().map(|p| p.name()).collect();
/// assert_eq!(names[0], "features.0.weight");
/// assert_eq!(names[1], "features.1.gamma");
/// assert_eq!(net.param("features.5.bias").unwrap().depth(), 2);
/// let mut cx = Ctx::new();
/// let x = cx.input(Tensor::ones(&[2, 1, 8, 8]));
/// let y = net.forward(&mut cx, x)?;
/// assert_eq!(cx.value(y)?.shape(), &[2, 2]);
/// // In training, BatchNorm and the ReLU after it run as one op, tapped
/// // under the ReLU's name.
/// let tapped: Vec<&str> = cx.taps().iter().map(|(n, _)| n.as_str()).collect();
/// assert_eq!(tapped, ["features.0", "features.2", "features.3", "features.4", "features.5"]);
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
pub struct Sequential<T: Element = f32> {
    scope: Scope,
    layers: Vec<Box<dyn Module<T>>>,
    training: bool,
}

impl<T: Element> Sequential<T> {
    /// An empty chain named by `scope`.
    pub fn new(scope: &Scope) -> Self {
        Sequential {
            scope: scope.clone(),
            layers: Vec::new(),
            training: true,
        }
    }

    /// The scope the next child will be built in (`<name>.<len>`).
    pub fn next_scope(&self) -> Scope {
        self.scope.pp(self.layers.len())
    }

    /// Builds the next child in its scope ([`next_scope`](Sequential::next_scope)) and appends it.
    ///
    /// # Errors
    /// Whatever `build` returns.
    pub fn add<M: Module<T> + 'static>(
        &mut self,
        build: impl FnOnce(&Scope) -> Result<M>,
    ) -> Result<&mut Self> {
        let m = build(&self.next_scope())?;
        self.layers.push(Box::new(m));
        Ok(self)
    }

    /// Appends a module built elsewhere (keeping its own names).
    pub fn push(&mut self, module: Box<dyn Module<T>>) -> &mut Self {
        self.layers.push(module);
        self
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there is no child.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The children.
    pub fn layers(&self) -> &[Box<dyn Module<T>>] {
        &self.layers
    }

    /// The children, mutable.
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Module<T>>] {
        &mut self.layers
    }
}

/// Children are trait objects without `Debug`: they are listed by name.
impl<T: Element> fmt::Debug for Sequential<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.layers.iter().map(|l| l.name()).collect();
        f.debug_struct("Sequential")
            .field("name", &self.scope.prefix())
            .field("layers", &names)
            .field("training", &self.training)
            .finish()
    }
}

impl<T: Element> HasParams<T> for Sequential<T> {
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        for l in &self.layers {
            l.visit_params(f);
        }
    }

    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        for l in &mut self.layers {
            l.visit_params_mut(f);
        }
    }
}

impl<T: Element> Sequential<T> {
    /// Runs the first `end` layers on `x`.
    fn run_layers(&mut self, cx: &mut Ctx<T>, x: Var, end: usize) -> Result<Var> {
        let mut h = x;
        let mut i = 0;
        while i < end {
            // A layer followed by a ReLU may run both as one op (BatchNorm:
            // one activation less to keep for the backward pass).
            if i + 1 < end {
                if let Some(relu) = relu_name(&*self.layers[i + 1]) {
                    if let Some(y) = self.layers[i].forward_then_relu(cx, h, &relu) {
                        h = y?;
                        i += 2;
                        continue;
                    }
                }
            }
            h = self.layers[i].forward(cx, h)?;
            i += 1;
        }
        Ok(h)
    }

    /// The fusions of a Sequential: every layer but the last, then the
    /// last one's fusion (`fused`) or, when it has none, the last layer
    /// followed by `tail` (the op the fusion would have included), tapped
    /// under `relu_name` like an `Activation` layer. `None` when empty.
    fn forward_fusing_last(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        relu_name: &str,
        fused: impl FnOnce(&mut dyn Module<T>, &mut Ctx<T>, Var) -> Option<Result<Var>>,
        tail: impl FnOnce(&mut Ctx<T>, Var) -> Result<Var>,
    ) -> Option<Result<Var>> {
        let last = self.layers.len().checked_sub(1)?;
        let h = match self.run_layers(cx, x, last) {
            Ok(h) => h,
            Err(e) => return Some(Err(e)),
        };
        if let Some(y) = fused(&mut *self.layers[last], cx, h) {
            return Some(y);
        }
        let unfused = |layer: &mut dyn Module<T>| -> Result<Var> {
            let h = layer.forward(cx, h)?;
            let y = tail(cx, h)?;
            cx.tap(relu_name, y);
            Ok(y)
        };
        Some(unfused(&mut *self.layers[last]))
    }
}

impl<T: Element> Module<T> for Sequential<T> {
    fn name(&self) -> &str {
        self.scope.prefix()
    }

    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> Result<Var> {
        let n = self.layers.len();
        self.run_layers(cx, x, n)
    }

    fn forward_then_relu(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        relu_name: &str,
    ) -> Option<Result<Var>> {
        self.forward_fusing_last(
            cx,
            x,
            relu_name,
            |layer, cx, h| layer.forward_then_relu(cx, h, relu_name),
            |cx, h| Ok(cx.graph_mut().relu(h)?),
        )
    }

    fn forward_then_add_relu(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        skip: Var,
        relu_name: &str,
    ) -> Option<Result<Var>> {
        self.forward_fusing_last(
            cx,
            x,
            relu_name,
            |layer, cx, h| layer.forward_then_add_relu(cx, h, skip, relu_name),
            |cx, h| Ok(cx.graph_mut().add_relu(h, skip)?),
        )
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        for l in &mut self.layers {
            l.set_training(training);
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn describe(&self, out: &mut Vec<LayerInfo>) {
        for l in &self.layers {
            l.describe(out);
        }
    }
}

/// The name of `layer` when it is a single ReLU activation layer (or a
/// container holding only one), for callers that fuse a ReLU into the op
/// before it ([`Module::forward_then_relu`]).
pub fn relu_name<T: Element>(layer: &dyn Module<T>) -> Option<String> {
    let mut info = Vec::new();
    layer.describe(&mut info);
    match info.as_slice() {
        [one] if one.kind == LayerKind::Activation(ActivationKind::Relu) => Some(one.name.clone()),
        _ => None,
    }
}
