//! What [`super::build_report`] is given: everything the agent learned about one exit, as plain
//! values. The agent's sources fill these; nothing here does I/O.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::containerd::{ContainerMeta, CriExit};
use crate::model::{
    AgentInfo, ArtifactsReport, CapturedOutput, CgroupLimits, CgroupUsage, CgroupVersion,
    CollectionError, EntrypointReport, ImageContent, RecorderReport, UsageSource,
};

/// What enrichment learned about a container. Any part may be missing; `errors` says why.
#[derive(Debug, Clone, Default)]
pub struct Enriched {
    pub meta: Option<ContainerMeta>,
    pub image_digest: Option<String>,
    /// The image reference resolved when the container was created, down to its config.
    pub image_ran: Option<ImageContent>,
    /// The container's cgroup path below the cgroup roots.
    pub cgroup_path: Option<String>,
    pub limits: Option<CgroupLimits>,
    /// Inode of the container's cgroup2 directory: the flight recorder's key.
    pub cgroup_id: Option<u64>,
    /// The entrypoint as the container's root filesystem had it at create time.
    pub entrypoint: Option<EntrypointReport>,
    /// The task's root filesystem as the agent sees it (the bundle's `rootfs`), mounted until
    /// the task is deleted.
    pub rootfs: Option<std::path::PathBuf>,
    /// The upper directory of the container's snapshot: the files it wrote, until it is removed.
    pub writable_layer: Option<std::path::PathBuf>,
    /// The image's layers below it (overlay lower directories, top first): where a crash
    /// stack's binaries are read once the root filesystem is unmounted.
    pub image_layers: Vec<std::path::PathBuf>,
    pub errors: Vec<CollectionError>,
}

impl Enriched {
    pub fn is_sandbox(&self) -> bool {
        self.meta.as_ref().is_some_and(|m| m.is_sandbox)
    }
}

/// What may leave the node in a report. Everything is redacted unless kept here
/// (`--no-redact-args`, `--no-redact-labels`, `--no-redact-output`, `--env-allow`).
#[derive(Debug, Clone, Default)]
pub struct Redaction {
    /// Environment variables whose values may be stored.
    pub env_allow: BTreeSet<String>,
    /// Keep arguments as they are: the command line, exec argv and syscall arguments
    /// (credential-looking values are redacted otherwise).
    pub keep_args: bool,
    /// Keep container label values as they are.
    pub keep_labels: bool,
    /// Keep the captured stdout and stderr as they are.
    pub keep_output: bool,
    /// Keep post-mortem files as they were: text unredacted, binaries (cores, heap dumps) kept.
    pub keep_artifacts: bool,
}

/// The exit as containerd reported it.
#[derive(Debug, Clone)]
pub struct ExitEvent {
    pub namespace: String,
    pub container_id: String,
    pub pid: u32,
    pub exit_status: u32,
    pub exited_at: DateTime<Utc>,
}

/// Everything known when the report is written.
pub struct Inputs<'a> {
    pub exit: &'a ExitEvent,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub enriched: &'a Enriched,
    pub cgroup_version: Option<CgroupVersion>,
    pub usage: Option<CgroupUsage>,
    /// Where `usage` was read: the cgroup's files, or the kernel at the last exit.
    pub usage_source: Option<UsageSource>,
    pub oom_events: u32,
    pub recovered: bool,
    /// Errors met at exit time (e.g. the cgroup was already gone).
    pub errors: Vec<CollectionError>,
    pub agent: AgentInfo,
    pub reported_at: DateTime<Utc>,
    /// The flight recorder's section (`None` only where no recorder section is wanted, in tests).
    pub recorder: Option<RecorderReport>,
    /// Init's wait status as the kernel saw it at exit, when the recorder caught it.
    pub init_wait_status: Option<i32>,
    /// What the CRI plugin still knew of an exit the agent did not see live.
    pub cri: Option<&'a CriExit>,
    /// The container's output from its CRI log file, when the recorder has none.
    pub log_output: Option<CapturedOutput>,
    /// Memory, CPU and pids sampled while the container lived.
    pub usage_history: Option<crate::model::UsageHistory>,
    /// Post-mortem files found in the container ([`super::artifacts::prepare`]).
    pub artifacts: Option<ArtifactsReport>,
    /// The container's image reference resolved again at the exit (`None`: not looked up, or
    /// the look-up failed, which `errors` says).
    pub image_now: Option<super::ImageLookup>,
}
