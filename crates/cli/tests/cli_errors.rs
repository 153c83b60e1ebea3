//! Bad input to the binary: a clear one-line message and a non-zero exit,
//! never a backtrace.

use std::process::{Command, Output};

fn gradlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn fails_with(args: &[&str], code: i32, needles: &[&str]) {
    let out = gradlab(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err:?}");
}

#[test]
fn unknown_subcommand_lists_the_commands() {
    fails_with(
        &["frobnicate"],
        2,
        &["frobnicate", "train", "diagnose", "summary", "conv-table"],
    );
}

#[test]
fn unknown_model_or_key_lists_the_valid_ones() {
    fails_with(
        &["summary", "--model", "resnte"],
        2,
        &["resnte", "resnet", "plain-mlp"],
    );
    fails_with(
        &["summary", "--model", "resnet:depht=20"],
        2,
        &["depht", "valid keys", "depth"],
    );
    fails_with(
        &["diagnose", "--model", "resnet", "--data", "digitz"],
        2,
        &["digitz", "patterns"],
    );
    fails_with(
        &[
            "train",
            "--model",
            "resnet",
            "--data",
            "digits",
            "--optimizer",
            "rmsprop",
        ],
        2,
        &["rmsprop", "sgd, adam, adamw"],
    );
}

#[test]
fn malformed_numbers_are_named() {
    fails_with(
        &["summary", "--model", "resnet:depth=twenty"],
        2,
        &["depth=twenty", "whole number"],
    );
    fails_with(
        &[
            "train", "--model", "resnet", "--data", "digits", "--lr", "fast",
        ],
        2,
        &["fast", "--lr"],
    );
    fails_with(
        &["summary", "--model", "resnet:depth=8", "--input", "3xbig"],
        2,
        &["3xbig", "CxHxW"],
    );
}

#[test]
fn missing_data_file_names_the_file() {
    fails_with(
        &[
            "diagnose",
            "--model",
            "plain-mlp",
            "--data",
            "idx:/no/such/images.idx,/no/such/labels.idx",
        ],
        1,
        &["/no/such/images.idx"],
    );
}

#[test]
fn unreadable_checkpoint_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("model.ckpt");
    std::fs::write(&ckpt, b"this is not a checkpoint").unwrap();
    let ckpt = ckpt.to_str().unwrap();
    fails_with(
        &[
            "train",
            "--model",
            "plain-mlp:depth=2,width=4",
            "--data",
            "digits",
            "--epochs",
            "1",
            "--checkpoint",
            ckpt,
            "--resume",
        ],
        1,
        &[ckpt],
    );
    fails_with(
        &[
            "train",
            "--model",
            "plain-mlp:depth=2,width=4",
            "--data",
            "digits",
            "--resume",
        ],
        2,
        &["--checkpoint"],
    );
}

#[test]
fn zero_seeds_is_a_usage_error() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    fails_with(
        &["experiment", "conv-ops", "--seeds", "0", "--out", dir],
        2,
        &["--seeds must be at least 1", "got 0"],
    );
    fails_with(
        &["demo", "--quick", "--seeds", "0", "--out", dir],
        2,
        &["--seeds must be at least 1"],
    );
}
