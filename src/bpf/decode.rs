//! Syscall records in report terms: names, strace-like arguments, errno names, the `strace -c`-like
//! summary and the captured output.
//!
//! This file owns the meaning of a raw syscall record: which user memory the kernel must copy for
//! each syscall ([`data_spec`], pushed into the kernel by the loader), and how a record reads in a
//! report ([`decode_syscall`]). It does not touch libbpf, maps or time sources: the loader hands it
//! [`RawSyscall`]s and a function from boot time to wall time, and tests hand it captured records.
//!
//! Decoding never panics and never trusts the record: arguments are whatever was in the registers
//! (`int` arguments are read from their low 32 bits, as the kernel does), the copied bytes may be
//! short, cut or garbage, and the syscall number may be unknown.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Utc};

use super::errno;
use super::raw::{Arch, DataSpec, RawContainer, RawStream, RawSyscall};
use super::syscalls;
use crate::model::{signal_name, CapturedOutput, StreamCapture, SyscallEvent, SyscallStat};

/// The largest errno a syscall returns as `-errno`; returns in `-4095..=-1` are errors
/// (`IS_ERR_VALUE` in the kernel, `-4095` is `-MAX_ERRNO`).
const MAX_ERRNO: i64 = 4095;

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

fn spec_for(name: &str) -> DataSpec {
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
fn copied_on_success(name: &str) -> bool {
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
enum Arg {
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
const CLONE_X86_64: &[Arg] = &[CloneFlags, Ptr, Ptr, Ptr, Hex];
const CLONE_AARCH64: &[Arg] = &[CloneFlags, Ptr, Ptr, Hex, Ptr];

/// The arguments of the syscalls worth reading in a postmortem. `None`: six raw hex arguments.
fn signature(arch: Arch, name: &str) -> Option<&'static [Arg]> {
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

// --- Decoding one record -------------------------------------------------------------------------

/// The report name of syscall `nr`: the kernel's, or `syscall_<nr>` when the table has none.
pub fn syscall_name(arch: Arch, nr: u32) -> String {
    syscalls::name(arch, nr).map_or_else(|| format!("syscall_{nr}"), str::to_string)
}

/// The errno of a failed return (`-4095..=-1`), `None` for success.
pub fn errno_of(ret: i64) -> Option<u32> {
    (-MAX_ERRNO..=-1)
        .contains(&ret)
        .then(|| ret.unsigned_abs() as u32)
}

/// The report name of an errno: the Linux name, or `ERRNO_<n>` for a value Linux does not name.
pub fn errno_name(e: u32) -> String {
    errno::name(e).map_or_else(|| format!("ERRNO_{e}"), str::to_string)
}

/// One syscall as strace would print it. `wall` turns the record's boot-clock nanoseconds into
/// wall time. Arguments that refer to fds carry no path here; [`flight_recorder`] adds them.
pub fn decode_syscall(
    arch: Arch,
    raw: &RawSyscall,
    wall: impl Fn(u64) -> DateTime<Utc>,
) -> SyscallEvent {
    decode_with(arch, raw, &wall, None)
}

fn decode_with(
    arch: Arch,
    raw: &RawSyscall,
    wall: &impl Fn(u64) -> DateTime<Utc>,
    fds: Option<&FdTracker>,
) -> SyscallEvent {
    let name = syscalls::name(arch, raw.nr);
    let ctx = Ctx {
        arch,
        raw,
        spec: data_spec(arch, raw.nr),
        fds,
    };
    let args = match name.and_then(|n| signature(arch, n)) {
        Some(sig) => decode_args(&ctx, name.unwrap_or_default(), sig),
        None => raw.args.iter().map(|&a| hex(a)).collect(),
    };
    // F_GETOWN returns a process group as a negative number, which is not an error.
    let getown = name == Some("fcntl") && int(raw.args[1]) == F_GETOWN;
    let errno = errno_of(raw.ret).filter(|_| !getown).map(errno_name);
    SyscallEvent {
        time: wall(raw.boot_ns),
        pid: raw.pid,
        tid: raw.tid,
        comm: raw.comm.clone(),
        syscall: name.map_or_else(|| format!("syscall_{}", raw.nr), str::to_string),
        args,
        ret: raw.ret,
        errno,
    }
}

struct Ctx<'a> {
    arch: Arch,
    raw: &'a RawSyscall,
    spec: DataSpec,
    fds: Option<&'a FdTracker>,
}

fn decode_args(ctx: &Ctx, name: &str, sig: &[Arg]) -> Vec<String> {
    let a = &ctx.raw.args;
    let mut n = sig.len();
    match name {
        // The mode of open/openat only means something when a file may be created.
        "open" | "openat" => {
            let flags = a[sig.len() - 2];
            if flags & (O_CREAT | O_TMPFILE_BIT) == 0 {
                n -= 1;
            }
        }
        "fcntl" if !fcntl_takes_arg(int(a[1])) => n -= 1,
        _ => {}
    }
    sig.iter()
        .take(n)
        .enumerate()
        .map(|(i, &kind)| fmt_arg(ctx, i, kind))
        .collect()
}

/// An `int` argument: the kernel reads the low 32 bits of the register.
fn int(v: u64) -> i32 {
    v as u32 as i32
}

fn hex(v: u64) -> String {
    if v == 0 {
        "0".to_string()
    } else {
        format!("{v:#x}")
    }
}

fn ptr(v: u64) -> String {
    if v == 0 {
        "NULL".to_string()
    } else {
        format!("{v:#x}")
    }
}

fn fmt_arg(ctx: &Ctx, i: usize, kind: Arg) -> String {
    let v = ctx.raw.args[i];
    match kind {
        Fd => fmt_fd(ctx, int(v)),
        DirFd if int(v) == AT_FDCWD => "AT_FDCWD".to_string(),
        DirFd => fmt_fd(ctx, int(v)),
        Path => fmt_path(ctx, i),
        Sockaddr => fmt_sockaddr_arg(ctx, i),
        Ptr => ptr(v),
        Hex => hex(v),
        UDec => v.to_string(),
        IDec | Pid => int(v).to_string(),
        LDec => (v as i64).to_string(),
        Mode | OpenMode => fmt_mode(v as u32),
        OpenFlags => open_flags(ctx.arch, v as u32),
        FdFlags => fd_flags(ctx.arch, v as u32),
        AtFlags => flags(v as u32 as u64, AT_FLAGS, "0"),
        UnlinkatFlags => flags(v as u32 as u64, &[(0x200, "AT_REMOVEDIR")], "0"),
        FaccessatFlags => flags(v as u32 as u64, FACCESSAT_FLAGS, "0"),
        AccessMode => flags(v as u32 as u64, ACCESS_MODES, "F_OK"),
        RenameFlags => flags(v as u32 as u64, RENAME_FLAGS, "0"),
        FcntlCmd => fcntl_cmd(int(v)),
        FcntlValue => fcntl_arg(ctx, int(ctx.raw.args[1]), v),
        FlockOp => flags(v as u32 as u64, FLOCK_OPS, "0"),
        CloneFlags => clone_flags(v),
        NsFlags => flags(v as u32 as u64, NS_FLAGS, "0"),
        Signal => fmt_signal(int(v)),
        Uid if v as u32 == u32::MAX => "-1".to_string(),
        Uid => (v as u32).to_string(),
        Prot => prot(ctx.arch, v as u32),
        MapFlags => map_flags(ctx.arch, v as u32),
        Domain => domain_name(int(v)).map_or_else(|| int(v).to_string(), str::to_string),
        SockType => sock_type(v as u32),
        Protocol => protocol(int(ctx.raw.args[0]), int(v)),
        SockFlags => flags(v as u32 as u64, SOCK_FLAGS, "0"),
        ShutHow => pick(int(v), &["SHUT_RD", "SHUT_WR", "SHUT_RDWR"]),
        MsgFlags => flags(v as u32 as u64, MSG_FLAGS, "0"),
        Whence => pick(
            int(v),
            &["SEEK_SET", "SEEK_CUR", "SEEK_END", "SEEK_DATA", "SEEK_HOLE"],
        ),
        WaitOpts => flags(v as u32 as u64, WAIT_OPTS, "0"),
        SigHow => pick(int(v), &["SIG_BLOCK", "SIG_UNBLOCK", "SIG_SETMASK"]),
        FutexOp => futex_op(v as u32),
        Argv if v == 0 => "NULL".to_string(),
        Argv => "[...]".to_string(),
    }
}

/// The name at index `v`, or the number.
fn pick(v: i32, names: &[&str]) -> String {
    usize::try_from(v)
        .ok()
        .and_then(|i| names.get(i))
        .map_or_else(|| v.to_string(), |s| s.to_string())
}

fn fmt_fd(ctx: &Ctx, fd: i32) -> String {
    match ctx.fds.and_then(|t| t.label(ctx.raw.pid, fd)) {
        Some(label) => format!("{fd}<{label}>"),
        None => fd.to_string(),
    }
}

fn fmt_signal(sig: i32) -> String {
    if (1..=64).contains(&sig) {
        signal_name(sig)
    } else {
        sig.to_string()
    }
}

/// Bit flags by name, in table order; bits no name covers are appended in hex.
fn flags(v: u64, names: &[(u64, &str)], zero: &str) -> String {
    if v == 0 {
        return zero.to_string();
    }
    let mut out: Vec<String> = Vec::new();
    let mut rest = v;
    for &(bits, name) in names {
        if bits != 0 && rest & bits == bits {
            out.push(name.to_string());
            rest &= !bits;
        }
    }
    if rest != 0 {
        out.push(format!("{rest:#x}"));
    }
    out.join("|")
}

// --- Paths ---------------------------------------------------------------------------------------

/// The copied path of argument `i`: quoted and escaped, `"..."...` when cut.
fn fmt_path(ctx: &Ctx, i: usize) -> String {
    let v = ctx.raw.args[i];
    if !matches!(ctx.spec, DataSpec::Str { ptr_arg, .. } if usize::from(ptr_arg) == i) {
        return ptr(v);
    }
    if v == 0 {
        return "NULL".to_string();
    }
    // A successful call whose path the kernel does not copy (`copied_on_success`): say so, rather
    // than show an empty string or a bare number that reads like a lost copy.
    if !ctx.spec.copied_for(ctx.raw.ret) {
        return not_copied(v);
    }
    // Nothing copied because the pointer was bad: show the pointer, not an empty string.
    if ctx.raw.data.is_empty() && errno_of(ctx.raw.ret) == Some(EFAULT) {
        return ptr(v);
    }
    let (s, cut) = path_bytes(ctx.raw);
    let mut out = format!("\"{}\"", escape(s));
    if cut {
        out.push_str("...");
    }
    out
}

/// A user pointer the kernel did not copy by policy, strace-style with a comment.
fn not_copied(v: u64) -> String {
    format!("{} /* not copied */", ptr(v))
}

/// The copied string up to its NUL, and whether it was cut at the record's capacity.
fn path_bytes(raw: &RawSyscall) -> (&[u8], bool) {
    match raw.data.iter().position(|&b| b == 0) {
        // A NUL before the last byte ends the string; one in the last byte may be the one the
        // kernel's bounded copy wrote over a longer string, so the flag decides.
        Some(p) if p + 1 < raw.data.len() => (&raw.data[..p], false),
        Some(p) => (&raw.data[..p], raw.data_truncated),
        None => (&raw.data[..], raw.data_truncated),
    }
}

/// C-style escaping of bytes for a quoted string: printable text (UTF-8 included) as is, `"` and `\`
/// escaped, control characters and invalid bytes as `\n`, `\t`, `\xNN`.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x80 && c.is_control() => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Unquoted text of a path for an fd label.
fn path_label(raw: &RawSyscall) -> String {
    let (s, cut) = path_bytes(raw);
    let mut out = escape(s);
    if cut {
        out.push_str("...");
    }
    out
}

// --- Socket addresses ----------------------------------------------------------------------------

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

fn fmt_sockaddr_arg(ctx: &Ctx, i: usize) -> String {
    let v = ctx.raw.args[i];
    let copied =
        matches!(ctx.spec, DataSpec::Sockaddr { ptr_arg, .. } if usize::from(ptr_arg) == i);
    if v == 0 {
        return "NULL".to_string();
    }
    if copied && !ctx.spec.copied_for(ctx.raw.ret) {
        return not_copied(v);
    }
    if !copied || ctx.raw.data.is_empty() {
        return ptr(v);
    }
    let mut out = sockaddr(&ctx.raw.data);
    if ctx.raw.data_truncated {
        out.push_str("...");
    }
    out
}

/// A `struct sockaddr` as people write addresses: `0.0.0.0:9443`, `[::1]:8080`, a unix socket's
/// path or `@abstract` name, else the family. The family is read little-endian (x86_64 and
/// arm64 Linux both are), the port in network order.
pub fn sockaddr(data: &[u8]) -> String {
    let Some(family) = data.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]])) else {
        return "{sa_family=?}".to_string();
    };
    let port = || data.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
    match family {
        AF_INET => match (port(), data.get(4..8)) {
            (Some(port), Some(a)) => format!("{}:{port}", Ipv4Addr::new(a[0], a[1], a[2], a[3])),
            _ => "AF_INET{?}".to_string(),
        },
        AF_INET6 => {
            let addr = data
                .get(8..24)
                .and_then(|a| <[u8; 16]>::try_from(a).ok())
                .map(Ipv6Addr::from);
            match (port(), addr) {
                (Some(port), Some(ip)) => {
                    let scope = data
                        .get(24..28)
                        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
                        .unwrap_or(0);
                    if scope != 0 {
                        format!("[{ip}%{scope}]:{port}")
                    } else {
                        format!("[{ip}]:{port}")
                    }
                }
                _ => "AF_INET6{?}".to_string(),
            }
        }
        AF_UNIX => {
            let path = &data[2..];
            match path.first() {
                // Only the family: an unnamed socket (autobind on bind).
                None => "AF_UNIX".to_string(),
                Some(0) => {
                    let name = &path[1..];
                    let end = name.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                    format!("@{}", escape(&name[..end]))
                }
                Some(_) => {
                    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                    escape(&path[..end])
                }
            }
        }
        f => domain_name(i32::from(f)).map_or_else(|| format!("{{sa_family={f}}}"), str::to_string),
    }
}

