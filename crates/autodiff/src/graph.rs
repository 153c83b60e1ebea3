//! The tape: [`Graph`], its [`Var`] handles, and reverse-mode [`Graph::backward`].

use std::borrow::Borrow;
use std::sync::atomic::{AtomicU64, Ordering};

use gradlab_tensor::{Element, Tensor};

use crate::error::{AutodiffError, Result};
use crate::op::Op;

static NEXT_GRAPH_ID: AtomicU64 = AtomicU64::new(1);

/// A handle to one node of a [`Graph`]: small and `Copy`. It remembers its
/// graph, so using it with another graph is an error, not a wrong answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Var {
    graph: u64,
    index: usize,
}

impl Var {
    /// Position of the node on the tape (inputs come before their consumers).
    pub fn index(self) -> usize {
        self.index
    }
}

struct Node<T: Element> {
    /// `None` once a consuming backward pass has freed it.
    value: Option<Tensor<T>>,
    /// `None` for leaves and for nodes recorded without gradient tracking.
    op: Option<Box<dyn Op<T>>>,
    inputs: Vec<usize>,
    requires_grad: bool,
}

/// A reverse-mode autodiff tape for one step: an arena of nodes in the order
/// they were computed, so backward is a reverse loop over it.
///
/// Leaves are [`param`](Graph::param)s (want a gradient) and
/// [`constant`](Graph::constant)s (do not). Every op on a `Var` computes its
/// value eagerly and records how to differentiate it.
///
/// # Examples
/// ```
/// use gradlab_autodiff::Graph;
/// use gradlab_tensor::Tensor;
/// let mut g = Graph::<f64>::new();
/// let w = g.param(Tensor::from_vec(&[2], vec![1.0, -2.0])?);
/// let x = g.constant(Tensor::from_vec(&[2], vec![3.0, 4.0])?);
/// let y = g.mul(w, x)?;
/// let loss = g.sum_all(y)?;
/// let grads = g.backward(loss)?;
/// assert_eq!(grads.get(w).unwrap().to_vec(), vec![3.0, 4.0]);
/// assert!(grads.get(x).is_none());
/// # Ok::<(), gradlab_autodiff::AutodiffError>(())
/// ```
pub struct Graph<T: Element = f32> {
    id: u64,
    nodes: Vec<Node<T>>,
    grad_enabled: bool,
    taps: Vec<(String, Var)>,
    /// Set by [`Graph::backward_consuming`]: no further backward pass.
    consumed: bool,
}

impl<T: Element> Default for Graph<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> Graph<T> {
    /// An empty graph with gradient tracking on.
    pub fn new() -> Self {
        Graph {
            id: NEXT_GRAPH_ID.fetch_add(1, Ordering::Relaxed),
            nodes: Vec::new(),
            grad_enabled: true,
            taps: Vec::new(),
            consumed: false,
        }
    }

    /// An empty graph that records no gradient at all (inference, evaluation).
    pub fn no_grad() -> Self {
        let mut g = Self::new();
        g.grad_enabled = false;
        g
    }

    /// Turns gradient tracking on or off for the nodes created from now on.
    pub fn set_grad_enabled(&mut self, enabled: bool) {
        self.grad_enabled = enabled;
    }

    /// Whether new nodes track gradients.
    pub fn grad_enabled(&self) -> bool {
        self.grad_enabled
    }

