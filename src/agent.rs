//! The running agent: wires the containerd watcher, the registry, collection, the store and HTTP.
//!
//! One event loop owns the registry and never waits on the network: containerd lookups run in
//! enrichment tasks, and each exit is finished (report built and stored) in its own task. The only
//! work done inline at `/tasks/exit` is reading the cgroup's usage files, because the kernel deletes
//! them within 5-25 ms.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use containerd_client::types::v1::Status as TaskStatus;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::cgroup::CgroupFs;
use crate::collect::{self, ExitEvent, Redaction};
use crate::config::AgentArgs;
use crate::containerd::decode::{decode_container, timestamp};
use crate::containerd::watch::{WatchMsg, Watcher};
use crate::containerd::{Containerd, Decoded, Event};
use crate::metrics::{ExitLabels, ExitReason, Metrics, WorkloadLabels};
use crate::model::{report_id, AgentInfo, CollectionError, CrashReport, ExitStatus, Outcome};
use crate::recorder::FlightRecorder;
use crate::registry::{Enriched, EnrichedTx, Key, OomEpisodes, Registry, Tracked};
use crate::store::{Inserted, Retention, Store, StoreError};

/// How long an exit waits for its container's enrichment before writing what it has.
const ENRICH_WAIT: Duration = Duration::from_secs(10);
/// Reports the live feed holds for a slow subscriber before it skips ahead (and says so).
const EVENTS_BUFFER: usize = 256;
/// How long shutdown waits for reports still being written.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::Error),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
}

/// Agent state the HTTP layer reads.
pub struct Status {
    /// The first subscription and reconcile succeeded.
    pub ready: AtomicBool,
    /// The event stream is up right now.
    pub connected: AtomicBool,
    pub last_disconnect: Mutex<Option<String>>,
    pub socket: PathBuf,
}

/// What every task of the agent shares.
pub struct Shared {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub status: Status,
    cgroups: CgroupFs,
    pub recorder: FlightRecorder,
    redaction: Redaction,
    agent: AgentInfo,
    /// Report ids being written right now, so an exit seen twice (event and reconcile) is
    /// finished once.
    inflight: Mutex<HashSet<String>>,
    /// Every stored report, as it is stored: the `/api/v1/events` live feed.
    pub events: tokio::sync::broadcast::Sender<crate::model::CrashSummary>,
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    args: AgentArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let cgroups = CgroupFs::detect()?;
    info!(version = ?cgroups.version(), "cgroup hierarchy detected");
    let retention = Retention {
        max_reports: args.max_reports,
        max_bytes: args.max_store_bytes,
    };
    let data_dir = args.data_dir.clone();
    let (store, skipped) = tokio::task::spawn_blocking(move || Store::open(&data_dir, retention))
        .await
        .expect("store open does not panic")?;
    let metrics = Arc::new(Metrics::new());
    // Before serving: a verifier failure is known (and shown) from the start.
    let recorder = if args.no_recorder {
        FlightRecorder::disabled()
    } else {
        let (containers, ring) = (args.recorder_containers, args.recorder_ring);
        tokio::task::spawn_blocking(move || FlightRecorder::start(containers, ring))
            .await
            .expect("recorder start does not panic")
    };
    metrics.recorder_loaded.set(i64::from(recorder.is_loaded()));
    metrics
        .recorder_kernel_memory_bytes
        .set(i64::try_from(recorder.kernel_memory_bytes()).unwrap_or(i64::MAX));
    if let Some(own) = own_cgroup_id(&cgroups) {
        // The agent's own syscalls are not a container's.
        recorder.ignore_cgroup(own);
    }
    for _ in 0..skipped {
        metrics.collection_error("store_corrupt");
    }
    let shared = Arc::new(Shared {
        store: Arc::new(store),
        metrics: metrics.clone(),
        status: Status {
            ready: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            last_disconnect: Mutex::new(None),
            socket: args.containerd_socket.clone(),
        },
        cgroups,
        recorder,
        redaction: Redaction {
            env_allow: args.env_allow.iter().cloned().collect::<BTreeSet<_>>(),
            keep_args: args.no_redact_args,
        },
        agent: AgentInfo {
            node: args.node_name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        inflight: Mutex::new(HashSet::new()),
        events: tokio::sync::broadcast::channel(EVENTS_BUFFER).0,
    });
    shared.update_store_gauges();

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: args.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| AgentError::Listen {
        addr: args.listen,
        source,
    })?;
    info!(listen = %local, data_dir = %args.data_dir.display(), "serving HTTP");

