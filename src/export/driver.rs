//! The export task: every stored report to the collector, at least once, in batches.
//!
//! At start it reads its cursor ([`super::cursor`]) and subscribes to "report stored" before it
//! walks the store's index, so a report stored in between is neither missed nor queued twice.
//! Then it sends what the cursor lacks, oldest exit first, and afterwards each report as it is
//! stored. After each acknowledged batch the cursor is written. A failed request is retried
//! with capped exponential backoff (with jitter, so a fleet does not retry in step); the queue
//! holds ids only, the reports stay on disk. A subscriber that fell behind walks the index
//! again. Nothing here touches readiness: a collector that is down shows in the `coroner_otlp_*`
//! metrics, not in `/readyz`.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};

use super::cursor::{self, Cursor};
use super::otlp::{self, Links};
use super::transport::{SendError, Transport, TransportError};
use crate::config::OtlpSettings;
use crate::metrics::{ExportReasonLabels, Metrics};
use crate::model::CrashReport;
use crate::store::{Query, Store, MAX_LIMIT};

/// Reports per request: ~1-2 KiB each as a record, far below a collector's 4 MiB gRPC limit.
pub const BATCH: usize = 100;
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

struct Pending {
    id: String,
    /// When the report was written (`lifecycle.reported_at`), once known.
    written_at: Option<DateTime<Utc>>,
}

pub struct Exporter {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    transport: Transport,
    links: Links,
    endpoint: String,
    dir: PathBuf,
    cursor: Cursor,
    queue: VecDeque<Pending>,
    queued: HashSet<String>,
    /// Failed attempts in a row.
    failures: u32,
    /// The last cursor write failed (logged once until one succeeds).
    cursor_failing: bool,
}

