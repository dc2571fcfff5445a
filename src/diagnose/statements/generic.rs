//! Any other program's last words that name themselves fatal: `FATAL: ...`, `[FATAL]`,
//! `panic: ...`, `Fatal error: ...`, or last words saying the address is taken (a Go
//! `log.Fatal(err)`: `listen tcp :8080: bind: address already in use`). Progress lines a dying program prints are not
//! statements.

use super::{errno_kind, find_line, Found};
use crate::model::StatementKind;

/// Lines runtimes print while dying that say nothing of why.
const PROGRESS: [&str; 3] = [
    "Crash dump is being written to",
    "Crash dump was written to",
    "Aborted (core dumped)",
];

pub(super) fn recognise(lines: &[&str]) -> Option<Found> {
    let candidate = |l: &str| {
        let t = l.trim();
        !t.is_empty() && !PROGRESS.iter().any(|p| t.starts_with(p))
    };
    // A fatal line anywhere, the last one winning.
    if let Some((_, line)) = find_line(lines, true, |l| candidate(l) && fatal(l)) {
        let line = without_timestamp(line.trim());
        return Some(Found {
            kind: errno_kind(line).unwrap_or(StatementKind::Fatal),
            text: line.to_string(),
            detail: None,
        });
    }
    // Else the last words, when they say the address is taken (Go's `log.Fatal(err)` of a
    // listener). Other errno words in a last line (`cat: can't open ...`) are left to the
    // failing syscall that says the same, so a routine tool's complaint is not a statement.
    let last = lines.iter().rev().find(|l| candidate(l))?.trim();
    let kind = errno_kind(last).filter(|k| *k == StatementKind::AddressInUse)?;
    Some(Found {
        kind,
        text: without_timestamp(last).to_string(),
        detail: None,
    })
}

/// `listen tcp :8080: ...` of Go's `2024/01/02 15:04:05 listen tcp :8080: ...`: a timestamp
/// would make every crash's words, and its crash-loop key, differ.
fn without_timestamp(line: &str) -> &str {
    let b = line.as_bytes();
    let stamp = b.len() > 20
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'/',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if stamp {
        line[19..].trim_start()
    } else {
        line
    }
}

fn fatal(l: &str) -> bool {
    let words = [
        "FATAL",
        "[fatal]",
        "Fatal error",
        "fatal error",
        "PANIC",
        "panic: ",
    ];
    words.iter().any(|w| l.contains(w))
}
