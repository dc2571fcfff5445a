//! What the node says about one container, looked up beside the event loop: containerd's record
//! (command, image, labels, Kubernetes identity, cgroup path), the image digest, the cgroup
//! limits snapshotted while the container lives, and the entrypoint as its root filesystem has
//! it at create time ([`crate::rootfs`]). Every failure becomes a collection error in the report
//! and its metric, under one label ([`Shared::collection_error`]).

use std::path::{Path, PathBuf};

use super::registry::Key;
use super::Shared;
use crate::cgroup::{self, CgroupFs};
use crate::containerd::Containerd;
use crate::model::{CgroupLimits, EntrypointReport};
use crate::report::Enriched;
use crate::rootfs;
use tracing::debug;

/// What `/tasks/create` said of a container: its init (`runc init`, before the entrypoint's
/// exec) and its OCI bundle (where the agent sees it) with its spec, read at the event.
#[derive(Debug)]
pub(super) struct Created {
    pub pid: u32,
    pub spec: Result<(PathBuf, serde_json::Value), rootfs::RootfsError>,
}

impl Created {
    /// Reads the spec of a created container's bundle at once (one small read): the cgroup
    /// path in it must be known before the container can exit, and the entrypoint read before
    /// it runs. `None` for an event without a bundle.
    pub fn read(containerd_dir: &Path, pid: u32, bundle: &str) -> Option<Created> {
        if bundle.is_empty() {
            return None;
        }
        let node_path = PathBuf::from(bundle);
        let bundle = rootfs::find_bundle(&node_path, containerd_dir).unwrap_or(node_path);
        let spec = rootfs::read_spec(&bundle).map(|spec| (bundle, spec));
        Some(Created { pid, spec })
    }

    /// The task's root filesystem (the bundle's `rootfs`, or the spec's `root.path`) and what
    /// the spec says of where the runtime writes post-mortem files.
    pub fn rootfs_and_plan(&self) -> Option<(PathBuf, crate::artifacts::Plan)> {
        let (bundle, spec) = self.spec.as_ref().ok()?;
        let rootfs = bundle.join(spec["root"]["path"].as_str().unwrap_or("rootfs"));
        Some((rootfs, crate::artifacts::Plan::from_spec(spec)))
    }

    /// The container's cgroup, from its spec.
    pub fn cgroup_path(&self) -> Option<String> {
        let (_, spec) = self.spec.as_ref().ok()?;
        CgroupFs::resolve_spec_path(rootfs::spec_cgroups_path(spec)?).ok()
    }
}

/// Looks a container up in containerd, snapshots its cgroup limits and, when it was seen
/// created, reads its entrypoint (at once, beside the look-up: an exec that fails unmounts the
/// root filesystem within 100 ms).
pub(super) async fn enrich(
    shared: &Shared,
    client: Option<&Containerd>,
    key: &Key,
    created: Option<Created>,
) -> Enriched {
    // The limits and the recorder's key first, while the cgroup surely exists: the look-up
    // below takes a few ms, and a container that dies at once (a shell that cannot open its
    // script exits within 10 ms) has its cgroup removed by then.
    let early = created
        .as_ref()
        .and_then(Created::cgroup_path)
        .map(|path| Early {
            cgroup_id: shared.cgroups.unified_cgroup_id(&path),
            limits: shared.cgroups.read_limits(&path),
            path,
        });
    let rootfs = created
        .as_ref()
        .and_then(Created::rootfs_and_plan)
        .map(|(r, _)| r);
    let entrypoint = created.map(|c| {
        tokio::task::spawn_blocking(move || {
            let (bundle, spec) = c.spec?;
            rootfs::inspect_container(Path::new("/proc"), &bundle, &spec, c.pid)
        })
    });
    let mut out = enrich_meta(shared, client, key, early, true).await;
    out.rootfs = rootfs;
    if let Some(task) = entrypoint {
        out.entrypoint = match task.await {
            Ok(Ok(found)) => found,
            // Like the recorder's `unavailable`: what this agent may not read (a DaemonSet
            // without the capability or mount propagation it needs), said in the section, not
            // a collection error in every report.
            Ok(Err(e)) => {
                debug!(container = %key.id, stage = e.label(), error = %e, "entrypoint not inspected");
                Some(EntrypointReport {
                    unavailable: Some(e.to_string()),
                    ..Default::default()
                })
            }
            Err(e) => Some(EntrypointReport {
                unavailable: Some(format!("inspection task: {e}")),
                ..Default::default()
            }),
        };
    }
    out
}

