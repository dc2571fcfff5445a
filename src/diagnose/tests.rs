//! Each rule against a real report captured by `tests/diagnosis.rs`
//! (`CORONER_CAPTURE_FIXTURES=1`), and against variants of them that a real daemon cannot be
//! made to produce on demand (a report without the recorder, an old report).

use super::*;
use crate::model::{CrashReport, RecorderState};

fn fixture(name: &str) -> CrashReport {
    let path = format!(
        "{}/tests/fixtures/reports/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Diagnoses the report and checks what every diagnosis must hold: evidence that points at
/// fields the report has.
fn check(r: &CrashReport) -> Diagnosis {
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
fn without_recorder(mut r: CrashReport) -> CrashReport {
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
        processes: vec![],
        fatal_signal: None,
        oom_victim: None,
        output: None,
    };
    r
}

#[test]
fn oom_kill_of_init_names_peak_limit_and_victim() {
    let d = check(&fixture("oom_killed"));
    assert_eq!(d.cause, Cause::OomKilled);
    assert_eq!(d.confidence, Confidence::High);
    assert_eq!(
        d.summary,
        "OOM-killed after 96 ms: memory peaked at 20.0 MiB, the container's limit; \
         the kernel killed `tail` (pid 23494, 21.0 MiB RSS)"
    );
    assert_eq!(d.key.as_deref(), Some("oom tail"));
    assert_eq!(d.evidence[0].field, "/oom/kills");
}

#[test]
fn oom_kill_without_the_recorder_still_rests_on_the_cgroup_counter() {
    let d = check(&without_recorder(fixture("oom_killed")));
    assert_eq!(d.cause, Cause::OomKilled);
    assert!(
        d.summary
            .ends_with("memory peaked at 20.0 MiB, the container's limit"),
        "{}",
        d.summary
    );
}

#[test]
fn oom_kill_of_a_child_says_init_was_not_the_victim() {
    let mut r = fixture("oom_killed");
    // `sh -c 'head | tail'`: the shell is init and exits 137 itself after tail is killed.
    r.exit = crate::model::ExitStatus::from_wait_status(137 << 8);
    let victim = r.recorder.as_mut().unwrap().oom_victim.as_mut().unwrap();
    victim.was_init = false;
    let d = check(&r);
    assert_eq!(d.cause, Cause::OomKilled);
    assert!(
        d.summary
            .ends_with("not the init process, which then exited 137"),
        "{}",
        d.summary
    );
}

#[test]
fn sigkill_from_the_host_is_killed_and_not_oom() {
    let d = check(&fixture("killed_by_host"));
    assert_eq!(d.cause, Cause::Killed);
    assert_eq!(d.confidence, Confidence::High);
    assert_eq!(
        d.summary,
        "Killed by SIGKILL after 38 ms, sent by `kill_from_the_h` (pid 22321) on the host; \
         not an OOM kill: the OOM killer did not act"
    );
    assert_eq!(d.key.as_deref(), Some("SIGKILL from host"));
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
fn stop_by_the_runtime_explains_what_kubelet_does() {
    let mut r = fixture("killed_by_host");
    let sig = r.recorder.as_mut().unwrap().fatal_signal.as_mut().unwrap();
    sig.sender_comm = Some("containerd-shim".into());
    let d = check(&r);
    assert!(
        d.summary
            .contains("the container runtime stopped it (kubelet:"),
        "{}",
        d.summary
    );
}

#[test]
fn segfault_is_crashed_with_the_faulting_program() {
    let d = check(&fixture("segfault"));
    assert_eq!(d.cause, Cause::Crashed);
    assert_eq!(d.confidence, Confidence::High);
    assert_eq!(
        d.summary,
        "Crashed after <1 ms: `segv` (pid 23678) got SIGSEGV (invalid memory access)"
    );
    assert_eq!(d.key.as_deref(), Some("SIGSEGV segv"));
}

#[test]
fn segfault_without_a_sender_is_still_a_crash_with_less_confidence() {
    let d = check(&without_recorder(fixture("segfault")));
    assert_eq!(d.cause, Cause::Crashed);
    assert_eq!(d.confidence, Confidence::Medium);
    assert!(
        d.summary.contains("`/usr/local/bin/segv` got SIGSEGV"),
        "{}",
        d.summary
    );
}

#[test]
fn exec_of_a_missing_binary_is_exec_failed() {
    let d = check(&fixture("exec_failed"));
    assert_eq!(d.cause, Cause::ExecFailed);
    assert_eq!(d.confidence, Confidence::High);
    assert_eq!(
        d.summary,
        "exec of /app/bin/start failed: ENOENT (exit 127)"
    );
    assert_eq!(d.key.as_deref(), Some("execve /app/bin/start ENOENT"));
    assert!(
        d.evidence
            .iter()
            .any(|e| e.fact == "last line on stderr: sh: /app/bin/start: not found"),
        "{:#?}",
        d.evidence
    );
}

#[test]
fn exit_127_without_syscall_data_is_a_low_confidence_exec_failure() {
    let d = check(&without_recorder(fixture("exec_failed")));
    assert_eq!(d.cause, Cause::ExecFailed);
    assert_eq!(d.confidence, Confidence::Low);
    assert!(d
        .summary
        .contains("shells exit 127 when a command was not found"));
}

#[test]
fn bind_to_a_held_port_is_address_in_use() {
    let d = check(&fixture("address_in_use"));
    assert_eq!(d.cause, Cause::AddressInUse);
    assert_eq!(
        d.summary,
        "Exited 1 after 496 ms: bind(127.0.0.1:22321) = EADDRINUSE: another process holds the address"
    );
    assert_eq!(d.key.as_deref(), Some("bind 127.0.0.1:22321 EADDRINUSE"));
}

#[test]
fn flock_on_a_held_file_is_lock_held_with_the_path() {
    let d = check(&fixture("lock_held"));
    assert_eq!(d.cause, Cause::LockHeld);
    assert_eq!(
        d.summary,
        "Exited 1 after <1 ms: could not lock /dev/shm/mongod.lock: flock = EAGAIN (held by another process)"
    );
    assert_eq!(d.key.as_deref(), Some("flock /dev/shm/mongod.lock EAGAIN"));
}

#[test]
fn fork_refused_at_pids_max_is_pids_limit() {
    let d = check(&fixture("pids_limit"));
    assert_eq!(d.cause, Cause::PidsLimit);
    assert_eq!(d.confidence, Confidence::High);
    assert!(
        d.summary
            .starts_with("Exited 2 after 14 ms: could not start a process: clone"),
        "{}",
        d.summary
    );
    assert!(
        d.summary.contains("= EAGAIN, the cgroup's pids.max"),
        "{}",
        d.summary
    );
}

#[test]
fn missing_file_names_the_last_failing_syscall() {
    let d = check(&fixture("exited_error"));
    assert_eq!(d.cause, Cause::ExitedError);
    assert_eq!(d.confidence, Confidence::Medium);
    assert_eq!(
        d.summary,
        "Exited 1 after <1 ms; last failing syscall before exit: openat(\"/nonexistent\") = ENOENT"
    );
    assert_eq!(d.key.as_deref(), Some("openat /nonexistent ENOENT"));
    // runc's own failures and ERESTARTSYS around the exec are not the workload's.
    assert!(d.evidence.iter().all(|e| !e.fact.contains("futex")));
}

#[test]
fn no_syscall_data_says_the_evidence_is_thin() {
    let d = check(&fixture("exited_error_no_recorder"));
    assert_eq!(d.cause, Cause::ExitedError);
    assert_eq!(d.confidence, Confidence::Low);
    assert_eq!(
        d.summary,
        "Exited 1 after 3 ms; no syscall data (the flight recorder is disabled (--no-recorder)), \
         so nothing beyond the exit code: see the container's log"
    );
}

#[test]
fn report_from_before_the_recorder_is_diagnosed_too() {
    let mut r = fixture("exited_error");
    r.recorder = None;
    let d = check(&r);
    assert_eq!(d.confidence, Confidence::Low);
    assert!(d
        .summary
        .contains("did not exist when this report was written"));
}

#[test]
fn clean_exit_is_completed() {
    let d = check(&fixture("completed"));
    assert_eq!(d.cause, Cause::Completed);
    assert_eq!(d.summary, "Completed (exit 0) after 2 ms");
    assert_eq!(d.key, None);
}

#[test]
fn a_program_that_fails_without_a_failing_syscall_shows_its_last_words() {
    let mut r = fixture("exited_error");
    let rec = r.recorder.as_mut().unwrap();
    for e in rec
        .flight_recorder
        .iter_mut()
        .chain(&mut rec.first_failures)
    {
        e.errno = None;
    }
    let d = check(&r);
    assert_eq!(d.confidence, Confidence::Low);
    assert!(
        d.summary.ends_with(
            "the program decided to exit; last line on stderr: cat: can't open '/nonexistent': No such file or directory"
        ),
        "{}",
        d.summary
    );
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
fn routine_failures_after_the_real_one_do_not_hide_it() {
    let mut r = fixture("exited_error");
    let rec = r.recorder.as_mut().unwrap();
    let cat = rec
        .flight_recorder
        .iter()
        .rposition(|e| e.comm == "cat")
        .unwrap();
    // A shell around `cat` would wait for it, then find no child left.
    let mut wait = rec.flight_recorder[cat].clone();
    wait.syscall = "wait4".into();
    wait.args = vec!["-1".into(), "0x7ffc".into(), "0".into(), "NULL".into()];
    wait.ret = -10;
    wait.errno = Some("ECHILD".into());
    rec.flight_recorder.insert(cat + 1, wait);
    let d = check(&r);
    assert!(
        d.summary.ends_with("openat(\"/nonexistent\") = ENOENT"),
        "{}",
        d.summary
    );
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