    let (stop_tx, stop_rx) = watch::channel(false);
    let router = crate::http::router(shared.clone());
    let mut http_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await
    });

    let (tx, rx) = mpsc::channel(4096);
    let watcher = Watcher {
        socket: args.containerd_socket.clone(),
        namespaces: args.namespaces.clone(),
        metrics,
    };
    let watcher = tokio::spawn(watcher.run(tx));

    let mut event_loop = EventLoop {
        shared: shared.clone(),
        registry: Registry::default(),
        client: None,
        finishing: JoinSet::new(),
        unclaimed: HashMap::new(),
    };
    tokio::select! {
        _ = event_loop.run(rx) => warn!("event loop ended"),
        _ = shutdown => info!("shutting down"),
    }
    watcher.abort();
    // Reports already being written are finished; their writes are atomic either way.
    let drain = async { while event_loop.finishing.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_WAIT, drain).await.is_err() {
        warn!("some reports were still being written at shutdown");
    }
    let _ = stop_tx.send(true);
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(AgentError::Serve(e)),
        Err(e) => {
            error!(error = %e, "HTTP server task failed");
            Ok(())
        }
    }
}

impl Shared {
    fn update_store_gauges(&self) {
        let (n, bytes) = self.store.stats();
        self.metrics.reports_stored.set(n as i64);
        self.metrics.store_bytes.set(bytes as i64);
    }

    /// Reserves a report id; false when the report exists or is being written.
    fn claim(&self, id: &str) -> bool {
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        !self.store.contains(id) && inflight.insert(id.to_string())
    }

    fn release(&self, id: &str) {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

struct EventLoop {
    shared: Arc<Shared>,
    registry: Registry,
    client: Option<Containerd>,
    finishing: JoinSet<()>,
    /// Recorded cgroups no tracked container owns, with how many sweeps have seen them.
    unclaimed: HashMap<u64, u32>,
}

/// How often the loop looks for recorded cgroups that belong to the host.
const HOST_SWEEP: Duration = Duration::from_secs(5);
/// Sweeps a cgroup must stay unclaimed by any container before it is taken for the host's.
const HOST_SWEEPS: u32 = 3;

/// An exit waiting to become a report.
struct Pending {
    exit: ExitEvent,
    created_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    oom_events: u32,
    enriched: Option<crate::registry::EnrichedRx>,
    /// Usage read at the moment of the exit event, when the cgroup path was already known.
    usage: Option<Result<crate::model::CgroupUsage, CollectionError>>,
    recovered: bool,
    received: Instant,
}

impl EventLoop {
    async fn run(&mut self, mut rx: mpsc::Receiver<WatchMsg>) {
        let mut sweep = tokio::time::interval(HOST_SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => m,
                    None => break,
                },
                _ = sweep.tick() => {
                    self.sweep_host_cgroups();
                    self.publish_recorder_totals();
                    continue;
                }
            };
            match msg {
                WatchMsg::Connected {
                    client,
                    tasks,
                    reconnect,
                } => {
                    self.client = Some(client);
                    self.reconcile(tasks, reconnect);
                    self.shared.status.connected.store(true, Ordering::Relaxed);
                    self.shared.status.ready.store(true, Ordering::Relaxed);
                    self.shared.metrics.ready.set(1);
                }
                WatchMsg::Event { decoded, received } => self.handle(decoded, received),
                WatchMsg::Disconnected { reason } => {
                    self.shared.status.connected.store(false, Ordering::Relaxed);
                    *self
                        .shared
                        .status
                        .last_disconnect
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(reason);
                }
            }
            self.shared
                .metrics
                .tracked_containers
                .set(self.registry.len() as i64);
            // Reap finished report tasks so the set does not grow.
            while self.finishing.try_join_next().is_some() {}
        }
    }

