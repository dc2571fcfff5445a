//! Probable cause: pure rules from a [`CrashReport`] to a [`Diagnosis`]. No I/O.
//!
//! The rules run in order of how decisive their evidence is, and the first that applies wins:
//!
//! 1. `oom_killed`: the kernel OOM killer acted (cgroup counter, containerd's OOM event, the
//!    recorder's victim or the fatal signal's origin). Exit code 137 alone is never enough.
//! 2. A signal killed the init process: `crashed` for a fault the kernel raised (SIGSEGV, SIGBUS,
//!    SIGILL, SIGFPE, SIGSYS, SIGTRAP) or that the process raised itself (SIGABRT); `killed` when
//!    someone else sent it, named with the sender the recorder saw.
//! 3. `completed` for exit 0.
//! 4. A non-zero exit explained by a failing syscall of the workload: `exec_failed` (execve),
//!    `lock_held` (flock/fcntl), `address_in_use` (bind), `pids_limit` (clone under pids.max).
//! 5. `exited_error` otherwise, with the last failing syscall before the exit, or with what is
//!    missing when there is no syscall data (then the confidence is `low`).
//!
//! runc's own syscalls (comm `runc*`) and the kernel-internal ERESTART* codes are never evidence;
//! routine failures (a shell's `wait4` = ECHILD, `isatty` = ENOTTY, EINTR) do not explain an exit.
//! Each rule has a test built from a real report in `tests/fixtures/reports/`.

use crate::model::{
    signal_name, Cause, Confidence, CrashReport, Diagnosis, Evidence, ProcessEventKind,
    RecorderReport, SignalOrigin, SyscallEvent,
};
use crate::units::{bytes, duration_ms as duration};

/// A failure this many workload syscalls or fewer before the end of the flight recorder counts
/// as "right before the exit".
const NEAR_EXIT: usize = 30;

pub fn diagnose(r: &CrashReport) -> Diagnosis {
    let f = Facts::new(r);
    oom(&f)
        .or_else(|| signal(&f))
        .or_else(|| completed(&f))
        .or_else(|| exec_failed(&f))
        .or_else(|| lock_held(&f))
        .or_else(|| address_in_use(&f))
        .or_else(|| pids_limit(&f))
        .unwrap_or_else(|| exited_error(&f))
}

