//! The scenario suite: small training runs whose right verdict is known by
//! construction (docs/diagnostics.md, "The scenario suite"), used to test the decision
//! procedure and to calibrate its [`Thresholds`].
//!
//! Every scenario trains on 8x8 images (synthetic patterns, pure noise or
//! the embedded digits, standardised) with a narrow network, so one run
//! takes a second or two on a CPU. [`Scenario::run`] trains and diagnoses
//! it with one seed, which sets the data, the initialisation and the batch
//! order; [`Scenario::accepts`] says whether a verdict is right.
//!
//! | id | construction | right verdict |
//! |---|---|---|
//! | S1 | plain sigmoid MLP, 20 layers of 32, PyTorch's default init, clean patterns | `vanishing` |
//! | S2 | plain sigmoid CNN, 12 layers of 8 channels, no BatchNorm, clean patterns | `vanishing` |
//! | S3 | over-parameterised ResNet-14 (BatchNorm) on Gaussian noise with random labels | `no-signal` |
//! | S4 | the same ResNet on the digits with shuffled labels | `no-signal` |
//! | S5 | the same ResNet on clean patterns | `healthy` |
//! | S6 | plain ReLU MLP, 20 layers, no normalisation, weight variance 6/fan_in | `exploding` |
//! | S7 | wide ReLU MLP on 5 % of the digits, trained to memorise | `overfitting` |
//! | C1 | S5 with the learning rate divided by 1000 | `lr-too-small` |
//! | C2 | plain ReLU MLP with every bias at -2 | `dead-units` |
//! | C3 | plain ReLU CNN, 20 layers, with BatchNorm, clean patterns, lr 0.01 | anything but `vanishing` |
//! | D1 | plain twin of ResNet-32 (BatchNorm, width 8) on the digits, depth control: its residual twin | `degradation` |
//! | D2 | ResNet-32 (BatchNorm, width 8) on the digits, depth control: ResNet-8 | `healthy` |
//! | D3 | D1 on clean patterns | `degradation` |
//! | D4 | D2 on clean patterns | `healthy` |

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use gradlab_arch::{PlainCnn, PlainCnnConfig, PlainMlp, PlainMlpConfig, ResNet, ResNetConfig};
use gradlab_data::{
    train_val_split, ChannelStats, Dataset, Digits, DigitsConfig, Noise, NoiseConfig, Patterns,
    PatternsConfig, ShuffledLabels, Standardized, Subset, TensorDataset,
};
use gradlab_nn::{ActivationKind, Init, Scope};
use serde::{Deserialize, Serialize};

use gradlab_diag::{
    diagnose_with, DiagnoseOptions, Diagnosis, History, RunInfo, Thresholds, Verdict,
};

use crate::diagnosed::{run_diagnosed, DepthReference, DiagnosedRun, RunConfig, RunProgress};
use crate::error::Result;
use crate::optimizer::OptimizerSpec;
use crate::record::RecorderOptions;

/// One scenario of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scenario {
    /// Plain sigmoid MLP at default initialisation: vanishing.
    S1,
    /// Plain sigmoid CNN without BatchNorm: vanishing.
    S2,
    /// Over-parameterised ResNet on noise with random labels: no signal.
    S3,
    /// The same ResNet on digits with shuffled labels: no signal.
    S4,
    /// The same ResNet on clean patterns: healthy.
    S5,
    /// Plain ReLU MLP at weight variance 6/fan_in: exploding.
    S6,
    /// A large MLP on 5 % of the digits: overfitting.
    S7,
    /// S5 with the learning rate divided by 1000: learning rate too small.
    C1,
    /// Plain ReLU MLP with biases at -2: dead units.
    C2,
    /// Deep plain CNN with BatchNorm: not vanishing.
    C3,
    /// Plain twin of ResNet-32 on the digits against its residual twin: degradation.
    D1,
    /// ResNet-32 on the digits against ResNet-8: healthy.
    D2,
    /// D1 on clean patterns: degradation.
    D3,
    /// D2 on clean patterns: healthy.
    D4,
}

