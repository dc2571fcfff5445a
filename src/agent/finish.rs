//! One exit, finished: gathers the inputs the event loop could not wait for (the container's
//! enrichment, the cgroup usage when its path was not known at the exit, the flight recorder's
//! drain), has [`build_report`] make the report, stores it and counts it.
//!
//! When the cgroup's files were gone before the agent read them (`cgroup_gone`: the agent was
//! late), the memory figures the recorder's kernel side kept at the container's last process exit
//! stand in, and the report says so (`cgroup.usage_source: kernel_at_exit`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::{debug, error, info, warn};

use super::deathwatch::AtDeath;
use super::journal::Entry;
use super::registry::EnrichedRx;
use super::Shared;
use crate::cgroup;
use crate::containerd::cri::{parse_cri_log, read_log_tail};
use crate::containerd::{Containerd, CriExit};
use crate::model::{
    CapturedOutput, CgroupUsage, CollectionError, CrashReport, ExitStatus, ProcessEventKind,
    RecorderReport, RecorderState, UsageSource,
};
use crate::report::artifacts::{prepare, ArtifactFile};
use crate::report::{build_report, Enriched, ExitEvent, ImageLookup, Inputs};
use crate::store::{Inserted, StoreError};

/// How long an exit waits for its container's enrichment before writing what it has.
const ENRICH_WAIT: Duration = Duration::from_secs(10);
/// How long the image reference's look-up at the exit may take (three small calls; beside the
/// recorder's drain, so it delays the report only when containerd is slow).
const IMAGE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How the agent learned of an exit.
pub(super) enum Seen {
    /// From containerd's exit event, as it happened.
    Live,
    /// From containerd's task list after a (re)connect: the task had stopped, not yet deleted.
    TaskList,
    /// From the CRI plugin's exited containers after a (re)connect: the task was already gone.
    Cri(Box<CriExit>),
    /// Tracked (by this agent process, or by the previous one through the journal), and gone
    /// from containerd and the CRI after a (re)connect: exited and deleted unseen. Status and
    /// time come from the pinned flight recorder.
    Vanished(Option<Box<Entry>>),
    /// From the CRI, as it happened: runc could not start the container's process
    /// (`StartError`), so containerd never had a task to publish an exit for.
    /// With the id of the cgroup runc's attempt ran in, when the agent saw it.
    StartFailed(Box<CriExit>, Option<u64>),
}

impl Seen {
    pub(super) fn label(&self) -> &'static str {
        match self {
            Seen::Live => "live",
            Seen::TaskList => "task_list",
            Seen::Cri(_) => "cri",
            Seen::Vanished(_) => "vanished",
            Seen::StartFailed(..) => "start_failed",
        }
    }
}

/// An exit waiting to become a report.
pub(super) struct Pending {
    pub exit: ExitEvent,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub oom_events: u32,
    pub enriched: Option<EnrichedRx>,
    /// Usage read at the moment of the exit event, when the cgroup path was already known.
    pub usage: Option<Result<CgroupUsage, cgroup::Error>>,
    /// Usage read by the agent's own watch when the init process died.
    pub at_death: Option<AtDeath>,
    /// Post-mortem files read when the init process died.
    pub artifacts: Option<super::artifacts::Grabbed>,
    pub seen: Seen,
    pub received: Instant,
    /// What the container used while it lived, sampled.
    pub history: Option<crate::model::UsageHistory>,
    /// containerd, to look the image reference up again at the exit.
    pub client: Option<Containerd>,
}

