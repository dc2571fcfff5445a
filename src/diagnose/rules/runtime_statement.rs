//! `runtime_statement`: the runtime or server said why it is dying, in its captured output (see
//! `diagnose/statements/`): an uncaught exception, a panic, a rejected configuration, a missing
//! module or library, a port in use, a refused file. Its words lead the summary; where a failing
//! syscall proves the statement (`{error,eaddrinuse}` and the `bind` that failed), the call is
//! named beside them and the confidence is high. It comes after the kernel's facts (an OOM
//! kill, a fatal signal) and after the syscall failures that name their cause on their own
//! (`exec_failed`, `lock_held`), and before the routine failures of `exited_error`.

use super::Rule;
use crate::diagnose::evidence::{call, diagnosis, ev, main_arg};
use crate::diagnose::facts::Facts;
use crate::model::{Cause, Confidence, Diagnosis, Runtime, Statement, StatementKind, SyscallEvent};

pub(in crate::diagnose) struct RuntimeStatement;

/// `runtime_abort`: a runtime that said it ran out of its own memory and then aborted (V8's
/// `FATAL ERROR: ... heap out of memory`, Rust's `memory allocation of N bytes failed`) died of
/// SIGABRT, which `signal` would call a crash. The abort is how the runtime stops after saying
/// why, so the statement is the cause: this rule comes before `signal`.
pub(in crate::diagnose) struct RuntimeAbort;

impl Rule for RuntimeAbort {
    fn name(&self) -> &'static str {
        "runtime_abort"
    }

    fn diagnose(&self, f: &Facts) -> Option<Diagnosis> {
        let s = f.statement.as_ref()?;
        // Died of SIGABRT, or a shell passed a child's SIGABRT on as 134.
        let aborted =
            f.r.exit.signal_name.as_deref() == Some("SIGABRT") || f.r.exit.code == 128 + 6;
        if !aborted || s.kind != StatementKind::OutOfMemory {
            return None;
        }
        let mut d = RuntimeStatement.answer(f, s)?;
        d.summary = format!("{}; it aborted (SIGABRT){}", said(s), f.after());
        d.cause = Cause::OutOfMemory;
        Some(d)
    }
}

impl Rule for RuntimeStatement {
    fn name(&self) -> &'static str {
        "runtime_statement"
    }

    fn diagnose(&self, f: &Facts) -> Option<Diagnosis> {
        self.answer(f, f.statement.as_ref()?)
    }
}

impl RuntimeStatement {
    fn answer(&self, f: &Facts, s: &Statement) -> Option<Diagnosis> {
        if f.r.exit.is_success() {
            return None;
        }
        let cause = cause(s.kind);
        let proof = proof(f, s);
        let mut evidence = vec![ev(
            format!("{} said: {}", s.runtime.label(), s.text),
            &s.field,
        )];
        let (confidence, proved) = match &proof {
            Some((field, e)) => {
                let errno = e.errno.as_deref().unwrap_or_default();
                evidence.push(ev(format!("{} = {errno}", call(e)), field));
                let why = match cause {
                    Cause::AddressInUse => ", another process holds the address",
                    _ => "",
                };
                (Confidence::High, format!(" ({} = {errno}{why})", call(e)))
            }
            None if s.runtime == Runtime::Generic => (Confidence::Medium, String::new()),
            None => (Confidence::High, String::new()),
        };
        evidence.push(f.exit_evidence());
        // A shell that passed its child's fatal signal on as 128+N: say which child.
        let child = f.signalled_child();
        if let Some((field, comm, pid, sig)) = &child {
            evidence.insert(1, ev(format!("`{comm}` (pid {pid}) died of {sig}"), field));
        }
        let child = child
            .map(|(_, comm, pid, sig)| format!("; `{comm}` (pid {pid}) died of {sig}"))
            .unwrap_or_default();
        let key = match &proof {
            Some((_, e)) => format!(
                "{} {} {}",
                e.syscall,
                main_arg(e),
                e.errno.as_deref().unwrap_or_default()
            ),
            None => format!(
                "{} {}",
                s.runtime.label(),
                s.detail.as_deref().unwrap_or(&s.text)
            ),
        };
        Some(diagnosis(
            cause,
            confidence,
            format!(
                "{}{proved}{child}; {}",
                said(s),
                lowercase_first(&f.exited())
            ),
            evidence,
            Some(clip_key(&key)),
        ))
    }
}

