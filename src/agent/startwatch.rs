//! Containers that never start. When runc cannot start a CRI container's process (entrypoint
//! not found, a user or group the kernel refuses, a mount source that is gone), containerd
//! publishes `/containers/create` and then nothing: no task is ever created, so no
//! `/tasks/exit` comes. The CRI plugin marks the container exited, reason `StartError`, code
//! 128, with runc's message.
//!
//! So each CRI container created is watched from `/containers/create` until its task appears
//! (the event loop aborts the watch) or the CRI says how its start went: a few status calls in
//! the first second (StartContainer follows CreateContainer at once from kubelet, and runc
//! fails within 100-500 ms), then one a second, for at most [`GIVE_UP`]. A container still
//! not started then is left to the reconcile after the next (re)connect, which lists the
//! CRI's exited containers.
//!
//! runc ran `runc init` in the container's cgroup before it failed, and the flight recorder
//! recorded it under that cgroup's id; runc removes the cgroup with the failed attempt. So the
//! watch also waits (on a blocking thread) for the cgroup's directory to appear and keeps its id
//! ([`crate::cgroup::wait_for_dir_id`]), for the report to drain what the recorder saw.

use std::time::Duration;

use tracing::debug;

use crate::cgroup::{wait_for_dir_id, CgroupFs};
use crate::containerd::cri::{CriStart, CRI_NAMESPACE};
use crate::containerd::{ClientError, Containerd, CriExit};

/// The first status call after the create, doubled up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(1);
/// How long a created container is watched for its start.
const GIVE_UP: Duration = Duration::from_secs(300);
/// How long the cgroup's directory is waited for: runc makes it 50-500 ms after the create.
const CGROUP_WAIT: Duration = Duration::from_secs(10);

/// A start that failed: the CRI's exit, and the id of the cgroup runc's attempt ran in.
pub(super) type FailedStart = (CriExit, Option<u64>);

/// Waits until the CRI says whether `container_id` started; when its start failed, its exit and
/// the id of the cgroup runc's attempt ran in (when the agent saw it).
pub(super) async fn watch(
    client: Containerd,
    cgroups: CgroupFs,
    container_id: String,
) -> Option<FailedStart> {
    let meta = client
        .container_meta(CRI_NAMESPACE, &container_id)
        .await
        .ok()?;
    if meta.is_sandbox {
        return None;
    }
    let appeared = meta
        .cgroups_path
        .as_deref()
        .and_then(|p| CgroupFs::resolve_spec_path(p).ok())
        .and_then(|p| cgroups.unified_dir(&p))
        .map(|dir| tokio::task::spawn_blocking(move || wait_for_dir_id(&dir, CGROUP_WAIT)));
    let failed = poll(&client, &container_id).await?;
    // The failure is known 100 ms or more after the mkdir: a waiter still waiting saw none.
    let cgroup_id = match appeared {
        Some(waiter) if waiter.is_finished() => match waiter.await {
            Ok(Ok(id)) => id,
            Ok(Err(e)) => {
                debug!(container = %container_id, error = %e, "watching for the cgroup of a start");
                None
            }
            Err(_) => None,
        },
        Some(waiter) => {
            waiter.abort();
            None
        }
        None => None,
    };
    Some((failed, cgroup_id))
}

async fn poll(client: &Containerd, container_id: &str) -> Option<CriExit> {
    let deadline = tokio::time::Instant::now() + GIVE_UP;
    let mut delay = FIRST_DELAY;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
        match client.cri_start(container_id).await {
            Ok(CriStart::Pending) => continue,
            Ok(CriStart::Failed(exit)) => return Some(exit),
            Ok(CriStart::Started | CriStart::Unknown) => return None,
            // A containerd without the CRI plugin: nothing to watch.
            Err(ClientError::Call { status, .. })
                if status.code() == tonic::Code::Unimplemented =>
            {
                return None
            }
            Err(e) => {
                debug!(container = %container_id, error = %e, "CRI status of a created container")
            }
        }
    }
    debug!(container = %container_id, "created container not started: left to the next reconcile");
    None
}
