//! `exec_failed`: the program meant to run never ran.
//!
//! - runc's own exec of the entrypoint failed (`execve("/app/gateway") = ENOENT` by
//!   `runc:[2:INIT]`, nothing of the workload after it): the recorder counts runc's calls as
//!   set-up, but this failure is the entrypoint's;
//! - `execve("/app/bin/start") = ENOENT` after which a shell exits 126/127, or the init's own exec
//!   failing last;
//! - the dynamic loader ran but the image lacks a library the program needs (exit 127);
//! - without syscall data: an entrypoint the image cannot execute, or a shell's 126/127 alone
//!   (low confidence).
//!
//! Why an exec failed comes from the report's `entrypoint` section, read from the container's
//! filesystem at create time: an ENOENT on a file that exists is its missing ELF loader ("a glibc
//! binary in a musl or static image") or `#!` interpreter; EACCES a missing execute bit or a
//! `noexec` mount; ENOEXEC an ELF for another machine or a file that is neither ELF nor script.

use super::Rule;
use crate::diagnose::evidence::{diagnosis, ev, main_arg};
use crate::diagnose::facts::{failed, is_exec, Facts};
use crate::model::{
    Cause, Confidence, Diagnosis, Evidence, Executable, ExecutableKind, SyscallEvent,
};

pub(in crate::diagnose) struct ExecFailed;

impl Rule for ExecFailed {
    fn name(&self) -> &'static str {
        "exec_failed"
    }

    fn diagnose(&self, f: &Facts) -> Option<Diagnosis> {
        let code = f.r.exit.code;
        let shell_code = code == 126 || code == 127;
        if let Some((field, e)) = &f.entrypoint_exec_failure {
            return Some(failed_exec(f, field, e, Confidence::High));
        }
        if let Some((field, e)) = f.find_failure(|e| failed(e) && is_exec(e)) {
            // A failed exec long before the exit (a PATH search that later succeeded) is not
            // the cause.
            let last_failure = f.failures().next().map(|(fl, _)| fl) == Some(field.clone());
            if !shell_code && !last_failure {
                return None;
            }
            // A child's exec failing while its forks are refused at the pids limit is a
            // symptom (busybox's fork children fail to re-exec /proc/self/exe with EINTR,
            // E2BIG or ENOEXEC under pids.max): `pids_limit` names the cause.
            if !shell_code && forks_refused(f) {
                return None;
            }
            let confidence = if shell_code {
                Confidence::High
            } else {
                Confidence::Medium
            };
            return Some(failed_exec(f, &field, e, confidence));
        }
        if code == 127 {
            if let Some(d) = missing_libraries(f) {
                return Some(d);
            }
        }
        if f.rec.is_none() {
            return without_syscalls(f, code, shell_code);
        }
        None
    }
}

/// Whether the container hit its process limit: the pids cgroup refused forks, or a fork
/// failed with EAGAIN.
fn forks_refused(f: &Facts) -> bool {
    let refused = f.r.cgroup.usage.as_ref().and_then(|u| u.pids_max_events);
    refused.unwrap_or(0) > 0
        || f.find_failure(|e| {
            matches!(e.syscall.as_str(), "clone" | "clone3" | "fork" | "vfork")
                && e.errno.as_deref() == Some("EAGAIN")
        })
        .is_some()
}

/// An exec that failed with `e`, explained by the entrypoint section when it can be.
fn failed_exec(f: &Facts, field: &str, e: &SyscallEvent, confidence: Confidence) -> Diagnosis {
    let code = f.r.exit.code;
    let path = main_arg(e);
    let errno = e.errno.clone().unwrap_or_default();
    let mut evidence = f.failure_evidence(field, e);
    let why = inspected(f, &path)
        .and_then(|(i, exe)| explain(exe, Some(&errno), i).map(|(why, fl)| (exe, why, fl)));
    let summary = match why {
        Some((exe, why, field)) => {
            evidence.insert(1, why_evidence(exe, &why, &field));
            format!("exec of {path} failed: {errno}: {}", why.words())
        }
        None => format!("exec of {path} failed: {errno} (exit {code})"),
    };
    diagnosis(
        Cause::ExecFailed,
        confidence,
        summary,
        evidence,
        Some(format!("{} {path} {errno}", e.syscall)),
    )
}

/// The inspected program an exec's path names, with its field in the report.
fn inspected<'a>(f: &Facts<'a>, path: &str) -> Option<(String, &'a Executable)> {
    let entry = f.r.entrypoint.as_ref()?;
    entry
        .executables
        .iter()
        .enumerate()
        .find(|(_, e)| e.path.as_deref() == Some(path) || e.command == path)
        .map(|(i, e)| (format!("/entrypoint/executables/{i}"), e))
}