/// The cause a statement's kind names.
pub(in crate::diagnose) fn cause(kind: StatementKind) -> Cause {
    match kind {
        StatementKind::AddressInUse => Cause::AddressInUse,
        StatementKind::MissingModule => Cause::MissingDependency,
        StatementKind::MissingFile => Cause::MissingFile,
        // The program never ran: as `exec_failed` says when the recorder saw the exec.
        StatementKind::CommandNotFound | StatementKind::LoaderError => Cause::ExecFailed,
        StatementKind::MemoryCorruption => Cause::Crashed,
        StatementKind::PermissionDenied => Cause::PermissionDenied,
        StatementKind::ConfigError => Cause::ConfigError,
        StatementKind::OutOfMemory => Cause::OutOfMemory,
        StatementKind::UncaughtException | StatementKind::Panic | StatementKind::Fatal => {
            Cause::RuntimeError
        }
    }
}

/// The statement as a summary leads with it: `Python: ModuleNotFoundError: ...`. Shells,
/// nginx, the loader and generic lines name their program already.
pub(in crate::diagnose) fn said(s: &Statement) -> String {
    match s.runtime {
        Runtime::Beam
        | Runtime::Python
        | Runtime::Go
        | Runtime::Jvm
        | Runtime::Node
        | Runtime::Rust => format!("{}: {}", s.runtime.label(), s.text),
        Runtime::Loader | Runtime::Shell | Runtime::Nginx | Runtime::Generic => s.text.clone(),
    }
}

