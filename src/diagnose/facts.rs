//! The facts every rule reads, gathered once from the report: the recorder's data when it
//! recorded the container, and the workload's syscalls and failures picked out of it. Also which
//! failures count as evidence at all. The wording built from these facts is in `evidence.rs`.

use super::statements;
use crate::model::{
    signal_name, CrashReport, ProcessEventKind, RecorderReport, Statement, SyscallEvent,
};

/// The report, with the recorder's workload syscalls picked out once.
pub(super) struct Facts<'a> {
    pub(super) r: &'a CrashReport,
    /// The recorder's data, when it recorded the container.
    pub(super) rec: Option<&'a RecorderReport>,
    /// `(index in flight_recorder, event)` of the workload's syscalls, oldest first.
    pub(super) tail: Vec<(usize, &'a SyscallEvent)>,
    /// `(index in first_failures, event)` of the workload's failures.
    pub(super) first: Vec<(usize, &'a SyscallEvent)>,
    /// What the runtime said about its death in the captured output, if anything.
    pub(super) statement: Option<Statement>,
    /// runc's exec of the entrypoint, when it failed and nothing of the workload ran: the
    /// recorder counts runc's calls as set-up, but this one is the entrypoint's failure.
    /// `(field in the report, event)`.
    pub(super) entrypoint_exec_failure: Option<(String, &'a SyscallEvent)>,
}

pub(super) fn is_exec(e: &SyscallEvent) -> bool {
    matches!(e.syscall.as_str(), "execve" | "execveat")
}

fn is_workload(e: &SyscallEvent) -> bool {
    !e.comm.starts_with("runc")
}

/// A failure that can be evidence: not the kernel-internal ERESTART* codes, not a routine one.
pub(super) fn failed(e: &SyscallEvent) -> bool {
    e.errno
        .as_deref()
        .is_some_and(|n| !n.starts_with("ERESTART"))
        && !routine(e)
}

/// Failures programs meet and handle every day, which explain no exit: a shell's last `wait4`
/// (ECHILD), `isatty()` (ENOTTY), an interrupted call (an `execve` cut short by a signal too),
/// a would-block call, `lseek` on a pipe, `readlink` of a non-link.
fn routine(e: &SyscallEvent) -> bool {
    let errno = e.errno.as_deref().unwrap_or_default();
    matches!(errno, "EINTR" | "ENOTTY")
        || matches!(
            (e.syscall.as_str(), errno),
            ("wait4" | "waitid" | "waitpid", "ECHILD")
                | ("lseek", "ESPIPE")
                | ("readlink" | "readlinkat", "EINVAL")
                | ("futex", "EAGAIN" | "ETIMEDOUT")
                | (
                    "read"
                        | "recvfrom"
                        | "recvmsg"
                        | "accept"
                        | "accept4"
                        | "write"
                        | "sendto"
                        | "sendmsg",
                    "EAGAIN"
                )
        )
}

impl<'a> Facts<'a> {
    pub(super) fn new(r: &'a CrashReport) -> Self {
        let rec = r.recorder.as_ref().filter(|rec| rec.state.has_data());
        let pick = |events: &'a [SyscallEvent]| -> Vec<(usize, &'a SyscallEvent)> {
            events
                .iter()
                .enumerate()
                .filter(|(_, e)| is_workload(e))
                .collect()
        };
        let tail = rec.map(|x| pick(&x.flight_recorder)).unwrap_or_default();
        let first = rec
            .map(|x| pick(&x.first_failures))
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, e)| failed(e))
            .collect();
        // runc's init execs the entrypoint last of all its calls; the exec that fails is the
        // last one in the ring when the workload never started.
        let entrypoint_exec_failure = rec.filter(|_| tail.is_empty()).and_then(|x| {
            let (i, e) = x
                .flight_recorder
                .iter()
                .enumerate()
                .rev()
                .find(|(_, e)| is_exec(e))?;
            (e.comm.starts_with("runc:[2:INIT]") && failed(e))
                .then(|| (format!("/recorder/flight_recorder/{i}"), e))
        });
        Facts {
            r,
            rec,
            tail,
            first,
            statement: statements::find(r),
            entrypoint_exec_failure,
        }
    }

    /// The workload's failing syscalls, newest first: the flight recorder's tail, then the first
    /// failures after exec (which the tail may have overwritten).
    pub(super) fn failures(&self) -> impl Iterator<Item = (String, &'a SyscallEvent)> + '_ {
        let tail = self
            .tail
            .iter()
            .rev()
            .filter(|(_, e)| failed(e))
            .map(|(i, e)| (format!("/recorder/flight_recorder/{i}"), *e));
        let first = self
            .first
            .iter()
            .rev()
            .map(|(i, e)| (format!("/recorder/first_failures/{i}"), *e));
        tail.chain(first)
    }

    pub(super) fn find_failure(
        &self,
        pred: impl Fn(&SyscallEvent) -> bool,
    ) -> Option<(String, &'a SyscallEvent)> {
        self.failures().find(|(_, e)| pred(e))
    }

    /// Workload syscalls after the one at `index` in the flight recorder.
    pub(super) fn calls_after(&self, field: &str) -> Option<usize> {
        let index: usize = field
            .strip_prefix("/recorder/flight_recorder/")?
            .parse()
            .ok()?;
        Some(self.tail.iter().filter(|(i, _)| *i > index).count())
    }

    /// A child whose fatal signal N the init process passed on as exit 128+N (a shell):
    /// `(field, comm, pid, signal)`.
    pub(super) fn signalled_child(&self) -> Option<(String, String, u32, String)> {
        let code = self.r.exit.code;
        if code <= 128 {
            return None;
        }
        let want = signal_name((code - 128) as i32);
        let rec = self.rec?;
        let i = rec.processes.iter().rposition(|p| {
            p.kind == ProcessEventKind::Exit
                && p.pid != self.r.container.pid
                && p.signal.as_deref() == Some(want.as_str())
        })?;
        let p = &rec.processes[i];
        Some((
            format!("/recorder/processes/{i}"),
            p.comm.clone(),
            p.pid,
            want.to_string(),
        ))
    }

    /// The comm of the init process as the recorder's timeline last saw it.
    pub(super) fn init_comm(&self) -> Option<&'a str> {
        let pid = self.r.container.pid;
        let rec = self.rec?;
        rec.processes
            .iter()
            .rev()
            .find(|p| p.pid == pid)
            .map(|p| p.comm.as_str())
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::testing::{check, fixture};

    #[test]
    fn routine_failures_after_the_real_one_do_not_hide_it() {
        let mut r = fixture("exited_error");
        let rec = r.recorder.as_mut().unwrap();
        let cat = rec
            .flight_recorder
            .iter()
            .rposition(|e| e.comm == "cat")
            .unwrap();
        // A shell around `cat` would wait for it, then find no child left.
        let mut wait = rec.flight_recorder[cat].clone();
        wait.syscall = "wait4".into();
        wait.args = vec!["-1".into(), "0x7ffc".into(), "0".into(), "NULL".into()];
        wait.ret = -10;
        wait.errno = Some("ECHILD".into());
        rec.flight_recorder.insert(cat + 1, wait);
        let d = check(&r);
        assert!(
            d.summary.ends_with("openat(\"/nonexistent\") = ENOENT"),
            "{}",
            d.summary
        );
    }
}
