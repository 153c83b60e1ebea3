//! [`OptimizerSpec`]: which optimizer trains a run, as a typed value with a
//! text form (`sgd:lr=0.1,momentum=0.9,nesterov=true,weight-decay=5e-4`).

use std::fmt;
use std::str::FromStr;

use gradlab_nn::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};

use crate::error::{Result, TrainError};
use crate::spec::{unknown, Spec};

/// The optimizers gradlab trains with: the one list of them in the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OptimizerKind {
    /// SGD, with momentum (0.9 by default) and optional Nesterov momentum.
    #[default]
    Sgd,
    /// Adam with L2 weight decay (PyTorch's `Adam`).
    Adam,
    /// Adam with decoupled weight decay (PyTorch's `AdamW`).
    AdamW,
}

impl OptimizerKind {
    /// Every kind, in the order `--help` lists them.
    pub const ALL: [OptimizerKind; 3] = [
        OptimizerKind::Sgd,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
    ];

    /// The name used on the command line and in specs.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OptimizerKind {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self> {
        OptimizerKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| unknown("optimizer", s, &["sgd", "adam", "adamw"]))
    }
}

/// An optimizer and its settings.
///
/// Its text form is a spec: `sgd`, `sgd:lr=0.1,momentum=0.9,nesterov=true`,
/// `adamw:lr=1e-3,weight-decay=0.01`. [`Display`](fmt::Display) writes every
/// setting, so text round-trips through [`FromStr`].
///
/// ```
/// use gradlab_train::{OptimizerKind, OptimizerSpec};
/// let spec: OptimizerSpec = "sgd:lr=0.1,nesterov=true".parse()?;
/// assert_eq!(spec.kind, OptimizerKind::Sgd);
/// assert_eq!(spec.momentum, 0.9);
/// assert_eq!(spec.to_string().parse::<OptimizerSpec>()?, spec);
/// let _optimizer = spec.build()?;
/// # Ok::<(), gradlab_train::TrainError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerSpec {
    /// Which optimizer.
    pub kind: OptimizerKind,
    /// Base learning rate (a schedule scales it per step).
    pub lr: f64,
    /// SGD's momentum (ignored by Adam).
    pub momentum: f64,
    /// SGD's Nesterov momentum (ignored by Adam).
    pub nesterov: bool,
    /// Weight decay: L2 for SGD and Adam, decoupled for AdamW.
    pub weight_decay: f64,
}

impl OptimizerSpec {
    /// SGD with momentum 0.9 at learning rate `lr`.
    pub fn sgd(lr: f64) -> Self {
        OptimizerSpec {
            kind: OptimizerKind::Sgd,
            lr,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        }
    }

    /// `kind` with its defaults (SGD: momentum 0.9) at learning rate `lr`.
    pub fn new(kind: OptimizerKind, lr: f64) -> Self {
        OptimizerSpec {
            kind,
            momentum: if kind == OptimizerKind::Sgd { 0.9 } else { 0.0 },
            ..OptimizerSpec::sgd(lr)
        }
    }

    /// The same with weight decay `weight_decay`.
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Builds the optimizer.
    ///
    /// # Errors
    /// [`TrainError::Spec`] for a learning rate, momentum or weight decay out
    /// of range, naming the value.
    pub fn build(&self) -> Result<Box<dyn Optimizer<f32>>> {
        let bad = |e: gradlab_nn::NnError| TrainError::Spec(format!("optimizer '{self}': {e}"));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::Spec(format!(
                "optimizer '{self}': the learning rate must be a positive number, got {}",
                self.lr
            )));
        }
        Ok(match self.kind {
            OptimizerKind::Sgd => Box::new(
                Sgd::new(SgdConfig {
                    lr: self.lr,
                    momentum: self.momentum,
                    nesterov: self.nesterov,
                    weight_decay: self.weight_decay,
                    ..SgdConfig::default()
                })
                .map_err(bad)?,
            ),
            OptimizerKind::Adam => Box::new(
                Adam::new(AdamConfig {
                    lr: self.lr,
                    weight_decay: self.weight_decay,
                    ..AdamConfig::default()
                })
                .map_err(bad)?,
            ),
            OptimizerKind::AdamW => Box::new(
                Adam::new(AdamConfig {
                    lr: self.lr,
                    weight_decay: self.weight_decay,
                    ..AdamConfig::adamw()
                })
                .map_err(bad)?,
            ),
        })
    }
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        OptimizerSpec::sgd(0.05)
    }
}

impl fmt::Display for OptimizerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:lr={}", self.kind, self.lr)?;
        if self.kind == OptimizerKind::Sgd {
            write!(f, ",momentum={},nesterov={}", self.momentum, self.nesterov)?;
        }
        write!(f, ",weight-decay={}", self.weight_decay)
    }
}

impl FromStr for OptimizerSpec {
    type Err = TrainError;

    /// Parses `sgd`, `adam` or `adamw` with optional keys `lr`,
    /// `weight-decay` and, for SGD, `momentum` and `nesterov`. Defaults:
    /// learning rate 0.05 for SGD and 0.001 for Adam, momentum 0.9.
    fn from_str(text: &str) -> Result<Self> {
        let mut spec = Spec::parse(text)?;
        let kind: OptimizerKind = spec.name.parse()?;
        let default_lr = if kind == OptimizerKind::Sgd {
            0.05
        } else {
            1e-3
        };
        let mut out = OptimizerSpec::new(kind, spec.positive("lr", default_lr)?);
        out.weight_decay = spec.f64("weight-decay", 0.0)?;
        if out.weight_decay < 0.0 {
            return Err(TrainError::Spec(format!(
                "'{text}': weight-decay={} is negative",
                out.weight_decay
            )));
        }
        if kind == OptimizerKind::Sgd {
            out.momentum = spec.f64("momentum", 0.9)?;
            out.nesterov = spec.bool("nesterov", false)?;
            spec.finish()?;
        } else {
            spec.finish()?;
        }
        Ok(out)
    }
}
