//! Memory history before death: one thread samples every live container's cgroup (memory, CPU
//! time, tasks) every 100 ms for its first 5 s, then every second, and keeps the first 5 s and
//! the last 5 minutes, so a container that dies in 300 ms has 3 samples and one that leaked for
//! an hour has its last minutes. The exit takes the container's history into its report.
//!
//! Off the event loop and off the async workers: a plain thread reads the files (three per
//! container, `CgroupFs::sample`) with the lock released; the loop only adds, takes and removes
//! entries (a map operation under a mutex the thread holds for microseconds).
//!
//! Bounded: [`FINE_KEPT`] + [`COARSE_KEPT`] samples a container (about 11 KiB), [`MAX_SERIES`]
//! containers (a container beyond that is not sampled, and says so in its report by having no
//! history).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::debug;

use super::registry::Key;
use crate::cgroup::CgroupFs;
use crate::model::{UsageHistory, UsageSample};

pub const FINE_INTERVAL: Duration = Duration::from_millis(100);
pub const FINE_FOR: Duration = Duration::from_secs(5);
pub const COARSE_INTERVAL: Duration = Duration::from_secs(1);
/// Samples of the first [`FINE_FOR`].
pub const FINE_KEPT: usize = (FINE_FOR.as_millis() / FINE_INTERVAL.as_millis()) as usize;
/// The last 5 minutes at [`COARSE_INTERVAL`].
pub const COARSE_KEPT: usize = 300;
/// Containers sampled at once.
pub const MAX_SERIES: usize = 4096;
/// A container whose cgroup has been gone this long without its exit taking the history (a
/// missed exit, a removed sandbox) is dropped.
const GONE_FOR: Duration = Duration::from_secs(60);

struct Series {
    path: String,
    started: Instant,
    started_at: DateTime<Utc>,
    fine: Vec<UsageSample>,
    coarse: VecDeque<UsageSample>,
    dropped: u32,
    next: Instant,
    gone_since: Option<Instant>,
}

impl Series {
    fn new(path: String, now: Instant) -> Series {
        Series {
            path,
            started: now,
            started_at: Utc::now(),
            fine: Vec::new(),
            coarse: VecDeque::new(),
            dropped: 0,
            next: now,
            gone_since: None,
        }
    }

    fn push(&mut self, mut sample: UsageSample, at: Instant) {
        let age = at.saturating_duration_since(self.started);
        sample.t_ms = age.as_millis() as u64;
        if age < FINE_FOR && self.fine.len() < FINE_KEPT {
            self.fine.push(sample);
        } else {
            if self.coarse.len() == COARSE_KEPT {
                self.coarse.pop_front();
                self.dropped += 1;
            }
            self.coarse.push_back(sample);
        }
    }

    /// The next sample's time: on the 100 ms grid while young, then every second; never in
    /// the past (a slow round skips samples rather than bunching them).
    fn schedule(&mut self, now: Instant) {
        let interval = if now.saturating_duration_since(self.started) < FINE_FOR {
            FINE_INTERVAL
        } else {
            COARSE_INTERVAL
        };
        self.next += interval;
        if self.next <= now {
            self.next = now + interval;
        }
    }

    fn history(&self) -> UsageHistory {
        UsageHistory {
            started_at: self.started_at,
            fine_interval_ms: FINE_INTERVAL.as_millis() as u32,
            fine_for_ms: FINE_FOR.as_millis() as u32,
            coarse_interval_ms: COARSE_INTERVAL.as_millis() as u32,
            dropped: self.dropped,
            samples: self
                .fine
                .iter()
                .chain(self.coarse.iter())
                .copied()
                .collect(),
        }
    }
}

struct Inner {
    cgroups: CgroupFs,
    series: Mutex<HashMap<Key, Series>>,
}

/// The history of every live container. Dropping it stops the thread. Its cost is the thread
/// `coroner-sampler`'s CPU time (`/proc/<pid>/task/<tid>/stat`; `tests/memory_history.rs`
/// measures it with 50 containers).
pub struct Sampler {
    inner: Arc<Inner>,
}

