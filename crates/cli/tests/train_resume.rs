//! `train` then `train --resume` from a mid-run checkpoint ends exactly where
//! one uninterrupted run does.

use std::process::Command;

fn train(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .arg("train")
        .args([
            "--model",
            "resnet:depth=8,width=4",
            "--data",
            "digits",
            "--batch",
            "64",
            "--seed",
            "3",
        ])
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn final_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.starts_with("final:") || l.starts_with("held-out:"))
        .collect()
}

#[test]
fn resume_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.ckpt");
    let part = dir.path().join("part.ckpt");
    let log = dir.path().join("part.csv");
    let (whole, part, log) = (
        whole.to_str().unwrap(),
        part.to_str().unwrap(),
        log.to_str().unwrap(),
    );

    let uninterrupted = train(&["--epochs", "2", "--checkpoint", whole]);
    train(&["--epochs", "1", "--checkpoint", part, "--log", log]);
    let resumed = train(&[
        "--epochs",
        "2",
        "--checkpoint",
        part,
        "--resume",
        "--log",
        log,
    ]);

    let a = final_lines(&uninterrupted);
    assert_eq!(a.len(), 2, "{uninterrupted}");
    assert_eq!(a, final_lines(&resumed), "same final loss to the bit");
    // The log holds every step once, across the resume.
    let rows = std::fs::read_to_string(log).unwrap();
    let steps: Vec<&str> = rows
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&"1"));
    assert_eq!(steps.len(), steps.last().unwrap().parse::<usize>().unwrap());
}
