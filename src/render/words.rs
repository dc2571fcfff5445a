//! The wording every rendering shares, the Markdown and text postmortems and the HTML report page
//! alike: confidence, commands, syscall lines, who sent the fatal signal, the OOM victim, why
//! there is no recorder data, and how untrusted strings are made visible. Pure.
//!
//! Figures (sizes, durations, percentages, times) come from [`crate::units`]; these functions
//! put them into words. Phrases that mark up code come as a [`Line`] of the document model, so
//! each writer decides how code looks.

use chrono::{DateTime, Utc};

use crate::model::{
    CapturedOutput, Confidence, ImageCompared, ImageContent, ImageTagReport, ImageTagStatus,
    OomVictim, RecorderReport, RecorderState, SignalOrigin, SignalProvenance, Statement,
    SyscallEvent, SyscallStat,
};
use crate::units::{bytes, time_of_day, timestamp_seconds};

use super::doc::{code, prose, text, Line};

/// `high`, `medium`, `low`: shown as `confidence: high` or `high confidence`.
pub fn confidence(c: Confidence) -> &'static str {
    match c {
        Confidence::High => "high",
        Confidence::Medium => "medium",
        Confidence::Low => "low",
    }
}

/// Who made a runtime statement, as its label reads: `Python said:`, `The program said:`.
pub fn statement_by(s: &Statement) -> String {
    let label = s.runtime.label();
    let mut c = label.chars();
    let first: String = c
        .next()
        .map(|f| f.to_uppercase().collect())
        .unwrap_or_default();
    format!("{first}{} said:", c.as_str())
}

/// The label of the advice line.
pub const ADVICE: &str = "Advice:";

/// For a report written before diagnosis existed.
pub const NO_DIAGNOSIS: &str =
    "This report has no diagnosis (it was written before diagnosis existed).";

/// For a report found by reconciliation rather than seen exiting.
pub const RECOVERED: &str = "yes: found by reconciling with containerd after the agent was away; \
     figures read at exit may be missing";

/// For a report without cgroup figures.
pub const NO_CGROUP_FIGURES: &str = "No cgroup figures were collected (see Collection errors).";

/// An argv as a shell would need it typed: `sh -c 'echo done'`. Arguments with control characters
/// use ANSI-C quoting (`$'a\nb'`) so the result is always one line.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%^".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        return arg.to_string();
    }
    if arg.chars().any(char::is_control) {
        let mut out = String::from("$'");
        for c in arg.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// Replaces characters that would act on a terminal or a renderer instead of being shown
/// (escape sequences, carriage returns, bidi overrides) with a visible `\xNN` / `\u{NNNN}` form.
/// Newlines are kept when `keep_newlines`; tabs become spaces so columns stay aligned.
pub fn visible(s: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\t' => out.push_str("    "),
            c => match escaped_control(c) {
                Some(shown) => out.push_str(&shown),
                None => out.push(c),
            },
        }
    }
    out
}

