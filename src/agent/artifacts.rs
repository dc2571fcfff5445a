//! Post-mortem files, grabbed at the moment of death and looked for again when the report is
//! finished. The first look runs the instant the init's pidfd says it died, in the task's root
//! filesystem at the bundle: for a CRI container that mount goes 20-100 ms later, with the
//! task's delete. The second, in [`collect_at_finish`], knows the captured output (the paths a
//! crash message names) and reads the root filesystem if it is still mounted, else the
//! snapshot's upper directory, which lasts until the container is removed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::debug;

use super::deathwatch::pidfd_open;
use super::Shared;
use crate::artifacts::{self, find::named_paths, Bounds, Collection, Plan, Source};
use crate::model::CapturedOutput;
use crate::report::Enriched;

/// How long finishing waits for the look at death (it reads at most the bounds' bytes).
const GRAB_WAIT: Duration = Duration::from_secs(10);

/// The look at death: `None` until it is done.
pub type Grabbed = watch::Receiver<Option<Arc<Collection>>>;

/// Watches `pid` (a container's init) and reads the known post-mortem files in `rootfs` the
/// moment it dies. `None` when the process cannot be watched.
pub(super) fn grab_at_death(
    shared: &Arc<Shared>,
    pid: u32,
    rootfs: PathBuf,
    plan: Plan,
) -> Option<Grabbed> {
    if pid == 0 {
        return None;
    }
    let fd = match pidfd_open(pid).and_then(|fd| fd.into_async()) {
        Ok(fd) => fd,
        Err(e) => {
            debug!(pid, error = %e, "init process not watched for artifacts");
            return None;
        }
    };
    let (tx, rx) = watch::channel(None);
    let keep = shared.redaction.keep_artifacts;
    tokio::spawn(async move {
        let _ = fd.readable().await;
        drop(fd);
        let died = Instant::now();
        let found = tokio::task::spawn_blocking(move || {
            let root = artifacts::open_root(&rootfs)?;
            let opened = died.elapsed();
            let c = artifacts::collect(&root, Source::BundleRootfs, &plan, &Bounds::default(), keep, &Collection::default());
            debug!(pid, rootfs = %rootfs.display(), opened_us = opened.as_micros() as u64, files = c.files.len(), "artifacts looked for at the init's death");
            Some(c)
        })
        .await
        .ok()
        .flatten();
        let _ = tx.send(Some(Arc::new(found.unwrap_or_default())));
    });
    Some(rx)
}

/// The second look, at finish: the known files again (when the look at death could not run)
/// and the paths `output` names. Returns the merged collection, or why nothing could be read.
pub(super) async fn collect_at_finish(
    shared: &Shared,
    enriched: &Enriched,
    grabbed: Option<Grabbed>,
    output: Option<&CapturedOutput>,
) -> (Option<Collection>, Option<String>) {
    let mut at_death = None;
    if let Some(mut rx) = grabbed {
        if let Ok(Ok(v)) = tokio::time::timeout(GRAB_WAIT, rx.wait_for(Option::is_some)).await {
            at_death = v.clone();
        }
    }
    let Some(meta) = enriched.meta.as_ref() else {
        return (at_death.map(|c| Collection::clone(&c)), None);
    };
    let mut plan = Plan::new(
        meta.cwd.as_deref(),
        meta.env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    if let Some(out) = output {
        let text = [
            &out.stderr.head,
            &out.stderr.tail,
            &out.stdout.head,
            &out.stdout.tail,
        ]
        .map(|s| s.as_str())
        .join("\n");
        plan.named = named_paths(&text);
    }
    let roots: Vec<(PathBuf, Source)> = [
        enriched.rootfs.clone().map(|p| (p, Source::BundleRootfs)),
        enriched
            .writable_layer
            .clone()
            .map(|p| (p, Source::SnapshotUpper)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let keep = shared.redaction.keep_artifacts;
    let base = at_death.map(|c| Collection::clone(&c)).unwrap_or_default();
    let looked = tokio::task::spawn_blocking(move || {
        let mut tried = Vec::new();
        for (path, source) in roots {
            match artifacts::open_root(&path) {
                Some(root) => {
                    let later =
                        artifacts::collect(&root, source, &plan, &Bounds::default(), keep, &base);
                    let mut all = base;
                    all.merge(later);
                    return (Some(all), None);
                }
                None => tried.push(format!(
                    "{} ({}): not there",
                    path.display(),
                    source.as_str()
                )),
            }
        }
        let had = base.source.is_some();
        let why = (!had).then(|| {
            if tried.is_empty() {
                "neither the task's root filesystem nor the container's snapshot was known"
                    .to_string()
            } else {
                format!("the container's filesystem was gone: {}", tried.join("; "))
            }
        });
        (had.then_some(base), why)
    })
    .await;
    looked.unwrap_or_else(|e| (None, Some(format!("artifact collection task: {e}"))))
}
