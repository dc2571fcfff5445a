//! The running agent: wires the sources (containerd, cgroups, the flight recorder) to the report
//! build, the store and the HTTP outputs, and owns nothing else.
//!
//! - [`event_loop`]: the one loop that owns the live-container registry, reconciles after a
//!   (re)connect and sweeps host cgroups out of the recorder. It never waits on the network.
//! - [`enrich`]: what containerd and the cgroup files say about a container, looked up beside the
//!   loop.
//! - [`finish`]: one exit's inputs gathered (enrichment, usage, the recorder's drain), the report
//!   built by [`crate::report::build_report`], stored, counted.
//! - [`retry`]: writes the reports the store queued while its writes failed, with backoff.
//!
//! The OTLP exporter (`crate::export`), when configured, runs beside them until shutdown.

mod artifacts;
mod deathwatch;
mod enrich;
mod event_loop;
mod finish;
mod journal;
mod registry;
mod retry;
mod sampler;
mod startwatch;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::cgroup::CgroupFs;
use crate::config::AgentArgs;
use crate::containerd::watch::Watcher;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{AgentInfo, CollectionError};
use crate::recorder::FlightRecorder;
use crate::report::Redaction;
use crate::store::{Retention, Store, StoreError};

use event_loop::EventLoop;

/// How long shutdown waits for reports still being written.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::Error),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Config(Vec<crate::config::Invalid>),
    #[error(transparent)]
    Export(#[from] crate::export::transport::TransportError),
    #[error("raising RLIMIT_NOFILE to its hard limit: {0}")]
    Rlimit(nix::Error),
    #[error("RLIMIT_NOFILE {nofile} leaves no descriptor for HTTP connections beside the {open} open and the store's reserve; raise the limit")]
    NoDescriptors { nofile: u64, open: u64 },
    #[error("starting the cgroup sampler thread: {0}")]
    Sampler(std::io::Error),
    #[error("reading the API token: {0}")]
    Token(#[from] crate::http::auth::TokenError),
}

/// What the agent's tasks share. The HTTP layer gets its own [`crate::http::AppState`].
struct Shared {
    store: Arc<Store>,
    /// The registry's memory across the agent's restarts.
    journal: journal::Journal,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    cgroups: CgroupFs,
    /// Memory, CPU and pids of every live container, sampled beside the loop.
    sampler: sampler::Sampler,
    recorder: FlightRecorder,
    redaction: Redaction,
    agent: AgentInfo,
    /// Fault injection (`--test-usage-delay-ms`): a late agent's read of a cgroup's usage.
    usage_delay: Duration,
    /// The directory of containerd's socket as the agent sees it, where a DaemonSet mounts the
    /// node's containerd directory (OCI bundles are found below it).
    containerd_dir: std::path::PathBuf,
    /// Reports being written right now, so an exit seen twice (event and reconcile) is
    /// finished once.
    inflight: Mutex<Inflight>,
    /// Wakes the retry task when the store queues a report.
    store_retry: tokio::sync::Notify,
}

/// Report ids, and their container ids, being written right now.
#[derive(Default)]
struct Inflight {
    ids: HashSet<String>,
    containers: HashMap<String, usize>,
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    args: AgentArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    // Before anything opens descriptors: HTTP clients then share a large budget, and what the
    // store needs stays reserved (crate::http::serve, "descriptor budget").
    let nofile = crate::http::serve::raise_nofile_limit().map_err(AgentError::Rlimit)?;
    let cgroups = CgroupFs::detect()?;
    crate::redact::warm_up();
    info!(version = ?cgroups.version(), "cgroup hierarchy detected");
    let retention = Retention {
        max_reports: args.max_reports,
        max_bytes: args.max_store_bytes,
    };
    let data_dir = args.data_dir.clone();
    // A dir that cannot be written is an error here, before serving: the agent exits non-zero
    // with the dir and errno, and kubelet shows it (CrashLoopBackOff) instead of a ready agent
    // that stores nothing.
    let (store, skipped) = tokio::task::spawn_blocking(move || Store::open(&data_dir, retention))
        .await
        .expect("store open does not panic")?;
    let store = store.with_retry_queue(args.store_retry_queue_bytes);
    let data_dir = args.data_dir.clone();
    let (journal, tracked) = tokio::task::spawn_blocking(move || {
        let journal = journal::Journal::open(&data_dir)?;
        let (entries, bad) = journal.load()?;
        Ok::<_, journal::JournalError>((journal, (entries, bad)))
    })
    .await
    .expect("journal load does not panic")?;
    let (tracked, unreadable) = tracked;
    let metrics = Arc::new(Metrics::new());
    // Before serving: a verifier failure is known (and shown) from the start.
    let recorder = if args.no_recorder {
        FlightRecorder::disabled()
    } else {
        let (containers, ring) = (args.recorder_containers, args.recorder_ring);
        let pin_dir = args.bpf_pin_dir().map(std::path::Path::to_path_buf);
        tokio::task::spawn_blocking(move || {
            FlightRecorder::start(containers, ring, pin_dir.as_deref())
        })
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
    for _ in 0..unreadable {
        metrics.collection_error("journal_corrupt");
    }
    let health = Arc::new(Health::new(
        args.containerd_socket.clone(),
        recorder.status(),
    ));
    let shared = Arc::new(Shared {
        store: Arc::new(store),
        journal,
        metrics: metrics.clone(),
        health: health.clone(),
        sampler: sampler::Sampler::start(cgroups.clone()).map_err(AgentError::Sampler)?,
        cgroups,
        recorder,
        redaction: Redaction {
            env_allow: args.env_allow.iter().cloned().collect::<BTreeSet<_>>(),
            keep_args: args.no_redact_args,
            keep_labels: args.no_redact_labels,
            keep_output: args.no_redact_output,
            keep_artifacts: args.no_redact_artifacts,
        },
        agent: AgentInfo {
            node: args.node_name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        usage_delay: Duration::from_millis(args.test_usage_delay_ms),
        containerd_dir: args
            .containerd_socket
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
        inflight: Mutex::new(Inflight::default()),
        store_retry: tokio::sync::Notify::new(),
    });
    shared.update_store_gauges();
    // Before serving: a bad setting is a start-up error, a collector that is down is not.
    let exporter = match args.otlp().map_err(AgentError::Config)? {
        Some(settings) => Some((
            crate::export::Exporter::new(&settings, shared.store.clone(), metrics.clone())?,
            settings.timeout,
        )),
        None => None,
    };

    let token = match &args.api_token_file {
        Some(path) => Some(crate::http::auth::ApiToken::load(path)?),
        None => None,
    };
    let api = bind(args.listen).await?;
    let metrics_listener = bind(args.metrics_listen).await?;
    let open = crate::http::serve::open_fds().unwrap_or(0);
    let max_connections =
        crate::http::serve::connection_budget(nofile, open, 2, args.max_connections)
            .ok_or(AgentError::NoDescriptors { nofile, open })?;
    crate::http::serve::log_budget(nofile, open, args.max_connections, max_connections);
    info!(
        listen = %api.1,
        metrics_listen = %metrics_listener.1,
        token = token.is_some(),
        data_dir = %args.data_dir.display(),
        "serving HTTP"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let state = Arc::new(crate::http::AppState {
        store: shared.store.clone(),
        metrics: metrics.clone(),
        health,
        token,
        sse_slots: Arc::new(tokio::sync::Semaphore::new(args.max_sse_clients)),
    });
    let limits = crate::http::serve::Limits {
        max_connections,
        header_read_timeout: args.header_read_timeout,
    };
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(crate::http::serve::serve(
        api.0,
        crate::http::router(state.clone()),
        crate::http::serve::ListenerKind::Api,
        limits,
        metrics.clone(),
        stop_rx.clone(),
    ));
    servers.spawn(crate::http::serve::serve(
        metrics_listener.0,
        crate::http::metrics_router(state),
        crate::http::serve::ListenerKind::Metrics,
        limits,
        metrics.clone(),
        stop_rx.clone(),
    ));

    let (tx, rx) = mpsc::channel(4096);
    let watcher = Watcher {
        socket: args.containerd_socket.clone(),
        namespaces: args.namespaces.clone(),
        metrics,
        reported: {
            let store = shared.store.clone();
            Arc::new(move |id: &str| store.has_container(id))
        },
    };
    let watcher = tokio::spawn(watcher.run(tx));

    let retrier = tokio::spawn(retry::run(shared.clone()));
    let exporter = exporter.map(|(e, timeout)| (tokio::spawn(e.run(stop_rx.clone())), timeout));

    let mut event_loop = EventLoop::new(shared.clone(), tracked);
    tokio::select! {
        _ = event_loop.run(rx) => warn!("event loop ended"),
        _ = shutdown => info!("shutting down"),
    }
    watcher.abort();
    // Reports already being written are finished; their writes are atomic either way.
    if tokio::time::timeout(DRAIN_WAIT, event_loop.drain())
        .await
        .is_err()
    {
        warn!("some reports were still being written at shutdown");
    }
    retrier.abort();
    retry::at_shutdown(&shared).await;
    let _ = stop_tx.send(true);
    if let Some((task, timeout)) = exporter {
        // A request in flight finishes and its cursor is written: a restart resends nothing.
        if tokio::time::timeout(timeout + Duration::from_secs(1), task)
            .await
            .is_err()
        {
            warn!("the OTLP export was still sending at shutdown");
        }
    }
    while let Some(done) = servers.join_next().await {
        if let Err(e) = done {
            error!(error = %e, "HTTP server task failed");
        }
    }
    Ok(())
}

/// Binds a listener; its error names the address.
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), AgentError> {
    let listen = |source| AgentError::Listen { addr, source };
    let tcp = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let local = tcp.local_addr().map_err(listen)?;
    Ok((tcp, local))
}

impl Shared {
    /// Shows the store as it is now: its size, its queue and failures (metrics), and whether
    /// it is failing (`/readyz`).
    fn update_store_gauges(&self) {
        let (n, bytes) = self.store.stats();
        self.metrics.reports_stored.set(n as i64);
        self.metrics.store_bytes.set(bytes as i64);
        let status = self.store.status();
        self.metrics.store_status(&status);
        self.health.set_store(status);
    }

    /// A collection error for the report and its count in `coroner_collection_errors_total`,
    /// under one stable label.
    fn collection_error(&self, label: &'static str, message: impl ToString) -> CollectionError {
        self.metrics.collection_error(label);
        CollectionError {
            stage: label.into(),
            message: message.to_string(),
        }
    }

    /// Forgets a container in the journal, off the async workers.
    fn forget_tracked(self: &Arc<Self>, namespace: &str, container_id: &str) {
        let (me, ns, id) = (
            self.clone(),
            namespace.to_string(),
            container_id.to_string(),
        );
        tokio::task::spawn_blocking(move || me.journal.forget(&ns, &id));
    }

    /// Reserves a report id for an exit of `container_id`; false when the report exists or is
    /// being written. With `once_per_container` (a CRI container, which runs once), also false
    /// when any report of the container exists or is being written: after a containerd restart
    /// the CRI may hold an exit time of its own making for an exit the agent saw live.
    fn claim(&self, id: &str, container_id: &str, once_per_container: bool) -> bool {
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if self.store.contains(id) || inflight.ids.contains(id) {
            return false;
        }
        if once_per_container
            && (inflight.containers.contains_key(container_id)
                || self.store.has_container(container_id))
        {
            return false;
        }
        inflight.ids.insert(id.to_string());
        *inflight
            .containers
            .entry(container_id.to_string())
            .or_default() += 1;
        true
    }

    fn release(&self, id: &str, container_id: &str) {
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        inflight.ids.remove(id);
        if let Some(n) = inflight.containers.get_mut(container_id) {
            *n -= 1;
            if *n == 0 {
                inflight.containers.remove(container_id);
            }
        }
    }
}

/// Inode of the agent's own cgroup2 directory, to keep its syscalls out of the recorder.
fn own_cgroup_id(cgroups: &CgroupFs) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    cgroups.unified_cgroup_id(path)
}