fn domain_name(d: i32) -> Option<&'static str> {
    const NAMES: [&str; 46] = [
        "AF_UNSPEC",
        "AF_UNIX",
        "AF_INET",
        "AF_AX25",
        "AF_IPX",
        "AF_APPLETALK",
        "AF_NETROM",
        "AF_BRIDGE",
        "AF_ATMPVC",
        "AF_X25",
        "AF_INET6",
        "AF_ROSE",
        "AF_DECnet",
        "AF_NETBEUI",
        "AF_SECURITY",
        "AF_KEY",
        "AF_NETLINK",
        "AF_PACKET",
        "AF_ASH",
        "AF_ECONET",
        "AF_ATMSVC",
        "AF_RDS",
        "AF_SNA",
        "AF_IRDA",
        "AF_PPPOX",
        "AF_WANPIPE",
        "AF_LLC",
        "AF_IB",
        "AF_MPLS",
        "AF_CAN",
        "AF_TIPC",
        "AF_BLUETOOTH",
        "AF_IUCV",
        "AF_RXRPC",
        "AF_ISDN",
        "AF_PHONET",
        "AF_IEEE802154",
        "AF_CAIF",
        "AF_ALG",
        "AF_NFC",
        "AF_VSOCK",
        "AF_KCM",
        "AF_QIPCRTR",
        "AF_SMC",
        "AF_XDP",
        "AF_MCTP",
    ];
    usize::try_from(d).ok().and_then(|i| NAMES.get(i)).copied()
}

