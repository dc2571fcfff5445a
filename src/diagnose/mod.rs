//! Probable cause: pure rules from a [`CrashReport`] to a [`Diagnosis`]. No I/O.
//!
//! [`diagnose`] gathers the `Facts` of a report once, then asks each rule of `RULES` in turn; the
//! first that applies wins, and `FALLBACK` (`exited_error`) answers when none does. The order of
//! `RULES` is the precedence, documented there.
//!
//! Where things live:
//! - this file: the entry point and the one ordered list of rules;
//! - `facts.rs`: what is gathered from the report once, and which syscall failures count as
//!   evidence (runc's own syscalls, the kernel-internal ERESTART* codes and routine failures such
//!   as a shell's `wait4` = ECHILD never do);
//! - `evidence.rs`: the wording shared by the rules (evidence, "Exited 1 after 2 ms", calls,
//!   paths, plurals) and the [`Diagnosis`] they return;
//! - `rules/`: the `Rule` trait and one file per rule, each with its tests;
//! - `tests.rs`: what no single rule owns: precedence between rules, every fixture at once;
//!   `testing.rs`: the fixtures and checks all the tests share.
//!
//! Each rule has a test built from a real report in `tests/fixtures/reports/`.

mod advice;
mod evidence;
mod facts;
mod growth;
mod rules;
pub mod stale_image;
mod statements;

use crate::model::{CrashReport, Diagnosis};

use crate::model::Cause;
use evidence::ev;
use facts::Facts;
use rules::{
    AddressInUse, Completed, ExecFailed, ExitedError, LockHeld, Oom, PidsLimit, Rule, RuntimeAbort,
    RuntimeStatement, Signal, StartFailed,
};

/// The rules in order of how decisive their evidence is; the first that applies wins.
///
/// 0. `start_failed`: the CRI recorded `StartError`: runc could not start the process, so no
///    program of the image ran and nothing below can apply; the code (128) says nothing.
/// 1. `oom`: the kernel OOM killer acted (cgroup counter, containerd's OOM event, the recorder's
///    victim or the fatal signal's origin). It is first because an OOM kill arrives as a SIGKILL,
///    which `signal` would otherwise call a kill by someone. Exit code 137 alone is never enough.
/// 2. `runtime_abort`: the runtime said it ran out of its own memory (V8's heap, a failed Rust
///    allocation) and then raised SIGABRT to stop: the statement, not the abort, is the cause.
/// 3. `signal`: a signal killed the init process: `crashed` for a fault the kernel raised
///    (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGTRAP) or that the process raised itself
///    (SIGABRT); `killed` when someone else sent it, named with the sender the recorder saw. A
///    process that died of a signal did not choose to exit, so no syscall failure before it
///    explains the death.
/// 4. `completed`: exit 0. Before the syscall rules, so that failures a program met and handled
///    are never blamed for a clean exit.
/// 5. `exec_failed`: an `execve` failed and a shell exited 126/127 (or the failed exec was the
///    last failure). The program meant to run never ran, so later failures are the wrapper's.
/// 6. `lock_held` (flock/fcntl): a failure that names its cause unmistakably wherever it sits
///    among the workload's failures.
/// 7. `runtime_statement`: the runtime or server said why it dies (`ModuleNotFoundError`,
///    `init terminating in do_boot`, `panic:`, nginx `[emerg]`). Its words outrank routine
///    syscall failures but not the kernel's facts above; it names the syscall that proves it
///    (eaddrinuse -> the failing `bind`) where the recorder kept one.
/// 8. `address_in_use` (bind EADDRINUSE), for a program that did not say so itself.
/// 9. `pids_limit`: clone under pids.max. Last of the rules because it can also rest on the
///    cgroup's counter of refused forks alone, which a failure named above explains better.
///
/// [`FALLBACK`] (`exited_error`) comes after all of them.
const RULES: &[&dyn Rule] = &[
    &StartFailed,
    &Oom,
    &RuntimeAbort,
    &Signal,
    &Completed,
    &ExecFailed,
    &LockHeld,
    &RuntimeStatement,
    &AddressInUse,
    &PidsLimit,
];

/// `exited_error`, when no rule applies: the last failing syscall before the exit, a child's
/// signal passed on by a shell, or what is missing when there is no syscall data (then the
/// confidence is `low`). It always answers, so it is kept out of [`RULES`].
const FALLBACK: ExitedError = ExitedError;

/// The probable cause of a container's death, from its report alone: the first rule's answer,
/// with the runtime's statement beside it (whichever rule answered) and one line of advice.
pub fn diagnose(r: &CrashReport) -> Diagnosis {
    let f = Facts::new(r);
    let mut d = RULES
        .iter()
        .find_map(|rule| rule.diagnose(&f))
        .unwrap_or_else(|| FALLBACK.diagnose(&f));
    // Whatever the cause, the runtime's own post-mortem says what it saw: after the rule's facts.
    d.evidence.extend(evidence::artifact_evidence(r));
    if d.cause != Cause::Completed {
        if let Some(s) = &f.statement {
            let said = ev(format!("{} said: {}", s.runtime.label(), s.text), &s.field);
            if !d.evidence.contains(&said) {
                d.evidence.push(said);
            }
            // A fault the kernel reported is the cause; what the runtime printed says which.
            if d.cause == Cause::Crashed && !d.summary.contains(&s.text) {
                d.summary = format!("{}; {}", d.summary, rules::runtime_statement::said(s));
            }
            d.statement = Some(s.clone());
        }
    }
    d.advice = advice::advise(&f, &d);
    d
}

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
