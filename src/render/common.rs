//! Formatting helpers shared by the renderings: byte and duration figures, times, shell quoting,
//! strace-like syscall lines, and making untrusted strings safe to print.
//!
//! Pure functions of their arguments. Sizes and durations come from [`crate::units`], as in the
//! diagnosis summaries and the web pages.

use chrono::{DateTime, Utc};

use crate::model::SyscallEvent;
pub use crate::units::{bytes, duration_ms, duration_us, offset};

/// `2026-11-23 01:03:44.236 UTC`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

/// `01:03:44.206902`: time of day in UTC with microseconds, as `strace -tt` prints it.
pub fn time_of_day(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S%.6f").to_string()
}

/// `peak` as a share of `limit`: `100.0%`.
pub fn percent(part: u64, whole: u64) -> Option<String> {
    (whole > 0).then(|| format!("{:.1}%", part as f64 * 100.0 / whole as f64))
}

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
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
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
    let ret = match &e.errno {
        Some(errno) => errno.clone(),
        None if returns_address(&e.syscall) && e.ret > 0xffff => format!("{:#x}", e.ret),
        None => e.ret.to_string(),
    };
    visible(
        &format!("{}({}) = {ret}", e.syscall, e.args.join(", ")),
        false,
    )
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

/// Greedy word wrap of one paragraph to `width` columns; words longer than a line stay whole.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for source in text.split('\n') {
        let mut line = String::new();
        for word in source.split(' ').filter(|w| !w.is_empty()) {
            let (lw, ww) = (line.chars().count(), word.chars().count());
            if lw > 0 && lw + 1 + ww > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}