fn sock_type(v: u32) -> String {
    let base = v & 0xf;
    let name = match base {
        1 => "SOCK_STREAM".to_string(),
        2 => "SOCK_DGRAM".to_string(),
        3 => "SOCK_RAW".to_string(),
        4 => "SOCK_RDM".to_string(),
        5 => "SOCK_SEQPACKET".to_string(),
        6 => "SOCK_DCCP".to_string(),
        10 => "SOCK_PACKET".to_string(),
        b => b.to_string(),
    };
    let rest = u64::from(v & !0xf);
    if rest == 0 {
        name
    } else {
        format!("{name}|{}", flags(rest, SOCK_FLAGS, "0"))
    }
}

fn protocol(domain: i32, p: i32) -> String {
    let name = match (domain, p) {
        (2 | 10, 0) => "IPPROTO_IP",
        (2 | 10, 1) => "IPPROTO_ICMP",
        (2 | 10, 6) => "IPPROTO_TCP",
        (2 | 10, 17) => "IPPROTO_UDP",
        (2 | 10, 58) => "IPPROTO_ICMPV6",
        (2 | 10, 132) => "IPPROTO_SCTP",
        (2 | 10, 136) => "IPPROTO_UDPLITE",
        (2 | 10, 255) => "IPPROTO_RAW",
        (2 | 10, 262) => "IPPROTO_MPTCP",
        (16, 0) => "NETLINK_ROUTE",
        (16, 4) => "NETLINK_SOCK_DIAG",
        (16, 9) => "NETLINK_AUDIT",
        (16, 15) => "NETLINK_KOBJECT_UEVENT",
        (16, 16) => "NETLINK_GENERIC",
        _ => return p.to_string(),
    };
    name.to_string()
}

