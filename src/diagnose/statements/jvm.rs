//! The JVM and its launcher: `Exception in thread "main" java.net.BindException: Address already
//! in use` (the root cause is the last `Caused by:` line), `Error: Could not find or load main
//! class Foo`, `java.lang.OutOfMemoryError: Java heap space`, `Error: Unable to access jarfile
//! app.jar`, and `Error occurred during initialization of VM` followed by the reason.

use super::{errno_kind, find_line, Found};
use crate::model::StatementKind;

pub(super) fn recognise(lines: &[&str]) -> Option<Found> {
    if let Some((i, line)) = find_line(lines, false, |l| {
        l.starts_with("Error: Could not find or load main class")
    }) {
        let cause = lines[i + 1..]
            .iter()
            .find_map(|l| l.trim().strip_prefix("Caused by: "));
        return Some(Found {
            kind: StatementKind::MissingModule,
            text: line.trim().to_string(),
            detail: cause
                .or_else(|| line.rsplit(' ').next())
                .map(str::to_string),
        });
    }
    if let Some((_, line)) = find_line(lines, false, |l| {
        l.starts_with("Error: Unable to access jarfile")
    }) {
        return Some(Found {
            kind: StatementKind::MissingFile,
            text: line.trim().to_string(),
            detail: line.rsplit(' ').next().map(str::to_string),
        });
    }
    if let Some((i, line)) = find_line(lines, false, |l| {
        l.starts_with("Error occurred during initialization of VM")
    }) {
        let why = lines.get(i + 1).map(|l| l.trim()).filter(|l| !l.is_empty());
        let text = match why {
            Some(w) => format!("{}: {w}", line.trim()),
            None => line.trim().to_string(),
        };
        // `Could not reserve enough space for object heap` is memory; `Initial heap size set to
        // a larger value than the maximum heap size` is the options contradicting themselves.
        let kind = if [
            "Could not reserve",
            "Cannot allocate",
            "Out of memory",
            "insufficient memory",
        ]
        .iter()
        .any(|w| text.contains(w))
        {
            StatementKind::OutOfMemory
        } else {
            StatementKind::ConfigError
        };
        return Some(Found {
            kind,
            text,
            detail: why.map(str::to_string),
        });
    }
    let (i, line) = find_line(lines, true, |l| l.starts_with("Exception in thread \""))?;
    let thrown = line.split_once("\" ").map_or(line, |(_, t)| t).trim();
    // The root cause: the last `Caused by:` of this exception's trace.
    let root = lines[i + 1..]
        .iter()
        .take_while(|l| l.starts_with('\t') || l.starts_with(' ') || l.starts_with("Caused by: "))
        .filter_map(|l| l.trim().strip_prefix("Caused by: "))
        .last()
        .unwrap_or(thrown);
    let class = root.split(':').next().unwrap_or(root).trim();
    let kind = match class.rsplit('.').next().unwrap_or(class) {
        "OutOfMemoryError" => StatementKind::OutOfMemory,
        "ClassNotFoundException" | "NoClassDefFoundError" => StatementKind::MissingModule,
        "BindException" => errno_kind(root).unwrap_or(StatementKind::AddressInUse),
        "FileNotFoundException" | "NoSuchFileException" => {
            errno_kind(root).unwrap_or(StatementKind::MissingFile)
        }
        "AccessDeniedException" => StatementKind::PermissionDenied,
        _ => StatementKind::UncaughtException,
    };
    let text = if root == thrown {
        line.trim().to_string()
    } else {
        format!("{}, caused by {root}", line.trim())
    };
    Some(Found {
        kind,
        text,
        detail: Some(root.to_string()),
    })
}
