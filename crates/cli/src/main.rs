//! The `gradlab` binary: argument parsing and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use gradlab::commands::{bench, conv_table, demo, diagnose, summary, train};
use gradlab::experiments::NAMES;
use gradlab::{ranks, CliError};
use gradlab_train::{OptimizerKind, ScheduleSpec};

use gradlab::help::{MODEL_HELP, SPECS, SPEC_HELP};

/// gradlab: train CNNs and find out why training stalls.
#[derive(Parser)]
#[command(
    name = "gradlab",
    version,
    about,
    // Help fits the terminal, and 100 columns when piped or wider.
    max_term_width = 100,
    after_help = "The SPEC grammar of --model and --data: gradlab help specs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExperimentName {
    ConvOps,
    PlainVsResidual,
    AuxHeads,
    CapacityVsSignal,
}

#[derive(Subcommand)]
enum Command {
    /// Run the four experiments on embedded data and write the report (a few minutes).
    Demo {
        /// Folder of the report (index.html, SVG plots, results.json).
        #[arg(long, default_value = "report")]
        out: PathBuf,
        /// The small version (about a minute).
        #[arg(long)]
        quick: bool,
        /// Seeds of the experiments that repeat their runs (default 5, 2 with --quick).
        #[arg(long)]
        seeds: Option<usize>,
    },
    /// Run one experiment of the demo, bigger when asked.
    Experiment {
        /// Which experiment.
        #[arg(value_enum)]
        name: ExperimentName,
        /// Folder of the report.
        #[arg(long, default_value = "report")]
        out: PathBuf,
        /// The small version.
        #[arg(long)]
        quick: bool,
        /// Multiplies the training steps of the full version.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// First seed; repeated runs use the seeds after it.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Seeds of the experiments that repeat their runs (default 5, 2 with --quick).
        #[arg(long)]
        seeds: Option<usize>,
    },
    /// Train a model on data, with progress, a metrics log and checkpoints (data-parallel under mpirun).
    #[command(after_help = SPEC_HELP)]
    Train {
        /// Model SPEC, e.g. resnet:depth=20.
        #[arg(long)]
        model: String,
        /// Data SPEC, e.g. digits:size=16.
        #[arg(long)]
        data: String,
        /// Passes over the training split.
        #[arg(long, default_value_t = 5)]
        epochs: usize,
        /// Examples per step (the global batch, split over the ranks under mpirun).
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Optimizer: sgd (momentum 0.9), adam or adamw.
        #[arg(long, default_value = "sgd")]
        optimizer: OptimizerKind,
        /// Base learning rate.
        #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
        lr: f64,
        /// Weight decay.
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        weight_decay: f64,
        /// Learning-rate schedule: constant, step:every=E,gamma=G, multistep:at=E1+E2,gamma=G, cosine:min=M; each takes warmup=E.
        #[arg(long, default_value = "constant")]
        schedule: ScheduleSpec,
        /// Seed of initialisation, batch order and dropout.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Checkpoint file, written atomically each epoch and on Ctrl-C.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Continue from --checkpoint, exactly as if never interrupted.
        #[arg(long)]
        resume: bool,
        /// Per-step metrics: CSV for a .csv file, JSON lines otherwise.
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// Train briefly with diagnostics on and say why training learns or
    /// stalls; or, with --history alone, diagnose a recorded run.
    #[command(after_help = SPEC_HELP)]
    Diagnose {
        /// Model SPEC (with --data: train and diagnose).
        #[arg(long, requires = "data")]
        model: Option<String>,
        /// Data SPEC (with --model).
        #[arg(long, requires = "model")]
        data: Option<String>,
        /// gradlab-history file (JSON Lines): written while training with
        /// --model and --data; without them, read and diagnosed, no training.
        #[arg(long, required_unless_present = "model")]
        history: Option<PathBuf>,
        /// Data for the probe of a recorded run that has none:
        /// npy:FEATURES.npy,LABELS.npy or a data SPEC.
        #[arg(long, conflicts_with = "model")]
        probe_data: Option<String>,
        /// Training steps.
        #[arg(long, default_value_t = 300)]
        steps: usize,
        /// Examples per step.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Optimizer: sgd (momentum 0.9), adam or adamw.
        #[arg(long, default_value = "sgd")]
        optimizer: OptimizerKind,
        /// Learning rate.
        #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
        lr: f64,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also train on permuted labels and compare (the label-shuffle control).
        #[arg(long)]
        shuffle_control: bool,
        /// Also train a reference for the same steps and compare training
        /// losses (the depth control, which decides `degradation`): the
        /// residual twin of a plain-resnet, a resnet of depth 8, a plain
        /// stack at a quarter of its depth; or the SPEC given.
        #[arg(long, value_name = "SPEC", num_args = 0..=1, default_missing_value = "auto")]
        depth_control: Option<String>,
        /// Diagnose at initialisation instead of training: BATCHES batches
        /// (default 4) through the initial network, no update; only the
        /// gradient-flow gates decide.
        #[arg(long, value_name = "BATCHES", num_args = 0..=1, default_missing_value = "4",
              conflicts_with_all = ["shuffle_control", "depth_control"])]
        at_init: Option<usize>,
        /// Write the diagnosis as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the depth-profile plot (SVG) into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A per-layer table of a model: output shapes, parameters, MACs, and where heads attach.
    #[command(after_help = MODEL_HELP)]
    Summary {
        /// Model SPEC.
        #[arg(long)]
        model: String,
        /// Input shape CxHxW.
        #[arg(long, default_value = "3x32x32")]
        input: String,
        /// Number of classes.
        #[arg(long, default_value_t = 10)]
        classes: usize,
    },
    /// Time training steps of a model on random data: ms per step, images/s, split, peak memory.
    #[command(after_help = MODEL_HELP)]
    Bench {
        /// Model SPEC, e.g. resnet:depth=20.
        #[arg(long)]
        model: String,
        /// Images per step.
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// Input shape CxHxW.
        #[arg(long, default_value = "3x32x32")]
        input: String,
        /// Number of classes.
        #[arg(long, default_value_t = 10)]
        classes: usize,
        /// Timed steps (the median is reported).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Untimed steps before the timed ones.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Optimizer: sgd (lr 0.01, momentum 0.9, weight decay 5e-4), adam or adamw (lr 0.001).
        #[arg(long, default_value = "sgd")]
        optimizer: OptimizerKind,
        /// Seed of the weights and the random data.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also write the report as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Data-parallel ranks as threads of this process, sharing its cores (--batch is the global batch); under mpirun, the MPI processes instead.
        #[arg(long, default_value_t = 1)]
        ranks: usize,
    },
    /// Standard, pointwise (1x1) and depthwise convolutions compared on one shape.
    ConvTable {
        /// Input channels.
        #[arg(long = "in", default_value_t = 32)]
        c_in: usize,
        /// Output channels.
        #[arg(long = "out", default_value_t = 64)]
        c_out: usize,
        /// Kernel side.
        #[arg(long, default_value_t = 3)]
        kernel: usize,
        /// Input size HxW.
        #[arg(long, default_value = "16x16")]
        size: String,
        /// Images per batch for the timings.
        #[arg(long, default_value_t = 8)]
        batch: usize,
    },
    /// The SPEC grammar of --model and --data: every model and dataset with its keys.
    #[command(long_about = SPECS)]
    Specs,
}

fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Specs => {
            println!("{SPECS}");
            Ok(())
        }
        Command::Demo { out, quick, seeds } => demo::demo(&out, quick, seeds),
        Command::Experiment {
            name,
            out,
            quick,
            scale,
            seed,
            seeds,
        } => {
            let name = NAMES[name as usize];
            demo::run(&[name], &demo::size(quick, seed, scale, seeds)?, &out)
        }
        Command::Train {
            model,
            data,
            epochs,
            batch,
            optimizer,
            lr,
            weight_decay,
            schedule,
            seed,
            checkpoint,
            resume,
            log,
        } => {
            let args = train::TrainArgs {
                model,
                data,
                epochs,
                batch,
                optimizer,
                lr,
                weight_decay,
                schedule,
                seed,
                checkpoint,
                resume,
                log,
            };
            let comm = ranks::world()?;
            let result = train::run_on(&args, &*comm);
            ranks::finish(comm, result)
        }
        Command::Diagnose {
            model,
            data,
            steps,
            batch,
            optimizer,
            lr,
            seed,
            shuffle_control,
            depth_control,
            at_init,
            json,
            out,
            history,
            probe_data,
        } => match (model, data, history) {
            (Some(model), Some(data), history) => diagnose::run(&diagnose::DiagnoseArgs {
                model,
                data,
                steps,
                batch,
                optimizer: gradlab_train::OptimizerSpec::new(optimizer, lr),
                seed,
                shuffle_control,
                depth_control,
                at_init,
                json,
                out,
                history,
            }),
            (None, None, Some(history)) => diagnose::run_replay(&diagnose::ReplayArgs {
                history,
                probe_data,
                seed,
                json,
                out,
            }),
            _ => Err(CliError::Usage(
                "diagnose needs --model and --data (train and diagnose), or --history FILE alone (diagnose a recorded run)".into(),
            )),
        },
        Command::Summary {
            model,
            input,
            classes,
        } => summary::run(&model, &input, classes),
        Command::Bench {
            model,
            batch,
            input,
            classes,
            steps,
            warmup,
            optimizer,
            seed,
            json,
            ranks: thread_ranks,
        } => {
            let args = bench::BenchArgs {
                model,
                batch,
                input,
                classes,
                steps,
                warmup,
                optimizer,
                seed,
                json,
                ranks: thread_ranks,
            };
            let comm = ranks::world()?;
            if comm.size() == 1 {
                bench::run(&args)
            } else {
                let result = bench::run_on(&args, &*comm);
                ranks::finish(comm, result)
            }
        }
        Command::ConvTable {
            c_in,
            c_out,
            kernel,
            size,
            batch,
        } => {
            let [_, height, width] = summary::parse_shape(&size)?;
            conv_table::run(&conv_table::ConvShape {
                c_in,
                c_out,
                kernel,
                height,
                width,
                batch,
            })
        }
    }
}

