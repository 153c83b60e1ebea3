//! [`ScheduleSpec`]: how the learning rate moves over a run, as a typed
//! value with a text form (`cosine:min=0.001,warmup=2`), in epochs.

use std::fmt;
use std::str::FromStr;

use gradlab_nn::{
    Constant, CosineAnnealing, LinearWarmup, LrSchedule, MultiStep, StepDecay, Warmup,
};

use crate::error::{Result, TrainError};
use crate::spec::{unknown, Spec};

/// The shape of a schedule after its warm-up.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleKind {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Factor per decay.
        gamma: f64,
    },
    /// Multiply by `gamma` at each epoch of `at`.
    MultiStep {
        /// Epochs at which the rate drops, increasing.
        at: Vec<usize>,
        /// Factor per drop.
        gamma: f64,
    },
    /// Cosine annealing from the base rate down to `min` over the whole run.
    Cosine {
        /// The final rate; below the base rate.
        min: f64,
    },
}

/// A learning-rate schedule, counted in epochs, with an optional linear
/// warm-up from 0.1x the base rate.
///
/// Text form: `constant`, `step:every=E,gamma=G`, `multistep:at=E1+E2,gamma=G`,
/// `cosine:min=M`, each with an optional `warmup=E`.
///
/// ```
/// use gradlab_train::ScheduleSpec;
/// let spec: ScheduleSpec = "multistep:at=2+4,gamma=0.5".parse()?;
/// let schedule = spec.build(0.1, 10, 60)?; // 10 steps per epoch, 60 steps
/// assert_eq!(schedule.lr(0), 0.1);
/// assert_eq!(schedule.lr(20), 0.05);
/// assert_eq!(spec.to_string().parse::<ScheduleSpec>()?, spec);
/// # Ok::<(), gradlab_train::TrainError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    /// The shape.
    pub kind: ScheduleKind,
    /// Epochs of linear warm-up first (0: none).
    pub warmup: usize,
}

impl Default for ScheduleSpec {
    fn default() -> Self {
        ScheduleSpec {
            kind: ScheduleKind::Constant,
            warmup: 0,
        }
    }
}

impl ScheduleSpec {
    /// Whether the schedule's shape depends on the run's length (cosine), so
    /// that a run cannot be extended without changing its past rates.
    pub fn depends_on_length(&self) -> bool {
        matches!(self.kind, ScheduleKind::Cosine { .. })
    }

    /// The schedule for base rate `lr`, `steps_per_epoch` steps per epoch
    /// and `total` steps in all.
    ///
    /// # Errors
    /// [`TrainError::Spec`] for values out of range: a cosine `min` not
    /// below the base rate, a non-positive `gamma`, decreasing milestones.
    pub fn build(&self, lr: f64, steps_per_epoch: u64, total: u64) -> Result<Box<dyn LrSchedule>> {
        let bad = |e: gradlab_nn::NnError| TrainError::Spec(format!("schedule '{self}': {e}"));
        let epochs = |e: usize| e as u64 * steps_per_epoch;
        let main: Box<dyn LrSchedule> = match &self.kind {
            ScheduleKind::Constant => Box::new(Constant::new(lr).map_err(bad)?),
            ScheduleKind::Step { every, gamma } => {
                Box::new(StepDecay::new(lr, epochs(*every), *gamma).map_err(bad)?)
            }
            ScheduleKind::MultiStep { at, gamma } => {
                let milestones: Vec<u64> = at.iter().map(|&e| epochs(e)).collect();
                Box::new(MultiStep::new(lr, &milestones, *gamma).map_err(bad)?)
            }
            ScheduleKind::Cosine { min } => {
                if !(*min >= 0.0 && *min < lr) {
                    return Err(TrainError::Spec(format!(
                        "schedule '{self}': min={min} must be at least 0 and below the base learning rate {lr}, or the rate would rise"
                    )));
                }
                Box::new(CosineAnnealing::new(lr, *min, total.max(1)).map_err(bad)?)
            }
        };
        if self.warmup == 0 {
            return Ok(main);
        }
        let warm = LinearWarmup::new(lr, 0.1, epochs(self.warmup)).map_err(bad)?;
        Ok(Box::new(Warmup::new(warm, BoxedSchedule(main))))
    }
}

