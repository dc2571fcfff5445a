//! The probable cause of an exit, and the crash-loop groups built from it. Plain data; the rules
//! that fill it live in `crate::diagnose`, the grouping in `crate::groups`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The probable cause of an exit: a fixed vocabulary, also a metric label. The README documents
/// each value; new values may be added, existing ones keep their meaning.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The kernel OOM killer killed the container's init or one of its processes.
    OomKilled,
    /// A fault of the process itself: SIGSEGV, SIGBUS, SIGILL, SIGFPE, or SIGABRT (abort()).
    Crashed,
    /// Killed by a signal someone else sent (a process on the host or in the container).
    Killed,
    /// A program could not be executed (execve failed: missing file, no permission, bad format).
    ExecFailed,
    /// Could not take a lock another process holds (flock/fcntl EAGAIN, EWOULDBLOCK, EACCES).
    LockHeld,
    /// Could not bind an address another process holds (bind EADDRINUSE).
    AddressInUse,
    /// Could not start a process or thread: the cgroup's pids.max was reached (clone EAGAIN).
    PidsLimit,
    /// Never started: runc could not start the process (the CRI's `StartError`: entrypoint not
    /// found, a user or group refused, a mount that failed), so no program of the image ran.
    StartFailed,
    /// Exited non-zero for a reason none of the rules above recognised.
    ExitedError,
    /// Exited 0.
    Completed,
}

impl Cause {
    pub const ALL: [Cause; 10] = [
        Cause::OomKilled,
        Cause::Crashed,
        Cause::Killed,
        Cause::ExecFailed,
        Cause::LockHeld,
        Cause::AddressInUse,
        Cause::PidsLimit,
        Cause::StartFailed,
        Cause::ExitedError,
        Cause::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::OomKilled => "oom_killed",
            Cause::Crashed => "crashed",
            Cause::Killed => "killed",
            Cause::ExecFailed => "exec_failed",
            Cause::LockHeld => "lock_held",
            Cause::AddressInUse => "address_in_use",
            Cause::PidsLimit => "pids_limit",
            Cause::StartFailed => "start_failed",
            Cause::ExitedError => "exited_error",
            Cause::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How firmly the evidence supports the cause.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// The kernel said so directly (OOM kill, signal sender, the failing syscall named the cause).
    High,
    /// A strong pattern: the failing syscall came right before the exit.
    Medium,
    /// Little to go on (no syscall data); the summary says what is missing.
    Low,
}

/// One fact behind a diagnosis and where in the report it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Evidence {
    /// The fact, in words: `memory peaked at 20.0 MiB against a 20.0 MiB limit`.
    pub fact: String,
    /// JSON Pointer (RFC 6901) into the report: `/cgroup/usage/memory_peak_bytes`.
    pub field: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Diagnosis {
    pub cause: Cause,
    pub confidence: Confidence,
    /// One sentence a human can paste into a chat.
    pub summary: String,
    /// The facts behind the cause, most decisive first.
    pub evidence: Vec<Evidence>,
    /// The key evidence in a stable, short form, part of the crash-loop signature:
    /// `bind 0.0.0.0:9443 EADDRINUSE`, `SIGKILL from host`, `execve /app/bin/start ENOENT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Who crashed, independent of the attempt: what repeats in a crash loop.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Workload {
    /// Kubernetes namespace, or the containerd namespace for other containers.
    pub namespace: String,
    /// The pod's owner prefix (`gateway` for pods `gateway-7d9f8b6c5d-x2x9q`), or the pod name
    /// when it has no generated suffix (StatefulSet pods, bare pods); absent outside Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Kubernetes container name, or the containerd container id.
    pub container: String,
}

/// Repeated crashes of one workload with the same cause and key evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CrashGroup {
    /// Stable id of the signature (hex).
    pub id: String,
    pub workload: Workload,
    pub cause: Cause,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The latest report's one-line summary.
    pub summary: String,
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub latest_report_id: String,
    /// The group's reports, newest first (at most 20).
    pub report_ids: Vec<String>,
    /// Pods the crashes happened in (a Deployment's replicas, successive pods).
    pub pods: Vec<String>,
    /// The workload also crashed with another signature: the cause changed between attempts.
    pub cause_changed: bool,
    /// The cause of the workload's crash just before this group's first one, when that crash had
    /// another signature (the cause or its key evidence changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_cause: Option<Cause>,
    /// The workload's most recent crash belongs to this group (the loop is still on this cause).
    pub current: bool,
}