/// Why a program cannot be executed, as its entrypoint section shows. The summary says it
/// (`words`) and the advice (`diagnose/advice.rs`) says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::diagnose) enum Why {
    Directory,
    NoExecuteBit {
        mode: String,
    },
    NoexecMount,
    ForeignMachine {
        machine: String,
    },
    NotAProgram,
    /// An ELF binary whose `PT_INTERP` loader is not in the image.
    MissingLoader {
        loader: String,
    },
    /// A script whose `#!` interpreter is not in the image.
    MissingInterpreter {
        interpreter: String,
    },
    /// A script whose `#!` interpreter is there but cannot be executed itself.
    Interpreter {
        interpreter: String,
        why: Box<Why>,
    },
    /// The loader ran and exited 127: these libraries are not in the image.
    MissingLibraries {
        libraries: Vec<String>,
    },
}

impl Why {
    pub(in crate::diagnose) fn words(&self) -> String {
        match self {
            Why::Directory => "it is a directory".into(),
            Why::NoExecuteBit { mode } => format!("it has no execute bit (mode {mode})"),
            Why::NoexecMount => "it is on a noexec mount".into(),
            Why::ForeignMachine { machine } => format!(
                "it is an ELF binary for {machine}, which this node cannot run (exec format error)"
            ),
            Why::NotAProgram => {
                "it is neither an ELF binary nor a script with a #! line (exec format error)".into()
            }
            Why::MissingLoader { loader } => format!(
                "its ELF interpreter {loader} is not in the image{}",
                libc_hint(loader)
            ),
            Why::MissingInterpreter { interpreter } => {
                format!("its #! interpreter {interpreter} is not in the image")
            }
            Why::Interpreter { interpreter, why } => {
                format!("its #! interpreter {interpreter}: {}", why.words())
            }
            Why::MissingLibraries { libraries } => format!(
                "{} {} not in the image",
                libraries.join(", "),
                if libraries.len() == 1 { "is" } else { "are" }
            ),
        }
    }
}

/// Why `exe` cannot be executed, with the field that shows it, when the errno (if known)
/// agrees.
fn explain(exe: &Executable, errno: Option<&str>, field: String) -> Option<(Why, String)> {
    let agrees = |e: &str| errno.is_none_or(|n| n == e);
    let found = |why: Why, sub: &str| Some((why, format!("{field}/{sub}")));
    if agrees("EACCES") {
        if exe.kind == ExecutableKind::Directory {
            return found(Why::Directory, "kind");
        }
        if exe.executable == Some(false) {
            let mode = exe.mode.clone().unwrap_or_else(|| "?".into());
            return found(Why::NoExecuteBit { mode }, "mode");
        }
        if exe.noexec_mount == Some(true) {
            return found(Why::NoexecMount, "noexec_mount");
        }
    }
    if agrees("ENOEXEC") {
        if exe.runs_on_node == Some(false) {
            let machine = exe
                .machine
                .clone()
                .unwrap_or_else(|| "another machine".into());
            return found(Why::ForeignMachine { machine }, "machine");
        }
        if exe.kind == ExecutableKind::Other && exe.error.is_none() {
            return found(Why::NotAProgram, "kind");
        }
    }
    let interp = exe.interpreter.clone()?;
    if exe.interpreter_present == Some(false) && agrees("ENOENT") {
        return match exe.kind {
            ExecutableKind::Elf => {
                found(Why::MissingLoader { loader: interp }, "interpreter_present")
            }
            ExecutableKind::Script => found(
                Why::MissingInterpreter {
                    interpreter: interp,
                },
                "interpreter_present",
            ),
            _ => None,
        };
    }
    // A script's interpreter that cannot run itself fails the script's exec the same way.
    let inner = exe.interpreter_file.as_deref()?;
    let (why, field) = explain(inner, errno, format!("{field}/interpreter_file"))?;
    Some((
        Why::Interpreter {
            interpreter: interp,
            why: Box::new(why),
        },
        field,
    ))
}

/// The evidence that says `why` of the program `exe`.
fn why_evidence(exe: &Executable, why: &Why, field: &str) -> Evidence {
    let name = exe.path.as_deref().unwrap_or(&exe.command);
    ev(format!("{name}: {}", why.words()), field)
}

/// The program a finished `exec_failed` diagnosis is about and why it could not run, for the
/// advice: read again from the entrypoint section through the diagnosis's key
/// (`execve /app/gateway ENOENT`, `exec /app/gateway`, `loader /app/gateway libc.so.6`).
pub(in crate::diagnose) fn why_for_advice(f: &Facts, d: &Diagnosis) -> Option<(String, Why)> {
    let key = d.key.as_deref()?;
    let mut words = key.split(' ');
    let (kind, path) = (words.next()?, words.next()?);
    let errno = words.next_back();
    let exe = match kind {
        "execve" | "execveat" | "exec" => inspected(f, path)?.1,
        "loader" => {
            let exe = inspected(f, path)?.1;
            let libraries = exe.missing_libraries.clone();
            return (!libraries.is_empty())
                .then(|| (path.to_string(), Why::MissingLibraries { libraries }));
        }
        _ => return None,
    };
    let errno = errno.filter(|_| kind != "exec");
    let (why, _) = explain(exe, errno, String::new())?;
    Some((exe.path.clone().unwrap_or_else(|| exe.command.clone()), why))
}

