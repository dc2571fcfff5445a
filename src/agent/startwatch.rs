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

use std::time::Duration;

use tracing::debug;

use crate::containerd::cri::CriStart;
use crate::containerd::{ClientError, Containerd, CriExit};

/// The first status call after the create, doubled up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(1);
/// How long a created container is watched for its start.
const GIVE_UP: Duration = Duration::from_secs(300);

/// Waits until the CRI says whether `container_id` started; its exit when the start failed.
pub(super) async fn watch(client: Containerd, container_id: String) -> Option<CriExit> {
    let deadline = tokio::time::Instant::now() + GIVE_UP;
    let mut delay = FIRST_DELAY;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
        match client.cri_start(&container_id).await {
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
