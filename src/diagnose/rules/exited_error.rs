//! `exited_error`, the fallback: any other non-zero exit, with the best explanation at hand: a
//! child's fatal signal that a shell passed on as 128+N, the last failing syscall (medium
//! confidence when it came right before the exit), the last line written to stderr, or what is
//! missing when there is no syscall data (then the confidence is `low`). Unlike the rules it
//! always answers, so it does not implement [`Rule`](super::Rule).

use crate::diagnose::evidence::{call, diagnosis, ev, main_arg};
use crate::diagnose::facts::Facts;
use crate::model::{signal_name, Cause, Confidence, Diagnosis, ProcessEventKind};

/// A failure this many workload syscalls or fewer before the end of the flight recorder counts
/// as "right before the exit".
const NEAR_EXIT: usize = 30;

pub(in crate::diagnose) struct ExitedError;

impl ExitedError {
    /// Its name, as in the documented order of the rules.
    // Read only by the test of the order, like `Rule::name`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(in crate::diagnose) fn name(&self) -> &'static str {
        "exited_error"
    }

    pub(in crate::diagnose) fn diagnose(&self, f: &Facts) -> Diagnosis {
        let r = f.r;
        let code = r.exit.code;
        let mut evidence = vec![f.exit_evidence()];
        if f.rec.is_none() {
            let why = f.no_data_reason();
            return diagnosis(
                Cause::ExitedError,
                Confidence::Low,
                format!(
                    "{}; no syscall data ({why}), so nothing beyond the exit code: see the container's log",
                    f.exited()
                ),
                evidence,
                Some(format!("exit {code}")),
            );
        }
        // A shell that exits 128+N after its child died of signal N.
        if let Some(child) = f.rec.and_then(|rec| {
            rec.processes.iter().rev().find(|p| {
                p.kind == ProcessEventKind::Exit
                    && p.pid != r.container.pid
                    && p.signal
                        .as_deref()
                        .is_some_and(|s| code > 128 && signal_name((code - 128) as i32) == s)
            })
        }) {
            let i = f
                .rec
                .map(|rec| rec.processes.iter().rposition(|p| p == child).unwrap_or(0))
                .unwrap_or(0);
            let sig = child.signal.clone().unwrap_or_default();
            evidence.insert(
                0,
                ev(
                    format!("`{}` (pid {}) died of {sig}", child.comm, child.pid),
                    &format!("/recorder/processes/{i}"),
                ),
            );
            return diagnosis(
                Cause::ExitedError,
                Confidence::Medium,
                format!(
                    "{}: its child `{}` (pid {}) died of {sig} and the init process passed that on",
                    f.exited(),
                    child.comm,
                    child.pid
                ),
                evidence,
                Some(format!("child {sig} {}", child.comm)),
            );
        }
        let output = f.last_output_line();
        let Some((field, e)) = f.failures().next() else {
            evidence.extend(output.clone());
            let said = output.map(|o| format!("; {}", o.fact)).unwrap_or_default();
            return diagnosis(
                Cause::ExitedError,
                Confidence::Low,
                format!(
                    "{}; no syscall failed after the entrypoint's exec: the program decided to exit{said}",
                    f.exited()
                ),
                evidence,
                Some(format!("exit {code}")),
            );
        };
        let errno = e.errno.clone().unwrap_or_default();
        let brief = format!("{} = {errno}", call(e));
        evidence.insert(0, ev(brief.clone(), &field));
        evidence.extend(output);
        let near = f.calls_after(&field).is_some_and(|n| n <= NEAR_EXIT);
        let (confidence, summary) = if near {
            (
                Confidence::Medium,
                format!("{}; last failing syscall before exit: {brief}", f.exited()),
            )
        } else {
            (
                Confidence::Low,
                format!(
                    "{}; the last failing syscall, well before the exit, was {brief}: the program decided to exit",
                    f.exited()
                ),
            )
        };
        diagnosis(
            Cause::ExitedError,
            confidence,
            summary,
            evidence,
            Some(format!("{} {} {errno}", e.syscall, main_arg(e))),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::testing::{check, fixture};
    use crate::model::{Cause, Confidence};

    #[test]
    fn missing_file_names_the_last_failing_syscall() {
        let d = check(&fixture("exited_error"));
        assert_eq!(d.cause, Cause::ExitedError);
        assert_eq!(d.confidence, Confidence::Medium);
        assert_eq!(
            d.summary,
            "Exited 1 after <1 ms; last failing syscall before exit: openat(\"/nonexistent\") = ENOENT"
        );
        assert_eq!(d.key.as_deref(), Some("openat /nonexistent ENOENT"));
        // runc's own failures and ERESTARTSYS around the exec are not the workload's.
        assert!(d.evidence.iter().all(|e| !e.fact.contains("futex")));
    }

    #[test]
    fn no_syscall_data_says_the_evidence_is_thin() {
        let d = check(&fixture("exited_error_no_recorder"));
        assert_eq!(d.cause, Cause::ExitedError);
        assert_eq!(d.confidence, Confidence::Low);
        assert_eq!(
            d.summary,
            "Exited 1 after 3 ms; no syscall data (the flight recorder is disabled (--no-recorder)), \
             so nothing beyond the exit code: see the container's log"
        );
    }

    #[test]
    fn report_from_before_the_recorder_is_diagnosed_too() {
        let mut r = fixture("exited_error");
        r.recorder = None;
        let d = check(&r);
        assert_eq!(d.confidence, Confidence::Low);
        assert!(d
            .summary
            .contains("did not exist when this report was written"));
    }

    #[test]
    fn a_program_that_fails_without_a_failing_syscall_shows_its_last_words() {
        let mut r = fixture("exited_error");
        let rec = r.recorder.as_mut().unwrap();
        for e in rec
            .flight_recorder
            .iter_mut()
            .chain(&mut rec.first_failures)
            .chain(&mut rec.telling_failures)
        {
            e.errno = None;
        }
        let d = check(&r);
        assert_eq!(d.confidence, Confidence::Low);
        assert!(
            d.summary.ends_with(
                "the program decided to exit; last line on stderr: cat: can't open '/nonexistent': No such file or directory"
            ),
            "{}",
            d.summary
        );
    }
}
