//! The `gradlab-history` file: round trips, streaming, and bad input that
//! must give an error naming the line and the field, never a panic.

use gradlab_diag::history_file::parse_history;
use gradlab_diag::{
    diagnose, read_history, write_history, CheckRecord, DiagError, History, Recorder, RunInfo,
    Verdict,
};
use proptest::prelude::*;

/// A small recorded run: 3 layers, 3 positions, 12 steps, two checks.
fn recorded(steps: usize, blow_up_at: Option<usize>) -> Recorder {
    let mut r = Recorder::new(4);
    r.set_run_info(RunInfo {
        class_counts: Some(vec![10, 10, 10, 12]),
        source: Some("test".into()),
        ..Default::default()
    });
    for t in 0..steps {
        let bad = blow_up_at.is_some_and(|b| t >= b);
        let loss = if bad { f64::NAN } else { 1.4 - 0.01 * t as f64 };
        let mut s = r.step(t, loss);
        s.accuracy(0.25 + 0.01 * t as f64);
        for (i, name) in ["fc0", "fc1", "fc2"].iter().enumerate() {
            let l = s.layer_rms(name, 1e-3 * (i + 1) as f64, 0.1);
            if t > 0 {
                l.update_ratio = Some(1e-3);
            }
        }
        for (i, name) in ["h0", "h1", "h2"].iter().enumerate() {
            s.position(name, 0.1 * (i + 1) as f64).diversity = (t % 5 == 0).then_some(0.5);
        }
        s.grad_norm(if bad { f64::INFINITY } else { 0.01 });
        if t > 0 {
            s.cos_previous(0.1);
        }
        s.finish().unwrap();
        if t % 6 == 5 {
            r.add_check(CheckRecord {
                step: t,
                train_loss: 1.3,
                train_accuracy: 0.4,
                val_loss: Some(1.35),
                val_accuracy: Some(0.38),
                val_examples: 100,
                snr: Some(0.2),
                train_val_cos: None,
            })
            .unwrap();
        }
    }
    r
}

fn text_of(history: &History) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    write_history(&path, history).unwrap();
    std::fs::read(&path).unwrap()
}

fn json(h: &History) -> String {
    serde_json::to_string(h).unwrap()
}

