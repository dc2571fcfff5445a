//! The agent's Prometheus metrics: what it saw (exits, OOM kills) and how it is doing.
//!
//! Label sets are typed structs with bounded values; errors are labelled with their stable
//! `label()`, never with free text. The HTTP layer only encodes [`Metrics::encode`].

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::model::{CrashReport, Outcome};
use crate::store::StoreStatus;

/// Why a container exited, as a metric label (bounded set).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ExitReason {
    completed,
    error,
    signal,
    oom_killed,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExitLabels {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub reason: ExitReason,
}

/// The workload a report counts under. Bounded: never a container id, which would add a series
/// for every container that ever ran and never remove it.
///
/// - Kubernetes containers: the Kubernetes namespace, the pod name and the container name.
/// - Other containers (Docker, nerdctl, `ctr run`): the containerd namespace, an empty pod, and
///   the image repository without tag or digest as `container` (`docker.io/library/redis`), or
///   empty when the image is unknown. Their reports carry the container id.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

impl WorkloadLabels {
    pub fn of(r: &CrashReport) -> WorkloadLabels {
        match &r.kubernetes {
            Some(k) => WorkloadLabels {
                namespace: k.namespace.clone(),
                pod: k.pod.clone(),
                container: k.container.clone(),
            },
            None => WorkloadLabels {
                namespace: r.container.namespace.clone(),
                pod: String::new(),
                container: r
                    .container
                    .image
                    .as_deref()
                    .map(image_repository)
                    .unwrap_or_default()
                    .to_string(),
            },
        }
    }
}

/// `registry:5000/team/app:1.2@sha256:...` -> `registry:5000/team/app`.
pub fn image_repository(image: &str) -> &str {
    let name = image.split_once('@').map_or(image, |(name, _)| name);
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: &'static str,
}

/// A diagnosis' cause: the fixed vocabulary of `crate::model::Cause`, never free text.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    pub namespace: String,
    pub cause: &'static str,
}

/// An exit of a container whose image reference no longer names what ran: the workload, and
/// `moved` or `removed` (`crate::model::ImageTagStatus`, never free text).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StaleImageLabels {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: &'static str,
}

/// A failed report write, by the store's bounded fault label (`no_space`, `read_only`, ...).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteFailureLabels {
    pub reason: &'static str,
}

/// Why a finished report was lost (bounded set).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DropReason {
    /// Its write failed and the retry queue was full.
    queue_full,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub reason: DropReason,
}

/// Why the OTLP exporter gave up on a report, or failed one attempt (stable labels of
/// `crate::export`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExportReasonLabels {
    pub reason: &'static str,
}

/// The OTLP exporter's figures (`crate::export`). Registered whether or not an endpoint is set,
/// so the alert rules see zeros rather than nothing.
pub struct ExportMetrics {
    /// Reports the collector acknowledged.
    pub exported: Counter,
    /// Reports given up on: `refused` (the collector said the data is bad, or partial success
    /// rejected them), `expired` (retention deleted them before they were sent), `unreadable`.
    pub failed: Family<ExportReasonLabels, Counter>,
    /// Failed export attempts, retried: `unreachable`, `timeout`, `throttled`, `unavailable`,
    /// `unauthorized`, `not_found`, `other` (and `refused`, not retried).
    pub errors: Family<ExportReasonLabels, Counter>,
    /// Stored reports not yet acknowledged.
    pub pending: Gauge,
    /// Age of the oldest pending report (since it was written), 0 when none is pending.
    pub lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// From a report being written to the collector acknowledging it.
    pub latency_seconds: Histogram,
}