/// The report, with the recorder's workload syscalls picked out once.
struct Facts<'a> {
    r: &'a CrashReport,
    /// The recorder's data, when it recorded the container.
    rec: Option<&'a RecorderReport>,
    /// `(index in flight_recorder, event)` of the workload's syscalls, oldest first.
    tail: Vec<(usize, &'a SyscallEvent)>,
    /// `(index in first_failures, event)` of the workload's failures.
    first: Vec<(usize, &'a SyscallEvent)>,
}

fn is_workload(e: &SyscallEvent) -> bool {
    !e.comm.starts_with("runc")
}

/// A failure that can be evidence: not the kernel-internal ERESTART* codes, not a routine one.
fn failed(e: &SyscallEvent) -> bool {
    e.errno
        .as_deref()
        .is_some_and(|n| !n.starts_with("ERESTART"))
        && !routine(e)
}

/// Failures programs meet and handle every day, which explain no exit: a shell's last `wait4`
/// (ECHILD), `isatty()` (ENOTTY), an interrupted call (an `execve` cut short by a signal too),
/// a would-block call, `lseek` on a pipe, `readlink` of a non-link.
fn routine(e: &SyscallEvent) -> bool {
    let errno = e.errno.as_deref().unwrap_or_default();
    matches!(errno, "EINTR" | "ENOTTY")
        || matches!(
            (e.syscall.as_str(), errno),
            ("wait4" | "waitid" | "waitpid", "ECHILD")
                | ("lseek", "ESPIPE")
                | ("readlink" | "readlinkat", "EINVAL")
                | ("futex", "EAGAIN" | "ETIMEDOUT")
                | (
                    "read"
                        | "recvfrom"
                        | "recvmsg"
                        | "accept"
                        | "accept4"
                        | "write"
                        | "sendto"
                        | "sendmsg",
                    "EAGAIN"
                )
        )
}

impl<'a> Facts<'a> {
    fn new(r: &'a CrashReport) -> Self {
        let rec = r.recorder.as_ref().filter(|rec| rec.state.has_data());
        let pick = |events: &'a [SyscallEvent]| -> Vec<(usize, &'a SyscallEvent)> {
            events
                .iter()
                .enumerate()
                .filter(|(_, e)| is_workload(e))
                .collect()
        };
        let tail = rec.map(|x| pick(&x.flight_recorder)).unwrap_or_default();
        let first = rec
            .map(|x| pick(&x.first_failures))
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, e)| failed(e))
            .collect();
        Facts {
            r,
            rec,
            tail,
            first,
        }
    }

    /// "after 1.2 s", or "" when the start is unknown.
    fn after(&self) -> String {
        self.r
            .lifecycle
            .runtime_ms
            .map(|ms| format!(" after {}", duration(ms)))
            .unwrap_or_default()
    }

    fn exited(&self) -> String {
        format!("Exited {}{}", self.r.exit.code, self.after())
    }

    /// The workload's failing syscalls, newest first: the flight recorder's tail, then the first
    /// failures after exec (which the tail may have overwritten).
    fn failures(&self) -> impl Iterator<Item = (String, &'a SyscallEvent)> + '_ {
        let tail = self
            .tail
            .iter()
            .rev()
            .filter(|(_, e)| failed(e))
            .map(|(i, e)| (format!("/recorder/flight_recorder/{i}"), *e));
        let first = self
            .first
            .iter()
            .rev()
            .map(|(i, e)| (format!("/recorder/first_failures/{i}"), *e));
        tail.chain(first)
    }

    fn find_failure(
        &self,
        pred: impl Fn(&SyscallEvent) -> bool,
    ) -> Option<(String, &'a SyscallEvent)> {
        self.failures().find(|(_, e)| pred(e))
    }

    /// Workload syscalls after the one at `index` in the flight recorder.
    fn calls_after(&self, field: &str) -> Option<usize> {
        let index: usize = field
            .strip_prefix("/recorder/flight_recorder/")?
            .parse()
            .ok()?;
        Some(self.tail.iter().filter(|(i, _)| *i > index).count())
    }

    fn exit_evidence(&self) -> Evidence {
        let e = &self.r.exit;
        match &e.signal_name {
            Some(sig) => ev(
                format!("the init process died of {sig}"),
                "/exit/signal_name",
            ),
            None => ev(format!("the init process exited {}", e.code), "/exit/code"),
        }
    }

    /// The failing call that explains the exit, the exit itself, and what the program said.
    fn failure_evidence(&self, field: &str, e: &SyscallEvent) -> Vec<Evidence> {
        let errno = e.errno.as_deref().unwrap_or_default();
        let mut evidence = vec![
            ev(format!("{} = {errno}", call(e)), field),
            self.exit_evidence(),
        ];
        evidence.extend(self.last_output_line());
        evidence
    }

    /// The last line the workload wrote to stderr (else stdout), as the recorder captured it.
    fn last_output_line(&self) -> Option<Evidence> {
        let out = self.rec?.output.as_ref()?;
        for (name, s) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
            let text = if s.tail.is_empty() { &s.head } else { &s.tail };
            if let Some(line) = text.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
                let field = if s.tail.is_empty() { "head" } else { "tail" };
                return Some(ev(
                    format!("last line on {name}: {}", clip(line, 160)),
                    &format!("/recorder/output/{name}/{field}"),
                ));
            }
        }
        None
    }

    /// Why there is no syscall data, for a low-confidence summary.
    fn no_data_reason(&self) -> String {
        match &self.r.recorder {
            None => "the flight recorder did not exist when this report was written".to_string(),
            Some(rec) => match &rec.reason {
                Some(reason) => reason.clone(),
                None => format!("recorder state {:?}", rec.state).to_lowercase(),
            },
        }
    }

    /// The comm of the init process as the recorder's timeline last saw it.
    fn init_comm(&self) -> Option<&'a str> {
        let pid = self.r.container.pid;
        let rec = self.rec?;
        rec.processes
            .iter()
            .rev()
            .find(|p| p.pid == pid)
            .map(|p| p.comm.as_str())
    }
}

