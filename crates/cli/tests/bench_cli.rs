//! `gradlab bench` end to end: a tiny model, two timed steps, the JSON
//! report's fields (never its timings' values), and its usage errors.

use std::process::{Command, Output};

fn gradlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn bench_writes_every_field_of_the_report() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("out").join("bench.json");
    let out = gradlab(&[
        "bench",
        "--model",
        "resnet:depth=8,width=4",
        "--batch",
        "4",
        "--input",
        "3x8x8",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--optimizer",
        "adam",
        "--json",
        path.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in ["resnet-8", "ms median", "images/s", "forward", "peak RSS"] {
        assert!(stdout.contains(needle), "{stdout:?} lacks {needle:?}");
    }
    let text = std::fs::read_to_string(&path).expect("the JSON report exists");
    let r: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(r["model"], "resnet:depth=8,width=4");
    assert!(
        r["label"]
            .as_str()
            .is_some_and(|l| l.starts_with("resnet-8")),
        "{r}"
    );
    assert_eq!(r["batch"], 4);
    assert_eq!(r["input"], serde_json::json!([3, 8, 8]));
    assert_eq!(r["optimizer"], "adam");
    assert_eq!(r["steps"], 2);
    assert_eq!(r["warmup_steps"], 1);
    assert!(r["parameters"].as_u64().is_some_and(|p| p > 0), "{r}");
    assert!(r["threads"].as_u64().is_some_and(|t| t >= 1), "{r}");
    assert_eq!(r["step_ms"].as_array().map(Vec::len), Some(2), "{r}");
    for key in [
        "ms_per_step",
        "min_ms_per_step",
        "max_ms_per_step",
        "images_per_second",
        "last_loss",
    ] {
        assert!(r[key].as_f64().is_some_and(f64::is_finite), "{key} in {r}");
    }
    for key in ["forward_ms", "backward_ms", "update_ms"] {
        assert!(r["split"][key].as_f64().is_some(), "split.{key} in {r}");
    }
    // Present on Linux, null where the system does not report it.
    assert!(r.get("peak_memory_bytes").is_some(), "{r}");
    assert!(r.get("cpu_ms_per_step").is_some(), "{r}");
    if cfg!(target_os = "linux") {
        assert!(
            r["peak_memory_bytes"].as_u64().is_some_and(|b| b > 0),
            "{r}"
        );
    }
}

#[test]
fn bench_usage_errors_are_one_line_with_exit_code_2() {
    for (args, needle) in [
        (
            &["bench", "--model", "resnet:depth=8", "--batch", "0"][..],
            "--batch",
        ),
        (
            &["bench", "--model", "resnet:depth=8", "--input", "3by8"][..],
            "3by8",
        ),
        (
            &[
                "bench",
                "--model",
                "resnet:depth=8",
                "--optimizer",
                "rmsprop",
            ][..],
            "sgd, adam",
        ),
        (&["bench", "--model", "resnte"][..], "resnet"),
    ] {
        let out = gradlab(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err:?}");
    }
}
