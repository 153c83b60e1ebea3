//! Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), exactly as
//! PyTorch's `torch.optim.Adam` and `torch.optim.AdamW` (without AMSGrad).

use gradlab_tensor::{Element, Tensor};

use crate::error::{NnError, Result};
use crate::grads::GradMap;
use crate::module::HasParams;
use crate::optim::{check_lr, import_slots, sorted, Optimizer, OptimizerState, Slot};

/// Hyper-parameters of [`Adam`] (PyTorch's defaults: lr 1e-3, betas
/// (0.9, 0.999), eps 1e-8, no weight decay, coupled L2).
#[derive(Debug, Clone, PartialEq)]
pub struct AdamConfig {
    /// Learning rate `lr`.
    pub lr: f64,
    /// Decay of the first moment `beta1`.
    pub beta1: f64,
    /// Decay of the second moment `beta2`.
    pub beta2: f64,
    /// Added to the denominator `eps`.
    pub eps: f64,
    /// Weight decay `lambda`.
    pub weight_decay: f64,
    /// `true` for AdamW's decoupled weight decay, `false` for Adam's L2 term.
    pub decoupled: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }
}

impl AdamConfig {
    /// AdamW with PyTorch's defaults (lr 1e-3, weight decay 1e-2).
    pub fn adamw() -> Self {
        AdamConfig {
            weight_decay: 1e-2,
            decoupled: true,
            ..Default::default()
        }
    }
}

/// Adam or AdamW. For each trainable parameter `p` with gradient `g`, at
/// step `t` (1-based), with `m`, `v` starting at 0:
///
/// ```text
/// Adam:   g = g + lambda p                       if lambda != 0
/// AdamW:  p = p - lr lambda p                    (decoupled decay)
/// m = beta1 m + (1 - beta1) g
/// v = beta2 v + (1 - beta2) g^2
/// m_hat = m / (1 - beta1^t)
/// v_hat = v / (1 - beta2^t)
/// p = p - lr m_hat / (sqrt(v_hat) + eps)
/// ```
///
/// State slots: `exp_avg` (`m`) and `exp_avg_sq` (`v`); `t` is the step
/// count. Arithmetic is done in `f64` per element and stored in `T`.
///
/// # Examples
/// ```
/// use gradlab_nn::{Adam, AdamConfig, GradMap, Optimizer, Param, Role};
/// use gradlab_tensor::Tensor;
/// let mut p = Param::new("w", Role::Weight, 0, Tensor::from_vec(&[1], vec![1.0f64])?)?;
/// let mut grads = GradMap::new();
/// grads.insert("w", Tensor::from_vec(&[1], vec![3.0])?);
/// let mut opt = Adam::new(AdamConfig { lr: 0.1, ..Default::default() })?;
/// opt.step(&mut p, &grads)?; // first step moves by about lr
/// assert!((p.value().as_slice()[0] - 0.9).abs() < 1e-6);
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Adam<T: Element = f32> {
    config: AdamConfig,
    steps: u64,
    exp_avg: Slot<T>,
    exp_avg_sq: Slot<T>,
}

impl<T: Element> Adam<T> {
    /// An Adam (or AdamW, with `decoupled`) optimizer.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a negative or non-finite learning rate,
    /// betas outside `[0, 1)`, a non-positive `eps` or a negative weight decay.
    pub fn new(config: AdamConfig) -> Result<Self> {
        check_lr("adam", config.lr)?;
        for (what, b) in [("beta1", config.beta1), ("beta2", config.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(NnError::config("adam", format!("invalid {what}: {b}")));
            }
        }
        if !(config.eps > 0.0 && config.eps.is_finite()) {
            return Err(NnError::config(
                "adam",
                format!("invalid eps: {}", config.eps),
            ));
        }
        if !(config.weight_decay >= 0.0 && config.weight_decay.is_finite()) {
            return Err(NnError::config(
                "adam",
                format!("invalid weight_decay: {}", config.weight_decay),
            ));
        }
        Ok(Adam {
            config,
            steps: 0,
            exp_avg: Slot::new("exp_avg"),
            exp_avg_sq: Slot::new("exp_avg_sq"),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }
}

impl<T: Element> Optimizer<T> for Adam<T> {
    fn kind(&self) -> &'static str {
        if self.config.decoupled {
            "adamw"
        } else {
            "adam"
        }
    }

    fn step(&mut self, model: &mut dyn HasParams<T>, grads: &GradMap<T>) -> Result<()> {
        grads.check_finite(model)?;
        self.exp_avg.check_shapes(model)?;
        self.exp_avg_sq.check_shapes(model)?;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay: wd,
            decoupled,
        } = self.config;
        let t = (self.steps + 1) as f64;
        let bc1 = 1.0 - beta1.powf(t);
        let bc2 = 1.0 - beta2.powf(t);
        let (ms, vs) = (&mut self.exp_avg, &mut self.exp_avg_sq);
        model.visit_params_mut(&mut |p| {
            if !p.is_trainable() {
                return;
            }
            let Some(g) = grads.get(p.name()) else {
                return; // unreachable: check_finite found every gradient
            };
            let m = ms
                .map
                .entry(p.name().to_string())
                .or_insert_with(|| Tensor::zeros(p.shape()));
            let v = vs
                .map
                .entry(p.name().to_string())
                .or_insert_with(|| Tensor::zeros(p.shape()));
            let iter = p
                .data_mut()
                .iter_mut()
                .zip(g.as_slice())
                .zip(m.as_slice_mut().iter_mut().zip(v.as_slice_mut()));
            for ((w, &g), (m, v)) in iter {
                let mut wv = w.as_f64();
                let mut gv = g.as_f64();
                if wd != 0.0 {
                    if decoupled {
                        wv -= lr * wd * wv;
                    } else {
                        gv += wd * wv;
                    }
                }
                let mv = beta1 * m.as_f64() + (1.0 - beta1) * gv;
                let vv = beta2 * v.as_f64() + (1.0 - beta2) * gv * gv;
                *m = T::of_f64(mv);
                *v = T::of_f64(vv);
                let m_hat = mv / bc1;
                let v_hat = vv / bc2;
                *w = T::of_f64(wv - lr * m_hat / (v_hat.sqrt() + eps));
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
        self.exp_avg.export(&mut tensors);
        self.exp_avg_sq.export(&mut tensors);
        OptimizerState {
            kind: self.kind().into(),
            steps: self.steps,
            lr: self.config.lr,
            tensors: sorted(tensors),
        }
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        let kind = Optimizer::<T>::kind(self);
        if state.kind != kind {
            return Err(NnError::OptimizerMismatch {
                expected: kind.into(),
                found: state.kind,
            });
        }
        import_slots(
            state.tensors,
            &mut [&mut self.exp_avg, &mut self.exp_avg_sq],
        )?;
        self.steps = state.steps;
        self.config.lr = state.lr;
        Ok(())
    }
}
