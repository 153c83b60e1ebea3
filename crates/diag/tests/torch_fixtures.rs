//! Histories written by `python/gradlab_torch.py` from real PyTorch runs on
//! the digits (`python/make_torch_fixtures.py`) get the verdict a user
//! expects: the deep sigmoid MLP vanishes at about the mean-field rate, the
//! small CNN is healthy.

use gradlab_diag::{diagnose, read_history, Activation, Verdict};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_pytorch_sigmoid_mlp_vanishes() {
    let read = read_history(fixture("torch_sigmoid_mlp.jsonl")).unwrap();
    assert!(read.warnings.is_empty());
    let h = &read.history;
    assert_eq!(h.num_classes, 10);
    assert_eq!(h.run.activation, Some(Activation::Sigmoid));
    assert!(h.run.source.as_deref().unwrap().starts_with("pytorch"));
    assert_eq!(h.steps[0].layers.len(), 12);
    assert_eq!(h.checks.len(), 4);
    let d = diagnose(h).unwrap();
    assert_eq!(d.verdict, Verdict::Vanishing, "{:#?}", d.reasons);
    // Mean-field theory for PyTorch's default init: κ = -½ ln(1/48) = 1.94.
    let kappa = d.indicators.kappa.unwrap();
    assert!((kappa - 1.94).abs() < 0.2, "κ = {kappa}");
    assert!(d.indicators.kappa_r2.unwrap() > 0.99);
}

#[test]
fn a_pytorch_cnn_that_learns_is_healthy() {
    let read = read_history(fixture("torch_cnn.jsonl")).unwrap();
    let d = diagnose(&read.history).unwrap();
    assert_eq!(d.verdict, Verdict::Healthy, "{:#?}", d.reasons);
    assert!(d.indicators.loss_to_chance.unwrap() < 0.1);
    assert!(d.indicators.val_accuracy.unwrap() > 0.9);
    assert!(d.confidence > 0.5);
}
