//! Optimizers ([`Sgd`], [`Adam`] / AdamW) behind one [`Optimizer`] trait, and
//! learning-rate schedules.
//!
//! Every optimizer's `step` first runs the non-finite guard
//! ([`GradMap::check_finite`]) and checks its own state, and only then
//! updates: a rejected step changes neither the parameters nor the
//! optimizer's state.

mod adam;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use schedule::{
    Constant, CosineAnnealing, LinearWarmup, LrSchedule, MultiStep, StepDecay, Warmup,
};
pub use sgd::{Sgd, SgdConfig};

use std::collections::HashMap;

use gradlab_tensor::{Element, Tensor};

use crate::error::{NnError, Result};
use crate::grads::GradMap;
use crate::module::HasParams;

/// What any optimizer does: update trainable parameters from a [`GradMap`],
/// hold a learning rate, count its steps, and save and restore its state.
///
/// Object-safe; takes the model as `&mut dyn HasParams<T>`.
pub trait Optimizer<T: Element = f32> {
    /// The kind of optimizer (`"sgd"`, `"adam"`, `"adamw"`), stored in checkpoints.
    fn kind(&self) -> &'static str;

    /// Applies one update to every trainable parameter of `model`.
    ///
    /// # Errors
    /// [`NnError::NonFiniteLoss`], [`NnError::NonFiniteGradient`] (naming the
    /// first offending parameter, input to output),
    /// [`NnError::MissingGradient`] for a trainable parameter with no
    /// gradient, [`NnError::GradientShape`], [`NnError::ShapeMismatch`] for
    /// state that does not fit the model. On any error nothing changed.
    fn step(&mut self, model: &mut dyn HasParams<T>, grads: &GradMap<T>) -> Result<()>;

    /// The current learning rate.
    fn lr(&self) -> f64;

    /// Sets the learning rate (a schedule calls this before each step).
    fn set_lr(&mut self, lr: f64);

    /// Number of updates applied so far.
    fn steps(&self) -> u64;

    /// A copy of the state: kind, step count, learning rate, and the state
    /// tensors named `<slot>/<parameter name>`.
    fn state(&self) -> OptimizerState<T>;

    /// Replaces the state by `state`.
    ///
    /// # Errors
    /// [`NnError::OptimizerMismatch`] for state of another kind;
    /// [`NnError::InvalidName`] for a tensor name with an unknown slot.
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()>;
}

/// The saved state of an optimizer (see [`Optimizer::state`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState<T: Element = f32> {
    /// The optimizer's kind.
    pub kind: String,
    /// Updates applied.
    pub steps: u64,
    /// Learning rate at the time of saving.
    pub lr: f64,
    /// State tensors named `<slot>/<parameter name>` (e.g.
    /// `momentum_buffer/features.0.weight`), sorted by name.
    pub tensors: Vec<(String, Tensor<T>)>,
}

/// Per-parameter state tensors of one slot (`momentum_buffer`, `exp_avg`, ...).
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot<T: Element> {
    pub name: &'static str,
    pub map: HashMap<String, Tensor<T>>,
}

impl<T: Element> Slot<T> {
    pub fn new(name: &'static str) -> Self {
        Slot {
            name,
            map: HashMap::new(),
        }
    }

    /// Checks that every buffer of this slot held for a parameter of
    /// `model` has its shape.
    pub fn check_shapes(&self, model: &dyn HasParams<T>) -> Result<()> {
        let mut err = None;
        model.visit_params(&mut |p| {
            if err.is_some() {
                return;
            }
            if let Some(t) = self.map.get(p.name()) {
                if t.shape() != p.shape() {
                    err = Some(NnError::ShapeMismatch {
                        path: Default::default(),
                        name: format!("{}/{}", self.name, p.name()),
                        expected: p.shape().to_vec(),
                        found: t.shape().to_vec(),
                    });
                }
            }
        });
        err.map_or(Ok(()), Err)
    }

    pub fn export(&self, out: &mut Vec<(String, Tensor<T>)>) {
        for (name, t) in &self.map {
            out.push((format!("{}/{}", self.name, name), t.clone()));
        }
    }
}

/// Splits state tensors `<slot>/<param>` into the given slots (cleared first).
pub(crate) fn import_slots<T: Element>(
    tensors: Vec<(String, Tensor<T>)>,
    slots: &mut [&mut Slot<T>],
) -> Result<()> {
    let mut staged: Vec<HashMap<String, Tensor<T>>> =
        slots.iter().map(|_| HashMap::new()).collect();
    for (key, t) in tensors {
        let Some((slot, param)) = key.split_once('/') else {
            return Err(NnError::InvalidName {
                name: key,
                reason: "optimizer state names have the form <slot>/<parameter>".into(),
            });
        };
        let Some(i) = slots.iter().position(|s| s.name == slot) else {
            let known: Vec<&str> = slots.iter().map(|s| s.name).collect();
            return Err(NnError::InvalidName {
                reason: format!(
                    "unknown optimizer state slot {slot:?} (this optimizer has {known:?})"
                ),
                name: key,
            });
        };
        staged[i].insert(param.to_string(), t);
    }
    for (slot, map) in slots.iter_mut().zip(staged) {
        slot.map = map;
    }
    Ok(())
}

pub(crate) fn check_lr(what: &str, lr: f64) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(NnError::config(
            what,
            format!("learning rate must be finite and non-negative, got {lr}"),
        ))
    }
}

pub(crate) fn sorted<T: Element>(mut v: Vec<(String, Tensor<T>)>) -> Vec<(String, Tensor<T>)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}
