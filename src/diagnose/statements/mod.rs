//! Crash statements: what a runtime or a server prints when it dies, recognised in the captured
//! head and tail of a container's stdout and stderr. Pure: text in, a [`Statement`] out.
//!
//! One file per runtime family, each a `recognise(&[&str]) -> Option<Found>` over the lines of
//! one captured text. [`FAMILIES`] is tried in order, the specific runtimes before the shell and
//! the generic `FATAL`/`panic` lines, and for each family stderr before stdout and a stream's
//! tail before its head, so the statement nearest the death wins. Progress lines that runtimes
//! print while dying ("Crash dump is being written to: erl_crash.dump...done") are never
//! statements. The recognisers are tested over real output captured from Debian's runtimes in
//! `tests/fixtures/statements/` (see the README there).

mod beam;
mod generic;
mod go;
mod jvm;
mod loader;
mod nginx;
mod node;
mod python;
mod rust;
mod shell;
#[cfg(test)]
mod tests;

use crate::model::{CrashReport, Runtime, Statement, StatementKind};

/// What a family recognised in one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    pub(super) kind: StatementKind,
    /// The decisive line (or the part of it that says the cause), trimmed.
    pub(super) text: String,
    pub(super) detail: Option<String>,
}

type Recognise = fn(&[&str]) -> Option<Found>;

/// The families in the order they are asked: specific runtimes first, the shell (whose
/// statements a wrapper script adds around any runtime) and the generic lines last.
const FAMILIES: &[(Runtime, Recognise)] = &[
    (Runtime::Beam, beam::recognise),
    (Runtime::Jvm, jvm::recognise),
    (Runtime::Node, node::recognise),
    (Runtime::Python, python::recognise),
    (Runtime::Go, go::recognise),
    (Runtime::Rust, rust::recognise),
    (Runtime::Loader, loader::recognise),
    (Runtime::Nginx, nginx::recognise),
    (Runtime::Shell, shell::recognise),
    (Runtime::Generic, generic::recognise),
];

/// The longest statement text kept; BEAM terms and stack-laden lines can run to kilobytes.
const MAX_TEXT: usize = 300;

/// The statement in one captured text, as the families see it: what the fixture tests run.
#[cfg(test)]
pub(super) fn recognise(text: &str) -> Option<(Runtime, Found)> {
    let lines: Vec<&str> = text.lines().collect();
    FAMILIES
        .iter()
        .find_map(|(runtime, f)| f(&lines).map(|found| (*runtime, found)))
}

/// The runtime's statement in the report's captured output, if it printed one.
pub(in crate::diagnose) fn find(r: &CrashReport) -> Option<Statement> {
    let out = r.recorder.as_ref()?.output.as_ref()?;
    let mut texts: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, s) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
        if !s.tail.is_empty() {
            // The tail starts wherever the 4 KiB window fell: its first line is likely cut.
            let lines = s.tail.lines().skip(1).collect();
            texts.push((format!("/recorder/output/{name}/tail"), lines));
        }
        texts.push((
            format!("/recorder/output/{name}/head"),
            s.head.lines().collect(),
        ));
    }
    FAMILIES.iter().find_map(|(runtime, f)| {
        texts.iter().find_map(|(field, lines)| {
            f(lines).map(|found| Statement {
                runtime: *runtime,
                kind: found.kind,
                text: clip(&found.text, MAX_TEXT),
                detail: found
                    .detail
                    .filter(|d| !d.trim_matches('\0').is_empty())
                    .map(|d| clip(&d, MAX_TEXT)),
                field: field.clone(),
            })
        })
    })
}

/// The recorder copies at most a few iovecs of a `writev`, but counts every byte: the bytes it
/// did not copy read as NULs (ld.so writes its error in ten pieces). Such a gap is marked, not
/// shown as blanks.
fn clip(s: &str, max: usize) -> String {
    let s = &mark_gaps(s);
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

fn mark_gaps(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_gap = false;
    for c in s.chars() {
        if c == '\0' {
            if !in_gap {
                out.push_str("[not captured]");
            }
            in_gap = true;
        } else {
            in_gap = false;
            out.push(c);
        }
    }
    out
}

/// The kind an errno's words name, in any runtime's spelling: `Address already in use`,
/// `eaddrinuse`, `EACCES`, `[Errno 30] Read-only file system`.
pub(super) fn errno_kind(text: &str) -> Option<StatementKind> {
    let t = text.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if has(&["address already in use", "eaddrinuse"]) {
        Some(StatementKind::AddressInUse)
    } else if has(&[
        "permission denied",
        "operation not permitted",
        "read-only file system",
        "eacces",
        "eperm",
        "erofs",
    ]) {
        Some(StatementKind::PermissionDenied)
    } else if has(&["no such file or directory", "enoent"]) {
        Some(StatementKind::MissingFile)
    } else if has(&["out of memory", "cannot allocate memory", "enomem"]) {
        Some(StatementKind::OutOfMemory)
    } else {
        None
    }
}

/// The first line (from the end when `last`) that `pred` accepts, with its index.
pub(super) fn find_line<'a>(
    lines: &[&'a str],
    last: bool,
    pred: impl Fn(&str) -> bool,
) -> Option<(usize, &'a str)> {
    let mut it: Box<dyn Iterator<Item = (usize, &&'a str)>> = if last {
        Box::new(lines.iter().enumerate().rev())
    } else {
        Box::new(lines.iter().enumerate())
    };
    it.find(|(_, l)| pred(l)).map(|(i, l)| (i, *l))
}
