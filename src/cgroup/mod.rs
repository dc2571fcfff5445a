//! cgroup v1 and v2 readers over an injectable root: where the hierarchies are mounted, which
//! directory a container's OCI `cgroupsPath` names, and that directory's limits and usage as the
//! report types [`CgroupLimits`] and [`CgroupUsage`].
//!
//! Owns: mountinfo parsing ([`mountinfo`]), path resolution ([`path`]), the file readers ([`v1`],
//! [`v2`]) and their pure text parsers ([`parse`]). Does not own: when to read (the agent reads
//! limits at create/start and usage synchronously at `/tasks/exit`, before containerd deletes the
//! cgroup 5-25 ms later), nor what the figures mean (diagnosis).
//!
//! Blocking std I/O, a few syscalls per file and no directory walks: cheap enough to run inline.
//! Tests run against trees captured from real kernels in `tests/fixtures/cgroup` (see its README).

mod appear;
mod mountinfo;
mod parse;
mod path;
mod read;
mod v1;
mod v2;

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::model::{CgroupLimits, CgroupUsage, CgroupVersion, UsageSample};

pub use appear::wait_for_dir_id;
pub use mountinfo::Mount;
pub use parse::ParseError;

use mountinfo::Mounts;
use read::{Dir, Reader};

/// Why cgroup figures could not be read. [`Error::label`] gives a stable metric label.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Mountinfo { path: PathBuf, source: io::Error },
    #[error("no cgroup hierarchy to read: neither a v1 memory controller nor cgroup2 is mounted")]
    NotMounted,
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// The container's cgroup directory no longer exists (v1: in the memory controller): the
    /// runtime already deleted it.
    #[error("cgroup {path} is gone")]
    Gone { path: PathBuf },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("parsing {path}: {source}")]
    Parse { path: PathBuf, source: ParseError },
}

impl Error {
    /// Stable label for metrics and for `CollectionError::stage`.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Mountinfo { .. } => "cgroup_mountinfo",
            Error::NotMounted => "cgroup_not_mounted",
            Error::InvalidPath { .. } => "cgroup_invalid_path",
            Error::Gone { .. } => "cgroup_gone",
            Error::Read { .. } => "cgroup_read",
            Error::Parse { .. } => "cgroup_parse",
        }
    }

    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Gone { .. })
    }
}

/// Figures read from one cgroup, and the files that were there but could not be read or parsed
/// (each such figure is `None` in `value`). Missing files are not problems.
#[derive(Debug)]
pub struct Readout<T> {
    pub value: T,
    pub problems: Vec<Error>,
}

/// The cgroup hierarchies of a host: the cgroup2 mount, if any, and each v1 controller's mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupFs {
    mounts: Mounts,
}

/// v1 controllers a fixture root (`root/<controller>/...`) provides, as on a host that mounts each
/// hierarchy separately.
const V1_FIXTURE_CONTROLLERS: [&str; 8] = [
    "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer",
];

impl CgroupFs {
    /// Finds the hierarchies from `/proc/self/mountinfo`.
    pub fn detect() -> Result<Self, Error> {
        Self::detect_at(Path::new("/proc"))
    }