/// The verdicts a scenario accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Exactly this verdict.
    Is(Verdict),
    /// Any verdict but this one.
    Not(Verdict),
}

impl Expected {
    /// Whether `verdict` is right (`inconclusive` never is).
    pub fn accepts(self, verdict: Verdict) -> bool {
        match self {
            Expected::Is(v) => verdict == v,
            Expected::Not(v) => verdict != v && verdict != Verdict::Inconclusive,
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Is(v) => write!(f, "{v}"),
            Expected::Not(v) => write!(f, "not {v}"),
        }
    }
}

/// Classes of the pattern tasks.
const PATTERN_CLASSES: usize = 10;
/// Side of every image.
const SIDE: usize = 8;

/// The over-parameterised residual network of S3, S4, S5 and C1:
/// ResNet-14 of base width 8 (8/16/32 channels, BatchNorm, option-A
/// shortcuts) on one-channel 8x8 images: 43,490 parameters, 29 per
/// training example of the suite's data.
pub fn suite_resnet(seed: u64, num_classes: usize) -> gradlab_arch::Result<ResNet<f32>> {
    let mut cfg = ResNetConfig::cifar(14)?.with_width(8);
    cfg.in_channels = 1;
    cfg.num_classes = num_classes;
    ResNet::new(&Scope::new(seed), &cfg)
}

/// The deep networks of D1–D4: ResNet-`depth` of base width 8 (8/16/32
/// channels, BatchNorm, option-A shortcuts) on one-channel 8x8 images, or
/// its plain twin (the same layers without the shortcut additions).
pub fn suite_deep_resnet(
    seed: u64,
    num_classes: usize,
    depth: usize,
    residual: bool,
) -> gradlab_arch::Result<ResNet<f32>> {
    let mut cfg = ResNetConfig::cifar(depth)?.with_width(8);
    cfg.in_channels = 1;
    cfg.num_classes = num_classes;
    if !residual {
        cfg = cfg.plain();
    }
    ResNet::new(&Scope::new(seed), &cfg)
}

/// The depth control of D1–D4: the residual twin of the plain network, or
/// ResNet-8 for the residual one.
fn deep_reference(seed: u64, num_classes: usize, residual: bool) -> DepthReference {
    let (name, depth) = if residual {
        ("ResNet-8 (width 8)", 8)
    } else {
        ("its residual twin ResNet-32 (width 8)", 32)
    };
    DepthReference {
        name: name.into(),
        build: Arc::new(move || {
            suite_deep_resnet(seed, num_classes, depth, true)
                .map(|n| Box::new(n) as Box<dyn gradlab_arch::Classifier<f32>>)
                .map_err(|e| e.to_string())
        }),
    }
}

/// The deep plain sigmoid MLP of S1 (and of the contrast): 20 linear layers
/// of 32 units, PyTorch's default initialisation (variance `1/(3 fan_in)`).
pub fn suite_sigmoid_mlp(seed: u64, num_classes: usize) -> gradlab_arch::Result<PlainMlp<f32>> {
    PlainMlp::new(
        &Scope::new(seed),
        &PlainMlpConfig::new(SIDE * SIDE, num_classes, 20, 32, ActivationKind::Sigmoid),
    )
}

fn materialize(d: &dyn Dataset) -> Result<TensorDataset> {
    Ok(TensorDataset::materialize(d)?)
}

/// Standardises both splits with the training split's statistics, in memory.
fn standardized(train: impl Dataset, val: impl Dataset) -> Result<(TensorDataset, TensorDataset)> {
    let stats = ChannelStats::compute(&train)?;
    let train = materialize(&Standardized::new(train, stats.clone())?)?;
    let val = materialize(&Standardized::new(val, stats)?)?;
    Ok((train, val))
}

