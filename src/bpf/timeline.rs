//! The process story of one container from the kernel's process events: the fork/exec/exit
//! timeline, who sent the signal that killed the init process, and the OOM killer's victim.
//!
//! Pure: the caller passes the [`RawEvent`]s of one container (as they arrived) and a function from
//! boot time to wall time. Attribution rests on evidence only: an exit by SIGKILL is an OOM kill
//! when the kernel reported an OOM victim, never because of the exit code.

use chrono::{DateTime, Utc};

use super::raw::RawEvent;
use crate::model::{
    signal_name, ExitStatus, OomVictim, ProcessEvent, ProcessEventKind, SignalOrigin,
    SignalProvenance,
};

const SIGILL: i32 = 4;
const SIGTRAP: i32 = 5;
const SIGBUS: i32 = 7;
const SIGFPE: i32 = 8;
const SIGKILL: i32 = 9;
const SIGSEGV: i32 = 11;
const SIGPIPE: i32 = 13;
const SIGXFSZ: i32 = 25;
const SIGSYS: i32 = 31;

/// `si_code` values (include/uapi/asm-generic/siginfo.h).
const SI_USER: i32 = 0;
const SI_TIMER: i32 = -2;
const SI_MESGQ: i32 = -3;
const SI_ASYNCIO: i32 = -4;
const SI_SIGIO: i32 = -5;
const SI_DETHREAD: i32 = -7;

/// How far apart the OOM killer's victim event and its SIGKILL may be. The kernel sends the
/// SIGKILL and marks the victim within microseconds of each other, in an order that depends on
/// the hooks (`__oom_kill_process` signals first, then `mark_oom_victim`), so either may come
/// first.
const OOM_SIGNAL_WINDOW_NS: u64 = 1_000_000_000;

/// fork, exec and exit of every process, in time order (ties keep arrival order). Exec argv is
/// kept as the kernel copied it (`crate::report` redacts it with the command line); an exit
/// carries its code, or its signal and core-dump flag.
pub fn processes(events: &[RawEvent], wall: impl Fn(u64) -> DateTime<Utc>) -> Vec<ProcessEvent> {
    let mut out: Vec<(u64, ProcessEvent)> = events
        .iter()
        .filter_map(|e| {
            let (t, ev) = match e {
                RawEvent::Fork {
                    boot_ns,
                    parent_pid,
                    child_pid,
                    comm,
                    ..
                } => (
                    *boot_ns,
                    ProcessEvent {
                        ppid: Some(*parent_pid),
                        ..event(ProcessEventKind::Fork, *child_pid, comm, wall(*boot_ns))
                    },
                ),
                RawEvent::Exec {
                    boot_ns,
                    pid,
                    comm,
                    filename,
                    argv,
                    ..
                } => (
                    *boot_ns,
                    ProcessEvent {
                        filename: Some(filename.clone()),
                        argv: argv.clone(),
                        ..event(ProcessEventKind::Exec, *pid, comm, wall(*boot_ns))
                    },
                ),
                RawEvent::Exit {
                    boot_ns,
                    pid,
                    comm,
                    wait_status,
                    ..
                } => {
                    let status = ExitStatus::from_wait_status(*wait_status);
                    let base = event(ProcessEventKind::Exit, *pid, comm, wall(*boot_ns));
                    let ev = match status.signal {
                        Some(_) => ProcessEvent {
                            signal: status.signal_name,
                            core_dumped: status.core_dumped,
                            ..base
                        },
                        None => ProcessEvent {
                            exit_code: Some(status.code),
                            ..base
                        },
                    };
                    (*boot_ns, ev)
                }
                RawEvent::Signal { .. } | RawEvent::OomVictim { .. } => return None,
            };
            Some((t, ev))
        })
        .collect();
    out.sort_by_key(|(t, _)| *t);
    out.into_iter().map(|(_, e)| e).collect()
}

fn event(kind: ProcessEventKind, pid: u32, comm: &str, time: DateTime<Utc>) -> ProcessEvent {
    ProcessEvent {
        time,
        kind,
        pid,
        ppid: None,
        comm: comm.to_string(),
        filename: None,
        argv: Vec::new(),
        exit_code: None,
        signal: None,
        core_dumped: None,
    }
}

/// One `RawEvent::Signal`, unpacked.
struct Sig<'a> {
    boot_ns: u64,
    sig: i32,
    code: i32,
    sender_pid: u32,
    sender_comm: &'a str,
    sender_cgroup_id: u64,
}

