//! Pure parsing of `/proc/<pid>/mountinfo` into cgroup mounts. Reading the file is the caller's job.
//!
//! Line format (proc(5)): `id parent major:minor root mount_point options [optional...] - fstype
//! source super_options`. A v1 hierarchy names its controllers in the super options
//! (`rw,cpu,cpuacct` for a co-mounted pair, `rw,name=systemd` for a named one); cgroup2 has the
//! fstype `cgroup2`. Paths escape space, tab, newline and backslash as `\ooo` octal.

use std::path::PathBuf;

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted (`/sys/fs/cgroup/memory`).
    pub point: PathBuf,
    /// The cgroup of the hierarchy that appears at `point`: `/` on the host, something deeper when
    /// the reader runs in a cgroup namespace or the mount is a bind of a sub-cgroup.
    pub root: String,
}

/// The cgroup mounts found in one mountinfo text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    pub unified: Option<Mount>,
    /// v1 controller (`memory`, `cpu`, ..., `name=systemd`) -> its mount. A co-mounted hierarchy
    /// (`cpu,cpuacct`) appears once per controller with the same mount.
    pub v1: Vec<(String, Mount)>,
}

/// Parses mountinfo text. Lines that are not cgroup mounts, or are malformed, are skipped: a
/// reader must not fail because of some other filesystem's odd line. When a hierarchy is mounted
/// more than once (bind mounts), the first line wins, as runc does.
pub fn parse(text: &str) -> Mounts {
    let mut mounts = Mounts::default();
    for line in text.lines() {
        let Some(entry) = Entry::parse(line) else {
            continue;
        };
        match entry.fstype {
            "cgroup2" if mounts.unified.is_none() => mounts.unified = Some(entry.mount()),
            "cgroup" => {
                for controller in entry.super_options.split(',').filter(|o| is_controller(o)) {
                    if !mounts.v1.iter().any(|(c, _)| c == controller) {
                        mounts.v1.push((controller.to_string(), entry.mount()));
                    }
                }
            }
            _ => {}
        }
    }
    mounts
}

/// Super options of a v1 cgroup mount that are controllers, as opposed to mount flags.
fn is_controller(option: &str) -> bool {
    match option {
        "" | "rw" | "ro" | "noprefix" | "clone_children" | "xattr" | "cpuset_v2_mode"
        | "favordynmods" | "none" => false,
        o if o.starts_with("name=") => true,
        // release_agent=..., and any future key=value flag.
        o => !o.contains('='),
    }
}

struct Entry<'a> {
    root: &'a str,
    point: &'a str,
    fstype: &'a str,
    super_options: &'a str,
}

impl<'a> Entry<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let mut fields = line.split(' ');
        let _id = fields.next()?;
        let _parent = fields.next()?;
        let _dev = fields.next()?;
        let root = fields.next()?;
        let point = fields.next()?;
        let _options = fields.next()?;
        // Zero or more optional fields (shared:N, master:N, ...) end at a lone "-".
        fields.by_ref().find(|f| *f == "-")?;
        let fstype = fields.next()?;
        let _source = fields.next()?;
        let super_options = fields.next().unwrap_or("");
        Some(Entry {
            root,
            point,
            fstype,
            super_options,
        })
    }

    fn mount(&self) -> Mount {
        Mount {
            point: PathBuf::from(unescape(self.point)),
            root: unescape(self.root),
        }
    }
}

