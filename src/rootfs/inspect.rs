//! Reading a container's root filesystem without leaving it: every path is opened with
//! `openat2(RESOLVE_IN_ROOT)` against a directory fd of the root, so `..` and symlinks (absolute
//! ones too) resolve inside it, as they would for the container, and a hostile image cannot make
//! the agent read the node's files. Files are opened non-blocking (a FIFO named like a program
//! must not hang the agent) and only their first bytes and ELF headers are read.

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{fstatvfs, FsFlags};

use super::command::{clean, parent, Process, Wrapped};
use super::elf::{self, Elf, ReadAt};
use crate::model::{EntrypointReport, Executable, ExecutableKind};

/// Libraries followed at most through `DT_NEEDED` (a large program needs about 100).
const MAX_LIBRARIES: usize = 256;
/// `ld.so.conf` files read at most (includes followed).
const MAX_CONF_FILES: usize = 64;
/// A script's interpreter may itself be a script; the kernel follows 4 levels, this 2.
const MAX_DEPTH: usize = 2;

/// A container's root directory, held open.
pub struct Root {
    fd: OwnedFd,
    /// Known for `/proc/<pid>/root`, where fds see the container's mounts and their options.
    mounts_visible: bool,
}

impl Root {
    /// Opens `path` as the root (`/proc/<pid>/root` or a bundle's `rootfs`).
    pub fn open(path: &Path, mounts_visible: bool) -> Result<Root, Errno> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd, mounts_visible })
    }

    /// The root directory has no entries.
    pub fn is_empty(&self) -> bool {
        self.list("/").is_empty()
    }

    fn open_at(&self, path: &str, flags: OFlag) -> Result<File, Errno> {
        // openat2 refuses flags O_PATH ignores (O_NOCTTY among them).
        let extra = if flags.contains(OFlag::O_PATH) {
            OFlag::O_CLOEXEC
        } else {
            OFlag::O_CLOEXEC | OFlag::O_NOCTTY
        };
        let how = OpenHow::new()
            .flags(flags | extra)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let relative = match path.trim_start_matches('/') {
            "" => ".",
            p => p,
        };
        openat2(&self.fd, relative, how).map(File::from)
    }

    /// The file at `path` (symlinks followed inside the root), opened for reading.
    fn read(&self, path: &str) -> Result<File, Errno> {
        self.open_at(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)
    }

    /// A regular file is at `path`.
    fn is_file(&self, path: &str) -> bool {
        self.open_at(path, OFlag::O_PATH)
            .and_then(|f| f.metadata().map_err(|_| Errno::EIO))
            .is_ok_and(|m| m.is_file())
    }

    /// The regular file at `path` (symlinks followed inside the root): its size and at most its
    /// first `max` bytes. `Ok(None)` for anything else than a regular file (a FIFO, a device, an
    /// overlay whiteout, a directory).
    pub fn read_regular(&self, path: &str, max: u64) -> Result<Option<(u64, Vec<u8>)>, Errno> {
        use std::io::Read;
        let f = self.read(path)?;
        let meta = f
            .metadata()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
        if !meta.is_file() {
            return Ok(None);
        }
        let mut data = Vec::with_capacity(meta.len().min(max) as usize);
        f.take(max)
            .read_to_end(&mut data)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
        Ok(Some((meta.len(), data)))
    }

    /// The regular file at `path` (symlinks followed inside the root), opened for reading.
    pub fn open_regular(&self, path: &str) -> Option<File> {
        let f = self.read(path).ok()?;
        f.metadata().ok()?.is_file().then_some(f)
    }

    /// The size of the regular file at `path`, without reading it.
    pub fn regular_size(&self, path: &str) -> Option<u64> {
        let m = self.open_at(path, OFlag::O_PATH).ok()?.metadata().ok()?;
        m.is_file().then_some(m.len())
    }

    /// The names in the directory at `path`.
    pub fn list(&self, path: &str) -> Vec<String> {
        let Ok(dir) = self.open_at(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY) else {
            return Vec::new();
        };
        // Our own fd of the directory: read_dir opens it again through the fd link.
        let fd_path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        let Ok(entries) = std::fs::read_dir(fd_path) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    fn read_text(&self, path: &str, max: usize) -> Option<String> {
        let f = self.read(path).ok()?;
        let mut buf = vec![0; max];
        let n = ReadAt::read_at(&f, 0, &mut buf).ok()?;
        buf.truncate(n);
        Some(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// Inspects the programs `process` will run, in the container's root.
pub fn inspect(root: &Root, read_from: &str, process: &Process) -> EntrypointReport {
    let executables = process
        .programs()
        .into_iter()
        .filter_map(|(name, wrapped)| {
            let path = resolve(root, process, &name);
            if path.is_none() && wrapped == Wrapped::IfOnPath {
                return None;
            }
            Some(executable(root, process, name, path, 0))
        })
        .collect();
    EntrypointReport {
        read_from: Some(read_from.to_string()),
        unavailable: None,
        executables,
    }
}

/// Where `name` resolves inside the container, as runc's `exec.LookPath` finds it: a name with
/// a `/` is a path (against the cwd); a bare name is the first regular file with an execute bit
/// along `PATH`, else the first regular file there (which exec will refuse).
fn resolve(root: &Root, process: &Process, name: &str) -> Option<String> {
    if name.contains('/') {
        let path = clean(&process.cwd, name);
        return root.open_at(&path, OFlag::O_PATH).is_ok().then_some(path);
    }
    let mut first = None;
    for dir in process.path_dirs() {
        let path = clean(&dir, name);
        let Ok(m) = root
            .open_at(&path, OFlag::O_PATH)
            .and_then(|f| f.metadata().map_err(|_| Errno::EIO))
        else {
            continue;
        };
        if !m.is_file() {
            continue;
        }
        if m.permissions().mode() & 0o111 != 0 {
            return Some(path);
        }
        first.get_or_insert(path);
    }
    first
}

fn executable(
    root: &Root,
    process: &Process,
    command: String,
    path: Option<String>,
    depth: usize,
) -> Executable {
    let mut out = Executable {
        command,
        path: path.clone(),
        ..Default::default()
    };
    let Some(path) = path else {
        out.kind = ExecutableKind::Missing;
        return out;
    };
    let file = match root.read(&path) {
        Ok(f) => f,
        Err(e) => {
            out.kind = ExecutableKind::Unreadable;
            out.error = Some(format!("opening {path}: {e}"));
            return out;
        }
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => {
            out.kind = ExecutableKind::Unreadable;
            out.error = Some(format!("stat of {path}: {e}"));
            return out;
        }
    };
    out.mode = Some(format!("{:04o}", meta.mode() & 0o7777));
    if meta.is_dir() {
        out.kind = ExecutableKind::Directory;
        return out;
    }
    out.executable = Some(meta.mode() & 0o111 != 0);
    if !meta.is_file() {
        // A device or FIFO: execve refuses it (EACCES); nothing to read.
        out.kind = ExecutableKind::Other;
        out.error = Some(format!("{path} is not a regular file"));
        return out;
    }
    if root.mounts_visible {
        out.noexec_mount = fstatvfs(&file)
            .ok()
            .map(|s| s.flags().contains(FsFlags::ST_NOEXEC));
    }
    let mut probe = [0u8; elf::PROBE_LEN];
    let n = match ReadAt::read_at(&file, 0, &mut probe) {
        Ok(n) => n,
        Err(e) => {
            out.kind = ExecutableKind::Unreadable;
            out.error = Some(format!("reading {path}: {e}"));
            return out;
        }
    };
    let probe = &probe[..n];
    if elf::is_elf(probe) {
        out.kind = ExecutableKind::Elf;
        match elf::parse(&file) {
            Ok(e) => describe_elf(root, process, &path, &e, &mut out),
            Err(e) => out.error = Some(format!("reading the ELF headers of {path}: {e}")),
        }
    } else if let Some(sb) = elf::shebang(probe) {
        out.kind = ExecutableKind::Script;
        // The kernel opens a relative interpreter against the cwd, not along PATH.
        let interp = clean(&process.cwd, &sb.interpreter);
        let present = root.open_at(&interp, OFlag::O_PATH).is_ok();
        out.interpreter = Some(sb.interpreter);
        out.interpreter_present = Some(present);
        if present && depth < MAX_DEPTH {
            let inner = executable(root, process, interp.clone(), Some(interp), depth + 1);
            out.interpreter_file = Some(Box::new(inner));
        }
    } else {
        out.kind = ExecutableKind::Other;
    }
    out
}

fn describe_elf(root: &Root, process: &Process, path: &str, e: &Elf, out: &mut Executable) {
    out.machine = Some(elf::machine_name(e.machine));
    let host = elf::host_machine();
    out.runs_on_node = host.map(|h| elf::runs_on(e.machine, h));
    let Some(interp) = &e.interpreter else {
        return; // static: nothing for a loader to find
    };
    out.interpreter = Some(interp.clone());
    let present = root.is_file(interp);
    out.interpreter_present = Some(present);
    if present && out.runs_on_node != Some(false) {
        out.missing_libraries = missing_libraries(root, process, path, e, interp);
        if e.dynamic_incomplete {
            out.error = Some(format!(
                "the dynamic segment of {path} could not be read whole"
            ));
        }
    }
}

/// Libraries the loader `interp` will not find for `e` (at `path`), followed through the
/// libraries that are found. A library of another class or machine does not count as found:
/// the loader skips it.
fn missing_libraries(
    root: &Root,
    process: &Process,
    path: &str,
    e: &Elf,
    interp: &str,
) -> Vec<String> {
    let musl = interp.contains("ld-musl");
    let system = system_dirs(root, e, musl);
    let env_dirs: Vec<String> = process
        .env("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split([':', ';'])
        .filter(|d| !d.is_empty())
        .map(|d| clean(&process.cwd, d))
        .collect();
    let loader = interp.rsplit('/').next().unwrap_or(interp).to_string();
    let mut missing = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<(String, Vec<String>)> = e
        .needed
        .iter()
        .map(|n| (n.clone(), origin_dirs(&e.run_path, parent(path))))
        .collect();
    while let Some((name, run_dirs)) = queue.pop_front() {
        if seen.len() >= MAX_LIBRARIES || !seen.insert(name.clone()) {
            continue;
        }
        if name == loader || (musl && musl_builtin(&name)) {
            continue;
        }
        let candidates: Vec<String> = if name.contains('/') {
            vec![clean(&process.cwd, &name)]
        } else {
            run_dirs
                .iter()
                .chain(&env_dirs)
                .chain(&system)
                .map(|d| clean(d, &name))
                .collect()
        };
        let found = candidates.into_iter().find_map(|c| {
            let f = root.read(&c).ok()?;
            let lib = elf::parse(&f).ok()?;
            (lib.is_64 == e.is_64 && lib.machine == e.machine).then_some((c, lib))
        });
        match found {
            Some((at, lib)) => {
                let dirs = origin_dirs(&lib.run_path, parent(&at));
                queue.extend(lib.needed.into_iter().map(|n| (n, dirs.clone())));
            }
            None => {
                missing.insert(name);
            }
        }
    }
    missing.into_iter().collect()
}

/// A run path with `$ORIGIN` replaced by the object's directory.
fn origin_dirs(run_path: &[String], origin: &str) -> Vec<String> {
    run_path
        .iter()
        .map(|d| d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin))
        .filter(|d| d.starts_with('/'))
        .collect()
}

/// Names musl's loader answers itself: libc and the libraries glibc splits out of it.
fn musl_builtin(name: &str) -> bool {
    [
        "libc.",
        "libdl.",
        "libm.",
        "libpthread.",
        "librt.",
        "libutil.",
        "libxnet.",
        "ld-musl",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// The loader's own directories: musl's `/etc/ld-musl-<arch>.path` or its defaults; glibc's
/// `ld.so.conf` (with its includes), the multiarch directories and the defaults.
fn system_dirs(root: &Root, e: &Elf, musl: bool) -> Vec<String> {
    if musl {
        let arch = match e.machine {
            62 => "x86_64",
            183 => "aarch64",
            3 => "i386",
            40 => "armhf",
            _ => "",
        };
        let conf = root.read_text(&format!("/etc/ld-musl-{arch}.path"), 64 * 1024);
        return match conf {
            Some(text) => text
                .split([':', '\n'])
                .map(str::trim)
                .filter(|d| d.starts_with('/'))
                .map(str::to_string)
                .collect(),
            None => ["/lib", "/usr/local/lib", "/usr/lib"]
                .map(String::from)
                .to_vec(),
        };
    }
    let mut dirs = Vec::new();
    let mut files = VecDeque::from(["/etc/ld.so.conf".to_string()]);
    let mut read = 0;
    while let Some(file) = files.pop_front() {
        read += 1;
        if read > MAX_CONF_FILES {
            break;
        }
        let Some(text) = root.read_text(&file, 64 * 1024) else {
            continue;
        };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if let Some(pattern) = line.strip_prefix("include") {
                files.extend(expand_include(root, pattern.trim()));
            } else if line.starts_with('/') {
                dirs.push(line.to_string());
            }
        }
    }
    if let Some(t) = elf::multiarch_triplet(e.machine, e.is_64) {
        dirs.push(format!("/lib/{t}"));
        dirs.push(format!("/usr/lib/{t}"));
    }
    if e.is_64 {
        dirs.extend(["/lib64".to_string(), "/usr/lib64".to_string()]);
    } else {
        dirs.extend(["/lib32".to_string(), "/usr/lib32".to_string()]);
    }
    dirs.extend(["/lib".to_string(), "/usr/lib".to_string()]);
    dirs
}

/// An `include` of `ld.so.conf`: a path, or a directory with a `*` pattern in its last part.
fn expand_include(root: &Root, pattern: &str) -> Vec<String> {
    let pattern = clean("/etc", pattern);
    let (dir, last) = (parent(&pattern), pattern.rsplit('/').next().unwrap_or(""));
    let Some((prefix, suffix)) = last.split_once('*') else {
        return vec![pattern.clone()];
    };
    root.list(dir)
        .into_iter()
        .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
        .map(|n| clean(dir, &n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    const TRUE: &str = "tests/fixtures/elf/debian-true-x86_64";
    const MUSL: &str = "tests/fixtures/elf/musl-hello-x86_64";
    const ARM: &str = "tests/fixtures/elf/aarch64-true.head";

    fn fixture(name: &str) -> Vec<u8> {
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
    }

    /// A root directory built file by file: `(path, bytes, mode)`.
    fn rootfs(files: &[(&str, &[u8], u32)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, bytes, mode) in files {
            let p = dir.path().join(path.trim_start_matches('/'));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, bytes).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
        }
        dir
    }

    fn process(args: &[&str]) -> Process {
        Process {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: "/".into(),
            is_sandbox: false,
        }
    }

    fn inspect_in(dir: &tempfile::TempDir, args: &[&str]) -> EntrypointReport {
        let root = Root::open(dir.path(), true).unwrap();
        inspect(&root, "bundle_rootfs", &process(args))
    }

    #[test]
    fn glibc_binary_in_an_image_without_glibc_lacks_its_loader() {
        let true_bytes = fixture(TRUE);
        let dir = rootfs(&[("/app/gateway", &true_bytes, 0o755)]);
        let r = inspect_in(&dir, &["/app/gateway"]);
        let e = &r.executables[0];
        assert_eq!(e.kind, ExecutableKind::Elf);
        assert_eq!(e.path.as_deref(), Some("/app/gateway"));
        assert_eq!(
            e.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert_eq!(e.interpreter_present, Some(false));
        assert_eq!(e.executable, Some(true));
        assert_eq!(e.machine.as_deref(), Some("x86_64"));
        // Libraries are the loader's business: not judged without it.
        assert!(e.missing_libraries.is_empty());
    }

    #[test]
    fn present_loader_with_a_missing_library_names_the_library() {
        let true_bytes = fixture(TRUE);
        let dir = rootfs(&[
            ("/usr/bin/gateway", &true_bytes, 0o755),
            (
                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                &true_bytes,
                0o755,
            ),
        ]);
        // Debian's /lib64 loader is a relative symlink into the multiarch directory.
        fs::create_dir_all(dir.path().join("lib64")).unwrap();
        symlink(
            "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            dir.path().join("lib64/ld-linux-x86-64.so.2"),
        )
        .unwrap();
        // Found along PATH, by its bare name.
        let r = inspect_in(&dir, &["gateway"]);
        let e = &r.executables[0];
        assert_eq!(e.path.as_deref(), Some("/usr/bin/gateway"));
        assert_eq!(e.interpreter_present, Some(true), "{e:?}");
        assert_eq!(e.missing_libraries, ["libc.so.6"]);

        // With libc in a directory ld.so.conf names, nothing is missing.
        fs::create_dir_all(dir.path().join("opt/glibc")).unwrap();
        fs::write(dir.path().join("opt/glibc/libc.so.6"), &true_bytes).unwrap();
        fs::create_dir_all(dir.path().join("etc/ld.so.conf.d")).unwrap();
        fs::write(
            dir.path().join("etc/ld.so.conf"),
            "include /etc/ld.so.conf.d/*.conf\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("etc/ld.so.conf.d/glibc.conf"),
            "# ours\n/opt/glibc\n",
        )
        .unwrap();
        let r = inspect_in(&dir, &["gateway"]);
        assert!(r.executables[0].missing_libraries.is_empty(), "{r:?}");
    }

    #[test]
    fn a_library_of_another_machine_does_not_count() {
        let true_bytes = fixture(TRUE);
        let arm = fixture(ARM);
        let dir = rootfs(&[
            ("/app/x", &true_bytes, 0o755),
            ("/lib64/ld-linux-x86-64.so.2", &true_bytes, 0o755),
            ("/lib/libc.so.6", &arm, 0o644),
        ]);
        let r = inspect_in(&dir, &["/app/x"]);
        assert_eq!(r.executables[0].missing_libraries, ["libc.so.6"]);
    }

    #[test]
    fn musl_binary_needs_only_the_musl_loader() {
        let musl = fixture(MUSL);
        let dir = rootfs(&[("/bin/hello", &musl, 0o755)]);
        let e = &inspect_in(&dir, &["hello"]).executables[0];
        assert_eq!(e.interpreter.as_deref(), Some("/lib/ld-musl-x86_64.so.1"));
        assert_eq!(e.interpreter_present, Some(false));
        let dir = rootfs(&[
            ("/bin/hello", &musl, 0o755),
            ("/lib/ld-musl-x86_64.so.1", &musl, 0o755),
        ]);
        let e = &inspect_in(&dir, &["hello"]).executables[0];
        assert_eq!(e.interpreter_present, Some(true));
        assert!(
            e.missing_libraries.is_empty(),
            "libc.so is the loader: {e:?}"
        );
    }

    #[test]
    fn script_with_a_missing_interpreter_names_it() {
        let dir = rootfs(&[("/app/run.py", b"#!/usr/bin/python3\nprint(1)\n", 0o755)]);
        let e = &inspect_in(&dir, &["/app/run.py"]).executables[0];
        assert_eq!(e.kind, ExecutableKind::Script);
        assert_eq!(e.interpreter.as_deref(), Some("/usr/bin/python3"));
        assert_eq!(e.interpreter_present, Some(false));
        assert!(e.interpreter_file.is_none());
    }

    #[test]
    fn script_interpreter_is_inspected_too() {
        let true_bytes = fixture(TRUE);
        let dir = rootfs(&[
            ("/app/run.py", b"#!/usr/bin/python3 -u\n", 0o755),
            ("/usr/bin/python3", &true_bytes, 0o755),
        ]);
        let e = &inspect_in(&dir, &["/app/run.py"]).executables[0];
        assert_eq!(e.interpreter_present, Some(true));
        let inner = e.interpreter_file.as_deref().unwrap();
        assert_eq!(inner.kind, ExecutableKind::Elf);
        assert_eq!(
            inner.interpreter_present,
            Some(false),
            "glibc python, no glibc"
        );
    }

    #[test]
    fn mode_foreign_machine_and_plain_files_are_reported() {
        let arm = fixture(ARM);
        let dir = rootfs(&[
            ("/app/noexec", b"\x7fELF", 0o644),
            ("/app/arm", &arm, 0o755),
            ("/app/data.txt", b"hello\n", 0o755),
        ]);
        let r = inspect_in(&dir, &["/app/noexec"]);
        assert_eq!(r.executables[0].mode.as_deref(), Some("0644"));
        assert_eq!(r.executables[0].executable, Some(false));
        let e = &inspect_in(&dir, &["/app/arm"]).executables[0];
        assert_eq!(e.machine.as_deref(), Some("aarch64"));
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(e.runs_on_node, Some(false));
        }
        let e = &inspect_in(&dir, &["/app/data.txt"]).executables[0];
        assert_eq!(e.kind, ExecutableKind::Other);
        let e = &inspect_in(&dir, &["/app"]).executables[0];
        assert_eq!(e.kind, ExecutableKind::Directory);
        let e = &inspect_in(&dir, &["/app/none"]).executables[0];
        assert_eq!(e.kind, ExecutableKind::Missing);
        assert_eq!(e.path, None);
    }

    #[test]
    fn symlinks_resolve_inside_the_root_never_outside() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"#!/usr/bin/host-only\n").unwrap();
        let dir = rootfs(&[("/etc/secret", b"#!/usr/bin/in-root\n", 0o755)]);
        fs::create_dir_all(dir.path().join("app")).unwrap();
        // Absolute and climbing links both land in the root.
        let host_path = outside.path().join("secret");
        symlink(&host_path, dir.path().join("app/abs")).unwrap();
        let climb = format!("../../../../../../..{}", host_path.display());
        symlink(&climb, dir.path().join("app/climb")).unwrap();
        symlink("/etc/secret", dir.path().join("app/inside")).unwrap();
        let dotdot = format!("../../../..{}", host_path.display());
        for name in ["/app/abs", "/app/climb", dotdot.as_str()] {
            let e = &inspect_in(&dir, &[name]).executables[0];
            assert_eq!(e.kind, ExecutableKind::Missing, "{name} escaped: {e:?}");
        }
        let e = &inspect_in(&dir, &["/app/inside"]).executables[0];
        assert_eq!(e.interpreter.as_deref(), Some("/usr/bin/in-root"));
    }

    #[test]
    fn shell_wrapper_program_is_inspected_after_the_shell() {
        let true_bytes = fixture(TRUE);
        let dir = rootfs(&[
            ("/bin/sh", &true_bytes, 0o755),
            ("/app/start", b"#!/bin/bash\n", 0o755),
        ]);
        let r = inspect_in(&dir, &["sh", "-c", "exec /app/start --port 80"]);
        assert_eq!(r.executables.len(), 2);
        assert_eq!(r.executables[0].path.as_deref(), Some("/bin/sh"));
        assert_eq!(r.executables[1].interpreter.as_deref(), Some("/bin/bash"));
        assert!(r.executable_for("/app/start").is_some());
        // A builtin is not a program.
        let r = inspect_in(&dir, &["sh", "-c", "exit 3"]);
        assert_eq!(r.executables.len(), 1);
    }

    #[test]
    fn a_fifo_named_like_a_program_does_not_block() {
        let dir = rootfs(&[]);
        nix::unistd::mkfifo(&dir.path().join("fifo"), Mode::from_bits_truncate(0o755)).unwrap();
        let e = &inspect_in(&dir, &["/fifo"]).executables[0];
        assert_eq!(e.kind, ExecutableKind::Other);
    }
}