/// clap's first line names the bad argument; add the valid choices to it.
fn one_line_error(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use clap::CommandFactory;
    let text = e.render().to_string();
    let mut line = text
        .lines()
        .next()
        .unwrap_or("error: bad arguments")
        .to_string();
    if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
        line.push_str(&format!("; valid values: {}", valid.join(", ")));
    }
    if e.kind() == ErrorKind::InvalidSubcommand {
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        line.push_str(&format!("; valid commands: {}", names.join(", ")));
    }
    if e.kind() == ErrorKind::MissingRequiredArgument {
        if let Some(ContextValue::Strings(missing)) = e.get(ContextKind::InvalidArg) {
            line = format!("error: missing required arguments: {}", missing.join(", "));
        }
    }
    if e.kind() == ErrorKind::UnknownArgument {
        line.push_str("; see --help for the options");
    }
    line
}

fn main() -> ExitCode {
    // Piping into `head` must end the program quietly, as for any Unix tool,
    // not with a panic on the closed pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread
    // starts has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Every training step allocates the same large tensors: keep freed
    // memory in the process so steps reuse it instead of page-faulting
    // fresh memory in (measured: a ResNet-20 step 562 -> 485 ms median).
    gradlab_tensor::retain_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            eprintln!("{}", one_line_error(&e));
            return ExitCode::from(2);
        }
    };
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
