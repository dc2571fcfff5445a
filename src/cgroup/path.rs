//! Pure: an OCI spec's `linux.cgroupsPath` -> the cgroup path runc created, and that path -> a
//! directory below a mount. No I/O.
//!
//! runc has two drivers and the path means different things to each:
//! - cgroupfs: a plain path (`/k8s.io/<id>`, `/kubepods/burstable/pod<uid>/<id>`), cleaned the way
//!   Go's `filepath.Clean` does it after rooting it at `/` (runc's `utils.CleanPath`);
//! - systemd: `slice:prefix:name`, which runc turns into `<expanded slice>/<prefix>-<name>.scope`
//!   (see runc `libcontainer/cgroups/systemd`: `ExpandSlice`, `getUnitName`). An empty slice is
//!   `system.slice`; a name ending in `.slice` is used as the unit itself.
//!
//! Which driver made a path is runtime configuration this agent does not see; a `:` in the path is
//! taken to mean systemd, since cgroupfs paths written by containerd and kubelet never have one.

use super::Error;

const SLICE: &str = ".slice";
const DEFAULT_SLICE: &str = "system.slice";

/// See [`super::CgroupFs::resolve_spec_path`].
pub fn resolve_spec_path(cgroups_path: &str) -> Result<String, Error> {
    if cgroups_path.is_empty() {
        return Err(invalid(cgroups_path, "empty cgroupsPath"));
    }
    if cgroups_path.contains(':') {
        systemd_path(cgroups_path)
    } else {
        Ok(clean(cgroups_path))
    }
}

fn invalid(path: &str, reason: &'static str) -> Error {
    Error::InvalidPath {
        path: path.to_string(),
        reason,
    }
}

fn systemd_path(cgroups_path: &str) -> Result<String, Error> {
    let mut parts = cgroups_path.split(':');
    let (Some(slice), Some(prefix), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(
            cgroups_path,
            "systemd cgroupsPath must be \"slice:prefix:name\"",
        ));
    };
    // runc does not check these, systemd refuses them; we refuse them so the result cannot point
    // outside the slice.
    if prefix.contains('/') || name.contains('/') || name.is_empty() || name == ".." {
        return Err(invalid(
            cgroups_path,
            "unit prefix and name must be plain names",
        ));
    }
    let slice = if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    let mut path =
        expand_slice(slice).ok_or_else(|| invalid(cgroups_path, "invalid slice name"))?;
    if !path.ends_with('/') {
        path.push('/');
    }
    if name.ends_with(SLICE) {
        path.push_str(name);
    } else {
        path.push_str(prefix);
        path.push('-');
        path.push_str(name);
        path.push_str(".scope");
    }
    Ok(path)
}

/// systemd's slice nesting: `a-b-c.slice` is `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the
/// root. `None` for names systemd rejects (no `.slice` suffix, `/`, empty dash components).
pub fn expand_slice(slice: &str) -> Option<String> {
    if slice.contains('/') {
        return None;
    }
    let stem = slice.strip_suffix(SLICE)?;
    if stem == "-" {
        return Some("/".to_string());
    }
    let mut path = String::with_capacity(slice.len() * 3);
    let mut end = 0;
    for component in stem.split('-') {
        if component.is_empty() {
            return None;
        }
        end += component.len();
        path.push('/');
        path.push_str(&stem[..end]);
        path.push_str(SLICE);
        end += 1; // the dash
    }
    Some(path)
}