    /// The kernel records every new cgroup from its first syscall, before anyone knows whose it
    /// is. A cgroup no container has claimed for a few sweeps belongs to the host (a service, a
    /// session): stop recording it.
    fn sweep_host_cgroups(&mut self) {
        if !self.shared.recorder.is_loaded() {
            return;
        }
        let claimed: HashSet<u64> = self
            .registry
            .tracked()
            .filter_map(|t| t.ready().and_then(|e| e.cgroup_id))
            .collect();
        let recorded = self.shared.recorder.recorded_cgroups();
        let recorded_set: HashSet<u64> = recorded.iter().copied().collect();
        self.unclaimed
            .retain(|cg, _| recorded_set.contains(cg) && !claimed.contains(cg));
        for cg in recorded {
            if claimed.contains(&cg) {
                continue;
            }
            let seen = self.unclaimed.entry(cg).or_insert(0);
            *seen += 1;
            if *seen >= HOST_SWEEPS {
                debug!(
                    cgroup_id = cg,
                    "recorded cgroup claimed by no container: treated as host"
                );
                self.shared.recorder.ignore_cgroup(cg);
                self.unclaimed.remove(&cg);
            }
        }
    }

    fn publish_recorder_totals(&self) {
        match self.shared.recorder.totals() {
            Some(Ok(t)) => self.shared.metrics.recorder_totals(&t),
            Some(Err(e)) => warn!(error = %e, "reading the recorder's kernel counters"),
            None => {}
        }
    }

    fn handle(&mut self, d: Decoded, received: Instant) {
        let ns = d.namespace;
        match d.event {
            Event::TaskCreate { container_id, pid } => {
                let key = Key {
                    namespace: ns,
                    id: container_id,
                };
                self.track(key, pid, d.timestamp, None);
            }
            Event::TaskStart { container_id, pid } => {
                let key = Key {
                    namespace: ns,
                    id: container_id,
                };
                match self.registry.get_mut(&key) {
                    Some(t) => {
                        t.started_at = d.timestamp;
                        t.pid = pid;
                    }
                    None => self.track(key, pid, None, d.timestamp),
                }
            }
            Event::TaskOom { container_id } => {
                if let Some(t) = self.registry.get_mut(&Key {
                    namespace: ns,
                    id: container_id,
                }) {
                    t.oom.note(received);
                }
            }
            Event::TaskExit {
                container_id,
                exec_id,
                pid,
                exit_status,
                exited_at,
            } => {
                if !exec_id.is_empty() && exec_id != container_id {
                    return; // an exec'd process, not the container's init
                }
                let key = Key {
                    namespace: ns,
                    id: container_id,
                };
                let exit = ExitEvent {
                    namespace: key.namespace.clone(),
                    container_id: key.id.clone(),
                    pid,
                    exit_status,
                    exited_at: exited_at.or(d.timestamp).unwrap_or_else(Utc::now),
                };
                let tracked = self.registry.remove(&key);
                self.exit(exit, tracked, false, received);
            }
            Event::TaskDelete { container_id, pid } => {
                let key = Key {
                    namespace: ns,
                    id: container_id,
                };
                if self
                    .registry
                    .get(&key)
                    .is_some_and(|t| t.pid == pid || pid == 0)
                {
                    self.registry.remove(&key);
                }
            }
            Event::ContainerDelete { container_id } => {
                self.registry.remove(&Key {
                    namespace: ns,
                    id: container_id,
                });
            }
            Event::Other => {}
        }
    }

    /// Starts tracking a container and its enrichment.
    fn track(
        &mut self,
        key: Key,
        pid: u32,
        created_at: Option<DateTime<Utc>>,
        started_at: Option<DateTime<Utc>>,
    ) {
        let (tx, rx) = watch::channel(None);
        self.spawn_enrichment(key.clone(), tx);
        self.registry.insert(
            key,
            Tracked {
                pid,
                created_at,
                started_at,
                oom: OomEpisodes::default(),
                enriched: rx,
            },
        );
    }

    fn spawn_enrichment(&self, key: Key, tx: EnrichedTx) {
        let shared = self.shared.clone();
        let client = self.client.clone();
        tokio::spawn(async move {
            let enriched = enrich(&shared, client.as_ref(), &key).await;
            let _ = tx.send(Some(Arc::new(enriched)));
        });
    }