    /// Number of nodes on the tape.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tape is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn push(
        &mut self,
        value: Tensor<T>,
        op: Option<Box<dyn Op<T>>>,
        inputs: Vec<usize>,
        requires_grad: bool,
    ) -> Var {
        self.nodes.push(Node {
            value: Some(value),
            op,
            inputs,
            requires_grad,
        });
        Var {
            graph: self.id,
            index: self.nodes.len() - 1,
        }
    }

    /// A leaf that wants a gradient (a parameter or an input under study).
    pub fn param(&mut self, value: Tensor<T>) -> Var {
        let rg = self.grad_enabled;
        self.push(value, None, Vec::new(), rg)
    }

    /// A leaf that needs no gradient (data, labels as floats, fixed masks).
    pub fn constant(&mut self, value: Tensor<T>) -> Var {
        self.push(value, None, Vec::new(), false)
    }

    /// A new leaf holding `var`'s value, cut off from the graph: no gradient
    /// flows through it back to `var`.
    ///
    /// # Errors
    /// [`AutodiffError::UnknownVar`] for a foreign `Var`.
    pub fn detach(&mut self, var: Var) -> Result<Var> {
        let value = self.value(var)?.clone();
        Ok(self.constant(value))
    }

    fn check(&self, var: Var) -> Result<usize> {
        if var.graph == self.id && var.index < self.nodes.len() {
            Ok(var.index)
        } else {
            Err(AutodiffError::UnknownVar {
                index: var.index,
                graph: self.id,
                len: self.nodes.len(),
            })
        }
    }

    /// The value computed for `var`.
    ///
    /// # Errors
    /// [`AutodiffError::UnknownVar`] for a foreign `Var`;
    /// [`AutodiffError::Consumed`] when a consuming backward pass freed it.
    pub fn value(&self, var: Var) -> Result<&Tensor<T>> {
        let i = self.check(var)?;
        self.value_at(i)
    }

    fn value_at(&self, i: usize) -> Result<&Tensor<T>> {
        self.nodes[i].value.as_ref().ok_or(AutodiffError::Consumed {
            index: i,
            graph: self.id,
        })
    }

    /// Whether a consuming backward pass ([`backward_consuming`](Graph::backward_consuming))
    /// has run on this graph.
    pub fn is_consumed(&self) -> bool {
        self.consumed
    }

    /// Whether a gradient will flow to `var`.
    ///
    /// # Errors
    /// [`AutodiffError::UnknownVar`] for a foreign `Var`.
    pub fn requires_grad(&self, var: Var) -> Result<bool> {
        Ok(self.nodes[self.check(var)?].requires_grad)
    }

    /// Records `op` applied to `inputs`: runs its forward now and keeps what
    /// backward needs.
    ///
    /// # Errors
    /// [`AutodiffError::UnknownVar`] for a foreign `Var`; whatever the op's
    /// forward rejects.
    pub fn apply(&mut self, op: impl Op<T> + 'static, inputs: &[Var]) -> Result<Var> {
        let idx = inputs
            .iter()
            .map(|&v| self.check(v))
            .collect::<Result<Vec<_>>>()?;
        let value = {
            let vals = idx
                .iter()
                .map(|&i| self.value_at(i))
                .collect::<Result<Vec<_>>>()?;
            op.forward(&vals)?
        };
        let requires_grad = self.grad_enabled && idx.iter().any(|&i| self.nodes[i].requires_grad);
        if requires_grad {
            Ok(self.push(value, Some(Box::new(op)), idx, true))
        } else {
            Ok(self.push(value, None, idx, false))
        }
    }

    /// Names `var` so that its value and gradient can be found later
    /// ([`taps`](Graph::taps)); layers tap their outputs for diagnostics.
    pub fn tap(&mut self, name: impl Into<String>, var: Var) {
        self.taps.push((name.into(), var));
    }

    /// The named activations, in the order they were tapped (input to output).
    pub fn taps(&self) -> &[(String, Var)] {
        &self.taps
    }

    /// The `Var` tapped under `name`, if any (the last one when repeated).
    pub fn tapped(&self, name: &str) -> Option<Var> {
        self.taps
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }

    /// Back-propagates from a single-element `loss` and keeps the gradient of
    /// every node that requires one, leaves and intermediates alike.
    ///
    /// # Errors
    /// [`AutodiffError::NonScalarLoss`] when `loss` holds more than one
    /// element; errors from an op's backward.
    pub fn backward(&self, loss: Var) -> Result<Gradients<T>> {
        self.backward_retain(loss, Retain::All)
    }

    /// Like [`backward`](Graph::backward), but keeps only what `retain` asks
    /// for: intermediate gradients are freed as soon as they have been
    /// propagated, which bounds memory on deep networks.
    ///
    /// # Errors
    /// As [`backward`](Graph::backward).
    pub fn backward_retain(&self, loss: Var, retain: Retain<'_>) -> Result<Gradients<T>> {
        let seed = self.loss_seed(loss)?;
        self.backward_from(loss, seed, retain)
    }

    /// Like [`backward_retain`](Graph::backward_retain), but consumes the
    /// graph as it goes: each node's value (and its op, with whatever the op
    /// saved) is freed right after its vector-Jacobian product ran, since
    /// every op that reads it comes later on the tape and has run by then.
    /// Memory falls during the backward pass instead of staying at the
    /// forward pass's peak while the gradients pile on top.
    ///
    /// Only the loss keeps its value. Afterwards [`value`](Graph::value) of
    /// any other node and a second backward pass are
    /// [`AutodiffError::Consumed`]. The gradients are the same bits as
    /// [`backward_retain`](Graph::backward_retain)'s.
    ///
    /// # Errors
    /// As [`backward_retain`](Graph::backward_retain);
    /// [`AutodiffError::Consumed`] on a graph already consumed.
    pub fn backward_consuming(&mut self, loss: Var, retain: Retain<'_>) -> Result<Gradients<T>> {
        let seed = self.loss_seed(loss)?;
        let keep = self.keep_mask(loss, seed.shape(), retain)?;
        let out = loss.index;
        let mut values: Vec<Option<Tensor<T>>> =
            self.nodes.iter_mut().map(|n| n.value.take()).collect();
        let mut ops: Vec<Option<Box<dyn Op<T>>>> =
            self.nodes.iter_mut().map(|n| n.op.take()).collect();
        self.consumed = true;
        let loss_value = values[out].take();
        let result = {
            // The loss's own value is never read by a backward pass (the seed
            // replaces it), but ops read their output: hand it over by reference.
            let mut refs: Vec<Option<Tensor<T>>> = std::mem::take(&mut values);
            if let Some(v) = &loss_value {
                refs[out] = Some(v.clone());
            }
            backward_core(
                &self.nodes,
                &mut ops,
                &mut refs,
                out,
                seed,
                &keep,
                true,
                self.id,
            )
        };
        self.nodes[out].value = loss_value;
        result
    }

    fn loss_seed(&self, loss: Var) -> Result<Tensor<T>> {
        let i = self.check(loss)?;
        let value = self.value_at(i)?;
        if value.len() != 1 {
            return Err(AutodiffError::NonScalarLoss {
                shape: value.shape().to_vec(),
            });
        }
        Ok(Tensor::ones(value.shape()))
    }

    fn keep_mask(
        &self,
        output: Var,
        grad_shape: &[usize],
        retain: Retain<'_>,
    ) -> Result<Vec<bool>> {
        let out = self.check(output)?;
        if self.consumed {
            return Err(AutodiffError::Consumed {
                index: out,
                graph: self.id,
            });
        }
        let shape = self.value_at(out)?.shape();
        if grad_shape != shape {
            return Err(AutodiffError::GradientShape {
                op: "backward_from",
                input: 0,
                expected: shape.to_vec(),
                got: grad_shape.to_vec(),
            });
        }
        let mut keep = vec![false; self.nodes.len()];
        for (k, node) in keep.iter_mut().zip(&self.nodes) {
            *k = match retain {
                Retain::All => node.requires_grad,
                Retain::LeavesAnd(_) => node.requires_grad && node.op.is_none(),
            };
        }
        if let Retain::LeavesAnd(vars) = retain {
            for &v in vars {
                keep[self.check(v)?] = true;
            }
        }
        Ok(keep)
    }

    /// Back-propagates an explicit gradient `grad_output` of `output` (which
    /// need not be a scalar): computes the vector-Jacobian product for every
    /// node upstream of `output`.
    ///
    /// # Errors
    /// [`AutodiffError::GradientShape`] when `grad_output` does not have the
    /// shape of `output`; errors from an op's backward;
    /// [`AutodiffError::Consumed`] on a consumed graph.
    pub fn backward_from(
        &self,
        output: Var,
        grad_output: Tensor<T>,
        retain: Retain<'_>,
    ) -> Result<Gradients<T>> {
        let keep = self.keep_mask(output, grad_output.shape(), retain)?;
        let mut values: Vec<Option<&Tensor<T>>> =
            self.nodes.iter().map(|n| n.value.as_ref()).collect();
        let mut ops: Vec<Option<&dyn Op<T>>> = self.nodes.iter().map(|n| n.op.as_deref()).collect();
        backward_core(
            &self.nodes,
            &mut ops,
            &mut values,
            output.index,
            grad_output,
            &keep,
            false,
            self.id,
        )
    }
}

