//! The crash report and its parts: plain serde types with no I/O.
//!
//! These types are the JSON contract of the HTTP API and of the files in the data dir, so field names
//! are stable: later versions add fields (and bump [`SCHEMA_VERSION`] only on a breaking change).

mod artifact;
mod diagnosis;
mod entrypoint;
mod exit;
mod history;
mod image;
mod recorder;
mod workload;

pub use artifact::{Artifact, ArtifactKind, ArtifactsReport, KeyLine, SkippedArtifact};
pub use diagnosis::*;
pub use entrypoint::{EntrypointReport, Executable, ExecutableKind};
pub use exit::{signal_name, ExitStatus};
pub use history::{UsageHistory, UsageSample};
pub use image::{ImageCompared, ImageContent, ImageTagReport, ImageTagStatus};
pub use recorder::*;
pub use workload::{group_id, pod_owner, summary_workload};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the report JSON layout. Bumped only when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything coroner knows about one exit of one container's init process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CrashReport {
    pub schema_version: u32,
    /// Stable id derived from the containerd namespace, container id and exit time ([`report_id`]).
    pub id: String,
    pub outcome: Outcome,
    pub container: ContainerInfo,
    /// Present for containers created by the CRI plugin (Kubernetes pods).
    pub kubernetes: Option<KubernetesInfo>,
    pub lifecycle: Lifecycle,
    pub exit: ExitStatus,
    pub oom: OomInfo,
    pub cgroup: CgroupReport,
    /// True when the exit was found by reconciling containerd's task list (the agent was disconnected
    /// or not running when it happened); figures read at exit time may then be missing.
    pub recovered: bool,
    /// What kubelet's runtime (the CRI plugin) said of the exit, for recovered reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cri: Option<CriStatus>,
    /// What could not be collected, with a stable reason, so a missing figure is explained.
    #[serde(default)]
    pub collection_errors: Vec<CollectionError>,
    /// Identity of the node and agent that wrote the report.
    pub agent: AgentInfo,
    /// What the eBPF flight recorder saw (absent in reports written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorder: Option<RecorderReport>,
    /// The program the container was to run, as its root filesystem had it at create time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<EntrypointReport>,
    /// Memory, CPU and pids sampled while the container lived (`docs/memory-history.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_history: Option<UsageHistory>,
    /// Post-mortem files the runtime wrote into the container, kept beside the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactsReport>,
    /// The image reference looked up again at the exit: does it still name what ran?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<ImageTagReport>,
    /// The probable cause, from the rules in `crate::diagnose` (absent only in reports written
    /// before diagnosis existed; the store fills it in when it loads them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
}

/// `crashed` for a non-zero exit, a signal or an OOM kill; `completed` for exit code 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Crashed,
    Completed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Crashed => "crashed",
            Outcome::Completed => "completed",
        }
    }
}

/// The containerd view of the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContainerInfo {
    /// containerd namespace (`k8s.io` for Kubernetes, `moby` for Docker, ...).
    pub namespace: String,
    pub id: String,
    /// Image reference the container was created from.
    pub image: Option<String>,
    /// Digest of the image manifest the reference resolved to when the container was created.
    pub image_digest: Option<String>,
    /// Image id (config digest) the CRI plugin recorded, as `crictl images` shows it.
    pub image_id: Option<String>,
    pub runtime: Option<String>,
    /// Init process pid (host pid namespace).
    pub pid: u32,
    pub command: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    /// Environment variable names. Values are withheld unless allow-listed (see `env_values`).
    pub env_keys: Vec<String>,
    /// Values of allow-listed environment variables only.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env_values: std::collections::BTreeMap<String, String>,
    /// containerd labels of the container (CRI labels included).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Kubernetes identity, from the CRI plugin's labels and its metadata extension.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KubernetesInfo {
    pub pod: String,
    pub namespace: String,
    pub pod_uid: Option<String>,
    pub container: String,
    /// Restart attempt as kubelet counts it (0 for the first run).
    pub attempt: Option<u32>,
    pub log_path: Option<String>,
    pub sandbox_id: Option<String>,
}

