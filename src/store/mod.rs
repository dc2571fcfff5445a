//! Durable report storage: one JSON file per report in a data directory.
//!
//! Writes are atomic (temporary file, fsync, rename, fsync of the directory), so a report is
//! either whole on disk or absent, even across `kill -9` or power loss. An in-memory index ordered
//! by exit time serves listings; full reports are read from disk on demand. Retention deletes the
//! oldest reports beyond a count and a byte budget. Files that are not reports are logged and
//! skipped at load, never fatal. Blocking I/O: call from `spawn_blocking`.
//!
//! Storage faults lose nothing within a bound: a report whose write fails (disk full, read-only
//! remount, EMFILE) leaves no temporary file and waits in a bounded queue in memory ([`pending`])
//! until [`Store::retry_pending`] writes it, oldest first. The store says "stored or pending":
//! a queued report counts as known (`contains`, `get`), but is listed, indexed and announced
//! only once it is on disk. Retention never deletes reports to make room for queued ones: the
//! record is not rewritten behind the reader's back, the queue waits for space. A data dir that
//! cannot be written at open is an error ([`StoreError::NotWritable`]), except when it is only
//! full: then the store opens failing and recovers when space returns.

mod pending;
mod query;

pub use pending::{Failing, StoreStatus, DEFAULT_QUEUE_BYTES};
pub use query::{Cursor, GroupQuery, Page, Query, QueryError, MAX_LIMIT};

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use tokio::sync::broadcast;

use crate::model::{CrashGroup, CrashReport, CrashSummary};
use pending::{PendingQueue, Pushed};

const REPORT_SUFFIX: &str = ".json";
/// Post-mortem files live in `artifacts/<report id>/<name>.gz`, removed with their report.
const ARTIFACT_DIR: &str = "artifacts";
const ARTIFACT_SUFFIX: &str = ".gz";
/// Temporary files of interrupted writes (the store's and the exporters'), removed at open.
pub(crate) const TMP_PREFIX: &str = ".tmp-";
/// Stored reports the "report stored" feed holds for a slow subscriber before it skips ahead.
const STORED_FEED: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("creating data dir {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("report {path} is not valid: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("report id {0:?} is not a valid id")]
    BadId(String),
    #[error("data dir {path} is not writable: {source}")]
    NotWritable { path: PathBuf, source: io::Error },
    #[error("report not written and dropped: the retry queue is full ({limit} bytes)")]
    QueueFull { limit: u64 },
}

impl StoreError {
    pub fn label(&self) -> &'static str {
        match self {
            StoreError::CreateDir { .. } | StoreError::Write { .. } => "store_write",
            StoreError::Read { .. } => "store_read",
            StoreError::Corrupt { .. } => "store_corrupt",
            StoreError::BadId(_) => "store_bad_id",
            StoreError::NotWritable { .. } => "store_not_writable",
            StoreError::QueueFull { .. } => "store_queue_full",
        }
    }

    /// What kind of storage fault a failed write or open is; `None` for the other errors.
    pub fn fault(&self) -> Option<WriteFault> {
        match self {
            StoreError::CreateDir { source, .. }
            | StoreError::Write { source, .. }
            | StoreError::NotWritable { source, .. } => Some(WriteFault::of(source)),
            _ => None,
        }
    }
}

/// A failed write, by errno: the bounded `reason` of `coroner_store_write_failures_total` and
/// of `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// ENOSPC: the file system is full.
    NoSpace,
    /// EDQUOT.
    Quota,
    /// EROFS: remounted read-only (often after an I/O error).
    ReadOnly,
    /// EACCES, EPERM.
    Permission,
    /// EMFILE, ENFILE: no file descriptor for the write.
    TooManyFiles,
    /// ENOENT: the data dir was removed under the agent.
    NotFound,
    /// EIO.
    Io,
    Other,
}

impl WriteFault {
    pub const ALL: [WriteFault; 8] = [
        WriteFault::NoSpace,
        WriteFault::Quota,
        WriteFault::ReadOnly,
        WriteFault::Permission,
        WriteFault::TooManyFiles,
        WriteFault::NotFound,
        WriteFault::Io,
        WriteFault::Other,
    ];

