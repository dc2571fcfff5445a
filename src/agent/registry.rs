//! Live containers the agent tracks between `/tasks/create` and `/tasks/exit`.
//!
//! Owned by the agent's event loop alone (no locks). Slow enrichment (containerd gRPC, cgroup
//! limits) runs in its own task and hands its result back through a `watch` channel, so an exit
//! can use it the moment it is ready without the loop ever waiting on it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::deathwatch::AtDeath;
use crate::report::Enriched;

/// `/tasks/oom` arrives 1 to 75 times for one OOM kill within a few milliseconds; events closer
/// together than this are one OOM episode.
pub const OOM_EPISODE_GAP: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: String,
    pub id: String,
}

pub type EnrichedRx = watch::Receiver<Option<Arc<Enriched>>>;
pub type EnrichedTx = watch::Sender<Option<Arc<Enriched>>>;

/// Counts OOM episodes from a burst of duplicate `/tasks/oom` events.
#[derive(Debug, Clone, Default)]
pub struct OomEpisodes {
    pub count: u32,
    last: Option<Instant>,
}

impl OomEpisodes {
    pub fn note(&mut self, at: Instant) {
        if self
            .last
            .is_none_or(|l| at.saturating_duration_since(l) > OOM_EPISODE_GAP)
        {
            self.count += 1;
        }
        self.last = Some(at);
    }
}

#[derive(Debug)]
pub struct Tracked {
    pub pid: u32,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub oom: OomEpisodes,
    pub enriched: EnrichedRx,
    /// The cgroup from the spec read at create, before the enrichment knows it.
    pub cgroup_path: Option<String>,
    /// The usage read when the init process died, seen by the agent itself.
    pub at_death: Option<AtDeath>,
    /// Post-mortem files read when the init process died.
    pub artifacts: Option<super::artifacts::Grabbed>,
}

impl Tracked {
    pub fn ready(&self) -> Option<Arc<Enriched>> {
        self.enriched.borrow().clone()
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    live: HashMap<Key, Tracked>,
}

impl Registry {
    pub fn insert(&mut self, key: Key, tracked: Tracked) {
        self.live.insert(key, tracked);
    }

    pub fn get_mut(&mut self, key: &Key) -> Option<&mut Tracked> {
        self.live.get_mut(key)
    }

    pub fn get(&self, key: &Key) -> Option<&Tracked> {
        self.live.get(key)
    }

    pub fn remove(&mut self, key: &Key) -> Option<Tracked> {
        self.live.remove(key)
    }

    #[allow(clippy::len_without_is_empty)] // only the gauge of tracked containers needs it
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.live.keys()
    }

    pub fn tracked(&self) -> impl Iterator<Item = &Tracked> {
        self.live.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_oom_events_is_one_episode() {
        let mut oom = OomEpisodes::default();
        let t0 = Instant::now();
        for i in 0..75 {
            oom.note(t0 + Duration::from_micros(i * 80));
        }
        assert_eq!(oom.count, 1);
        oom.note(t0 + Duration::from_secs(2));
        assert_eq!(oom.count, 2);
    }
}