/// The CRI plugin's word on an exit: what `kubectl describe` shows as the last state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CriStatus {
    /// `OOMKilled`, `Error`, `Completed`, `StartError`, ...
    pub reason: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Lifecycle {
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub exited_at: DateTime<Utc>,
    /// From start (or create, when start was not seen) to exit.
    pub runtime_ms: Option<u64>,
    /// When the agent wrote the report.
    pub reported_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OomInfo {
    /// The kernel OOM killer acted in the container's cgroup (events or the cgroup's kill counter).
    pub killed: bool,
    /// `/tasks/oom` events containerd sent for this container, after de-duplication.
    pub events: u32,
    /// `oom_kill` counter of the container's memory cgroup at exit, when readable.
    pub kills: Option<u64>,
}

/// cgroup version a host runs containers under, as seen by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    V1,
    V2,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CgroupReport {
    pub version: Option<CgroupVersion>,
    /// The container's cgroup path from the OCI spec, resolved to a path below the cgroup root.
    pub path: Option<String>,
    /// Limits as snapshotted when the task was created or started.
    pub limits: Option<CgroupLimits>,
    /// Usage read the moment the exit event arrived.
    pub usage: Option<CgroupUsage>,
    /// Where `usage` comes from; absent in reports written before it was recorded (the files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_source: Option<UsageSource>,
}

/// Where a report's cgroup usage figures were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    /// The cgroup's files (`memory.*`, `pids.*`, `cpu.stat`), read at the exit event; figures
    /// whose files vanished mid-read (the scope removed meanwhile) from the kernel's at exit.
    CgroupFiles,
    /// The flight recorder's kernel side, at the exit of the container's last process: the
    /// cgroup directory was already gone when the agent read it. Memory figures, CPU time
    /// (`cpu_usage_usec`) and `pids_peak` only.
    KernelAtExit,
}

/// Resource limits of a cgroup. `None` means unlimited or not applicable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CgroupLimits {
    pub memory_limit_bytes: Option<u64>,
    /// Memory plus swap limit (v1 `memory.memsw.limit_in_bytes`, v2 `memory.max` + `memory.swap.max`).
    pub memory_swap_limit_bytes: Option<u64>,
    /// CFS quota in microseconds per period; `None` when unlimited.
    pub cpu_quota_us: Option<u64>,
    pub cpu_period_us: Option<u64>,
    /// v1 `cpu.shares`.
    pub cpu_shares: Option<u64>,
    /// v2 `cpu.weight`.
    pub cpu_weight: Option<u64>,
    /// `cpuset.cpus` as the kernel prints it (e.g. `0-1`); empty means inherited.
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_max: Option<u64>,
}

/// Usage figures of a cgroup, read at exit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CgroupUsage {
    pub memory_current_bytes: Option<u64>,
    /// v1 `memory.max_usage_in_bytes`, v2 `memory.peak` (kernel 5.19+).
    pub memory_peak_bytes: Option<u64>,
    /// v1 `memory.failcnt`; v2 the `max` count in `memory.events`.
    pub memory_failcnt: Option<u64>,
    /// v1 `oom_kill` in `memory.oom_control`; v2 `oom_kill` in `memory.events`.
    pub oom_kill_count: Option<u64>,
    /// v2 `oom` in `memory.events`: times the cgroup hit its limit and the OOM killer was invoked.
    pub oom_count: Option<u64>,
    pub pids_current: Option<u64>,
    /// `pids.peak` (v2 since kernel 6.1; also in v1 on recent kernels).
    pub pids_peak: Option<u64>,
    /// Forks refused because of `pids.max` (v1/v2 `pids.events` `max`).
    pub pids_max_events: Option<u64>,
    pub cpu_usage_usec: Option<u64>,
    pub cpu_nr_periods: Option<u64>,
    pub cpu_nr_throttled: Option<u64>,
    pub cpu_throttled_usec: Option<u64>,
}

impl CgroupUsage {
    /// Fills the figures this reading lacks from `other` (the kernel's at the exit): a cgroup
    /// removed while its files were being read (systemd removes an empty scope at once) leaves
    /// the last ones unread.
    pub fn fill_gaps_from(&mut self, other: &CgroupUsage) {
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = other.$f; } )* };
        }
        fill!(
            memory_current_bytes,
            memory_peak_bytes,
            memory_failcnt,
            oom_kill_count,
            oom_count,
            pids_current,
            pids_peak,
            pids_max_events,
            cpu_usage_usec,
            cpu_nr_periods,
            cpu_nr_throttled,
            cpu_throttled_usec
        );
    }
}

