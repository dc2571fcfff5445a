//! What the container used while it lived: its memory, CPU time and process count sampled every
//! 100 ms for its first seconds, then every second, the last minutes kept. Plain data; the
//! sampler is `crate::agent` (`sampler.rs`), the reading `crate::cgroup::CgroupFs::sample`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The samples of one container's life, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsageHistory {
    /// When the first sample was taken; each sample's `t_ms` counts from here.
    pub started_at: DateTime<Utc>,
    /// Interval of the first samples (`fine_for_ms` of them, from the start), in ms.
    pub fine_interval_ms: u32,
    /// How long the fine interval lasts after the first sample, in ms.
    pub fine_for_ms: u32,
    /// Interval of the samples after that, in ms.
    pub coarse_interval_ms: u32,
    /// Coarse samples dropped from the middle because only the last ones are kept: the history
    /// has a hole after the fine samples when this is not 0.
    #[serde(default)]
    pub dropped: u32,
    pub samples: Vec<UsageSample>,
}

/// One reading of the container's cgroup.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct UsageSample {
    /// ms after `started_at`.
    pub t_ms: u64,
    /// Memory charged to the cgroup (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// CPU time used since the start, in µs (v1 `cpuacct.usage`, v2 `cpu.stat` `usage_usec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_usec: Option<u64>,
    /// Tasks in the cgroup (`pids.current`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
}
