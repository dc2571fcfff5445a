//! Rust. A panic prints `thread 'main' panicked at src/main.rs:4:5:` and the message on the next
//! line (Rust 1.73 and later; `thread 'main' (10) panicked at` with the thread id since 1.9x), or
//! `thread 'main' panicked at 'message', src/main.rs:4:5` (before).
//! A failed allocation aborts with `memory allocation of N bytes failed`.

use super::{errno_kind, find_line, Found};
use crate::model::StatementKind;

pub(super) fn recognise(lines: &[&str]) -> Option<Found> {
    if let Some((_, line)) = find_line(lines, true, |l| {
        l.starts_with("memory allocation of ") && l.ends_with(" bytes failed")
    }) {
        return Some(Found {
            kind: StatementKind::OutOfMemory,
            text: line.trim().to_string(),
            detail: None,
        });
    }
    let (i, line) = find_line(lines, false, |l| {
        l.starts_with("thread '") && l.contains(" panicked at ")
    })?;
    let line = line.trim();
    let at = &line[line.find(" panicked at ")? + " panicked at ".len()..];
    let message = if let Some(quoted) = at.strip_prefix('\'') {
        // Old form: 'message', file:line:col
        quoted
            .rsplit_once("', ")
            .map_or(quoted, |(m, _)| m)
            .to_string()
    } else {
        // New form: the message is on the next lines, up to the backtrace note.
        lines[i + 1..]
            .iter()
            .take_while(|l| !l.starts_with("note: ") && !l.starts_with("stack backtrace:"))
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
            .trim()
            .to_string()
    };
    let kind = match errno_kind(&message) {
        Some(StatementKind::OutOfMemory) | None => StatementKind::Panic,
        Some(k) => k,
    };
    let text = if line.ends_with(':') && !message.is_empty() {
        format!("{line} {message}")
    } else {
        line.to_string()
    };
    Some(Found {
        kind,
        text,
        detail: (!message.is_empty()).then_some(message),
    })
}
