//! Line charts and depth-profile plots are well-formed SVG with one line per
//! series; what cannot be drawn is an error.

use gradlab_diag::plot::{line_chart, profile_svg, Line, LineChartStyle, ProfileSeries};

#[test]
fn profile_plot_is_valid_svg_with_its_series() {
    let series = vec![
        ProfileSeries {
            label: "plain".into(),
            values: (0..10).map(|l| (-1.9 * (9 - l) as f64).exp()).collect(),
            dashed: false,
        },
        ProfileSeries {
            label: "residual".into(),
            values: vec![1e-2; 10],
            dashed: true,
        },
    ];
    let svg = profile_svg("gradient flow", "RMS", &series).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let text: String = doc.descendants().filter_map(|n| n.text()).collect();
    assert!(text.contains("plain") && text.contains("residual") && text.contains("gradient flow"));
    let lines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(lines >= 2, "{lines} polylines");
    // A dot on each of the 20 values.
    let dots = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .count();
    assert!(dots >= 20, "{dots} dots");
}

#[test]
fn nothing_to_draw_is_an_error() {
    let empty = [ProfileSeries {
        label: "dead".into(),
        values: vec![0.0, 0.0],
        dashed: false,
    }];
    assert!(profile_svg("t", "y", &empty).is_err());
    assert!(profile_svg("t", "y", &[]).is_err());
}

#[test]
fn line_chart_draws_each_line_and_skips_what_its_axis_cannot_show() {
    let lines = vec![
        Line {
            label: "train".into(),
            points: vec![(0.0, 0.5), (1.0, f64::NAN), (2.0, 0.9)],
            dashed: true,
            ..Line::default()
        },
        Line {
            label: "held-out".into(),
            points: vec![(0.0, 0.4), (1.0, 0.6), (2.0, -0.1)],
            dashed: false,
            ..Line::default()
        },
    ];
    for log_y in [false, true] {
        let style = LineChartStyle {
            log_y,
            ..LineChartStyle::default()
        };
        let svg = line_chart("accuracy", "step", "accuracy", &lines, style).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let text: String = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(text.contains("train") && text.contains("held-out") && text.contains("accuracy"));
        // No marker unless asked for.
        assert_eq!(
            doc.descendants()
                .filter(|n| n.has_tag_name("circle"))
                .count(),
            0
        );
    }
    // On a log axis only non-positive or non-finite values: nothing to draw.
    let bad = [Line {
        label: "x".into(),
        points: vec![(0.0, 0.0), (1.0, -1.0), (f64::INFINITY, 1.0)],
        dashed: false,
        ..Line::default()
    }];
    let log = LineChartStyle {
        log_y: true,
        ..LineChartStyle::default()
    };
    assert!(line_chart("t", "x", "y", &bad, log).is_err());
    assert!(line_chart("t", "x", "y", &[], LineChartStyle::default()).is_err());
}