pub(super) async fn finish(shared: Arc<Shared>, p: Pending) {
    let mut errors = Vec::new();
    let enriched = match p.enriched {
        Some(mut rx) => match tokio::time::timeout(ENRICH_WAIT, rx.wait_for(Option::is_some)).await
        {
            Ok(Ok(v)) => v.clone().unwrap_or_default(),
            _ => {
                errors.push(
                    shared
                        .collection_error("containerd_metadata", "container lookup did not finish"),
                );
                Arc::new(Enriched::default())
            }
        },
        None => Arc::new(Enriched::default()),
    };
    if enriched.is_sandbox() {
        if let Some(cg) = enriched.cgroup_id {
            shared.recorder.discard(cg);
        }
        shared.forget_tracked(&p.exit.namespace, &p.exit.container_id);
        return;
    }
    // Beside the rest of the exit's collection: the drain below does not wait for it.
    let image_check = image_check(&enriched, &p.exit.namespace, p.client.clone());
    let at_death = p.at_death.as_ref().and_then(|a| a.get().cloned());
    let usage_read = match p.usage {
        // Read at the exit event: everything the container used, to its last process.
        Some(Ok(u)) => Some(Ok(u)),
        // Too late at the exit event (containerd was away, or the agent slow): the reading at
        // the init's death.
        Some(Err(_)) | None if at_death.is_some() => at_death.map(Ok),
        Some(read) => Some(read),
        None => {
            if !shared.usage_delay.is_zero() {
                tokio::time::sleep(shared.usage_delay).await;
            }
            // The path not known at the exit: try now; usually the cgroup is gone by then.
            enriched
                .cgroup_path
                .as_deref()
                .map(|path| read_usage(&shared, path))
        }
    };
    let (cri, recovered_cri) = match &p.seen {
        Seen::Cri(c) => (Some(c.as_ref()), Some(c.as_ref())),
        Seen::StartFailed(c, _) => (Some(c.as_ref()), None),
        _ => (None, None),
    };
    if let Some(c) = recovered_cri {
        let usage = if matches!(usage_read, Some(Ok(_))) {
            "cgroup usage read by the agent when the process died"
        } else {
            "no cgroup usage at the exit"
        };
        errors.push(shared.collection_error(
            "exit_recovered",
            format!(
                "the agent did not see this exit as it happened (it was not running or not \
                 connected); found in the CRI's exited containers: {usage}, output from the \
                 container's log file"
            ),
        ));
        if let Some(reason) = &c.reason {
            debug!(container = %c.container_id, reason, "exit recovered from the CRI");
        }
    }
    let log_output = match recovered_cri.and_then(|c| c.log_path.clone()) {
        Some(path) => read_log_output(&shared, path, &mut errors).await,
        None => None,
    };
    // Drain the kernel's recording (blocking BPF syscalls) off the async workers.
    let (recorder, drained) = {
        let shared = shared.clone();
        let cg = enriched.cgroup_id;
        let (pid, status) = (p.exit.pid, ExitStatus::from_containerd(p.exit.exit_status));
        let start = p.created_at.or(p.started_at);
        tokio::task::spawn_blocking(move || shared.recorder.drain(cg, pid, &status, start))
            .await
            .unwrap_or_else(|_| {
                let failed = crate::recorder::failed_report("the recorder drain failed");
                (failed, Default::default())
            })
    };
    let mut recorder = recorder;
    if let Some(stack) = recorder.crash_stack.take() {
        recorder.crash_stack = Some(symbolize_stack(&enriched, &recorder.processes, stack).await);
    }
    if matches!(p.seen, Seen::StartFailed(..)) && recorder.state == RecorderState::NoData {
        recorder.reason = Some(
            "runc's attempt ran in a cgroup it removed when the start failed; the agent did \
             not see that cgroup made, so its recording cannot be identified"
                .into(),
        );
    }
    let mut exit = p.exit.clone();
    if matches!(p.seen, Seen::Vanished(_)) {
        let started = recorder
            .processes
            .iter()
            .any(|e| e.kind == ProcessEventKind::Exec);
        let Some(ws) = drained.init_wait_status.filter(|_| started) else {
            // No record of an entrypoint that ran and died: a task deleted before it started
            // (containerd's restart does that to created tasks), or a container the recorder
            // did not keep. Nothing to report as an exit; say that something was missed.
            shared.metrics.collection_error("exit_lost");
            warn!(namespace = %exit.namespace, container = %exit.container_id, "container gone while the agent was away, with no recorded exit: not reported");
            shared.forget_tracked(&exit.namespace, &exit.container_id);
            return;
        };
        errors.push(vanished_exit(&shared, &mut exit, &recorder, ws));
    }
    let (usage, usage_source) = match (usage_read, drained.exit_usage) {
        (Some(Ok(mut u)), kernel) => {
            // Files that vanished mid-read (the scope removed meanwhile) leave gaps.
            if let Some(k) = &kernel {
                u.fill_gaps_from(k);
            }
            (Some(u), Some(UsageSource::CgroupFiles))
        }
        (Some(Err(e)), Some(kernel)) if e.is_gone() => {
            debug!(container = %p.exit.container_id, "cgroup gone before its usage was read: the kernel's figures at exit stand in");
            (Some(kernel), Some(UsageSource::KernelAtExit))
        }
        (Some(Err(e)), _) => {
            errors.push(shared.collection_error(e.label(), &e));
            (None, None)
        }
        (None, Some(kernel)) => (Some(kernel), Some(UsageSource::KernelAtExit)),
        (None, None) => (None, None),
    };
    let output = recorder.output.as_ref().or(log_output.as_ref());
    let (collection, unavailable) =
        super::artifacts::collect_at_finish(&shared, &enriched, p.artifacts.clone(), output).await;
    let prepared = {
        let redaction = shared.redaction.clone();
        tokio::task::spawn_blocking(move || prepare(collection, unavailable, &redaction))
            .await
            .unwrap_or_default()
    };
    let image_now = match image_check {
        Some(task) => match task.await {
            Ok(Ok(lookup)) => Some(lookup),
            Ok(Err(e)) => {
                errors.push(e.into_error(&shared));
                None
            }
            Err(e) => {
                errors.push(shared.collection_error("image_lookup", format!("look-up task: {e}")));
                None
            }
        },
        None => None,
    };
    let report = build_report(
        Inputs {
            exit: &exit,
            created_at: p.created_at,
            started_at: p.started_at,
            enriched: &enriched,
            cgroup_version: shared.cgroups.version(),
            usage,
            usage_source,
            oom_events: p.oom_events,
            recovered: !matches!(p.seen, Seen::Live | Seen::StartFailed(..)),
            errors,
            agent: shared.agent.clone(),
            reported_at: Utc::now(),
            recorder: Some(recorder),
            init_wait_status: drained.init_wait_status,
            cri,
            log_output,
            usage_history: p.history,
            artifacts: prepared.section,
            image_now,
        },
        &shared.redaction,
    );
    store_report(&shared, report, prepared.files, p.received).await;
    shared.forget_tracked(&p.exit.namespace, &p.exit.container_id);
}

