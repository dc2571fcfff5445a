use chrono::{DateTime, Utc};

use super::*;
use crate::bpf::raw::RawEvent;
use crate::model::{ExitStatus, ProcessEventKind, SignalOrigin};

const CG: u64 = 7001; // the container's cgroup
const HOST_CG: u64 = 42; // e.g. containerd-shim's cgroup
const INIT: u32 = 3100;
const MS: u64 = 1_000_000;

fn wall(ns: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(1_700_000_000_000_000_000 + ns as i64)
}

fn fork(t: u64, parent: u32, child: u32) -> RawEvent {
    RawEvent::Fork {
        boot_ns: t,
        cgroup_id: CG,
        parent_pid: parent,
        child_pid: child,
        comm: "sh".to_string(),
    }
}

fn exec(t: u64, pid: u32, filename: &str, argv: &[&str]) -> RawEvent {
    RawEvent::Exec {
        boot_ns: t,
        cgroup_id: CG,
        pid,
        comm: filename.rsplit('/').next().unwrap_or_default().to_string(),
        filename: filename.to_string(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
    }
}

fn exit(t: u64, pid: u32, wait_status: i32) -> RawEvent {
    RawEvent::Exit {
        boot_ns: t,
        cgroup_id: CG,
        pid,
        comm: "app".to_string(),
        wait_status,
    }
}

fn signal(t: u64, target: u32, sig: i32, code: i32, sender: u32, comm: &str, cg: u64) -> RawEvent {
    RawEvent::Signal {
        boot_ns: t,
        cgroup_id: CG,
        target_pid: target,
        sig,
        code,
        sender_pid: sender,
        sender_comm: comm.to_string(),
        sender_cgroup_id: cg,
    }
}

fn oom(t: u64, pid: u32, rss: u64) -> RawEvent {
    RawEvent::OomVictim {
        boot_ns: t,
        cgroup_id: CG,
        pid,
        comm: "java".to_string(),
        rss_bytes: rss,
    }
}

fn killed_by(sig: i32) -> ExitStatus {
    ExitStatus::from_containerd(128 + sig as u32)
}

const SI_KERNEL: i32 = 0x80;
const SEGV_MAPERR: i32 = 1;
const SI_TKILL: i32 = -6;

// --- processes -----------------------------------------------------------------------------------

#[test]
fn timeline_lists_fork_exec_exit_in_time_order() {
    let events = vec![
        exec(10, INIT, "/bin/sh", &["sh", "-c", "worker; exit 3"]),
        fork(20, INIT, 3101),
        // Arrives before the exec it follows (another CPU's ring position).
        exit(40, 3101, 0),
        exec(30, 3101, "/usr/bin/worker", &["worker"]),
        signal(45, INIT, 15, 0, 1, "kubelet", HOST_CG),
        exit(50, INIT, 3 << 8),
    ];
    let p = processes(&events, wall);
    let kinds: Vec<(ProcessEventKind, u32)> = p.iter().map(|e| (e.kind, e.pid)).collect();
    assert_eq!(
        kinds,
        [
            (ProcessEventKind::Exec, INIT),
            (ProcessEventKind::Fork, 3101),
            (ProcessEventKind::Exec, 3101),
            (ProcessEventKind::Exit, 3101),
            (ProcessEventKind::Exit, INIT),
        ]
    );
    assert_eq!(p[1].ppid, Some(INIT));
    assert_eq!(p[2].filename.as_deref(), Some("/usr/bin/worker"));
    assert_eq!(p[2].argv, ["worker"]);
    assert_eq!((p[3].exit_code, p[3].signal.as_deref()), (Some(0), None));
    assert_eq!(p[4].exit_code, Some(3));
    assert_eq!(p[4].core_dumped, None);
    assert_eq!(p[4].time, wall(50));
}

#[test]
fn exec_argv_is_kept_for_the_report_to_redact() {
    // Redaction is the report's (one place, one opt-out flag): the timeline keeps what ran.
    let events = vec![exec(
        1,
        INIT,
        "/app",
        &["/app", "--db-password", "hunter2", "--port=80"],
    )];
    let p = processes(&events, wall);
    assert_eq!(p[0].argv, ["/app", "--db-password", "hunter2", "--port=80"]);
}

#[test]
fn exit_by_signal_has_signal_name_and_core_flag_not_a_code() {
    let events = vec![exit(1, INIT, 0x80 | 11), exit(2, 3101, 9)];
    let p = processes(&events, wall);
    assert_eq!(p[0].signal.as_deref(), Some("SIGSEGV"));
    assert_eq!(p[0].core_dumped, Some(true));
    assert_eq!(p[0].exit_code, None);
    assert_eq!(p[1].signal.as_deref(), Some("SIGKILL"));
    assert_eq!(p[1].core_dumped, Some(false));
}

// --- fatal signal --------------------------------------------------------------------------------

#[test]
fn sigkill_from_oom_killer_is_kernel_oom_not_host() {
    // The OOM killer sends SIGKILL with SEND_SIG_PRIV from whatever task allocated (here a process
    // of another cgroup), then marks the victim: the victim event arrives after the signal.
    let events = vec![
        signal(100 * MS, INIT, 9, SI_KERNEL, 999, "kswapd0", HOST_CG),
        oom(100 * MS + 20_000, INIT, 512 << 20),
        exit(101 * MS, INIT, 9),
    ];
    let p = fatal_signal(&events, INIT, CG, &killed_by(9), wall).unwrap();
    assert_eq!(p.origin, SignalOrigin::KernelOom);
    assert_eq!(p.signal, "SIGKILL");
    assert_eq!(
        (p.sender_pid, p.sender_comm),
        (None, None),
        "the allocating task is no sender"
    );
    assert_eq!(p.time, wall(100 * MS));
}

#[test]
fn oom_victim_before_its_sigkill_is_also_kernel_oom() {
    let events = vec![
        oom(100 * MS, INIT, 1 << 30),
        signal(100 * MS + 5_000, INIT, 9, SI_KERNEL, INIT, "java", CG),
    ];
    let p = fatal_signal(&events, INIT, CG, &killed_by(9), wall).unwrap();
    assert_eq!(p.origin, SignalOrigin::KernelOom);
}

#[test]
fn later_cleanup_sigkill_from_host_does_not_hide_the_oom_kill() {
    let events = vec![
        signal(100 * MS, INIT, 9, SI_KERNEL, 1, "java", CG),
        oom(100 * MS + 1_000, INIT, 1 << 30),
        signal(5_000 * MS, INIT, 9, 0, 77, "containerd-shim", HOST_CG),
    ];
    let p = fatal_signal(&events, INIT, CG, &killed_by(9), wall).unwrap();
    assert_eq!(p.origin, SignalOrigin::KernelOom);
    assert_eq!(p.time, wall(100 * MS));
}

#[test]
fn oom_victim_without_a_signal_event_is_still_kernel_oom() {
    let events = vec![oom(7 * MS, INIT, 1 << 30)];
    let p = fatal_signal(&events, INIT, CG, &killed_by(9), wall).unwrap();
    assert_eq!(p.origin, SignalOrigin::KernelOom);
    assert_eq!(p.time, wall(7 * MS));
}

#[test]
fn sigkill_from_host_is_host_with_sender() {
    let events = vec![signal(5 * MS, INIT, 9, 0, 812, "containerd-shim", HOST_CG)];
    let p = fatal_signal(&events, INIT, CG, &killed_by(9), wall).unwrap();
    assert_eq!(p.origin, SignalOrigin::Host);
    assert_eq!(p.sender_pid, Some(812));
    assert_eq!(p.sender_comm.as_deref(), Some("containerd-shim"));
}

#[test]
fn sigterm_from_a_sibling_process_is_container() {
    let events = vec![signal(5 * MS, INIT, 15, SI_TKILL, 3105, "supervisor", CG)];
    let p = fatal_signal(&events, INIT, CG, &killed_by(15), wall).unwrap();
    assert_eq!(p.origin, SignalOrigin::Container);
    assert_eq!(p.sender_pid, Some(3105));
}

#[test]
fn segfault_is_kernel_fault_with_core_flag() {
    let events = vec![
        signal(5 * MS, INIT, 11, SEGV_MAPERR, INIT, "app", CG),
        exit(6 * MS, INIT, 0x80 | 11),
    ];
    let status = ExitStatus::from_wait_status(0x80 | 11);
    let p = fatal_signal(&events, INIT, CG, &status, wall).unwrap();
    assert_eq!(p.origin, SignalOrigin::KernelFault);
    assert_eq!(p.signal, "SIGSEGV");
    assert_eq!(p.sender_pid, Some(INIT), "the faulting process itself");
    let timeline = processes(&events, wall);
    assert_eq!(timeline[0].core_dumped, Some(true));
}

#[test]
fn general_protection_fault_sigsegv_with_si_kernel_is_still_a_fault() {
    let events = vec![signal(5 * MS, INIT, 11, SI_KERNEL, INIT, "app", CG)];
    let p = fatal_signal(&events, INIT, CG, &killed_by(11), wall).unwrap();
    assert_eq!(p.origin, SignalOrigin::KernelFault);
}

#[test]
fn kill_dash_segv_from_host_is_host_not_a_fault() {
    let events = vec![signal(5 * MS, INIT, 11, 0, 500, "bash", HOST_CG)];
    let p = fatal_signal(&events, INIT, CG, &killed_by(11), wall).unwrap();
    assert_eq!(p.origin, SignalOrigin::Host);
}

#[test]
fn si_kernel_sigkill_without_oom_event_is_kernel_not_oom() {
    let events = vec![signal(5 * MS, INIT, 9, SI_KERNEL, 1, "init", HOST_CG)];
    let p = fatal_signal(&events, INIT, CG, &killed_by(9), wall).unwrap();
    assert_eq!(p.origin, SignalOrigin::Kernel);
    assert_eq!(p.sender_pid, None);
}

#[test]
fn sigpipe_raised_in_the_writer_is_kernel() {
    // send_sig(SIGPIPE, current, 0): SI_USER "from" the writing process itself.
    let events = vec![signal(5 * MS, INIT, 13, 0, INIT, "app", CG)];
    let p = fatal_signal(&events, INIT, CG, &killed_by(13), wall).unwrap();
    assert_eq!(p.origin, SignalOrigin::Kernel);
}

#[test]
fn last_matching_signal_decides_when_an_earlier_one_was_handled() {
    let events = vec![
        signal(MS, INIT, 15, 0, 3105, "supervisor", CG),
        signal(9 * MS, INIT, 15, 0, 812, "kubelet", HOST_CG),
    ];
    let p = fatal_signal(&events, INIT, CG, &killed_by(15), wall).unwrap();
    assert_eq!(p.origin, SignalOrigin::Host);
    assert_eq!(p.sender_comm.as_deref(), Some("kubelet"));
}

#[test]
fn signals_to_other_processes_or_of_another_kind_are_not_the_fatal_one() {
    let events = vec![
        signal(MS, 3101, 9, 0, 812, "kubelet", HOST_CG),
        signal(2 * MS, INIT, 15, 0, 812, "kubelet", HOST_CG),
        oom(3 * MS, 3101, 1 << 20),
    ];
    assert_eq!(fatal_signal(&events, INIT, CG, &killed_by(9), wall), None);
}

#[test]
fn exit_by_code_has_no_fatal_signal() {
    let events = vec![signal(MS, INIT, 15, 0, 812, "kubelet", HOST_CG)];
    let status = ExitStatus::from_containerd(1);
    assert_eq!(fatal_signal(&events, INIT, CG, &status, wall), None);
}

// --- OOM victim ----------------------------------------------------------------------------------

#[test]
fn exit_137_without_oom_event_has_no_victim() {
    let events = vec![
        exec(1, INIT, "/app", &["/app"]),
        signal(2 * MS, INIT, 9, 0, 812, "containerd-shim", HOST_CG),
        exit(3 * MS, INIT, 9),
    ];
    assert_eq!(oom_victim(&events, INIT, wall), None);
    let p = fatal_signal(&events, INIT, CG, &ExitStatus::from_containerd(137), wall).unwrap();
    assert_eq!(
        p.origin,
        SignalOrigin::Host,
        "137 alone is never an OOM kill"
    );
}

#[test]
fn oom_victim_reports_init_with_rss() {
    let events = vec![oom(3 * MS, INIT, 512 << 20)];
    let v = oom_victim(&events, INIT, wall).unwrap();
    assert_eq!(
        (v.pid, v.comm.as_str(), v.rss_bytes, v.was_init),
        (INIT, "java", 512 << 20, true)
    );
    assert_eq!(v.time, wall(3 * MS));
}

#[test]
fn oom_victim_of_a_child_is_not_init() {
    let events = vec![oom(3 * MS, 3101, 1 << 20)];
    let v = oom_victim(&events, INIT, wall).unwrap();
    assert_eq!((v.pid, v.was_init), (3101, false));
}

#[test]
fn oom_victim_prefers_the_init_process_when_several_were_chosen() {
    let events = vec![
        oom(MS, 3101, 1 << 20),
        oom(2 * MS, INIT, 2 << 20),
        oom(3 * MS, 3102, 1),
    ];
    let v = oom_victim(&events, INIT, wall).unwrap();
    assert!(v.was_init);
    let events = vec![oom(MS, 3101, 1 << 20), oom(2 * MS, 3102, 2 << 20)];
    assert_eq!(oom_victim(&events, INIT, wall).unwrap().pid, 3102);
}

// --- Robustness ----------------------------------------------------------------------------------

#[test]
fn random_events_never_panic() {
    let mut s: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for _ in 0..200 {
        let events: Vec<RawEvent> = (0..50)
            .map(|_| {
                let t = next() % 1_000_000_000;
                let pid = (next() % 3) as u32 + INIT;
                match next() % 5 {
                    0 => fork(t, pid, next() as u32),
                    1 => exec(t, pid, "/x", &["x", "--token", "y"]),
                    2 => exit(t, pid, next() as i32),
                    3 => signal(
                        t,
                        pid,
                        next() as i32 % 70,
                        next() as i32,
                        pid,
                        "s",
                        next() % 2,
                    ),
                    _ => oom(t, pid, next()),
                }
            })
            .collect();
        let _ = processes(&events, wall);
        let _ = oom_victim(&events, INIT, wall);
        for sig in [-1, 0, 9, 11, 15, 64, 127] {
            let status = ExitStatus {
                signal: Some(sig),
                ..ExitStatus::default()
            };
            let _ = fatal_signal(&events, INIT, 1, &status, wall);
        }
    }
}