    /// Finds the hierarchies from `<proc_root>/self/mountinfo`.
    pub fn detect_at(proc_root: &Path) -> Result<Self, Error> {
        let path = proc_root.join("self/mountinfo");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Self::from_mountinfo(&text)),
            Err(source) => Err(Error::Mountinfo { path, source }),
        }
    }

    /// Pure: the cgroup mounts named in a mountinfo text. Handles co-mounted v1 controllers
    /// (`cpu,cpuacct`), named hierarchies (`name=systemd`), cgroup2 and `\040`-escaped paths.
    pub fn from_mountinfo(text: &str) -> Self {
        CgroupFs {
            mounts: mountinfo::parse(text),
        }
    }

    /// A cgroup2-only host whose unified hierarchy is the directory `root`.
    pub fn v2_at(root: &Path) -> Self {
        let unified = Mount {
            point: root.to_path_buf(),
            root: "/".to_string(),
        };
        CgroupFs {
            mounts: Mounts {
                unified: Some(unified),
                v1: Vec::new(),
            },
        }
    }

    /// A v1 host whose controllers are mounted at `root/<controller>` (`root/memory`, `root/cpu`,
    /// `root/cpuacct`, `root/cpuset`, `root/pids`, ...), each separately.
    pub fn v1_at(root: &Path) -> Self {
        let v1 = V1_FIXTURE_CONTROLLERS
            .iter()
            .map(|c| {
                (
                    c.to_string(),
                    Mount {
                        point: root.join(c),
                        root: "/".to_string(),
                    },
                )
            })
            .collect();
        CgroupFs {
            mounts: Mounts { unified: None, v1 },
        }
    }

    /// `V1` when a v1 memory controller is mounted (hybrid hosts included: runc keeps limits and
    /// usage there), `V2` when only cgroup2 is, `None` when neither is.
    pub fn version(&self) -> Option<CgroupVersion> {
        if self.v1_mount("memory").is_some() {
            Some(CgroupVersion::V1)
        } else if self.mounts.unified.is_some() {
            Some(CgroupVersion::V2)
        } else {
            None
        }
    }

    /// Where cgroup2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid hosts).
    pub fn unified_mount(&self) -> Option<&Path> {
        self.mounts.unified.as_ref().map(|m| m.point.as_path())
    }

    /// Where a v1 controller (`memory`, `cpu`, ..., `name=systemd`) is mounted.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1_entry(controller).map(|m| m.point.as_path())
    }

    /// Converts an OCI spec `linux.cgroupsPath` into the absolute cgroup path runc created, the
    /// same below every hierarchy's root:
    /// - cgroupfs style (`/k8s.io/abc`, `kubepods/burstable/podX/abc`): cleaned and made
    ///   absolute;
    /// - systemd style `slice:prefix:name`: expanded as runc does, so
    ///   `kubepods-burstable-pod1234.slice:cri-containerd:abcd` is
    ///   `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-abcd.scope`;
    ///   an empty slice means `system.slice`, a name ending in `.slice` is a slice itself.
    pub fn resolve_spec_path(cgroups_path: &str) -> Result<String, Error> {
        path::resolve_spec_path(cgroups_path)
    }

    /// Limits of the cgroup at `path` (as returned by [`Self::resolve_spec_path`]). Unlimited
    /// values (v1's huge memory number, a `-1` quota, v2's `max`) are `None`. `cpuset_*` are the
    /// configured sets, empty when the cgroup inherits its parent's (v2's default).
    ///
    /// Fails only when the cgroup itself is missing ([`Error::Gone`]) or nothing is mounted;
    /// a file that is missing or unreadable leaves its figure `None` (see
    /// [`Self::read_limits_detailed`] for the unreadable ones).
    pub fn read_limits(&self, path: &str) -> Result<CgroupLimits, Error> {
        self.read_limits_detailed(path).map(log_problems)
    }

    /// [`Self::read_limits`], also returning the files that were present but unreadable.
    pub fn read_limits_detailed(&self, path: &str) -> Result<Readout<CgroupLimits>, Error> {
        let mut reader = Reader::new();
        let value = match self.version() {
            Some(CgroupVersion::V1) => v1::limits(self, path, &mut reader)?,
            Some(CgroupVersion::V2) => v2::limits(self, path, &mut reader)?,
            None => return Err(Error::NotMounted),
        };
        Ok(Readout {
            value,
            problems: reader.problems,
        })
    }

    /// Usage of the cgroup at `path`, read in one pass: memory current and peak, limit hits
    /// (`failcnt`; v2 `max` events), OOM kills, pids current/peak and refused forks, CPU time and
    /// throttling, all CPU times in microseconds. Same failure rules as [`Self::read_limits`].
    pub fn read_usage(&self, path: &str) -> Result<CgroupUsage, Error> {
        self.read_usage_detailed(path).map(log_problems)
    }

    /// [`Self::read_usage`], also returning the files that were present but unreadable.
    pub fn read_usage_detailed(&self, path: &str) -> Result<Readout<CgroupUsage>, Error> {
        let mut reader = Reader::new();
        let value = match self.version() {
            Some(CgroupVersion::V1) => v1::usage(self, path, &mut reader)?,
            Some(CgroupVersion::V2) => v2::usage(self, path, &mut reader)?,
            None => return Err(Error::NotMounted),
        };
        Ok(Readout {
            value,
            problems: reader.problems,
        })
    }

    /// The few figures of a history sample (memory, CPU time, tasks; `t_ms` left 0): three
    /// files, for the sampler that reads every live container ten times a second. Fails like
    /// [`Self::read_usage`]; problems with single files leave their figure `None`, unlogged
    /// (the sampler reads them again in 100 ms).
    pub fn sample(&self, path: &str) -> Result<UsageSample, Error> {
        let mut reader = Reader::new();
        match self.version() {
            Some(CgroupVersion::V1) => v1::sample(self, path, &mut reader),
            Some(CgroupVersion::V2) => v2::sample(self, path, &mut reader),
            None => Err(Error::NotMounted),
        }
    }

    /// The cgroup's directory in the unified hierarchy (whether or not it exists yet).
    pub fn unified_dir(&self, path: &str) -> Option<PathBuf> {
        let mount = self.mounts.unified.as_ref()?;
        let rel = path::below_mount(path, &mount.root).ok()?;
        Some(mount.point.join(rel))
    }

    /// Inode of the cgroup's directory in the unified hierarchy, which is the id
    /// `bpf_get_current_cgroup_id()` returns for its tasks. `None` without a cgroup2 mount or when
    /// the directory does not exist.
    pub fn unified_cgroup_id(&self, path: &str) -> Option<u64> {
        let mount = self.mounts.unified.as_ref()?;
        let rel = path::below_mount(path, &mount.root).ok()?;
        std::fs::metadata(mount.point.join(rel))
            .ok()
            .map(|m| m.ino())
    }

    fn v1_entry(&self, controller: &str) -> Option<&Mount> {
        self.mounts
            .v1
            .iter()
            .find(|(c, _)| c == controller)
            .map(|(_, m)| m)
    }

    fn dir_path(mount: &Mount, path: &str) -> Result<PathBuf, Error> {
        Ok(mount.point.join(path::below_mount(path, &mount.root)?))
    }

    /// The v1 memory directory; its absence means the cgroup is gone.
    fn v1_anchor(&self, path: &str) -> Result<Dir, Error> {
        let mount = self.v1_entry("memory").ok_or(Error::NotMounted)?;
        let dir = Self::dir_path(mount, path)?;
        Dir::open(dir)?.map_err(|path| Error::Gone { path })
    }

    /// A v1 controller's directory, `None` when the controller is not mounted or the directory
    /// is missing; other failures are recorded in `reader`.
    fn v1_dir(&self, controller: &str, path: &str, reader: &mut Reader) -> Option<Dir> {
        let mount = self.v1_entry(controller)?;
        match Self::dir_path(mount, path).and_then(Dir::open) {
            Ok(dir) => dir.ok(),
            Err(e) => {
                reader.problems.push(e);
                None
            }
        }
    }

    fn v1_same_mount(&self, a: &str, b: &str) -> bool {
        match (self.v1_entry(a), self.v1_entry(b)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// The v2 directory; its absence means the cgroup is gone.
    fn v2_anchor(&self, path: &str) -> Result<Dir, Error> {
        let mount = self.mounts.unified.as_ref().ok_or(Error::NotMounted)?;
        let dir = Self::dir_path(mount, path)?;
        Dir::open(dir)?.map_err(|path| Error::Gone { path })
    }
}

fn log_problems<T>(readout: Readout<T>) -> T {
    for problem in &readout.problems {
        tracing::warn!(error = %problem, label = problem.label(), "cgroup figure unreadable");
    }
    readout.value
}

#[cfg(test)]
mod tests;
