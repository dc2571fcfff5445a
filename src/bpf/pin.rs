//! The flight recorder's pin directory in bpffs (`--bpf-pin-dir`): one subdirectory per layout
//! (`layout-<version>`, holding the maps and links `loader.rs` pins), a lock so that one agent
//! process at a time owns it, and the removal of layouts this agent cannot adopt.
//!
//! Filesystem work only; pinning the objects themselves is libbpf's, in `loader.rs`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// Prefix of a layout's subdirectory; what follows is its version (`loader::layout_version`).
const LAYOUT_PREFIX: &str = "layout-";
/// Prefix of a layout being pinned, renamed to `layout-*` once complete (bpffs refuses names
/// with a dot).
const STAGING_PREFIX: &str = "staging-";

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(
        "{path} is not on a bpf filesystem (the host mounts one with `mount -t bpf bpf /sys/fs/bpf`; \
         the DaemonSet mounts the host's /sys/fs/bpf)"
    )]
    NotBpffs { path: PathBuf },
    #[error("creating {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("removing {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("renaming {from} to {to}: {source}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("another agent process holds {path} (waited {waited:?}): two agents must not share one recorder")]
    Busy { path: PathBuf, waited: Duration },
    #[error("locking {path}: {source}")]
    Lock { path: PathBuf, source: nix::Error },
}

impl PinError {
    pub fn label(&self) -> &'static str {
        match self {
            PinError::NotBpffs { .. } => "not_bpffs",
            PinError::Create { .. } => "create",
            PinError::Read { .. } => "read",
            PinError::Remove { .. } => "remove",
            PinError::Rename { .. } => "rename",
            PinError::Busy { .. } => "busy",
            PinError::Lock { .. } => "lock",
        }
    }
}

/// The pin directory, locked (an exclusive `flock` on the directory) for as long as this lives.
#[derive(Debug)]
pub struct PinDir {
    root: PathBuf,
    _lock: Flock<File>,
}

impl PinDir {
    /// Creates `root` if missing (it must be on bpffs) and locks it, waiting up to `wait` for an
    /// agent process that still holds it (a rollout's old pod, still shutting down).
    pub fn open(root: &Path, wait: Duration) -> Result<PinDir, PinError> {
        // The first existing ancestor decides on which filesystem the directories would be made.
        let anchor = root
            .ancestors()
            .find(|p| p.exists())
            .unwrap_or(Path::new("/"));
        if !on_bpffs(anchor) {
            return Err(PinError::NotBpffs {
                path: anchor.to_path_buf(),
            });
        }
        std::fs::create_dir_all(root).map_err(|source| PinError::Create {
            path: root.to_path_buf(),
            source,
        })?;
        let started = Instant::now();
        let mut file = File::open(root).map_err(|source| PinError::Read {
            path: root.to_path_buf(),
            source,
        })?;
        let lock = loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => break lock,
                Err((f, nix::Error::EWOULDBLOCK)) => {
                    if started.elapsed() >= wait {
                        return Err(PinError::Busy {
                            path: root.to_path_buf(),
                            waited: started.elapsed(),
                        });
                    }
                    file = f;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((_, source)) => {
                    return Err(PinError::Lock {
                        path: root.to_path_buf(),
                        source,
                    })
                }
            }
        };
        Ok(PinDir {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    /// Where the layout `version` is pinned.
    pub fn layout(&self, version: &str) -> PathBuf {
        self.root.join(format!("{LAYOUT_PREFIX}{version}"))
    }

    /// A fresh directory to pin a layout into before [`PinDir::publish`].
    pub fn staging(&self) -> Result<PathBuf, PinError> {
        let path = self
            .root
            .join(format!("{STAGING_PREFIX}{}", std::process::id()));
        if path.exists() {
            remove_tree(&path)?;
        }
        std::fs::create_dir(&path).map_err(|source| PinError::Create {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Makes a completely pinned staging directory the layout `version`, in one rename: a crash
    /// while pinning never leaves a half-pinned layout for the next agent to adopt.
    pub fn publish(&self, staging: &Path, version: &str) -> Result<PathBuf, PinError> {
        let to = self.layout(version);
        std::fs::rename(staging, &to).map_err(|source| PinError::Rename {
            from: staging.to_path_buf(),
            to: to.clone(),
            source,
        })?;
        Ok(to)
    }

    /// Everything in the pin directory but the layout `keep`: other layouts (another version of
    /// the agent, another ring size) and staging leftovers of a crashed agent.
    pub fn others(&self, keep: &str) -> Result<Vec<PathBuf>, PinError> {
        let keep = format!("{LAYOUT_PREFIX}{keep}");
        let entries = std::fs::read_dir(&self.root).map_err(|source| PinError::Read {
            path: self.root.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| PinError::Read {
                path: self.root.clone(),
                source,
            })?;
            if entry.file_name().to_string_lossy() != keep {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The layout version a `layout-*` directory holds, if it is one.
pub fn layout_version_of(path: &Path) -> Option<&str> {
    path.file_name()?.to_str()?.strip_prefix(LAYOUT_PREFIX)
}

/// Unpins everything under `path` (files are pins: maps and links) and removes the directories.
/// Once the last pin and the last open fd of a link are gone, the kernel detaches its program;
/// a map goes with its last reference.
pub fn remove_tree(path: &Path) -> Result<(), PinError> {
    let meta = std::fs::symlink_metadata(path).map_err(|source| PinError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|source| PinError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| PinError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            remove_tree(&entry.path())?;
        }
        std::fs::remove_dir(path)
    } else {
        std::fs::remove_file(path)
    }
    .map_err(|source| PinError::Remove {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether `path` is on a bpf filesystem (only there can BPF objects be pinned).
pub fn on_bpffs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC)
}
