//! The syscalls the decoder knows, one row each: the kind of every argument (how it prints) and
//! the argument whose user memory the kernel copies (a path or a socket address), with when it
//! copies it. The loader pushes the copy part into the kernel ([`spec_table`]); the decoder reads
//! the kinds ([`signature`]). Both come from the same row, so they cannot disagree about where a
//! path sits. Names are the kernel's, as in `syscalls`, which owns the numbers.
//!
//! To decode one more syscall: add its row (and a kind in [`Arg`] if none fits); the tests below
//! check the name against the number tables and the argument positions the decoder relies on.

use crate::bpf::raw::{Arch, DataSpec};
use crate::bpf::syscalls;

/// How one argument reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arg {
    /// A file descriptor (`int`), annotated with what it refers to when known: `3</etc/passwd>`.
    Fd,
    /// A directory fd of an `*at` call: `AT_FDCWD` or an fd.
    DirFd,
    /// A path: the kernel copies it (per the row, [`Syscall::data_spec`]).
    Path,
    /// A socket address: the kernel copies it, its length is the next argument.
    Sockaddr,
    /// A user pointer: `NULL` or hex.
    Ptr,
    /// A number best read in hex.
    Hex,
    /// `size_t`, `unsigned`.
    UDec,
    /// `int`.
    IDec,
    /// `off_t`, `loff_t`, `long`.
    LDec,
    /// A file mode in octal, with the file type if set: `0644`, `S_IFREG|0600`.
    Mode,
    /// `open` flags: `O_RDONLY|O_CLOEXEC`.
    OpenFlags,
    /// The mode of `open`/`openat`, shown only when the flags create a file.
    OpenMode,
    /// `O_CLOEXEC`-style flags of `dup3`, `pipe2`, `eventfd2`, ... (no access mode).
    FdFlags,
    AtFlags,
    UnlinkatFlags,
    FaccessatFlags,
    AccessMode,
    RenameFlags,
    FcntlCmd,
    /// The third argument of `fcntl`, read according to the command.
    FcntlValue,
    FlockOp,
    /// `clone` flags with the exit signal in the low byte.
    CloneFlags,
    /// Namespace flags of `unshare`/`setns`.
    NsFlags,
    Signal,
    Pid,
    /// A uid or gid (`-1` means "unchanged").
    Uid,
    Prot,
    MapFlags,
    Domain,
    SockType,
    /// The protocol of `socket`, read according to the domain (argument 0).
    Protocol,
    SockFlags,
    ShutHow,
    MsgFlags,
    Whence,
    WaitOpts,
    SigHow,
    FutexOp,
    /// `argv`/`envp`: not in the record.
    Argv,
}

use Arg::*;

/// One syscall worth reading in a postmortem.
#[derive(Debug, Clone, Copy)]
pub(super) struct Syscall {
    pub(super) name: &'static str,
    /// `Some` for a row that holds on one architecture only (the argument order differs).
    pub(super) arch: Option<Arch>,
    pub(super) args: &'static [Arg],
    /// Whether the [`Path`] or [`Sockaddr`] argument is copied when the call succeeds; a failing
    /// call's always is. See [`SYSCALLS`] for which are.
    pub(super) copied_on_success: bool,
}

const fn sys(name: &'static str, args: &'static [Arg]) -> Syscall {
    Syscall {
        name,
        arch: None,
        args,
        copied_on_success: false,
    }
}

impl Syscall {
    const fn copied_on_success(self) -> Syscall {
        Syscall {
            copied_on_success: true,
            ..self
        }
    }

    const fn only_on(self, arch: Arch) -> Syscall {
        Syscall {
            arch: Some(arch),
            ..self
        }
    }

    /// Which user memory the kernel must copy: the [`Path`] or [`Sockaddr`] argument's, and for
    /// an address the length in the argument after it.
    pub(super) fn data_spec(&self) -> DataSpec {
        let on_success = self.copied_on_success;
        self.args
            .iter()
            .enumerate()
            .find_map(|(i, kind)| {
                let ptr_arg = i as u8;
                match kind {
                    Path => Some(DataSpec::Str {
                        ptr_arg,
                        on_success,
                    }),
                    Sockaddr => Some(DataSpec::Sockaddr {
                        ptr_arg,
                        len_arg: ptr_arg + 1,
                        on_success,
                    }),
                    _ => None,
                }
            })
            .unwrap_or(DataSpec::None)
    }
}

