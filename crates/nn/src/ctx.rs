//! [`Ctx`]: the graph of one forward pass, the leaves bound to each
//! parameter in it, the named activation taps, and the seed stream for
//! stochastic layers.

use std::collections::HashMap;

use gradlab_autodiff::{Gradients, Graph, Retain, Var};
use gradlab_tensor::{Element, Tensor};

use crate::error::Result;
use crate::grads::GradMap;
use crate::param::{mix_seed, Param};

/// The context of one forward pass (one training or evaluation step): the
/// autodiff [`Graph`], the leaf [`Var`] bound to each [`Param`] used in it
/// (by dotted name), the activations tapped by layers, and a seed stream for
/// stochastic layers such as [`Dropout`](crate::Dropout).
///
/// Make a fresh `Ctx` per step. After the loss, [`Ctx::backward`] gives a
/// [`GradMap`] (`name -> gradient`) for optimizers, clipping and the
/// non-finite guard; [`Ctx::backward_with_taps`] also keeps the gradient of
/// every tapped activation for diagnostics.
///
/// # Examples
/// A whole training step:
/// ```
/// use gradlab_nn::{Ctx, Linear, LinearConfig, Module, Optimizer, Scope, Sgd, SgdConfig};
/// use gradlab_tensor::Tensor;
/// let mut model = Linear::<f32>::new(&Scope::new(0).pp("fc"), 3, 2, LinearConfig::default())?;
/// let mut opt = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, ..SgdConfig::default() })?;
/// let images = Tensor::<f32>::rand_normal(&[4, 3], 0.0, 1.0, 1)?;
/// let labels = [0, 1, 1, 0];
///
/// let mut cx = Ctx::new().with_seed(0); // seed the step (dropout masks)
/// let x = cx.input(images);
/// let logits = model.forward(&mut cx, x)?;
/// let loss = cx.graph_mut().cross_entropy(logits, &labels)?;
/// let grads = cx.backward(loss)?; // GradMap: "fc.weight" -> dL/dW, ...
/// opt.step(&mut model, &grads)?;  // refuses NaN/inf, names the parameter
/// assert!(grads.get("fc.weight").is_some());
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
pub struct Ctx<T: Element = f32> {
    graph: Graph<T>,
    bound: Vec<(String, Var)>,
    index: HashMap<String, usize>,
    seed: u64,
    draws: u64,
}

impl<T: Element> Default for Ctx<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> Ctx<T> {
    /// A context whose graph records gradients (training, or evaluation with
    /// gradients for diagnostics).
    pub fn new() -> Self {
        Self::from_graph(Graph::new())
    }

    /// A context whose graph records no gradient (inference).
    pub fn no_grad() -> Self {
        Self::from_graph(Graph::no_grad())
    }

    /// Wraps an existing (empty or not) graph.
    pub fn from_graph(graph: Graph<T>) -> Self {
        Ctx {
            graph,
            bound: Vec::new(),
            index: HashMap::new(),
            seed: 0,
            draws: 0,
        }
    }

