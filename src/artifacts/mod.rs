//! Post-mortem files from a dead container's filesystem: a source of the report's `artifacts`
//! section. Runtimes write them into the container (`erl_crash.dump`, `hs_err_pid<pid>.log`,
//! cores, files their crash message names) and they die with its writable layer.
//!
//! Two windows reach that layer after the exit (`docs/artifacts.md` has their measured lengths):
//! the task's root filesystem, mounted at the bundle's `rootfs` until the task is deleted (the
//! CRI deletes it 20-100 ms after the exit), and the snapshot's upper directory, which holds every
//! file the container wrote until the container itself is removed. The agent reads the first at
//! the init's death (`agent/artifacts.rs`) and the second for what it learns later (paths the
//! captured output names).
//!
//! - `find.rs` (pure): which paths to look at;
//! - `keylines.rs` (pure): the lines of a file that matter;
//! - this file: the reads, confined to the root by [`crate::rootfs::Root`] (`RESOLVE_IN_ROOT`:
//!   `..` and symlinks stay inside), bounded by [`Bounds`].

pub mod find;
pub mod keylines;

use std::path::Path;

pub use find::Plan;

use crate::model::{ArtifactKind, SkippedArtifact};
use crate::rootfs::Root;

/// How much is read of a container's files for one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Bytes kept of one file (its start; the rest is cut and the file marked truncated).
    pub max_file_bytes: u64,
    /// Bytes kept of all files of one exit.
    pub max_total_bytes: u64,
    /// Files kept of one exit.
    pub max_files: usize,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds {
            max_file_bytes: 8 << 20,
            max_total_bytes: 16 << 20,
            max_files: 8,
        }
    }
}

/// Where the files were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The task's root filesystem at the bundle (only while the task exists).
    BundleRootfs,
    /// The container snapshot's upper directory (the files the container wrote).
    SnapshotUpper,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::BundleRootfs => "bundle_rootfs",
            Source::SnapshotUpper => "snapshot_upper",
        }
    }
}

/// One file read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Its absolute path in the container.
    pub path: String,
    pub kind: ArtifactKind,
    pub size: u64,
    /// Its first bytes, at most [`Bounds::max_file_bytes`].
    pub data: Vec<u8>,
}

impl Collected {
    pub fn truncated(&self) -> bool {
        (self.data.len() as u64) < self.size
    }
}

/// What one look into a container's filesystem found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collection {
    pub files: Vec<Collected>,
    pub skipped: Vec<SkippedArtifact>,
    pub source: Option<Source>,
}

impl Collection {
    fn has(&self, path: &str) -> bool {
        self.files.iter().any(|f| f.path == path) || self.skipped.iter().any(|s| s.path == path)
    }

    fn kept_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.data.len() as u64).sum()
    }

    /// Adds what `later` found that this one has not (the same file is kept once).
    pub fn merge(&mut self, later: Collection) {
        self.source = self.source.or(later.source);
        for f in later.files {
            if !self.has(&f.path) {
                self.files.push(f);
            }
        }
        for s in later.skipped {
            if !self.has(&s.path) {
                self.skipped.push(s);
            }
        }
    }
}

/// Opens a root to collect from: `None` when it is not there (or is an empty mount point: the
/// task's root filesystem after its delete).
pub fn open_root(path: &Path) -> Option<Root> {
    let root = Root::open(path, false).ok()?;
    (!root.is_empty()).then_some(root)
}