/// Clean 8x8 patterns, 10 classes: 1,500 training and 500 held-out examples
/// (the held-out ones from another seed, the same task).
pub fn clean_patterns(seed: u64) -> Result<(TensorDataset, TensorDataset)> {
    let cfg = |len, seed| PatternsConfig {
        len,
        num_classes: PATTERN_CLASSES,
        channels: 1,
        height: SIDE,
        width: SIDE,
        signal: 1.0,
        jitter: 0.1,
        seed,
    };
    standardized(
        Patterns::new(cfg(1500, 2 * seed))?,
        Patterns::new(cfg(500, 2 * seed + 1))?,
    )
}

/// Pure Gaussian noise with uniform random labels, 8x8, 10 classes: 1,500
/// training and 500 held-out examples.
pub fn noise(seed: u64) -> Result<(TensorDataset, TensorDataset)> {
    let data = Noise::new(NoiseConfig {
        len: 2000,
        num_classes: PATTERN_CLASSES,
        shape: [1, SIDE, SIDE],
        seed,
    })?;
    let (train, val) = train_val_split(data, 0.25, seed)?;
    standardized(train, val)
}

/// How long and how hard a scenario trains.
fn base_config(seed: u64, activation: ActivationKind) -> RunConfig {
    RunConfig {
        steps: 200,
        batch_size: 32,
        optimizer: OptimizerSpec::sgd(0.05),
        seed,
        checks: 4,
        snr_batches: 8,
        eval_examples: 500,
        probe: true,
        shuffle_control: false,
        recorder: RecorderOptions {
            activation: Some(activation),
            forward_stats_every: 10,
            ..Default::default()
        },
        ..Default::default()
    }
}

impl Scenario {
    /// Every scenario, in the order of the table in docs/diagnostics.md.
    pub const ALL: [Scenario; 14] = [
        Scenario::S1,
        Scenario::S2,
        Scenario::S3,
        Scenario::S4,
        Scenario::S5,
        Scenario::S6,
        Scenario::S7,
        Scenario::C1,
        Scenario::C2,
        Scenario::C3,
        Scenario::D1,
        Scenario::D2,
        Scenario::D3,
        Scenario::D4,
    ];