/// Undoes the kernel's `\ooo` octal escaping of mountinfo paths. A backslash not followed by
/// three octal digits is kept as is.
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u16, |acc, d| acc * 8 + u16::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cgroup")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn v1_point<'a>(m: &'a Mounts, controller: &str) -> Option<&'a Path> {
        m.v1.iter()
            .find(|(c, _)| c == controller)
            .map(|(_, m)| m.point.as_path())
    }

    #[test]
    fn hybrid_host_has_separate_cpu_and_cpuacct_mounts() {
        // Captured on this project's kernel 6.18 VM: cpu and cpuacct are NOT co-mounted there.
        let m = parse(&fixture("mountinfo-hybrid.txt"));
        assert_eq!(
            v1_point(&m, "memory"),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(v1_point(&m, "cpu"), Some(Path::new("/sys/fs/cgroup/cpu")));
        assert_eq!(
            v1_point(&m, "cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpuacct"))
        );
        assert_eq!(
            v1_point(&m, "cpuset"),
            Some(Path::new("/sys/fs/cgroup/cpuset"))
        );
        assert_eq!(v1_point(&m, "pids"), Some(Path::new("/sys/fs/cgroup/pids")));
        assert_eq!(
            v1_point(&m, "name=systemd"),
            Some(Path::new("/sys/fs/cgroup/systemd"))
        );
        let unified = m.unified.expect("cgroup2 mount");
        assert_eq!(unified.point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(unified.root, "/");
        // Mount flags are not controllers.
        assert!(m.v1.iter().all(|(c, _)| c != "rw"));
    }

    #[test]
    fn v2_only_host_has_unified_mount_and_no_v1() {
        let m = parse(&fixture("mountinfo-v2.txt"));
        assert_eq!(
            m.unified.map(|u| u.point),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert!(m.v1.is_empty(), "{:?}", m.v1);
    }

    #[test]
    fn comma_joined_controllers_share_one_mount() {
        // Typical systemd v1 host (Ubuntu 18.04, CentOS 7).
        let text = "\
29 24 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
30 24 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,net_cls,net_prio
25 24 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
";
        let m = parse(text);
        let both = Path::new("/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(v1_point(&m, "cpu"), Some(both));
        assert_eq!(v1_point(&m, "cpuacct"), Some(both));
        assert_eq!(
            v1_point(&m, "net_prio"),
            Some(Path::new("/sys/fs/cgroup/net_cls,net_prio"))
        );
        assert_eq!(
            v1_point(&m, "name=systemd"),
            Some(Path::new("/sys/fs/cgroup/systemd"))
        );
        assert!(v1_point(&m, "xattr").is_none());
        assert!(m.unified.is_none());
    }

    #[test]
    fn escaped_space_in_mount_point_is_unescaped() {
        let text = "41 31 0:38 /a\\040b /host\\040root/sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let m = parse(text).unified.expect("cgroup2 mount");
        assert_eq!(m.point, Path::new("/host root/sys/fs/cgroup"));
        assert_eq!(m.root, "/a b");
    }

    #[test]
    fn unescape_handles_all_kernel_escapes_and_stray_backslashes() {
        assert_eq!(unescape("a\\040b\\011c\\012d\\134e"), "a b\tc\nd\\e");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
        assert_eq!(unescape("not\\999octal"), "not\\999octal");
        assert_eq!(unescape("\\"), "\\");
        assert_eq!(unescape("plain"), "plain");
    }

    #[test]
    fn optional_fields_before_separator_are_skipped() {
        let text = "35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid shared:9 master:1 propagate_from:2 - cgroup cgroup rw,memory\n";
        assert_eq!(
            v1_point(&parse(text), "memory"),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
    }

    #[test]
    fn first_mount_of_a_hierarchy_wins() {
        let text = "\
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
90 80 0:32 / /host/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
91 80 0:38 / /host/sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
        let m = parse(text);
        assert_eq!(
            v1_point(&m, "memory"),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            m.unified.map(|u| u.point),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
    }

    #[test]
    fn garbage_lines_are_ignored_not_panics() {
        let text = "\n-\n1 2\n1 2 3 4 5 6 - \n1 2 3 4 5 6 no-separator cgroup2\n\\\\\\ \u{0}\n\
                    7 8 9 / /ok rw - cgroup2 cgroup2 rw\n";
        let m = parse(text);
        assert_eq!(m.unified.map(|u| u.point), Some(PathBuf::from("/ok")));
    }

    #[test]
    fn no_cgroup_mounts_is_empty() {
        assert_eq!(
            parse("22 27 0:21 / /proc rw,relatime - proc proc rw\n"),
            Mounts::default()
        );
        assert_eq!(parse(""), Mounts::default());
    }
}