/// Reads the files `plan` points at in `root`, skipping those `already` has. `keep_memory_images`:
/// cores and heap dumps are kept (they hold whatever the process held, secrets included, and
/// cannot be redacted); otherwise they are listed as skipped. Blocking: bounded reads.
pub fn collect(
    root: &Root,
    source: Source,
    plan: &Plan,
    bounds: &Bounds,
    keep_memory_images: bool,
    already: &Collection,
) -> Collection {
    let mut candidates = plan.fixed();
    for dir in plan.listed_dirs() {
        for name in root.list(&dir) {
            if let Some(kind) = find::kind_of_listed(&dir, &name, &plan.cwd) {
                candidates.push((format!("{}/{name}", dir.trim_end_matches('/')), kind));
            }
        }
    }
    for named in &plan.named {
        candidates.push((plan.absolute(named), find::kind_of_named(named)));
    }
    let mut out = Collection {
        source: Some(source),
        ..Default::default()
    };
    let mut kept = already.kept_bytes();
    let mut count = already.files.len();
    for (path, kind) in candidates {
        if already.has(&path) || out.has(&path) {
            continue;
        }
        let Some(size) = root.regular_size(&path) else {
            continue;
        };
        let skip = |reason: String| SkippedArtifact {
            path: path.clone(),
            size_bytes: Some(size),
            reason,
        };
        if kind.is_memory_image() && !keep_memory_images {
            out.skipped.push(skip(
                "a memory image holds whatever the process held, credentials included: kept only \
                 with --no-redact-artifacts"
                    .into(),
            ));
            continue;
        }
        if count >= bounds.max_files {
            out.skipped.push(skip(format!(
                "over the bound of {} files",
                bounds.max_files
            )));
            continue;
        }
        let room = bounds.max_total_bytes.saturating_sub(kept);
        if room == 0 {
            out.skipped.push(skip(format!(
                "over the bound of {} per report",
                crate::units::bytes(bounds.max_total_bytes)
            )));
            continue;
        }
        match root.read_regular(&path, bounds.max_file_bytes.min(room)) {
            Ok(Some((size, data))) => {
                kept += data.len() as u64;
                count += 1;
                out.files.push(Collected {
                    path,
                    kind,
                    size,
                    data,
                });
            }
            Ok(None) => {}
            Err(e) => out.skipped.push(skip(format!("reading: {e}"))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn root_with(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        for (path, data) in files {
            let p = dir.path().join(path.trim_start_matches('/'));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, data).unwrap();
        }
        let root = Root::open(dir.path(), false).unwrap();
        (dir, root)
    }

    #[test]
    fn known_files_and_named_ones_are_collected_within_bounds() {
        let (_d, root) = root_with(&[
            ("/srv/erl_crash.dump", b"Slogan: boom\n"),
            ("/tmp/hs_err_pid7.log", b"# SIGSEGV"),
            ("/srv/core.7", b"\x7fELF core"),
            ("/data/big.txt", &[b'a'; 100]),
            ("/srv/notes.txt", b"not an artifact"),
        ]);
        let mut plan = Plan::new(Some("/srv"), []);
        plan.named = vec!["/data/big.txt".into()];
        let bounds = Bounds {
            max_file_bytes: 40,
            ..Bounds::default()
        };
        let c = collect(
            &root,
            Source::BundleRootfs,
            &plan,
            &bounds,
            false,
            &Collection::default(),
        );
        let paths: Vec<_> = c.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/srv/erl_crash.dump",
                "/tmp/hs_err_pid7.log",
                "/data/big.txt"
            ]
        );
        let big = &c.files[2];
        assert_eq!((big.size, big.data.len(), big.truncated()), (100, 40, true));
        assert_eq!(c.skipped.len(), 1, "{:?}", c.skipped);
        assert_eq!(c.skipped[0].path, "/srv/core.7");
        assert!(c.skipped[0].reason.contains("--no-redact-artifacts"));

        // A second look adds only what is new.
        fs::write(_d.path().join("tmp/hs_err_pid9.log"), "# SIGBUS").unwrap();
        let again = collect(&root, Source::SnapshotUpper, &plan, &bounds, false, &c);
        let paths: Vec<_> = again.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/tmp/hs_err_pid9.log"]);
        assert!(again.skipped.is_empty());
    }

    #[test]
    fn bounds_on_count_and_total_skip_the_rest() {
        let (_d, root) = root_with(&[
            ("/a.dump", &[1; 30]),
            ("/b.dump", &[2; 30]),
            ("/c.dump", &[3; 30]),
        ]);
        let mut plan = Plan::new(Some("/"), []);
        plan.named = vec!["/a.dump".into(), "/b.dump".into(), "/c.dump".into()];
        let bounds = Bounds {
            max_file_bytes: 100,
            max_total_bytes: 50,
            max_files: 8,
        };
        let c = collect(
            &root,
            Source::BundleRootfs,
            &plan,
            &bounds,
            false,
            &Collection::default(),
        );
        assert_eq!(c.files.len(), 2);
        assert_eq!(c.files[1].data.len(), 20, "the second gets the room left");
        assert!(
            c.skipped[0].reason.contains("per report"),
            "{:?}",
            c.skipped
        );
        let bounds = Bounds {
            max_files: 1,
            ..Bounds::default()
        };
        let c = collect(
            &root,
            Source::BundleRootfs,
            &plan,
            &bounds,
            false,
            &Collection::default(),
        );
        assert_eq!(c.files.len(), 1);
        assert_eq!(c.skipped.len(), 2);
    }

    #[test]
    fn symlinks_and_dot_dots_stay_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "node secret").unwrap();
        let (d, root) = root_with(&[]);
        std::os::unix::fs::symlink(
            outside.path().join("secret"),
            d.path().join("erl_crash.dump"),
        )
        .unwrap();
        let mut plan = Plan::new(Some("/"), []);
        plan.named = vec![format!("../../../../..{}/secret", outside.path().display())];
        let c = collect(
            &root,
            Source::BundleRootfs,
            &plan,
            &Bounds::default(),
            true,
            &Collection::default(),
        );
        assert!(c.files.is_empty(), "{:?}", c.files);
    }

    #[test]
    fn fifos_and_directories_are_not_read() {
        let (d, root) = root_with(&[]);
        nix::unistd::mkfifo(
            &d.path().join("erl_crash.dump"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        fs::create_dir(d.path().join("core")).unwrap();
        let c = collect(
            &root,
            Source::BundleRootfs,
            &Plan::new(Some("/"), []),
            &Bounds::default(),
            true,
            &Collection::default(),
        );
        assert!(c.files.is_empty() && c.skipped.is_empty(), "{c:?}");
    }
}