    pub fn of(e: &io::Error) -> WriteFault {
        match e.raw_os_error() {
            Some(libc::ENOSPC) => WriteFault::NoSpace,
            Some(libc::EDQUOT) => WriteFault::Quota,
            Some(libc::EROFS) => WriteFault::ReadOnly,
            Some(libc::EACCES | libc::EPERM) => WriteFault::Permission,
            Some(libc::EMFILE | libc::ENFILE) => WriteFault::TooManyFiles,
            Some(libc::ENOENT) => WriteFault::NotFound,
            Some(libc::EIO) => WriteFault::Io,
            _ => WriteFault::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            WriteFault::NoSpace => "no_space",
            WriteFault::Quota => "quota_exceeded",
            WriteFault::ReadOnly => "read_only",
            WriteFault::Permission => "permission_denied",
            WriteFault::TooManyFiles => "too_many_open_files",
            WriteFault::NotFound => "not_found",
            WriteFault::Io => "io_error",
            WriteFault::Other => "other",
        }
    }

    /// Goes away without a change of configuration (space is freed, descriptors are closed):
    /// at open, the store waits for it instead of refusing to start.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            WriteFault::NoSpace | WriteFault::Quota | WriteFault::TooManyFiles
        )
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_reports: usize,
    pub max_bytes: u64,
}

/// Ordering key of the index: newest exit last in the map, listings walk it backwards.
type Key = (DateTime<Utc>, String);

#[derive(Debug, Clone)]
struct Entry {
    /// Shared, so grouping can take every summary under the lock and do its work outside it.
    summary: Arc<CrashSummary>,
    bytes: u64,
}

#[derive(Default)]
struct Index {
    by_time: BTreeMap<Key, Entry>,
    by_id: HashMap<String, DateTime<Utc>>,
    /// Reports per container id: a CRI container runs once, so one report is its exit.
    by_container: HashMap<String, usize>,
    bytes: u64,
}

/// What `insert` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    Stored {
        evicted: usize,
    },
    /// Not written now: held in memory until [`Store::retry_pending`] writes it.
    Queued,
    /// A report with this id exists already (stored or queued): the same exit, seen twice.
    Duplicate,
}

/// What one [`Store::retry_pending`] wrote, oldest first, with the reports retention evicted
/// after each; and how many are still queued.
#[derive(Debug, Default)]
pub struct Retried {
    pub written: Vec<(CrashReport, usize)>,
    pub remaining: usize,
}

pub struct Store {
    dir: PathBuf,
    retention: Retention,
    index: Mutex<Index>,
    /// "Report stored": the summary of every report as it is stored (the live feed's source).
    stored: broadcast::Sender<CrashSummary>,
    /// Reports not written yet, and the failure episode.
    pending: Mutex<PendingQueue>,
    /// One retry at a time, so the queue is written in order.
    retrying: Mutex<()>,
}