    /// Turns an exit into a report, reading the cgroup's usage now if its path is known.
    fn exit(
        &mut self,
        exit: ExitEvent,
        tracked: Option<Tracked>,
        recovered: bool,
        received: Instant,
    ) {
        let id = report_id(&exit.namespace, &exit.container_id, exit.pid);
        if !self.shared.claim(&id) {
            debug!(id, "exit already reported");
            return;
        }
        let ready = tracked.as_ref().and_then(Tracked::ready);
        if let Some(sandbox) = ready.as_ref().filter(|e| e.is_sandbox()) {
            if let Some(cg) = sandbox.cgroup_id {
                self.shared.recorder.discard(cg);
            }
            self.shared.release(&id);
            return;
        }
        let usage = ready
            .as_ref()
            .and_then(|e| e.cgroup_path.as_deref())
            .map(|path| read_usage(&self.shared, path));
        let enriched = match tracked.as_ref() {
            Some(t) => Some(t.enriched.clone()),
            None => {
                // Not tracked (created before a namespace was watched, or a missed create): look
                // it up now; the cgroup is most likely gone, which the report will say.
                let (tx, rx) = watch::channel(None);
                self.spawn_enrichment(
                    Key {
                        namespace: exit.namespace.clone(),
                        id: exit.container_id.clone(),
                    },
                    tx,
                );
                Some(rx)
            }
        };
        let pending = Pending {
            exit,
            created_at: tracked.as_ref().and_then(|t| t.created_at),
            started_at: tracked.as_ref().and_then(|t| t.started_at),
            oom_events: tracked.as_ref().map_or(0, |t| t.oom.count),
            enriched,
            usage,
            recovered,
            received,
        };
        let shared = self.shared.clone();
        self.finishing.spawn(async move {
            finish(shared.clone(), pending).await;
            shared.release(&id);
        });
    }

    /// Brings the registry in line with containerd's task list after a (re)connect.
    fn reconcile(
        &mut self,
        tasks: Vec<(String, containerd_client::types::v1::Process)>,
        reconnect: bool,
    ) {
        let mut listed = HashSet::new();
        let now = Instant::now();
        for (ns, task) in tasks {
            // containerd 1.6 fills `id` with the container id and leaves `container_id` empty for
            // init processes; later versions fill both.
            let id = if task.container_id.is_empty() {
                task.id.clone()
            } else {
                task.container_id.clone()
            };
            let key = Key { namespace: ns, id };
            listed.insert(key.clone());
            let status = TaskStatus::try_from(task.status).unwrap_or(TaskStatus::Unknown);
            match status {
                TaskStatus::Stopped => {
                    let tracked = self.registry.remove(&key);
                    let exit = ExitEvent {
                        namespace: key.namespace,
                        container_id: key.id,
                        pid: task.pid,
                        exit_status: task.exit_status,
                        exited_at: task
                            .exited_at
                            .as_ref()
                            .and_then(timestamp)
                            .unwrap_or_else(Utc::now),
                    };
                    self.exit(exit, tracked, true, now);
                }
                _ => {
                    if self.registry.get(&key).is_none_or(|t| t.pid != task.pid) {
                        let started = process_start_time(task.pid);
                        self.track(key, task.pid, None, started);
                    }
                }
            }
        }
        if reconnect {
            let lost: Vec<Key> = self
                .registry
                .keys()
                .filter(|k| !listed.contains(*k))
                .cloned()
                .collect();
            for key in lost {
                // Exited and deleted while we were away: containerd keeps no record of the status.
                warn!(namespace = %key.namespace, container = %key.id, "container exited while disconnected; its exit status is lost");
                self.shared.metrics.collection_error("exit_lost");
                self.registry.remove(&key);
            }
        }
    }
}