const SOCK_FLAGS: &[(u64, &str)] = &[(0o4000, "SOCK_NONBLOCK"), (0o2000000, "SOCK_CLOEXEC")];

const MSG_FLAGS: &[(u64, &str)] = &[
    (0x1, "MSG_OOB"),
    (0x2, "MSG_PEEK"),
    (0x4, "MSG_DONTROUTE"),
    (0x8, "MSG_CTRUNC"),
    (0x10, "MSG_PROXY"),
    (0x20, "MSG_TRUNC"),
    (0x40, "MSG_DONTWAIT"),
    (0x80, "MSG_EOR"),
    (0x100, "MSG_WAITALL"),
    (0x200, "MSG_FIN"),
    (0x400, "MSG_SYN"),
    (0x800, "MSG_CONFIRM"),
    (0x1000, "MSG_RST"),
    (0x2000, "MSG_ERRQUEUE"),
    (0x4000, "MSG_NOSIGNAL"),
    (0x8000, "MSG_MORE"),
    (0x10000, "MSG_WAITFORONE"),
    (0x40000, "MSG_BATCH"),
    (0x4000000, "MSG_ZEROCOPY"),
    (0x20000000, "MSG_FASTOPEN"),
    (0x40000000, "MSG_CMSG_CLOEXEC"),
];

// --- Files: open flags, modes, *at flags, locks --------------------------------------------------

const O_CREAT: u64 = 0o100;
const O_CLOEXEC: u32 = 0o2000000;
const O_DSYNC: u32 = 0o10000;
const O_SYNC_BIT: u32 = 0o4000000;
const O_TMPFILE_BIT: u64 = 0o20000000;
const AT_FDCWD: i32 = -100;
const EFAULT: u32 = 14;

/// The `O_*` bits other than the access mode, in strace's order. x86_64 and arm64 share the
/// asm-generic values except for four bits arm64 (`arch/arm64/include/uapi/asm/fcntl.h`) moves.
fn open_bits(arch: Arch) -> [(u64, &'static str); 15] {
    let (directory, nofollow, direct, largefile) = match arch {
        Arch::X86_64 => (0o200000, 0o400000, 0o40000, 0o100000),
        Arch::Aarch64 => (0o40000, 0o100000, 0o200000, 0o400000),
    };
    [
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (u64::from(O_DSYNC), "O_DSYNC"),
        (0o20000, "O_ASYNC"),
        (direct, "O_DIRECT"),
        (largefile, "O_LARGEFILE"),
        (directory, "O_DIRECTORY"),
        (nofollow, "O_NOFOLLOW"),
        (0o1000000, "O_NOATIME"),
        (u64::from(O_CLOEXEC), "O_CLOEXEC"),
        (0o10000000, "O_PATH"),
    ]
}

fn o_directory(arch: Arch) -> u32 {
    match arch {
        Arch::X86_64 => 0o200000,
        Arch::Aarch64 => 0o40000,
    }
}

/// `O_RDONLY|O_CREAT|O_CLOEXEC`; `O_SYNC` and `O_TMPFILE` are multi-bit and named as such.
fn open_flags(arch: Arch, v: u32) -> String {
    let access = match v & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    };
    let rest = fd_flags(arch, v & !3);
    if rest == "0" {
        access.to_string()
    } else {
        format!("{access}|{rest}")
    }
}

/// The non-access-mode `O_*` bits (also `dup3`, `pipe2`, `eventfd2`, ... flags, which reuse them).
fn fd_flags(arch: Arch, v: u32) -> String {
    let mut v = v;
    let mut names: Vec<String> = Vec::new();
    let bits = open_bits(arch);
    let tmpfile = O_TMPFILE_BIT as u32 | o_directory(arch);
    let sync = O_SYNC_BIT | O_DSYNC;
    let mut specials: Vec<&str> = Vec::new();
    if v & tmpfile == tmpfile {
        specials.push("O_TMPFILE");
        v &= !tmpfile;
    }
    if v & sync == sync {
        specials.push("O_SYNC");
        v &= !sync;
    }
    let rest = flags(u64::from(v), &bits, "");
    names.extend(specials.iter().map(|s| s.to_string()));
    if !rest.is_empty() {
        names.push(rest);
    }
    if names.is_empty() {
        "0".to_string()
    } else {
        names.join("|")
    }
}

/// `0644`; with the file type when set: `S_IFREG|0600`.
fn fmt_mode(m: u32) -> String {
    let kind = match m & 0o170000 {
        0 => None,
        0o010000 => Some("S_IFIFO"),
        0o020000 => Some("S_IFCHR"),
        0o040000 => Some("S_IFDIR"),
        0o060000 => Some("S_IFBLK"),
        0o100000 => Some("S_IFREG"),
        0o120000 => Some("S_IFLNK"),
        0o140000 => Some("S_IFSOCK"),
        _ => return format!("0{m:02o}"),
    };
    let perm = m & !0o170000;
    match kind {
        Some(k) => format!("{k}|0{perm:02o}"),
        None => format!("0{perm:02o}"),
    }
}