fn ev(fact: impl Into<String>, field: &str) -> Evidence {
    Evidence {
        fact: fact.into(),
        field: field.to_string(),
    }
}

fn diagnosis(
    cause: Cause,
    confidence: Confidence,
    summary: String,
    evidence: Vec<Evidence>,
    key: Option<String>,
) -> Diagnosis {
    Diagnosis {
        cause,
        confidence,
        summary,
        evidence,
        key,
    }
}

fn oom(f: &Facts) -> Option<Diagnosis> {
    let r = f.r;
    let victim = f.rec.and_then(|x| x.oom_victim.as_ref());
    let kernel_sent = f
        .rec
        .and_then(|x| x.fatal_signal.as_ref())
        .is_some_and(|s| s.origin == SignalOrigin::KernelOom);
    if !(r.oom.killed || victim.is_some() || kernel_sent) || r.exit.is_success() {
        return None;
    }
    let mut evidence = Vec::new();
    if r.oom.killed {
        let fact = match r.oom.kills {
            Some(n) if n > 0 => format!("the memory cgroup counted {}", plural(n, "OOM kill")),
            _ => format!(
                "containerd sent {}",
                plural(r.oom.events.into(), "OOM event")
            ),
        };
        let field = if r.oom.kills.is_some_and(|n| n > 0) {
            "/oom/kills"
        } else {
            "/oom/events"
        };
        evidence.push(ev(fact, field));
    }
    if kernel_sent {
        evidence.push(ev(
            "the fatal SIGKILL came from the kernel's OOM killer",
            "/recorder/fatal_signal/origin",
        ));
    }

    let usage = r.cgroup.usage.as_ref();
    let limit = r.cgroup.limits.as_ref().and_then(|l| l.memory_limit_bytes);
    let peak = usage.and_then(|u| u.memory_peak_bytes);
    let memory = match (peak, limit) {
        (Some(p), Some(l)) => {
            evidence.push(ev(
                format!("memory peaked at {} against a {} limit", bytes(p), bytes(l)),
                "/cgroup/usage/memory_peak_bytes",
            ));
            evidence.push(ev(
                format!("the container's memory limit is {}", bytes(l)),
                "/cgroup/limits/memory_limit_bytes",
            ));
            if p >= l.saturating_sub(l / 20) {
                format!("memory peaked at {}, the container's limit", bytes(l))
            } else {
                format!(
                    "memory peaked at {} of its {} limit (the pod's or the node's memory ran out)",
                    bytes(p),
                    bytes(l)
                )
            }
        }
        (Some(p), None) => {
            evidence.push(ev(
                format!("memory peaked at {} with no container limit", bytes(p)),
                "/cgroup/usage/memory_peak_bytes",
            ));
            format!(
                "memory peaked at {} with no container limit (the pod's or the node's memory ran out)",
                bytes(p)
            )
        }
        (None, Some(l)) => {
            evidence.push(ev(
                format!("the container's memory limit is {}", bytes(l)),
                "/cgroup/limits/memory_limit_bytes",
            ));
            format!("its memory limit is {}", bytes(l))
        }
        (None, None) => "memory figures were not readable".to_string(),
    };
    let killed = match victim {
        Some(v) => {
            evidence.push(ev(
                format!(
                    "the OOM killer chose `{}` (pid {}, {} RSS){}",
                    v.comm,
                    v.pid,
                    bytes(v.rss_bytes),
                    if v.was_init { ", the init process" } else { "" }
                ),
                "/recorder/oom_victim",
            ));
            let tail = if v.was_init {
                String::new()
            } else {
                format!(
                    ", not the init process, which then {}",
                    match &r.exit.signal_name {
                        Some(sig) => format!("died of {sig}"),
                        None => format!("exited {}", r.exit.code),
                    }
                )
            };
            format!(
                "; the kernel killed `{}` (pid {}, {} RSS){tail}",
                v.comm,
                v.pid,
                bytes(v.rss_bytes)
            )
        }
        None => String::new(),
    };
    evidence.push(f.exit_evidence());
    let key = Some(match victim {
        Some(v) => format!("oom {}", v.comm),
        None => "oom".to_string(),
    });
    Some(diagnosis(
        Cause::OomKilled,
        Confidence::High,
        format!("OOM-killed{}: {memory}{killed}", f.after()),
        evidence,
        key,
    ))
}

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

