//! The container's own filesystem, read at create time for the program it is to run: a source
//! of the report's `entrypoint` section. An exec that fails (a glibc binary in a musl image, a
//! script whose `#!` interpreter is missing, an ELF for another machine, a file without an execute
//! bit) leaves the container's root mounted for only 20-100 ms after the exit, too short to read
//! it then; at `/tasks/create` it is there, and the program has not run yet.
//!
//! - `command.rs` (pure): the OCI spec's `process`, the programs a command runs, `PATH`;
//! - `elf.rs` (pure): ELF headers, the `PT_INTERP` loader, `DT_NEEDED`, `#!` lines;
//! - `inspect.rs`: the reads, confined to the root with `openat2(RESOLVE_IN_ROOT)`;
//! - this file: which root to read (the process's, else the bundle's) and the errors.
//!
//! It says what is there; what that means for an exit is `diagnose`'s (`exec_failed`).

pub mod command;
pub mod elf;
mod inspect;

use std::path::{Path, PathBuf};

pub use command::Process;
pub use inspect::{inspect, Root};

use crate::model::EntrypointReport;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("reading {path}: {source}")]
    Spec {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    SpecJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("opening the container's root ({process}: {process_error}; {bundle}: {bundle_error})")]
    Root {
        process: PathBuf,
        process_error: nix::errno::Errno,
        bundle: PathBuf,
        bundle_error: String,
    },
}

/// Where the OCI bundle of a `/tasks/create` event is, as the agent sees it: the event's node
/// path, else the same path found below the directory of the agent's containerd socket (in a
/// DaemonSet the node's containerd directory is mounted there, possibly from another node path:
/// `/run/k3s/containerd` at `/run/containerd`). The first with a `config.json`.
pub fn find_bundle(bundle: &Path, containerd_dir: &Path) -> Option<PathBuf> {
    let parts: Vec<_> = bundle.components().skip(1).collect();
    // The bundle is at least `<task dir>/<namespace>/<id>`.
    let rebased = (0..parts.len().saturating_sub(2)).map(|skip| {
        parts[skip..]
            .iter()
            .fold(containerd_dir.to_path_buf(), |p, c| p.join(c))
    });
    std::iter::once(bundle.to_path_buf())
        .chain(rebased)
        .find(|b| b.join("config.json").is_file())
}

impl RootfsError {
    /// Stable label for the collection-error metric.
    pub fn label(&self) -> &'static str {
        match self {
            RootfsError::Spec { .. } | RootfsError::SpecJson { .. } => "entrypoint_spec",
            RootfsError::Root { .. } => "entrypoint_root",
        }
    }
}