const AT_FLAGS: &[(u64, &str)] = &[
    (0x100, "AT_SYMLINK_NOFOLLOW"),
    (0x400, "AT_SYMLINK_FOLLOW"),
    (0x800, "AT_NO_AUTOMOUNT"),
    (0x1000, "AT_EMPTY_PATH"),
    (0x2000, "AT_STATX_FORCE_SYNC"),
    (0x4000, "AT_STATX_DONT_SYNC"),
    (0x8000, "AT_RECURSIVE"),
];

const FACCESSAT_FLAGS: &[(u64, &str)] = &[
    (0x100, "AT_SYMLINK_NOFOLLOW"),
    (0x200, "AT_EACCESS"),
    (0x1000, "AT_EMPTY_PATH"),
];

const ACCESS_MODES: &[(u64, &str)] = &[(4, "R_OK"), (2, "W_OK"), (1, "X_OK")];

const RENAME_FLAGS: &[(u64, &str)] = &[
    (1, "RENAME_NOREPLACE"),
    (2, "RENAME_EXCHANGE"),
    (4, "RENAME_WHITEOUT"),
];

const FLOCK_OPS: &[(u64, &str)] = &[
    (1, "LOCK_SH"),
    (2, "LOCK_EX"),
    (8, "LOCK_UN"),
    (4, "LOCK_NB"),
    (32, "LOCK_MAND"),
    (64, "LOCK_READ"),
    (128, "LOCK_WRITE"),
];

// fcntl commands (asm-generic/fcntl.h, include/uapi/linux/fcntl.h; the same on x86_64 and arm64).
const F_DUPFD: i32 = 0;
const F_SETFD: i32 = 2;
const F_GETOWN: i32 = 9;
const F_DUPFD_CLOEXEC: i32 = 1030;

fn fcntl_cmd_name(cmd: i32) -> Option<&'static str> {
    Some(match cmd {
        0 => "F_DUPFD",
        1 => "F_GETFD",
        2 => "F_SETFD",
        3 => "F_GETFL",
        4 => "F_SETFL",
        5 => "F_GETLK",
        6 => "F_SETLK",
        7 => "F_SETLKW",
        8 => "F_SETOWN",
        9 => "F_GETOWN",
        10 => "F_SETSIG",
        11 => "F_GETSIG",
        15 => "F_SETOWN_EX",
        16 => "F_GETOWN_EX",
        17 => "F_GETOWNER_UIDS",
        36 => "F_OFD_GETLK",
        37 => "F_OFD_SETLK",
        38 => "F_OFD_SETLKW",
        1024 => "F_SETLEASE",
        1025 => "F_GETLEASE",
        1026 => "F_NOTIFY",
        1027 => "F_DUPFD_QUERY",
        1029 => "F_CANCELLK",
        1030 => "F_DUPFD_CLOEXEC",
        1031 => "F_SETPIPE_SZ",
        1032 => "F_GETPIPE_SZ",
        1033 => "F_ADD_SEALS",
        1034 => "F_GET_SEALS",
        1035 => "F_GET_RW_HINT",
        1036 => "F_SET_RW_HINT",
        1037 => "F_GET_FILE_RW_HINT",
        1038 => "F_SET_FILE_RW_HINT",
        _ => return None,
    })
}

fn fcntl_cmd(cmd: i32) -> String {
    fcntl_cmd_name(cmd).map_or_else(|| cmd.to_string(), str::to_string)
}

/// Whether strace shows a third argument for the command (the getters take none).
fn fcntl_takes_arg(cmd: i32) -> bool {
    !matches!(cmd, 1 | 3 | 9 | 11 | 1025 | 1029 | 1032 | 1034)
}

fn fcntl_arg(ctx: &Ctx, cmd: i32, v: u64) -> String {
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC | 1027 | 1031 => int(v).to_string(),
        F_SETFD => flags(v as u32 as u64, &[(1, "FD_CLOEXEC")], "0"),
        4 => open_flags(ctx.arch, v as u32),
        8 => int(v).to_string(),
        10 => fmt_signal(int(v)),
        1024 => pick(int(v), &["F_RDLCK", "F_WRLCK", "F_UNLCK"]),
        1033 => flags(
            v as u32 as u64,
            &[
                (1, "F_SEAL_SEAL"),
                (2, "F_SEAL_SHRINK"),
                (4, "F_SEAL_GROW"),
                (8, "F_SEAL_WRITE"),
                (0x10, "F_SEAL_FUTURE_WRITE"),
                (0x20, "F_SEAL_EXEC"),
            ],
            "0",
        ),
        // Lock commands take a struct flock, which the record does not carry: the pointer.
        5..=7 | 15..=17 | 36..=38 | 1035..=1038 => ptr(v),
        _ => hex(v),
    }
}

// --- Processes, signals, memory ------------------------------------------------------------------

const CLONE_THREAD: u64 = 0x10000;

