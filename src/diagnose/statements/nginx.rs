//! nginx: `nginx: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)`,
//! `nginx: [emerg] unknown directive "foo" in /etc/nginx/nginx.conf:3`, `open() "..." failed
//! (2: No such file or directory)`. The first `[emerg]` is the cause; nginx repeats a failed bind
//! and ends with `still could not bind()`. The error log's form, `2024/01/01 00:00:00 [emerg]
//! 7#7: ...`, is the same statement with a timestamp.

use super::{errno_kind, find_line, Found};
use crate::model::StatementKind;

pub(super) fn recognise(lines: &[&str]) -> Option<Found> {
    let (_, line) = find_line(lines, false, |l| l.contains("[emerg]"))?;
    let said = line.split("[emerg]").nth(1)?.trim();
    // `7#7: message` in the error log's form.
    let said = match said.split_once(": ") {
        Some((pid, rest)) if pid.contains('#') => rest,
        _ => said,
    };
    let kind = match errno_kind(said) {
        Some(StatementKind::OutOfMemory) | None => StatementKind::ConfigError,
        Some(k) => k,
    };
    // The error log's timestamp and pid would make every crash's words differ.
    Some(Found {
        kind,
        text: format!("nginx: [emerg] {said}"),
        detail: Some(said.to_string()),
    })
}
