//! What no single rule owns: which rule wins when more than one could answer, the order of
//! [`RULES`] itself, and every fixture at once. Each rule's own tests are in its file.

use super::testing::{check, fixture, without_recorder};
use super::{FALLBACK, RULES};
use crate::model::{Cause, Confidence};

#[test]
fn rules_run_in_the_documented_order_with_unique_names() {
    let names: Vec<&str> = RULES
        .iter()
        .map(|rule| rule.name())
        .chain([FALLBACK.name()])
        .collect();
    // The order documented on `RULES`: changing it changes which cause a report gets.
    assert_eq!(
        names,
        [
            "start_failed",
            "oom",
            "runtime_abort",
            "signal",
            "completed",
            "exec_failed",
            "lock_held",
            "runtime_statement",
            "address_in_use",
            "pids_limit",
            "exited_error",
        ]
    );
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
}

#[test]
fn exit_137_without_any_evidence_is_never_called_oom() {
    let d = check(&without_recorder(fixture("killed_by_host")));
    assert_eq!(d.cause, Cause::Killed);
    assert_eq!(d.confidence, Confidence::Low);
    assert!(d
        .summary
        .contains("the sender is unknown (BPF programs could not be loaded"));
    assert!(d.summary.contains("not an OOM kill"));
}

#[test]
fn every_fixture_gets_a_cause_whose_name_round_trips() {
    for name in [
        "address_in_use",
        "completed",
        "exec_failed",
        "exited_error",
        "exited_error_no_recorder",
        "killed_by_host",
        "lock_held",
        "oom_killed",
        "pids_limit",
        "segfault",
    ] {
        let d = check(&fixture(name));
        assert_eq!(Cause::parse(d.cause.as_str()), Some(d.cause), "{name}");
        let json = serde_json::to_value(d.cause).unwrap();
        assert_eq!(json, d.cause.as_str(), "{name}");
    }
}

#[test]
fn an_exec_interrupted_by_a_signal_is_not_an_exec_failure() {
    // Seen in CI: under pids.max, busybox sh's last fork child had its execve("/proc/self/exe")
    // cut short (EINTR) after the clone that failed with EAGAIN.
    let mut r = fixture("pids_limit");
    let rec = r.recorder.as_mut().unwrap();
    let mut exec = rec.flight_recorder.last().unwrap().clone();
    exec.syscall = "execve".into();
    exec.args = vec!["\"/proc/self/exe\"".into(), "[...]".into(), "[...]".into()];
    exec.ret = -4;
    exec.errno = Some("EINTR".into());
    rec.flight_recorder.push(exec);
    let d = check(&r);
    assert_eq!(d.cause, Cause::PidsLimit, "{d:#?}");
}

#[test]
fn a_childs_exec_failing_under_the_pids_limit_is_not_an_exec_failure() {
    // Seen on the trixie VM node (cgroup v2, pids.max 20): the fork loop's last child had its
    // execve("/proc/self/exe") fail with E2BIG (and ENOEXEC on sid) after forks were refused.
    for errno in ["E2BIG", "ENOEXEC"] {
        let mut r = fixture("pids_limit");
        let rec = r.recorder.as_mut().unwrap();
        let mut exec = rec.flight_recorder.last().unwrap().clone();
        exec.syscall = "execve".into();
        exec.args = vec!["\"/proc/self/exe\"".into(), "[...]".into(), "[...]".into()];
        exec.ret = if errno == "E2BIG" { -7 } else { -8 };
        exec.errno = Some(errno.into());
        rec.flight_recorder.push(exec.clone());
        rec.first_failures.push(exec);
        let d = check(&r);
        assert_eq!(d.cause, Cause::PidsLimit, "{errno}: {d:#?}");
    }
}