const CLONE_BITS: &[(u64, &str)] = &[
    (0x100, "CLONE_VM"),
    (0x200, "CLONE_FS"),
    (0x400, "CLONE_FILES"),
    (0x800, "CLONE_SIGHAND"),
    (0x1000, "CLONE_PIDFD"),
    (0x2000, "CLONE_PTRACE"),
    (0x4000, "CLONE_VFORK"),
    (0x8000, "CLONE_PARENT"),
    (CLONE_THREAD, "CLONE_THREAD"),
    (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"),
    (0x80000, "CLONE_SETTLS"),
    (0x100000, "CLONE_PARENT_SETTID"),
    (0x200000, "CLONE_CHILD_CLEARTID"),
    (0x400000, "CLONE_DETACHED"),
    (0x800000, "CLONE_UNTRACED"),
    (0x1000000, "CLONE_CHILD_SETTID"),
    (0x2000000, "CLONE_NEWCGROUP"),
    (0x4000000, "CLONE_NEWUTS"),
    (0x8000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
    (0x80000000, "CLONE_IO"),
];

const NS_FLAGS: &[(u64, &str)] = &[
    (0x80, "CLONE_NEWTIME"),
    (0x200, "CLONE_FS"),
    (0x400, "CLONE_FILES"),
    (0x10000, "CLONE_THREAD"),
    (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"),
    (0x2000000, "CLONE_NEWCGROUP"),
    (0x4000000, "CLONE_NEWUTS"),
    (0x8000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
];

/// `CLONE_VM|CLONE_FS|...|SIGCHLD`: the low byte is the signal sent to the parent at exit.
fn clone_flags(v: u64) -> String {
    let sig = (v & 0xff) as i32;
    let rest = v & !0xff;
    let mut out = if rest == 0 {
        String::new()
    } else {
        flags(rest, CLONE_BITS, "")
    };
    if sig != 0 {
        if !out.is_empty() {
            out.push('|');
        }
        out.push_str(&fmt_signal(sig));
    }
    if out.is_empty() {
        "0".to_string()
    } else {
        out
    }
}

const WAIT_OPTS: &[(u64, &str)] = &[
    (1, "WNOHANG"),
    (2, "WUNTRACED"),
    (4, "WEXITED"),
    (8, "WCONTINUED"),
    (0x1000000, "WNOWAIT"),
    (0x20000000, "__WNOTHREAD"),
    (0x40000000, "__WALL"),
    (0x80000000, "__WCLONE"),
];

fn prot(arch: Arch, v: u32) -> String {
    let mut names = vec![
        (1, "PROT_READ"),
        (2, "PROT_WRITE"),
        (4, "PROT_EXEC"),
        (8, "PROT_SEM"),
        (0x1000000, "PROT_GROWSDOWN"),
        (0x2000000, "PROT_GROWSUP"),
    ];
    if arch == Arch::Aarch64 {
        names.extend([(0x10, "PROT_BTI"), (0x20, "PROT_MTE")]);
    }
    flags(u64::from(v), &names, "PROT_NONE")
}

fn map_flags(arch: Arch, v: u32) -> String {
    let kind = match v & 0xf {
        0 => None,
        1 => Some("MAP_SHARED".to_string()),
        2 => Some("MAP_PRIVATE".to_string()),
        3 => Some("MAP_SHARED_VALIDATE".to_string()),
        k => Some(format!("{k:#x}")),
    };
    let mut names = vec![
        (0x10, "MAP_FIXED"),
        (0x20, "MAP_ANONYMOUS"),
        (0x100, "MAP_GROWSDOWN"),
        (0x800, "MAP_DENYWRITE"),
        (0x1000, "MAP_EXECUTABLE"),
        (0x2000, "MAP_LOCKED"),
        (0x4000, "MAP_NORESERVE"),
        (0x8000, "MAP_POPULATE"),
        (0x10000, "MAP_NONBLOCK"),
        (0x20000, "MAP_STACK"),
        (0x40000, "MAP_HUGETLB"),
        (0x80000, "MAP_SYNC"),
        (0x100000, "MAP_FIXED_NOREPLACE"),
    ];
    if arch == Arch::X86_64 {
        names.push((0x40, "MAP_32BIT"));
    }
    let rest = flags(u64::from(v & !0xf), &names, "");
    match (kind, rest.is_empty()) {
        (None, true) => "0".to_string(),
        (None, false) => rest,
        (Some(k), true) => k,
        (Some(k), false) => format!("{k}|{rest}"),
    }
}

fn futex_op(v: u32) -> String {
    const CMDS: [&str; 14] = [
        "FUTEX_WAIT",
        "FUTEX_WAKE",
        "FUTEX_FD",
        "FUTEX_REQUEUE",
        "FUTEX_CMP_REQUEUE",
        "FUTEX_WAKE_OP",
        "FUTEX_LOCK_PI",
        "FUTEX_UNLOCK_PI",
        "FUTEX_TRYLOCK_PI",
        "FUTEX_WAIT_BITSET",
        "FUTEX_WAKE_BITSET",
        "FUTEX_WAIT_REQUEUE_PI",
        "FUTEX_CMP_REQUEUE_PI",
        "FUTEX_LOCK_PI2",
    ];
    let cmd = v & !(128 | 256);
    let mut out = match CMDS.get(cmd as usize) {
        Some(name) => name.to_string(),
        None => format!("{cmd:#x}"),
    };
    if v & 128 != 0 {
        out.push_str("_PRIVATE");
    }
    if v & 256 != 0 {
        out.push_str("|FUTEX_CLOCK_REALTIME");
    }
    out
}

// --- What fds refer to ---------------------------------------------------------------------------

/// What each process's fds refer to, learnt from the records seen so far (opens, dups, sockets,
/// closes, forks, execs), so the flight recorder can print `flock(3</run/app.lock>, ...)` like
/// `strace -y`. Only what the records show is known: an fd opened before the oldest record, or
/// inherited from runc (stdio), stays a bare number.
#[derive(Debug, Default)]
struct FdTracker {
    /// pid (thread group) -> fd -> (label, close-on-exec).
    tables: HashMap<u32, BTreeMap<i32, (String, bool)>>,
}

impl FdTracker {
    fn label(&self, pid: u32, fd: i32) -> Option<&str> {
        self.tables
            .get(&pid)
            .and_then(|t| t.get(&fd))
            .map(|(l, _)| l.as_str())
    }

    fn set(&mut self, pid: u32, fd: i32, label: String, cloexec: bool) {
        if fd >= 0 {
            self.tables
                .entry(pid)
                .or_default()
                .insert(fd, (label, cloexec));
        }
    }

    fn dup(&mut self, pid: u32, from: i32, to: i32, cloexec: bool) {
        match self.label(pid, from).map(str::to_string) {
            Some(label) => self.set(pid, to, label, cloexec),
            None => self.close(pid, to),
        }
    }

    fn close(&mut self, pid: u32, fd: i32) {
        if let Some(t) = self.tables.get_mut(&pid) {
            t.remove(&fd);
        }
    }

    /// Updates the tables with the outcome of one syscall.
    fn observe(&mut self, arch: Arch, raw: &RawSyscall) {
        let Some(name) = syscalls::name(arch, raw.nr) else {
            return;
        };
        let a = &raw.args;
        let pid = raw.pid;
        let ok = raw.ret >= 0;
        let ret = i32::try_from(raw.ret).unwrap_or(-1);
        match name {
            "open" | "openat" | "openat2" | "creat" if ok => {
                let (dirfd, flags) = match name {
                    "open" => (AT_FDCWD, a[1] as u32),
                    "openat" => (int(a[0]), a[2] as u32),
                    "openat2" => (int(a[0]), 0),
                    _ => (AT_FDCWD, 0),
                };
                let path = path_label(raw);
                let label = match self.label(pid, dirfd) {
                    Some(dir) if !path.starts_with('/') && dir.starts_with('/') => {
                        format!("{}/{path}", dir.trim_end_matches('/'))
                    }
                    _ => path,
                };
                self.set(pid, ret, label, flags & O_CLOEXEC != 0);
            }
            // Linux releases the fd whatever close returns (EINTR and EIO included).
            "close" => self.close(pid, int(a[0])),
            "close_range" if ok => {
                let (first, last) = (a[0] as u32, a[1] as u32);
                if let Some(t) = self.tables.get_mut(&pid) {
                    let in_range =
                        |fd: &i32| u32::try_from(*fd).is_ok_and(|f| (first..=last).contains(&f));
                    if a[2] & 4 != 0 {
                        // CLOSE_RANGE_CLOEXEC marks instead of closing.
                        t.iter_mut()
                            .filter(|(fd, _)| in_range(fd))
                            .for_each(|(_, e)| e.1 = true);
                    } else {
                        t.retain(|fd, _| !in_range(fd));
                    }
                }
            }
            "dup" if ok => self.dup(pid, int(a[0]), ret, false),
            "dup2" if ok => self.dup(pid, int(a[0]), ret, false),
            "dup3" if ok => self.dup(pid, int(a[0]), ret, a[2] as u32 & O_CLOEXEC != 0),
            "fcntl" if ok => match int(a[1]) {
                F_DUPFD => self.dup(pid, int(a[0]), ret, false),
                F_DUPFD_CLOEXEC => self.dup(pid, int(a[0]), ret, true),
                F_SETFD => {
                    if let Some(e) = self
                        .tables
                        .get_mut(&pid)
                        .and_then(|t| t.get_mut(&int(a[0])))
                    {
                        e.1 = a[2] & 1 != 0;
                    }
                }
                _ => {}
            },
            "socket" if ok => {
                let domain = domain_name(int(a[0])).unwrap_or("?");
                self.set(
                    pid,
                    ret,
                    format!("socket:{domain}"),
                    a[1] as u32 & O_CLOEXEC != 0,
                );
            }
            "accept" | "accept4" if ok => {
                let cloexec = name == "accept4" && a[3] as u32 & O_CLOEXEC != 0;
                self.set(pid, ret, "socket:accepted".to_string(), cloexec);
            }
            // A bound or connected socket reads best by its address; a non-blocking connect in
            // progress (EINPROGRESS) counts.
            "bind" | "connect"
                if (ok || errno_of(raw.ret) == Some(115)) && !raw.data.is_empty() =>
            {
                let fd = int(a[0]);
                if let Some(e) = self.tables.get_mut(&pid).and_then(|t| t.get_mut(&fd)) {
                    e.0 = format!("socket:{}", sockaddr(&raw.data));
                }
            }
            "epoll_create" | "epoll_create1" if ok => {
                let cloexec = name == "epoll_create1" && a[0] as u32 & O_CLOEXEC != 0;
                self.set(pid, ret, "anon_inode:[eventpoll]".to_string(), cloexec);
            }
            "eventfd" | "eventfd2" if ok => {
                let cloexec = name == "eventfd2" && a[1] as u32 & O_CLOEXEC != 0;
                self.set(pid, ret, "anon_inode:[eventfd]".to_string(), cloexec);
            }
            "timerfd_create" if ok => {
                let cloexec = a[1] as u32 & O_CLOEXEC != 0;
                self.set(pid, ret, "anon_inode:[timerfd]".to_string(), cloexec);
            }
            "signalfd4" if ok && int(a[0]) == -1 => {
                let cloexec = a[3] as u32 & O_CLOEXEC != 0;
                self.set(pid, ret, "anon_inode:[signalfd]".to_string(), cloexec);
            }
            "inotify_init" | "inotify_init1" if ok => {
                let cloexec = name == "inotify_init1" && a[0] as u32 & O_CLOEXEC != 0;
                self.set(pid, ret, "anon_inode:inotify".to_string(), cloexec);
            }
            "memfd_create" if ok => {
                self.set(pid, ret, "memfd".to_string(), a[1] & 1 != 0);
            }
            "pidfd_open" if ok => self.set(pid, ret, "anon_inode:[pidfd]".to_string(), true),
            "execve" | "execveat" if raw.ret == 0 => {
                if let Some(t) = self.tables.get_mut(&pid) {
                    t.retain(|_, (_, cloexec)| !*cloexec);
                }
            }
            // A new process starts with a copy of its parent's fds (threads share the table,
            // and a thread's tid is never looked up as a pid).
            "clone" | "clone3" | "fork" | "vfork" if raw.ret > 0 => {
                if name == "clone" && a[0] & CLONE_THREAD != 0 {
                    return;
                }
                let child = u32::try_from(raw.ret).unwrap_or(0);
                if let Some(t) = self.tables.get(&pid).cloned() {
                    self.tables.insert(child, t);
                }
            }
            _ => {}
        }
    }
}

// --- Container-level views -----------------------------------------------------------------------

/// Calls and errors per syscall name, like `strace -c -f`: errors broken down by errno name, the
/// kernel-internal `ERESTART*` codes dropped (an interrupted call is restarted, not failed), most
/// called first, then by name.
pub fn summary(arch: Arch, raw: &RawContainer) -> Vec<SyscallStat> {
    fn entry(map: &mut BTreeMap<String, SyscallStat>, name: String) -> &mut SyscallStat {
        map.entry(name.clone()).or_insert_with(|| SyscallStat {
            syscall: name,
            calls: 0,
            errors: 0,
            errnos: BTreeMap::new(),
        })
    }
    let mut by_name: BTreeMap<String, SyscallStat> = BTreeMap::new();
    for &(nr, calls) in &raw.calls {
        let st = entry(&mut by_name, syscall_name(arch, nr));
        st.calls = st.calls.saturating_add(calls);
    }
    for &(nr, e, count) in &raw.errors {
        if e == 0 || count == 0 || errno::is_restart(e) {
            continue;
        }
        let st = entry(&mut by_name, syscall_name(arch, nr));
        st.errors = st.errors.saturating_add(count);
        let n = st.errnos.entry(errno_name(e)).or_insert(0);
        *n = n.saturating_add(count);
    }
    let mut out: Vec<SyscallStat> = by_name
        .into_values()
        .filter(|s| s.calls > 0 || s.errors > 0)
        .collect();
    out.sort_by(|a, b| {
        b.calls
            .cmp(&a.calls)
            .then_with(|| a.syscall.cmp(&b.syscall))
    });
    out
}

/// The flight recorder decoded, oldest first (in ring order: times have tick resolution and may
/// step back by a tick across CPUs, so sorting by them would misorder calls of one tick), with
/// fds annotated by what the earlier records show they are.
pub fn flight_recorder(
    arch: Arch,
    raw: &RawContainer,
    wall: impl Fn(u64) -> DateTime<Utc>,
) -> Vec<SyscallEvent> {
    let mut fds = FdTracker::default();
    in_ring_order(&raw.ring)
        .into_iter()
        .map(|r| {
            let ev = decode_with(arch, r, &wall, Some(&fds));
            fds.observe(arch, r);
            ev
        })
        .collect()
}

/// The first failing syscalls after the entrypoint's exec, decoded in order, with fds annotated
/// from the flight recorder's records that precede each failure (complete for a container whose
/// whole life fits in the ring, partial otherwise).
pub fn first_failures(
    arch: Arch,
    raw: &RawContainer,
    wall: impl Fn(u64) -> DateTime<Utc>,
) -> Vec<SyscallEvent> {
    let ring = in_ring_order(&raw.ring);
    let mut next = ring.iter().peekable();
    let mut fds = FdTracker::default();
    in_ring_order(&raw.first_failures)
        .into_iter()
        .map(|f| {
            while let Some(r) = next.next_if(|r| r.seq < f.seq) {
                fds.observe(arch, r);
            }
            decode_with(arch, f, &wall, Some(&fds))
        })
        .collect()
}

/// First failures are copies of ring records, so they carry their ring position too.
fn in_ring_order(records: &[RawSyscall]) -> Vec<&RawSyscall> {
    let mut v: Vec<&RawSyscall> = records.iter().collect();
    v.sort_by_key(|r| r.seq);
    v
}

/// What the container wrote to stdout and stderr, or `None` when it wrote nothing to either.
pub fn captured_output(raw: &RawContainer) -> Option<CapturedOutput> {
    let empty = |s: &RawStream| s.total == 0 && s.head.is_empty() && s.tail.is_empty();
    if empty(&raw.stdout) && empty(&raw.stderr) {
        return None;
    }
    Some(CapturedOutput {
        captured_by: "coroner".to_string(),
        stdout: stream(&raw.stdout),
        stderr: stream(&raw.stderr),
    })
}

fn stream(s: &RawStream) -> StreamCapture {
    // The capture cuts at byte counts, which can split a UTF-8 character: drop the partial
    // character at each cut rather than print a replacement character that was never written.
    // The head is cut at its end when more was written; a tail always starts at a cut.
    let head = if s.total > s.head.len() as u64 {
        trim_partial_end(&s.head)
    } else {
        &s.head[..]
    };
    StreamCapture {
        total_bytes: s.total.max(s.head.len() as u64),
        head: String::from_utf8_lossy(head).into_owned(),
        tail: String::from_utf8_lossy(trim_partial_start(&s.tail)).into_owned(),
    }
}

/// Drops an incomplete UTF-8 sequence (at most 3 bytes) at the end of `b`.
fn trim_partial_end(b: &[u8]) -> &[u8] {
    match std::str::from_utf8(b) {
        Err(e) if e.error_len().is_none() && b.len() - e.valid_up_to() <= 3 => {
            &b[..e.valid_up_to()]
        }
        _ => b,
    }
}

/// Drops UTF-8 continuation bytes (at most 3) at the start of `b`.
fn trim_partial_start(b: &[u8]) -> &[u8] {
    let skip = b.iter().take(3).take_while(|&&c| c & 0xc0 == 0x80).count();
    &b[skip..]
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
