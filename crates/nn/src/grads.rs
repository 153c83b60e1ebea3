//! [`GradMap`]: parameter gradients by dotted name, with the loss they came
//! from; global-norm clipping and the non-finite check.

use std::collections::HashMap;

use gradlab_tensor::{Element, Tensor};

use crate::error::{NnError, Result};
use crate::module::HasParams;

/// The gradients of one step, keyed by parameter name (in the order the
/// parameters were first used), plus the loss value when it is known.
///
/// Produced by [`Ctx::backward`](crate::Ctx::backward); read by optimizers,
/// [`clip_grad_norm`], [`GradMap::check_finite`] and diagnostics before any
/// update happens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GradMap<T: Element = f32> {
    entries: Vec<(String, Tensor<T>)>,
    index: HashMap<String, usize>,
    loss: Option<f64>,
}

impl<T: Element> GradMap<T> {
    /// An empty map.
    pub fn new() -> Self {
        GradMap {
            entries: Vec::new(),
            index: HashMap::new(),
            loss: None,
        }
    }

    /// Sets the gradient of `name` (replacing any previous one).
    pub fn insert(&mut self, name: impl Into<String>, grad: Tensor<T>) {
        let name = name.into();
        match self.index.get(&name) {
            Some(&i) => self.entries[i].1 = grad,
            None => {
                self.index.insert(name.clone(), self.entries.len());
                self.entries.push((name, grad));
            }
        }
    }

    /// The gradient of the parameter `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.index.get(name).map(|&i| &self.entries[i].1)
    }

    /// The gradient of the parameter `name`, mutable.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Tensor<T>> {
        match self.index.get(name) {
            Some(&i) => Some(&mut self.entries[i].1),
            None => None,
        }
    }

    /// `(name, gradient)` pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor<T>)> {
        self.entries.iter().map(|(n, g)| (n.as_str(), g))
    }

    /// Number of gradients.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no gradient.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The loss these gradients are of, when known.
    pub fn loss(&self) -> Option<f64> {
        self.loss
    }

    /// Records the loss value.
    pub fn set_loss(&mut self, loss: f64) {
        self.loss = Some(loss);
    }

    /// `sqrt(sum of squares)` over every gradient, in `f64` (NaN or inf if
    /// any element is).
    pub fn global_norm(&self) -> f64 {
        self.entries
            .iter()
            .flat_map(|(_, g)| g.as_slice())
            .map(|x| {
                let x = x.as_f64();
                x * x
            })
            .sum::<f64>()
            .sqrt()
    }

    /// Multiplies every gradient by `factor`.
    pub fn scale(&mut self, factor: f64) {
        let f = T::of_f64(factor);
        for (_, g) in &mut self.entries {
            for x in g.as_slice_mut() {
                *x = *x * f;
            }
        }
    }

    /// The non-finite guard: checks the loss, then the gradient of every
    /// trainable parameter of `model` in its order (input to output).
    ///
    /// # Errors
    /// [`NnError::NonFiniteLoss`]; [`NnError::NonFiniteGradient`] naming the
    /// first parameter whose gradient holds NaN or infinity, with the element;
    /// [`NnError::MissingGradient`] for a trainable parameter without one;
    /// [`NnError::GradientShape`] for a gradient of the wrong shape.
    pub fn check_finite(&self, model: &dyn HasParams<T>) -> Result<()> {
        if let Some(loss) = self.loss {
            if !loss.is_finite() {
                return Err(NnError::NonFiniteLoss { value: loss });
            }
        }
        let mut err = None;
        model.visit_params(&mut |p| {
            if err.is_some() || !p.is_trainable() {
                return;
            }
            let Some(g) = self.get(p.name()) else {
                err = Some(NnError::MissingGradient {
                    name: p.name().to_string(),
                });
                return;
            };
            if g.shape() != p.shape() {
                err = Some(NnError::GradientShape {
                    name: p.name().to_string(),
                    expected: p.shape().to_vec(),
                    got: g.shape().to_vec(),
                });
                return;
            }
            if let Some((index, v)) = g
                .as_slice()
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite())
            {
                err = Some(NnError::NonFiniteGradient {
                    name: p.name().to_string(),
                    index,
                    value: v.as_f64(),
                });
            }
        });
        err.map_or(Ok(()), Err)
    }
}

/// Clips the gradients by their global norm, as PyTorch's
/// `clip_grad_norm_`: with `n = sqrt(sum_i ||g_i||^2)`, every gradient is
/// multiplied by `max_norm / (n + 1e-6)` when that is below 1. Returns `n`,
/// the norm **before** clipping.
///
/// A non-finite norm leaves the gradients unchanged (scaling would spread the
/// NaN); the optimizer's non-finite guard then names the offending parameter.
///
/// # Errors
/// [`NnError::InvalidConfig`] unless `max_norm` is positive and finite.
///
/// # Examples
/// ```
/// use gradlab_nn::{clip_grad_norm, GradMap};
/// use gradlab_tensor::Tensor;
/// let mut grads = GradMap::<f64>::new();
/// grads.insert("w", Tensor::from_vec(&[2], vec![3.0, 4.0])?);
/// let norm = clip_grad_norm(&mut grads, 1.0)?;
/// assert_eq!(norm, 5.0);
/// assert!((grads.global_norm() - 1.0).abs() < 1e-6);
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
pub fn clip_grad_norm<T: Element>(grads: &mut GradMap<T>, max_norm: f64) -> Result<f64> {
    if !(max_norm > 0.0 && max_norm.is_finite()) {
        return Err(NnError::config(
            "clip_grad_norm",
            format!("max_norm must be positive and finite, got {max_norm}"),
        ));
    }
    let norm = grads.global_norm();
    if norm.is_finite() {
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            grads.scale(coef);
        }
    }
    Ok(norm)
}