#[cfg(test)]
mod usage_tests {
    use super::CgroupUsage;

    #[test]
    fn files_read_while_the_scope_went_are_completed_from_the_kernel_not_overwritten() {
        let mut files = CgroupUsage {
            memory_peak_bytes: Some(5 << 20),
            pids_peak: Some(6),
            ..Default::default()
        };
        let kernel = CgroupUsage {
            memory_peak_bytes: Some(1),
            pids_peak: Some(1),
            cpu_usage_usec: Some(2_345),
            ..Default::default()
        };
        files.fill_gaps_from(&kernel);
        assert_eq!(
            files.memory_peak_bytes,
            Some(5 << 20),
            "the file's figure stays"
        );
        assert_eq!(files.pids_peak, Some(6));
        assert_eq!(
            files.cpu_usage_usec,
            Some(2_345),
            "cpu.stat was gone: the kernel's"
        );
        assert_eq!(files.cpu_nr_throttled, None);
    }
}

/// Something the collector could not read, with a stable machine label and the detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CollectionError {
    /// Stable label, also used as a metric label (`containerd_metadata`, `cgroup_limits`, ...).
    pub stage: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentInfo {
    pub node: Option<String>,
    pub version: String,
}

/// One line of the crash list: enough to pick a report without loading it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CrashSummary {
    pub id: String,
    pub outcome: Outcome,
    pub exited_at: DateTime<Utc>,
    /// Kubernetes namespace, or the containerd namespace for other containers.
    pub namespace: String,
    pub pod: Option<String>,
    /// Kubernetes container name, or the containerd container id.
    pub container: String,
    pub container_id: String,
    pub image: Option<String>,
    pub exit_code: u32,
    pub signal_name: Option<String>,
    pub oom_killed: bool,
    pub attempt: Option<u32>,
    pub recovered: bool,
    /// The diagnosis' cause and one-line summary.
    pub cause: Option<Cause>,
    pub diagnosis: Option<String>,
    /// The diagnosis' key evidence (`bind 0.0.0.0:9443 EADDRINUSE`), part of the group signature.
    pub key: Option<String>,
    /// The crash-loop group this report belongs to (`/api/v1/groups/{id}`).
    pub group_id: Option<String>,
}

impl CrashReport {
    pub fn summary(&self) -> CrashSummary {
        let k8s = self.kubernetes.as_ref();
        CrashSummary {
            id: self.id.clone(),
            outcome: self.outcome,
            exited_at: self.lifecycle.exited_at,
            namespace: k8s
                .map_or_else(|| self.container.namespace.clone(), |k| k.namespace.clone()),
            pod: k8s.map(|k| k.pod.clone()),
            container: k8s.map_or_else(|| self.container.id.clone(), |k| k.container.clone()),
            container_id: self.container.id.clone(),
            image: self.container.image.clone(),
            exit_code: self.exit.code,
            signal_name: self.exit.signal_name.clone(),
            oom_killed: self.oom.killed,
            attempt: k8s.and_then(|k| k.attempt),
            recovered: self.recovered,
            cause: self.diagnosis.as_ref().map(|d| d.cause),
            diagnosis: self.diagnosis.as_ref().map(|d| d.summary.clone()),
            key: self.diagnosis.as_ref().and_then(|d| d.key.clone()),
            group_id: self
                .diagnosis
                .as_ref()
                .map(|d| group_id(&self.workload(), d.cause, d.key.as_deref())),
        }
    }
}

/// The report id for one exit: the same exit always gets the same id, whoever saw it, so a report
/// found again after a restart is recognised instead of duplicated. The exit time is containerd's
/// own stamp, to the nanosecond: the task exit event, the task list and the CRI plugin's
/// `finishedAt` all carry that one value, and the CRI knows no pid.
pub fn report_id(namespace: &str, container_id: &str, exited_at: DateTime<Utc>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(namespace.as_bytes());
    h.update([0]);
    h.update(container_id.as_bytes());
    h.update([0]);
    h.update(
        exited_at
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_le_bytes(),
    );
    let digest = h.finalize();
    digest[..10].iter().map(|b| format!("{b:02x}")).collect()
}
