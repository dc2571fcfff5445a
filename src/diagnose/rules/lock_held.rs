//! `lock_held`: `flock` (EAGAIN) or a non-blocking `fcntl(F_SETLK)` (EAGAIN/EACCES) failed:
//! another process holds the lock. A blocking `F_SETLKW` waits for the lock instead, so its
//! failures say nothing about a holder.

use super::Rule;
use crate::diagnose::evidence::{diagnosis, fd_path};
use crate::diagnose::facts::Facts;
use crate::model::{Cause, Confidence, Diagnosis, SyscallEvent};

pub(in crate::diagnose) struct LockHeld;

impl Rule for LockHeld {
    fn name(&self) -> &'static str {
        "lock_held"
    }

    fn diagnose(&self, f: &Facts) -> Option<Diagnosis> {
        let is_lock = |e: &SyscallEvent| match e.syscall.as_str() {
            "flock" => matches!(e.errno.as_deref(), Some("EAGAIN" | "EWOULDBLOCK")),
            "fcntl" | "fcntl64" => {
                matches!(e.errno.as_deref(), Some("EAGAIN" | "EACCES"))
                    && e.args
                        .get(1)
                        .is_some_and(|c| c.contains("SETLK") && !c.contains("SETLKW"))
            }
            _ => false,
        };
        let (field, e) = f.find_failure(is_lock)?;
        let path = fd_path(e.args.first().map(String::as_str).unwrap_or_default());
        let errno = e.errno.clone().unwrap_or_default();
        let evidence = f.failure_evidence(&field, e);
        Some(diagnosis(
            Cause::LockHeld,
            Confidence::High,
            format!(
                "{}: could not lock {path}: {} = {errno} (held by another process)",
                f.exited(),
                e.syscall
            ),
            evidence,
            Some(format!("{} {path} {errno}", e.syscall)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::testing::{check, fixture};
    use crate::model::Cause;

    #[test]
    fn flock_on_a_held_file_is_lock_held_with_the_path() {
        let d = check(&fixture("lock_held"));
        assert_eq!(d.cause, Cause::LockHeld);
        assert_eq!(
            d.summary,
            "Exited 1 after <1 ms: could not lock /dev/shm/mongod.lock: flock = EAGAIN (held by another process)"
        );
        assert_eq!(d.key.as_deref(), Some("flock /dev/shm/mongod.lock EAGAIN"));
    }
}
