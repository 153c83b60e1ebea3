//! What survives a crash, what is refused and with which exit code, run on
//! the real binary: kills at random moments then resume equal the
//! uninterrupted run byte for byte (checkpoint and log), SIGINT and SIGTERM
//! save and exit 130/143, non-finite values never replace a checkpoint,
//! special files are never renamed over, identical runs write identical
//! bytes, and sizes too large for memory are refused before allocating.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A short training run; index 8 is the seed and 10 the number of epochs.
const TRAIN: [&str; 11] = [
    "train",
    "--model",
    "resnet:depth=8,width=4",
    "--data",
    "digits",
    "--batch",
    "32",
    "--seed",
    "3",
    "--epochs",
    "3",
];

fn base() -> Vec<&'static str> {
    TRAIN.to_vec()
}

fn gradlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs")
}

fn with_files<'a>(args: &[&'a str], ck: &'a str, log: &'a str) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend(["--checkpoint", ck, "--log", log]);
    v
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small deterministic generator for kill delays (no dependency needed).
fn delays(seed: u64, n: usize) -> Vec<Duration> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_millis(150 + x % 900)
        })
        .collect()
}

#[test]
fn kill_9_at_random_moments_then_resume_equals_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (ck, log) = (dir.path().join("whole.ck"), dir.path().join("whole.csv"));
    ok(&gradlab(&with_files(&base(), s(&ck), s(&log))));
    let (whole_ck, whole_log) = (std::fs::read(&ck).unwrap(), std::fs::read(&log).unwrap());

    for seed in 0..3u64 {
        let dir = tempfile::tempdir().unwrap();
        let (ck, log) = (dir.path().join("run.ck"), dir.path().join("run.csv"));
        for delay in delays(seed, 3) {
            let mut args = with_files(&base(), s(&ck), s(&log));
            if ck.exists() {
                args.push("--resume");
            }
            let mut child = spawn(&args);
            std::thread::sleep(delay);
            let _ = child.kill(); // SIGKILL: no handler runs
            let _ = child.wait();
        }
        let mut args = with_files(&base(), s(&ck), s(&log));
        if ck.exists() {
            args.push("--resume");
        }
        ok(&gradlab(&args));
        assert!(
            std::fs::read(&ck).unwrap() == whole_ck,
            "seed {seed}: checkpoint bytes differ"
        );
        assert_eq!(
            String::from_utf8(std::fs::read(&log).unwrap()).unwrap(),
            String::from_utf8(whole_log.clone()).unwrap(),
            "seed {seed}: log"
        );
    }
}

#[cfg(unix)]
#[test]
fn sigint_and_sigterm_save_flush_and_exit_with_128_plus_the_signal() {
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let dir = tempfile::tempdir().unwrap();
        let (ck, log) = (dir.path().join("run.ck"), dir.path().join("run.csv"));
        let child = spawn(&with_files(&base(), s(&ck), s(&log)));
        // Wait for the first rows, so the signal lands mid-training.
        let started = Instant::now();
        while std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) < 40
            && started.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) on the pid of our own live child, no memory involved.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(err.contains("--resume") && err.contains("saved"), "{err}");
        assert!(ck.exists(), "the checkpoint was written");
        let rows = std::fs::read_to_string(&log).unwrap();
        assert!(rows.ends_with('\n'), "the log was flushed whole: {rows:?}");
        let mut args = with_files(&base(), s(&ck), s(&log));
        args.push("--resume");
        ok(&gradlab(&args));
    }
}