impl Exporter {
    /// The exporter of `store`; its client connects lazily, so a collector that is down is not
    /// an error.
    pub fn new(
        settings: &OtlpSettings,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Exporter, TransportError> {
        let transport = Transport::new(settings)?;
        for reason in SendError::LABELS {
            // Zeros from the start, so `rate()` and the alert rules see the series.
            let _ = metrics
                .export
                .errors
                .get_or_create(&ExportReasonLabels { reason });
        }
        for reason in ["refused", "expired", "unreadable"] {
            let _ = metrics
                .export
                .failed
                .get_or_create(&ExportReasonLabels { reason });
        }
        Ok(Exporter {
            dir: store.dir().to_path_buf(),
            store,
            metrics,
            transport,
            links: Links::new(settings.report_base_url.as_deref()),
            endpoint: settings.url.clone(),
            cursor: Cursor::default(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            failures: 0,
            cursor_failing: false,
        })
    }

    /// Runs until `stop` turns true. A request in flight then finishes (bounded by the
    /// timeout) and its cursor is written, so a restart resends nothing.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let dir = self.dir.clone();
        self.cursor = match tokio::task::spawn_blocking(move || Cursor::load(&dir)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                warn!(error = %e, "export cursor unusable: every stored report is sent again");
                Cursor::default()
            }
            Err(e) => {
                warn!(error = %e, "export cursor load failed");
                Cursor::default()
            }
        };
        // Before the walk: what is stored during it arrives here too (and is queued once).
        let mut stored = self.store.subscribe();
        self.catch_up();
        info!(
            endpoint = %self.endpoint,
            acknowledged = self.cursor.len(),
            pending = self.queue.len(),
            "exporting reports over OTLP"
        );
        loop {
            if *stop.borrow() {
                return;
            }
            loop {
                match stored.try_recv() {
                    Ok(s) => self.enqueue(s.id, Some(Utc::now())),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        debug!(
                            skipped = n,
                            "export fell behind the store's feed: walking the index"
                        );
                        self.catch_up();
                    }
                    Err(broadcast::error::TryRecvError::Empty) => break,
                    Err(broadcast::error::TryRecvError::Closed) => return,
                }
            }
            self.update_gauges();
            if self.queue.is_empty() {
                tokio::select! {
                    r = stored.recv() => match r {
                        Ok(s) => self.enqueue(s.id, Some(Utc::now())),
                        Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up(),
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    _ = stop.changed() => return,
                }
                continue;
            }
            let reports = self.load_batch().await;
            self.update_gauges();
            if reports.is_empty() {
                continue;
            }
            let req = otlp::request(&reports, &self.links);
            // Not interrupted by `stop`: an abandoned request may have been received, and would
            // be sent again after a restart.
            let result = self.transport.send(req).await;
            match result {
                Ok(ack) => {
                    if self.failures > 0 {
                        info!(
                            endpoint = %self.endpoint,
                            failed_attempts = self.failures,
                            pending = self.queue.len(),
                            "collector reachable again"
                        );
                    }
                    self.failures = 0;
                    let n = reports.len() as u64;
                    let rejected = ack.rejected.min(n);
                    if rejected > 0 {
                        warn!(
                            endpoint = %self.endpoint,
                            rejected,
                            message = %ack.message,
                            "the collector accepted the request but rejected some records"
                        );
                        self.failed("refused", rejected);
                    }
                    self.metrics.export.exported.inc_by(n - rejected);
                    let now = Utc::now();
                    for r in &reports {
                        let age = (now - r.lifecycle.reported_at).to_std().unwrap_or_default();
                        self.metrics
                            .export
                            .latency_seconds
                            .observe(age.as_secs_f64());
                    }
                    self.done(&reports).await;
                }
                Err(e) if !e.is_retryable() => {
                    self.metrics
                        .export
                        .errors
                        .get_or_create(&ExportReasonLabels { reason: e.label() })
                        .inc();
                    warn!(error = %e, reports = reports.len(), "reports refused by the collector; not retried");
                    self.failed("refused", reports.len() as u64);
                    self.done(&reports).await;
                }
                Err(e) => {
                    self.metrics
                        .export
                        .errors
                        .get_or_create(&ExportReasonLabels { reason: e.label() })
                        .inc();
                    self.failures += 1;
                    if self.failures == 1 {
                        warn!(
                            error = %e,
                            pending = self.queue.len(),
                            "export failed: reports stay pending and are retried with backoff"
                        );
                    } else {
                        debug!(error = %e, attempt = self.failures, "export failed again");
                    }
                    let wait = e
                        .retry_after()
                        .unwrap_or_else(|| backoff(self.failures))
                        .min(BACKOFF_MAX);
                    let until = Instant::now() + wait;
                    // The lag grows while waiting: show it.
                    while Instant::now() < until {
                        self.update_gauges();
                        let step = until
                            .saturating_duration_since(Instant::now())
                            .min(Duration::from_secs(5));
                        tokio::select! {
                            _ = tokio::time::sleep(step) => {}
                            _ = stop.changed() => return,
                        }
                    }
                }
            }
        }
    }

