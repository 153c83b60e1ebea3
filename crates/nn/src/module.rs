//! The two traits every model implements: [`HasParams`] (the narrow view that
//! optimizers, checkpoints and diagnostics share) and [`Module`] (forward
//! pass, train/eval mode and a description of its leaf layers).

use std::collections::HashSet;

use gradlab_autodiff::Var;
use gradlab_tensor::Element;

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::layer_info::{LayerInfo, LayerKind};
use crate::param::Param;

/// Anything that owns named parameters: visited in a fixed order, input to
/// output, each with its full dotted name ([`Param::name`]).
///
/// This is the one narrow, object-safe trait that optimizers
/// ([`Optimizer::step`](crate::Optimizer::step)), checkpoints
/// ([`save_checkpoint`](crate::save_checkpoint)) and diagnostics take, as
/// `&dyn HasParams<T>` / `&mut dyn HasParams<T>`; they never see concrete
/// architectures.
///
/// # Examples
/// ```
/// use gradlab_nn::{HasParams, Linear, LinearConfig, Scope};
/// let model = Linear::<f32>::new(&Scope::new(0).pp("fc"), 4, 3, LinearConfig::default())?;
/// let names: Vec<&str> = model.params().iter().map(|p| p.name()).collect();
/// assert_eq!(names, ["fc.weight", "fc.bias"]);
/// assert_eq!(model.num_trainable(), 4 * 3 + 3);
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
pub trait HasParams<T: Element = f32> {
    /// Calls `f` on every parameter and buffer, input to output.
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>));

    /// Calls `f` on every parameter and buffer, mutably, in the same order.
    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>));

    /// Every parameter and buffer, input to output.
    fn params(&self) -> Vec<&Param<T>> {
        let mut out = Vec::new();
        self.visit_params(&mut |p| out.push(p));
        out
    }

    /// Every parameter and buffer, mutably.
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut out = Vec::new();
        self.visit_params_mut(&mut |p| out.push(p));
        out
    }

    /// The parameter or buffer with this full name.
    fn param(&self, name: &str) -> Option<&Param<T>> {
        let mut found = None;
        self.visit_params(&mut |p| {
            if found.is_none() && p.name() == name {
                found = Some(p);
            }
        });
        found
    }

    /// Number of trainable elements (buffers excluded), as PyTorch's
    /// `sum(p.numel() for p in model.parameters())` counts.
    fn num_trainable(&self) -> usize {
        let mut n = 0;
        self.visit_params(&mut |p| {
            if p.is_trainable() {
                n += p.len();
            }
        });
        n
    }
}

/// A layer or model: a forward pass on a [`Ctx`], named parameters, and a
/// train/eval mode. Object-safe: containers hold `Box<dyn Module<T>>`.
///
/// Conventions every implementation follows:
/// - parameters get their dotted names and depth index at construction,
///   from a [`Scope`](crate::Scope);
/// - `forward` binds each parameter it uses with [`Ctx::param`] and taps its
///   output activation with [`Ctx::tap`] under [`Module::name`], so that
///   activations and their gradients can be read after backward without
///   changing the model (containers that only chain children do not tap);
/// - `forward` takes `&mut self` so that layers may update state in
///   training mode (BatchNorm's running statistics);
/// - `describe` lists the leaf layers in forward order (a leaf itself,
///   a container its children's), so summaries and diagnostics need not
///   know the concrete types.
pub trait Module<T: Element = f32>: HasParams<T> + Send {
    /// The module's dotted name (its scope's prefix), under which it taps its output.
    fn name(&self) -> &str;

    /// Runs the module on `x`, recording on `cx`'s graph.
    ///
    /// # Errors
    /// [`NnError::InputShape`] for an input the layer cannot take, and
    /// whatever the ops reject.
    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> Result<Var>;

    /// Runs the module followed by a ReLU layer named `relu_name` as one
    /// fused op, when the module has such a fusion (BatchNorm in training
    /// mode does); `None` when it has not, and the caller runs the two
    /// layers one after the other. The result must equal the ReLU of
    /// [`forward`](Module::forward)'s, bit for bit, and is tapped under
    /// `relu_name`. [`Sequential`](crate::Sequential) asks each layer
    /// followed by a ReLU, and answers for its last layer (running the
    /// ReLU op itself when that layer cannot); blocks without a shortcut
    /// ask their branch.
    fn forward_then_relu(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        relu_name: &str,
    ) -> Option<Result<Var>> {
        let _ = (cx, x, relu_name);
        None
    }