fn signal(f: &Facts) -> Option<Diagnosis> {
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
                "SIGPIPE" => {
                    "raised by the kernel: it wrote to a pipe or socket nobody reads".to_string()
                }
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

fn completed(f: &Facts) -> Option<Diagnosis> {
    if !f.r.exit.is_success() {
        return None;
    }
    Some(diagnosis(
        Cause::Completed,
        Confidence::High,
        format!("Completed (exit 0){}", f.after()),
        vec![f.exit_evidence()],
        None,
    ))
}

/// `execve("/app/bin/start") = ENOENT` after which a shell exits 126/127, or the init's own
/// exec failing last.
fn exec_failed(f: &Facts) -> Option<Diagnosis> {
    let code = f.r.exit.code;
    let is_exec = |e: &SyscallEvent| matches!(e.syscall.as_str(), "execve" | "execveat");
    let shell_code = code == 126 || code == 127;
    let Some((field, e)) = f.find_failure(|e| failed(e) && is_exec(e)) else {
        if shell_code && f.rec.is_none() {
            let meaning = if code == 127 {
                "a command was not found"
            } else {
                "a command was found but could not be executed"
            };
            return Some(diagnosis(
                Cause::ExecFailed,
                Confidence::Low,
                format!(
                    "{}: shells exit {code} when {meaning}; no syscall data ({}) to name it",
                    f.exited(),
                    f.no_data_reason()
                ),
                vec![f.exit_evidence()],
                Some(format!("exit {code}")),
            ));
        }
        return None;
    };
    // A failed exec long before the exit (a PATH search that later succeeded) is not the cause.
    let last_failure = f.failures().next().map(|(fl, _)| fl) == Some(field.clone());
    if !shell_code && !last_failure {
        return None;
    }
    let path = main_arg(e);
    let errno = e.errno.clone().unwrap_or_default();
    let evidence = f.failure_evidence(&field, e);
    Some(diagnosis(
        Cause::ExecFailed,
        if shell_code {
            Confidence::High
        } else {
            Confidence::Medium
        },
        format!("exec of {path} failed: {errno} (exit {code})"),
        evidence,
        Some(format!("{} {path} {errno}", e.syscall)),
    ))
}

fn lock_held(f: &Facts) -> Option<Diagnosis> {
    let is_lock = |e: &SyscallEvent| match e.syscall.as_str() {
        "flock" => matches!(e.errno.as_deref(), Some("EAGAIN" | "EWOULDBLOCK")),
        "fcntl" | "fcntl64" => {
            matches!(e.errno.as_deref(), Some("EAGAIN" | "EACCES"))
                && e.args
                    .get(1)
                    .is_some_and(|c| c.contains("SETLK") && !c.contains("SETLKW"))
        }
        _ => false,
    };
    let (field, e) = f.find_failure(is_lock)?;
    let path = fd_path(e.args.first().map(String::as_str).unwrap_or_default());
    let errno = e.errno.clone().unwrap_or_default();
    let evidence = f.failure_evidence(&field, e);
    Some(diagnosis(
        Cause::LockHeld,
        Confidence::High,
        format!(
            "{}: could not lock {path}: {} = {errno} (held by another process)",
            f.exited(),
            e.syscall
        ),
        evidence,
        Some(format!("{} {path} {errno}", e.syscall)),
    ))
}

fn address_in_use(f: &Facts) -> Option<Diagnosis> {
    let (field, e) =
        f.find_failure(|e| e.syscall == "bind" && e.errno.as_deref() == Some("EADDRINUSE"))?;
    let addr = main_arg(e);
    let evidence = f.failure_evidence(&field, e);
    Some(diagnosis(
        Cause::AddressInUse,
        Confidence::High,
        format!(
            "{}: bind({addr}) = EADDRINUSE: another process holds the address",
            f.exited()
        ),
        evidence,
        Some(format!("bind {addr} EADDRINUSE")),
    ))
}

fn pids_limit(f: &Facts) -> Option<Diagnosis> {
    let usage = f.r.cgroup.usage.as_ref();
    let refused = usage.and_then(|u| u.pids_max_events).unwrap_or(0);
    let is_fork = |e: &SyscallEvent| {
        matches!(e.syscall.as_str(), "clone" | "clone3" | "fork" | "vfork")
            && e.errno.as_deref() == Some("EAGAIN")
    };
    let failure = f.find_failure(is_fork);
    if refused == 0 && failure.is_none() {
        return None;
    }
    let mut evidence = Vec::new();
    if refused > 0 {
        evidence.push(ev(
            format!(
                "the pids cgroup refused {} at pids.max",
                plural(refused, "fork")
            ),
            "/cgroup/usage/pids_max_events",
        ));
    }
    let max = f.r.cgroup.limits.as_ref().and_then(|l| l.pids_max);
    let peak = usage.and_then(|u| u.pids_peak);
    if let Some(p) = peak {
        evidence.push(ev(
            format!("at most {p} processes and threads ran at once"),
            "/cgroup/usage/pids_peak",
        ));
    }
    let limit = match (refused, max, peak) {
        // The container's cgroup counted nothing: the pod's pids.max (counted there) or the
        // user's RLIMIT_NPROC.
        (0, _, _) => "pids.max or the user's process limit (RLIMIT_NPROC)".to_string(),
        (_, Some(m), _) => format!("the cgroup's pids.max ({m})"),
        (_, None, Some(p)) => format!("the cgroup's pids.max (the pod's; {p} tasks at the peak)"),
        (_, None, None) => "the cgroup's pids.max".to_string(),
    };
    let what = match &failure {
        Some((field, e)) => {
            evidence.insert(0, ev(format!("{}() = EAGAIN", e.syscall), field));
            format!("{} = EAGAIN", e.syscall)
        }
        None => "fork refused".to_string(),
    };
    evidence.push(f.exit_evidence());
    Some(diagnosis(
        Cause::PidsLimit,
        if failure.is_some() && refused > 0 {
            Confidence::High
        } else {
            Confidence::Medium
        },
        format!(
            "{}: could not start a process: {what}, {limit} was reached",
            f.exited()
        ),
        evidence,
        Some("clone EAGAIN pids.max".to_string()),
    ))
}

fn exited_error(f: &Facts) -> Diagnosis {
    let r = f.r;
    let code = r.exit.code;
    let mut evidence = vec![f.exit_evidence()];
    if f.rec.is_none() {
        let why = f.no_data_reason();
        return diagnosis(
            Cause::ExitedError,
            Confidence::Low,
            format!(
                "{}; no syscall data ({why}), so nothing beyond the exit code: see the container's log",
                f.exited()
            ),
            evidence,
            Some(format!("exit {code}")),
        );
    }
    // A shell that exits 128+N after its child died of signal N.
    if let Some(child) = f.rec.and_then(|rec| {
        rec.processes.iter().rev().find(|p| {
            p.kind == ProcessEventKind::Exit
                && p.pid != r.container.pid
                && p.signal
                    .as_deref()
                    .is_some_and(|s| code > 128 && signal_name((code - 128) as i32) == s)
        })
    }) {
        let i = f
            .rec
            .map(|rec| rec.processes.iter().rposition(|p| p == child).unwrap_or(0))
            .unwrap_or(0);
        let sig = child.signal.clone().unwrap_or_default();
        evidence.insert(
            0,
            ev(
                format!("`{}` (pid {}) died of {sig}", child.comm, child.pid),
                &format!("/recorder/processes/{i}"),
            ),
        );
        return diagnosis(
            Cause::ExitedError,
            Confidence::Medium,
            format!(
                "{}: its child `{}` (pid {}) died of {sig} and the init process passed that on",
                f.exited(),
                child.comm,
                child.pid
            ),
            evidence,
            Some(format!("child {sig} {}", child.comm)),
        );
    }
    let output = f.last_output_line();
    let Some((field, e)) = f.failures().next() else {
        evidence.extend(output.clone());
        let said = output.map(|o| format!("; {}", o.fact)).unwrap_or_default();
        return diagnosis(
            Cause::ExitedError,
            Confidence::Low,
            format!(
                "{}; no syscall failed after the entrypoint's exec: the program decided to exit{said}",
                f.exited()
            ),
            evidence,
            Some(format!("exit {code}")),
        );
    };
    let errno = e.errno.clone().unwrap_or_default();
    let brief = format!("{} = {errno}", call(e));
    evidence.insert(0, ev(brief.clone(), &field));
    evidence.extend(output);
    let near = f.calls_after(&field).is_some_and(|n| n <= NEAR_EXIT);
    let (confidence, summary) = if near {
        (
            Confidence::Medium,
            format!("{}; last failing syscall before exit: {brief}", f.exited()),
        )
    } else {
        (
            Confidence::Low,
            format!(
                "{}; the last failing syscall, well before the exit, was {brief}: the program decided to exit",
                f.exited()
            ),
        )
    };
    diagnosis(
        Cause::ExitedError,
        confidence,
        summary,
        evidence,
        Some(format!("{} {} {errno}", e.syscall, main_arg(e))),
    )
}

/// The argument that says what a syscall was about: a path, an address, a file behind an fd.
fn main_arg(e: &SyscallEvent) -> String {
    let at = |i: usize| e.args.get(i).map(String::as_str).unwrap_or_default();
    let raw = match e.syscall.as_str() {
        "bind" | "connect" => at(1),
        "sendto" => at(4),
        _ => e
            .args
            .iter()
            .find(|a| a.starts_with('"'))
            .or_else(|| e.args.iter().find(|a| a.contains('<')))
            .or(e.args.first())
            .map(String::as_str)
            .unwrap_or_default(),
    };
    let raw = if raw.contains('<') {
        fd_path(raw)
    } else {
        raw.to_string()
    };
    unquote(&raw)
}

/// `execve("/app/bin/start")`, `bind(0.0.0.0:9443)`, `flock(/data/db/mongod.lock)`.
fn call(e: &SyscallEvent) -> String {
    let arg = e
        .args
        .iter()
        .find(|a| a.starts_with('"'))
        .cloned()
        .unwrap_or_else(|| main_arg(e));
    format!("{}({arg})", e.syscall)
}

/// `3</data/db/mongod.lock>` -> `/data/db/mongod.lock`; anything else unchanged.
fn fd_path(arg: &str) -> String {
    match (arg.find('<'), arg.rfind('>')) {
        (Some(a), Some(b)) if b > a => arg[a + 1..b].to_string(),
        _ => arg.to_string(),
    }
}

/// `1 OOM kill`, `3 OOM kills`.
fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests;
