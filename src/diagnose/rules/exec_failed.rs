//! `exec_failed`: `execve("/app/bin/start") = ENOENT` after which a shell exits 126/127, or the
//! init's own exec failing last. Without syscall data, a shell's 126/127 alone still says so,
//! with low confidence.

use super::Rule;
use crate::diagnose::evidence::{diagnosis, main_arg};
use crate::diagnose::facts::{failed, Facts};
use crate::model::{Cause, Confidence, Diagnosis, SyscallEvent};

pub(in crate::diagnose) struct ExecFailed;

impl Rule for ExecFailed {
    fn name(&self) -> &'static str {
        "exec_failed"
    }

    fn diagnose(&self, f: &Facts) -> Option<Diagnosis> {
        let code = f.r.exit.code;
        let is_exec = |e: &SyscallEvent| matches!(e.syscall.as_str(), "execve" | "execveat");
        let shell_code = code == 126 || code == 127;
        let Some((field, e)) = f.find_failure(|e| failed(e) && is_exec(e)) else {
            if shell_code && f.rec.is_none() {
                let meaning = if code == 127 {
                    "a command was not found"
                } else {
                    "a command was found but could not be executed"
                };
                return Some(diagnosis(
                    Cause::ExecFailed,
                    Confidence::Low,
                    format!(
                        "{}: shells exit {code} when {meaning}; no syscall data ({}) to name it",
                        f.exited(),
                        f.no_data_reason()
                    ),
                    vec![f.exit_evidence()],
                    Some(format!("exit {code}")),
                ));
            }
            return None;
        };
        // A failed exec long before the exit (a PATH search that later succeeded) is not the
        // cause.
        let last_failure = f.failures().next().map(|(fl, _)| fl) == Some(field.clone());
        if !shell_code && !last_failure {
            return None;
        }
        let path = main_arg(e);
        let errno = e.errno.clone().unwrap_or_default();
        let evidence = f.failure_evidence(&field, e);
        Some(diagnosis(
            Cause::ExecFailed,
            if shell_code {
                Confidence::High
            } else {
                Confidence::Medium
            },
            format!("exec of {path} failed: {errno} (exit {code})"),
            evidence,
            Some(format!("{} {path} {errno}", e.syscall)),
        ))
    }
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
    fn exit_127_without_syscall_data_is_a_low_confidence_exec_failure() {
        let d = check(&without_recorder(fixture("exec_failed")));
        assert_eq!(d.cause, Cause::ExecFailed);
        assert_eq!(d.confidence, Confidence::Low);
        assert!(d
            .summary
            .contains("shells exit 127 when a command was not found"));
    }
}
