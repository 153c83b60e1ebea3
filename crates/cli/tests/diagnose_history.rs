//! `gradlab diagnose --history`: a live run writes the history file, and
//! diagnosing the file alone gives the same verdict, reasons, JSON and
//! plot; `--probe-data` adds the probe to a file without one; a damaged
//! file fails with one line naming the line and the field, exit code 1.

use std::path::Path;
use std::process::{Command, Output};

fn gradlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = gradlab(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn fails(args: &[&str], code: i32, needles: &[&str]) {
    let out = gradlab(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_recorded_run_replays_to_the_same_diagnosis_json_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let history = d.join("run.jsonl");
    let (live_dir, replay_dir) = (d.join("live"), d.join("replay"));
    std::fs::create_dir_all(&live_dir).unwrap();
    std::fs::create_dir_all(&replay_dir).unwrap();
    let live = ok(&[
        "diagnose",
        "--model",
        "plain-mlp:depth=8,width=32,act=sigmoid",
        "--data",
        "digits",
        "--steps",
        "40",
        "--batch",
        "32",
        "--history",
        s(&history),
        "--json",
        s(&d.join("live.json")),
        "--out",
        s(&live_dir),
    ]);
    let replay = ok(&[
        "diagnose",
        "--history",
        s(&history),
        "--json",
        s(&d.join("replay.json")),
        "--out",
        s(&replay_dir),
    ]);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(read(&d.join("live.json")), read(&d.join("replay.json")));
    assert_eq!(
        read(&live_dir.join("depth_profile.svg")),
        read(&replay_dir.join("depth_profile.svg"))
    );
    // The printed diagnosis too (the live run also says where it wrote the history).
    let body = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with("wrote "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&live).trim(), body(&replay).trim());
    assert!(live.contains("verdict: "), "{live}");
    let first = read(&history).lines().next().unwrap().to_string();
    assert!(first.starts_with(r#"{"type":"run","format":"gradlab-history","version":1"#));
    assert!(first.contains(r#""model":"plain-mlp:depth=8,width=32,act=sigmoid""#));
}

#[test]
fn probe_data_fills_in_a_missing_probe() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../diag/tests/fixtures/torch_sigmoid_mlp.jsonl"
    );
    let dir = tempfile::tempdir().unwrap();
    let indicators = |json: &Path| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        v["indicators"].clone()
    };
    let none = dir.path().join("none.json");
    ok(&["diagnose", "--history", fixture, "--json", s(&none)]);
    assert!(indicators(&none)["probe_accuracy"].is_null());

    let digits = dir.path().join("digits.json");
    ok(&[
        "diagnose",
        "--history",
        fixture,
        "--probe-data",
        "digits",
        "--json",
        s(&digits),
    ]);
    let i = indicators(&digits);
    assert!(i["probe_accuracy"].as_f64().unwrap() > 0.9, "{i}");

    // Features whose label is the largest of the first ten columns, as numpy saves them.
    let (n, dims) = (300, 12);
    let x = ndarray::Array2::from_shape_fn((n, dims), |(r, c)| {
        (((r * 31 + c * 17) % 97) as f64 / 97.0) - 0.5
    });
    let y = ndarray::Array1::from_shape_fn(n, |r| {
        (0..10)
            .max_by(|&a, &b| x[[r, a]].total_cmp(&x[[r, b]]))
            .unwrap() as i64
    });
    let (xf, yf) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    ndarray_npy::write_npy(&xf, &x).unwrap();
    ndarray_npy::write_npy(&yf, &y).unwrap();
    let npy = dir.path().join("npy.json");
    ok(&[
        "diagnose",
        "--history",
        fixture,
        "--probe-data",
        &format!("npy:{},{}", s(&xf), s(&yf)),
        "--json",
        s(&npy),
    ]);
    assert!(indicators(&npy)["probe_p_value"].as_f64().unwrap() < 1e-3);

    // Labels out of range, and a malformed spec.
    let bad = ndarray::Array1::from_elem(n, 12i64);
    ndarray_npy::write_npy(&yf, &bad).unwrap();
    fails(
        &[
            "diagnose",
            "--history",
            fixture,
            "--probe-data",
            &format!("npy:{},{}", s(&xf), s(&yf)),
        ],
        1,
        &["label 12", "0..10"],
    );
    fails(
        &[
            "diagnose",
            "--history",
            fixture,
            "--probe-data",
            "npy:x.npy",
        ],
        2,
        &["npy:FEATURES.npy,LABELS.npy"],
    );
}

#[test]
fn damaged_history_files_fail_with_the_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let run = r#"{"type":"run","format":"gradlab-history","version":1,"num_classes":3}"#;
    let cases: Vec<(std::path::PathBuf, Vec<&str>)> = vec![
        (write("empty.jsonl", b""), vec!["line 1", "empty"]),
        (
            write("binary.jsonl", &[0x89, b'P', b'N', b'G', 0, 0xff, b'\n']),
            vec!["line 1", "UTF-8"],
        ),
        (
            write("nostep.jsonl", format!("{run}\n").as_bytes()),
            vec!["line 2", "no step"],
        ),
        (
            write(
                "neg.jsonl",
                format!("{run}\n{}\n", r#"{"type":"step","step":0,"loss":1,"grad_norm":1,"layers":[{"name":"a","index":0,"grad_rms":-1,"weight_rms":1}],"positions":[]}"#).as_bytes(),
            ),
            vec!["line 2", "layers[0].grad_rms", "negative"],
        ),
        (
            write("k1.jsonl", run.replace(":3", ":1").as_bytes()),
            vec!["line 1", "num_classes"],
        ),
    ];
    for (path, needles) in cases {
        let out = gradlab(&["diagnose", "--history", s(&path)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", path.display());
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        for n in needles {
            assert!(err.contains(n), "{err:?} lacks {n:?}");
        }
    }
    fails(
        &[
            "diagnose",
            "--history",
            s(&dir.path().join("missing.jsonl")),
        ],
        1,
        &["missing.jsonl"],
    );
    // Half a model: a usage error.
    fails(&["diagnose", "--model", "resnet"], 2, &["--data"]);
}