/// `Warmup` takes a schedule by value; this lets it take a boxed one.
struct BoxedSchedule(Box<dyn LrSchedule>);

impl LrSchedule for BoxedSchedule {
    fn lr(&self, t: u64) -> f64 {
        self.0.lr(t)
    }
}

impl fmt::Display for ScheduleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<String> = Vec::new();
        let name = match &self.kind {
            ScheduleKind::Constant => "constant",
            ScheduleKind::Step { every, gamma } => {
                keys.push(format!("every={every}"));
                keys.push(format!("gamma={gamma}"));
                "step"
            }
            ScheduleKind::MultiStep { at, gamma } => {
                let at: Vec<String> = at.iter().map(usize::to_string).collect();
                keys.push(format!("at={}", at.join("+")));
                keys.push(format!("gamma={gamma}"));
                "multistep"
            }
            ScheduleKind::Cosine { min } => {
                keys.push(format!("min={min}"));
                "cosine"
            }
        };
        if self.warmup > 0 {
            keys.push(format!("warmup={}", self.warmup));
        }
        if keys.is_empty() {
            f.write_str(name)
        } else {
            write!(f, "{name}:{}", keys.join(","))
        }
    }
}

impl FromStr for ScheduleSpec {
    type Err = TrainError;

    fn from_str(text: &str) -> Result<Self> {
        let mut spec = Spec::parse(text)?;
        let warmup = spec.usize("warmup", 0)?;
        let gamma = |spec: &mut Spec| -> Result<f64> {
            let g = spec.f64("gamma", 0.1)?;
            if g > 0.0 {
                Ok(g)
            } else {
                Err(TrainError::Spec(format!(
                    "'{text}': gamma={g} must be greater than zero"
                )))
            }
        };
        let kind = match spec.name.as_str() {
            "constant" => {
                spec.finish()?;
                ScheduleKind::Constant
            }
            "step" => {
                let every = spec.usize("every", 30)?;
                if every == 0 {
                    return Err(TrainError::Spec(format!(
                        "'{text}': every=0; the rate decays every E >= 1 epochs"
                    )));
                }
                let gamma = gamma(&mut spec)?;
                spec.finish()?;
                ScheduleKind::Step { every, gamma }
            }
            "multistep" => {
                let at_text = spec.list("at");
                if at_text.is_empty() {
                    return Err(TrainError::Spec(format!(
                        "'{text}': multistep needs its milestones, as at=30+60 (whole epochs joined by +)"
                    )));
                }
                let at = at_text
                    .iter()
                    .map(|e| e.parse::<usize>())
                    .collect::<std::result::Result<Vec<usize>, _>>()
                    .map_err(|_| {
                        TrainError::Spec(format!(
                            "'{text}': at= takes whole epochs joined by +, as at=30+60"
                        ))
                    })?;
                if at.windows(2).any(|w| w[1] <= w[0]) {
                    return Err(TrainError::Spec(format!(
                        "'{text}': the milestones of at= must increase"
                    )));
                }
                let gamma = gamma(&mut spec)?;
                spec.finish()?;
                ScheduleKind::MultiStep { at, gamma }
            }
            "cosine" => {
                let min = spec.f64("min", 0.0)?;
                if min < 0.0 {
                    return Err(TrainError::Spec(format!("'{text}': min={min} is negative")));
                }
                spec.finish()?;
                ScheduleKind::Cosine { min }
            }
            other => {
                return Err(unknown(
                    "schedule",
                    other,
                    &["constant", "step", "multistep", "cosine"],
                ))
            }
        };
        Ok(ScheduleSpec { kind, warmup })
    }
}
