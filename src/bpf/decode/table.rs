//! Per syscall, what its arguments are: the kind of each (how it prints) and which one the kernel
//! copies user memory for (a path or a socket address), with when it copies it. The loader pushes
//! the copy part into the kernel ([`spec_table`]); the decoder reads the kinds ([`signature`]).
//! Names are the kernel's, as in `syscalls`; numbers live there, not here.

use crate::bpf::raw::{Arch, DataSpec};
use crate::bpf::syscalls;

// --- What the kernel copies ----------------------------------------------------------------------

/// Which user memory the kernel must copy for syscall `nr` on `arch`: the path of path-taking
/// syscalls, the socket address of `bind`/`connect`/`sendto`, nothing otherwise; see
/// [`copied_on_success`] for when.
pub fn data_spec(arch: Arch, nr: u32) -> DataSpec {
    syscalls::name(arch, nr).map_or(DataSpec::None, spec_for)
}

/// Every syscall of `arch` with something to copy, by number: the table the loader pushes into the
/// kernel (one [`DataSpec::encode`]d byte per syscall number).
pub fn spec_table(arch: Arch) -> Vec<(u32, DataSpec)> {
    syscalls::table(arch)
        .iter()
        .map(|&(nr, name)| (nr, spec_for(name)))
        .filter(|&(_, spec)| spec != DataSpec::None)
        .collect()
}

pub(super) fn spec_for(name: &str) -> DataSpec {
    let on_success = copied_on_success(name);
    let path = |ptr_arg| DataSpec::Str {
        ptr_arg,
        on_success,
    };
    match name {
        // The path is the first argument.
        "open" | "creat" | "stat" | "lstat" | "access" | "execve" | "unlink" | "mkdir"
        | "rmdir" | "chdir" | "chroot" | "readlink" | "truncate" | "chmod" | "chown" | "lchown"
        | "rename" | "link" | "mknod" | "statfs" | "utime" | "utimes" | "umount2" | "swapon"
        | "swapoff" | "acct" | "pivot_root" | "setxattr" | "lsetxattr" | "getxattr"
        | "lgetxattr" | "listxattr" | "llistxattr" | "removexattr" | "lremovexattr" => path(0),
        // After a directory fd (or, for mount, the source): the second argument.
        "openat" | "openat2" | "newfstatat" | "statx" | "faccessat" | "faccessat2" | "execveat"
        | "unlinkat" | "mkdirat" | "readlinkat" | "fchmodat" | "fchmodat2" | "fchownat"
        | "renameat" | "renameat2" | "linkat" | "mknodat" | "futimesat" | "utimensat"
        | "name_to_handle_at" | "inotify_add_watch" | "mount" | "open_tree" | "fspick"
        | "move_mount" | "mount_setattr" | "quotactl" => path(1),
        // symlink(target, linkpath): the target need not exist; what can fail is the link path.
        "symlink" => path(1),
        "symlinkat" => path(2),
        "bind" | "connect" => DataSpec::Sockaddr {
            ptr_arg: 1,
            len_arg: 2,
            on_success,
        },
        "sendto" => DataSpec::Sockaddr {
            ptr_arg: 4,
            len_arg: 5,
            on_success,
        },
        _ => DataSpec::None,
    }
}

/// Whether a syscall's path or address is copied when the call succeeds; a failing call's always
/// is. Copying user memory is the dearest part of a record (a helper call per syscall: on the
/// benchmark's `tar xf`, 70% of the syscalls take a path and the copies were most of the
/// recorder's cost), and a successful `stat`, `access`, `chmod` or `utimensat` says little in a
/// postmortem. Copied on success: what the decoder needs later (an open's path names the fd it
/// returns; a bound or connected socket is named by its address), what the timeline shows (exec),
/// and the calls that change the file tree or the process's view of it, which are rare and worth
/// their cost. Any other successful call shows its path argument as an uncopied pointer.
pub(super) fn copied_on_success(name: &str) -> bool {
    matches!(
        name,
        "execve"
            | "execveat"
            | "open"
            | "openat"
            | "openat2"
            | "creat"
            | "bind"
            | "connect"
            | "sendto"
            | "chdir"
            | "chroot"
            | "pivot_root"
            | "mount"
            | "umount2"
            | "move_mount"
            | "mkdir"
            | "mkdirat"
            | "rmdir"
            | "unlink"
            | "unlinkat"
            | "rename"
            | "renameat"
            | "renameat2"
            | "link"
            | "linkat"
            | "symlink"
            | "symlinkat"
            | "mknod"
            | "mknodat"
    )
}

// --- Argument kinds and syscall signatures -------------------------------------------------------

