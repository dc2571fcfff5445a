//! A signal killed the init process: `crashed` for a fault the kernel raised (SIGSEGV, SIGBUS,
//! SIGILL, SIGFPE, SIGSYS, SIGTRAP) or that the process raised itself (SIGABRT); `killed` when
//! someone else sent it, named with the sender the recorder saw. OOM kills are not seen here:
//! `oom` comes first.

use super::Rule;
use crate::diagnose::evidence::{diagnosis, ev};
use crate::diagnose::facts::Facts;
use crate::model::{Cause, Confidence, Diagnosis, SignalOrigin};

pub(in crate::diagnose) struct Signal;

/// What a fault signal usually means, for the summary.
fn fault_meaning(sig: &str) -> Option<&'static str> {
    Some(match sig {
        "SIGSEGV" => "invalid memory access",
        "SIGBUS" => "bus error: a bad memory mapping, e.g. a file truncated under mmap",
        "SIGILL" => "illegal instruction: e.g. a binary built for another CPU",
        "SIGFPE" => "arithmetic fault, e.g. an integer division by zero",
        "SIGSYS" => "bad system call: e.g. blocked by seccomp",
        "SIGTRAP" => "trap: a breakpoint or a runtime's deliberate crash",
        "SIGABRT" => "abort(): the program stopped itself, e.g. a failed assertion",
        _ => return None,
    })
}

impl Rule for Signal {
    fn name(&self) -> &'static str {
        "signal"
    }

    fn diagnose(&self, f: &Facts) -> Option<Diagnosis> {
        let r = f.r;
        let sig = r.exit.signal_name.clone()?;
        let fatal = f
            .rec
            .and_then(|x| x.fatal_signal.as_ref())
            .filter(|p| p.signal == sig);
        let meaning = fault_meaning(&sig);
        let init = r.container.pid;
        let self_sent = fatal.is_some_and(|p| {
            p.origin == SignalOrigin::Container && p.sender_pid.is_some_and(|s| s == init)
        });
        let is_fault = meaning.is_some()
            && match fatal {
                Some(p) => p.origin == SignalOrigin::KernelFault || self_sent,
                // Without a sender, a fault signal is most likely the fault.
                None => true,
            };
        let core = match r.exit.core_dumped {
            Some(true) => "; it dumped core",
            _ => "",
        };
        let mut evidence = vec![f.exit_evidence()];
        if is_fault {
            let comm = fatal
                .and_then(|p| p.sender_comm.as_deref())
                .or_else(|| f.init_comm())
                .or_else(|| r.container.command.first().map(String::as_str));
            let who = match (comm, fatal.and_then(|p| p.sender_pid)) {
                (Some(c), Some(pid)) => format!("`{c}` (pid {pid})"),
                (Some(c), None) => format!("`{c}`"),
                _ => "the init process".to_string(),
            };
            let how = if self_sent || sig == "SIGABRT" {
                "raised"
            } else {
                "got"
            };
            let confidence = if fatal.is_some() {
                evidence.push(ev(
                    match fatal.map(|p| p.origin) {
                        Some(SignalOrigin::KernelFault) => {
                            format!("the kernel raised {sig} for a fault of the process itself")
                        }
                        _ => format!("the process sent {sig} to itself"),
                    },
                    "/recorder/fatal_signal",
                ));
                Confidence::High
            } else {
                Confidence::Medium
            };
            return Some(diagnosis(
                Cause::Crashed,
                confidence,
                format!(
                    "Crashed{}: {who} {how} {sig} ({}){core}",
                    f.after(),
                    meaning.unwrap_or("a fault")
                ),
                evidence,
                Some(format!("{sig} {}", comm.unwrap_or("init"))),
            ));
        }

        let not_oom = if sig == "SIGKILL" {
            "; not an OOM kill: the OOM killer did not act"
        } else {
            ""
        };
        let Some(p) = fatal else {
            let why = f.no_data_reason();
            return Some(diagnosis(
                Cause::Killed,
                if f.rec.is_some() {
                    Confidence::Medium
                } else {
                    Confidence::Low
                },
                format!(
                    "Killed by {sig}{}; the sender is unknown ({why}){not_oom}",
                    f.after()
                ),
                evidence,
                Some(format!("{sig} from unknown")),
            ));
        };
        evidence.push(ev(
            format!(
                "{sig} was sent from {}",
                match p.origin {
                    SignalOrigin::Host => "the host",
                    SignalOrigin::Container => "inside the container",
                    _ => "the kernel",
                }
            ),
            "/recorder/fatal_signal/origin",
        ));
        let sender = match (&p.sender_comm, p.sender_pid) {
            (Some(c), Some(pid)) => format!("`{c}` (pid {pid})"),
            (Some(c), None) => format!("`{c}`"),
            (None, Some(pid)) => format!("pid {pid}"),
            (None, None) => "an unknown process".to_string(),
        };
        let (from, key_origin) = match p.origin {
            SignalOrigin::Host => {
                let runtime = p.sender_comm.as_deref().is_some_and(|c| {
                    c.starts_with("containerd") || c.starts_with("runc") || c == "kubelet"
                });
                let why = if runtime {
                    ": the container runtime stopped it (kubelet: a failed liveness probe, a pod deletion, an eviction or a rollout)"
                } else {
                    ""
                };
                (format!("sent by {sender} on the host{why}"), "host")
            }
            SignalOrigin::Container => (format!("sent by {sender} in the container"), "container"),
            _ => (
                match sig.as_str() {
                    "SIGPIPE" => "raised by the kernel: it wrote to a pipe or socket nobody reads"
                        .to_string(),
                    "SIGXCPU" => {
                        "raised by the kernel: its CPU time limit (RLIMIT_CPU) ran out".to_string()
                    }
                    "SIGXFSZ" => "raised by the kernel: a file outgrew RLIMIT_FSIZE".to_string(),
                    _ => "raised by the kernel".to_string(),
                },
                "kernel",
            ),
        };
        Some(diagnosis(
            Cause::Killed,
            Confidence::High,
            format!("Killed by {sig}{}, {from}{not_oom}", f.after()),
            evidence,
            Some(format!("{sig} from {key_origin}")),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::testing::{check, fixture, without_recorder};
    use crate::model::{Cause, Confidence};

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
}