impl ExportMetrics {
    fn register(registry: &mut Registry) -> ExportMetrics {
        let m = ExportMetrics {
            exported: Counter::default(),
            failed: Family::default(),
            errors: Family::default(),
            pending: Gauge::default(),
            lag_seconds: Gauge::default(),
            latency_seconds: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
        };
        registry.register(
            "otlp_exported_reports",
            "Reports the OTLP collector acknowledged",
            m.exported.clone(),
        );
        registry.register(
            "otlp_failed_reports",
            "Reports the OTLP exporter gave up on, by reason: refused (the collector said the data is bad), expired (deleted by retention before it was sent), unreadable",
            m.failed.clone(),
        );
        registry.register(
            "otlp_export_errors",
            "Failed OTLP export requests, by reason: unreachable, timeout, throttled, unavailable, unauthorized, not_found, other (all retried with backoff), refused (not retried)",
            m.errors.clone(),
        );
        registry.register(
            "otlp_pending_reports",
            "Stored reports the OTLP collector has not acknowledged yet",
            m.pending.clone(),
        );
        registry.register_with_unit(
            "otlp_lag",
            "Age of the oldest report waiting for export (since it was written); 0 when none waits",
            Unit::Seconds,
            m.lag_seconds.clone(),
        );
        registry.register_with_unit(
            "otlp_export_latency",
            "Time from a report being written to the OTLP collector acknowledging it",
            Unit::Seconds,
            m.latency_seconds.clone(),
        );
        m
    }
}

pub struct Metrics {
    registry: Registry,
    pub export: ExportMetrics,
    pub store_pending_reports: Gauge,
    pub store_pending_bytes: Gauge,
    store_write_failures: Family<WriteFailureLabels, Counter>,
    reports_dropped: Family<DropLabels, Counter>,
    /// The store's totals are raised from several tasks: one at a time, or a raise counts twice.
    store_totals: std::sync::Mutex<()>,
    pub container_exits: Family<ExitLabels, Counter>,
    pub oom_kills: Family<WorkloadLabels, Counter>,
    pub events_received: Family<TopicLabels, Counter>,
    pub reconnects: Counter,
    pub reports_stored: Gauge,
    pub store_bytes: Gauge,
    pub exit_to_report_seconds: Histogram,
    pub collection_errors: Family<StageLabels, Counter>,
    pub tracked_containers: Gauge,
    pub ready: Gauge,
    pub recorder_loaded: Gauge,
    pub recorder_kernel_memory_bytes: Gauge,
    recorder_events_lost: Counter,
    recorder_slot_evictions: Counter,
    recorder_alloc_failures: Counter,
    recorder_events_skipped: Counter,
    pub crash_causes: Family<CauseLabels, Counter>,
    pub stale_image_exits: Family<StaleImageLabels, Counter>,
    pub http: HttpMetrics,
}