/// Ids are hex digests; anything else is refused before it touches a path.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Store {
    /// Opens (creating) the data dir, removes temporary files of interrupted writes, loads the
    /// index and checks that the dir takes a write (create, fsync, remove a probe file). Returns
    /// the store and the number of files that were skipped as corrupt or foreign.
    ///
    /// A dir that cannot be written is [`StoreError::NotWritable`] (with its path and errno),
    /// unless the fault is transient (full, over quota, out of descriptors): the store then opens
    /// failing, and [`Store::retry_pending`] finds out when it takes writes again.
    pub fn open(dir: &Path, retention: Retention) -> Result<(Store, usize), StoreError> {
        fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let store = Store {
            dir: dir.to_path_buf(),
            retention,
            index: Mutex::new(Index::default()),
            stored: broadcast::channel(STORED_FEED).0,
            pending: Mutex::new(PendingQueue::new(DEFAULT_QUEUE_BYTES)),
            retrying: Mutex::new(()),
        };
        let mut skipped = 0;
        let entries = fs::read_dir(dir).map_err(|source| StoreError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut index = Index::default();
        for entry in entries {
            let entry = entry.map_err(|source| StoreError::Read {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue; // the agent's other state (the journal of tracked containers)
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                // A write interrupted before its rename: never a complete report.
                let _ = fs::remove_file(&path);
                continue;
            }
            if name.starts_with('.') {
                // Hidden files are the outputs' state (the OTLP exporter's cursor), not reports.
                continue;
            }
            let Some(id) = name.strip_suffix(REPORT_SUFFIX).filter(|id| valid_id(id)) else {
                warn!(path = %path.display(), "foreign file in data dir skipped");
                skipped += 1;
                continue;
            };
            match read_report(&path) {
                Ok((report, bytes)) if report.id == id => {
                    index.add(report.summary(), bytes + artifact_bytes(&report))
                }
                Ok(_) => {
                    warn!(path = %path.display(), "report id does not match its file name; skipped");
                    skipped += 1;
                }
                Err(e) => {
                    warn!(error = %e, "unreadable report skipped");
                    skipped += 1;
                }
            }
        }
        info!(dir = %dir.display(), reports = index.by_id.len(), bytes = index.bytes, skipped, "report store loaded");
        *store.index.lock().unwrap_or_else(|p| p.into_inner()) = index;
        match probe(dir) {
            Ok(()) => {}
            Err(e) if e.fault().is_some_and(WriteFault::is_transient) => {
                store.failed(&e);
            }
            Err(e) => return Err(e),
        }
        // The limits may have shrunk since the last run.
        store.enforce_retention();
        Ok((store, skipped))
    }

    /// Bounds the retry queue to `bytes` of report JSON (default [`DEFAULT_QUEUE_BYTES`]); 0
    /// drops every report whose write fails.
    pub fn with_retry_queue(self, bytes: u64) -> Store {
        self.pending().set_limit(bytes);
        self
    }

    /// Health and counts of the writes: failing or not, what is queued, what was lost.
    pub fn status(&self) -> StoreStatus {
        self.pending().status()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, PendingQueue> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{REPORT_SUFFIX}"))
    }

    /// Whether any stored or queued report is of this container.
    pub fn has_container(&self, container_id: &str) -> bool {
        self.pending().has_container(container_id)
            || self.lock().by_container.contains_key(container_id)
    }

    /// Stored or queued.
    pub fn contains(&self, id: &str) -> bool {
        // The queue first: a retry indexes a report before it leaves the queue.
        self.pending().contains(id) || self.lock().by_id.contains_key(id)
    }

    /// (reports, bytes) currently stored.
    pub fn stats(&self) -> (usize, u64) {
        let idx = self.lock();
        (idx.by_id.len(), idx.bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        // A panic while holding the lock cannot leave the index half-updated in a way that matters
        // more than losing the agent: keep serving.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every report stored from now on, as its summary. A subscriber slower than the last
    /// 256 reports gets `Lagged` and finds the rest in the index.
    pub fn subscribe(&self) -> broadcast::Receiver<CrashSummary> {
        self.stored.subscribe()
    }

    /// Writes a report's post-mortem files (`artifacts/<id>/<name>.gz`), then the report
    /// ([`Store::insert`]). Files that cannot be written are left out (the report still lists
    /// them; the API answers 404 for them); they count toward retention with the report.
    pub fn insert_with_artifacts(
        &self,
        report: &CrashReport,
        artifacts: &[crate::report::artifacts::ArtifactFile],
    ) -> Result<Inserted, StoreError> {
        if !artifacts.is_empty() && valid_id(&report.id) && !self.contains(&report.id) {
            let dir = self.artifact_dir(&report.id);
            let written = fs::create_dir_all(&dir)
                .map_err(|source| StoreError::Write {
                    path: dir.clone(),
                    source,
                })
                .and_then(|()| {
                    artifacts.iter().try_for_each(|a| {
                        write_atomic(
                            &dir,
                            &dir.join(format!("{}{ARTIFACT_SUFFIX}", a.name)),
                            &a.gzip,
                        )
                    })
                });
            if let Err(e) = written {
                warn!(id = %report.id, error = %e, "artifacts of a report not written");
            }
        }
        self.insert(report)
    }

    fn artifact_dir(&self, id: &str) -> PathBuf {
        self.dir.join(ARTIFACT_DIR).join(id)
    }

    /// A stored post-mortem file of a report: its gzip bytes, `None` when the report does not
    /// list it or it is not on disk.
    pub fn artifact(&self, id: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(report) = self.get(id)? else {
            return Ok(None);
        };
        let listed = report
            .artifacts
            .iter()
            .flat_map(|a| &a.files)
            .any(|f| f.name == name);
        if !listed {
            return Ok(None);
        }
        // The name is one the agent made (a safe path segment) and is listed in the report.
        let path = self
            .artifact_dir(id)
            .join(format!("{name}{ARTIFACT_SUFFIX}"));
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read { path, source }),
        }
    }

    /// Durably writes a report, then applies retention. When the write fails, or reports are
    /// already queued (they go first), the report is queued: `Ok(Inserted::Queued)`; when the
    /// queue is full too, it is dropped: `Err(StoreError::QueueFull)`.
    pub fn insert(&self, report: &CrashReport) -> Result<Inserted, StoreError> {
        if !valid_id(&report.id) {
            return Err(StoreError::BadId(report.id.clone()));
        }
        if self.contains(&report.id) {
            return Ok(Inserted::Duplicate);
        }
        let json = serde_json::to_vec_pretty(report).expect("a report always serializes");
        {
            let mut pending = self.pending();
            if !pending.is_empty() {
                return self.enqueue(&mut pending, report, json);
            }
        }
        let path = self.path_of(&report.id);
        if let Err(e) = write_atomic(&self.dir, &path, &json) {
            // Under one lock with the push: a retry draining the queue in between would end
            // the episode and leave this report queued with nobody retrying it.
            let mut pending = self.pending();
            self.failed_locked(&mut pending, &e);
            return self.enqueue(&mut pending, report, json);
        }
        {
            let mut idx = self.lock();
            if idx.by_id.contains_key(&report.id) {
                return Ok(Inserted::Duplicate);
            }
            idx.add(report.summary(), json.len() as u64 + artifact_bytes(report));
        }
        // A failure seen at open, with nothing queued, ends with the first write that works.
        let recovered = self.pending().succeeded();
        if let Some(r) = recovered {
            self.log_recovered(&r);
        }
        // Nobody listening is fine: the feed is best effort, the files are the record.
        let _ = self.stored.send(report.summary());
        let evicted = self.enforce_retention();
        Ok(Inserted::Stored { evicted })
    }

    fn enqueue(
        &self,
        pending: &mut PendingQueue,
        report: &CrashReport,
        json: Vec<u8>,
    ) -> Result<Inserted, StoreError> {
        let id = report.id.as_str();
        match pending.push(id, &report.container.id, json) {
            (Pushed::Queued, _) => Ok(Inserted::Queued),
            (Pushed::Duplicate, _) => Ok(Inserted::Duplicate),
            (Pushed::Full, first) => {
                if first {
                    warn!(
                        dir = %self.dir.display(),
                        queue_limit_bytes = pending.limit(),
                        "report retry queue full: reports are dropped until the data dir takes writes again"
                    );
                }
                Err(StoreError::QueueFull {
                    limit: pending.limit(),
                })
            }
        }
    }

    fn failed(&self, e: &StoreError) {
        let mut pending = self.pending();
        self.failed_locked(&mut pending, e);
    }

    /// Counts a failed write; the first of an episode is logged, the others only counted.
    fn failed_locked(&self, pending: &mut PendingQueue, e: &StoreError) {
        let fault = e.fault().unwrap_or(WriteFault::Other);
        if pending.failed(fault, e.to_string()) {
            warn!(
                dir = %self.dir.display(),
                reason = fault.label(),
                error = %e,
                queue_limit_bytes = pending.limit(),
                "report store failing: reports are held in memory and retried until the data dir takes writes again"
            );
        }
    }

    fn log_recovered(&self, r: &pending::Recovered) {
        info!(
            dir = %self.dir.display(),
            reason = r.reason,
            written = r.written,
            dropped = r.dropped,
            failing_secs = r.lasted.as_secs_f64(),
            "report store writable again: queued reports written"
        );
    }

    /// Writes queued reports, oldest first, until one fails or none is left; each written one
    /// is indexed and announced like any stored report. With nothing queued while failing (a
    /// fault seen at open), probes the dir instead. Blocking I/O.
    pub fn retry_pending(&self) -> Retried {
        let _one = self.retrying.lock().unwrap_or_else(|p| p.into_inner());
        let mut written = Vec::new();
        loop {
            let front = self.pending().front();
            let Some((id, json)) = front else {
                if self.pending().is_failing() {
                    match probe(&self.dir) {
                        Ok(()) => {
                            let recovered = self.pending().succeeded();
                            if let Some(r) = recovered {
                                self.log_recovered(&r);
                            }
                        }
                        Err(e) => self.failed(&e),
                    }
                }
                break;
            };
            if let Err(e) = write_atomic(&self.dir, &self.path_of(&id), &json) {
                self.failed(&e);
                break;
            }
            let report = match serde_json::from_slice::<CrashReport>(&json) {
                Ok(r) => r,
                Err(e) => {
                    // The store serialized it: cannot happen short of memory corruption.
                    warn!(id, error = %e, "queued report does not parse; written, not indexed");
                    self.pending().written(&id);
                    continue;
                }
            };
            self.lock().add(
                report.summary(),
                json.len() as u64 + artifact_bytes(&report),
            );
            let recovered = {
                let mut pending = self.pending();
                pending.written(&id);
                pending.succeeded()
            };
            if let Some(r) = recovered {
                self.log_recovered(&r);
            }
            let _ = self.stored.send(report.summary());
            let evicted = self.enforce_retention();
            written.push((report, evicted));
        }
        Retried {
            written,
            remaining: self.pending().len(),
        }
    }

    fn enforce_retention(&self) -> usize {
        let victims: Vec<String> = {
            let mut idx = self.lock();
            let mut victims = Vec::new();
            while idx.by_id.len() > self.retention.max_reports
                || (idx.bytes > self.retention.max_bytes && idx.by_id.len() > 1)
            {
                let Some((key, entry)) = idx.by_time.pop_first() else {
                    break;
                };
                idx.by_id.remove(&key.1);
                idx.forget_container(&entry.summary.container_id);
                idx.bytes -= entry.bytes;
                victims.push(key.1);
            }
            victims
        };
        for id in &victims {
            if let Err(e) = fs::remove_file(self.path_of(id)) {
                warn!(id, error = %e, "could not delete an expired report");
            }
            let artifacts = self.artifact_dir(id);
            if let Err(e) = fs::remove_dir_all(&artifacts) {
                if e.kind() != io::ErrorKind::NotFound {
                    warn!(id, error = %e, "could not delete an expired report's artifacts");
                }
            }
        }
        victims.len()
    }

    /// The full report, read from disk, or from the retry queue while it waits there.
    pub fn get(&self, id: &str) -> Result<Option<CrashReport>, StoreError> {
        if !valid_id(id) {
            return Ok(None);
        }
        // The queue first: a retry indexes a report before it leaves the queue.
        let queued = self.pending().json_of(id);
        if let Some(json) = queued {
            return serde_json::from_slice(&json)
                .map(Some)
                .map_err(|source| StoreError::Corrupt {
                    path: self.path_of(id),
                    source,
                });
        }
        if !self.lock().by_id.contains_key(id) {
            return Ok(None);
        }
        match read_report(&self.path_of(id)) {
            Ok((report, _)) => Ok(Some(report)),
            // Deleted by retention between the check and the read.
            Err(StoreError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A page of summaries, newest first.
    pub fn list(&self, q: &Query) -> Page {
        let idx = self.lock();
        let mut items = Vec::with_capacity(q.limit.min(idx.by_id.len()));
        let upper = q.cursor.as_ref().map(|c| (c.exited_at, c.id.clone()));
        let range = match &upper {
            Some(u) => idx.by_time.range(..u.clone()),
            None => idx.by_time.range(..),
        };
        let mut next_cursor = None;
        for ((exited_at, _), entry) in range.rev() {
            if q.since.is_some_and(|s| *exited_at < s) {
                break;
            }
            if !q.matches(&entry.summary) {
                continue;
            }
            if items.len() == q.limit {
                // There is at least one more: the cursor points after the last item returned.
                let last: &CrashSummary = items.last().expect("limit >= 1");
                next_cursor = Some(Cursor {
                    exited_at: last.exited_at,
                    id: last.id.clone(),
                });
                break;
            }
            items.push(CrashSummary::clone(&entry.summary));
        }
        Page { items, next_cursor }
    }
}

impl Store {
    /// Crash-loop groups over every stored report, most recently seen first.
    pub fn groups(&self, q: &GroupQuery) -> Vec<CrashGroup> {
        // Grouping 5000 summaries takes ~4 ms; inserts must not wait behind it.
        let summaries: Vec<Arc<CrashSummary>> = {
            let idx = self.lock();
            idx.by_time.values().map(|e| e.summary.clone()).collect()
        };
        crate::groups::group(summaries.iter().map(|s| s.as_ref()))
            .into_iter()
            .filter(|g| q.matches(g))
            .take(q.limit.unwrap_or(query::DEFAULT_LIMIT))
            .collect()
    }

    pub fn group(&self, id: &str) -> Option<CrashGroup> {
        if !valid_id(id) {
            return None;
        }
        let idx = self.lock();
        let members = idx
            .by_time
            .values()
            .map(|e| e.summary.as_ref())
            .filter(|s| s.group_id.as_deref() == Some(id))
            .map(crate::model::summary_workload)
            .next()?;
        // The group's flags depend on the workload's other crashes: group them all.
        crate::groups::group(
            idx.by_time
                .values()
                .map(|e| e.summary.as_ref())
                .filter(|s| crate::model::summary_workload(s) == members),
        )
        .into_iter()
        .find(|g| g.id == id)
    }
}

impl Index {
    fn forget_container(&mut self, container_id: &str) {
        if let Some(n) = self.by_container.get_mut(container_id) {
            *n -= 1;
            if *n == 0 {
                self.by_container.remove(container_id);
            }
        }
    }

    fn add(&mut self, summary: CrashSummary, bytes: u64) {
        *self
            .by_container
            .entry(summary.container_id.clone())
            .or_default() += 1;
        let key = (summary.exited_at, summary.id.clone());
        self.by_id.insert(summary.id.clone(), summary.exited_at);
        self.bytes += bytes;
        self.by_time.insert(
            key,
            Entry {
                summary: Arc::new(summary),
                bytes,
            },
        );
    }
}

/// Bytes a report's post-mortem files take on disk.
fn artifact_bytes(report: &CrashReport) -> u64 {
    report
        .artifacts
        .iter()
        .flat_map(|a| &a.files)
        .map(|f| f.stored_bytes)
        .sum()
}

fn read_report(path: &Path) -> Result<(CrashReport, u64), StoreError> {
    let bytes = fs::read(path).map_err(|source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // Served as written: the report was finished when it was built, and the store never
    // rewrites what the agent said at the time.
    let report: CrashReport =
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
            path: path.to_path_buf(),
            source,
        })?;
    Ok((report, bytes.len() as u64))
}

fn write_atomic(dir: &Path, path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{TMP_PREFIX}{name}-{}-{seq}", std::process::id()));
    let written = (|| {
        let werr = |source| StoreError::Write {
            path: tmp.clone(),
            source,
        };
        let mut f = File::create(&tmp).map_err(werr)?;
        f.write_all(data).map_err(werr)?;
        f.sync_all().map_err(werr)?;
        drop(f);
        fs::rename(&tmp, path).map_err(|source| StoreError::Write {
            path: path.to_path_buf(),
            source,
        })
    })();
    if written.is_err() {
        // Whatever failed, no half-written file stays behind to fill the disk further.
        let _ = fs::remove_file(&tmp);
        return written;
    }
    // The rename is durable only once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

/// Does the dir take a write? Creates, fsyncs and removes a probe file (named like a temporary
/// file, so a probe interrupted by `kill -9` is removed at the next open).
fn probe(dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(format!("{TMP_PREFIX}probe-{}", std::process::id()));
    let result = File::create(&path).and_then(|mut f| {
        f.write_all(b"coroner write probe\n")?;
        f.sync_all()
    });
    let removed = fs::remove_file(&path);
    result
        .and(removed)
        .map_err(|source| StoreError::NotWritable {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests;