/// What a missing loader says about the image.
fn libc_hint(interp: &str) -> &'static str {
    if interp.contains("ld-linux") {
        " (a glibc binary in a musl or static image)"
    } else if interp.contains("ld-musl") {
        " (a musl binary in a glibc or static image)"
    } else {
        ""
    }
}

/// Exit 127 from the dynamic loader: the program's ELF loader is there, a library is not.
fn missing_libraries(f: &Facts) -> Option<Diagnosis> {
    let entry = f.r.entrypoint.as_ref()?;
    let (i, exe) = entry
        .executables
        .iter()
        .enumerate()
        .find(|(_, e)| !e.missing_libraries.is_empty())?;
    let name = exe.path.as_deref().unwrap_or(&exe.command);
    let libs = exe.missing_libraries.join(", ");
    let why = Why::MissingLibraries {
        libraries: exe.missing_libraries.clone(),
    };
    let field = format!("/entrypoint/executables/{i}/missing_libraries");
    let mut evidence = vec![
        ev(
            format!("{name} needs {libs}, which the image does not have"),
            &field,
        ),
        f.exit_evidence(),
    ];
    evidence.extend(f.last_output_line());
    let confidence = if f.rec.is_some() {
        Confidence::High
    } else {
        Confidence::Medium
    };
    Some(diagnosis(
        Cause::ExecFailed,
        confidence,
        format!(
            "{}: the dynamic loader could not load {name}: {}",
            f.exited(),
            why.words()
        ),
        evidence,
        Some(format!("loader {name} {}", exe.missing_libraries[0])),
    ))
}

/// No syscall data: an entrypoint the image cannot execute still says why; a shell's 126/127
/// alone says little.
fn without_syscalls(f: &Facts, code: u32, shell_code: bool) -> Option<Diagnosis> {
    if code != 0 {
        let entry = f.r.entrypoint.as_ref();
        let programs = entry.map(|e| e.executables.iter().enumerate());
        for (i, exe) in programs.into_iter().flatten() {
            // A shell wrapper's program only explains a shell's 126/127.
            if i > 0 && !shell_code {
                break;
            }
            if let Some((why, field)) = explain(exe, None, format!("/entrypoint/executables/{i}")) {
                let name = exe.path.as_deref().unwrap_or(&exe.command);
                return Some(diagnosis(
                    Cause::ExecFailed,
                    Confidence::Medium,
                    format!(
                        "{}: {name} cannot be executed: {}; no syscall data ({}) to see the exec",
                        f.exited(),
                        why.words(),
                        f.no_data_reason()
                    ),
                    vec![why_evidence(exe, &why, &field), f.exit_evidence()],
                    Some(format!("exec {name}")),
                ));
            }
        }
    }
    if !shell_code {
        return None;
    }
    let meaning = if code == 127 {
        "a command was not found"
    } else {
        "a command was found but could not be executed"
    };
    Some(diagnosis(
        Cause::ExecFailed,
        Confidence::Low,
        format!(
            "{}: shells exit {code} when {meaning}; no syscall data ({}) to name it",
            f.exited(),
            f.no_data_reason()
        ),
        vec![f.exit_evidence()],
        Some(format!("exit {code}")),
    ))
}

#[cfg(test)]
mod tests {
    use crate::diagnose::testing::{check, fixture, without_recorder};
    use crate::model::{Cause, Confidence};

    #[test]
    fn exec_of_a_missing_binary_is_exec_failed() {
        let d = check(&fixture("exec_failed"));
        assert_eq!(d.cause, Cause::ExecFailed);
        assert_eq!(d.confidence, Confidence::High);
        assert_eq!(
            d.summary,
            "exec of /app/bin/start failed: ENOENT (exit 127)"
        );
        assert_eq!(d.key.as_deref(), Some("execve /app/bin/start ENOENT"));
        assert!(
            d.evidence
                .iter()
                .any(|e| e.fact == "last line on stderr: sh: /app/bin/start: not found"),
            "{:#?}",
            d.evidence
        );
    }

