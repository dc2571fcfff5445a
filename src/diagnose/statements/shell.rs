//! POSIX shells: dash `sh: 1: foo: not found`, bash `bash: line 1: foo: command not found`,
//! busybox `sh: foo: not found`, and `Permission denied`, `cannot create /x: Read-only file
//! system`, `can't open 'x'` for a script or a redirection.

use super::{errno_kind, find_line, Found};
use crate::model::StatementKind;

pub(super) fn recognise(lines: &[&str]) -> Option<Found> {
    let (_, line) = find_line(lines, true, is_shell)?;
    let line = line.trim();
    let kind = if line.ends_with(": not found") || line.ends_with("command not found") {
        StatementKind::CommandNotFound
    } else {
        errno_kind(line).unwrap_or(StatementKind::MissingFile)
    };
    // `sh: 1: foo: not found` -> `foo`.
    let parts: Vec<&str> = line.split(": ").collect();
    let detail = parts
        .get(parts.len().saturating_sub(2))
        .map(|s| s.to_string());
    Some(Found {
        kind,
        text: line.to_string(),
        detail,
    })
}

fn is_shell(l: &str) -> bool {
    let shell = [
        "sh: ",
        "/bin/sh: ",
        "bash: ",
        "/bin/bash: ",
        "/usr/bin/sh: ",
        "dash: ",
    ]
    .iter()
    .any(|p| l.starts_with(p));
    shell
        && (l.ends_with(": not found")
            || l.ends_with("command not found")
            || l.ends_with(": Permission denied")
            || l.contains("cannot create ")
            || l.contains("can't open ")
            || l.contains("cannot open ")
            || l.ends_with("Read-only file system"))
}