/// Lexical clean of a path rooted at `/`: repeated slashes and `.` dropped, `..` pops a component
/// and stops at the root. Mirrors what runc does to a cgroupfs path before it creates it.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for part in &parts {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The part of a cgroup path below a mount whose root cgroup is `mount_root`, without a leading
/// `/`, ready to join onto the mount point. Rejects relative paths and `..` so a path can never
/// leave the cgroup filesystem. Allocation-free: it runs in the read path at exit.
pub fn below_mount<'a>(path: &'a str, mount_root: &str) -> Result<&'a str, Error> {
    if !path.starts_with('/') {
        return Err(invalid(path, "cgroup path must be absolute"));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(invalid(path, "cgroup path must not contain \"..\""));
    }
    // In a cgroup namespace (or a bind of a sub-cgroup) the mount shows the hierarchy from
    // `mount_root` down; spec paths are host paths, so strip that prefix when it applies.
    let root = mount_root.trim_end_matches('/');
    let rest = match path.strip_prefix(root) {
        Some(rest) if !root.is_empty() && (rest.is_empty() || rest.starts_with('/')) => rest,
        _ => path,
    };
    Ok(rest.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_slice_path_expands_like_runc() {
        assert_eq!(
            resolve_spec_path("kubepods-burstable-pod1234.slice:cri-containerd:abcd").unwrap(),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-abcd.scope"
        );
        assert_eq!(
            resolve_spec_path("system.slice:docker:1234").unwrap(),
            "/system.slice/docker-1234.scope"
        );
    }

    #[test]
    fn systemd_empty_slice_means_system_slice() {
        assert_eq!(
            resolve_spec_path(":runc:abc").unwrap(),
            "/system.slice/runc-abc.scope"
        );
    }

    #[test]
    fn systemd_name_ending_in_slice_is_the_unit_itself() {
        assert_eq!(
            resolve_spec_path("kubepods.slice:ignored:kubepods-besteffort.slice").unwrap(),
            "/kubepods.slice/kubepods-besteffort.slice"
        );
    }

    #[test]
    fn systemd_root_slice_is_the_root() {
        assert_eq!(resolve_spec_path("-.slice:p:n").unwrap(), "/p-n.scope");
        assert_eq!(expand_slice("-.slice").as_deref(), Some("/"));
    }

    #[test]
    fn systemd_invalid_slices_are_rejected_like_runc() {
        for slice in [
            "test--a.slice",
            "-test.slice",
            "test-.slice",
            "a/b.slice",
            ".slice",
            "foo",
        ] {
            assert_eq!(expand_slice(slice), None, "{slice}");
            let err = resolve_spec_path(&format!("{slice}:p:n")).unwrap_err();
            assert!(matches!(err, Error::InvalidPath { .. }), "{slice}: {err}");
        }
    }

    #[test]
    fn systemd_path_needs_exactly_three_parts() {
        for bad in [
            "a.slice:b",
            "a.slice:b:c:d",
            "a.slice:p:",
            "a.slice:p:..",
            "a.slice:p/x:n",
        ] {
            assert!(
                matches!(resolve_spec_path(bad), Err(Error::InvalidPath { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn cgroupfs_path_is_made_absolute_and_cleaned_like_runc() {
        assert_eq!(resolve_spec_path("/k8s.io/abc").unwrap(), "/k8s.io/abc");
        assert_eq!(
            resolve_spec_path("kubepods/burstable/podX/abc").unwrap(),
            "/kubepods/burstable/podX/abc"
        );
        assert_eq!(resolve_spec_path("//k8s.io/./abc/").unwrap(), "/k8s.io/abc");
        // `..` cannot climb above the root, as with Go's filepath.Clean("/" + p).
        assert_eq!(resolve_spec_path("/a/../../../b").unwrap(), "/b");
        assert_eq!(resolve_spec_path("/").unwrap(), "/");
    }

    #[test]
    fn empty_cgroups_path_is_rejected() {
        assert!(matches!(
            resolve_spec_path(""),
            Err(Error::InvalidPath { .. })
        ));
    }

    #[test]
    fn dotdot_path_cannot_escape_the_mount() {
        assert!(below_mount("/k8s.io/../../etc", "/").is_err());
        assert!(below_mount("k8s.io/abc", "/").is_err());
        assert_eq!(below_mount("/k8s.io/abc", "/").unwrap(), "k8s.io/abc");
        assert_eq!(below_mount("/", "/").unwrap(), "");
    }

    #[test]
    fn namespaced_mount_root_is_stripped() {
        assert_eq!(
            below_mount("/kubepods/pod1/abc", "/kubepods").unwrap(),
            "pod1/abc"
        );
        assert_eq!(below_mount("/kubepods", "/kubepods/").unwrap(), "");
        // Not a component prefix: kept whole.
        assert_eq!(
            below_mount("/kubepods2/abc", "/kubepods").unwrap(),
            "kubepods2/abc"
        );
    }
}
