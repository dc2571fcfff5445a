//! Durable report storage: one JSON file per report in a data directory.
//!
//! Writes are atomic (temporary file, fsync, rename, fsync of the directory), so a report is
//! either whole on disk or absent, even across `kill -9` or power loss. An in-memory index ordered
//! by exit time serves listings; full reports are read from disk on demand. Retention deletes the
//! oldest reports beyond a count and a byte budget. Files that are not reports are logged and
//! skipped at load, never fatal. Blocking I/O: call from `spawn_blocking`.

mod query;

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

const REPORT_SUFFIX: &str = ".json";
const TMP_PREFIX: &str = ".tmp-";
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
}

impl StoreError {
    pub fn label(&self) -> &'static str {
        match self {
            StoreError::CreateDir { .. } | StoreError::Write { .. } => "store_write",
            StoreError::Read { .. } => "store_read",
            StoreError::Corrupt { .. } => "store_corrupt",
            StoreError::BadId(_) => "store_bad_id",
        }
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
    /// A report with this id exists already: the same exit, seen twice.
    Duplicate,
}

pub struct Store {
    dir: PathBuf,
    retention: Retention,
    index: Mutex<Index>,
    /// "Report stored": the summary of every report as it is stored (the live feed's source).
    stored: broadcast::Sender<CrashSummary>,
}

/// Ids are hex digests; anything else is refused before it touches a path.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Store {
    /// Opens (creating) the data dir and loads the index. Returns the store and the number of
    /// files that were skipped as corrupt or foreign.
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
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                // A write interrupted before its rename: never a complete report.
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(id) = name.strip_suffix(REPORT_SUFFIX).filter(|id| valid_id(id)) else {
                warn!(path = %path.display(), "foreign file in data dir skipped");
                skipped += 1;
                continue;
            };
            match read_report(&path) {
                Ok((report, bytes)) if report.id == id => index.add(report.summary(), bytes),
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
        // The limits may have shrunk since the last run.
        store.enforce_retention();
        Ok((store, skipped))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{REPORT_SUFFIX}"))
    }

    /// Whether any stored report is of this container.
    pub fn has_container(&self, container_id: &str) -> bool {
        self.lock().by_container.contains_key(container_id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.lock().by_id.contains_key(id)
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

    /// Durably writes a report, then applies retention.
    /// Every report stored from now on, as its summary. A subscriber slower than the last
    /// 256 reports gets `Lagged` and finds the rest in the index.
    pub fn subscribe(&self) -> broadcast::Receiver<CrashSummary> {
        self.stored.subscribe()
    }

    pub fn insert(&self, report: &CrashReport) -> Result<Inserted, StoreError> {
        if !valid_id(&report.id) {
            return Err(StoreError::BadId(report.id.clone()));
        }
        if self.contains(&report.id) {
            return Ok(Inserted::Duplicate);
        }
        let json = serde_json::to_vec_pretty(report).expect("a report always serializes");
        let path = self.path_of(&report.id);
        write_atomic(&self.dir, &path, &json)?;
        {
            let mut idx = self.lock();
            if idx.by_id.contains_key(&report.id) {
                return Ok(Inserted::Duplicate);
            }
            idx.add(report.summary(), json.len() as u64);
        }
        // Nobody listening is fine: the feed is best effort, the files are the record.
        let _ = self.stored.send(report.summary());
        let evicted = self.enforce_retention();
        Ok(Inserted::Stored { evicted })
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
        }
        victims.len()
    }

    /// The full report, read from disk.
    pub fn get(&self, id: &str) -> Result<Option<CrashReport>, StoreError> {
        if !valid_id(id) || !self.contains(id) {
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
    let werr = |source| StoreError::Write {
        path: tmp.clone(),
        source,
    };
    let mut f = File::create(&tmp).map_err(werr)?;
    f.write_all(data).map_err(werr)?;
    f.sync_all().map_err(werr)?;
    drop(f);
    fs::rename(&tmp, path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        StoreError::Write {
            path: path.to_path_buf(),
            source,
        }
    })?;
    // The rename is durable only once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests;
