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
    /// The runtime said a module, class, package or shared library it needs is missing
    /// (`ModuleNotFoundError`, `Cannot find module`, `Could not find or load main class`,
    /// `error while loading shared libraries`).
    MissingDependency,
    /// The program or server rejected its configuration at start-up (nginx `[emerg]` on a
    /// directive, an invalid option), as it said.
    ConfigError,
    /// A file the program needs is missing, as it said (`FileNotFoundError`, `enoent`, `open()
    /// ... failed (2: No such file or directory)`).
    MissingFile,
    /// The program was refused access to a file or directory, as it said: EACCES, EPERM or a
    /// read-only file system (EROFS).
    PermissionDenied,
    /// The runtime ran out of its own memory before the kernel OOM killer acted: the Java or V8
    /// heap limit, a failed allocation in Go or Rust.
    OutOfMemory,
    /// The program died of its own error, as the runtime said: an uncaught exception, a panic,
    /// a fatal error.
    RuntimeError,
    /// Exited non-zero for a reason none of the rules above recognised.
    ExitedError,
    /// Exited 0.
    Completed,
}

impl Cause {
    pub const ALL: [Cause; 16] = [
        Cause::OomKilled,
        Cause::Crashed,
        Cause::Killed,
        Cause::ExecFailed,
        Cause::LockHeld,
        Cause::AddressInUse,
        Cause::PidsLimit,
        Cause::StartFailed,
        Cause::MissingDependency,
        Cause::ConfigError,
        Cause::MissingFile,
        Cause::PermissionDenied,
        Cause::OutOfMemory,
        Cause::RuntimeError,
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
            Cause::MissingDependency => "missing_dependency",
            Cause::ConfigError => "config_error",
            Cause::MissingFile => "missing_file",
            Cause::PermissionDenied => "permission_denied",
            Cause::OutOfMemory => "out_of_memory",
            Cause::RuntimeError => "runtime_error",
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
    /// What the runtime or server itself said about its death, found in the captured output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<Statement>,
    /// One line of advice for this cause, grounded in the report's figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

/// A crash statement a runtime or server printed: the decisive line of its output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Statement {
    pub runtime: Runtime,
    pub kind: StatementKind,
    /// The decisive line, trimmed (and clipped to 300 characters).
    pub text: String,
    /// Its gist: the Erlang reason atom (`eaddrinuse`), the exception class and message, the
    /// missing module or library, the panic message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// JSON Pointer of the captured output it was found in: `/recorder/output/stderr/tail`.
    pub field: String,
}

/// Which runtime or server made a [`Statement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// The Erlang VM (BEAM): `init terminating in do_boot`, `Kernel pid terminated`.
    Beam,
    Python,
    Go,
    /// The Java virtual machine and its launcher.
    Jvm,
    Node,
    Rust,
    /// glibc and the dynamic loader: missing shared libraries, heap and stack corruption aborts.
    Loader,
    /// A POSIX shell (dash, bash, busybox sh).
    Shell,
    Nginx,
    /// A line of any program that says FATAL, panic or an errno text.
    Generic,
}

impl Runtime {
    /// How the runtime is named in a summary: `Erlang VM`, `Python`, `the dynamic loader`.
    pub fn label(self) -> &'static str {
        match self {
            Runtime::Beam => "Erlang VM",
            Runtime::Python => "Python",
            Runtime::Go => "Go",
            Runtime::Jvm => "JVM",
            Runtime::Node => "Node.js",
            Runtime::Rust => "Rust",
            Runtime::Loader => "glibc",
            Runtime::Shell => "shell",
            Runtime::Nginx => "nginx",
            Runtime::Generic => "the program",
        }
    }
}

/// What a [`Statement`] says went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    /// An exception nobody caught (Python, Node.js, the JVM, a BEAM boot crash).
    UncaughtException,
    /// A Go or Rust panic, a Go `fatal error`.
    Panic,
    /// The address to listen on is taken (EADDRINUSE).
    AddressInUse,
    /// A module, class or package the program imports is missing.
    MissingModule,
    /// A file the program opens is missing (ENOENT).
    MissingFile,
    /// A shell found no such command (`sh: 1: gateway: not found`, exit 127).
    CommandNotFound,
    /// Access refused (EACCES, EPERM) or a read-only file system (EROFS).
    PermissionDenied,
    /// The configuration was rejected at start-up.
    ConfigError,
    /// The dynamic loader could not start the program (a shared library or symbol version).
    LoaderError,
    /// The runtime's own memory ran out (heap limit, failed allocation).
    OutOfMemory,
    /// glibc aborted on heap or stack corruption (double free, stack smashing).
    MemoryCorruption,
    /// A line that says FATAL or panic, and nothing more specific.
    Fatal,
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