/// Looks a container up in containerd and snapshots its cgroup limits.
async fn enrich(shared: &Shared, client: Option<&Containerd>, key: &Key) -> Enriched {
    let mut out = Enriched::default();
    let Some(client) = client else {
        out.errors.push(CollectionError {
            stage: "containerd_metadata".into(),
            message: "not connected to containerd".into(),
        });
        return out;
    };
    let container = match client.container(&key.namespace, &key.id).await {
        Ok(c) => c,
        Err(e) => {
            shared.metrics.collection_error("containerd_metadata");
            out.errors.push(CollectionError {
                stage: "containerd_metadata".into(),
                message: e.to_string(),
            });
            return out;
        }
    };
    let meta = match decode_container(&container) {
        Ok(m) => m,
        Err(e) => {
            shared.metrics.collection_error(e.label());
            out.errors.push(CollectionError {
                stage: e.label().into(),
                message: e.to_string(),
            });
            return out;
        }
    };
    if let Some(spec_path) = &meta.cgroups_path {
        match CgroupFs::resolve_spec_path(spec_path) {
            // A sandbox needs only its recorder key, so its recording can be freed at exit.
            Ok(path) if meta.is_sandbox => out.cgroup_id = shared.cgroups.unified_cgroup_id(&path),
            Ok(path) => {
                out.cgroup_id = shared.cgroups.unified_cgroup_id(&path);
                match shared.cgroups.read_limits(&path) {
                    Ok(limits) => out.limits = Some(limits),
                    Err(e) => {
                        shared.metrics.collection_error(e.label());
                        out.errors.push(CollectionError {
                            stage: "cgroup_limits".into(),
                            message: e.to_string(),
                        });
                    }
                }
                out.cgroup_path = Some(path);
            }
            Err(e) => {
                shared.metrics.collection_error(e.label());
                out.errors.push(CollectionError {
                    stage: e.label().into(),
                    message: e.to_string(),
                });
            }
        }
    }
    if meta.is_sandbox {
        out.meta = Some(meta);
        return out;
    }
    if let Some(image) = &meta.image {
        match client.image_digest(&key.namespace, image).await {
            Ok(d) => out.image_digest = d,
            Err(e) => {
                shared.metrics.collection_error("image_digest");
                out.errors.push(CollectionError {
                    stage: "image_digest".into(),
                    message: e.to_string(),
                });
            }
        }
    }
    out.meta = Some(meta);
    out
}

