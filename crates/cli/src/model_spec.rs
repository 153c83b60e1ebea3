//! `--model SPEC`: from a spec string to a network ([`Classifier`]).
//!
//! | name | keys |
//! |---|---|
//! | `resnet`, `plain-resnet` | `depth` (6n+2, default 20), `width` (base, 16), `block` (basic, bottleneck), `shortcut` (a, b), `preact`, `act`, `bn`, `gain`, `aux`, `aux-weight` |
//! | `plain-cnn` | `depth` (10), `width` (16), `act`, `bn`, `gain`, `bias`, `shortcut-every`, `aux`, `aux-weight` |
//! | `plain-mlp` | `depth` (10), `width` (64), `act`, `bn`, `gain`, `bias`, `shortcut-every`, `aux`, `aux-weight` |
//! | `mobilenet` | `width` (multiplier, 1.0), `v2`, `act`, `aux`, `aux-weight` |
//!
//! `act` is relu, tanh, sigmoid, leaky-relu or gelu; `gain` multiplies the
//! standard deviation of the default initialisation; `bias` sets every bias
//! to a constant (`bias=-2` makes dead ReLUs); `aux=stage1+stage2` attaches
//! auxiliary heads (weight `aux-weight`, default 0.3) at those points.

use gradlab_arch::{
    AuxHeadConfig, AuxNet, BlockKind, Classifier, MobileNet, MobileNetConfig, PlainCnn,
    PlainCnnConfig, PlainMlp, PlainMlpConfig, ResNet, ResNetConfig, ShortcutOption, StackOptions,
    DEFAULT_AUX_WEIGHT,
};
use gradlab_nn::{ActivationKind, Init, Scope};

use crate::error::{CliError, Result};
use crate::spec::{unknown, Spec};

/// The model names `--model` accepts.
pub const MODEL_NAMES: [&str; 5] = [
    "resnet",
    "plain-resnet",
    "plain-cnn",
    "plain-mlp",
    "mobilenet",
];

const ACTIVATIONS: [&str; 5] = ["relu", "tanh", "sigmoid", "leaky-relu", "gelu"];

/// A built network with what the diagnostics need to know about it.
pub struct BuiltModel {
    /// The network.
    pub net: Box<dyn Classifier<f32>>,
    /// Its non-linearity.
    pub activation: ActivationKind,
    /// The spec it was built from.
    pub spec: String,
}

fn activation(spec: &mut Spec) -> Result<ActivationKind> {
    Ok(match spec.choice("act", &ACTIVATIONS, "relu")?.as_str() {
        "tanh" => ActivationKind::Tanh,
        "sigmoid" => ActivationKind::Sigmoid,
        "leaky-relu" => ActivationKind::LeakyRelu(0.01),
        "gelu" => ActivationKind::Gelu,
        _ => ActivationKind::Relu,
    })
}

fn stack(spec: &mut Spec, default_width: usize) -> Result<StackOptions> {
    let mut s = StackOptions {
        depth: spec.usize("depth", 10)?,
        width: spec.usize("width", default_width)?,
        activation: activation(spec)?,
        batch_norm: spec.bool("bn", false)?,
        ..StackOptions::default()
    };
    s.gain = spec.positive("gain", 1.0)?;
    if let Some(b) = spec.opt_f64("bias")? {
        s.bias_init = Init::Constant(b);
    }
    let every = spec.usize("shortcut-every", 0)?;
    s.shortcut_every = (every > 0).then_some(every);
    Ok(s)
}

/// The depth control's default reference for a model SPEC: the residual
/// twin of a `plain-resnet` (`resnet` with the same keys); a `resnet` at
/// depth 8, the smallest; a `plain-cnn` or `plain-mlp` at a quarter of its
/// depth (at least 2). Every other key is kept.
///
/// # Errors
/// [`CliError::Usage`] when the model has no smaller or residual reference
/// (a `mobilenet`, a `resnet` already at depth 8 or less, a stack of depth
/// 2 or less): then the reference must be given as a SPEC.
pub fn depth_reference(model: &str) -> Result<String> {
    let mut spec = Spec::parse(model)?;
    let none = |why: String| {
        CliError::Usage(format!(
            "--depth-control: {model} has no default reference ({why}); give one: --depth-control SPEC"
        ))
    };
    let family = spec.name.clone();
    let (name, depth) = match family.as_str() {
        // The residual twin: the same keys, shortcuts added.
        "plain-resnet" => return Ok(spec.rewritten("resnet", None)),
        "resnet" => match spec.usize("depth", 20)? {
            d if d <= 8 => return Err(none(format!("depth {d} is already the smallest"))),
            _ => ("resnet", 8),
        },
        n @ ("plain-cnn" | "plain-mlp") => match spec.usize("depth", 10)? {
            d if d <= 2 => return Err(none(format!("depth {d} is already the smallest"))),
            d => (n, (d / 4).max(2)),
        },
        other => return Err(none(format!("{other} has no depth key"))),
    };
    Ok(spec.rewritten(name, Some(("depth", &depth.to_string()))))
}