/// How one argument reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arg {
    /// A file descriptor (`int`), annotated with what it refers to when known: `3</etc/passwd>`.
    Fd,
    /// A directory fd of an `*at` call: `AT_FDCWD` or an fd.
    DirFd,
    /// A path the kernel copied (per [`data_spec`]).
    Path,
    /// A socket address the kernel copied (per [`data_spec`]).
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

// clone's argument order depends on the architecture (kernel/fork.c): x86_64 takes
// (flags, newsp, parent_tid, child_tid, tls), arm64 has CONFIG_CLONE_BACKWARDS:
// (flags, newsp, parent_tid, tls, child_tid).
pub(super) const CLONE_X86_64: &[Arg] = &[CloneFlags, Ptr, Ptr, Ptr, Hex];
pub(super) const CLONE_AARCH64: &[Arg] = &[CloneFlags, Ptr, Ptr, Hex, Ptr];

/// The arguments of the syscalls worth reading in a postmortem. `None`: six raw hex arguments.
pub(super) fn signature(arch: Arch, name: &str) -> Option<&'static [Arg]> {
    Some(match name {
        // I/O on fds.
        "read" | "write" => &[Fd, Ptr, UDec],
        "pread64" | "pwrite64" => &[Fd, Ptr, UDec, LDec],
        "readv" | "writev" => &[Fd, Ptr, IDec],
        "preadv" | "pwritev" => &[Fd, Ptr, IDec, LDec],
        "preadv2" | "pwritev2" => &[Fd, Ptr, IDec, LDec, Hex],
        "close" | "fsync" | "fdatasync" | "fchdir" | "syncfs" | "dup" => &[Fd],
        "dup2" => &[Fd, Fd],
        "dup3" => &[Fd, Fd, FdFlags],
        "close_range" => &[UDec, UDec, Hex],
        "pipe" => &[Ptr],
        "pipe2" => &[Ptr, FdFlags],
        "lseek" => &[Fd, LDec, Whence],
        "ioctl" => &[Fd, Hex, Hex],
        "fstat" | "fstatfs" => &[Fd, Ptr],
        "ftruncate" => &[Fd, LDec],
        "fchmod" => &[Fd, Mode],
        "fchown" => &[Fd, Uid, Uid],
        "getdents" | "getdents64" => &[Fd, Ptr, UDec],
        "sendfile" => &[Fd, Fd, Ptr, UDec],
        "splice" => &[Fd, Ptr, Fd, Ptr, UDec, Hex],
        "copy_file_range" => &[Fd, Ptr, Fd, Ptr, UDec, Hex],
        "fallocate" => &[Fd, IDec, LDec, LDec],
        "fadvise64" => &[Fd, LDec, LDec, IDec],
        "fcntl" => &[Fd, FcntlCmd, FcntlValue],
        "flock" => &[Fd, FlockOp],
        "fgetxattr" => &[Fd, Ptr, Ptr, UDec],
        "fsetxattr" => &[Fd, Ptr, Ptr, UDec, Hex],
        "flistxattr" => &[Fd, Ptr, UDec],
        "fremovexattr" => &[Fd, Ptr],
        // Paths.
        "open" => &[Path, OpenFlags, OpenMode],
        "openat" => &[DirFd, Path, OpenFlags, OpenMode],
        "openat2" => &[DirFd, Path, Ptr, UDec],
        "creat" => &[Path, Mode],
        "stat" | "lstat" | "statfs" | "utime" | "utimes" => &[Path, Ptr],
        "newfstatat" => &[DirFd, Path, Ptr, AtFlags],
        "statx" => &[DirFd, Path, AtFlags, Hex, Ptr],
        "access" => &[Path, AccessMode],
        "faccessat" => &[DirFd, Path, AccessMode],
        "faccessat2" => &[DirFd, Path, AccessMode, FaccessatFlags],
        "execve" => &[Path, Argv, Argv],
        "execveat" => &[DirFd, Path, Argv, Argv, AtFlags],
        "unlink" | "rmdir" | "chdir" | "chroot" | "acct" | "swapoff" => &[Path],
        "swapon" | "umount2" => &[Path, Hex],
        "unlinkat" => &[DirFd, Path, UnlinkatFlags],
        "mkdir" | "chmod" => &[Path, Mode],
        "mkdirat" | "fchmodat" => &[DirFd, Path, Mode],
        "fchmodat2" => &[DirFd, Path, Mode, AtFlags],
        "readlink" => &[Path, Ptr, UDec],
        "readlinkat" => &[DirFd, Path, Ptr, UDec],
        "truncate" => &[Path, LDec],
        "chown" | "lchown" => &[Path, Uid, Uid],
        "fchownat" => &[DirFd, Path, Uid, Uid, AtFlags],
        "rename" | "link" | "pivot_root" => &[Path, Ptr],
        "renameat" => &[DirFd, Path, DirFd, Ptr],
        "renameat2" => &[DirFd, Path, DirFd, Ptr, RenameFlags],
        "linkat" => &[DirFd, Path, DirFd, Ptr, AtFlags],
        "symlink" => &[Ptr, Path],
        "symlinkat" => &[Ptr, DirFd, Path],
        "mknod" => &[Path, Mode, Hex],
        "mknodat" => &[DirFd, Path, Mode, Hex],
        "futimesat" => &[DirFd, Path, Ptr],
        "utimensat" => &[DirFd, Path, Ptr, AtFlags],
        "name_to_handle_at" => &[DirFd, Path, Ptr, Ptr, AtFlags],
        "mount" => &[Ptr, Path, Ptr, Hex, Ptr],
        "open_tree" | "fspick" => &[DirFd, Path, Hex],
        "move_mount" => &[DirFd, Path, DirFd, Ptr, Hex],
        "mount_setattr" => &[DirFd, Path, Hex, Ptr, UDec],
        "quotactl" => &[Hex, Path, IDec, Ptr],
        "getxattr" | "lgetxattr" => &[Path, Ptr, Ptr, UDec],
        "setxattr" | "lsetxattr" => &[Path, Ptr, Ptr, UDec, Hex],
        "listxattr" | "llistxattr" => &[Path, Ptr, UDec],
        "removexattr" | "lremovexattr" => &[Path, Ptr],
        "inotify_add_watch" => &[Fd, Path, Hex],
        "inotify_rm_watch" => &[Fd, IDec],
        "getcwd" => &[Ptr, UDec],
        // Sockets.
        "socket" => &[Domain, SockType, Protocol],
        "socketpair" => &[Domain, SockType, Protocol, Ptr],
        "bind" | "connect" => &[Fd, Sockaddr, UDec],
        "accept" | "getsockname" | "getpeername" => &[Fd, Ptr, Ptr],
        "accept4" => &[Fd, Ptr, Ptr, SockFlags],
        "listen" => &[Fd, IDec],
        "shutdown" => &[Fd, ShutHow],
        "sendto" => &[Fd, Ptr, UDec, MsgFlags, Sockaddr, UDec],
        "recvfrom" => &[Fd, Ptr, UDec, MsgFlags, Ptr, Ptr],
        "sendmsg" | "recvmsg" => &[Fd, Ptr, MsgFlags],
        "sendmmsg" => &[Fd, Ptr, UDec, MsgFlags],
        "recvmmsg" => &[Fd, Ptr, UDec, MsgFlags, Ptr],
        "setsockopt" => &[Fd, IDec, IDec, Ptr, UDec],
        "getsockopt" => &[Fd, IDec, IDec, Ptr, Ptr],
        // Processes and signals.
        "clone" => match arch {
            Arch::X86_64 => CLONE_X86_64,
            Arch::Aarch64 => CLONE_AARCH64,
        },
        "clone3" => &[Ptr, UDec],
        "fork" | "vfork" | "getpid" | "getppid" | "gettid" | "getuid" | "geteuid" | "getgid"
        | "getegid" | "getpgrp" | "setsid" | "sched_yield" | "pause" | "sync" | "vhangup"
        | "munlockall" | "inotify_init" | "restart_syscall" | "rt_sigreturn" => &[],
        "unshare" => &[NsFlags],
        "setns" => &[Fd, NsFlags],
        "exit" | "exit_group" => &[IDec],
        "wait4" => &[Pid, Ptr, WaitOpts, Ptr],
        "waitid" => &[IDec, IDec, Ptr, WaitOpts, Ptr],
        "kill" | "tkill" => &[Pid, Signal],
        "tgkill" => &[Pid, Pid, Signal],
        "rt_sigqueueinfo" => &[Pid, Signal, Ptr],
        "rt_tgsigqueueinfo" => &[Pid, Pid, Signal, Ptr],
        "pidfd_open" => &[Pid, Hex],
        "pidfd_send_signal" => &[Fd, Signal, Ptr, Hex],
        "rt_sigaction" => &[Signal, Ptr, Ptr, UDec],
        "rt_sigprocmask" => &[SigHow, Ptr, Ptr, UDec],
        "rt_sigsuspend" | "rt_sigpending" => &[Ptr, UDec],
        "rt_sigtimedwait" => &[Ptr, Ptr, Ptr, UDec],
        "sigaltstack" => &[Ptr, Ptr],
        "ptrace" => &[IDec, Pid, Ptr, Ptr],
        "prctl" => &[IDec, Hex, Hex, Hex, Hex],
        "arch_prctl" => &[Hex, Hex],
        "seccomp" => &[UDec, Hex, Ptr],
        "setpgid" => &[Pid, Pid],
        "getpgid" | "getsid" => &[Pid],
        "setuid" | "setgid" | "setfsuid" | "setfsgid" => &[Uid],
        "setreuid" | "setregid" => &[Uid, Uid],
        "setresuid" | "setresgid" => &[Uid, Uid, Uid],
        "getresuid" | "getresgid" => &[Ptr, Ptr, Ptr],
        "getgroups" | "setgroups" => &[IDec, Ptr],
        "capget" | "capset" => &[Ptr, Ptr],
        "umask" => &[Mode],
        "prlimit64" => &[Pid, IDec, Ptr, Ptr],
        "getrlimit" | "setrlimit" | "getrusage" => &[IDec, Ptr],
        "sched_getaffinity" | "sched_setaffinity" => &[Pid, UDec, Ptr],
        "set_tid_address" | "uname" | "sysinfo" | "times" | "time" => &[Ptr],
        "set_robust_list" => &[Ptr, UDec],
        "rseq" => &[Ptr, UDec, Hex, Hex],
        // Memory.
        "mmap" => &[Ptr, UDec, Prot, MapFlags, Fd, Hex],
        "mprotect" => &[Ptr, UDec, Prot],
        "munmap" | "mlock" | "munlock" => &[Ptr, UDec],
        "brk" => &[Ptr],
        "mremap" => &[Ptr, UDec, UDec, Hex, Ptr],
        "madvise" => &[Ptr, UDec, IDec],
        "msync" => &[Ptr, UDec, Hex],
        "mlockall" => &[Hex],
        "memfd_create" => &[Ptr, Hex],
        // Waiting and time.
        "futex" => &[Ptr, FutexOp, IDec, Ptr, Ptr, Hex],
        "nanosleep" | "gettimeofday" => &[Ptr, Ptr],
        "clock_gettime" | "clock_getres" => &[IDec, Ptr],
        "clock_nanosleep" => &[IDec, Hex, Ptr, Ptr],
        "getitimer" => &[IDec, Ptr],
        "setitimer" => &[IDec, Ptr, Ptr],
        "alarm" => &[UDec],
        "poll" => &[Ptr, UDec, IDec],
        "ppoll" => &[Ptr, UDec, Ptr, Ptr, UDec],
        "select" => &[IDec, Ptr, Ptr, Ptr, Ptr],
        "pselect6" => &[IDec, Ptr, Ptr, Ptr, Ptr, Ptr],
        "epoll_create" => &[IDec],
        "epoll_create1" | "inotify_init1" => &[FdFlags],
        "epoll_ctl" => &[Fd, IDec, Fd, Ptr],
        "epoll_wait" => &[Fd, Ptr, IDec, IDec],
        "epoll_pwait" => &[Fd, Ptr, IDec, IDec, Ptr, UDec],
        "epoll_pwait2" => &[Fd, Ptr, IDec, Ptr, Ptr, UDec],
        "eventfd" => &[UDec],
        "eventfd2" => &[UDec, FdFlags],
        "timerfd_create" => &[IDec, FdFlags],
        "signalfd4" => &[Fd, Ptr, UDec, FdFlags],
        "getrandom" => &[Ptr, UDec, Hex],
        "getcpu" => &[Ptr, Ptr, Ptr],
        "io_uring_setup" => &[UDec, Ptr],
        "io_uring_enter" => &[Fd, UDec, UDec, Hex, Ptr, UDec],
        "io_uring_register" => &[Fd, UDec, Ptr, UDec],
        "bpf" => &[IDec, Ptr, UDec],
        "membarrier" => &[IDec, Hex, IDec],
        _ => return None,
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::decode::flight_recorder;
    use crate::bpf::decode::test_support::*;

    // --- Data specs ----------------------------------------------------------------------------------

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
                        on_success: copied_on_success(name),
                    },
                    (None, Some(p)) => DataSpec::Sockaddr {
                        ptr_arg: p as u8,
                        len_arg: p as u8 + 1,
                        on_success: copied_on_success(name),
                    },
                    (None, None) => DataSpec::None,
                    (Some(_), Some(_)) => panic!("{name}: two copied arguments"),
                };
                assert_eq!(spec, want, "{arch:?} {name}");
                assert!(sig.len() <= 6, "{name}");
            }
        }
    }
}