/// The failing syscall that proves the statement, when the recorder kept it.
fn proof<'a>(f: &Facts<'a>, s: &Statement) -> Option<(String, &'a SyscallEvent)> {
    let errno_is =
        |e: &SyscallEvent, set: &[&str]| e.errno.as_deref().is_some_and(|n| set.contains(&n));
    let named = |e: &SyscallEvent| {
        let arg = main_arg(e);
        !arg.is_empty()
            && (s.text.contains(&arg) || s.detail.as_deref().is_some_and(|d| d.contains(&arg)))
    };
    match s.kind {
        StatementKind::AddressInUse => {
            f.find_failure(|e| e.syscall == "bind" && errno_is(e, &["EADDRINUSE"]))
        }
        StatementKind::PermissionDenied => {
            let denied = |e: &SyscallEvent| errno_is(e, &["EACCES", "EPERM", "EROFS"]);
            f.find_failure(|e| denied(e) && named(e))
                .or_else(|| f.find_failure(|e| denied(e) && e.syscall != "execve"))
        }
        StatementKind::MissingFile => f.find_failure(|e| errno_is(e, &["ENOENT"]) && named(e)),
        StatementKind::LoaderError => {
            let lib = s.detail.as_deref()?;
            f.find_failure(|e| errno_is(e, &["ENOENT"]) && main_arg(e).ends_with(lib))
        }
        _ => None,
    }
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Keys are part of a crash-loop signature: short, one line.
fn clip_key(s: &str) -> String {
    s.chars().take(160).collect()
}

#[cfg(test)]
mod tests {
    use crate::diagnose::testing::{check, fixture};
    use crate::model::{
        CapturedOutput, Cause, Confidence, CrashReport, Runtime, StatementKind, StreamCapture,
    };

    fn with_stderr(mut r: CrashReport, captured: &str) -> CrashReport {
        let out = r
            .recorder
            .as_mut()
            .unwrap()
            .output
            .get_or_insert_with(|| CapturedOutput {
                captured_by: "coroner".into(),
                stdout: StreamCapture::default(),
                stderr: StreamCapture::default(),
            });
        out.stderr = StreamCapture {
            total_bytes: captured.len() as u64,
            head: captured.to_string(),
            tail: String::new(),
        };
        r
    }

    const BEAM_EADDRINUSE: &str =
        include_str!("../../../tests/fixtures/statements/beam/eaddrinuse.txt");
    const PYTHON_IMPORT: &str =
        include_str!("../../../tests/fixtures/statements/python/module_not_found.txt");

    #[test]
    fn a_beam_boot_crash_on_eaddrinuse_is_tied_to_the_failing_bind() {
        let d = check(&with_stderr(fixture("address_in_use"), BEAM_EADDRINUSE));
        assert_eq!(d.cause, Cause::AddressInUse);
        assert_eq!(d.confidence, Confidence::High);
        assert_eq!(
            d.summary,
            "Erlang VM: init terminating in do_boot: {badmatch,{error,eaddrinuse}} \
             (bind(127.0.0.1:22321) = EADDRINUSE, another process holds the address); exited 1 \
             after 496 ms"
        );
        // The progress line after the halt is never the cause.
        assert!(
            d.evidence.iter().all(|e| !e.fact.contains("Crash dump")),
            "{d:#?}"
        );
        let s = d.statement.unwrap();
        assert_eq!(
            (s.runtime, s.kind),
            (Runtime::Beam, StatementKind::AddressInUse)
        );
        assert_eq!(s.detail.as_deref(), Some("eaddrinuse"));
        assert_eq!(d.key.as_deref(), Some("bind 127.0.0.1:22321 EADDRINUSE"));
    }

    #[test]
    fn a_python_import_error_outranks_a_routine_enoent() {
        let d = check(&with_stderr(fixture("exited_error"), PYTHON_IMPORT));
        assert_eq!(d.cause, Cause::MissingDependency);
        assert_eq!(
            d.summary,
            "Python: ModuleNotFoundError: No module named 'requests'; exited 1 after <1 ms"
        );
        assert!(
            d.advice
                .as_deref()
                .unwrap()
                .starts_with("Install the Python module `requests`"),
            "{d:?}"
        );
        assert!(!d.summary.contains("ENOENT"), "{}", d.summary);
    }

    #[test]
    fn the_kernel_s_oom_kill_outranks_what_the_runtime_said() {
        let heap = include_str!("../../../tests/fixtures/statements/node/heap.txt");
        let d = check(&with_stderr(fixture("oom_killed"), heap));
        assert_eq!(d.cause, Cause::OomKilled);
        // The statement is still shown beside the kernel's facts.
        assert_eq!(d.statement.unwrap().runtime, Runtime::Node);
        assert!(d
            .advice
            .unwrap()
            .starts_with("Raise the memory limit above the 20.0 MiB"));
    }

    #[test]
    fn a_fault_signal_names_what_glibc_said() {
        let double = include_str!("../../../tests/fixtures/statements/loader/double_free.txt");
        let d = check(&with_stderr(fixture("segfault"), double));
        assert_eq!(d.cause, Cause::Crashed);
        assert!(
            d.summary
                .ends_with("; free(): double free detected in tcache 2"),
            "{}",
            d.summary
        );
        assert!(d.advice.unwrap().contains("AddressSanitizer"));
    }

    #[test]
    fn v8_out_of_its_heap_then_abort_is_out_of_memory_not_a_crash() {
        let heap = include_str!("../../../tests/fixtures/statements/node/heap.txt");
        let mut r = with_stderr(fixture("segfault"), heap);
        r.exit.signal_name = Some("SIGABRT".into());
        r.exit.signal = Some(6);
        r.recorder.as_mut().unwrap().fatal_signal = None;
        let d = check(&r);
        assert_eq!(d.cause, Cause::OutOfMemory);
        assert!(
            d.summary.starts_with(
                "Node.js: FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out \
                 of memory; it aborted (SIGABRT)"
            ),
            "{}",
            d.summary
        );
        assert!(d.advice.unwrap().contains("--max-old-space-size"));
    }

    #[test]
    fn a_clean_exit_is_completed_whatever_was_printed() {
        let d = check(&with_stderr(fixture("completed"), PYTHON_IMPORT));
        assert_eq!(d.cause, Cause::Completed);
        assert_eq!(d.statement, None);
    }
}
