//! The moment of death, seen by the agent itself. A pidfd on each tracked container's init
//! process becomes readable when that process exits; the agent reads the container's cgroup
//! usage at once, before the task's delete (the CRI's, or runc's) removes the cgroup, and
//! whether or not containerd is there to publish the exit. The exit, when it is learned (live,
//! from the task list, from the CRI after containerd or the agent came back), uses this reading
//! when its own comes too late.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::debug;

use super::registry::EnrichedRx;
use super::Shared;
use crate::model::CgroupUsage;

/// How long a death waits for the container's cgroup path from its enrichment (a container
/// found running at start-up, or created without a readable bundle).
const PATH_WAIT: Duration = Duration::from_secs(2);

/// The usage read when the init process died; empty until then, or when it could not be read.
pub type AtDeath = Arc<OnceLock<CgroupUsage>>;

/// An owned pidfd, pollable by tokio.
pub(super) struct PidFd(OwnedFd);

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl PidFd {
    /// Registers the pidfd with tokio's reactor, for readability (the process exited).
    pub(super) fn into_async(self) -> std::io::Result<AsyncFd<PidFd>> {
        // SAFETY: `PidFd` owns its fd, never replaces it, and closes it only when dropped with
        // the `AsyncFd`.
        unsafe { AsyncFd::register_with_interest(self, Interest::READABLE) }.map_err(Into::into)
    }
}

pub(super) fn pidfd_open(pid: u32) -> std::io::Result<PidFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is shared.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(PidFd(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
}

/// Watches `pid` (a container's init) and reads its cgroup the moment it dies. `path` is the
/// cgroup when known at create time; otherwise the enrichment's is awaited. `None` when the
/// process cannot be watched (already gone, or pid 0).
pub fn watch(
    shared: &Arc<Shared>,
    pid: u32,
    path: Option<String>,
    mut enriched: EnrichedRx,
) -> Option<AtDeath> {
    if pid == 0 || !shared.usage_delay.is_zero() {
        // The fault injection of a late agent reads nothing at the death either.
        return None;
    }
    let fd = match pidfd_open(pid).and_then(PidFd::into_async) {
        Ok(fd) => fd,
        Err(e) => {
            debug!(pid, error = %e, "init process not watched");
            return None;
        }
    };
    let at_death = AtDeath::default();
    let cell = at_death.clone();
    let shared = shared.clone();
    tokio::spawn(async move {
        // Readable once the process has exited; an error means the same for our purpose.
        let _ = fd.readable().await;
        drop(fd);
        debug!(pid, "init process died");
        let path = match path {
            Some(p) => p,
            None => {
                let ready = tokio::time::timeout(PATH_WAIT, enriched.wait_for(Option::is_some));
                match ready.await {
                    Ok(Ok(e)) => match e.as_ref().and_then(|e| e.cgroup_path.clone()) {
                        Some(p) => p,
                        None => return,
                    },
                    _ => return,
                }
            }
        };
        let reader = shared.clone();
        let read = tokio::task::spawn_blocking(move || reader.cgroups.read_usage(&path)).await;
        match read {
            Ok(Ok(usage)) => {
                let _ = cell.set(usage);
            }
            Ok(Err(e)) => debug!(pid, error = %e, "cgroup not read at the init's death"),
            Err(e) => debug!(pid, error = %e, "cgroup read task failed"),
        }
    });
    Some(at_death)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pidfd_becomes_readable_when_the_process_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let fd = pidfd_open(child.id()).unwrap().into_async().unwrap();
        let waited = tokio::time::timeout(Duration::from_secs(5), fd.readable()).await;
        assert!(waited.is_ok(), "no readiness within 5 s");
        assert!(child.try_wait().unwrap().is_some() || child.wait().is_ok());
    }

    #[test]
    fn a_process_that_does_not_exist_is_an_error() {
        // pid_max is at most 2^22: this pid cannot exist.
        assert!(pidfd_open(1 << 23).is_err());
    }
}
