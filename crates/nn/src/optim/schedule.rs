//! Learning-rate schedules as pure functions of the step, so that a resumed
//! run (whose step counter comes from its checkpoint) gets the same rates.
//! Each follows the PyTorch scheduler named in its docs, with the step `t`
//! counted from 0.

use crate::error::{NnError, Result};

/// A learning rate for every step `t = 0, 1, 2, ...`.
///
/// Use it by setting the optimizer's rate before each step:
/// `opt.set_lr(schedule.lr(step))`.
pub trait LrSchedule: Send + Sync {
    /// The learning rate of step `t`.
    fn lr(&self, t: u64) -> f64;
}

fn check_rate(what: &str, name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(NnError::config(
            what,
            format!("{name} must be finite and non-negative, got {v}"),
        ))
    }
}

/// The same rate at every step.
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    lr: f64,
}

impl Constant {
    /// A constant rate.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a negative or non-finite rate.
    pub fn new(lr: f64) -> Result<Self> {
        check_rate("constant schedule", "lr", lr)?;
        Ok(Constant { lr })
    }
}

impl LrSchedule for Constant {
    fn lr(&self, _t: u64) -> f64 {
        self.lr
    }
}

/// `lr(t) = base * gamma^floor(t / step_size)`, PyTorch's `StepLR`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDecay {
    base: f64,
    step_size: u64,
    gamma: f64,
}

impl StepDecay {
    /// Decays by `gamma` every `step_size` steps.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a zero `step_size` or a negative or
    /// non-finite rate or `gamma`.
    pub fn new(base: f64, step_size: u64, gamma: f64) -> Result<Self> {
        check_rate("step schedule", "base lr", base)?;
        check_rate("step schedule", "gamma", gamma)?;
        if step_size == 0 {
            return Err(NnError::config(
                "step schedule",
                "step_size must be positive",
            ));
        }
        Ok(StepDecay {
            base,
            step_size,
            gamma,
        })
    }
}

impl LrSchedule for StepDecay {
    fn lr(&self, t: u64) -> f64 {
        self.base * self.gamma.powf((t / self.step_size) as f64)
    }
}

/// `lr(t) = base * gamma^(number of milestones <= t)`, PyTorch's `MultiStepLR`.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiStep {
    base: f64,
    milestones: Vec<u64>,
    gamma: f64,
}

impl MultiStep {
    /// Decays by `gamma` at each milestone.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for milestones that do not increase
    /// strictly, or a negative or non-finite rate or `gamma`.
    pub fn new(base: f64, milestones: &[u64], gamma: f64) -> Result<Self> {
        check_rate("multi-step schedule", "base lr", base)?;
        check_rate("multi-step schedule", "gamma", gamma)?;
        if milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(NnError::config(
                "multi-step schedule",
                format!("milestones must increase strictly, got {milestones:?}"),
            ));
        }
        Ok(MultiStep {
            base,
            milestones: milestones.to_vec(),
            gamma,
        })
    }
}

impl LrSchedule for MultiStep {
    fn lr(&self, t: u64) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| m <= t).count();
        self.base * self.gamma.powi(passed as i32)
    }
}

/// Cosine annealing (Loshchilov & Hutter 2017, without restarts), PyTorch's
/// `CosineAnnealingLR`: `lr(t) = min + (base - min) (1 + cos(pi t / T)) / 2`
/// for `t <= T`, and `min` after `T`.
#[derive(Debug, Clone, PartialEq)]
pub struct CosineAnnealing {
    base: f64,
    min: f64,
    t_max: u64,
}

impl CosineAnnealing {
    /// Anneals from `base` to `min` over `t_max` steps.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a zero `t_max` or a negative or
    /// non-finite rate.
    pub fn new(base: f64, min: f64, t_max: u64) -> Result<Self> {
        check_rate("cosine schedule", "base lr", base)?;
        check_rate("cosine schedule", "min lr", min)?;
        if t_max == 0 {
            return Err(NnError::config("cosine schedule", "t_max must be positive"));
        }
        Ok(CosineAnnealing { base, min, t_max })
    }
}

impl LrSchedule for CosineAnnealing {
    fn lr(&self, t: u64) -> f64 {
        let frac = t.min(self.t_max) as f64 / self.t_max as f64;
        self.min + (self.base - self.min) * (1.0 + (std::f64::consts::PI * frac).cos()) / 2.0
    }
}

/// Linear warm-up, PyTorch's `LinearLR(start_factor, end_factor=1,
/// total_iters=steps)`: `lr(t) = base * (s + (1 - s) min(t, steps) / steps)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearWarmup {
    base: f64,
    start_factor: f64,
    steps: u64,
}

impl LinearWarmup {
    /// Ramps from `start_factor * base` at step 0 to `base` at step `steps`.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a zero `steps`, a `start_factor`
    /// outside `(0, 1]` or a negative or non-finite rate.
    pub fn new(base: f64, start_factor: f64, steps: u64) -> Result<Self> {
        check_rate("linear warm-up", "base lr", base)?;
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            return Err(NnError::config(
                "linear warm-up",
                format!("start_factor must lie in (0, 1], got {start_factor}"),
            ));
        }
        if steps == 0 {
            return Err(NnError::config("linear warm-up", "steps must be positive"));
        }
        Ok(LinearWarmup {
            base,
            start_factor,
            steps,
        })
    }

    /// Length of the warm-up.
    pub fn steps(&self) -> u64 {
        self.steps
    }
}

impl LrSchedule for LinearWarmup {
    fn lr(&self, t: u64) -> f64 {
        let frac = t.min(self.steps) as f64 / self.steps as f64;
        self.base * (self.start_factor + (1.0 - self.start_factor) * frac)
    }
}

/// A linear warm-up followed by another schedule, PyTorch's
/// `SequentialLR([LinearLR, after], milestones=[warmup_steps])`: steps
/// `t < warmup_steps` follow the warm-up, later steps follow `after` at
/// `t - warmup_steps` (so `after` starts from its own step 0).
///
/// # Examples
/// ```
/// use gradlab_nn::{CosineAnnealing, LinearWarmup, LrSchedule, Warmup};
/// let s = Warmup::new(LinearWarmup::new(0.1, 0.1, 5)?, CosineAnnealing::new(0.1, 0.0, 100)?);
/// assert!((s.lr(0) - 0.01).abs() < 1e-12);
/// assert!((s.lr(5) - 0.1).abs() < 1e-12);   // cosine's step 0
/// assert!((s.lr(105) - 0.0).abs() < 1e-12); // cosine's end
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
pub struct Warmup {
    warmup: LinearWarmup,
    after: Box<dyn LrSchedule>,
}

impl Warmup {
    /// `warmup`, then `after`.
    pub fn new(warmup: LinearWarmup, after: impl LrSchedule + 'static) -> Self {
        Warmup {
            warmup,
            after: Box::new(after),
        }
    }
}

impl LrSchedule for Warmup {
    fn lr(&self, t: u64) -> f64 {
        if t < self.warmup.steps {
            self.warmup.lr(t)
        } else {
            self.after.lr(t - self.warmup.steps)
        }
    }
}
