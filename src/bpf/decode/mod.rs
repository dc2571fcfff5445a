//! Syscall records in report terms: names, strace-like arguments, errno names, the `strace -c`-like
//! summary and the captured output.
//!
//! This module owns the meaning of a raw syscall record: which user memory the kernel must copy for
//! each syscall ([`data_spec`], pushed into the kernel by the loader), and how a record reads in a
//! report ([`decode_syscall`]). It does not touch libbpf, maps or time sources: the loader hands it
//! [`RawSyscall`]s and a function from boot time to wall time, and tests hand it captured records.
//!
//! Decoding never panics and never trusts the record: arguments are whatever was in the registers
//! (`int` arguments are read from their low 32 bits, as the kernel does), the copied bytes may be
//! short, cut or garbage, and the syscall number may be unknown.
//!
//! This file decodes one record: it reads each argument by its kind. Where things live:
//! - `table`: per syscall, its arguments' kinds and what the kernel copies;
//! - `paths`, `sockets`, `files`, `processes`: how values of each family read (copied paths,
//!   socket addresses, `O_*`/`AT_*`/`F_*` values, clone/mmap/futex flags);
//! - `fds`: what each fd refers to, learnt from the records, for `3</etc/passwd>`;
//! - `container`: the views of a whole container (summary, flight recorder, first failures,
//!   telling failures, captured output);
//! - `telling`: how telling a failure is (a bind's `EADDRINUSE` before a lookup's `ENOENT`).

mod container;
mod fds;
mod files;
mod paths;
mod processes;
mod sockets;
mod stack;
mod table;
mod telling;

use chrono::{DateTime, Utc};

use super::errno;
use super::raw::{Arch, DataSpec, RawSyscall};
use super::syscalls;
use crate::model::{signal_name, SyscallEvent};

pub use container::{captured_output, first_failures, flight_recorder, summary, telling_failures};
pub use sockets::sockaddr;
pub use stack::{crash_stack, hex_bytes, si_code_name};
pub use table::{data_spec, spec_table};
pub use telling::{telling, Telling};

use fds::FdTracker;
use files::{
    fcntl_arg, fcntl_cmd, fcntl_takes_arg, fd_flags, fmt_mode, open_flags, ACCESS_MODES, AT_FDCWD,
    AT_FLAGS, FACCESSAT_FLAGS, FLOCK_OPS, F_GETOWN, O_CREAT, O_TMPFILE_BIT, RENAME_FLAGS,
};
use paths::fmt_path;
use processes::{clone_flags, futex_op, map_flags, prot, NS_FLAGS, WAIT_OPTS};
use sockets::{domain_name, fmt_sockaddr_arg, protocol, sock_type, MSG_FLAGS, SOCK_FLAGS};
use table::signature;
use table::Arg::{self, *};

/// The largest errno a syscall returns as `-errno`; returns in `-4095..=-1` are errors
/// (`IS_ERR_VALUE` in the kernel, `-4095` is `-MAX_ERRNO`).
const MAX_ERRNO: i64 = 4095;

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
        Some(sig) => decode_args(&ctx, sig),
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