/// How a character that would act instead of being shown is shown: `\x1b` for an ASCII control,
/// `\u{85}` / `\u{202e}` for other controls and bidi overrides; `None` for any other character.
/// The HTML pages escape with it too, so a hostile name reads the same everywhere.
pub fn escaped_control(c: char) -> Option<String> {
    if c.is_ascii_control() {
        Some(format!("\\x{:02x}", c as u32))
    } else if c.is_control() || is_bidi_control(c) {
        Some(format!("\\u{{{:x}}}", c as u32))
    } else {
        None
    }
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Syscalls whose return value is an address, printed in hex as strace does.
fn returns_address(syscall: &str) -> bool {
    matches!(syscall, "mmap" | "mmap2" | "mremap" | "brk" | "shmat")
}

/// `read(3, 0x7f9859604010, 8192) = 8192`, `bind(3<socket:AF_INET>, 127.0.0.1:9443, 16) = EADDRINUSE`.
pub fn syscall_call(e: &SyscallEvent) -> String {
    visible(
        &format!("{} = {}", syscall_invocation(e), syscall_return(e)),
        false,
    )
}

/// `read(3, 0x7f9859604010, 8192)`: the call without its result.
pub fn syscall_invocation(e: &SyscallEvent) -> String {
    format!("{}({})", e.syscall, e.args.join(", "))
}

/// What a syscall returned: its errno's name when it failed (`EADDRINUSE`), an address in hex
/// (`0x7f9859604000`), else the number.
pub fn syscall_return(e: &SyscallEvent) -> String {
    match &e.errno {
        Some(errno) => errno.clone(),
        None if returns_address(&e.syscall) && e.ret > 0xffff => format!("{:#x}", e.ret),
        None => e.ret.to_string(),
    }
}

/// A syscall's errnos, most frequent first: `[("EAGAIN", 3), ("ENOENT", 1)]`.
pub fn errno_counts(s: &SyscallStat) -> Vec<(&str, u64)> {
    let mut errnos: Vec<(&str, u64)> = s.errnos.iter().map(|(e, n)| (e.as_str(), *n)).collect();
    errnos.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    errnos
}

/// strace-like lines, `time pid comm syscall(args) = ret|ERRNO`, with the pid and comm columns
/// aligned across the block; a thread other than the process' main one shows as `pid/tid`.
pub fn strace_lines(events: &[SyscallEvent]) -> Vec<String> {
    let pids: Vec<String> = events
        .iter()
        .map(|e| {
            if e.tid == e.pid || e.tid == 0 {
                e.pid.to_string()
            } else {
                format!("{}/{}", e.pid, e.tid)
            }
        })
        .collect();
    let comms: Vec<String> = events.iter().map(|e| visible(&e.comm, false)).collect();
    let pid_w = pids.iter().map(|p| p.len()).max().unwrap_or(0);
    let comm_w = comms.iter().map(|c| c.chars().count()).max().unwrap_or(0);
    events
        .iter()
        .zip(pids.iter().zip(&comms))
        .map(|(e, (pid, comm))| {
            format!(
                "{} {pid:>pid_w$} {comm:<comm_w$} {}",
                time_of_day(e.time),
                syscall_call(e)
            )
        })
        .collect()
}

/// `` `SIGKILL` from the kernel's OOM killer at 01:03:44.218702 ``, `` `SIGTERM` from a process on
/// the host: pid 4242 (`kill`) at … ``.
pub fn fatal_signal(s: &SignalProvenance) -> Line {
    // `who` pid N (`comm`), for the origins that name a process.
    let process = |who: &str| {
        let mut l = vec![text(who)];
        if let Some(pid) = s.sender_pid {
            l.push(text(format!(" pid {pid}")));
        }
        if let Some(comm) = &s.sender_comm {
            l.extend([text(" ("), code(comm), text(")")]);
        }
        l
    };
    let mut line = vec![code(&s.signal), text(" from ")];
    line.extend(match s.origin {
        SignalOrigin::KernelOom => vec![text("the kernel's OOM killer")],
        SignalOrigin::KernelFault => process("the kernel, on a fault of"),
        SignalOrigin::Kernel => vec![text("the kernel")],
        SignalOrigin::Host => process("a process on the host:"),
        SignalOrigin::Container => process("a process in the container:"),
    });
    line.push(text(format!(" at {}", time_of_day(s.time))));
    line
}

/// `` pid 23494 `tail` (the container's init), resident 21.0 MiB when chosen at 01:03:44.206902 ``.
pub fn oom_victim(v: &OomVictim) -> Line {
    vec![
        text(format!("pid {} ", v.pid)),
        code(&v.comm),
        text(format!(
            "{}, resident {} when chosen at {}",
            if v.was_init {
                " (the container's init)"
            } else {
                ""
            },
            bytes(v.rss_bytes),
            time_of_day(v.time)
        )),
    ]
}

/// Why there is no syscall data, when there is none:
/// `No syscall data (flight recorder state: disabled): the flight recorder is disabled.`
pub fn recorder_gap(rec: Option<&RecorderReport>) -> Option<String> {
    let Some(rec) = rec else {
        return Some(
            "No flight recorder data: the report was written before the recorder existed.".into(),
        );
    };
    let state = match rec.state {
        RecorderState::Recorded | RecorderState::Partial => return None,
        RecorderState::NoData => "no_data",
        RecorderState::Unavailable => "unavailable",
        RecorderState::Disabled => "disabled",
    };
    let reason = rec.reason.as_deref().unwrap_or("no reason given");
    Some(format!(
        "No syscall data (flight recorder state: {state}): {reason}."
    ))
}

/// What a partial recording misses, when it is partial.
pub fn partial_note(rec: Option<&RecorderReport>) -> Option<String> {
    let rec = rec.filter(|r| r.state == RecorderState::Partial)?;
    let reason = rec.reason.as_deref().unwrap_or("no reason given");
    Some(format!("Partial recording: {reason}."))
}

/// Where the captured output comes from, before it is shown.
pub fn captured_by(out: &CapturedOutput) -> String {
    if out.captured_by == "cri-log" {
        return "Read from the tail of the container's log file after the exit, which the agent \
                did not see as it happened."
            .into();
    }
    format!(
        "Captured by {} in the kernel as the container wrote it, independent of the log pipeline.",
        out.captured_by
    )
}

/// `0.50 CPU (50000 µs per 100000 µs)`: a CFS quota.
pub fn cpu_quota(quota_us: u64, period_us: u64) -> Option<String> {
    (period_us > 0).then(|| {
        format!(
            "{:.2} CPU ({quota_us} µs per {period_us} µs)",
            quota_us as f64 / period_us as f64
        )
    })
}

/// `12 of 40 periods, 1.25 s`: CFS throttling, the time when it was read.
pub fn cpu_throttling(throttled: u64, periods: u64, throttled_us: Option<u64>) -> String {
    let time = throttled_us.map_or_else(String::new, |us| {
        format!(", {}", crate::units::duration_us(us))
    });
    format!("{throttled} of {periods} periods{time}")
}

/// `` 812 calls of 31 syscalls (4 failed) from the entrypoint's exec on, like `strace -c -f`;
/// runc's set-up made 97 more before it. ``
pub fn syscall_totals(rec: &RecorderReport) -> Line {
    let calls: u64 = rec.summary.iter().map(|s| s.calls).sum();
    let errors: u64 = rec.summary.iter().map(|s| s.errors).sum();
    prose(&format!(
        "{calls} calls of {} syscalls ({errors} failed) from the entrypoint's exec on, \
         like `strace -c -f`; runc's set-up made {} more before it.",
        rec.summary.len(),
        rec.setup_syscalls
    ))
}

/// What the node knows of the image reference at the exit, in one or two sentences (with backtick
/// code spans): a moved tag with what ran and what it names now; a removed one; or, for a tag
/// that still names what ran, when the node imported it and that newer content elsewhere is not
/// knowable from the node (a cached tag under `imagePullPolicy: IfNotPresent` is never pulled
/// again). `started`: when the container was created or started.
pub fn image_tag_statement(t: &ImageTagReport, started: Option<DateTime<Utc>>) -> String {
    let ran = t
        .ran
        .config_digest
        .as_deref()
        .or(t.ran.digest.as_deref())
        .unwrap_or("unknown content");
    let when = |c: &ImageContent| {
        c.imported_at
            .map(|at| format!(", imported at {}", timestamp_seconds(at)))
            .unwrap_or_default()
    };
    match (t.status, &t.now) {
        (ImageTagStatus::Moved, Some(now)) => {
            let now_digest = match t.compared {
                ImageCompared::Config => now.config_digest.as_deref(),
                ImageCompared::Target => now.digest.as_deref(),
            }
            .unwrap_or("other content");
            format!(
                "This container ran `{ran}`; `{}` now resolves to `{now_digest}`{}. The tag moved \
                 after the container was created: the next container started from it runs the \
                 new content.",
                t.reference,
                when(now)
            )
        }
        (ImageTagStatus::Removed, _) | (_, None) => format!(
            "This container ran `{ran}`; `{}` is no longer in the node's image store.",
            t.reference
        ),
        (ImageTagStatus::Current, Some(now)) => {
            let age = match (now.imported_at, started) {
                (Some(at), Some(s)) if s > at => {
                    format!(
                        " ({} before this container started)",
                        span((s - at).num_seconds())
                    )
                }
                _ => String::new(),
            };
            format!(
                "`{}` still resolves to what ran (`{ran}`){}{age}. Whether a registry holds newer \
                 content under this tag is not known on the node: a cached tag is not pulled \
                 again under `imagePullPolicy: IfNotPresent`.",
                t.reference,
                when(now)
            )
        }
    }
}

/// `45 s`, `12 min`, `5 h`, `3 d`: a coarse span.
fn span(s: i64) -> String {
    match s {
        ..=59 => format!("{} s", s.max(0)),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}