/// A container whose process never started (the CRI's `StartError`): containerd's record
/// only. runc removed its cgroup with the failed attempt, so there are no limits to read.
pub(super) async fn never_started(
    shared: &Shared,
    client: Option<&Containerd>,
    key: &Key,
) -> Enriched {
    enrich_meta(shared, client, key, None, false).await
}

/// What was read of a created container's cgroup before the containerd look-up.
struct Early {
    path: String,
    cgroup_id: Option<u64>,
    limits: Result<CgroupLimits, cgroup::Error>,
}

async fn enrich_meta(
    shared: &Shared,
    client: Option<&Containerd>,
    key: &Key,
    mut early: Option<Early>,
    has_cgroup: bool,
) -> Enriched {
    let mut out = Enriched::default();
    let Some(client) = client else {
        let e = shared.collection_error("containerd_metadata", "not connected to containerd");
        out.errors.push(e);
        return out;
    };
    let meta = match client.container_meta(&key.namespace, &key.id).await {
        Ok(m) => m,
        Err(e) => {
            out.errors.push(shared.collection_error(e.label(), &e));
            return out;
        }
    };
    if let Some(spec_path) = meta.cgroups_path.as_ref().filter(|_| has_cgroup) {
        match CgroupFs::resolve_spec_path(spec_path) {
            Ok(path) => {
                let early = early.take().filter(|e| e.path == path);
                out.cgroup_id = early
                    .as_ref()
                    .and_then(|e| e.cgroup_id)
                    .or_else(|| shared.cgroups.unified_cgroup_id(&path));
                if meta.is_sandbox {
                    // A sandbox needs only its recorder key, so its recording can be freed at
                    // exit.
                    out.meta = Some(meta);
                    return out;
                }
                let limits = match early {
                    Some(e) => e.limits,
                    None => shared.cgroups.read_limits(&path),
                };
                match limits {
                    Ok(limits) => out.limits = Some(limits),
                    Err(e) => out.errors.push(shared.collection_error(e.label(), &e)),
                }
                out.cgroup_path = Some(path);
            }
            Err(e) => out.errors.push(shared.collection_error(e.label(), &e)),
        }
    }
    if let (false, Some((snapshotter, snapshot_key))) = (meta.is_sandbox, &meta.snapshot) {
        // Not a collection error: only post-mortem files need it, and they say so.
        match client
            .snapshot_dirs(&key.namespace, snapshotter, snapshot_key)
            .await
        {
            Ok(dirs) => {
                out.writable_layer = dirs.upper;
                out.image_layers = dirs.lower;
            }
            Err(e) => debug!(container = %key.id, error = %e, "snapshot mounts not read"),
        }
    }
    if !meta.is_sandbox {
        if let Some(image) = &meta.image {
            // Down to the config, so the exit can tell whether the name still means it.
            match client.resolve_image(&key.namespace, image).await {
                Ok(Some(r)) => {
                    out.image_digest = Some(r.record.target.digest.clone());
                    out.image_ran = Some(crate::report::image_content(&r));
                }
                Ok(None) => {}
                Err(e) => {
                    out.errors.push(shared.collection_error("image_digest", &e));
                    if let Ok(d) = client.image_digest(&key.namespace, image).await {
                        out.image_digest = d;
                    }
                }
            }
        }
    }
    out.meta = Some(meta);
    out
}