    /// Queues every stored report the cursor lacks, oldest exit first, and forgets the ids
    /// of reports the store no longer holds.
    fn catch_up(&mut self) {
        let mut missing = Vec::new();
        let mut present = HashSet::new();
        let mut q = Query {
            outcome: None,
            limit: MAX_LIMIT,
            ..Query::default()
        };
        loop {
            let page = self.store.list(&q);
            for s in page.items {
                if !self.cursor.contains(&s.id) && !self.queued.contains(&s.id) {
                    missing.push((s.exited_at, s.id.clone()));
                }
                present.insert(s.id);
            }
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        self.cursor.retain(|id| present.contains(id));
        missing.sort();
        for (_, id) in missing {
            self.enqueue(id, None);
        }
    }

    fn enqueue(&mut self, id: String, written_at: Option<DateTime<Utc>>) {
        if self.cursor.contains(&id) || !self.queued.insert(id.clone()) {
            return;
        }
        self.queue.push_back(Pending { id, written_at });
    }

    /// Reads the next batch from the store. Reports it no longer has are given up on here.
    async fn load_batch(&mut self) -> Vec<CrashReport> {
        let ids: Vec<String> = self
            .queue
            .iter()
            .take(BATCH)
            .map(|p| p.id.clone())
            .collect();
        let store = self.store.clone();
        let read = tokio::task::spawn_blocking(move || {
            ids.into_iter()
                .map(|id| {
                    let r = store.get(&id);
                    (id, r)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let mut reports = Vec::with_capacity(read.len());
        for (id, r) in read {
            match r {
                Ok(Some(report)) => {
                    if let Some(p) = self.queue.iter_mut().find(|p| p.id == id) {
                        p.written_at = Some(report.lifecycle.reported_at);
                    }
                    reports.push(report);
                }
                Ok(None) => {
                    debug!(id, "report deleted by retention before it was exported");
                    self.failed("expired", 1);
                    self.forget(&id);
                }
                Err(e) => {
                    warn!(id, error = %e, "report unreadable; not exported");
                    self.failed("unreadable", 1);
                    self.forget(&id);
                }
            }
        }
        reports
    }

    fn forget(&mut self, id: &str) {
        self.queued.remove(id);
        self.queue.retain(|p| p.id != id);
    }

    fn failed(&self, reason: &'static str, n: u64) {
        self.metrics
            .export
            .failed
            .get_or_create(&ExportReasonLabels { reason })
            .inc_by(n);
    }

    /// The collector has these (or refused them for good): off the queue, into the cursor,
    /// and the cursor to disk.
    async fn done(&mut self, reports: &[CrashReport]) {
        let ids: HashSet<&str> = reports.iter().map(|r| r.id.as_str()).collect();
        self.queue.retain(|p| !ids.contains(p.id.as_str()));
        for id in &ids {
            self.queued.remove(*id);
            self.cursor.insert(id);
        }
        let store = self.store.clone();
        self.cursor.retain(|id| store.contains(id));
        let bytes = self.cursor.encode();
        let dir = self.dir.clone();
        let written = tokio::task::spawn_blocking(move || cursor::write(&dir, &bytes)).await;
        match written {
            Ok(Ok(())) => {
                if self.cursor_failing {
                    info!("export cursor written again");
                }
                self.cursor_failing = false;
            }
            Ok(Err(e)) => {
                if !self.cursor_failing {
                    warn!(error = %e, "export cursor not written: after a restart, reports sent since may be sent again");
                }
                self.cursor_failing = true;
                self.metrics.collection_error("export_cursor");
            }
            Err(e) => warn!(error = %e, "export cursor write failed"),
        }
        self.update_gauges();
    }

    fn update_gauges(&self) {
        let m = &self.metrics.export;
        m.pending.set(self.queue.len() as i64);
        let lag = self.queue.front().map_or(0.0, |p| {
            p.written_at
                .and_then(|t| (Utc::now() - t).to_std().ok())
                .map_or(0.0, |d| d.as_secs_f64())
        });
        m.lag_seconds.set(lag);
    }
}

/// The wait before attempt `failures + 1`: doubling from 0.5 s to 30 s, less up to a fifth at
/// random.
fn backoff(failures: u32) -> Duration {
    let base = BACKOFF_FIRST
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    let jitter_range = base.as_millis() as u64 / 5;
    let noise = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos(),
    );
    base - Duration::from_millis(noise % jitter_range.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_to_thirty() {
        let secs: Vec<f64> = (1..=10).map(|f| backoff(f).as_secs_f64()).collect();
        for (f, s) in secs.iter().enumerate() {
            let base = (0.5 * f64::from(1u32 << f)).min(30.0);
            assert!(
                *s <= base && *s >= base * 0.8,
                "attempt {}: {s} vs {base}",
                f + 1
            );
        }
        assert!(backoff(1000) <= BACKOFF_MAX);
    }
}