async fn finish(shared: Arc<Shared>, p: Pending) {
    let mut errors = Vec::new();
    let enriched = match p.enriched {
        Some(mut rx) => match tokio::time::timeout(ENRICH_WAIT, rx.wait_for(Option::is_some)).await
        {
            Ok(Ok(v)) => v.clone().unwrap_or_default(),
            _ => {
                shared.metrics.collection_error("containerd_metadata");
                errors.push(CollectionError {
                    stage: "containerd_metadata".into(),
                    message: "container lookup did not finish".into(),
                });
                Arc::new(Enriched::default())
            }
        },
        None => Arc::new(Enriched::default()),
    };
    if enriched.is_sandbox() {
        if let Some(cg) = enriched.cgroup_id {
            shared.recorder.discard(cg);
        }
        return;
    }
    let usage = match p.usage {
        Some(Ok(u)) => Some(u),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        // The path was not known at exit: try now; usually the cgroup is gone by then.
        None => match enriched.cgroup_path.as_deref() {
            Some(path) => match read_usage(&shared, path) {
                Ok(u) => Some(u),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            None => None,
        },
    };
    // Drain the kernel's recording (blocking BPF syscalls) off the async workers.
    let (recorder, init_wait) = {
        let shared = shared.clone();
        let cg = enriched.cgroup_id;
        let (pid, status) = (p.exit.pid, ExitStatus::from_containerd(p.exit.exit_status));
        tokio::task::spawn_blocking(move || shared.recorder.collect(cg, pid, &status))
            .await
            .unwrap_or_else(|_| {
                let failed = crate::recorder::failed_report("the recorder drain failed");
                (failed, None)
            })
    };
    let mut report = collect::build(
        collect::Inputs {
            exit: &p.exit,
            created_at: p.created_at,
            started_at: p.started_at,
            enriched: &enriched,
            cgroup_version: shared.cgroups.version(),
            usage,
            oom_events: p.oom_events,
            recovered: p.recovered,
            errors,
            agent: shared.agent.clone(),
            reported_at: Utc::now(),
        },
        &shared.redaction,
    );
    if let Some(ws) = init_wait {
        // The kernel's wait status is exact where containerd's number is ambiguous (exit(137)
        // versus SIGKILL), and it carries the core-dump flag.
        report.exit = ExitStatus {
            status: report.exit.status,
            ..ExitStatus::from_wait_status(ws)
        };
    }
    report.recorder = Some(recorder);
    store_report(&shared, report, p.received).await;
}

/// Reads a cgroup's usage, counting a failure under its stable label.
fn read_usage(shared: &Shared, path: &str) -> Result<crate::model::CgroupUsage, CollectionError> {
    shared.cgroups.read_usage(path).map_err(|e| {
        shared.metrics.collection_error(e.label());
        CollectionError {
            stage: e.label().to_string(),
            message: e.to_string(),
        }
    })
}

async fn store_report(shared: &Shared, mut report: CrashReport, received: Instant) {
    report.diagnosis = Some(crate::diagnose::diagnose(&report));
    let store = shared.store.clone();
    let to_store = report.clone();
    let result = tokio::task::spawn_blocking(move || store.insert(&to_store)).await;
    match result {
        Ok(Ok(Inserted::Stored { evicted })) => {
            let latency = (Utc::now() - report.lifecycle.exited_at)
                .to_std()
                .unwrap_or_default();
            shared
                .metrics
                .exit_to_report_seconds
                .observe(latency.as_secs_f64());
            count_exit(&shared.metrics, &report);
            shared.update_store_gauges();
            // Nobody listening is fine: the live feed is best effort, the store is the record.
            let _ = shared.events.send(report.summary());
            info!(
                id = %report.id,
                namespace = %report.container.namespace,
                container = %report.container.id,
                pod = report.kubernetes.as_ref().map(|k| k.pod.as_str()).unwrap_or(""),
                outcome = report.outcome.as_str(),
                exit_code = report.exit.code,
                oom_killed = report.oom.killed,
                recovered = report.recovered,
                handled_ms = received.elapsed().as_secs_f64() * 1000.0,
                evicted,
                "report stored"
            );
        }
        Ok(Ok(Inserted::Duplicate)) => debug!(id = %report.id, "duplicate report ignored"),
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

fn count_exit(metrics: &Metrics, r: &CrashReport) {
    let s = r.summary();
    if let Some(d) = &r.diagnosis {
        metrics
            .crash_causes
            .get_or_create(&crate::metrics::CauseLabels {
                namespace: s.namespace.clone(),
                cause: d.cause.as_str(),
            })
            .inc();
    }
    // As kubelet says OOMKilled: the OOM killer acted and the container failed, whether init was
    // the victim (SIGKILL) or a shell exited 137 after its child was.
    let reason = if r.oom.killed && r.outcome == Outcome::Crashed {
        ExitReason::oom_killed
    } else if r.exit.signal.is_some() {
        ExitReason::signal
    } else if r.outcome == Outcome::Completed {
        ExitReason::completed
    } else {
        ExitReason::error
    };
    let pod = s.pod.unwrap_or_default();
    metrics
        .container_exits
        .get_or_create(&ExitLabels {
            namespace: s.namespace.clone(),
            pod: pod.clone(),
            container: s.container.clone(),
            reason,
        })
        .inc();
    if r.oom.killed {
        metrics
            .oom_kills
            .get_or_create(&WorkloadLabels {
                namespace: s.namespace,
                pod,
                container: s.container,
            })
            .inc();
    }
}

/// When a process started, from `/proc/<pid>/stat` (for tasks found running at start-up).
fn process_start_time(pid: u32) -> Option<DateTime<Utc>> {
    let stat = procfs::process::Process::new(pid as i32)
        .ok()?
        .stat()
        .ok()?;
    let boot = procfs::boot_time_secs().ok()?;
    let ticks = procfs::ticks_per_second();
    let nanos =
        (boot as i128 * 1_000_000_000) + (stat.starttime as i128 * 1_000_000_000 / ticks as i128);
    DateTime::from_timestamp_nanos(i64::try_from(nanos).ok()?).into()
}

/// Inode of the agent's own cgroup2 directory, to keep its syscalls out of the recorder.
fn own_cgroup_id(cgroups: &CgroupFs) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    cgroups.unified_cgroup_id(path)
}
