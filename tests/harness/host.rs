//! Host inspection and brute-force cleanup: processes found by command line, mounts under a
//! directory, cgroup directories in every hierarchy, and the leak check built on them.
//!
//! Everything here is synchronous and tolerant: teardown runs in `Drop`, possibly while a test is
//! panicking inside a tokio runtime, so it may neither block on async work nor panic. Failures are
//! returned as human-readable lines for the caller to print or assert on.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// A process seen in `/proc`, zombies excluded (they hold no resources and PID 1 reaps them).
#[derive(Debug, Clone)]
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct HostProcess {
    pub pid: u32,
    pub argv: Vec<String>,
}

/// Live (non-zombie) processes whose argv satisfies `pred`.
pub fn processes_where(pred: impl Fn(&[String]) -> bool) -> Vec<HostProcess> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if is_zombie_or_gone(pid) {
            continue;
        }
        let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        if !argv.is_empty() && pred(&argv) {
            found.push(HostProcess { pid, argv });
        }
    }
    found
}

/// True when the pid no longer exists or has exited and waits to be reaped.
pub fn is_zombie_or_gone(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // The state follows the parenthesised command name, which may itself contain spaces.
    match stat.rfind(')') {
        Some(i) => matches!(
            stat[i + 1..].trim_start().chars().next(),
            Some('Z' | 'X') | None
        ),
        None => true,
    }
}

/// containerd shims (`containerd-shim-runc-v2 ... -address SOCKET`) serving the daemon at `socket`.
pub fn shims_of(socket: &Path) -> Vec<HostProcess> {
    let socket = socket.to_string_lossy().into_owned();
    processes_where(|argv| {
        argv[0].contains("containerd-shim")
            && argv
                .windows(2)
                .any(|w| w[0] == "-address" && w[1] == socket)
    })
}