/// Every syscall the decoder reads; any other prints as six hex numbers and copies nothing.
///
/// `copied_on_success`: copying user memory is the dearest part of a record (a helper call per
/// syscall: on the benchmark's `tar xf`, 70% of the syscalls take a path and the copies were most
/// of the recorder's cost), and a successful `stat`, `access`, `chmod` or `utimensat` says little
/// in a postmortem. Copied on success: what the decoder needs later (an open's path names the fd
/// it returns; a bound or connected socket is named by its address), what the timeline shows
/// (exec), and the calls that change the file tree or the process's view of it, which are rare
/// and worth their cost. Any other successful call shows its path argument as an uncopied
/// pointer.
pub(super) const SYSCALLS: &[Syscall] = &[
    // I/O on fds.
    sys("read", &[Fd, Ptr, UDec]),
    sys("write", &[Fd, Ptr, UDec]),
    sys("pread64", &[Fd, Ptr, UDec, LDec]),
    sys("pwrite64", &[Fd, Ptr, UDec, LDec]),
    sys("readv", &[Fd, Ptr, IDec]),
    sys("writev", &[Fd, Ptr, IDec]),
    sys("preadv", &[Fd, Ptr, IDec, LDec]),
    sys("pwritev", &[Fd, Ptr, IDec, LDec]),
    sys("preadv2", &[Fd, Ptr, IDec, LDec, Hex]),
    sys("pwritev2", &[Fd, Ptr, IDec, LDec, Hex]),
    sys("close", &[Fd]),
    sys("fsync", &[Fd]),
    sys("fdatasync", &[Fd]),
    sys("fchdir", &[Fd]),
    sys("syncfs", &[Fd]),
    sys("dup", &[Fd]),
    sys("dup2", &[Fd, Fd]),
    sys("dup3", &[Fd, Fd, FdFlags]),
    sys("close_range", &[UDec, UDec, Hex]),
    sys("pipe", &[Ptr]),
    sys("pipe2", &[Ptr, FdFlags]),
    sys("lseek", &[Fd, LDec, Whence]),
    sys("ioctl", &[Fd, Hex, Hex]),
    sys("fstat", &[Fd, Ptr]),
    sys("fstatfs", &[Fd, Ptr]),
    sys("ftruncate", &[Fd, LDec]),
    sys("fchmod", &[Fd, Mode]),
    sys("fchown", &[Fd, Uid, Uid]),
    sys("getdents", &[Fd, Ptr, UDec]),
    sys("getdents64", &[Fd, Ptr, UDec]),
    sys("sendfile", &[Fd, Fd, Ptr, UDec]),
    sys("splice", &[Fd, Ptr, Fd, Ptr, UDec, Hex]),
    sys("copy_file_range", &[Fd, Ptr, Fd, Ptr, UDec, Hex]),
    sys("fallocate", &[Fd, IDec, LDec, LDec]),
    sys("fadvise64", &[Fd, LDec, LDec, IDec]),
    sys("fcntl", &[Fd, FcntlCmd, FcntlValue]),
    sys("flock", &[Fd, FlockOp]),
    sys("fgetxattr", &[Fd, Ptr, Ptr, UDec]),
    sys("fsetxattr", &[Fd, Ptr, Ptr, UDec, Hex]),
    sys("flistxattr", &[Fd, Ptr, UDec]),
    sys("fremovexattr", &[Fd, Ptr]),
    // Paths.
    sys("open", &[Path, OpenFlags, OpenMode]).copied_on_success(),
    sys("openat", &[DirFd, Path, OpenFlags, OpenMode]).copied_on_success(),
    sys("openat2", &[DirFd, Path, Ptr, UDec]).copied_on_success(),
    sys("creat", &[Path, Mode]).copied_on_success(),
    sys("stat", &[Path, Ptr]),
    sys("lstat", &[Path, Ptr]),
    sys("statfs", &[Path, Ptr]),
    sys("utime", &[Path, Ptr]),
    sys("utimes", &[Path, Ptr]),
    sys("newfstatat", &[DirFd, Path, Ptr, AtFlags]),
    sys("statx", &[DirFd, Path, AtFlags, Hex, Ptr]),
    sys("access", &[Path, AccessMode]),
    sys("faccessat", &[DirFd, Path, AccessMode]),
    sys("faccessat2", &[DirFd, Path, AccessMode, FaccessatFlags]),
    sys("execve", &[Path, Argv, Argv]).copied_on_success(),
    sys("execveat", &[DirFd, Path, Argv, Argv, AtFlags]).copied_on_success(),
    sys("unlink", &[Path]).copied_on_success(),
    sys("rmdir", &[Path]).copied_on_success(),
    sys("chdir", &[Path]).copied_on_success(),
    sys("chroot", &[Path]).copied_on_success(),
    sys("acct", &[Path]),
    sys("swapoff", &[Path]),
    sys("swapon", &[Path, Hex]),
    sys("umount2", &[Path, Hex]).copied_on_success(),
    sys("unlinkat", &[DirFd, Path, UnlinkatFlags]).copied_on_success(),
    sys("mkdir", &[Path, Mode]).copied_on_success(),
    sys("chmod", &[Path, Mode]),
    sys("mkdirat", &[DirFd, Path, Mode]).copied_on_success(),
    sys("fchmodat", &[DirFd, Path, Mode]),
    sys("fchmodat2", &[DirFd, Path, Mode, AtFlags]),
    sys("readlink", &[Path, Ptr, UDec]),
    sys("readlinkat", &[DirFd, Path, Ptr, UDec]),
    sys("truncate", &[Path, LDec]),
    sys("chown", &[Path, Uid, Uid]),
    sys("lchown", &[Path, Uid, Uid]),
    sys("fchownat", &[DirFd, Path, Uid, Uid, AtFlags]),
    sys("rename", &[Path, Ptr]).copied_on_success(),
    sys("link", &[Path, Ptr]).copied_on_success(),
    sys("pivot_root", &[Path, Ptr]).copied_on_success(),
    sys("renameat", &[DirFd, Path, DirFd, Ptr]).copied_on_success(),
    sys("renameat2", &[DirFd, Path, DirFd, Ptr, RenameFlags]).copied_on_success(),
    sys("linkat", &[DirFd, Path, DirFd, Ptr, AtFlags]).copied_on_success(),
    sys("symlink", &[Ptr, Path]).copied_on_success(),
    sys("symlinkat", &[Ptr, DirFd, Path]).copied_on_success(),
    sys("mknod", &[Path, Mode, Hex]).copied_on_success(),
    sys("mknodat", &[DirFd, Path, Mode, Hex]).copied_on_success(),
    sys("futimesat", &[DirFd, Path, Ptr]),
    sys("utimensat", &[DirFd, Path, Ptr, AtFlags]),
    sys("name_to_handle_at", &[DirFd, Path, Ptr, Ptr, AtFlags]),
    sys("mount", &[Ptr, Path, Ptr, Hex, Ptr]).copied_on_success(),
    sys("open_tree", &[DirFd, Path, Hex]),
    sys("fspick", &[DirFd, Path, Hex]),
    sys("move_mount", &[DirFd, Path, DirFd, Ptr, Hex]).copied_on_success(),
    sys("mount_setattr", &[DirFd, Path, Hex, Ptr, UDec]),
    sys("quotactl", &[Hex, Path, IDec, Ptr]),
    sys("getxattr", &[Path, Ptr, Ptr, UDec]),
    sys("lgetxattr", &[Path, Ptr, Ptr, UDec]),
    sys("setxattr", &[Path, Ptr, Ptr, UDec, Hex]),
    sys("lsetxattr", &[Path, Ptr, Ptr, UDec, Hex]),
    sys("listxattr", &[Path, Ptr, UDec]),
    sys("llistxattr", &[Path, Ptr, UDec]),
    sys("removexattr", &[Path, Ptr]),
    sys("lremovexattr", &[Path, Ptr]),
    sys("inotify_add_watch", &[Fd, Path, Hex]),
    sys("inotify_rm_watch", &[Fd, IDec]),
    sys("getcwd", &[Ptr, UDec]),
    // Sockets.
    sys("socket", &[Domain, SockType, Protocol]),
    sys("socketpair", &[Domain, SockType, Protocol, Ptr]),
    sys("bind", &[Fd, Sockaddr, UDec]).copied_on_success(),
    sys("connect", &[Fd, Sockaddr, UDec]).copied_on_success(),
    sys("accept", &[Fd, Ptr, Ptr]),
    sys("getsockname", &[Fd, Ptr, Ptr]),
    sys("getpeername", &[Fd, Ptr, Ptr]),
    sys("accept4", &[Fd, Ptr, Ptr, SockFlags]),
    sys("listen", &[Fd, IDec]),
    sys("shutdown", &[Fd, ShutHow]),
    sys("sendto", &[Fd, Ptr, UDec, MsgFlags, Sockaddr, UDec]).copied_on_success(),
    sys("recvfrom", &[Fd, Ptr, UDec, MsgFlags, Ptr, Ptr]),
    sys("sendmsg", &[Fd, Ptr, MsgFlags]),
    sys("recvmsg", &[Fd, Ptr, MsgFlags]),
    sys("sendmmsg", &[Fd, Ptr, UDec, MsgFlags]),
    sys("recvmmsg", &[Fd, Ptr, UDec, MsgFlags, Ptr]),
    sys("setsockopt", &[Fd, IDec, IDec, Ptr, UDec]),
    sys("getsockopt", &[Fd, IDec, IDec, Ptr, Ptr]),
    // Processes and signals.
    // clone's argument order depends on the architecture (kernel/fork.c): x86_64 takes
    // (flags, newsp, parent_tid, child_tid, tls), arm64 has CONFIG_CLONE_BACKWARDS:
    // (flags, newsp, parent_tid, tls, child_tid).
    sys("clone", &[CloneFlags, Ptr, Ptr, Ptr, Hex]).only_on(Arch::X86_64),
    sys("clone", &[CloneFlags, Ptr, Ptr, Hex, Ptr]).only_on(Arch::Aarch64),
    sys("clone3", &[Ptr, UDec]),
    sys("fork", &[]),
    sys("vfork", &[]),
    sys("getpid", &[]),
    sys("getppid", &[]),
    sys("gettid", &[]),
    sys("getuid", &[]),
    sys("geteuid", &[]),
    sys("getgid", &[]),
    sys("getegid", &[]),
    sys("getpgrp", &[]),
    sys("setsid", &[]),
    sys("sched_yield", &[]),
    sys("pause", &[]),
    sys("sync", &[]),
    sys("vhangup", &[]),
    sys("munlockall", &[]),
    sys("inotify_init", &[]),
    sys("restart_syscall", &[]),
    sys("rt_sigreturn", &[]),
    sys("unshare", &[NsFlags]),
    sys("setns", &[Fd, NsFlags]),
    sys("exit", &[IDec]),
    sys("exit_group", &[IDec]),
    sys("wait4", &[Pid, Ptr, WaitOpts, Ptr]),
    sys("waitid", &[IDec, IDec, Ptr, WaitOpts, Ptr]),
    sys("kill", &[Pid, Signal]),
    sys("tkill", &[Pid, Signal]),
    sys("tgkill", &[Pid, Pid, Signal]),
    sys("rt_sigqueueinfo", &[Pid, Signal, Ptr]),
    sys("rt_tgsigqueueinfo", &[Pid, Pid, Signal, Ptr]),
    sys("pidfd_open", &[Pid, Hex]),
    sys("pidfd_send_signal", &[Fd, Signal, Ptr, Hex]),
    sys("rt_sigaction", &[Signal, Ptr, Ptr, UDec]),
    sys("rt_sigprocmask", &[SigHow, Ptr, Ptr, UDec]),
    sys("rt_sigsuspend", &[Ptr, UDec]),
    sys("rt_sigpending", &[Ptr, UDec]),
    sys("rt_sigtimedwait", &[Ptr, Ptr, Ptr, UDec]),
    sys("sigaltstack", &[Ptr, Ptr]),
    sys("ptrace", &[IDec, Pid, Ptr, Ptr]),
    sys("prctl", &[IDec, Hex, Hex, Hex, Hex]),
    sys("arch_prctl", &[Hex, Hex]),
    sys("seccomp", &[UDec, Hex, Ptr]),
    sys("setpgid", &[Pid, Pid]),
    sys("getpgid", &[Pid]),
    sys("getsid", &[Pid]),
    sys("setuid", &[Uid]),
    sys("setgid", &[Uid]),
    sys("setfsuid", &[Uid]),
    sys("setfsgid", &[Uid]),
    sys("setreuid", &[Uid, Uid]),
    sys("setregid", &[Uid, Uid]),
    sys("setresuid", &[Uid, Uid, Uid]),
    sys("setresgid", &[Uid, Uid, Uid]),
    sys("getresuid", &[Ptr, Ptr, Ptr]),
    sys("getresgid", &[Ptr, Ptr, Ptr]),
    sys("getgroups", &[IDec, Ptr]),
    sys("setgroups", &[IDec, Ptr]),
    sys("capget", &[Ptr, Ptr]),
    sys("capset", &[Ptr, Ptr]),
    sys("umask", &[Mode]),
    sys("prlimit64", &[Pid, IDec, Ptr, Ptr]),
    sys("getrlimit", &[IDec, Ptr]),
    sys("setrlimit", &[IDec, Ptr]),
    sys("getrusage", &[IDec, Ptr]),
    sys("sched_getaffinity", &[Pid, UDec, Ptr]),
    sys("sched_setaffinity", &[Pid, UDec, Ptr]),
    sys("set_tid_address", &[Ptr]),
    sys("uname", &[Ptr]),
    sys("sysinfo", &[Ptr]),
    sys("times", &[Ptr]),
    sys("time", &[Ptr]),
    sys("set_robust_list", &[Ptr, UDec]),
    sys("rseq", &[Ptr, UDec, Hex, Hex]),
    // Memory.
    sys("mmap", &[Ptr, UDec, Prot, MapFlags, Fd, Hex]),
    sys("mprotect", &[Ptr, UDec, Prot]),
    sys("munmap", &[Ptr, UDec]),
    sys("mlock", &[Ptr, UDec]),
    sys("munlock", &[Ptr, UDec]),
    sys("brk", &[Ptr]),
    sys("mremap", &[Ptr, UDec, UDec, Hex, Ptr]),
    sys("madvise", &[Ptr, UDec, IDec]),
    sys("msync", &[Ptr, UDec, Hex]),
    sys("mlockall", &[Hex]),
    sys("memfd_create", &[Ptr, Hex]),
    // Waiting and time.
    sys("futex", &[Ptr, FutexOp, IDec, Ptr, Ptr, Hex]),
    sys("nanosleep", &[Ptr, Ptr]),
    sys("gettimeofday", &[Ptr, Ptr]),
    sys("clock_gettime", &[IDec, Ptr]),
    sys("clock_getres", &[IDec, Ptr]),
    sys("clock_nanosleep", &[IDec, Hex, Ptr, Ptr]),
    sys("getitimer", &[IDec, Ptr]),
    sys("setitimer", &[IDec, Ptr, Ptr]),
    sys("alarm", &[UDec]),
    sys("poll", &[Ptr, UDec, IDec]),
    sys("ppoll", &[Ptr, UDec, Ptr, Ptr, UDec]),
    sys("select", &[IDec, Ptr, Ptr, Ptr, Ptr]),
    sys("pselect6", &[IDec, Ptr, Ptr, Ptr, Ptr, Ptr]),
    sys("epoll_create", &[IDec]),
    sys("epoll_create1", &[FdFlags]),
    sys("inotify_init1", &[FdFlags]),
    sys("epoll_ctl", &[Fd, IDec, Fd, Ptr]),
    sys("epoll_wait", &[Fd, Ptr, IDec, IDec]),
    sys("epoll_pwait", &[Fd, Ptr, IDec, IDec, Ptr, UDec]),
    sys("epoll_pwait2", &[Fd, Ptr, IDec, Ptr, Ptr, UDec]),
    sys("eventfd", &[UDec]),
    sys("eventfd2", &[UDec, FdFlags]),
    sys("timerfd_create", &[IDec, FdFlags]),
    sys("signalfd4", &[Fd, Ptr, UDec, FdFlags]),
    sys("getrandom", &[Ptr, UDec, Hex]),
    sys("getcpu", &[Ptr, Ptr, Ptr]),
    sys("io_uring_setup", &[UDec, Ptr]),
    sys("io_uring_enter", &[Fd, UDec, UDec, Hex, Ptr, UDec]),
    sys("io_uring_register", &[Fd, UDec, Ptr, UDec]),
    sys("bpf", &[IDec, Ptr, UDec]),
    sys("membarrier", &[IDec, Hex, IDec]),
];