impl Sampler {
    /// Starts the sampling thread.
    pub fn start(cgroups: CgroupFs) -> std::io::Result<Sampler> {
        let inner = Arc::new(Inner {
            cgroups,
            series: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("coroner-sampler".into())
            .spawn(move || run(weak))?;
        Ok(Sampler { inner })
    }

    /// Starts sampling a container's cgroup (no-op when it is sampled already).
    pub fn add(&self, key: Key, path: String) {
        let mut series = self.lock();
        if series.contains_key(&key) {
            return;
        }
        if series.len() >= MAX_SERIES {
            debug!(container = %key.id, "sampler full: container not sampled");
            return;
        }
        series.insert(key, Series::new(path, Instant::now()));
    }

    /// The container's history, and the end of its sampling.
    pub fn take(&self, key: &Key) -> Option<UsageHistory> {
        self.lock().remove(key).map(|s| s.history())
    }

    pub fn remove(&self, key: &Key) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Series>> {
        self.inner.series.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn run(weak: Weak<Inner>) {
    let mut tick = Instant::now();
    loop {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        inner.round();
        drop(inner);
        tick += FINE_INTERVAL;
        let now = Instant::now();
        if tick <= now {
            tick = now + FINE_INTERVAL;
        }
        std::thread::sleep(tick - now);
    }
}

impl Inner {
    fn round(&self) {
        let started = Instant::now();
        let due: Vec<(Key, String)> = {
            let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
            series
                .iter()
                .filter(|(_, s)| s.next <= started)
                .map(|(k, s)| (k.clone(), s.path.clone()))
                .collect()
        };
        if due.is_empty() {
            return;
        }
        // The files are read with the lock released: an exit taking its history never waits
        // on a round.
        let read: Vec<_> = due
            .into_iter()
            .map(|(key, path)| {
                let sample = self.cgroups.sample(&path);
                (key, sample, Instant::now())
            })
            .collect();
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        for (key, sample, at) in read {
            let Some(s) = series.get_mut(&key) else {
                continue; // taken by its exit meanwhile
            };
            match sample {
                Ok(sample) => {
                    s.gone_since = None;
                    s.push(sample, at);
                }
                Err(e) if e.is_gone() => {
                    let since = *s.gone_since.get_or_insert(at);
                    if at.saturating_duration_since(since) > GONE_FOR {
                        series.remove(&key);
                        continue;
                    }
                }
                Err(_) => {}
            }
            s.schedule(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(memory: u64) -> UsageSample {
        UsageSample {
            memory_bytes: Some(memory),
            ..Default::default()
        }
    }

    #[test]
    fn a_long_life_keeps_its_first_seconds_and_its_last_minutes() {
        let t0 = Instant::now();
        let mut s = Series::new("/x".into(), t0);
        // 5 s at 100 ms, then an hour at 1 s.
        for i in 0..50u64 {
            s.push(sample(i), t0 + FINE_INTERVAL * i as u32);
        }
        for i in 0..3600u64 {
            s.push(sample(1000 + i), t0 + FINE_FOR + COARSE_INTERVAL * i as u32);
        }
        let h = s.history();
        assert_eq!(h.samples.len(), FINE_KEPT + COARSE_KEPT);
        assert_eq!(h.dropped as usize, 3600 - COARSE_KEPT);
        assert_eq!(h.samples[0].memory_bytes, Some(0));
        assert_eq!(h.samples[49].t_ms, 4900);
        assert_eq!(h.samples.last().unwrap().memory_bytes, Some(4599));
        assert!(h.samples.windows(2).all(|w| w[0].t_ms < w[1].t_ms));
    }

    #[test]
    fn sampling_slows_down_after_the_first_seconds() {
        let t0 = Instant::now();
        let mut s = Series::new("/x".into(), t0);
        s.schedule(t0);
        assert_eq!(s.next - t0, FINE_INTERVAL);
        let late = t0 + FINE_FOR + Duration::from_millis(30);
        s.schedule(late);
        assert_eq!(s.next, late + COARSE_INTERVAL);
    }

    #[test]
    fn the_sampler_reads_a_real_cgroup_tree_and_hands_the_history_to_the_exit() {
        let fs = CgroupFs::v1_at(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/cgroup/v1/limited"),
        );
        let sampler = Sampler::start(fs).unwrap();
        let key = Key {
            namespace: "k8s.io".into(),
            id: "abc".into(),
        };
        sampler.add(key.clone(), "/coroner-fixture".into());
        std::thread::sleep(Duration::from_millis(450));
        let h = sampler.take(&key).unwrap();
        assert!(h.samples.len() >= 2, "{h:?}");
        assert!(h.samples.iter().all(|s| s.memory_bytes.is_some()));
        assert!(sampler.take(&key).is_none());
    }
}