/// Names the frames of a crash stack from the container's files: its root filesystem if still
/// mounted, else the snapshot's upper directory and the image's layers (blocking reads, off the
/// async workers).
async fn symbolize_stack(
    enriched: &Enriched,
    processes: &[crate::model::ProcessEvent],
    stack: crate::model::CrashStack,
) -> crate::model::CrashStack {
    let dirs: Vec<std::path::PathBuf> = enriched
        .rootfs
        .iter()
        .chain(enriched.writable_layer.iter())
        .chain(enriched.image_layers.iter())
        .cloned()
        .collect();
    let cwd = enriched.meta.as_ref().and_then(|m| m.cwd.clone());
    let programs = crate::stacks::programs(processes, stack.pid, cwd.as_deref());
    let fallback = stack.clone();
    let started = Instant::now();
    let done = tokio::task::spawn_blocking(move || {
        let mut stack = stack;
        crate::stacks::symbolize(&mut stack, &programs, &crate::stacks::Layers::open(&dirs));
        stack
    })
    .await;
    debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "crash stack symbolized"
    );
    done.unwrap_or_else(|e| {
        let mut stack = fallback;
        stack
            .symbolization_errors
            .push(format!("the symbolizer failed: {e}"));
        stack
    })
}

/// Why the image reference was not looked up again at the exit.
enum ImageCheckError {
    NotConnected,
    TimedOut,
    Lookup(crate::containerd::ImageError),
}

impl ImageCheckError {
    fn into_error(self, shared: &Shared) -> CollectionError {
        match self {
            ImageCheckError::NotConnected => shared.collection_error(
                "image_lookup",
                "not connected to containerd: the image reference was not looked up at the exit",
            ),
            ImageCheckError::TimedOut => shared.collection_error(
                "image_lookup",
                format!(
                    "the image reference's look-up at the exit took more than {} s",
                    IMAGE_CHECK_TIMEOUT.as_secs()
                ),
            ),
            ImageCheckError::Lookup(e) => shared.collection_error(e.label(), &e),
        }
    }
}

/// Starts resolving the container's image reference in its namespace again, with a deadline;
/// `None` when there is no reference to look up.
fn image_check(
    enriched: &Enriched,
    namespace: &str,
    client: Option<Containerd>,
) -> Option<tokio::task::JoinHandle<Result<ImageLookup, ImageCheckError>>> {
    let image = enriched.meta.as_ref()?.image.clone()?;
    let namespace = namespace.to_string();
    Some(tokio::spawn(async move {
        let client = client.ok_or(ImageCheckError::NotConnected)?;
        let lookup = client.resolve_image(&namespace, &image);
        match tokio::time::timeout(IMAGE_CHECK_TIMEOUT, lookup).await {
            Ok(Ok(resolved)) => Ok(ImageLookup {
                checked_at: Utc::now(),
                resolved,
            }),
            Ok(Err(e)) => Err(ImageCheckError::Lookup(e)),
            Err(_) => Err(ImageCheckError::TimedOut),
        }
    }))
}

