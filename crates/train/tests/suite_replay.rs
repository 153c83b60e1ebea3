//! Live == replay: every scenario of the suite (seed 0) streams its history
//! to a `gradlab-history` file while it trains; the file read back holds
//! the same record and diagnoses to the same verdict, confidence, reasons
//! and indicators as the live run.

use gradlab_diag::{diagnose, read_history};
use gradlab_train::suite::Scenario;

#[test]
fn every_scenario_replays_from_its_history_file_to_the_same_diagnosis() {
    let dir = tempfile::tempdir().unwrap();
    for scenario in Scenario::ALL {
        let path = dir.path().join(format!("{scenario}.jsonl"));
        let live = scenario
            .run_recorded(0, &path, &mut |_| {})
            .unwrap_or_else(|e| panic!("{scenario}: {e}"));
        assert!(
            scenario.accepts(live.diagnosis.verdict),
            "{scenario}: {}",
            live.diagnosis.verdict
        );
        let read = read_history(&path).unwrap_or_else(|e| panic!("{scenario}: {e}"));
        assert!(read.warnings.is_empty(), "{scenario}: {:?}", read.warnings);
        // Equal as JSON (NaN and a missing optional value both read as null).
        assert_eq!(
            serde_json::to_string(&read.history).unwrap(),
            serde_json::to_string(&live.history).unwrap(),
            "{scenario}: the history read back differs"
        );
        let replay = diagnose(&read.history).unwrap();
        let d = &live.diagnosis;
        assert_eq!(replay.verdict, d.verdict, "{scenario}");
        assert_eq!(
            replay.confidence.to_bits(),
            d.confidence.to_bits(),
            "{scenario}"
        );
        assert_eq!(replay.reasons, d.reasons, "{scenario}");
        assert_eq!(
            serde_json::to_string(&replay).unwrap(),
            serde_json::to_string(d).unwrap(),
            "{scenario}: the diagnosis JSON differs"
        );
        println!(
            "{scenario}: {} ({:.2}) live == replay, {} lines",
            d.verdict,
            d.confidence,
            std::fs::read_to_string(&path).unwrap().lines().count()
        );
    }
}