#[test]
fn a_diverging_run_never_replaces_a_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("w.safetensors");
    let args = [
        "train",
        "--model",
        "resnet:depth=8",
        "--data",
        "digits",
        // A sane first epoch, then the learning rate times 1e30: the run
        // diverges at the first step of the second epoch whatever the
        // kernels' rounding. (A constant lr of 50 did, until a change of
        // rounding in BatchNorm let the scale-invariant network run on
        // with a finite loss.)
        "--lr",
        "0.05",
        "--schedule",
        "multistep:at=1,gamma=1e30",
        "--checkpoint",
        s(&ck),
        "--seed",
        "3",
    ];
    let mut first = args.to_vec();
    first.extend(["--epochs", "1"]);
    ok(&gradlab(&first));
    let good = std::fs::read(&ck).unwrap();
    let mut more = args.to_vec();
    more.extend(["--epochs", "6", "--resume"]);
    let out = gradlab(&more);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Which guard stops the run depends on the rounding of the kernels that
    // ran: the step's (a NaN loss or gradient) or the checkpoint's (a value
    // that is not finite is never saved). Either must say so.
    assert!(
        err.contains("training diverged") || err.contains("not finite"),
        "{err}"
    );
    // Whatever happened, the file on disk holds only finite values: it is
    // the good one or a later finite one, and it resumes.
    let now = std::fs::read(&ck).unwrap();
    if now != good {
        let mut check = args.to_vec();
        check.extend(["--epochs", "1", "--resume"]);
        let out = gradlab(&check);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[cfg(unix)]
#[test]
fn special_files_are_refused_and_symlinks_are_followed() {
    let out = gradlab(&[
        "train",
        "--model",
        "plain-mlp:depth=2,width=4",
        "--data",
        "digits",
        "--epochs",
        "1",
        "--checkpoint",
        "/dev/null",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/dev/null"), "{err}");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("real.json");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let notes = dir.path().join("link.partial");
    std::fs::write(&notes, "mine").unwrap();
    ok(&gradlab(&[
        "diagnose",
        "--model",
        "plain-mlp:depth=2,width=4",
        "--data",
        "digits",
        "--steps",
        "3",
        "--json",
        s(&link),
    ]));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&target)
        .unwrap()
        .contains("verdict"));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "mine");
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn identical_runs_write_identical_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for run in ["a", "b"] {
        let ck = dir.path().join(format!("{run}.ck"));
        let log = dir.path().join(format!("{run}.jsonl"));
        let mut args = base();
        args[10] = "1";
        ok(&gradlab(&with_files(&args, s(&ck), s(&log))));
        files.push((std::fs::read(&ck).unwrap(), std::fs::read(&log).unwrap()));
    }
    assert!(files[0].0 == files[1].0, "checkpoints differ");
    assert!(files[0].1 == files[1].1, "logs differ");
}

fn fails_with(args: &[&str], code: i32, needle: &str) {
    let out = gradlab(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn every_documented_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("c.ck");
    let mut args = base();
    args[10] = "1";
    args.extend(["--checkpoint", s(&ck)]);
    ok(&gradlab(&args));
    // A checkpoint of another run: a failure while running, exit 1, naming the key.
    let mut other = args.clone();
    other[8] = "4";
    other.push("--resume");
    fails_with(&other, 1, "seed: 3 in the checkpoint, 4 now");
    // Bad arguments: exit 2.
    fails_with(
        &[
            "diagnose",
            "--model",
            "resnet:depth=8",
            "--data",
            "digits",
            "--steps",
            "0",
        ],
        2,
        "at least 1",
    );
    fails_with(
        &[
            "train",
            "--model",
            "resnet:depth=8,depth=20",
            "--data",
            "digits",
        ],
        2,
        "duplicate key 'depth'",
    );
    fails_with(
        &[
            "train",
            "--model",
            "resnet:depth=8",
            "--data",
            "digits",
            "--lr",
            "-1",
        ],
        2,
        "learning rate",
    );
    fails_with(
        &[
            "train",
            "--model",
            "resnet:depth=8",
            "--data",
            "digits",
            "--schedule",
            "cosine:min=1",
        ],
        2,
        "below the base learning rate",
    );
    fails_with(
        &[
            "train",
            "--model",
            "resnet:depth=8",
            "--data",
            "digits",
            "--schedule",
            "multistep",
        ],
        2,
        "at=30+60",
    );
    fails_with(
        &[
            "train",
            "--model",
            "resnet:depth=8",
            "--data",
            "patterns:classes=1",
        ],
        2,
        "at least 2",
    );
    fails_with(
        &["bench", "--model", "resnet:depth=8", "--classes", "1"],
        2,
        "at least 2",
    );
    // A missing file: exit 1.
    fails_with(
        &[
            "train",
            "--model",
            "resnet:depth=8",
            "--data",
            "idx:/nonexistent/a,/nonexistent/b",
        ],
        1,
        "/nonexistent",
    );
    // Already finished: nothing to do, exit 0.
    let mut again = args.clone();
    again.push("--resume");
    let out = gradlab(&again);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to do"));
}

#[test]
fn sizes_too_large_for_memory_are_refused_with_exit_2() {
    for args in [
        &["summary", "--model", "plain-mlp:depth=3,width=1000000"][..],
        &[
            "summary",
            "--model",
            "resnet:depth=8",
            "--input",
            "3x100000x100000",
        ],
        &[
            "bench",
            "--model",
            "resnet:depth=8",
            "--input",
            "3x100000x100000",
        ],
        &[
            "train",
            "--model",
            "resnet:depth=8",
            "--data",
            "patterns:n=100000000000",
        ],
        &[
            "train",
            "--model",
            "resnet:depth=8",
            "--data",
            "patterns:size=100000",
        ],
        &[
            "train",
            "--model",
            "resnet:depth=8",
            "--data",
            "digits:size=10000000000",
        ],
        &[
            "train",
            "--model",
            "resnet:depth=8,width=1000000",
            "--data",
            "digits",
        ],
        &[
            "conv-table",
            "--in",
            "100000",
            "--out",
            "100000",
            "--size",
            "64x64",
        ],
    ] {
        let out = gradlab(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
