//! Go. A panic prints `panic: <message>` (with `[recovered]` when re-panicked) before the
//! goroutine dump; the runtime's own fatal errors print `fatal error: <message>`, e.g.
//! `fatal error: runtime: out of memory` or `all goroutines are asleep - deadlock!`. Both are
//! followed by `goroutine N [running]:`, which tells them from other programs' lines.

use super::{errno_kind, find_line, Found};
use crate::model::StatementKind;

pub(super) fn recognise(lines: &[&str]) -> Option<Found> {
    let dump = lines
        .iter()
        .any(|l| l.starts_with("goroutine ") && l.ends_with("]:"));
    let (_, line) = find_line(lines, false, |l| {
        l.starts_with("panic: ") || l.starts_with("fatal error: ")
    })?;
    // Without the goroutine dump (it may be past the captured text), the line has to be among
    // the last words, or it is some other program's "panic: " in a log.
    let near_end = lines
        .iter()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .any(|l| *l == line);
    if !dump && !near_end {
        return None;
    }
    let line = line.trim();
    let message = line
        .strip_prefix("panic: ")
        .or_else(|| line.strip_prefix("fatal error: "))
        .unwrap_or(line);
    let message = message.trim_end_matches(" [recovered]");
    let kind = if line.starts_with("fatal error: ") && message.contains("out of memory") {
        StatementKind::OutOfMemory
    } else {
        match errno_kind(message) {
            Some(StatementKind::OutOfMemory) | None => StatementKind::Panic,
            Some(k) => k,
        }
    };
    Some(Found {
        kind,
        text: line.to_string(),
        detail: Some(message.to_string()),
    })
}
