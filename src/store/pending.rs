//! Reports that could not be written yet: a bounded queue in memory, oldest first, and the
//! failure episode it belongs to (from the first failed write until the queue drains).
//!
//! Owns no I/O: [`super::Store`] writes, this remembers what is left to write and why. The
//! bound is in bytes of the reports' JSON, which is what the queue holds, so it bounds the
//! agent's memory, whatever the reports' size.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::WriteFault;

/// The default bound of the retry queue (`--store-retry-queue-bytes`).
pub const DEFAULT_QUEUE_BYTES: u64 = 32 << 20;

/// One report waiting to be written, as the bytes that will go to disk.
#[derive(Debug)]
pub(super) struct Queued {
    pub id: String,
    pub container_id: String,
    pub json: Vec<u8>,
}

/// Why the store is failing right now: the last write error of the episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    /// Stable label of the fault (`no_space`, `read_only`, ...).
    pub reason: &'static str,
    /// The last error, with its path and errno.
    pub error: String,
    pub since: DateTime<Utc>,
}

/// The store's health and counts, as `/readyz` and the metrics show them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStatus {
    /// `Some` from the first failed write until every queued report is written.
    pub failing: Option<Failing>,
    /// Reports in memory, not yet on disk.
    pub pending: usize,
    pub pending_bytes: u64,
    /// Failed write attempts since start, by fault (each retry of a report counts).
    pub write_failures: Vec<(&'static str, u64)>,
    /// Reports lost because the queue was full when their write failed.
    pub dropped_queue_full: u64,
}

#[derive(Debug)]
pub(super) struct PendingQueue {
    queue: VecDeque<Queued>,
    ids: HashSet<String>,
    /// Queued reports per container id.
    containers: HashMap<String, usize>,
    bytes: u64,
    limit: u64,
    failing: Option<Episode>,
    write_failures: [u64; WriteFault::ALL.len()],
    dropped_queue_full: u64,
}

#[derive(Debug)]
struct Episode {
    failing: Failing,
    started: Instant,
    written: usize,
    dropped: u64,
}

/// What `push` did with a report.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Pushed {
    Queued,
    Duplicate,
    /// The queue is full: the report is dropped.
    Full,
}

/// How a failure episode ended, for its one closing log line.
#[derive(Debug)]
pub(super) struct Recovered {
    pub written: usize,
    pub dropped: u64,
    pub lasted: Duration,
    pub reason: &'static str,
}

impl PendingQueue {
    pub fn new(limit: u64) -> PendingQueue {
        PendingQueue {
            queue: VecDeque::new(),
            ids: HashSet::new(),
            containers: HashMap::new(),
            bytes: 0,
            limit,
            failing: None,
            write_failures: [0; WriteFault::ALL.len()],
            dropped_queue_full: 0,
        }
    }

    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn is_failing(&self) -> bool {
        self.failing.is_some()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Whether a queued report is of this container.
    pub fn has_container(&self, container_id: &str) -> bool {
        self.containers.contains_key(container_id)
    }

    pub fn json_of(&self, id: &str) -> Option<Vec<u8>> {
        self.queue
            .iter()
            .find(|q| q.id == id)
            .map(|q| q.json.clone())
    }

    /// Records a failed write; true when it opens a failure episode (the caller logs it once).
    pub fn failed(&mut self, fault: WriteFault, error: String) -> bool {
        self.write_failures[fault as usize] += 1;
        match &mut self.failing {
            Some(e) => {
                e.failing.reason = fault.label();
                e.failing.error = error;
                false
            }
            None => {
                self.failing = Some(Episode {
                    failing: Failing {
                        reason: fault.label(),
                        error,
                        since: Utc::now(),
                    },
                    started: Instant::now(),
                    written: 0,
                    dropped: 0,
                });
                true
            }
        }
    }

    /// Queues a report at the back. On `Full`, the report is counted as dropped; the second
    /// value is true for the episode's first drop (the caller logs it once).
    pub fn push(&mut self, id: &str, container_id: &str, json: Vec<u8>) -> (Pushed, bool) {
        if self.ids.contains(id) {
            return (Pushed::Duplicate, false);
        }
        if self.bytes + json.len() as u64 > self.limit {
            self.dropped_queue_full += 1;
            let first = match &mut self.failing {
                Some(e) => {
                    e.dropped += 1;
                    e.dropped == 1
                }
                None => true,
            };
            return (Pushed::Full, first);
        }
        self.bytes += json.len() as u64;
        self.ids.insert(id.to_string());
        *self.containers.entry(container_id.to_string()).or_default() += 1;
        self.queue.push_back(Queued {
            id: id.to_string(),
            container_id: container_id.to_string(),
            json,
        });
        (Pushed::Queued, false)
    }

    /// The oldest queued report (a copy: it stays queued until `written` says it is on disk).
    pub fn front(&self) -> Option<(String, Vec<u8>)> {
        self.queue.front().map(|q| (q.id.clone(), q.json.clone()))
    }

    /// The oldest report is on disk: it leaves the queue.
    pub fn written(&mut self, id: &str) {
        if self.queue.front().is_some_and(|q| q.id == id) {
            if let Some(q) = self.queue.pop_front() {
                self.bytes -= q.json.len() as u64;
                self.ids.remove(&q.id);
                if let Some(n) = self.containers.get_mut(&q.container_id) {
                    *n -= 1;
                    if *n == 0 {
                        self.containers.remove(&q.container_id);
                    }
                }
                if let Some(e) = &mut self.failing {
                    e.written += 1;
                }
            }
        }
    }

    /// A write succeeded: when nothing is left queued, the episode is over.
    pub fn succeeded(&mut self) -> Option<Recovered> {
        if !self.queue.is_empty() {
            return None;
        }
        self.failing.take().map(|e| Recovered {
            written: e.written,
            dropped: e.dropped,
            lasted: e.started.elapsed(),
            reason: e.failing.reason,
        })
    }

    pub fn status(&self) -> StoreStatus {
        StoreStatus {
            failing: self.failing.as_ref().map(|e| e.failing.clone()),
            pending: self.queue.len(),
            pending_bytes: self.bytes,
            write_failures: WriteFault::ALL
                .iter()
                .map(|f| (f.label(), self.write_failures[*f as usize]))
                .collect(),
            dropped_queue_full: self.dropped_queue_full,
        }
    }
}
