//! What the commands print: the SPEC grammar where it applies, the points
//! where heads attach, MACs per image, figures to 4 significant digits,
//! the label-shuffle control in the reasons, the documented exploding
//! example, and lines that fit 100 columns when piped.

use std::process::Command;

fn stdout_of(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(args)
        .env_remove("COLUMNS")
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Help too: clap wraps it at 100 columns when piped.
    for line in text.lines() {
        assert!(line.chars().count() <= 100, "{args:?}: too wide: {line:?}");
    }
    text
}

/// Significant digits of a decimal number as printed (`0.2069` has 4).
fn significant(number: &str) -> usize {
    let mantissa = number.split('e').next().unwrap();
    mantissa
        .chars()
        .filter(char::is_ascii_digit)
        .skip_while(|&c| c == '0')
        .count()
}

#[test]
fn the_spec_grammar_is_in_the_binary_and_only_where_it_applies() {
    let specs = stdout_of(&["help", "specs"]);
    for needle in [
        "plain-resnet",
        "shortcut-every",
        "subset:SPEC",
        "idx:IMAGES,LABELS",
        "aux-weight (0.3)",
    ] {
        assert!(specs.contains(needle), "help specs lacks {needle}");
    }
    assert!(!specs.contains("docs/cli.md"));
    for command in ["summary", "bench"] {
        let help = stdout_of(&[command, "--help"]);
        assert!(help.contains("gradlab help specs"), "{command}: {help}");
        assert!(
            !help.contains("patterns:") && !help.contains("  data:"),
            "{command} takes no --data: {help}"
        );
    }
    for command in ["train", "diagnose"] {
        let help = stdout_of(&[command, "--help"]);
        assert!(
            help.contains("patterns:") && help.contains("gradlab help specs"),
            "{help}"
        );
    }
}

#[test]
fn summary_lists_where_auxiliary_heads_attach() {
    let text =
        stdout_of(&["summary", "--model", "resnet:depth=8", "--input", "1x8x8"]).replace('\n', " ");
    assert!(text.contains("auxiliary heads attach at"), "{text}");
    for point in [
        "stage1 (16 channels)",
        "stage2 (32 channels)",
        "stage3.block1 (64 channels)",
    ] {
        assert!(text.contains(point), "{text} lacks {point}");
    }
}

#[test]
fn conv_table_counts_macs_per_image() {
    let text = stdout_of(&[
        "conv-table",
        "--in",
        "4",
        "--out",
        "8",
        "--kernel",
        "3",
        "--size",
        "8x8",
        "--batch",
        "4",
    ]);
    assert!(text.contains("MACs per"), "{text}");
    // Standard 3x3: C_in * C_out * 9 * H * W = 4 * 8 * 9 * 64 per image, not times the batch of 4.
    let standard = text.lines().find(|l| l.starts_with("standard")).unwrap();
    assert!(standard.contains(" 18432 "), "{standard}");
    assert!(!standard.contains("73728"), "{standard}");
}

#[test]
fn train_prints_figures_to_four_significant_digits_and_counts_epochs_from_one() {
    let text = stdout_of(&[
        "train",
        "--model",
        "plain-mlp:depth=2,width=8",
        "--data",
        "digits",
        "--epochs",
        "2",
    ]);
    assert!(
        text.contains("epoch 1/2:") && text.contains("epoch 2/2:"),
        "{text}"
    );
    assert!(!text.contains("epoch 0"), "{text}");
    let mut numbers = 0;
    for line in text
        .lines()
        .filter(|l| l.starts_with("final:") || l.starts_with("held-out:") || l.starts_with("epoch"))
    {
        for word in line.split([' ', ',']) {
            if word.contains('.') && word.parse::<f64>().is_ok() {
                assert!(significant(word) <= 4, "{word} in {line:?}");
                numbers += 1;
            }
        }
    }
    assert!(numbers >= 5, "{text}");
}

#[test]
fn diagnose_quotes_the_shuffle_control_and_the_documented_exploding_example_explodes() {
    let text = stdout_of(&[
        "diagnose",
        "--model",
        "plain-mlp:depth=2,width=16",
        "--data",
        "digits",
        "--steps",
        "60",
        "--shuffle-control",
    ]);
    let reasons: Vec<&str> = text.lines().skip_while(|l| *l != "because:").collect();
    assert!(
        reasons
            .iter()
            .any(|l| l.contains("label-shuffle control") && l.contains("π =")),
        "{text}"
    );
    // docs/cli.md: `plain-mlp:depth=20,act=relu,gain=3` starts in the exploding regime.
    let text = stdout_of(&[
        "diagnose",
        "--model",
        "plain-mlp:depth=20,act=relu,gain=3",
        "--data",
        "digits",
        "--steps",
        "30",
    ]);
    assert!(text.starts_with("verdict: exploding"), "{text}");
    let docs = include_str!("../../../docs/cli.md");
    assert!(docs.contains("`plain-mlp:depth=20,act=relu,gain=3`\nstarts in the exploding regime"));
}

fn failure_of(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(!out.status.success(), "{args:?} should fail");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn diagnose_at_init_decides_on_gradient_flow_alone() {
    let text = stdout_of(&[
        "diagnose",
        "--model",
        "plain-mlp:depth=12,act=sigmoid,width=16",
        "--data",
        "patterns:size=4,n=300",
        "--at-init",
        "3",
    ]);
    assert!(text.contains("verdict: vanishing"), "{text}");
    assert!(text.contains("measured at initialisation"), "{text}");
    assert!(text.contains("steps 0..2"), "{text}");
    let (code, err) = failure_of(&[
        "diagnose",
        "--model",
        "plain-mlp",
        "--data",
        "patterns:size=4,n=300",
        "--at-init",
        "0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at least 1 batch"), "{err}");
}

#[test]
fn diagnose_names_its_depth_control_or_asks_for_one() {
    let text = stdout_of(&[
        "diagnose",
        "--model",
        "plain-mlp:depth=8,width=16,bn=true",
        "--data",
        "patterns:size=4,n=300",
        "--steps",
        "20",
        "--batch",
        "16",
        "--depth-control",
    ]);
    assert!(
        text.contains("plain-mlp:depth=2,width=16,bn=true"),
        "{text}"
    );
    let (code, err) = failure_of(&[
        "diagnose",
        "--model",
        "mobilenet",
        "--data",
        "patterns:size=8,n=300",
        "--depth-control",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--depth-control SPEC"), "{err}");
}