    #[test]
    fn runc_exec_of_a_glibc_binary_without_its_loader_names_the_loader() {
        let d = check(&fixture("exec_glibc_without_loader"));
        assert_eq!(d.cause, Cause::ExecFailed);
        assert_eq!(d.confidence, Confidence::High);
        assert_eq!(
            d.summary,
            "exec of /app/gateway failed: ENOENT: its ELF interpreter \
             /lib64/ld-linux-x86-64.so.2 is not in the image (a glibc binary in a musl or static \
             image)"
        );
        assert_eq!(d.key.as_deref(), Some("execve /app/gateway ENOENT"));
        assert_eq!(
            d.evidence[1].field,
            "/entrypoint/executables/0/interpreter_present"
        );
    }

    #[test]
    fn runc_exec_failure_without_the_entrypoint_section_still_names_the_exec() {
        let mut r = fixture("exec_glibc_without_loader");
        r.entrypoint = None;
        let d = check(&r);
        assert_eq!(d.cause, Cause::ExecFailed);
        assert_eq!(d.summary, "exec of /app/gateway failed: ENOENT (exit 1)");
    }

    #[test]
    fn script_whose_interpreter_is_missing_names_the_interpreter() {
        let d = check(&fixture("exec_script_without_interpreter"));
        assert_eq!(
            d.summary,
            "exec of /app/run.py failed: ENOENT: its #! interpreter /usr/bin/python3 is not in \
             the image"
        );
    }

    #[test]
    fn script_whose_interpreter_lacks_its_loader_says_both() {
        let mut r = fixture("exec_script_without_interpreter");
        let script = &mut r.entrypoint.as_mut().unwrap().executables[0];
        script.interpreter_present = Some(true);
        let mut python = fixture("exec_glibc_without_loader")
            .entrypoint
            .unwrap()
            .executables[0]
            .clone();
        python.command = "/usr/bin/python3".into();
        python.path = Some("/usr/bin/python3".into());
        script.interpreter_file = Some(Box::new(python));
        let d = check(&r);
        assert_eq!(
            d.summary,
            "exec of /app/run.py failed: ENOENT: its #! interpreter /usr/bin/python3: its ELF \
             interpreter /lib64/ld-linux-x86-64.so.2 is not in the image (a glibc binary in a \
             musl or static image)"
        );
        assert_eq!(
            d.evidence[1].field,
            "/entrypoint/executables/0/interpreter_file/interpreter_present"
        );
    }

    #[test]
    fn elf_for_another_machine_is_an_exec_format_error() {
        let d = check(&fixture("exec_foreign_machine"));
        assert_eq!(
            d.summary,
            "exec of /app/arm64 failed: ENOEXEC: it is an ELF binary for aarch64, which this node \
             cannot run (exec format error)"
        );
    }

    #[test]
    fn shell_exec_of_a_file_without_execute_bit_names_the_mode() {
        let d = check(&fixture("exec_without_execute_bit"));
        assert_eq!(d.confidence, Confidence::High);
        assert_eq!(
            d.summary,
            "exec of /app/notexec.sh failed: EACCES: it has no execute bit (mode 0644)"
        );
    }

    #[test]
    fn an_explanation_that_contradicts_the_errno_is_not_given() {
        // The file lacks an execute bit, but the exec failed with ENOENT: that is not why.
        let mut r = fixture("exec_glibc_without_loader");
        let e = &mut r.entrypoint.as_mut().unwrap().executables[0];
        e.interpreter_present = Some(true);
        e.executable = Some(false);
        let d = check(&r);
        assert_eq!(d.summary, "exec of /app/gateway failed: ENOENT (exit 1)");
    }

    #[test]
    fn loader_exit_127_names_the_missing_library() {
        let d = check(&fixture("exec_missing_library"));
        assert_eq!(d.cause, Cause::ExecFailed);
        assert_eq!(d.confidence, Confidence::High);
        assert!(
            d.summary.ends_with(
                "the dynamic loader could not load /app/gateway: libc.so.6 is not in the image"
            ),
            "{}",
            d.summary
        );
        assert_eq!(d.key.as_deref(), Some("loader /app/gateway libc.so.6"));
    }

    #[test]
    fn without_syscall_data_the_entrypoint_alone_explains_the_exit() {
        let d = check(&without_recorder(fixture("exec_glibc_without_loader")));
        assert_eq!(d.cause, Cause::ExecFailed);
        assert_eq!(d.confidence, Confidence::Medium);
        assert!(
            d.summary.contains(
                "/app/gateway cannot be executed: its ELF interpreter /lib64/ld-linux-x86-64.so.2 \
                 is not in the image"
            ),
            "{}",
            d.summary
        );
        assert!(d.summary.contains("no syscall data"), "{}", d.summary);
    }

    #[test]
    fn exit_127_without_syscall_data_is_a_low_confidence_exec_failure() {
        let d = check(&without_recorder(fixture("exec_failed")));
        assert_eq!(d.cause, Cause::ExecFailed);
        assert_eq!(d.confidence, Confidence::Low);
        assert!(d
            .summary
            .contains("shells exit 127 when a command was not found"));
    }
}