/// The OCI spec (`config.json`) of a bundle. Blocking: one small read.
pub fn read_spec(bundle: &Path) -> Result<serde_json::Value, RootfsError> {
    let spec_path = bundle.join("config.json");
    let text = std::fs::read(&spec_path).map_err(|source| RootfsError::Spec {
        path: spec_path.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| RootfsError::SpecJson {
        path: spec_path,
        source,
    })
}

/// The cgroup path the spec gives the container (`linux.cgroupsPath`), as written.
pub fn spec_cgroups_path(spec: &serde_json::Value) -> Option<&str> {
    spec["linux"]["cgroupsPath"]
        .as_str()
        .filter(|p| !p.is_empty())
}

/// Inspects the entrypoint of the container whose OCI bundle is `bundle` (its spec read by
/// [`read_spec`]) and whose init process (still `runc init`, before its exec) is `pid`: through
/// `/proc/<pid>/root` (the container's own view, volumes and `noexec` mounts included), else the
/// bundle's root filesystem. `Ok(None)` for a CRI sandbox. Blocking: a few small reads.
pub fn inspect_container(
    proc_root: &Path,
    bundle: &Path,
    spec: &serde_json::Value,
    pid: u32,
) -> Result<Option<EntrypointReport>, RootfsError> {
    let process = Process::from_spec(spec);
    if process.is_sandbox || process.args.is_empty() {
        return Ok(None);
    }
    let process_root = proc_root.join(pid.to_string()).join("root");
    let process_error = match Root::open(&process_root, true) {
        Ok(root) => return Ok(Some(inspect(&root, "process_root", &process))),
        Err(e) => e,
    };
    // `root.path` is relative to the bundle unless absolute; containerd writes `rootfs`.
    let rootfs = bundle.join(spec["root"]["path"].as_str().unwrap_or("rootfs"));
    let bundle_error = match Root::open(&rootfs, false) {
        // An empty directory is a mount point the root filesystem's mount did not reach (a
        // bind of the node's containerd directory without HostToContainer propagation).
        Ok(root) if root.is_empty() => "empty: the root filesystem is not mounted here".into(),
        Ok(root) => return Ok(Some(inspect(&root, "bundle_rootfs", &process))),
        Err(e) => e.to_string(),
    };
    Err(RootfsError::Root {
        process: process_root,
        process_error,
        bundle: rootfs,
        bundle_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn inspect_bundle(
        proc_root: &Path,
        bundle: &Path,
        pid: u32,
    ) -> Result<Option<EntrypointReport>, RootfsError> {
        read_spec(bundle).and_then(|spec| inspect_container(proc_root, bundle, &spec, pid))
    }

    #[test]
    fn the_spec_names_the_cgroup() {
        let spec = serde_json::json!({"linux": {"cgroupsPath": "/kubepods/pod1/abc"}});
        assert_eq!(spec_cgroups_path(&spec), Some("/kubepods/pod1/abc"));
        assert_eq!(
            spec_cgroups_path(&serde_json::json!({"linux": {"cgroupsPath": ""}})),
            None
        );
        assert_eq!(spec_cgroups_path(&serde_json::json!({})), None);
    }

    #[test]
    fn bundle_rootfs_is_read_when_the_process_is_gone() {
        let bundle = tempfile::tempdir().unwrap();
        let proc_root = tempfile::tempdir().unwrap();
        fs::write(
            bundle.path().join("config.json"),
            r#"{"process": {"args": ["/app/run.py"], "cwd": "/"}, "root": {"path": "rootfs"}}"#,
        )
        .unwrap();
        fs::create_dir_all(bundle.path().join("rootfs/app")).unwrap();
        fs::write(
            bundle.path().join("rootfs/app/run.py"),
            "#!/usr/bin/python3\n",
        )
        .unwrap();
        let r = inspect_bundle(proc_root.path(), bundle.path(), 4242)
            .unwrap()
            .unwrap();
        assert_eq!(r.read_from.as_deref(), Some("bundle_rootfs"));
        assert_eq!(
            r.executables[0].interpreter.as_deref(),
            Some("/usr/bin/python3")
        );
        assert_eq!(
            r.executables[0].noexec_mount, None,
            "unknown from the bundle"
        );

        // Through a live process's root, the same file and its mount's options.
        fs::create_dir_all(proc_root.path().join("4242")).unwrap();
        std::os::unix::fs::symlink(
            bundle.path().join("rootfs"),
            proc_root.path().join("4242/root"),
        )
        .unwrap();
        let r = inspect_bundle(proc_root.path(), bundle.path(), 4242)
            .unwrap()
            .unwrap();
        assert_eq!(r.read_from.as_deref(), Some("process_root"));
        assert_eq!(r.executables[0].noexec_mount, Some(false));
    }

    #[test]
    fn bundle_is_found_below_the_mounted_containerd_dir() {
        let node = Path::new("/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/abc");
        let mounted = tempfile::tempdir().unwrap();
        assert_eq!(find_bundle(node, mounted.path()), None);
        let inside = mounted
            .path()
            .join("io.containerd.runtime.v2.task/k8s.io/abc");
        fs::create_dir_all(&inside).unwrap();
        fs::write(inside.join("config.json"), "{}").unwrap();
        assert_eq!(find_bundle(node, mounted.path()), Some(inside));
        // The event's own path first, when the agent sees the node's paths.
        let own = tempfile::tempdir().unwrap();
        fs::write(own.path().join("config.json"), "{}").unwrap();
        assert_eq!(
            find_bundle(own.path(), mounted.path()).as_deref(),
            Some(own.path())
        );
    }

    #[test]
    fn an_unmounted_bundle_rootfs_is_an_error_not_a_missing_program() {
        let bundle = tempfile::tempdir().unwrap();
        fs::write(
            bundle.path().join("config.json"),
            r#"{"process": {"args": ["/app/x"]}}"#,
        )
        .unwrap();
        fs::create_dir(bundle.path().join("rootfs")).unwrap();
        let e = inspect_bundle(Path::new("/nonexistent"), bundle.path(), 1).unwrap_err();
        assert_eq!(e.label(), "entrypoint_root");
        assert!(e.to_string().contains("not mounted"), "{e}");
    }

    #[test]
    fn missing_spec_and_root_are_labelled_errors() {
        let bundle = tempfile::tempdir().unwrap();
        let e = inspect_bundle(Path::new("/nonexistent"), bundle.path(), 1).unwrap_err();
        assert_eq!(e.label(), "entrypoint_spec");
        assert!(e.to_string().contains("config.json"), "{e}");
        fs::write(bundle.path().join("config.json"), "{").unwrap();
        let e = inspect_bundle(Path::new("/nonexistent"), bundle.path(), 1).unwrap_err();
        assert_eq!(e.label(), "entrypoint_spec");
        fs::write(
            bundle.path().join("config.json"),
            r#"{"process": {"args": ["x"]}}"#,
        )
        .unwrap();
        let e = inspect_bundle(Path::new("/nonexistent"), bundle.path(), 1).unwrap_err();
        assert_eq!(e.label(), "entrypoint_root");
        assert!(e.to_string().contains("/nonexistent/1/root"), "{e}");
    }

    #[test]
    fn sandboxes_are_not_inspected() {
        let bundle = tempfile::tempdir().unwrap();
        fs::write(
            bundle.path().join("config.json"),
            r#"{"process": {"args": ["/pause"]}, "annotations": {"io.kubernetes.cri.container-type": "sandbox"}}"#,
        )
        .unwrap();
        let r = inspect_bundle(Path::new("/nonexistent"), bundle.path(), 1).unwrap();
        assert!(r.is_none());
    }
}