    /// The id (`"S1"`, ..., `"C3"`).
    pub fn id(self) -> &'static str {
        match self {
            Scenario::S1 => "S1",
            Scenario::S2 => "S2",
            Scenario::S3 => "S3",
            Scenario::S4 => "S4",
            Scenario::S5 => "S5",
            Scenario::S6 => "S6",
            Scenario::S7 => "S7",
            Scenario::C1 => "C1",
            Scenario::C2 => "C2",
            Scenario::C3 => "C3",
            Scenario::D1 => "D1",
            Scenario::D2 => "D2",
            Scenario::D3 => "D3",
            Scenario::D4 => "D4",
        }
    }

    /// The scenario with this id (case-insensitive).
    pub fn from_id(id: &str) -> Option<Scenario> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.id().eq_ignore_ascii_case(id))
    }

    /// What the scenario trains, in one line.
    pub fn description(self) -> &'static str {
        match self {
            Scenario::S1 => "plain sigmoid MLP 20x32, default init, clean patterns",
            Scenario::S2 => "plain sigmoid CNN 12x8, no BatchNorm, default init, clean patterns",
            Scenario::S3 => "ResNet-14 (width 8, BN) on Gaussian noise with random labels",
            Scenario::S4 => "ResNet-14 (width 8, BN) on digits with shuffled labels",
            Scenario::S5 => "ResNet-14 (width 8, BN) on clean patterns",
            Scenario::S6 => "plain ReLU MLP 20x32, no normalisation, weight variance 6/fan_in",
            Scenario::S7 => "ReLU MLP 3x256 on 5% of the digits (72 examples), 400 steps",
            Scenario::C1 => "S5 with the learning rate / 1000",
            Scenario::C2 => "plain ReLU MLP 6x32 with biases at -2, clean patterns",
            Scenario::C3 => "plain ReLU CNN 20x8 with BatchNorm, clean patterns, lr 0.01",
            Scenario::D1 => {
                "plain twin of ResNet-32 (width 8, BN) on digits, against its residual twin"
            }
            Scenario::D2 => "ResNet-32 (width 8, BN) on digits, against ResNet-8",
            Scenario::D3 => {
                "plain twin of ResNet-32 (width 8, BN) on clean patterns, against its residual twin"
            }
            Scenario::D4 => "ResNet-32 (width 8, BN) on clean patterns, against ResNet-8",
        }
    }

    /// The verdicts this scenario accepts.
    pub fn expected(self) -> Expected {
        match self {
            Scenario::S1 | Scenario::S2 => Expected::Is(Verdict::Vanishing),
            Scenario::S3 | Scenario::S4 => Expected::Is(Verdict::NoSignal),
            Scenario::S5 => Expected::Is(Verdict::Healthy),
            Scenario::S6 => Expected::Is(Verdict::Exploding),
            Scenario::S7 => Expected::Is(Verdict::Overfitting),
            Scenario::C1 => Expected::Is(Verdict::LrTooSmall),
            Scenario::C2 => Expected::Is(Verdict::DeadUnits),
            Scenario::C3 => Expected::Not(Verdict::Vanishing),
            Scenario::D1 | Scenario::D3 => Expected::Is(Verdict::Degradation),
            Scenario::D2 | Scenario::D4 => Expected::Is(Verdict::Healthy),
        }
    }

    /// Whether `verdict` is right for this scenario.
    pub fn accepts(self, verdict: Verdict) -> bool {
        self.expected().accepts(verdict)
    }

    /// Trains and diagnoses the scenario with `seed`.
    ///
    /// # Errors
    /// Data, model and training errors (none are expected).
    pub fn run(self, seed: u64, progress: &mut dyn FnMut(&RunProgress)) -> Result<DiagnosedRun> {
        self.run_with(seed, None, progress)
    }

    /// Trains and diagnoses the scenario with `seed`, streaming its history
    /// to a `gradlab-history` file at `path`.
    ///
    /// # Errors
    /// As [`Scenario::run`], and file errors.
    pub fn run_recorded(
        self,
        seed: u64,
        path: &Path,
        progress: &mut dyn FnMut(&RunProgress),
    ) -> Result<DiagnosedRun> {
        self.run_with(seed, Some(path), progress)
    }

    fn run_with(
        self,
        seed: u64,
        path: Option<&Path>,
        progress: &mut dyn FnMut(&RunProgress),
    ) -> Result<DiagnosedRun> {
        let recorded = |cfg: RunConfig| RunConfig {
            history_file: path.map(Path::to_path_buf),
            run_info: RunInfo {
                source: Some("gradlab-train scenario suite".into()),
                model: Some(format!("{self}: {}", self.description())),
                data: Some(format!("seed {seed}")),
                ..Default::default()
            },
            ..cfg
        };
        let k = PATTERN_CLASSES;
        match self {
            Scenario::S1 => {
                let (train, val) = clean_patterns(seed)?;
                let cfg = base_config(seed, ActivationKind::Sigmoid);
                run_diagnosed(
                    &|| suite_sigmoid_mlp(seed, k),
                    &train,
                    &val,
                    &recorded(cfg),
                    progress,
                )
            }
            Scenario::S2 => {
                let (train, val) = clean_patterns(seed)?;
                let cfg = base_config(seed, ActivationKind::Sigmoid);
                let make = || {
                    let mut c = PlainCnnConfig::new(1, k, 12, 8, ActivationKind::Sigmoid);
                    c.stack.batch_norm = false;
                    PlainCnn::<f32>::new(&Scope::new(seed), &c)
                };
                run_diagnosed(&make, &train, &val, &recorded(cfg), progress)
            }
            Scenario::S3 => {
                let (train, val) = noise(seed)?;
                let cfg = RunConfig {
                    shuffle_control: true,
                    ..base_config(seed, ActivationKind::Relu)
                };
                run_diagnosed(
                    &|| suite_resnet(seed, k),
                    &train,
                    &val,
                    &recorded(cfg),
                    progress,
                )
            }
            Scenario::S4 => {
                let digits = Digits::new(DigitsConfig::default())?;
                let shuffled = ShuffledLabels::new(digits, seed ^ 0xd161_7500);
                let (train, val) = train_val_split(shuffled, 0.2, seed)?;
                let (train, val) = standardized(train, val)?;
                let cfg = RunConfig {
                    shuffle_control: true,
                    ..base_config(seed, ActivationKind::Relu)
                };
                run_diagnosed(
                    &|| suite_resnet(seed, k),
                    &train,
                    &val,
                    &recorded(cfg),
                    progress,
                )
            }
            Scenario::S5 => {
                let (train, val) = clean_patterns(seed)?;
                let cfg = base_config(seed, ActivationKind::Relu);
                run_diagnosed(
                    &|| suite_resnet(seed, k),
                    &train,
                    &val,
                    &recorded(cfg),
                    progress,
                )
            }
            Scenario::S6 => {
                let (train, val) = clean_patterns(seed)?;
                let cfg = base_config(seed, ActivationKind::Relu);
                let make = || {
                    let mut c = PlainMlpConfig::new(SIDE * SIDE, k, 20, 32, ActivationKind::Relu);
                    // PyTorch's default variance is 1/(3 fan_in); gain sqrt(18) makes it 6/fan_in.
                    c.stack.gain = 18f64.sqrt();
                    PlainMlp::<f32>::new(&Scope::new(seed), &c)
                };
                run_diagnosed(&make, &train, &val, &recorded(cfg), progress)
            }
            Scenario::S7 => {
                let digits = Digits::new(DigitsConfig::default())?;
                let (train, val) = train_val_split(digits, 0.2, seed)?;
                let train = Subset::fraction(train, 0.05, seed)?;
                let (train, val) = standardized(train, val)?;
                let cfg = RunConfig {
                    steps: 400,
                    checks: 8,
                    ..base_config(seed, ActivationKind::Relu)
                };
                let make = || {
                    PlainMlp::<f32>::new(
                        &Scope::new(seed),
                        &PlainMlpConfig::new(SIDE * SIDE, k, 3, 256, ActivationKind::Relu),
                    )
                };
                run_diagnosed(&make, &train, &val, &recorded(cfg), progress)
            }
            Scenario::C1 => {
                let (train, val) = clean_patterns(seed)?;
                let base = base_config(seed, ActivationKind::Relu);
                let cfg = RunConfig {
                    optimizer: OptimizerSpec::sgd(base.optimizer.lr / 1000.0),
                    shuffle_control: true,
                    ..base
                };
                run_diagnosed(
                    &|| suite_resnet(seed, k),
                    &train,
                    &val,
                    &recorded(cfg),
                    progress,
                )
            }
            Scenario::C2 => {
                let (train, val) = clean_patterns(seed)?;
                let cfg = base_config(seed, ActivationKind::Relu);
                let make = || {
                    let mut c = PlainMlpConfig::new(SIDE * SIDE, k, 6, 32, ActivationKind::Relu);
                    c.stack.bias_init = Init::Constant(-2.0);
                    PlainMlp::<f32>::new(&Scope::new(seed), &c)
                };
                run_diagnosed(&make, &train, &val, &recorded(cfg), progress)
            }
            Scenario::C3 => {
                let (train, val) = clean_patterns(seed)?;
                // Deep plain networks need a smaller learning rate (Li et al.
                // 2018 trained theirs at 0.01); at 0.05 this one trains, but its
                // BatchNorm running statistics lag the weights so much that in
                // evaluation mode it scores near chance on its own training data.
                let cfg = RunConfig {
                    optimizer: OptimizerSpec::sgd(0.01),
                    ..base_config(seed, ActivationKind::Relu)
                };
                let make = || {
                    let mut c = PlainCnnConfig::new(1, k, 20, 8, ActivationKind::Relu);
                    c.stack.batch_norm = true;
                    PlainCnn::<f32>::new(&Scope::new(seed), &c)
                };
                run_diagnosed(&make, &train, &val, &recorded(cfg), progress)
            }
            Scenario::D1 | Scenario::D2 | Scenario::D3 | Scenario::D4 => {
                let residual = matches!(self, Scenario::D2 | Scenario::D4);
                let (train, val) = if matches!(self, Scenario::D1 | Scenario::D2) {
                    let digits = Digits::new(DigitsConfig::default())?;
                    let (train, val) = train_val_split(digits, 0.2, seed)?;
                    standardized(train, val)?
                } else {
                    clean_patterns(seed)?
                };
                let cfg = RunConfig {
                    depth_control: Some(deep_reference(seed, k, residual)),
                    ..base_config(seed, ActivationKind::Relu)
                };
                run_diagnosed(
                    &|| suite_deep_resnet(seed, k, 32, residual),
                    &train,
                    &val,
                    &recorded(cfg),
                    progress,
                )
            }
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One trained scenario: its record and the diagnosis with default thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteRun {
    /// The scenario.
    pub scenario: Scenario,
    /// The seed.
    pub seed: u64,
    /// Everything recorded (re-diagnose it with other thresholds, no retraining).
    pub history: History,
    /// The diagnosis with the default options.
    pub diagnosis: Diagnosis,
}

impl SuiteRun {
    /// Trains `scenario` with `seed` and keeps its history.
    ///
    /// # Errors
    /// As [`Scenario::run`].
    pub fn train(scenario: Scenario, seed: u64) -> Result<SuiteRun> {
        let run = scenario.run(seed, &mut |_| {})?;
        Ok(SuiteRun {
            scenario,
            seed,
            history: run.history,
            diagnosis: run.diagnosis,
        })
    }

    /// Whether the default diagnosis is right.
    pub fn is_right(&self) -> bool {
        self.scenario.accepts(self.diagnosis.verdict)
    }

    /// Re-diagnoses the recorded history with `thresholds`.
    ///
    /// # Errors
    /// As [`diagnose_with`].
    pub fn rediagnose(&self, thresholds: &Thresholds) -> Result<Diagnosis> {
        diagnose_with(
            &self.history,
            &DiagnoseOptions {
                thresholds: thresholds.clone(),
                ..DiagnoseOptions::default()
            },
        )
        .map_err(Into::into)
    }
}

/// The verdicts in the column order of [`confusion_matrix`].
pub const VERDICT_COLUMNS: [Verdict; 11] = [
    Verdict::Vanishing,
    Verdict::Exploding,
    Verdict::DeadUnits,
    Verdict::NoSignal,
    Verdict::LrTooSmall,
    Verdict::ModelCannotExtract,
    Verdict::SlowButLearning,
    Verdict::Degradation,
    Verdict::Overfitting,
    Verdict::Healthy,
    Verdict::Inconclusive,
];

/// The confusion matrix of `(scenario, verdict)` pairs as a Markdown table:
/// one row per scenario (with its expected verdict), one column per verdict
/// of [`VERDICT_COLUMNS`] that occurs or is expected, counts in the cells.
pub fn confusion_matrix(results: &[(Scenario, Verdict)]) -> String {
    let columns: Vec<Verdict> = VERDICT_COLUMNS
        .into_iter()
        .filter(|v| {
            results
                .iter()
                .any(|(s, r)| r == v || matches!(s.expected(), Expected::Is(e) if e == *v))
        })
        .collect();
    let mut out = String::from("| scenario | expected |");
    for v in &columns {
        out.push_str(&format!(" {v} |"));
    }
    out.push_str("\n|---|---|");
    for _ in &columns {
        out.push_str("---:|");
    }
    out.push('\n');
    for s in Scenario::ALL {
        if !results.iter().any(|(r, _)| *r == s) {
            continue;
        }
        out.push_str(&format!("| {s} | {} |", s.expected()));
        for v in &columns {
            let n = results.iter().filter(|(r, d)| *r == s && d == v).count();
            out.push_str(&if n == 0 {
                " · |".to_string()
            } else {
                format!(" {n} |")
            });
        }
        out.push('\n');
    }
    out
}
