//! The process events an agent consumed from the ring buffer, kept in the kernel until the
//! container's report is written, so that the next agent process finds them.

use std::collections::{HashMap, HashSet};
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use super::load_error::{map_err, RecorderError};
use super::raw::RawEvent;
use super::wire::{self, types};

/// Saved process events kept per cgroup, as the agent's own store keeps in memory.
const SAVED_PER_CGROUP: usize = 4096;

/// The process events this agent consumed, kept in the kernel's `saved_events` map per cgroup
/// until the cgroup is drained, so that the next agent process finds them.
pub(super) struct SavedEvents {
    map: MapHandle,
    /// Sequence numbers saved per cgroup (to delete them at the drain without a map scan).
    index: Mutex<HashMap<u64, Vec<u64>>>,
    next_seq: AtomicU64,
    /// Events that could not be saved (map full, cgroup over its bound) since load or adoption.
    unsaved: AtomicU64,
}

impl SavedEvents {
    pub(super) fn new(map: MapHandle) -> SavedEvents {
        SavedEvents {
            map,
            index: Mutex::new(HashMap::new()),
            next_seq: AtomicU64::new(1),
            unsaved: AtomicU64::new(0),
        }
    }

    /// Events that could not be saved since load or adoption.
    pub(super) fn unsaved(&self) -> u64 {
        self.unsaved.load(Ordering::Relaxed)
    }

    /// The events saved by earlier agent processes for the `live` cgroups, oldest first; saved
    /// events of any other cgroup are deleted. Later saves continue their numbering.
    pub(super) fn restore(&self, live: &HashSet<u64>) -> Result<Vec<RawEvent>, RecorderError> {
        let mut found: Vec<(u64, u64, RawEvent)> = Vec::new();
        let mut stale = Vec::new();
        let mut buf = vec![0u8; size_of::<types::saved_event>()];
        let keys: Vec<Vec<u8>> = self.map.keys().collect();
        for key in keys {
            let Some(k) = wire::read::<types::saved_event_key>(&key) else {
                continue;
            };
            if !live.contains(&k.cgroup_id) {
                stale.push(key);
                continue;
            }
            let present = self
                .map
                .lookup_into(&key, &mut buf, MapFlags::ANY)
                .map_err(map_err("reading", "saved_events"))?;
            let event = present
                .then(|| wire::read::<types::saved_event>(&buf))
                .flatten()
                .and_then(|e| wire::saved_event_bytes(&e).map(wire::event))
                .and_then(Result::ok);
            match event {
                Some(ev) => found.push((k.seq, k.cgroup_id, ev)),
                None => stale.push(key),
            }
        }
        for key in stale {
            let _ = self.map.delete(&key);
        }
        found.sort_by_key(|(seq, _, _)| *seq);
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let mut max_seq = 0;
        for (seq, cg, _) in &found {
            index.entry(*cg).or_default().push(*seq);
            max_seq = max_seq.max(*seq);
        }
        self.next_seq.store(max_seq + 1, Ordering::Relaxed);
        Ok(found.into_iter().map(|(_, _, ev)| ev).collect())
    }

    /// Saves one ring-buffer record of `cgroup_id`. A failure is counted, never fatal.
    pub(super) fn save(&self, cgroup_id: u64, bytes: &[u8]) {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let seqs = index.entry(cgroup_id).or_default();
        let value = (seqs.len() < SAVED_PER_CGROUP)
            .then(|| wire::saved_event(bytes))
            .flatten();
        let Some(value) = value else {
            self.unsaved.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let key = types::saved_event_key { cgroup_id, seq };
        match self
            .map
            .update(wire::bytes_of(&key), wire::bytes_of(&value), MapFlags::ANY)
        {
            Ok(()) => seqs.push(seq),
            Err(_) => {
                self.unsaved.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Deletes what was saved for `cgroup_id`.
    pub(super) fn forget(&self, cgroup_id: u64) {
        let seqs = self
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&cgroup_id)
            .unwrap_or_default();
        for seq in seqs {
            let key = types::saved_event_key { cgroup_id, seq };
            let _ = self.map.delete(wire::bytes_of(&key));
        }
    }
}
