//! What the diagnosis tests share: real reports captured by `tests/diagnosis.rs`
//! (`CORONER_CAPTURE_FIXTURES=1`), variants of them that a real daemon cannot be made to produce
//! on demand (a report without the recorder, an old report), and the checks every diagnosis must
//! pass. Each rule's tests go through [`diagnose`], so they also hold the rule's place in the
//! order.

use super::diagnose;
use crate::model::{CrashReport, Diagnosis, RecorderReport, RecorderState};

pub(super) fn fixture(name: &str) -> CrashReport {
    let path = format!(
        "{}/tests/fixtures/reports/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Diagnoses the report and checks what every diagnosis must hold: evidence that points at
/// fields the report has.
pub(super) fn check(r: &CrashReport) -> Diagnosis {
    let d = diagnose(r);
    let json = serde_json::to_value(r).unwrap();
    assert!(!d.evidence.is_empty(), "{d:#?}");
    for e in &d.evidence {
        assert!(
            json.pointer(&e.field).is_some_and(|v| !v.is_null()),
            "evidence {e:?} points at a missing field"
        );
    }
    assert!(!d.summary.is_empty() && !d.summary.contains('\n'), "{d:#?}");
    d
}

/// The report as a node without the recorder would have written it.
pub(super) fn without_recorder(mut r: CrashReport) -> CrashReport {
    let rec = r.recorder.as_mut().unwrap();
    *rec = RecorderReport {
        state: RecorderState::Unavailable,
        reason: Some("BPF programs could not be loaded: missing CAP_BPF".into()),
        gap: None,
        summary: vec![],
        setup_syscalls: 0,
        flight_recorder: vec![],
        flight_recorder_overwritten: 0,
        first_failures: vec![],
        telling_failures: vec![],
        processes: vec![],
        fatal_signal: None,
        oom_victim: None,
        output: None,
        crash_stack: None,
    };
    r
}
