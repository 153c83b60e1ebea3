//! `gradlab demo --quick` end to end: the report exists, references every
//! SVG it names, each SVG is XML whose legend leaves the data visible,
//! results.json holds the four experiments with finite numbers, the
//! verdicts that matter are there, and the printed summary fits 100
//! columns when piped.

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

    // Piped, the summary is fitted to 100 columns.
    for line in stdout.lines() {
        assert!(line.chars().count() <= 100, "too wide: {line:?}");
    }

    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    // Markdown code spans are rendered, not shown as backticks.
    assert!(!html.contains('`'), "a literal backtick in the page");
    assert!(html.contains("<code>no-signal</code>"));
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
    let mut plots = 0;
    for e in experiments.values() {
        for plot in e["plots"].as_array().unwrap() {
            let file = plot["file"].as_str().unwrap();
            let svg = std::fs::read_to_string(dir.path().join(file)).unwrap();
            check_svg(file, &svg, plot);
            plots += 1;
        }
    }
    assert_eq!(plots, svgs.len());
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

fn attr(n: &roxmltree::Node, name: &str) -> f64 {
    n.attribute(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// What the SVG of one plot can be checked for, given the plot's entry in
/// results.json (its legend, whether its x axis counts, where the legend
/// panel starts): every legend entry has a drawn series or a "diverged"
/// note; the legend lies right of all data; integer quantities have integer
/// ticks; no tick reads like "5.0"; no font is under 12 px.
fn check_svg(file: &str, svg: &str, plot: &serde_json::Value) {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let legend_left = plot["legend_left"].as_f64().unwrap();
    let texts: Vec<(f64, f64, String)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            (
                attr(&n, "x"),
                attr(&n, "y"),
                n.text().unwrap_or("").trim().to_string(),
            )
        })
        .collect();
    let legend_text: String = texts
        .iter()
        .filter(|t| t.0 >= legend_left)
        .map(|t| t.2.replace(' ', ""))
        .collect();
    for entry in plot["legend"].as_array().unwrap() {
        let label = entry["label"].as_str().unwrap();
        assert!(
            legend_text.contains(&label.replace(' ', "")),
            "{file}: legend lacks {label:?} ({legend_text})"
        );
        let drawn = entry["points_drawn"].as_u64().unwrap();
        let note = entry["note"].as_str().unwrap_or("");
        assert!(
            drawn > 0 || note.contains("diverged"),
            "{file}: {label} is in the legend but neither drawn nor said to have diverged"
        );
        assert!(
            legend_text.contains(&note.replace(' ', "")),
            "{file}: {note}"
        );
    }
    // Data left of the legend panel; in the panel only short horizontal swatches.
    for n in doc.descendants().filter(|n| n.has_tag_name("polyline")) {
        let pts: Vec<(f64, f64)> = n
            .attribute("points")
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|p| {
                let (x, y) = p.split_once(',')?;
                Some((x.parse().ok()?, y.parse().ok()?))
            })
            .collect();
        if pts.iter().any(|p| p.0 >= legend_left) {
            let swatch = pts.iter().all(|p| p.0 >= legend_left && p.1 == pts[0].1)
                && pts.last().unwrap().0 - pts[0].0 <= 30.0;
            assert!(swatch, "{file}: a line runs into the legend: {pts:?}");
        }
    }
    for n in doc.descendants().filter(|n| n.has_tag_name("rect")) {
        let (x, w) = (attr(&n, "x"), attr(&n, "width"));
        if w < legend_left && x < legend_left {
            assert!(
                x + w <= legend_left + 0.5,
                "{file}: a bar runs into the legend"
            );
        }
    }
    for n in doc.descendants().filter(|n| n.has_tag_name("circle")) {
        assert!(
            attr(&n, "cx") < legend_left,
            "{file}: a marker in the legend"
        );
    }
    // Ticks.
    let numeric: Vec<&(f64, f64, String)> = texts
        .iter()
        .filter(|t| t.0 < legend_left && t.2.parse::<f64>().is_ok())
        .collect();
    for t in &numeric {
        let s = &t.2;
        assert!(
            !(s.contains('.') && s.trim_end_matches('0').ends_with('.')),
            "{file}: tick {s:?} is a whole number written as a decimal"
        );
    }
    if plot["integer_x"].as_bool().unwrap() {
        let bottom = numeric
            .iter()
            .map(|t| t.1)
            .fold(f64::NEG_INFINITY, f64::max);
        let x_ticks: Vec<&str> = numeric
            .iter()
            .filter(|t| t.1 == bottom)
            .map(|t| t.2.as_str())
            .collect();
        assert!(x_ticks.len() >= 2, "{file}: x ticks {x_ticks:?}");
        for t in x_ticks {
            assert!(
                t.parse::<i64>().is_ok(),
                "{file}: x tick {t:?} is not an integer"
            );
        }
    }
    for n in doc.descendants().filter(|n| n.has_attribute("font-size")) {
        let size = attr(&n, "font-size");
        assert!(size >= 12.0, "{file}: {size}px text {:?}", n.text());
    }
}