/// The row of syscall `name` on `arch`, `None` for a syscall the decoder does not read.
pub(super) fn lookup(arch: Arch, name: &str) -> Option<&'static Syscall> {
    SYSCALLS
        .iter()
        .find(|s| s.name == name && s.arch.is_none_or(|a| a == arch))
}

/// The arguments of syscall `name` on `arch`. `None`: six raw hex arguments.
pub(super) fn signature(arch: Arch, name: &str) -> Option<&'static [Arg]> {
    lookup(arch, name).map(|s| s.args)
}

/// Which user memory the kernel must copy for syscall `nr` on `arch`: the path of path-taking
/// syscalls, the socket address of `bind`/`connect`/`sendto`, nothing otherwise; see
/// [`SYSCALLS`] for when.
pub fn data_spec(arch: Arch, nr: u32) -> DataSpec {
    syscalls::name(arch, nr)
        .and_then(|name| lookup(arch, name))
        .map_or(DataSpec::None, Syscall::data_spec)
}

/// Every syscall of `arch` with something to copy, by number: the table the loader pushes into the
/// kernel (one [`DataSpec::encode`]d byte per syscall number).
pub fn spec_table(arch: Arch) -> Vec<(u32, DataSpec)> {
    syscalls::table(arch)
        .iter()
        .filter_map(|&(nr, name)| lookup(arch, name).map(|s| (nr, s.data_spec())))
        .filter(|&(_, spec)| spec != DataSpec::None)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::decode::flight_recorder;
    use crate::bpf::decode::test_support::*;

    #[test]
    fn data_specs_name_the_path_and_sockaddr_arguments() {
        let spec = |arch, name| data_spec(arch, crate::bpf::syscalls::number(arch, name).unwrap());
        let path = |ptr_arg, on_success| DataSpec::Str {
            ptr_arg,
            on_success,
        };
        assert_eq!(spec(X86, "open"), path(0, true));
        assert_eq!(spec(X86, "openat"), path(1, true));
        assert_eq!(spec(ARM, "openat"), path(1, true));
        assert_eq!(spec(ARM, "execve"), path(0, true));
        assert_eq!(spec(X86, "execveat"), path(1, true));
        assert_eq!(spec(X86, "mount"), path(1, true));
        assert_eq!(spec(X86, "symlinkat"), path(2, true));
        assert_eq!(spec(X86, "stat"), path(0, false));
        assert_eq!(spec(X86, "newfstatat"), path(1, false));
        assert_eq!(spec(ARM, "faccessat"), path(1, false));
        assert_eq!(
            spec(X86, "bind"),
            DataSpec::Sockaddr {
                ptr_arg: 1,
                len_arg: 2,
                on_success: true,
            }
        );
        assert_eq!(
            spec(ARM, "connect"),
            DataSpec::Sockaddr {
                ptr_arg: 1,
                len_arg: 2,
                on_success: true,
            }
        );
        assert_eq!(
            spec(ARM, "sendto"),
            DataSpec::Sockaddr {
                ptr_arg: 4,
                len_arg: 5,
                on_success: true,
            }
        );
        assert_eq!(spec(X86, "read"), DataSpec::None);
        assert_eq!(spec(X86, "flock"), DataSpec::None);
        assert_eq!(data_spec(X86, 100_000), DataSpec::None);
    }

    #[test]
    fn paths_postmortems_need_are_copied_on_success_lookups_only_on_failure() {
        // The calls the decoder and the timeline read back on success (fd naming, execs), and the
        // ones that change the file tree; not the metadata calls that make up most of a `tar xf`.
        let on_success = |arch, name| {
            let nr = crate::bpf::syscalls::number(arch, name).unwrap();
            match data_spec(arch, nr) {
                DataSpec::Str { on_success, .. } | DataSpec::Sockaddr { on_success, .. } => {
                    on_success
                }
                DataSpec::None => panic!("{name} copies nothing"),
            }
        };
        for arch in [X86, ARM] {
            for name in [
                "openat",
                "openat2",
                "execve",
                "execveat",
                "bind",
                "connect",
                "sendto",
                "chdir",
                "mkdirat",
                "unlinkat",
                "renameat2",
                "symlinkat",
                "linkat",
                "mount",
            ] {
                assert!(on_success(arch, name), "{arch:?} {name}");
            }
            for name in [
                "newfstatat",
                "statx",
                "faccessat",
                "faccessat2",
                "fchmodat",
                "fchownat",
                "utimensat",
                "readlinkat",
                "getxattr",
                "truncate",
                "inotify_add_watch",
            ] {
                assert!(!on_success(arch, name), "{arch:?} {name}");
            }
        }
        for name in ["open", "creat", "stat", "lstat", "access", "chmod", "chown"] {
            let copied = matches!(name, "open" | "creat");
            assert_eq!(on_success(X86, name), copied, "{name}");
        }
    }

    #[test]
    fn successful_stat_shows_its_path_as_not_copied() {
        // What the kernel writes for a successful newfstatat: no data.
        let r = rec(
            X86,
            "newfstatat",
            &[FDCWD, 0x7ffd_1000, 0x7ffd_2000, 0],
            0,
            b"",
        );
        let ev = decode(X86, &r);
        assert_eq!(
            ev.args,
            ["AT_FDCWD", "0x7ffd1000 /* not copied */", "0x7ffd2000", "0"]
        );
        assert_eq!(ev.errno, None);
    }

    #[test]
    fn failing_stat_shows_its_path() {
        let r = rec(
            X86,
            "newfstatat",
            &[FDCWD, 0x7ffd_1000, 0x7ffd_2000, 0],
            -2,
            b"/etc/missing.conf",
        );
        let ev = decode(X86, &r);
        assert_eq!(ev.args[1], "\"/etc/missing.conf\"");
        assert_eq!(ev.errno.as_deref(), Some("ENOENT"));
    }

    #[test]
    fn successful_open_keeps_its_path_and_names_the_fd() {
        let records = [
            rec(
                X86,
                "openat",
                &[FDCWD, 0x1000, 0x80000, 0],
                3,
                b"/data/db.lock",
            ),
            rec(X86, "flock", &[3, 6], -11, b""),
        ];
        let raw = RawContainer {
            ring: records.to_vec(),
            ..Default::default()
        };
        let evs = flight_recorder(X86, &raw, wall);
        assert_eq!(evs[0].args[1], "\"/data/db.lock\"");
        assert_eq!(evs[1].args[0], "3</data/db.lock>");
    }

    #[test]
    fn successful_sendto_without_a_copied_address_is_not_marked_uncopied() {
        // A connected socket's sendto passes NULL: there is nothing to copy.
        let r = rec(X86, "sendto", &[3, 0x1000, 5, 0, 0, 0], 5, b"");
        assert_eq!(decode(X86, &r).args[4], "NULL");
    }

    #[test]
    fn spec_table_lists_every_copying_syscall_once_and_fits_the_kernel_byte() {
        for arch in [X86, ARM] {
            let table = spec_table(arch);
            assert!(table.len() > 40, "{arch:?}: {}", table.len());
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
            for (nr, spec) in table {
                assert_ne!(spec, DataSpec::None);
                assert_eq!(DataSpec::decode(spec.encode()), spec, "{arch:?} {nr}");
                assert!(
                    nr < 512,
                    "the kernel's spec map is indexed below CORONER_NR_MAX"
                );
            }
        }
        let x86: Vec<u32> = spec_table(X86).iter().map(|e| e.0).collect();
        assert!(x86.contains(&257) && x86.contains(&49) && x86.contains(&59));
    }

    #[test]
    fn path_arguments_match_what_the_kernel_copies() {
        // A Path/Sockaddr argument without the matching spec would print a pointer forever; a spec
        // without a Path argument would copy memory nobody shows.
        for arch in [X86, ARM] {
            for &(nr, name) in crate::bpf::syscalls::table(arch) {
                let spec = data_spec(arch, nr);
                let Some(sig) = signature(arch, name) else {
                    assert_eq!(spec, DataSpec::None, "{name} copies but has no signature");
                    continue;
                };
                let path = sig.iter().position(|&a| a == Arg::Path);
                let addr = sig.iter().position(|&a| a == Arg::Sockaddr);
                let want = match (path, addr) {
                    (Some(p), None) => DataSpec::Str {
                        ptr_arg: p as u8,
                        on_success: lookup(arch, name).is_some_and(|s| s.copied_on_success),
                    },
                    (None, Some(p)) => DataSpec::Sockaddr {
                        ptr_arg: p as u8,
                        len_arg: p as u8 + 1,
                        on_success: lookup(arch, name).is_some_and(|s| s.copied_on_success),
                    },
                    (None, None) => DataSpec::None,
                    (Some(_), Some(_)) => panic!("{name}: two copied arguments"),
                };
                assert_eq!(spec, want, "{arch:?} {name}");
                assert!(sig.len() <= 6, "{name}");
            }
        }
    }

    // --- The table agrees with itself and with the number tables ---------------------------------

    #[test]
    fn every_row_names_a_syscall_of_its_architecture() {
        // A misspelt name is a row nobody reads: the syscall would print as hex and copy nothing.
        for row in SYSCALLS {
            let archs = row.arch.map_or(vec![X86, ARM], |a| vec![a]);
            assert!(
                archs
                    .iter()
                    .any(|&a| crate::bpf::syscalls::number(a, row.name).is_some()),
                "{}: not a syscall of {archs:?}",
                row.name
            );
        }
    }

    #[test]
    fn no_syscall_has_two_rows_on_one_architecture() {
        for arch in [X86, ARM] {
            let mut seen = std::collections::HashSet::new();
            for row in SYSCALLS.iter().filter(|r| r.arch.is_none_or(|a| a == arch)) {
                assert!(
                    seen.insert(row.name),
                    "{arch:?} {}: a second row is never read",
                    row.name
                );
            }
        }
    }

    #[test]
    fn a_syscall_with_per_architecture_rows_has_one_on_each() {
        for row in SYSCALLS.iter().filter(|r| r.arch.is_some()) {
            for arch in [X86, ARM] {
                if crate::bpf::syscalls::number(arch, row.name).is_some() {
                    assert!(lookup(arch, row.name).is_some(), "{arch:?} {}", row.name);
                }
            }
        }
    }

    #[test]
    fn argument_positions_agree_with_what_the_decoder_and_the_kernel_read() {
        for row in SYSCALLS {
            let (name, args) = (row.name, row.args);
            assert!(args.len() <= 6, "{name}: more than six arguments");
            let copied = args.iter().filter(|&&a| a == Path || a == Sockaddr).count();
            assert!(
                copied <= 1,
                "{name}: the kernel copies one argument at most"
            );
            assert!(
                !row.copied_on_success || copied == 1,
                "{name}: copied on success, but has no path or address to copy"
            );
            let last = args.len().saturating_sub(1);
            for (i, &kind) in args.iter().enumerate() {
                match kind {
                    // The kernel reads the address's length from the next argument.
                    Sockaddr => assert_eq!(args.get(i + 1), Some(&UDec), "{name}: {i}"),
                    // Shown or hidden according to the flags just before it.
                    OpenMode => assert!(
                        i == last && i > 0 && args[i - 1] == OpenFlags,
                        "{name}: {i}"
                    ),
                    // Read according to the command, which the decoder takes from argument 1.
                    FcntlValue => {
                        assert!(i == last && args.get(1) == Some(&FcntlCmd), "{name}: {i}")
                    }
                    // Read according to the domain, which the decoder takes from argument 0.
                    Protocol => assert_eq!(args.first(), Some(&Domain), "{name}: {i}"),
                    _ => {}
                }
            }
        }
    }
}