/// The reverse loop shared by the keeping and the consuming backward passes:
/// `values[i]` and `ops[i]` stand for node `i`'s value and op (borrowed or
/// owned); with `free`, both are dropped right after node `i`'s
/// vector-Jacobian product, when nothing later in the loop can read them.
#[allow(clippy::too_many_arguments)]
fn backward_core<T: Element, V: Borrow<Tensor<T>>, O: Borrow<dyn Op<T> + 'static>>(
    nodes: &[Node<T>],
    ops: &mut [Option<O>],
    values: &mut [Option<V>],
    out: usize,
    grad_output: Tensor<T>,
    keep: &[bool],
    free: bool,
    graph: u64,
) -> Result<Gradients<T>> {
    let consumed = |index: usize| AutodiffError::Consumed { index, graph };
    let mut grads: Vec<Option<Tensor<T>>> = (0..nodes.len()).map(|_| None).collect();
    if nodes[out].requires_grad || keep[out] {
        grads[out] = Some(grad_output);
    }
    if free {
        for i in out + 1..nodes.len() {
            values[i] = None;
            ops[i] = None;
        }
    }
    for i in (0..=out).rev() {
        let node = &nodes[i];
        // Leaves keep their gradient; an op passes its gradient on.
        let g = if ops[i].is_some() {
            grads[i].take()
        } else {
            None
        };
        if let (Some(op), Some(g)) = (ops[i].as_ref(), g) {
            let op: &dyn Op<T> = op.borrow();
            let needs: Vec<bool> = node
                .inputs
                .iter()
                .map(|&j| nodes[j].requires_grad)
                .collect();
            if needs.iter().any(|&n| n) {
                let inputs = node
                    .inputs
                    .iter()
                    .map(|&j| values[j].as_ref().map(|v| v.borrow()).ok_or(consumed(j)))
                    .collect::<Result<Vec<&Tensor<T>>>>()?;
                let output = values[i].as_ref().map(|v| v.borrow()).ok_or(consumed(i))?;
                let input_grads = op.backward(&inputs, output, &g, &needs)?;
                if input_grads.len() != inputs.len() {
                    return Err(AutodiffError::Arity {
                        op: op.name(),
                        expected: inputs.len(),
                        got: input_grads.len(),
                    });
                }
                for (slot, (ig, &j)) in input_grads.into_iter().zip(&node.inputs).enumerate() {
                    let Some(ig) = ig else { continue };
                    if !nodes[j].requires_grad {
                        continue;
                    }
                    let expected = inputs[slot].shape();
                    if ig.shape() != expected {
                        return Err(AutodiffError::GradientShape {
                            op: op.name(),
                            input: slot,
                            expected: expected.to_vec(),
                            got: ig.shape().to_vec(),
                        });
                    }
                    accumulate(&mut grads[j], ig)?;
                }
            }
            if keep[i] {
                grads[i] = Some(g);
            }
        }
        if free {
            // Every reader of node i's value (i itself and its consumers, all
            // later on the tape) has run.
            values[i] = None;
            ops[i] = None;
        }
    }
    for (g, k) in grads.iter_mut().zip(keep) {
        if !k {
            *g = None;
        }
    }
    Ok(Gradients { graph, grads })
}

