//! Stochastic gradient descent with momentum, dampening, Nesterov momentum
//! and L2 weight decay, exactly as PyTorch's `torch.optim.SGD`.

use gradlab_conv::{isa_builds, Isa};
use gradlab_tensor::{Element, Tensor};

use crate::error::{NnError, Result};
use crate::grads::GradMap;
use crate::module::HasParams;
use crate::optim::{check_lr, import_slots, sorted, Optimizer, OptimizerState, Slot};

/// Hyper-parameters of [`Sgd`] (defaults: lr 0.01, everything else 0 / off).
#[derive(Debug, Clone, PartialEq)]
pub struct SgdConfig {
    /// Learning rate `lr`.
    pub lr: f64,
    /// Momentum factor `mu`.
    pub momentum: f64,
    /// Dampening `tau` of the momentum.
    pub dampening: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
    /// L2 penalty `lambda` added to the gradient.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

/// SGD, PyTorch's `torch.optim.SGD`. For each trainable parameter `p` with
/// gradient `g`, at step `t` (1-based):
///
/// ```text
/// g = g + lambda p                       if lambda != 0
/// if mu != 0:
///     b = g                              if t == 1
///     b = mu b + (1 - tau) g             otherwise
///     g = g + mu b                       if nesterov
///     g = b                              otherwise
/// p = p - lr g
/// ```
///
/// The momentum buffer `b` is the state slot `momentum_buffer`. Arithmetic
/// is done in `f64` per element and stored in `T`.
///
/// # Examples
/// ```
/// use gradlab_nn::{GradMap, Optimizer, Param, Role, Sgd, SgdConfig};
/// use gradlab_tensor::Tensor;
/// let mut p = Param::new("w", Role::Weight, 0, Tensor::from_vec(&[1], vec![1.0f64])?)?;
/// let mut grads = GradMap::new();
/// grads.insert("w", Tensor::from_vec(&[1], vec![0.5])?);
/// let mut opt = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() })?;
/// opt.step(&mut p, &grads)?; // b = 0.5, p = 1 - 0.05
/// opt.step(&mut p, &grads)?; // b = 0.9 * 0.5 + 0.5 = 0.95, p -= 0.095
/// assert!((p.value().as_slice()[0] - 0.855).abs() < 1e-12);
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sgd<T: Element = f32> {
    config: SgdConfig,
    steps: u64,
    momentum: Slot<T>,
}

impl<T: Element> Sgd<T> {
    /// An SGD optimizer.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a negative or non-finite learning rate,
    /// momentum, dampening or weight decay, or Nesterov without momentum or
    /// with dampening.
    pub fn new(config: SgdConfig) -> Result<Self> {
        check_lr("sgd", config.lr)?;
        for (what, v) in [
            ("momentum", config.momentum),
            ("dampening", config.dampening),
            ("weight_decay", config.weight_decay),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(NnError::config("sgd", format!("invalid {what} value: {v}")));
            }
        }
        if config.nesterov && (config.momentum <= 0.0 || config.dampening != 0.0) {
            return Err(NnError::config(
                "sgd",
                "Nesterov momentum requires a momentum and zero dampening",
            ));
        }
        Ok(Sgd {
            config,
            steps: 0,
            momentum: Slot::new("momentum_buffer"),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl<T: Element> Optimizer<T> for Sgd<T> {
    fn kind(&self) -> &'static str {
        "sgd"
    }

    fn step(&mut self, model: &mut dyn HasParams<T>, grads: &GradMap<T>) -> Result<()> {
        grads.check_finite(model)?;
        self.momentum.check_shapes(model)?;
        let SgdConfig {
            lr,
            momentum: mu,
            dampening,
            nesterov,
            weight_decay: wd,
        } = self.config;
        let momentum = &mut self.momentum;
        model.visit_params_mut(&mut |p| {
            if !p.is_trainable() {
                return;
            }
            let Some(g) = grads.get(p.name()) else {
                return; // unreachable: check_finite found every gradient
            };
            let buf = if mu != 0.0 {
                let fresh = !momentum.map.contains_key(p.name());
                if fresh {
                    momentum
                        .map
                        .insert(p.name().to_string(), Tensor::zeros(p.shape()));
                }
                momentum.map.get_mut(p.name()).map(|b| (b, fresh))
            } else {
                None
            };
            let gs = g.as_slice();
            let isa = Isa::current();
            match buf {
                None => update_plain(isa, p.data_mut(), gs, [lr, wd]),
                Some((b, fresh)) => {
                    let hyper = [lr, mu, dampening, wd];
                    update_momentum(
                        isa,
                        p.data_mut(),
                        gs,
                        b.as_slice_mut(),
                        fresh,
                        nesterov,
                        hyper,
                    )
                }
            }
        });
        self.steps += 1;
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn state(&self) -> OptimizerState<T> {
        let mut tensors = Vec::new();
        self.momentum.export(&mut tensors);
        OptimizerState {
            kind: "sgd".into(),
            steps: self.steps,
            lr: self.config.lr,
            tensors: sorted(tensors),
        }
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        if state.kind != "sgd" {
            return Err(NnError::OptimizerMismatch {
                expected: "sgd".into(),
                found: state.kind,
            });
        }
        import_slots(state.tensors, &mut [&mut self.momentum])?;
        self.steps = state.steps;
        self.config.lr = state.lr;
        Ok(())
    }
}

// The updates in f64, element by element as PyTorch's formulas read,
// compiled per kernel build (`gradlab_conv::Isa`) so that the conversions
// and f64 arithmetic use the CPU's widest vectors: the update then takes
// a small part of a batch-1 step rather than about a tenth. Each element's
// operations are the same in every build (no fused multiply-add), so the
// builds give the same bits.

isa_builds! {
    /// `w -= lr (g + wd w)`.
    fn update_plain<T: Element>(w: &mut [T], g: &[T], hyper: [f64; 2]) [_FMA, _VB] {
        let [lr, wd] = hyper;
        for (w, &g) in w.iter_mut().zip(g) {
            let (wv, mut gv) = (w.as_f64(), g.as_f64());
            gv += wd * wv;
            *w = T::of_f64(wv - lr * gv);
        }
    }
}

isa_builds! {
    /// With momentum buffer `b`: `g' = g + wd w`, `b = g'` on the first
    /// step (`fresh`), else `mu b + (1 - dampening) g'`; `w -= lr (g' + mu b)`
    /// with Nesterov momentum, else `w -= lr b`. `hyper` is `[lr, mu,
    /// dampening, wd]`.
    fn update_momentum<T: Element>(
        w: &mut [T],
        g: &[T],
        b: &mut [T],
        fresh: bool,
        nesterov: bool,
        hyper: [f64; 4],
    ) [_FMA, _VB] {
        match (fresh, nesterov) {
            (false, true) => momentum_step::<T, false, true>(w, g, b, hyper),
            (false, false) => momentum_step::<T, false, false>(w, g, b, hyper),
            (true, true) => momentum_step::<T, true, true>(w, g, b, hyper),
            (true, false) => momentum_step::<T, true, false>(w, g, b, hyper),
        }
    }
}

/// [`update_momentum`] with its two switches as constants, so that the
/// loop has no branch and vectorises.
#[inline(always)]
fn momentum_step<T: Element, const FRESH: bool, const NESTEROV: bool>(
    w: &mut [T],
    g: &[T],
    b: &mut [T],
    [lr, mu, dampening, wd]: [f64; 4],
) {
    for ((w, &g), b) in w.iter_mut().zip(g).zip(b) {
        let (wv, mut gv) = (w.as_f64(), g.as_f64());
        gv += wd * wv;
        let bv = if FRESH {
            gv
        } else {
            mu * b.as_f64() + (1.0 - dampening) * gv
        };
        *b = T::of_f64(bv);
        let step = if NESTEROV { gv + mu * bv } else { bv };
        *w = T::of_f64(wv - lr * step);
    }
}
