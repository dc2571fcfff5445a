//! A signal killed the init process: `crashed` for a fault the kernel raised (SIGSEGV, SIGBUS,
//! SIGILL, SIGFPE, SIGSYS, SIGTRAP) or that the process raised itself (SIGABRT); `killed` when
//! someone else sent it, named with the sender the recorder saw. OOM kills are not seen here:
//! `oom` comes first.

use super::Rule;
use crate::diagnose::evidence::{diagnosis, ev};
use crate::diagnose::facts::Facts;
use crate::model::{Cause, Confidence, CrashStack, Diagnosis, SignalOrigin};

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

/// Where the crash happened, for the summary: " in `f()` at x.c:3, called from `g()`", or the
/// address and file when the frame has no name; and the faulting address with its mapping.
fn crash_site(s: &CrashStack) -> String {
    let mut out = String::new();
    match (s.crash_site(), s.frames.first()) {
        (Some(site), _) => out.push_str(&format!(" in {site}")),
        (None, Some(f)) => {
            out.push_str(&format!(" at {}", f.address));
            if let Some(o) = &f.object {
                out.push_str(&format!(" in {o} (not symbolized)"));
            } else if let Some(id) = &f.build_id {
                out.push_str(&format!(" (build id {id})"));
            }
        }
        (None, None) => {}
    }
    if let Some(addr) = &s.fault_address {
        let mapping = match &s.fault_mapping {
            Some(m) if !m.mapped => " (no mapping there)".to_string(),
            Some(m) => format!(
                " (in {} {})",
                m.file.as_deref().unwrap_or("anonymous memory"),
                m.permissions.as_deref().unwrap_or("")
            ),
            None => String::new(),
        };
        out.push_str(&format!(", accessing {addr}{mapping}"));
    }
    out
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
            let stack = f
                .rec
                .and_then(|x| x.crash_stack.as_ref())
                .filter(|s| s.signal == sig);
            let site = stack.map(|s| {
                evidence.push(ev(
                    format!(
                        "the kernel took the stack of thread {} ({}) at the signal",
                        s.tid, s.comm
                    ),
                    "/recorder/crash_stack",
                ));
                crash_site(s)
            });
            return Some(diagnosis(
                Cause::Crashed,
                confidence,
                format!(
                    "Crashed{}: {who} {how} {sig} ({}){}{core}",
                    f.after(),
                    meaning.unwrap_or("a fault"),
                    site.unwrap_or_default()
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

    fn with_stack(symbolized: bool) -> crate::model::CrashReport {
        use crate::model::{CrashStack, FaultMapping, StackFrame};
        let mut r = fixture("segfault");
        let rec = r.recorder.as_mut().unwrap();
        let frame = |addr: &str, name: &str, line: u32| StackFrame {
            address: addr.into(),
            build_id: Some("031aa5f4".into()),
            file_offset: Some("0x1136".into()),
            object: Some("/usr/local/bin/segv".into()),
            function: symbolized.then(|| name.to_string()),
            function_offset: symbolized.then_some(4),
            source_file: symbolized.then(|| "segv.c".to_string()),
            line: symbolized.then_some(line),
        };
        rec.crash_stack = Some(CrashStack {
            time: rec.fatal_signal.as_ref().unwrap().time,
            pid: 23678,
            tid: 23678,
            comm: "segv".into(),
            signal: "SIGSEGV".into(),
            code: "SEGV_MAPERR".into(),
            fault_address: Some("0x0".into()),
            fault_mapping: Some(FaultMapping {
                mapped: false,
                start: None,
                end: None,
                permissions: None,
                file: None,
            }),
            frames: vec![
                frame("0x401136", "crash_here", 3),
                frame("0x401150", "main", 6),
            ],
            symbolization_errors: vec![],
        });
        r
    }

    #[test]
    fn segfault_with_a_stack_names_the_function_its_caller_and_the_address() {
        let d = check(&with_stack(true));
        assert_eq!(
            d.summary,
            "Crashed after <1 ms: `segv` (pid 23678) got SIGSEGV (invalid memory access) in \
             `crash_here()` at segv.c:3, called from `main()`, accessing 0x0 (no mapping there)"
        );
        assert!(d
            .evidence
            .iter()
            .any(|e| e.field == "/recorder/crash_stack"));
        assert_eq!(
            d.key.as_deref(),
            Some("SIGSEGV segv"),
            "the group key is unchanged"
        );
    }

    #[test]
    fn segfault_in_a_stripped_binary_gives_the_address_and_file() {
        let d = check(&with_stack(false));
        assert!(
            d.summary.ends_with(
                "at 0x401136 in /usr/local/bin/segv (not symbolized), accessing 0x0 (no mapping there)"
            ),
            "{}",
            d.summary
        );
    }
}
