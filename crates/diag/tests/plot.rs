//! Depth-profile plots are well-formed SVG with one line per series.

use gradlab_diag::plot::{profile_svg, ProfileSeries};

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