/// Fills in a vanished container's exit from what the kernel recorded, and says so.
fn vanished_exit(
    shared: &Shared,
    exit: &mut ExitEvent,
    recorder: &RecorderReport,
    init_wait_status: i32,
) -> CollectionError {
    let init_exit = recorder
        .processes
        .iter()
        .rev()
        .find(|e| e.kind == ProcessEventKind::Exit && (e.pid == exit.pid || exit.pid == 0));
    if let Some(e) = init_exit {
        exit.exited_at = e.time;
    }
    // containerd's encoding: the code, or 128+N for a signal.
    exit.exit_status = ExitStatus::from_wait_status(init_wait_status).code;
    shared.collection_error(
        "exit_recovered",
        "the agent did not see this exit (the container was gone from containerd and the CRI \
         when it reconnected): identity from the agent's journal, exit status and syscalls from \
         the flight recorder, which kept recording",
    )
}

/// The container's output from the tail of its CRI log file.
async fn read_log_output(
    shared: &Shared,
    path: String,
    errors: &mut Vec<CollectionError>,
) -> Option<CapturedOutput> {
    let read = tokio::task::spawn_blocking(move || {
        read_log_tail(Path::new(&path)).map_err(|e| format!("reading {path}: {e}"))
    })
    .await
    .unwrap_or_else(|e| Err(format!("reading the log file: {e}")));
    match read {
        Ok((tail, cut)) => Some(parse_cri_log(&tail, cut)),
        Err(message) => {
            errors.push(shared.collection_error("log_read", message));
            None
        }
    }
}

/// Reads a cgroup's usage. A failure is counted by [`finish`], once it knows whether the kernel's
/// figures stand in.
pub(super) fn read_usage(shared: &Shared, path: &str) -> Result<CgroupUsage, cgroup::Error> {
    shared.cgroups.read_usage(path)
}

async fn store_report(
    shared: &Shared,
    report: CrashReport,
    artifacts: Vec<ArtifactFile>,
    received: Instant,
) {
    let store = shared.store.clone();
    let to_store = report.clone();
    let result =
        tokio::task::spawn_blocking(move || store.insert_with_artifacts(&to_store, &artifacts))
            .await;
    match result {
        Ok(Ok(Inserted::Stored { evicted })) => stored(shared, &report, evicted, Some(received)),
        Ok(Ok(Inserted::Queued)) => {
            // The store logs the failure once per episode; each report only at debug.
            debug!(id = %report.id, "report queued until the data dir takes writes again");
            shared.update_store_gauges();
            shared.store_retry.notify_one();
        }
        Ok(Ok(Inserted::Duplicate)) => debug!(id = %report.id, "duplicate report ignored"),
        Ok(Err(e @ StoreError::QueueFull { .. })) => {
            // Counted in coroner_reports_dropped_total; logged once per episode by the store.
            debug!(id = %report.id, error = %e, "report dropped");
            shared.update_store_gauges();
        }
        Ok(Err(e)) => {
            shared.metrics.collection_error(e.label());
            error!(id = %report.id, error = %e, "report could not be stored");
        }
        Err(e) => {
            shared.metrics.collection_error("store_write");
            error!(id = %report.id, error = %e, "report store task failed");
        }
    }
}

/// A report on disk, written now or by a retry: counted and logged like every stored report.
/// `received` is when its exit was handled, for a report written at once.
pub(super) fn stored(
    shared: &Shared,
    report: &CrashReport,
    evicted: usize,
    received: Option<Instant>,
) {
    let latency = (Utc::now() - report.lifecycle.exited_at)
        .to_std()
        .unwrap_or_default();
    shared
        .metrics
        .exit_to_report_seconds
        .observe(latency.as_secs_f64());
    shared.metrics.count_report(report);
    shared.update_store_gauges();
    info!(
        id = %report.id,
        namespace = %report.container.namespace,
        container = %report.container.id,
        pod = report.kubernetes.as_ref().map(|k| k.pod.as_str()).unwrap_or(""),
        outcome = report.outcome.as_str(),
        exit_code = report.exit.code,
        oom_killed = report.oom.killed,
        recovered = report.recovered,
        handled_ms = received.map(|r| r.elapsed().as_secs_f64() * 1000.0),
        retried = received.is_none(),
        evicted,
        "report stored"
    );
}