/// Who sent the signal that killed the init process (`init_pid`, host pid namespace), when the
/// exit was a death by signal and the kernel recorded it.
///
/// - SIGKILL with an OOM victim event for the init process next to it: the OOM killer
///   ([`SignalOrigin::KernelOom`]), even when another SIGKILL (containerd's, on cleanup) came
///   later; with a victim event but no signal event, still the OOM killer, at the victim's time.
/// - Otherwise the last matching signal for the init process decides:
///   - a kernel code (`si_code > 0`) on SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP/SIGSYS: the process's
///     own fault ([`SignalOrigin::KernelFault`], sender kept: it is the faulting process);
///   - other kernel codes (`SI_KERNEL`, timers, SIGIO), and SIGPIPE/SIGXFSZ the kernel raises in
///     the writing process itself: [`SignalOrigin::Kernel`];
///   - sent by a process (`kill`, `tgkill`, `sigqueue`): [`SignalOrigin::Container`] when the
///     sender is in the container's cgroup, [`SignalOrigin::Host`] otherwise; sender kept.
pub fn fatal_signal(
    events: &[RawEvent],
    init_pid: u32,
    container_cgroup_id: u64,
    exit: &ExitStatus,
    wall: impl Fn(u64) -> DateTime<Utc>,
) -> Option<SignalProvenance> {
    let sig = exit.signal?;
    let matching: Vec<Sig> = events
        .iter()
        .filter_map(|e| match e {
            RawEvent::Signal {
                boot_ns,
                target_pid,
                sig: s,
                code,
                sender_pid,
                sender_comm,
                sender_cgroup_id,
                ..
            } if *target_pid == init_pid && *s == sig => Some(Sig {
                boot_ns: *boot_ns,
                sig: *s,
                code: *code,
                sender_pid: *sender_pid,
                sender_comm,
                sender_cgroup_id: *sender_cgroup_id,
            }),
            _ => None,
        })
        .collect();

    let provenance = |origin, sender: Option<&Sig>, boot_ns| SignalProvenance {
        signal: signal_name(sig),
        origin,
        sender_pid: sender.map(|s| s.sender_pid),
        sender_comm: sender.map(|s| s.sender_comm.to_string()),
        time: wall(boot_ns),
    };

    if sig == SIGKILL {
        let victim_times: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                RawEvent::OomVictim { boot_ns, pid, .. } if *pid == init_pid => Some(*boot_ns),
                _ => None,
            })
            .collect();
        if let Some(&victim_ns) = victim_times.last() {
            // The OOM killer's SIGKILL is sent with SEND_SIG_PRIV (SI_KERNEL); its "sender" is
            // whichever task happened to allocate, so it is not reported.
            let oom_kill = matching.iter().find(|s| {
                is_kernel_code(s.code)
                    && victim_times
                        .iter()
                        .any(|&v| v.abs_diff(s.boot_ns) <= OOM_SIGNAL_WINDOW_NS)
            });
            let at = oom_kill.map_or(victim_ns, |s| s.boot_ns);
            return Some(provenance(SignalOrigin::KernelOom, None, at));
        }
    }

    let last = matching.iter().max_by_key(|s| s.boot_ns)?;
    let fault = matches!(
        last.sig,
        SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP | SIGSYS
    );
    let self_raised = matches!(last.sig, SIGPIPE | SIGXFSZ)
        && last.code == SI_USER
        && last.sender_pid == init_pid;
    let (origin, sender) = if last.code > 0 && fault {
        (SignalOrigin::KernelFault, Some(last))
    } else if is_kernel_code(last.code) || self_raised {
        (SignalOrigin::Kernel, None)
    } else if last.sender_cgroup_id == container_cgroup_id {
        (SignalOrigin::Container, Some(last))
    } else {
        (SignalOrigin::Host, Some(last))
    };
    Some(provenance(origin, sender, last.boot_ns))
}

/// Whether `si_code` says the kernel raised the signal rather than a process's `kill`-family call:
/// positive codes (`SI_KERNEL`, fault codes), and the kernel's own negative ones.
fn is_kernel_code(code: i32) -> bool {
    code > 0
        || matches!(
            code,
            SI_TIMER | SI_MESGQ | SI_ASYNCIO | SI_SIGIO | SI_DETHREAD
        )
}

/// The process the OOM killer chose in this container: the init process if it was chosen (that
/// explains the death), else the last victim. `None` without an OOM victim event, whatever the
/// exit code says.
pub fn oom_victim(
    events: &[RawEvent],
    init_pid: u32,
    wall: impl Fn(u64) -> DateTime<Utc>,
) -> Option<OomVictim> {
    let mut victims = events.iter().filter_map(|e| match e {
        RawEvent::OomVictim {
            boot_ns,
            pid,
            comm,
            rss_bytes,
            ..
        } => Some((*boot_ns, *pid, comm, *rss_bytes)),
        _ => None,
    });
    let (boot_ns, pid, comm, rss_bytes) = victims
        .clone()
        .rfind(|v| v.1 == init_pid)
        .or_else(|| victims.next_back())?;
    Some(OomVictim {
        pid,
        comm: comm.clone(),
        rss_bytes,
        was_init: pid == init_pid,
        time: wall(boot_ns),
    })
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
