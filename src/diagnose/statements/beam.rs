//! The Erlang VM (BEAM). It halts with one line that carries the reason term:
//! `init terminating in do_boot ({{badmatch,{error,eaddrinuse}},[...]})` when the boot script or
//! `-eval` crashed, `Kernel pid terminated (application_controller) ({application_start_failure,
//! app,...})` when an application failed to start, and `Runtime terminating during boot (...)`
//! on newer releases. The next line, "Crash dump is being written to: erl_crash.dump...done", is
//! progress, not a cause. Memory: `eheap_alloc: Cannot allocate N bytes of memory (of type
//! "heap").`

use super::{errno_kind, find_line, Found};
use crate::model::StatementKind;

const HALTS: [&str; 4] = [
    "init terminating in do_boot",
    "Kernel pid terminated",
    "could not start kernel pid",
    "Runtime terminating during boot",
];

pub(super) fn recognise(lines: &[&str]) -> Option<Found> {
    if let Some((_, line)) = find_line(lines, true, |l| {
        l.contains("Cannot allocate") && l.contains("_alloc:")
    }) {
        return Some(Found {
            kind: StatementKind::OutOfMemory,
            text: line.trim().to_string(),
            detail: None,
        });
    }
    // The VM prints the halt twice, as a term and in words; the words come last and are
    // shorter: `init terminating in do_boot ({undef,...})`.
    let (_, line) = find_line(lines, true, |l| HALTS.iter().any(|h| l.starts_with(h)))?;
    let line = line.trim();
    let reason = reason(line);
    let atom = reason.as_deref().and_then(error_atom);
    let kind = match atom.as_deref() {
        Some(a) => errno_kind(a).unwrap_or(StatementKind::UncaughtException),
        None if reason
            .as_deref()
            .is_some_and(|r| r.starts_with("{undef,") || r == "undef") =>
        {
            StatementKind::MissingModule
        }
        None if reason.as_deref().is_some_and(|r| r.contains("config")) => {
            StatementKind::ConfigError
        }
        None => StatementKind::UncaughtException,
    };
    // The summary shows the halt and the reason without the stack.
    let halt = HALTS
        .iter()
        .find(|h| line.starts_with(**h))
        .copied()
        .unwrap_or("");
    let text = match &reason {
        // `undef` alone says nothing: name the call that was not there.
        Some(r) if r == "undef" => {
            let frame = line
                .find("{undef,[")
                .map(|at| first_element(&line[at + "{undef,[".len()..]));
            match frame {
                Some(call) => format!("{halt}: undef {call}"),
                None => format!("{halt}: undef"),
            }
        }
        Some(r) => format!("{halt}: {r}"),
        None => line.to_string(),
    };
    Some(Found {
        kind,
        text,
        detail: atom.or(reason),
    })
}

/// The reason of the halt: the last parenthesised group after the halt's words, e.g. `Reason`
/// of `Kernel pid terminated (application_controller) (Reason)`; of `({Reason,Stack})` only the
/// first element.
fn reason(line: &str) -> Option<String> {
    let halt = HALTS.iter().find(|h| line.starts_with(**h))?;
    let term = groups(&line[halt.len()..]).pop()?;
    if let Some(inner) = term.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let first = first_element(inner);
        // `{Reason,Stack}` where Stack is a list; anything else is the reason itself.
        if inner[first.len()..]
            .trim_start_matches(',')
            .starts_with('[')
        {
            return Some(first.to_string());
        }
    }
    Some(term.to_string())
}

/// The contents of the top-level `( ... )` groups of `s`, parentheses inside strings ignored.
fn groups(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start, mut quoted) = (0usize, 0usize, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => {
                if depth == 0 {
                    start = i + 1;
                }
                depth += 1;
            }
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(&s[start..i]);
                }
            }
            _ => {}
        }
    }
    out
}

/// The first element of a comma-separated Erlang term list, braces and brackets balanced.
fn first_element(s: &str) -> &str {
    let mut depth = 0i32;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '{' | '[' if !quoted => depth += 1,
            '}' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => return &s[..i],
            _ => {}
        }
    }
    s
}

/// `eaddrinuse` of `{badmatch,{error,eaddrinuse}}` or `{error,eaddrinuse}`: the POSIX error
/// atom of the innermost `{error,Atom}`.
fn error_atom(reason: &str) -> Option<String> {
    let at = reason.rfind("{error,")?;
    let rest = &reason[at + "{error,".len()..];
    let atom: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!atom.is_empty()).then_some(atom)
}
