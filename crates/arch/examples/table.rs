//! Prints the parameter count and MACs (at 3x32x32, one example) of every
//! architecture of gradlab-arch, as the table in docs/architectures.md;
//! `--summary NAME` prints one network's per-layer summary instead.
//!
//! ```text
//! cargo run -p gradlab-arch --example table
//! cargo run -p gradlab-arch --example table -- --summary resnet-20
//! ```

use gradlab_arch::*;
use gradlab_nn::{ActivationKind, Scope};

/// A network with a word on what it is.
type Entry = (String, Box<dyn Classifier<f32>>);

fn models() -> Result<Vec<Entry>, ArchError> {
    let root = || Scope::new(0);
    let mut out: Vec<Entry> = Vec::new();
    let mut add = |what: &str, m: Box<dyn Classifier<f32>>| out.push((what.to_string(), m));
    for depth in [20, 32, 44, 56, 110] {
        let c = ResNetConfig::cifar(depth)?;
        add(
            "CIFAR ResNet, option A",
            Box::new(ResNet::new(&root(), &c)?),
        );
        add("plain twin", Box::new(ResNet::new(&root(), &c.plain())?));
    }
    let mut b = ResNetConfig::cifar(20)?;
    b.shortcut = ShortcutOption::B;
    add(
        "CIFAR ResNet, option B",
        Box::new(ResNet::new(&root(), &b)?),
    );
    let mut p = ResNetConfig::cifar(20)?;
    p.preact = true;
    add(
        "pre-activation, option A",
        Box::new(ResNet::new(&root(), &p)?),
    );
    add(
        "CIFAR ResNet, width 32",
        Box::new(ResNet::new(
            &root(),
            &ResNetConfig::cifar(20)?.with_width(32),
        )?),
    );
    add(
        "CIFAR bottleneck ResNet",
        Box::new(ResNet::new(&root(), &ResNetConfig::cifar_bottleneck(29)?)?),
    );
    let mut p164 = ResNetConfig::cifar_bottleneck(164)?;
    p164.preact = true;
    p164.shortcut = ShortcutOption::B;
    add(
        "He et al. 2016b ResNet-164, option B",
        Box::new(ResNet::new(&root(), &p164)?),
    );
    add(
        "ImageNet ResNet-18, 1000 classes",
        Box::new(ResNet::new(&root(), &ResNetConfig::imagenet(18)?)?),
    );
    add(
        "ImageNet ResNet-50, 1000 classes",
        Box::new(ResNet::new(&root(), &ResNetConfig::imagenet(50)?)?),
    );
    let mut cnn = PlainCnnConfig::new(3, 10, 20, 16, ActivationKind::Sigmoid);
    cnn.stack.batch_norm = false;
    add("deep plain CNN", Box::new(PlainCnn::new(&root(), &cnn)?));
    let mlp = PlainMlpConfig::new(3 * 32 * 32, 10, 10, 64, ActivationKind::Tanh);
    add("deep plain MLP", Box::new(PlainMlp::new(&root(), &mlp)?));
    let mut mlp20 = PlainMlpConfig::new(3 * 32 * 32, 10, 20, 64, ActivationKind::Relu);
    mlp20.stack.gain = 2.5;
    add(
        "deep plain MLP, gain 2.5",
        Box::new(PlainMlp::new(&root(), &mlp20)?),
    );
    add(
        "MobileNet (separable)",
        Box::new(MobileNet::new(&root(), &MobileNetConfig::small())?),
    );
    add(
        "MobileNet, width 0.5",
        Box::new(MobileNet::new(
            &root(),
            &MobileNetConfig::small().with_width(0.5),
        )?),
    );
    add(
        "MobileNetV2 (inverted residual)",
        Box::new(MobileNet::new(&root(), &MobileNetConfig::small_v2())?),
    );
    let s = root();
    let net = ResNet::new(&s, &ResNetConfig::cifar(20)?)?;
    let heads = [AuxHeadConfig::new("stage1"), AuxHeadConfig::new("stage2")];
    add(
        "pooled heads",
        Box::new(AuxNet::new(&s, net, &heads, &[3, 32, 32])?),
    );
    let s = root();
    let net = ResNet::new(&s, &ResNetConfig::cifar(20)?)?;
    let heads = [AuxHeadConfig::new("stage2").with_kind(HeadKind::googlenet())];
    add(
        "GoogLeNet-style head (128 ch, 1024 hidden)",
        Box::new(AuxNet::new(&s, net, &heads, &[3, 32, 32])?),
    );
    Ok(out)
}

fn main() -> Result<(), ArchError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let input = [3, 32, 32];
    if let [flag, name] = args.as_slice() {
        if flag == "--summary" {
            for (_, mut m) in models()? {
                if m.label() == *name {
                    print!("{}", summarize(&mut *m, &input)?);
                    return Ok(());
                }
            }
            eprintln!("no network labelled {name:?}");
            std::process::exit(2);
        }
    }
    println!("| network | what | parameters | MACs at 3x32x32 |");
    println!("|---|---|---:|---:|");
    for (what, mut m) in models()? {
        let s = summarize(&mut *m, &input)?;
        println!(
            "| `{}` | {} | {} ({:.2}M) | {} ({:.1}M) |",
            s.label,
            what,
            s.params,
            s.params as f64 / 1e6,
            s.macs,
            s.macs as f64 / 1e6
        );
    }
    Ok(())
}