/// The recorder's own totals since it loaded, as the kernel side and the event reader keep them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderTotals {
    pub events_lost: u64,
    pub slot_evictions: u64,
    pub alloc_failures: u64,
    pub events_skipped: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("coroner");
        let container_exits = Family::<ExitLabels, Counter>::default();
        registry.register(
            "container_exits",
            "Container exits seen, by Kubernetes namespace, pod, container and reason (other containers: containerd namespace, empty pod, image repository)",
            container_exits.clone(),
        );
        let oom_kills = Family::<WorkloadLabels, Counter>::default();
        registry.register(
            "oom_kills",
            "Containers killed by the kernel OOM killer",
            oom_kills.clone(),
        );
        let events_received = Family::<TopicLabels, Counter>::default();
        registry.register(
            "events_received",
            "containerd events received, by topic",
            events_received.clone(),
        );
        let reconnects = Counter::default();
        registry.register(
            "containerd_reconnects",
            "Times the containerd event subscription was re-established after it ended",
            reconnects.clone(),
        );
        let reports_stored = Gauge::default();
        registry.register(
            "reports_stored",
            "Reports currently held in the data dir",
            reports_stored.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register_with_unit(
            "store",
            "Size of the reports in the data dir",
            Unit::Bytes,
            store_bytes.clone(),
        );
        // 1 ms .. ~4 s: the target is a p99 under 50 ms.
        let exit_to_report_seconds = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]);
        registry.register_with_unit(
            "exit_to_report",
            "Time from a container's exit (containerd's exited_at) to its report being stored",
            Unit::Seconds,
            exit_to_report_seconds.clone(),
        );
        let collection_errors = Family::<StageLabels, Counter>::default();
        registry.register(
            "collection_errors",
            "Failures while collecting or storing a report, by stable stage label",
            collection_errors.clone(),
        );
        let tracked_containers = Gauge::default();
        registry.register(
            "tracked_containers",
            "Live containers the agent tracks",
            tracked_containers.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 once the containerd subscription and reconcile succeeded, 0 while disconnected",
            ready.clone(),
        );
        let recorder_loaded = Gauge::default();
        registry.register(
            "recorder_loaded",
            "1 when the eBPF flight recorder is attached, 0 when disabled or unavailable",
            recorder_loaded.clone(),
        );
        let recorder_kernel_memory_bytes = Gauge::default();
        registry.register_with_unit(
            "recorder_kernel_memory",
            "Kernel memory the flight recorder's BPF maps take, fixed at load (0 when not loaded)",
            Unit::Bytes,
            recorder_kernel_memory_bytes.clone(),
        );
        let recorder_events_lost = Counter::default();
        registry.register(
            "recorder_events_lost",
            "Process events (fork, exec, exit, signal, OOM victim) the kernel dropped because the ring buffer was full",
            recorder_events_lost.clone(),
        );
        let recorder_slot_evictions = Counter::default();
        registry.register(
            "recorder_slot_evictions",
            "Recorded containers whose data was evicted by a new cgroup (more than --recorder-containers at once); their reports say no_data",
            recorder_slot_evictions.clone(),
        );
        let recorder_alloc_failures = Counter::default();
        registry.register(
            "recorder_alloc_failures",
            "Syscalls not recorded because no recorder slot could be taken (lost allocation races)",
            recorder_alloc_failures.clone(),
        );
        let recorder_events_skipped = Counter::default();
        registry.register(
            "recorder_events_skipped",
            "Process-event records the agent could not decode (short or of an unknown type)",
            recorder_events_skipped.clone(),
        );
        let crash_causes = Family::<CauseLabels, Counter>::default();
        registry.register(
            "crash_causes",
            "Stored reports by namespace and diagnosed cause (see the README's cause vocabulary)",
            crash_causes.clone(),
        );
        let stale_image_exits = Family::<StaleImageLabels, Counter>::default();
        registry.register(
            "stale_image_exits",
            "Stored reports of containers whose image reference resolved to other content at the exit (moved) or to nothing (removed)",
            stale_image_exits.clone(),
        );
        let store_pending_reports = Gauge::default();
        registry.register(
            "store_pending_reports",
            "Reports whose write failed, held in memory until the data dir takes writes again",
            store_pending_reports.clone(),
        );
        let store_pending_bytes = Gauge::default();
        registry.register_with_unit(
            "store_pending",
            "Size of the reports held in memory (bounded by --store-retry-queue-bytes)",
            Unit::Bytes,
            store_pending_bytes.clone(),
        );
        let store_write_failures = Family::<WriteFailureLabels, Counter>::default();
        registry.register(
            "store_write_failures",
            "Failed report writes (first attempts and retries), by fault: no_space, quota_exceeded, read_only, permission_denied, too_many_open_files, not_found, io_error, other",
            store_write_failures.clone(),
        );
        let reports_dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "reports_dropped",
            "Finished reports lost, by reason (queue_full: the write failed and the retry queue was full)",
            reports_dropped.clone(),
        );
        let export = ExportMetrics::register(&mut registry);
        let http = HttpMetrics::register(&mut registry);
        Metrics {
            export,
            http,
            store_pending_reports,
            store_pending_bytes,
            store_write_failures,
            reports_dropped,
            store_totals: std::sync::Mutex::new(()),
            crash_causes,
            stale_image_exits,
            recorder_loaded,
            recorder_kernel_memory_bytes,
            recorder_events_lost,
            recorder_slot_evictions,
            recorder_alloc_failures,
            recorder_events_skipped,
            registry,
            container_exits,
            oom_kills,
            events_received,
            reconnects,
            reports_stored,
            store_bytes,
            exit_to_report_seconds,
            collection_errors,
            tracked_containers,
            ready,
        }
    }

    /// Counts one stored report: its exit reason, its cause, and an OOM kill.
    pub fn count_report(&self, r: &CrashReport) {
        let w = WorkloadLabels::of(r);
        if let Some(d) = &r.diagnosis {
            self.crash_causes
                .get_or_create(&CauseLabels {
                    namespace: w.namespace.clone(),
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
        self.container_exits
            .get_or_create(&ExitLabels {
                namespace: w.namespace.clone(),
                pod: w.pod.clone(),
                container: w.container.clone(),
                reason,
            })
            .inc();
        if let Some(tag) = r.image_tag.as_ref().filter(|t| t.is_stale()) {
            self.stale_image_exits
                .get_or_create(&StaleImageLabels {
                    namespace: w.namespace.clone(),
                    pod: w.pod.clone(),
                    container: w.container.clone(),
                    status: tag.status.as_str(),
                })
                .inc();
        }
        if r.oom.killed {
            self.oom_kills.get_or_create(&w).inc();
        }
    }

    pub fn collection_error(&self, stage: &'static str) {
        self.collection_errors
            .get_or_create(&StageLabels { stage })
            .inc();
    }

    /// Raises the recorder counters to the totals read from the kernel. The totals only grow
    /// while the recorder is loaded, and this is the counters' only writer.
    pub fn recorder_totals(&self, t: &RecorderTotals) {
        for (counter, total) in [
            (&self.recorder_events_lost, t.events_lost),
            (&self.recorder_slot_evictions, t.slot_evictions),
            (&self.recorder_alloc_failures, t.alloc_failures),
            (&self.recorder_events_skipped, t.events_skipped),
        ] {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// Shows the store's health: the queue as gauges, its failure and drop totals raised to
    /// what the store counted (the store is their only source).
    pub fn store_status(&self, s: &StoreStatus) {
        self.store_pending_reports
            .set(i64::try_from(s.pending).unwrap_or(i64::MAX));
        self.store_pending_bytes
            .set(i64::try_from(s.pending_bytes).unwrap_or(i64::MAX));
        let _one = self.store_totals.lock().unwrap_or_else(|p| p.into_inner());
        for (reason, total) in &s.write_failures {
            let counter = self
                .store_write_failures
                .get_or_create(&WriteFailureLabels { reason });
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        let dropped = self.reports_dropped.get_or_create(&DropLabels {
            reason: DropReason::queue_full,
        });
        dropped.inc_by(s.dropped_queue_full.saturating_sub(dropped.get()));
    }

    /// OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The Prometheus text format (0.0.4), for scrapers and tools that do not ask for
    /// OpenMetrics (`promtool check metrics`, `curl`): see [`openmetrics_to_text`].
    pub fn encode_text(&self) -> String {
        openmetrics_to_text(&self.encode())
    }
}

/// `Content-Type` of [`Metrics::encode`] and of [`Metrics::encode_text`].
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a scraper's `Accept` header asks for OpenMetrics (Prometheus does; curl does not).
pub fn accepts_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// OpenMetrics as the Prometheus text format: a counter family is named with its `_total`
/// suffix, and the `# UNIT` and `# EOF` lines go (the text format has neither).
pub fn openmetrics_to_text(om: &str) -> String {
    let counters: std::collections::HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{prefix}{name}_total {tail}"));
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Which HTTP listener (`api` or `metrics`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub listener: &'static str,
}

/// Why the HTTP layer turned a client away.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum HttpRejectReason {
    /// More than --max-connections open: answered 503 (or closed at once in a flood).
    connections,
    /// More than --max-sse-clients live feeds: answered 503.
    sse_clients,
    /// accept() failed (EMFILE, ENFILE, a reset before accept).
    accept_error,
    /// No or a wrong bearer token on the API listener: answered 401.
    unauthorized,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRejectLabels {
    pub listener: &'static str,
    pub reason: HttpRejectReason,
}

/// The HTTP listeners' connections and refusals (src/http/serve.rs).
pub struct HttpMetrics {
    pub connections: Family<ListenerLabels, Gauge>,
    pub connection_limit: Family<ListenerLabels, Gauge>,
    pub rejected: Family<HttpRejectLabels, Counter>,
}

impl HttpMetrics {
    fn register(registry: &mut Registry) -> HttpMetrics {
        let connections = Family::<ListenerLabels, Gauge>::default();
        registry.register(
            "http_connections",
            "Open HTTP connections being served, by listener",
            connections.clone(),
        );
        let connection_limit = Family::<ListenerLabels, Gauge>::default();
        registry.register(
            "http_connection_limit",
            "Connections a listener serves at once (--max-connections, lowered to fit RLIMIT_NOFILE)",
            connection_limit.clone(),
        );
        let rejected = Family::<HttpRejectLabels, Counter>::default();
        registry.register(
            "http_rejected",
            "HTTP clients turned away, by listener and reason",
            rejected.clone(),
        );
        HttpMetrics {
            connections,
            connection_limit,
            rejected,
        }
    }

    pub fn reject(&self, listener: &'static str, reason: HttpRejectReason) {
        self.rejected
            .get_or_create(&HttpRejectLabels { listener, reason })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_counted_with_typed_labels() {
        let m = Metrics::new();
        let labels = ExitLabels {
            namespace: "shop".into(),
            pod: "gateway-7d9".into(),
            container: "beam".into(),
            reason: ExitReason::oom_killed,
        };
        m.container_exits.get_or_create(&labels).inc();
        m.collection_error("cgroup_gone");
        let text = m.encode();
        assert!(text.contains(
            r#"coroner_container_exits_total{namespace="shop",pod="gateway-7d9",container="beam",reason="oom_killed"} 1"#
        ));
        assert!(text.contains(r#"coroner_collection_errors_total{stage="cgroup_gone"} 1"#));
        assert!(text.contains("coroner_exit_to_report_seconds_bucket"));
        assert!(text.contains("coroner_store_bytes"));
    }

    fn report(name: &str) -> CrashReport {
        let path = format!(
            "{}/tests/fixtures/reports/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut r: CrashReport =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        // As the store does for reports written before diagnosis existed.
        r.diagnosis = Some(crate::diagnose::diagnose(&r));
        r
    }

    /// The series of one metric, sorted (a family encodes in hash order).
    fn series(text: &str, metric: &str) -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn plain_containers_do_not_add_a_series_per_container_id() {
        let m = Metrics::new();
        let (exited, oom) = (report("exited_error"), report("oom_killed"));
        for i in 0..50 {
            for base in [&exited, &oom] {
                let mut r = base.clone();
                r.kubernetes = None;
                r.container.namespace = "moby".into();
                r.container.id = format!("{i:064x}");
                r.container.image = Some(format!("docker.io/library/redis:7.{i}@sha256:{i:064x}"));
                m.count_report(&r);
            }
        }
        let text = m.encode();
        let exits = series(&text, "coroner_container_exits_total");
        assert_eq!(
            exits,
            [
                r#"coroner_container_exits_total{namespace="moby",pod="",container="docker.io/library/redis",reason="error"} 50"#,
                r#"coroner_container_exits_total{namespace="moby",pod="",container="docker.io/library/redis",reason="oom_killed"} 50"#,
            ]
        );
        assert_eq!(
            series(&text, "coroner_oom_kills_total"),
            [
                r#"coroner_oom_kills_total{namespace="moby",pod="",container="docker.io/library/redis"} 50"#
            ]
        );
        assert_eq!(
            series(&text, "coroner_crash_causes_total").len(),
            2,
            "{text}"
        );
    }

    #[test]
    fn stale_image_exits_count_moved_and_removed_tags_but_not_current_ones() {
        use crate::model::{ImageCompared, ImageTagReport, ImageTagStatus};
        let m = Metrics::new();
        for status in [
            ImageTagStatus::Current,
            ImageTagStatus::Moved,
            ImageTagStatus::Moved,
            ImageTagStatus::Removed,
        ] {
            let mut r = report("exited_error");
            r.image_tag = Some(ImageTagReport {
                reference: "localhost/gw:1".into(),
                status,
                compared: ImageCompared::Config,
                ran: Default::default(),
                now: None,
                checked_at: r.lifecycle.exited_at,
            });
            m.count_report(&r);
        }
        let k = report("exited_error").kubernetes.unwrap();
        let labels = format!(
            r#"namespace="{}",pod="{}",container="{}""#,
            k.namespace, k.pod, k.container
        );
        assert_eq!(
            series(&m.encode(), "coroner_stale_image_exits_total"),
            [
                format!(r#"coroner_stale_image_exits_total{{{labels},status="moved"}} 2"#),
                format!(r#"coroner_stale_image_exits_total{{{labels},status="removed"}} 1"#),
            ]
        );
    }

    #[test]
    fn kubernetes_containers_count_under_namespace_pod_and_container() {
        let m = Metrics::new();
        let r = report("exited_error");
        let k = r.kubernetes.clone().unwrap();
        m.count_report(&r);
        let want = format!(
            r#"coroner_container_exits_total{{namespace="{}",pod="{}",container="{}",reason="error"}} 1"#,
            k.namespace, k.pod, k.container
        );
        assert_eq!(series(&m.encode(), "coroner_container_exits_total"), [want]);
    }

    #[test]
    fn image_repository_drops_tag_and_digest_but_not_the_registry_port() {
        for (image, repo) in [
            ("redis", "redis"),
            ("redis:7", "redis"),
            ("docker.io/library/redis:7.2", "docker.io/library/redis"),
            ("registry:5000/team/app", "registry:5000/team/app"),
            (
                "registry:5000/team/app:1.2@sha256:abc",
                "registry:5000/team/app",
            ),
            ("app@sha256:abc", "app"),
            ("", ""),
        ] {
            assert_eq!(image_repository(image), repo, "{image}");
        }
    }

    #[test]
    fn the_text_format_names_counters_with_total_and_has_no_openmetrics_lines() {
        let m = Metrics::new();
        m.collection_error("cgroup_gone");
        let text = m.encode_text();
        assert!(text.contains("# TYPE coroner_collection_errors_total counter\n"));
        assert!(text.contains("# HELP coroner_collection_errors_total Failures"));
        assert!(text.contains("coroner_collection_errors_total{stage=\"cgroup_gone\"} 1\n"));
        assert!(text.contains("# TYPE coroner_store_bytes gauge\n"));
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(accepts_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!accepts_openmetrics(Some("*/*")));
        assert!(!accepts_openmetrics(None));
    }

    #[test]
    fn store_failures_and_drops_follow_the_store_totals() {
        let m = Metrics::new();
        let mut s = StoreStatus {
            pending: 4,
            pending_bytes: 4096,
            write_failures: vec![("no_space", 6), ("read_only", 0)],
            dropped_queue_full: 2,
            ..Default::default()
        };
        m.store_status(&s);
        m.store_status(&s);
        s.write_failures[0].1 = 7;
        s.pending = 0;
        m.store_status(&s);
        let text = m.encode();
        for line in [
            "coroner_store_pending_reports 0\n",
            "coroner_store_pending_bytes 4096\n",
            "coroner_store_write_failures_total{reason=\"no_space\"} 7\n",
            "coroner_store_write_failures_total{reason=\"read_only\"} 0\n",
            "coroner_reports_dropped_total{reason=\"queue_full\"} 2\n",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn recorder_counters_follow_the_kernel_totals() {
        let m = Metrics::new();
        let mut t = RecorderTotals {
            slot_evictions: 3,
            ..Default::default()
        };
        m.recorder_totals(&t);
        m.recorder_totals(&t);
        assert!(m
            .encode()
            .contains("coroner_recorder_slot_evictions_total 3\n"));
        t.slot_evictions = 5;
        t.events_lost = 2;
        m.recorder_totals(&t);
        let text = m.encode();
        assert!(
            text.contains("coroner_recorder_slot_evictions_total 5\n"),
            "{text}"
        );
        assert!(
            text.contains("coroner_recorder_events_lost_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("coroner_recorder_alloc_failures_total 0\n"),
            "{text}"
        );
        assert!(
            text.contains("coroner_recorder_kernel_memory_bytes 0\n"),
            "{text}"
        );
    }
}
