//! `gradlab demo --quick` end to end: the report exists, references every
//! SVG it names, each SVG is XML, results.json holds the four experiments
//! with finite numbers, and the verdicts that matter are there.

use std::process::Command;

fn all_numbers_finite(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        serde_json::Value::Array(a) => a.iter().all(all_numbers_finite),
        serde_json::Value::Object(o) => o.values().all(all_numbers_finite),
        _ => true,
    }
}

#[test]
fn quick_demo_writes_a_complete_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["demo", "--quick", "--out"])
        .arg(dir.path())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );

    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    let svgs: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert!(svgs.len() >= 8, "{svgs:?}");
    for svg in &svgs {
        let text =
            std::fs::read_to_string(dir.path().join(svg)).unwrap_or_else(|e| panic!("{svg}: {e}"));
        let doc =
            roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{svg} is not XML: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
    }

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    let experiments = results["experiments"].as_object().unwrap();
    for name in [
        "conv-ops",
        "plain-vs-residual",
        "aux-heads",
        "capacity-vs-signal",
    ] {
        let e = &experiments[name];
        assert!(e.is_object(), "{name} missing");
        assert!(
            all_numbers_finite(&e["results"]),
            "{name} holds a non-finite number"
        );
        assert!(!e["interpretation"].as_array().unwrap().is_empty());
        assert!(html.contains(e["title"].as_str().unwrap()));
    }

    // Channel mixing measured: depthwise changes one output channel, the others all.
    let rows = experiments["conv-ops"]["results"]["rows"]
        .as_array()
        .unwrap();
    let changed: Vec<u64> = rows
        .iter()
        .map(|r| r["channels_changed"].as_u64().unwrap())
        .collect();
    assert_eq!(changed[2], 1, "depthwise keeps channels apart");
    assert!(changed[0] > 1 && changed[1] > 1 && changed[3] > 1);

    let cap = &experiments["capacity-vs-signal"]["results"];
    let cells = cap["cells"].as_array().unwrap();
    let noise: Vec<&str> = cells
        .iter()
        .filter(|c| c["data"].as_str().unwrap().ends_with("signal=0"))
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    assert!(noise.contains(&"no-signal"), "pure-noise column: {noise:?}");
    assert_eq!(cap["vanishing_contrast"]["verdict"], "vanishing");
}