/// Adds `g` into a node's gradient (a value used more than once gets the
/// sum of its consumers' gradients).
fn accumulate<T: Element>(slot: &mut Option<Tensor<T>>, g: Tensor<T>) -> Result<()> {
    match slot {
        None => *slot = Some(g),
        Some(acc) => acc.add_assign(&g)?,
    }
    Ok(())
}

/// Which gradients [`Graph::backward_retain`] keeps.
#[derive(Debug, Clone, Copy)]
pub enum Retain<'a> {
    /// Every node that requires a gradient.
    All,
    /// Leaves that require a gradient (parameters), plus these nodes.
    LeavesAnd(&'a [Var]),
}

/// The gradients produced by one backward pass, answerable for any node that
/// was retained.
#[derive(Debug, Clone)]
pub struct Gradients<T: Element = f32> {
    graph: u64,
    grads: Vec<Option<Tensor<T>>>,
}

impl<T: Element> Gradients<T> {
    /// The gradient of the loss with respect to `var`, or `None` when no
    /// gradient reached it (or it was not retained, or `var` is from another graph).
    pub fn get(&self, var: Var) -> Option<&Tensor<T>> {
        if var.graph != self.graph {
            return None;
        }
        self.grads.get(var.index).and_then(Option::as_ref)
    }

    /// Moves the gradient of `var` out, leaving `None`.
    pub fn take(&mut self, var: Var) -> Option<Tensor<T>> {
        if var.graph != self.graph {
            return None;
        }
        self.grads.get_mut(var.index).and_then(Option::take)
    }
}