/// Bytes a model of about `params` parameters needs to train: the weights,
/// their gradients and up to two optimizer moments, 4 bytes each.
fn training_bytes(params: f64) -> f64 {
    params * 4.0 * 4.0
}

/// Refuses a model whose parameters alone could not fit in memory, before
/// anything is allocated: `params` is an upper bound computed from the spec's
/// numbers in floating point, so huge values cannot overflow.
fn check_model_size(text: &str, params: f64) -> Result<()> {
    let need = training_bytes(params);
    let limit = gradlab_data::memory_limit() as f64;
    if need > limit {
        return Err(CliError::Usage(format!(
            "'{text}': about {:.3e} parameters would need about {} to train, more than this machine's {}",
            params,
            human_bytes(need),
            human_bytes(limit)
        )));
    }
    Ok(())
}

/// `bytes` with a binary unit (`1.5 GiB`).
pub fn human_bytes(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

/// Builds the network `text` for inputs `[C, H, W]` and `num_classes` classes.
///
/// # Errors
/// [`CliError::Usage`] for an unknown name or key, a malformed value, or a
/// configuration the architecture rejects (with its reason).
pub fn build_model(
    text: &str,
    input: [usize; 3],
    num_classes: usize,
    seed: u64,
) -> Result<BuiltModel> {
    let mut spec = Spec::parse(text)?;
    let usage = |e: gradlab_arch::ArchError| CliError::Usage(format!("'{text}': {e}"));
    let scope = Scope::new(seed);
    let [c, h, w] = input;
    let (net, act): (Box<dyn Classifier<f32>>, ActivationKind) = match spec.name.as_str() {
        "resnet" | "plain-resnet" => {
            let depth = spec.usize("depth", 20)?;
            let block = spec.choice("block", &["basic", "bottleneck"], "basic")?;
            let mut cfg = if block == "bottleneck" {
                ResNetConfig::cifar_bottleneck(depth)
            } else {
                ResNetConfig::cifar(depth)
            }
            .map_err(usage)?;
            let width = spec.usize("width", 16)?;
            // Stages widen to 4x the base width (16x with bottlenecks).
            let widest = width as f64 * if block == "bottleneck" { 16.0 } else { 4.0 };
            check_model_size(text, depth as f64 * 9.0 * widest * widest)?;
            cfg = cfg.with_width(width);
            cfg.in_channels = c;
            cfg.num_classes = num_classes;
            cfg.shortcut = if spec.choice("shortcut", &["a", "b"], "a")? == "b" {
                ShortcutOption::B
            } else {
                ShortcutOption::A
            };
            cfg.preact = spec.bool("preact", false)?;
            cfg.activation = activation(&mut spec)?;
            cfg.batch_norm = spec.bool("bn", true)?;
            cfg.gain = spec.positive("gain", 1.0)?;
            if spec.name == "plain-resnet" {
                cfg = cfg.plain();
            }
            if block == "bottleneck" {
                cfg.block = BlockKind::Bottleneck;
            }
            let act = cfg.activation;
            (Box::new(ResNet::new(&scope, &cfg).map_err(usage)?), act)
        }
        "plain-cnn" => {
            let cfg = PlainCnnConfig {
                in_channels: c,
                num_classes,
                stack: stack(&mut spec, 16)?,
            };
            let (d, w) = (cfg.stack.depth as f64, cfg.stack.width as f64);
            check_model_size(text, d * 9.0 * w * (w + c as f64) + w * num_classes as f64)?;
            let act = cfg.stack.activation;
            (Box::new(PlainCnn::new(&scope, &cfg).map_err(usage)?), act)
        }
        "plain-mlp" => {
            let cfg = PlainMlpConfig {
                in_features: c * h * w,
                num_classes,
                stack: stack(&mut spec, 64)?,
            };
            let (d, wd) = (cfg.stack.depth as f64, cfg.stack.width as f64);
            let inputs = (c * h * w) as f64;
            check_model_size(text, wd * (inputs + d * wd + num_classes as f64))?;
            let act = cfg.stack.activation;
            (Box::new(PlainMlp::new(&scope, &cfg).map_err(usage)?), act)
        }
        "mobilenet" => {
            let mut cfg = if spec.bool("v2", false)? {
                MobileNetConfig::small_v2()
            } else {
                MobileNetConfig::small()
            };
            let multiplier = spec.positive("width", 1.0)?;
            // The small MobileNets end at 1024 channels times the multiplier.
            let widest = 1024.0 * multiplier;
            check_model_size(text, 14.0 * widest * widest)?;
            cfg = cfg.with_width(multiplier);
            cfg.in_channels = c;
            cfg.num_classes = num_classes;
            cfg.activation = activation(&mut spec)?;
            let act = cfg.activation;
            (Box::new(MobileNet::new(&scope, &cfg).map_err(usage)?), act)
        }
        other => return Err(unknown("model", other, &MODEL_NAMES).into()),
    };
    let aux = spec.list("aux");
    let weight = spec.f64("aux-weight", DEFAULT_AUX_WEIGHT)?;
    spec.finish()?;
    net.check_input(&[1, c, h, w]).map_err(usage)?;
    let net: Box<dyn Classifier<f32>> = if aux.is_empty() {
        net
    } else {
        let heads: Vec<AuxHeadConfig> = aux
            .iter()
            .map(|p| AuxHeadConfig::new(p.clone()).with_weight(weight))
            .collect();
        Box::new(AuxNet::new(&scope, net, &heads, &[c, h, w]).map_err(usage)?)
    };
    Ok(BuiltModel {
        net,
        activation: act,
        spec: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_depth_reference_is_the_residual_twin_or_a_shallower_network() {
        assert_eq!(
            depth_reference("plain-resnet:depth=56,bn=true").unwrap(),
            "resnet:depth=56,bn=true"
        );
        assert_eq!(
            depth_reference("resnet:depth=56,width=8").unwrap(),
            "resnet:depth=8,width=8"
        );
        assert_eq!(
            depth_reference("plain-mlp:depth=20,act=sigmoid").unwrap(),
            "plain-mlp:depth=5,act=sigmoid"
        );
        assert_eq!(depth_reference("plain-cnn").unwrap(), "plain-cnn:depth=2");
        for bad in ["mobilenet", "resnet:depth=8", "plain-mlp:depth=2"] {
            let e = depth_reference(bad).unwrap_err();
            assert!(
                e.to_string().contains("--depth-control SPEC") && e.exit_code() == 2,
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn every_documented_example_builds() {
        for text in [
            "resnet:depth=20",
            "plain-resnet:depth=8",
            "plain-cnn:depth=6,width=4,act=sigmoid,bn=false",
            "plain-mlp:depth=10,width=16,act=tanh",
            "plain-mlp:depth=5,width=16,act=relu,gain=2.5",
            "plain-mlp:depth=4,width=8,bias=-2",
            "resnet:depth=8,width=8",
            "mobilenet:width=0.25",
            "resnet:depth=8,aux=stage1+stage2",
        ] {
            let m = build_model(text, [1, 8, 8], 10, 0).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(m.net.num_classes(), 10, "{text}");
        }
    }

    #[test]
    fn bad_specs_are_usage_errors_listing_choices() {
        let e = build_model("resnte", [1, 8, 8], 10, 0).err().unwrap();
        assert!(
            e.to_string().contains("plain-resnet") && e.exit_code() == 2,
            "{e}"
        );
        let e = build_model("resnet:depth=21", [1, 8, 8], 10, 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("6n + 2"), "{e}");
        let e = build_model("resnet:deep=20", [1, 8, 8], 10, 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("valid keys"), "{e}");
        let e = build_model("plain-mlp:act=swish", [1, 8, 8], 10, 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("sigmoid"), "{e}");
        let e = build_model("resnet:aux=stage9", [1, 8, 8], 10, 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("stage9"), "{e}");
        assert!(build_model("plain-mlp:gain=-1", [1, 8, 8], 10, 0).is_err());
    }

    #[test]
    fn models_too_large_for_memory_are_refused_before_allocating() {
        for text in [
            "plain-mlp:depth=3,width=1000000",
            "resnet:depth=8,width=1000000",
            "plain-cnn:depth=4,width=100000000",
            "mobilenet:width=100000",
            "resnet:depth=600000002,width=16",
        ] {
            let e = build_model(text, [1, 8, 8], 10, 0).err().unwrap();
            assert_eq!(e.exit_code(), 2, "{text}: {e}");
            assert!(e.to_string().contains("would need about"), "{text}: {e}");
        }
    }
}