fn error_of(text: &str) -> String {
    match parse_history(text.as_bytes(), "h.jsonl") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const RUN: &str = r#"{"type":"run","format":"gradlab-history","version":1,"num_classes":3}"#;
const STEP0: &str = r#"{"type":"step","step":0,"loss":1.1,"grad_norm":0.5,"layers":[{"name":"a","index":0,"grad_rms":0.1,"weight_rms":0.2},{"name":"b","index":1,"grad_rms":0.1,"weight_rms":0.2}],"positions":[{"name":"a","act_grad_rms":1.0},{"name":"b","act_grad_rms":2.0}]}"#;

fn lines(ls: &[&str]) -> String {
    ls.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn a_streamed_history_reads_back_as_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let mut r = Recorder::new(4);
    r.set_run_info(RunInfo {
        class_counts: Some(vec![10, 10, 10, 12]),
        source: Some("test".into()),
        ..Default::default()
    });
    r.stream_to(&path).unwrap();
    let full = recorded(12, None);
    for s in &full.history().steps {
        let mut b = r.step(s.step, s.loss);
        for l in &s.layers {
            b.push_layer(l.clone());
        }
        for p in &s.positions {
            b.position(&p.name, p.act_grad_rms).diversity = p.diversity;
        }
        b.grad_norm(s.grad_norm);
        if let Some(c) = s.cos_previous {
            b.cos_previous(c);
        }
        if let Some(a) = s.accuracy {
            b.accuracy(a);
        }
        b.finish().unwrap();
        // Every complete line is on disk after each record.
        let on_disk = read_history(&path).unwrap();
        assert_eq!(on_disk.history.steps.len(), s.step + 1);
    }
    for c in &full.history().checks {
        r.add_check(c.clone()).unwrap();
    }
    r.set_shuffle_control(vec![(10, 1.38), (11, f64::NAN)])
        .unwrap();
    r.set_depth_control("resnet:depth=8".into(), vec![(10, 0.2), (11, f64::NAN)])
        .unwrap();
    let read = read_history(&path).unwrap();
    assert!(read.warnings.is_empty());
    let mut expected = full.history().clone();
    expected.shuffle_control = Some(vec![(10, 1.38), (11, f64::NAN)]);
    expected.depth_control = Some(gradlab_diag::DepthControl {
        model: "resnet:depth=8".into(),
        losses: vec![(10, 0.2), (11, f64::NAN)],
    });
    assert_eq!(json(&read.history), json(&expected));
    assert_eq!(read.history.run.class_counts, Some(vec![10, 10, 10, 12]));
    assert!(
        (read.history.chance_loss - expected.chance_loss).abs() == 0.0,
        "chance from the class counts"
    );
    let (a, b) = (
        diagnose(&read.history).unwrap(),
        diagnose(&expected).unwrap(),
    );
    assert_eq!(a.verdict, b.verdict);
    assert_eq!(a.reasons, b.reasons);
    assert_eq!(a.confidence.to_bits(), b.confidence.to_bits());
}

#[test]
fn a_run_that_blew_up_reads_back_non_finite_and_diagnoses_as_exploding() {
    let h = recorded(12, Some(9)).into_history();
    let text = String::from_utf8(text_of(&h)).unwrap();
    assert!(text.contains(r#""loss":null"#) && text.contains(r#""non_finite":true"#));
    let read = parse_history(text.as_bytes(), "h").unwrap().history;
    assert!(read.steps[9].non_finite && read.steps[9].loss.is_nan());
    assert_eq!(diagnose(&read).unwrap().verdict, Verdict::Exploding);
    // A foreign writer that only writes null losses, without the flag.
    let nan = lines(&[
        RUN,
        STEP0,
        &STEP0
            .replace(r#""step":0"#, r#""step":1"#)
            .replace(r#""loss":1.1"#, r#""loss":null"#),
    ]);
    let read = parse_history(nan.as_bytes(), "h").unwrap().history;
    assert!(read.steps[1].non_finite);
    assert_eq!(diagnose(&read).unwrap().verdict, Verdict::Exploding);
}

#[test]
fn a_torn_last_line_is_ignored_with_a_warning() {
    let bytes = text_of(&recorded(6, None).into_history());
    let cut = bytes.len() - 40;
    // The last line is the check after step 5: it is the one torn.
    let read = parse_history(&bytes[..cut], "h.jsonl").unwrap();
    assert_eq!(read.history.steps.len(), 6);
    assert!(read.history.checks.is_empty());
    assert_eq!(read.warnings.len(), 1);
    assert!(read.warnings[0].contains("torn"), "{:?}", read.warnings);
}

#[test]
fn unknown_fields_and_record_types_are_ignored() {
    let text = lines(&[
        &RUN.replace(r#""num_classes":3"#, r#""num_classes":3,"framework":"jax""#),
        r#"{"type":"gpu_memory","step":0,"bytes":123}"#,
        &STEP0.replace(r#""loss":1.1"#, r#""loss":1.1,"lr":0.1"#),
    ]);
    let read = parse_history(text.as_bytes(), "h").unwrap();
    assert_eq!(read.history.steps.len(), 1);
}

#[test]
fn bad_files_name_the_line_and_the_field() {
    let cases: Vec<(String, &[&str])> = vec![
        (String::new(), &["line 1", "empty"]),
        ("\n\n".into(), &["line 1", "empty"]),
        (lines(&[RUN]), &["line 2", "no step"]),
        (
            "\u{0}\u{1}\u{2}\u{ff}binary\n".into(),
            &["line 1", "not valid JSON"],
        ),
        (
            String::from_utf8_lossy(&[0x89, b'P', b'N', b'G', 0xff, 0xfe, b'\n']).into_owned(),
            &["line 1"],
        ),
        (lines(&[STEP0]), &["line 1", "type", "run line"]),
        (
            lines(&[&RUN.replace("gradlab-history", "wandb"), STEP0]),
            &["line 1", "format", "wandb"],
        ),
        (
            lines(&[&RUN.replace(r#""version":1"#, r#""version":2"#), STEP0]),
            &["line 1", "version", "newer"],
        ),
        (
            lines(&[
                &RUN.replace(r#""num_classes":3"#, r#""num_classes":1"#),
                STEP0,
            ]),
            &["line 1", "num_classes", "at least 2"],
        ),
        (
            lines(&[&RUN.replace(r#","num_classes":3"#, ""), STEP0]),
            &["line 1", "num_classes", "missing"],
        ),
        (
            lines(&[
                &RUN.replace(
                    r#""num_classes":3"#,
                    r#""num_classes":3,"class_counts":[1,2]"#,
                ),
                STEP0,
            ]),
            &["line 1", "class_counts", "2 counts for 3 classes"],
        ),
        (
            lines(&[
                &RUN.replace(
                    r#""num_classes":3"#,
                    r#""num_classes":3,"activation":"swish""#,
                ),
                STEP0,
            ]),
            &["line 1", "activation", "swish"],
        ),
        (
            lines(&[RUN, &STEP0.replace(r#""loss":1.1,"#, "")]),
            &["line 2", "`loss`", "missing"],
        ),
        (
            lines(&[RUN, &STEP0.replace(r#""grad_norm":0.5,"#, "")]),
            &["line 2", "`grad_norm`", "missing"],
        ),
        (
            lines(&[
                RUN,
                &STEP0.replacen(r#""grad_rms":0.1"#, r#""grad_rms":-0.1"#, 1),
            ]),
            &["line 2", "`layers[0].grad_rms`", "negative"],
        ),
        (
            lines(&[
                RUN,
                &STEP0.replacen(r#""grad_rms":0.1"#, r#""grad_rms":"big""#, 1),
            ]),
            &["line 2", "`layers[0].grad_rms`", "expected a number"],
        ),
        (
            lines(&[
                RUN,
                &STEP0.replace(r#""act_grad_rms":2.0"#, r#""act_grad_rms":-2.0"#),
            ]),
            &["line 2", "`positions[1].act_grad_rms`", "negative"],
        ),
        (
            lines(&[RUN, &STEP0.replace(r#""step":0"#, r#""step":-1"#)]),
            &["line 2", "`step`", "non-negative integer"],
        ),
        (
            lines(&[
                RUN,
                &STEP0.replace(r#""loss":1.1"#, r#""loss":1.1,"accuracy":7"#),
            ]),
            &["line 2", "`accuracy`", "[0, 1]"],
        ),
        (
            lines(&[
                RUN,
                STEP0,
                &STEP0
                    .replace(r#""step":0"#, r#""step":1"#)
                    .replace(r#""name":"b","index":1"#, r#""name":"c","index":1"#),
            ]),
            &["line 3", "`layers`", "differ"],
        ),
        (
            lines(&[
                RUN,
                STEP0,
                &STEP0
                    .replace(r#""step":0"#, r#""step":1"#)
                    .replace(r#",{"name":"b","act_grad_rms":2.0}"#, ""),
            ]),
            &["line 3", "`positions`", "differ"],
        ),
        (
            lines(&[RUN, STEP0, STEP0]),
            &["line 3", "`step`", "does not come after"],
        ),
        (lines(&[RUN, STEP0, RUN]), &["line 3", "second run line"]),
        (
            lines(&[RUN, STEP0, r#"{"type":"check","step":0,"train_loss":1.0}"#]),
            &["line 3", "`train_accuracy`", "missing"],
        ),
        (
            lines(&[RUN, STEP0, "[1, 2, 3]"]),
            &["line 3", "not a JSON object"],
        ),
        (
            lines(&[RUN, STEP0, r#"{"step":1}"#]),
            &["line 3", "`type`", "missing"],
        ),
        (
            lines(&[RUN, "{\"type\":\"step\",", STEP0]),
            &["line 2", "not valid JSON"],
        ),
    ];
    for (text, wanted) in cases {
        let e = error_of(&text);
        for w in wanted {
            assert!(e.contains(w), "{e:?} should contain {w:?} (input {text:?})");
        }
        assert!(e.starts_with("h.jsonl line "), "{e}");
    }
}

#[test]
fn depth_control_lines_of_two_references_are_refused() {
    let text = String::from_utf8(valid_text()).unwrap()
        + "{\"type\":\"depth_control\",\"model\":\"resnet:depth=8\",\"step\":10,\"loss\":0.3}\n"
        + "{\"type\":\"depth_control\",\"model\":\"resnet:depth=14\",\"step\":11,\"loss\":0.3}\n";
    let e = error_of(&text);
    assert!(
        e.contains("model") && e.contains("resnet:depth=14") && e.contains("one control"),
        "{e}"
    );
}

#[test]
fn a_missing_file_is_an_io_error() {
    let e = read_history("/nonexistent/h.jsonl").unwrap_err();
    assert!(matches!(e, DiagError::Io { .. }), "{e}");
}

#[test]
fn the_builder_refuses_what_the_reader_refuses() {
    let mut r = Recorder::new(3);
    let mut s = r.step(0, 1.0);
    s.layer_rms("a", -1.0, 0.1);
    s.grad_norm(1.0);
    let e = s.finish().unwrap_err().to_string();
    assert!(
        e.contains("layers[0].grad_rms") && e.contains("negative"),
        "{e}"
    );
    let mut s = r.step(0, 1.0);
    s.layer_rms("a", 0.1, 0.1);
    let e = s.finish().unwrap_err().to_string();
    assert!(e.contains("grad_norm"), "{e}");
    let mut s = r.step(0, 1.0);
    s.layer_rms("a", 0.0, 0.1);
    s.grad_norm(0.0);
    assert!(matches!(
        s.finish().unwrap_err(),
        DiagError::AllZeroGradients { step: 0, .. }
    ));
    let mut s = r.step(0, 1.0);
    s.layer("a", &[0.1, -0.1], &[1.0, 1.0]);
    s.finish().unwrap();
    let mut s = r.step(1, 1.0);
    s.layer("b", &[0.1, -0.1], &[1.0, 1.0]);
    let e = s.finish().unwrap_err().to_string();
    assert!(e.contains("layers") && e.contains("differ"), "{e}");
    let mut s = r.step(0, 1.0);
    s.layer("a", &[0.1, -0.1], &[1.0, 1.0]);
    let e = s.finish().unwrap_err().to_string();
    assert!(e.contains("does not come after"), "{e}");
    // The refused records left nothing behind.
    assert_eq!(r.history().steps.len(), 1);
    let mut s = r.step(1, 1.0);
    s.layer("a", &[0.1, -0.1], &[1.0, 1.1]);
    let rec = s.finish().unwrap();
    assert!((rec.layers[0].update_ratio.unwrap() - 0.1 / (2.21f64).sqrt()).abs() < 1e-6);
    assert!((rec.cos_previous.unwrap() - 1.0).abs() < 1e-12);
}

fn valid_text() -> Vec<u8> {
    let mut r = recorded(12, None);
    r.set_probe(gradlab_diag::ProbeResult {
        linear_accuracy: 0.5,
        knn_accuracy: 0.6,
        accuracy: 0.6,
        chance: 0.25,
        n_val: 100,
        p_value: 1e-9,
        beats_chance: true,
    })
    .unwrap();
    r.set_shuffle_control(vec![(10, 1.4), (11, 1.39)]).unwrap();
    text_of(&r.into_history())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Cut anywhere: a complete prefix reads (a torn line is skipped with a
    /// warning), anything else is an error that names a line; never a panic.
    #[test]
    fn a_truncated_file_reads_or_names_the_line(cut in 0usize..4000) {
        let text = valid_text();
        let cut = cut.min(text.len());
        match parse_history(&text[..cut], "h") {
            Ok(read) => {
                prop_assert!(!read.history.steps.is_empty());
                diagnose(&read.history).unwrap();
            }
            Err(e) => prop_assert!(e.to_string().starts_with("h line "), "{}", e),
        }
    }

    /// Bytes overwritten anywhere: read or refused, never a panic, and a
    /// history that reads also diagnoses.
    #[test]
    fn a_damaged_file_reads_or_names_the_line(
        edits in proptest::collection::vec((0usize..4000, any::<u8>()), 1..8)
    ) {
        let mut text = valid_text();
        let n = text.len();
        for (at, byte) in edits {
            text[at % n] = byte;
        }
        match parse_history(&text, "h") {
            Ok(read) => {
                let _ = diagnose(&read.history);
            }
            Err(e) => prop_assert!(e.to_string().starts_with("h line "), "{}", e),
        }
    }

    /// Lines dropped or repeated: read or refused with a line, never a panic.
    #[test]
    fn shuffled_lines_read_or_name_the_line(
        picks in proptest::collection::vec(0usize..32, 0..24)
    ) {
        let text = String::from_utf8(valid_text()).unwrap();
        let all: Vec<&str> = text.lines().collect();
        let chosen: String = picks.iter().map(|&i| format!("{}\n", all[i % all.len()])).collect();
        match parse_history(chosen.as_bytes(), "h") {
            Ok(read) => {
                let _ = diagnose(&read.history);
            }
            Err(e) => prop_assert!(e.to_string().starts_with("h line "), "{}", e),
        }
    }

    /// Any numbers in the numeric fields: negative RMS values are refused,
    /// everything else reads and diagnoses without a panic.
    #[test]
    fn arbitrary_numbers_read_or_are_refused(
        loss in prop_oneof![Just(f64::NAN), -1e300f64..1e300],
        grad in -10.0f64..10.0,
        act in -10.0f64..10.0,
    ) {
        let step = STEP0
            .replace(r#""loss":1.1"#, &format!(r#""loss":{}"#, if loss.is_nan() { "null".into() } else { loss.to_string() }))
            .replacen(r#""grad_rms":0.1"#, &format!(r#""grad_rms":{grad}"#), 1)
            .replacen(r#""act_grad_rms":1.0"#, &format!(r#""act_grad_rms":{act}"#), 1);
        let text = lines(&[RUN, &step]);
        match parse_history(text.as_bytes(), "h") {
            Ok(read) => {
                prop_assert!(grad >= 0.0 && act >= 0.0);
                let _ = diagnose(&read.history);
            }
            Err(e) => {
                prop_assert!(grad < 0.0 || act < 0.0, "{}", e);
                prop_assert!(e.to_string().contains("negative"), "{}", e);
            }
        }
    }
}
