//! glibc and its dynamic loader: `app: error while loading shared libraries: libssl.so.3: cannot
//! open shared object file: No such file or directory`, ``version `GLIBC_2.34' not found``, and
//! the aborts glibc raises on corruption: `*** stack smashing detected ***: terminated`,
//! `free(): double free detected in tcache 2`, `malloc(): corrupted top size`,
//! `Fatal glibc error: ...`.

use super::{find_line, Found};
use crate::model::StatementKind;

const CORRUPTION: [&str; 6] = [
    "*** stack smashing detected ***",
    "*** buffer overflow detected ***",
    "double free",
    "free(): invalid",
    "malloc(): ",
    "Fatal glibc error: ",
];

pub(super) fn recognise(lines: &[&str]) -> Option<Found> {
    if let Some((_, line)) = find_line(lines, true, |l| {
        l.contains("error while loading shared libraries: ")
    }) {
        let lib = line
            .split("error while loading shared libraries: ")
            .nth(1)
            .and_then(|r| r.split(':').next())
            .map(str::to_string);
        return Some(Found {
            kind: StatementKind::LoaderError,
            text: line.trim().to_string(),
            detail: lib,
        });
    }
    if let Some((_, line)) = find_line(lines, true, |l| {
        l.contains("version `GLIBC") && l.contains("' not found")
    }) {
        let version = line
            .split('`')
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .map(str::to_string);
        return Some(Found {
            kind: StatementKind::LoaderError,
            text: line.trim().to_string(),
            detail: version,
        });
    }
    let (_, line) = find_line(lines, true, |l| CORRUPTION.iter().any(|c| l.contains(c)))?;
    Some(Found {
        kind: StatementKind::MemoryCorruption,
        text: line.trim().to_string(),
        detail: None,
    })
}
