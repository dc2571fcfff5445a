//! What the container's own filesystem said about the program it was to run, read while the
//! container was created (an exec that fails leaves nothing to read minutes later): the file
//! `argv[0]` names, its ELF loader and libraries or its `#!` interpreter, its mode, its machine.

use serde::{Deserialize, Serialize};

/// The entrypoint as found in the container's root filesystem at create time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EntrypointReport {
    /// Where the files were read: `process_root` (`/proc/<pid>/root`, the container's own view,
    /// volumes and mount options included) or `bundle_rootfs` (the image's root filesystem in
    /// the OCI bundle, without volumes). Absent when they could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_from: Option<String>,
    /// Why the container's filesystem could not be read (`executables` is then empty): like the
    /// recorder's `unavailable`, a missing capability of this agent, not a fault of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// `argv[0]`, then the program a shell wrapper's `-c` script starts (`sh -c /app/start`).
    pub executables: Vec<Executable>,
}

/// What kind of file a name resolved to.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ExecutableKind {
    /// An ELF binary.
    Elf,
    /// A script with a `#!` line.
    Script,
    /// Neither: `execve` refuses it with ENOEXEC (a shell would run it as a script).
    Other,
    /// A directory.
    Directory,
    /// No such file in the container (searched along `PATH` for a bare name).
    #[default]
    Missing,
    /// There, but it could not be read.
    Unreadable,
}

impl ExecutableKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutableKind::Elf => "elf",
            ExecutableKind::Script => "script",
            ExecutableKind::Other => "other",
            ExecutableKind::Directory => "directory",
            ExecutableKind::Missing => "missing",
            ExecutableKind::Unreadable => "unreadable",
        }
    }
}

/// One program and what `execve` and the dynamic loader will need of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Executable {
    /// The name as the command gives it (`gateway`, `/app/gateway`, `./run.sh`).
    pub command: String,
    /// Where it resolved inside the container (after the `PATH` search), when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub kind: ExecutableKind,
    /// Permission bits, octal (`0755`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Some execute bit is set (what `execve` needs even for root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
    /// The file sits on a `noexec` mount (known only when read through the process's root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noexec_mount: Option<bool>,
    /// ELF machine (`x86_64`, `aarch64`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// The node's kernel can run this machine's binaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs_on_node: Option<bool>,
    /// The ELF's `PT_INTERP` loader, or a script's `#!` interpreter. Absent for a static binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter_present: Option<bool>,
    /// Libraries the loader will not find in the container (`DT_NEEDED`, followed through the
    /// libraries found; searched in the run path, `LD_LIBRARY_PATH`, `ld.so.conf` and the
    /// default directories). Only checked when the loader itself is there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_libraries: Vec<String>,
    /// A script's interpreter, inspected the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter_file: Option<Box<Executable>>,
    /// Why part of this could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EntrypointReport {
    /// The inspected program that `path` (an exec's path argument) names, by its resolved path
    /// or by the name the command gave.
    pub fn executable_for(&self, path: &str) -> Option<&Executable> {
        self.executables
            .iter()
            .find(|e| e.path.as_deref() == Some(path) || e.command == path)
    }
}
