//! What the eBPF flight recorder adds to a report: the container's processes as the kernel saw
//! them. Plain data; decoding from kernel records lives in `crate::bpf`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether syscall data is in the report, and why not when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecorderState {
    /// The recorder saw the container from its first syscall.
    Recorded,
    /// The recorder has data, but missed part of the container's life: `gap` says what, when
    /// and why.
    Partial,
    /// The recorder runs but has no data for this container (evicted, or started after it).
    NoData,
    /// The recorder could not be loaded on this node (see `reason`).
    Unavailable,
    /// Disabled by configuration.
    Disabled,
}

impl RecorderState {
    /// Whether the section holds recorded data (complete or not).
    pub fn has_data(self) -> bool {
        matches!(self, RecorderState::Recorded | RecorderState::Partial)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecorderReport {
    pub state: RecorderState,
    /// Why data is missing, for every state but `recorded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the recording misses, for `partial`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<RecordingGap>,
    /// Calls per syscall from the entrypoint's exec on (runc's set-up excluded), like `strace -c -f`,
    /// most called first.
    #[serde(default)]
    pub summary: Vec<SyscallStat>,
    /// Syscalls runc made in the container's cgroup before the entrypoint's exec.
    #[serde(default)]
    pub setup_syscalls: u64,
    /// The last syscalls before death across all the container's processes, oldest first.
    #[serde(default)]
    pub flight_recorder: Vec<SyscallEvent>,
    /// Syscalls the recorder saw but could not keep in `flight_recorder` (ring overwritten).
    #[serde(default)]
    pub flight_recorder_overwritten: u64,
    /// The first failing syscalls after the entrypoint's exec (the first failure is often the cause).
    #[serde(default)]
    pub first_failures: Vec<SyscallEvent>,
    /// The first call of each distinct (syscall, errno) after the entrypoint's exec (the first 16
    /// pairs, kept in the kernel), most telling first: a bind's `EADDRINUSE` with its address,
    /// `EACCES`, `EROFS`, `ENOSPC`, `EMFILE`, `ECONNREFUSED`, a lock's `EAGAIN` before routine
    /// `ENOENT` lookups; in order of occurrence within a rank. Outlives the noise that fills
    /// `first_failures` and overwrites `flight_recorder`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telling_failures: Vec<SyscallEvent>,
    /// fork/clone, exec and exit of every process, in order.
    #[serde(default)]
    pub processes: Vec<ProcessEvent>,
    /// Who sent the signal that killed the init process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fatal_signal: Option<SignalProvenance>,
    /// The process the OOM killer chose, when it acted in this container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_victim: Option<OomVictim>,
    /// Bytes written to stdout and stderr, captured in the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<CapturedOutput>,
    /// The user stack of the thread that crashed (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT it
    /// raised on itself, with no handler), taken in the kernel and symbolized against the
    /// container's files. The last such crash in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_stack: Option<CrashStack>,
}

/// A crashing thread's user stack, innermost frame first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CrashStack {
    pub time: DateTime<Utc>,
    pub pid: u32,
    pub tid: u32,
    /// The thread's name.
    pub comm: String,
    pub signal: String,
    /// `si_code` by name where known (`SEGV_MAPERR`), else its number.
    pub code: String,
    /// The address the fault was at (`si_addr`), in hex; absent for SIGABRT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_address: Option<String>,
    /// The mapping `fault_address` falls in, when the kernel looked it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_mapping: Option<FaultMapping>,
    pub frames: Vec<StackFrame>,
    /// Why frames have no function names, one line per file (or for the whole stack).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbolization_errors: Vec<String>,
}

impl CrashStack {
    /// "`crash_here()` at crash.c:3, called from `main()`": the innermost named frame and its caller.
    pub fn crash_site(&self) -> Option<String> {
        let first = self.frames.first()?;
        let name = first.function.as_deref()?;
        let mut s = format!("`{name}()`");
        if let Some(at) = first.source_location() {
            s.push_str(&format!(" at {at}"));
        }
        if let Some(caller) = self.frames.get(1).and_then(|f| f.function.as_deref()) {
            s.push_str(&format!(", called from `{caller}()`"));
        }
        Some(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FaultMapping {
    /// false: no mapping holds the address (a null or wild pointer).
    pub mapped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// `r-x`, `rw-`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    /// The mapped file's name; absent for anonymous memory (heap, stack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// One frame: where the thread was (the first) or where a call returns to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StackFrame {
    /// The address as the process saw it, in hex.
    pub address: String,
    /// The file's GNU build id, in hex, when the kernel could read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// The frame's offset in that file, in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_offset: Option<String>,
    /// The file in the container whose build id matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Bytes into the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_offset: Option<u64>,
    /// Source file and line, from the file's DWARF line table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

impl StackFrame {
    /// `segv.c:3`, when the line is known.
    pub fn source_location(&self) -> Option<String> {
        let file = self.source_file.as_deref()?;
        Some(match self.line {
            Some(l) => format!("{file}:{l}"),
            None => file.to_string(),
        })
    }
}

/// A part of a container's life the flight recorder did not see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecordingGap {
    pub missing: GapScope,
    pub cause: GapCause,
    /// Start of the gap: the container's start (`everything`), or the previous agent process's
    /// last sign of life (`process_events`). `None` when not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// When recording (re)started: the recorder's load, or this agent process's adoption.
    pub until: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GapScope {
    /// Nothing before `until` was recorded: syscalls, counts, first failures, output and process
    /// events start there (a container's first syscalls, its entrypoint's exec, are missing).
    Everything,
    /// Syscalls, counts, first failures and output are complete; process events (`processes`,
    /// `fatal_signal`, `oom_victim`) between `from` and `until` may be missing.
    ProcessEvents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GapCause {
    /// The recorder was loaded (no pinned recorder to adopt) while the container already ran.
    LoadedAfterStart,
    /// A pinned recorder of another layout (another agent version or ring size) was replaced
    /// while the container ran; what it had recorded is gone.
    LayoutReplaced,
    /// While no agent process ran, the kernel's event ring buffer overflowed (or the previous
    /// process could not keep all the events it had read).
    EventsLostWhileAway,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SyscallStat {
    pub syscall: String,
    pub calls: u64,
    pub errors: u64,
    /// Errors by errno name (`ENOENT`: 3).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errnos: BTreeMap<String, u64>,
}

/// One syscall, decoded like strace prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SyscallEvent {
    pub time: DateTime<Utc>,
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub syscall: String,
    /// Decoded arguments: `"/etc/passwd"`, `O_RDONLY|O_CLOEXEC`, `0.0.0.0:9443`, `LOCK_EX|LOCK_NB`.
    pub args: Vec<String>,
    /// Raw return value.
    pub ret: i64,
    /// Errno name when the call failed (`EADDRINUSE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessEventKind {
    Fork,
    Exec,
    Exit,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessEvent {
    pub time: DateTime<Utc>,
    pub kind: ProcessEventKind,
    pub pid: u32,
    /// Parent (fork: the forking process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    pub comm: String,
    /// exec: the file executed and its argv (redacted like the command line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
    /// exit: the code, or the signal and core-dump flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_dumped: Option<bool>,
}

/// Where a fatal signal came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalOrigin {
    /// A process in the same container.
    Container,
    /// A process outside the container: containerd-shim, kubelet, a user with kill.
    Host,
    /// The kernel: the OOM killer.
    KernelOom,
    /// The kernel: a fault of the process itself (SIGSEGV, SIGBUS, SIGILL, SIGFPE).
    KernelFault,
    /// The kernel, for another reason (e.g. SIGPIPE, SIGXCPU).
    Kernel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SignalProvenance {
    pub signal: String,
    pub origin: SignalOrigin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_comm: Option<String>,
    pub time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OomVictim {
    pub pid: u32,
    pub comm: String,
    /// Resident set (anon + file + shmem) when it was chosen.
    pub rss_bytes: u64,
    /// Whether the victim was the container's init process.
    pub was_init: bool,
    pub time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CapturedOutput {
    /// Always "coroner": these bytes were captured by the agent's recorder, not the log pipeline.
    pub captured_by: String,
    pub stdout: StreamCapture,
    pub stderr: StreamCapture,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StreamCapture {
    pub total_bytes: u64,
    /// The first bytes written (up to 4 KiB), lossily decoded as UTF-8.
    pub head: String,
    /// The last bytes written (up to 4 KiB), when more than the head was written.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tail: String,
}
