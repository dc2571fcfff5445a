//! Node.js. An uncaught error prints the throwing source line, a caret, then
//! `Error: listen EADDRINUSE: address already in use :::8080` and its stack (`    at ...`), and
//! ends with `Node.js v18.19.0`. A missing module: `Error: Cannot find module 'express'`. The
//! V8 heap: `FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory`.

use super::{errno_kind, find_line, Found};
use crate::model::StatementKind;

pub(super) fn recognise(lines: &[&str]) -> Option<Found> {
    if let Some((_, line)) = find_line(lines, true, |l| {
        l.starts_with("FATAL ERROR: ") && l.contains("heap out of memory")
    }) {
        return Some(Found {
            kind: StatementKind::OutOfMemory,
            text: line.trim().to_string(),
            detail: line
                .trim()
                .strip_prefix("FATAL ERROR: ")
                .map(str::to_string),
        });
    }
    let node = lines
        .iter()
        .any(|l| l.starts_with("Node.js v") || l.contains("(node:internal/"));
    if !node {
        return None;
    }
    // The error line: the first unindented `SomeError: message` (or `Error [CODE]: message`)
    // that a stack of `    at ` frames follows within a few lines (a `Require stack:` may sit
    // between them).
    let (line, message) = lines.iter().enumerate().find_map(|(i, l)| {
        let (class, message) = l.split_once(": ")?;
        let named =
            class.ends_with("Error") || class.ends_with("Exception") || class.contains("Error [");
        let plain = !l.starts_with(' ') && !class.contains(' ') || class.contains("Error [");
        let stack = lines[i + 1..]
            .iter()
            .take(6)
            .any(|n| n.starts_with("    at "));
        (named && plain && stack).then(|| (l.trim(), message))
    })?;
    let kind = if message.starts_with("Cannot find module") {
        StatementKind::MissingModule
    } else {
        match errno_kind(message) {
            Some(StatementKind::OutOfMemory) | None => StatementKind::UncaughtException,
            Some(k) => k,
        }
    };
    Some(Found {
        kind,
        text: line.to_string(),
        detail: Some(line.to_string()),
    })
}
