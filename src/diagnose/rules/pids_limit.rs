//! `pids_limit`: `clone`/`fork` failed with EAGAIN, or the pids cgroup counted refused forks
//! (`pids.events` max). Either alone is medium confidence; both together are high.

use super::Rule;
use crate::diagnose::evidence::{diagnosis, ev, plural};
use crate::diagnose::facts::Facts;
use crate::model::{Cause, Confidence, Diagnosis, SyscallEvent};

pub(in crate::diagnose) struct PidsLimit;

impl Rule for PidsLimit {
    fn name(&self) -> &'static str {
        "pids_limit"
    }

    fn diagnose(&self, f: &Facts) -> Option<Diagnosis> {
        let usage = f.r.cgroup.usage.as_ref();
        let refused = usage.and_then(|u| u.pids_max_events).unwrap_or(0);
        let is_fork = |e: &SyscallEvent| {
            matches!(e.syscall.as_str(), "clone" | "clone3" | "fork" | "vfork")
                && e.errno.as_deref() == Some("EAGAIN")
        };
        let failure = f.find_failure(is_fork);
        if refused == 0 && failure.is_none() {
            return None;
        }
        let mut evidence = Vec::new();
        if refused > 0 {
            evidence.push(ev(
                format!(
                    "the pids cgroup refused {} at pids.max",
                    plural(refused, "fork")
                ),
                "/cgroup/usage/pids_max_events",
            ));
        }
        let max = f.r.cgroup.limits.as_ref().and_then(|l| l.pids_max);
        let peak = usage.and_then(|u| u.pids_peak);
        if let Some(p) = peak {
            evidence.push(ev(
                format!("at most {p} processes and threads ran at once"),
                "/cgroup/usage/pids_peak",
            ));
        }
        let limit = match (refused, max, peak) {
            // The container's cgroup counted nothing: the pod's pids.max (counted there) or the
            // user's RLIMIT_NPROC.
            (0, _, _) => "pids.max or the user's process limit (RLIMIT_NPROC)".to_string(),
            (_, Some(m), _) => format!("the cgroup's pids.max ({m})"),
            (_, None, Some(p)) => {
                format!("the cgroup's pids.max (the pod's; {p} tasks at the peak)")
            }
            (_, None, None) => "the cgroup's pids.max".to_string(),
        };
        let what = match &failure {
            Some((field, e)) => {
                evidence.insert(0, ev(format!("{}() = EAGAIN", e.syscall), field));
                format!("{} = EAGAIN", e.syscall)
            }
            None => "fork refused".to_string(),
        };
        evidence.push(f.exit_evidence());
        Some(diagnosis(
            Cause::PidsLimit,
            if failure.is_some() && refused > 0 {
                Confidence::High
            } else {
                Confidence::Medium
            },
            format!(
                "{}: could not start a process: {what}, {limit} was reached",
                f.exited()
            ),
            evidence,
            Some("clone EAGAIN pids.max".to_string()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::testing::{check, fixture};
    use crate::model::{Cause, Confidence};

    #[test]
    fn fork_refused_at_pids_max_is_pids_limit() {
        let d = check(&fixture("pids_limit"));
        assert_eq!(d.cause, Cause::PidsLimit);
        assert_eq!(d.confidence, Confidence::High);
        assert!(
            d.summary
                .starts_with("Exited 2 after 14 ms: could not start a process: clone"),
            "{}",
            d.summary
        );
        assert!(
            d.summary.contains("= EAGAIN, the cgroup's pids.max"),
            "{}",
            d.summary
        );
    }
}