/// containerd daemons started with a config file under `dir`.
pub fn daemons_under(dir: &Path) -> Vec<HostProcess> {
    let dir = dir.to_string_lossy().into_owned();
    processes_where(|argv| {
        argv[0].ends_with("containerd") && argv.iter().any(|a| a.starts_with(dir.as_str()))
    })
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; a stale pid yields ESRCH, ignored here.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// SIGKILLs `pids` and waits (up to 5 s) until each is gone or a zombie.
pub fn kill_and_wait(pids: &[u32]) -> Vec<String> {
    for pid in pids {
        signal(*pid, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|p| !is_zombie_or_gone(*p))
            .collect();
        if alive.is_empty() {
            return Vec::new();
        }
        if Instant::now() > deadline {
            return vec![format!(
                "processes still alive 5 s after SIGKILL: {alive:?}"
            )];
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// One line of `/proc/self/mountinfo`, reduced to what cleanup needs.
#[derive(Debug, Clone)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub super_options: String,
}

/// The mount table of this process's mount namespace.
pub fn mounts() -> Vec<MountEntry> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    // id parent major:minor root mount_point options [optional fields...] - fstype source super_opts
    let (before, after) = line.split_once(" - ")?;
    let mount_point = before.split(' ').nth(4)?;
    let mut after = after.split(' ');
    let fs_type = after.next()?.to_string();
    let _source = after.next();
    let super_options = after.next().unwrap_or_default().to_string();
    Some(MountEntry {
        mount_point: PathBuf::from(unescape_mount_path(mount_point)),
        fs_type,
        super_options,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mount_path(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let digit = |b: u8| u32::from(b - b'0');
            let v = digit(bytes[i + 1]) * 64 + digit(bytes[i + 2]) * 8 + digit(bytes[i + 3]);
            out.push(v as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    mounts()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Makes `dir` a shared mount (a recursive bind onto itself, then shared), as `/run` is on a
/// systemd node: mounts made below it later propagate to a container's `HostToContainer` bind of
/// it. The harness's cleanup (`unmount_all_under`) removes it.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn make_shared(dir: &Path) {
    let c_path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("a path");
    // SAFETY: c_path is a valid NUL-terminated string that outlives the calls; null fstype and
    // data are allowed for bind and propagation changes.
    unsafe {
        let bind = libc::mount(
            c_path.as_ptr(),
            c_path.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        );
        assert_eq!(
            bind,
            0,
            "bind-mounting {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
        let shared = libc::mount(
            std::ptr::null(),
            c_path.as_ptr(),
            std::ptr::null(),
            libc::MS_SHARED | libc::MS_REC,
            std::ptr::null(),
        );
        assert_eq!(
            shared,
            0,
            "making {} shared: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
}

/// Lazily unmounts everything at or below `dir`, deepest first, until nothing is left.
pub fn unmount_all_under(dir: &Path) -> Vec<String> {
    for _pass in 0..5 {
        let mut points = mounts_under(dir);
        if points.is_empty() {
            return Vec::new();
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for point in points {
            let Ok(c_path) = std::ffi::CString::new(point.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            // SAFETY: c_path is a valid NUL-terminated string that outlives the call.
            unsafe {
                libc::umount2(c_path.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
    mounts_under(dir)
        .into_iter()
        .map(|p| format!("still mounted: {}", p.display()))
        .collect()
}

/// Mount points of every cgroup hierarchy (v1 controllers, named v1 hierarchies, and cgroup2).
pub fn cgroup_roots() -> Vec<PathBuf> {
    mounts()
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .map(|m| m.mount_point)
        .collect()
}

/// Mount point of the v1 hierarchy carrying `controller` (e.g. `memory`, `pids`), if any.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn cgroup_v1_root(controller: &str) -> Option<PathBuf> {
    mounts()
        .into_iter()
        .find(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == controller))
        .map(|m| m.mount_point)
}

/// Existing directories for the cgroup `path` (absolute, like `/coroner-test-x`) across hierarchies.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    cgroup_roots()
        .into_iter()
        .map(|r| r.join(rel))
        .filter(|d| d.is_dir())
        .collect()
}

/// Removes the cgroup `path` and everything below it in every hierarchy, killing any process still
/// inside (a container whose shim was killed keeps running otherwise).
pub fn remove_cgroup_tree(path: &str) -> Vec<String> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return vec!["refusing to remove the root cgroup".to_string()];
    }
    let mut problems = Vec::new();
    for root in cgroup_roots() {
        let top = root.join(rel);
        if !top.is_dir() {
            continue;
        }
        let mut dirs = Vec::new();
        collect_dirs(&top, &mut dirs);
        // Children before parents.
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            if let Err(e) = rmdir_cgroup(&dir) {
                problems.push(format!("removing cgroup {}: {e}", dir.display()));
            }
        }
    }
    problems
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

fn rmdir_cgroup(dir: &Path) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => {
                // EBUSY: processes left inside. Kill them, give the kernel a moment, retry.
                if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                    for pid in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
                        signal(pid, libc::SIGKILL);
                    }
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Everything one private containerd instance may leave on the host, to check that teardown
/// removed it all. Taken with [`crate::harness::Containerd::footprint`] while the instance runs.
#[derive(Debug, Clone)]
pub struct Footprint {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub cgroup_parent: String,
    /// Shim sockets (`/run/containerd/s/<hash>`) the instance's shims were serving.
    pub shim_sockets: Vec<PathBuf>,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl Footprint {
    /// What is still there, one line per leftover; empty after a clean teardown.
    pub fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in daemons_under(&self.dir) {
            out.push(format!(
                "containerd still running: pid {} {:?}",
                p.pid, p.argv
            ));
        }
        for p in shims_of(&self.socket) {
            out.push(format!("shim still running: pid {} {:?}", p.pid, p.argv));
        }
        for m in mounts_under(&self.dir) {
            out.push(format!("still mounted: {}", m.display()));
        }
        for d in cgroup_dirs(&self.cgroup_parent) {
            out.push(format!("cgroup left: {}", d.display()));
        }
        for s in &self.shim_sockets {
            if s.exists() {
                out.push(format!("shim socket left: {}", s.display()));
            }
        }
        if self.dir.exists() {
            out.push(format!("directory left: {}", self.dir.display()));
        }
        out
    }
}

/// `<pid> <start time>` of this process: written into every instance and agent directory so the
/// cleanup script only removes leftovers whose owning test process is gone (pids get reused; the
/// pair does not).
pub fn owner_stamp() -> String {
    let stat = fs::read_to_string("/proc/self/stat").expect("reading /proc/self/stat");
    // Field 22 (starttime) counts from the first field; after the ")" that ends field 2 it is the 20th.
    let after_comm = &stat[stat.rfind(')').expect("stat has a comm") + 2..];
    let start = after_comm.split(' ').nth(19).expect("stat has a starttime");
    format!("{} {start}\n", std::process::id())
}

/// Last `n` lines of a text file, for failure messages.
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Where the host's bpf filesystem is mounted (the flight recorder's pins go below it).
#[allow(dead_code)] // each test binary uses a different part of the harness
pub const BPFFS: &str = "/sys/fs/bpf";

/// Mounts bpffs at [`BPFFS`] unless it is mounted (systemd does at boot; a bare VM may not).
#[allow(dead_code)]
pub fn ensure_bpffs() {
    let mounted = || {
        nix::sys::statfs::statfs(BPFFS)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC)
    };
    if mounted() {
        return;
    }
    let out = std::process::Command::new("mount")
        .args(["-t", "bpf", "bpf", BPFFS])
        .output()
        .unwrap_or_else(|e| panic!("running mount -t bpf: {e}"));
    assert!(
        mounted(),
        "bpffs is not mounted at {BPFFS} and mounting it failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes a pin directory tree: every pin (file) unlinked, then the directories.
#[allow(dead_code)]
pub fn remove_pins(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            remove_pins(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    fs::remove_dir(dir)
}
