//! Post-mortem files a runtime wrote into the container (`erl_crash.dump`, `hs_err_pid<pid>.log`,
//! cores, files its crash message named), kept beside the report: what each was, where it was,
//! how much of it was kept and the lines that matter. The bytes are the store's
//! (`/api/v1/crashes/{id}/artifacts/{name}`); the report only describes them.

use serde::{Deserialize, Serialize};

/// The report's `artifacts` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArtifactsReport {
    /// Files kept, in the order they were found.
    #[serde(default)]
    pub files: Vec<Artifact>,
    /// Files found and not kept, with the reason (a bound, a binary image while redacting).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedArtifact>,
    /// Where the container's filesystem was read: `bundle_rootfs` (the task's mounted root, until
    /// the task is deleted) or `snapshot_upper` (the container's writable layer, until the
    /// container is removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_from: Option<String>,
    /// Why the container's filesystem could not be read at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// The BEAM's `erl_crash.dump` (or `$ERL_CRASH_DUMP`).
    ErlangCrashDump,
    /// The JVM's fatal error log `hs_err_pid<pid>.log`.
    JvmErrorLog,
    /// A JVM heap dump (`java_pid<pid>.hprof`, `-XX:+HeapDumpOnOutOfMemoryError`).
    JvmHeapDump,
    /// A core file (`core`, `core.<pid>`).
    Core,
    /// A file the container's output named as written at the crash.
    NamedInOutput,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::ErlangCrashDump => "erlang_crash_dump",
            ArtifactKind::JvmErrorLog => "jvm_error_log",
            ArtifactKind::JvmHeapDump => "jvm_heap_dump",
            ArtifactKind::Core => "core",
            ArtifactKind::NamedInOutput => "named_in_output",
        }
    }

    /// Memory images: whatever the process held, credentials included; never redactable.
    pub fn is_memory_image(self) -> bool {
        matches!(self, ArtifactKind::Core | ArtifactKind::JvmHeapDump)
    }
}

/// One kept file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Artifact {
    /// Its name under `/api/v1/crashes/{id}/artifacts/`: the file's base name, made unique.
    pub name: String,
    /// Its path in the container.
    pub path: String,
    pub kind: ArtifactKind,
    /// `text/plain; charset=utf-8` or `application/octet-stream`, as served.
    pub content_type: String,
    /// Its size in the container.
    pub size_bytes: u64,
    /// Bytes kept (the file's start when it was larger than the bound).
    pub kept_bytes: u64,
    /// Bytes on the agent's disk (gzip).
    pub stored_bytes: u64,
    /// Only the file's first `kept_bytes` were kept.
    pub truncated: bool,
    /// Credential-shaped text in it was replaced (text files unless `--no-redact-artifacts`).
    pub redacted: bool,
    /// The lines that matter, quoted (after redaction).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_lines: Vec<KeyLine>,
}

/// A line of an artifact worth quoting: `Slogan: my slogan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyLine {
    /// What it is: `slogan`, `system_version`, `memory_total`, `signal`, `problematic_frame`, `heap`.
    pub label: String,
    pub text: String,
}

/// A file found and not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SkippedArtifact {
    pub path: String,
    pub size_bytes: Option<u64>,
    pub reason: String,
}