    /// Runs the module, adds `skip` and applies a ReLU layer named
    /// `relu_name`, as one fused op where the module can (BatchNorm in
    /// training mode; a [`Sequential`](crate::Sequential) whose last layer
    /// can); `None` when it cannot, having run nothing. The result must
    /// equal `relu(forward(x) + skip)` bit for bit, and is tapped under
    /// `relu_name`. Residual blocks ask their branch.
    fn forward_then_add_relu(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        skip: Var,
        relu_name: &str,
    ) -> Option<Result<Var>> {
        let _ = (cx, x, skip, relu_name);
        None
    }

    /// Switches training mode (batch statistics, dropout) on or off, for the
    /// module and all its children.
    fn set_training(&mut self, training: bool);

    /// Whether the module is in training mode.
    fn is_training(&self) -> bool;

    /// Appends a [`LayerInfo`] for each leaf layer to `out`, in forward
    /// order: a layer describes itself (name, [`LayerKind`], trainable
    /// parameters), a container its children. Layers that run only
    /// sometimes (a projection shortcut) are listed where they run.
    ///
    /// The default describes the module as one leaf of kind
    /// [`LayerKind::Custom`] with its type name; containers and the layers
    /// of this crate override it.
    ///
    /// # Examples
    /// ```
    /// use gradlab_conv::Conv2dSpec;
    /// use gradlab_nn::*;
    /// let mut net = Sequential::<f32>::new(&Scope::new(0).pp("features"));
    /// net.add(|s| Conv2d::new(s, Conv2dSpec::new(3, 8, 3), Conv2dConfig::kaiming_no_bias()))?
    ///    .add(|s| Ok(Activation::relu(s)))?;
    /// let mut layers = Vec::new();
    /// net.describe(&mut layers);
    /// assert_eq!(layers[0].name, "features.0");
    /// assert_eq!(layers[0].params, 3 * 8 * 9);
    /// assert_eq!(layers[1].kind, LayerKind::Activation(ActivationKind::Relu));
    /// # Ok::<(), NnError>(())
    /// ```
    fn describe(&self, out: &mut Vec<LayerInfo>) {
        out.push(LayerInfo::leaf(
            self,
            LayerKind::Custom(std::any::type_name::<Self>()),
        ));
    }
}

/// Checks that no two parameters of `model` share a name (every layer in
/// this crate builds valid names; duplicates come from reusing a scope).
///
/// # Errors
/// [`NnError::DuplicateName`] naming the first repeated name.
pub fn check_unique_names<T: Element>(model: &dyn HasParams<T>) -> Result<()> {
    let mut seen = HashSet::new();
    let mut dup = None;
    model.visit_params(&mut |p| {
        if dup.is_none() && !seen.insert(p.name()) {
            dup = Some(p.name().to_string());
        }
    });
    match dup {
        Some(name) => Err(NnError::DuplicateName { name }),
        None => Ok(()),
    }
}

impl<T: Element, M: HasParams<T> + ?Sized> HasParams<T> for Box<M> {
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        (**self).visit_params(f)
    }
    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        (**self).visit_params_mut(f)
    }
}

impl<T: Element, M: Module<T> + ?Sized> Module<T> for Box<M> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn forward(&mut self, cx: &mut Ctx<T>, x: Var) -> Result<Var> {
        (**self).forward(cx, x)
    }
    // The fusions must be forwarded too: the defaults (no fusion) would
    // silently hide those of the boxed module, and layers live in boxes.
    fn forward_then_relu(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        relu_name: &str,
    ) -> Option<Result<Var>> {
        (**self).forward_then_relu(cx, x, relu_name)
    }
    fn forward_then_add_relu(
        &mut self,
        cx: &mut Ctx<T>,
        x: Var,
        skip: Var,
        relu_name: &str,
    ) -> Option<Result<Var>> {
        (**self).forward_then_add_relu(cx, x, skip, relu_name)
    }
    fn set_training(&mut self, training: bool) {
        (**self).set_training(training)
    }
    fn is_training(&self) -> bool {
        (**self).is_training()
    }
    fn describe(&self, out: &mut Vec<LayerInfo>) {
        (**self).describe(out)
    }
}

/// A single parameter is a (tiny) model: handy for optimizer tests.
impl<T: Element> HasParams<T> for Param<T> {
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        f(self)
    }
    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        f(self)
    }
}

/// A list of parameters, visited in order.
impl<T: Element> HasParams<T> for Vec<Param<T>> {
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param<T>)) {
        for p in self {
            f(p)
        }
    }
    fn visit_params_mut<'a>(&'a mut self, f: &mut dyn FnMut(&'a mut Param<T>)) {
        for p in self {
            f(p)
        }
    }
}