    /// Sets the seed of this step's random stream (dropout masks). Derive it
    /// from the step counter so that a resumed run draws the same masks.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.draws = 0;
        self
    }

    /// The graph.
    pub fn graph(&self) -> &Graph<T> {
        &self.graph
    }

    /// The graph, mutable: apply ops to it (`cx.graph_mut().relu(x)?`).
    pub fn graph_mut(&mut self) -> &mut Graph<T> {
        &mut self.graph
    }

    /// Unwraps the graph.
    pub fn into_graph(self) -> Graph<T> {
        self.graph
    }

    /// Records an input (data, needing no gradient).
    pub fn input(&mut self, value: Tensor<T>) -> Var {
        self.graph.constant(value)
    }

    /// The leaf for `param` in this graph, created on first use (a copy of
    /// its value; a gradient-tracking leaf for a trainable parameter, a
    /// constant for a buffer) and reused afterwards, so a parameter used
    /// twice accumulates one gradient.
    pub fn param(&mut self, param: &Param<T>) -> Var {
        if let Some(&i) = self.index.get(param.name()) {
            return self.bound[i].1;
        }
        let value = param.value().clone();
        let var = if param.is_trainable() {
            self.graph.param(value)
        } else {
            self.graph.constant(value)
        };
        self.index
            .insert(param.name().to_string(), self.bound.len());
        self.bound.push((param.name().to_string(), var));
        var
    }

    /// The parameters bound so far, in the order they were first used, with their leaves.
    pub fn bound(&self) -> &[(String, Var)] {
        &self.bound
    }

    /// The leaf bound to the parameter `name`, if it was used.
    pub fn var_of(&self, name: &str) -> Option<Var> {
        self.index.get(name).map(|&i| self.bound[i].1)
    }

    /// Names an activation (layers tap their outputs under their dotted names).
    pub fn tap(&mut self, name: &str, var: Var) {
        self.graph.tap(name, var);
    }

    /// The tapped activations, input to output.
    pub fn taps(&self) -> &[(String, Var)] {
        self.graph.taps()
    }

    /// The activation tapped under `name` (the last one if repeated).
    pub fn tapped(&self, name: &str) -> Option<Var> {
        self.graph.tapped(name)
    }

    /// The value of `var`.
    ///
    /// # Errors
    /// [`AutodiffError::UnknownVar`](gradlab_autodiff::AutodiffError::UnknownVar) for a foreign `Var`.
    pub fn value(&self, var: Var) -> Result<&Tensor<T>> {
        Ok(self.graph.value(var)?)
    }

    /// Whether the graph records gradients.
    pub fn grad_enabled(&self) -> bool {
        self.graph.grad_enabled()
    }

    /// The next seed of this step's stream (each call gives a new one; the
    /// sequence depends only on [`with_seed`](Ctx::with_seed) and the order
    /// of calls, which a forward pass fixes).
    pub fn next_seed(&mut self) -> u64 {
        self.draws += 1;
        mix_seed(self.seed, self.draws)
    }

    /// Back-propagates from a scalar `loss` and returns the gradient of every
    /// bound trainable parameter by name, with the loss value (for the
    /// non-finite guard).
    ///
    /// The backward pass consumes the graph
    /// ([`Graph::backward_consuming`]): intermediate gradients are freed as
    /// soon as they have been propagated, and every activation as soon as
    /// the last vector-Jacobian product that reads it has run. Afterwards
    /// only the loss keeps its value; read activations before, or use
    /// [`backward_with_taps`](Ctx::backward_with_taps), which keeps the graph.
    ///
    /// # Errors
    /// Those of [`Graph::backward_consuming`] (a second call is
    /// [`AutodiffError::Consumed`](gradlab_autodiff::AutodiffError::Consumed)).
    pub fn backward(&mut self, loss: Var) -> Result<GradMap<T>> {
        let mut grads = self
            .graph
            .backward_consuming(loss, Retain::LeavesAnd(&[]))?;
        self.grad_map(loss, &mut grads)
    }

    /// Like [`backward`](Ctx::backward), and also keeps the gradient of every
    /// tapped activation: look them up with `gradients.get(var)` for each
    /// `(name, var)` of [`taps`](Ctx::taps).
    ///
    /// # Errors
    /// Those of [`Graph::backward_retain`].
    pub fn backward_with_taps(&self, loss: Var) -> Result<(GradMap<T>, Gradients<T>)> {
        let tapped: Vec<Var> = self.graph.taps().iter().map(|&(_, v)| v).collect();
        let mut grads = self
            .graph
            .backward_retain(loss, Retain::LeavesAnd(&tapped))?;
        let map = self.grad_map(loss, &mut grads)?;
        Ok((map, grads))
    }

    /// Moves the parameter gradients out of `grads` (from a backward pass on
    /// this context's graph) into a [`GradMap`], with the value of `loss`.
    ///
    /// # Errors
    /// [`AutodiffError::UnknownVar`](gradlab_autodiff::AutodiffError::UnknownVar) for a foreign `loss`.
    pub fn grad_map(&self, loss: Var, grads: &mut Gradients<T>) -> Result<GradMap<T>> {
        let loss_value = self.graph.value(loss)?;
        let mut map = GradMap::new();
        for (name, var) in &self.bound {
            if let Some(g) = grads.take(*var) {
                map.insert(name.clone(), g);
            }
        }
        if loss_value.len() == 1 {
            map.set_loss(loss_value.as_slice()[0].as_f64());
        }
        Ok(map)
    }
}
