//! CPython. An uncaught exception ends with its traceback's last line,
//! `ModuleNotFoundError: No module named 'requests'`; the interpreter itself says
//! `python3: can't open file '/app/main.py': [Errno 2] No such file or directory`.

use super::{errno_kind, find_line, Found};
use crate::model::StatementKind;

pub(super) fn recognise(lines: &[&str]) -> Option<Found> {
    if let Some((_, line)) = find_line(lines, true, |l| l.contains(": can't open file ")) {
        return Some(Found {
            kind: errno_kind(line).unwrap_or(StatementKind::MissingFile),
            text: line.trim().to_string(),
            detail: None,
        });
    }
    let (start, _) = find_line(lines, true, |l| {
        l.starts_with("Traceback (most recent call last):")
    })?;
    // The exception line is the first unindented line after the traceback's frames.
    let (_, line) = lines[start + 1..]
        .iter()
        .enumerate()
        .find(|(_, l)| !l.starts_with(' ') && !l.trim().is_empty() && exception(l).is_some())?;
    let (class, message) = exception(line)?;
    let short = class.rsplit('.').next().unwrap_or(class);
    let kind = match short {
        "ModuleNotFoundError" | "ImportError" => StatementKind::MissingModule,
        "FileNotFoundError" => StatementKind::MissingFile,
        "PermissionError" => StatementKind::PermissionDenied,
        "MemoryError" => StatementKind::OutOfMemory,
        "OSError" | "IOError" => errno_kind(message).unwrap_or(StatementKind::UncaughtException),
        _ if short.starts_with("Config") || message.to_ascii_lowercase().contains("config") => {
            StatementKind::ConfigError
        }
        _ => StatementKind::UncaughtException,
    };
    Some(Found {
        kind,
        text: line.trim().to_string(),
        detail: Some(line.trim().to_string()),
    })
}

/// `(class, message)` of `pkg.SomeError: message` or a bare `KeyboardInterrupt`.
fn exception(line: &str) -> Option<(&str, &str)> {
    let (class, message) = match line.split_once(": ") {
        Some((c, m)) => (c, m),
        None => (line.trim(), ""),
    };
    let ok = !class.is_empty()
        && class
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && class
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let named = ["Error", "Exception", "Exit", "Interrupt", "Warning"]
        .iter()
        .any(|s| class.ends_with(s));
    (ok && (named || !message.is_empty())).then_some((class, message))
}