fn decode_args(ctx: &Ctx, sig: &[Arg]) -> Vec<String> {
    let a = &ctx.raw.args;
    let mut n = sig.len();
    // A last argument that only means something for some values of the ones before it (the
    // table's tests check where these sit).
    match sig.last() {
        // The mode of open/openat only means something when a file may be created.
        Some(OpenMode) if a[n - 2] & (O_CREAT | O_TMPFILE_BIT) == 0 => n -= 1,
        Some(FcntlValue) if !fcntl_takes_arg(int(a[1])) => n -= 1,
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

#[cfg(test)]
mod test_support {
    //! What the decoder tests share: captured-record builders.

    use chrono::{DateTime, Utc};

    use super::decode_syscall;
    pub(super) use crate::bpf::raw::{Arch, RawContainer, RawStream, RawSyscall};
    pub(super) use crate::model::SyscallEvent;

    pub(super) const X86: Arch = Arch::X86_64;
    pub(super) const ARM: Arch = Arch::Aarch64;
    /// AT_FDCWD as a 64-bit register holds it when libc sign-extends the int.
    pub(super) const FDCWD: u64 = -100i64 as u64;

    pub(super) fn wall(ns: u64) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(1_700_000_000_000_000_000 + ns as i64)
    }

    pub(super) fn errno_ret(name: &str) -> i64 {
        -i64::from(crate::bpf::errno::number(name).unwrap())
    }

    /// A record of syscall `name` on `arch`.
    pub(super) fn rec(arch: Arch, name: &str, args: &[u64], ret: i64, data: &[u8]) -> RawSyscall {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        RawSyscall {
            seq: 0,
            boot_ns: 1_000,
            pid: 4242,
            tid: 4242,
            comm: "app".to_string(),
            nr: crate::bpf::syscalls::number(arch, name).unwrap(),
            args: a,
            ret,
            data: data.to_vec(),
            data_truncated: false,
        }
    }

    pub(super) fn decode(arch: Arch, r: &RawSyscall) -> SyscallEvent {
        decode_syscall(arch, r, wall)
    }

    pub(super) fn sockaddr_in(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut v = 2u16.to_le_bytes().to_vec();
        v.extend(port.to_be_bytes());
        v.extend(ip);
        v.extend([0u8; 8]);
        v
    }

    pub(super) fn sockaddr_in6(ip: std::net::Ipv6Addr, port: u16, scope: u32) -> Vec<u8> {
        let mut v = 10u16.to_le_bytes().to_vec();
        v.extend(port.to_be_bytes());
        v.extend([0u8; 4]);
        v.extend(ip.octets());
        v.extend(scope.to_le_bytes());
        v
    }

    pub(super) fn ring(records: Vec<RawSyscall>) -> RawContainer {
        let records: Vec<RawSyscall> = records
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.seq = i as u64 + 1;
                r.boot_ns = 1_000 * (i as u64 + 1);
                r
            })
            .collect();
        RawContainer {
            ring_total: records.len() as u64,
            ring: records,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn read_write_show_fd_buffer_and_count() {
        let r = rec(X86, "write", &[1, 0x5600_0000, 12], 12, b"");
        assert_eq!(decode(X86, &r).args, ["1", "0x56000000", "12"]);
        let r = rec(ARM, "read", &[0, 0x1000, 4096], errno_ret("EINTR"), b"");
        assert_eq!(decode(ARM, &r).errno.as_deref(), Some("EINTR"));
    }

    #[test]
    fn syscalls_without_arguments_have_none() {
        for arch in [X86, ARM] {
            let r = rec(arch, "getpid", &[7, 7, 7], 42, b"");
            assert!(decode(arch, &r).args.is_empty());
        }
    }

    #[test]
    fn unknown_syscall_is_named_by_number_with_six_hex_args() {
        let r = RawSyscall {
            nr: 999,
            args: [1, 2, 3, 0, 0xff, 6],
            ret: 0,
            ..Default::default()
        };
        let ev = decode(X86, &r);
        assert_eq!(ev.syscall, "syscall_999");
        assert_eq!(ev.args, ["0x1", "0x2", "0x3", "0", "0xff", "0x6"]);
        // A known name without a signature also gets six raw arguments.
        let r = rec(X86, "kcmp", &[1, 2, 0, 4, 5], 0, b"");
        assert_eq!(decode(X86, &r).syscall, "kcmp");
        assert_eq!(decode(X86, &r).args.len(), 6);
    }

    #[test]
    fn only_returns_in_the_errno_range_are_errors() {
        let cases = [
            (-1, Some("EPERM")),
            (-4095, Some("ERRNO_4095")),
            (-4096, None),
            (0, None),
            (i64::MIN, None),
            (-512, Some("ERESTARTSYS")),
            (-11, Some("EAGAIN")),
        ];
        for (ret, want) in cases {
            let r = rec(X86, "read", &[0, 0, 0], ret, b"");
            let ev = decode(X86, &r);
            assert_eq!(ev.errno.as_deref(), want, "{ret}");
            assert_eq!(ev.ret, ret);
        }
    }

    // --- Robustness ----------------------------------------------------------------------------------

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn interesting(&mut self) -> u64 {
            match self.next() % 8 {
                0 => 0,
                1 => u64::MAX,
                2 => self.next() % 64,
                3 => (-(self.next() as i64 % 5000)) as u64,
                4 => self.next() & 0xffff_ffff,
                5 => 1 << (self.next() % 64),
                _ => self.next(),
            }
        }

        fn bytes(&mut self) -> Vec<u8> {
            let n = (self.next() % 140) as usize;
            let mut v: Vec<u8> = (0..n).map(|_| self.next() as u8).collect();
            if n >= 2 && self.next() % 2 == 0 {
                let fam: u16 = [0, 1, 2, 10, 16, 17, 0xffff][(self.next() % 7) as usize];
                v[..2].copy_from_slice(&fam.to_le_bytes());
            }
            v
        }
    }

    #[test]
    fn random_records_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for arch in [X86, ARM] {
            let mut records = Vec::new();
            for i in 0..20_000u64 {
                let nr = match rng.next() % 4 {
                    0 => rng.next() as u32,
                    _ => (rng.next() % 470) as u32,
                };
                let r = RawSyscall {
                    seq: rng.next(),
                    boot_ns: rng.next() % 1_000_000,
                    pid: (rng.next() % 4) as u32,
                    tid: rng.next() as u32,
                    comm: String::from_utf8_lossy(&rng.bytes()).into_owned(),
                    nr,
                    args: std::array::from_fn(|_| rng.interesting()),
                    ret: rng.interesting() as i64,
                    data: rng.bytes(),
                    data_truncated: rng.next() % 2 == 0,
                };
                let ev = decode(arch, &r);
                assert!(!ev.syscall.is_empty());
                assert!(ev.args.len() <= 6);
                if i % 20 == 0 {
                    records.push(r);
                }
            }
            let raw = RawContainer {
                calls: (0..200)
                    .map(|_| (rng.next() as u32 % 600, rng.next()))
                    .collect(),
                errors: (0..200)
                    .map(|_| (rng.next() as u32 % 600, rng.next() as u32 % 700, rng.next()))
                    .collect(),
                first_failures: records.iter().take(64).cloned().collect(),
                distinct_failures: records.iter().rev().take(64).cloned().collect(),
                ring: records,
                stdout: RawStream {
                    total: rng.next(),
                    head: rng.bytes(),
                    tail: rng.bytes(),
                },
                stderr: RawStream {
                    total: 0,
                    head: rng.bytes(),
                    tail: Vec::new(),
                },
                ..Default::default()
            };
            assert_eq!(flight_recorder(arch, &raw, wall).len(), raw.ring.len());
            assert_eq!(
                first_failures(arch, &raw, wall).len(),
                raw.first_failures.len()
            );
            assert_eq!(
                telling_failures(arch, &raw, wall).len(),
                raw.distinct_failures.len()
            );
            let s = summary(arch, &raw);
            assert!(s.windows(2).all(|w| w[0].calls >= w[1].calls));
            let _ = captured_output(&raw);
        }
        for _ in 0..10_000 {
            let _ = sockaddr(&rng.bytes());
        }
    }
}
