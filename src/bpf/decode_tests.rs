use chrono::{DateTime, Utc};

use super::*;
use crate::bpf::raw::{Arch, DataSpec, RawContainer, RawStream, RawSyscall};

const X86: Arch = Arch::X86_64;
const ARM: Arch = Arch::Aarch64;
/// AT_FDCWD as a 64-bit register holds it when libc sign-extends the int.
const FDCWD: u64 = -100i64 as u64;

fn wall(ns: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(1_700_000_000_000_000_000 + ns as i64)
}

fn errno_ret(name: &str) -> i64 {
    -i64::from(crate::bpf::errno::number(name).unwrap())
}

/// A record of syscall `name` on `arch`.
fn rec(arch: Arch, name: &str, args: &[u64], ret: i64, data: &[u8]) -> RawSyscall {
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

fn decode(arch: Arch, r: &RawSyscall) -> SyscallEvent {
    decode_syscall(arch, r, wall)
}

fn sockaddr_in(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut v = 2u16.to_le_bytes().to_vec();
    v.extend(port.to_be_bytes());
    v.extend(ip);
    v.extend([0u8; 8]);
    v
}

fn sockaddr_in6(ip: std::net::Ipv6Addr, port: u16, scope: u32) -> Vec<u8> {
    let mut v = 10u16.to_le_bytes().to_vec();
    v.extend(port.to_be_bytes());
    v.extend([0u8; 4]);
    v.extend(ip.octets());
    v.extend(scope.to_le_bytes());
    v
}

// --- Paths ---------------------------------------------------------------------------------------

#[test]
fn openat_enoent_shows_path_flags_and_errno_name() {
    for arch in [X86, ARM] {
        let r = rec(
            arch,
            "openat",
            &[FDCWD, 0x7ffd_0000, 0o2000000, 0],
            errno_ret("ENOENT"),
            b"/nonexistent",
        );
        let ev = decode(arch, &r);
        assert_eq!(ev.syscall, "openat");
        assert_eq!(
            ev.args,
            ["AT_FDCWD", "\"/nonexistent\"", "O_RDONLY|O_CLOEXEC"],
            "{arch:?}"
        );
        assert_eq!(ev.errno.as_deref(), Some("ENOENT"));
        assert_eq!(ev.ret, -2);
        assert_eq!((ev.pid, ev.tid, ev.comm.as_str()), (4242, 4242, "app"));
        assert_eq!(ev.time, wall(1_000));
    }
}

#[test]
fn at_fdcwd_in_the_low_32_bits_only_is_still_at_fdcwd() {
    let r = rec(X86, "openat", &[0xffff_ff9c, 1, 0, 0], 3, b"/etc/passwd");
    assert_eq!(decode(X86, &r).args[0], "AT_FDCWD");
}

#[test]
fn open_with_o_creat_shows_mode_in_octal() {
    let r = rec(
        X86,
        "open",
        &[1, 0o1 | 0o100 | 0o1000 | 0o2000000, 0o644],
        3,
        b"/tmp/out.log",
    );
    assert_eq!(
        decode(X86, &r).args,
        [
            "\"/tmp/out.log\"",
            "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC",
            "0644"
        ]
    );
    let r = rec(
        ARM,
        "openat",
        &[FDCWD, 1, 0o2 | 0o100 | 0o200, 0o600],
        3,
        b"x",
    );
    assert_eq!(decode(ARM, &r).args[2..], ["O_RDWR|O_CREAT|O_EXCL", "0600"]);
}

#[test]
fn open_without_o_creat_hides_the_mode_register() {
    let r = rec(X86, "openat", &[FDCWD, 1, 0o4000, 0xdead], 3, b"/dev/null");
    assert_eq!(decode(X86, &r).args.len(), 3);
    assert_eq!(decode(X86, &r).args[2], "O_RDONLY|O_NONBLOCK");
}

#[test]
fn arm64_open_flags_that_differ_from_x86_are_decoded_per_arch() {
    // 0o200000 is O_DIRECTORY on x86_64 but O_DIRECT on arm64; 0o40000 the other way round.
    let r = |arch| {
        rec(
            arch,
            "openat",
            &[FDCWD, 1, 0o200000 | 0o2000000, 0],
            3,
            b"/etc",
        )
    };
    assert_eq!(
        decode(X86, &r(X86)).args[2],
        "O_RDONLY|O_DIRECTORY|O_CLOEXEC"
    );
    assert_eq!(decode(ARM, &r(ARM)).args[2], "O_RDONLY|O_DIRECT|O_CLOEXEC");
    let r = |arch| {
        rec(
            arch,
            "openat",
            &[FDCWD, 1, 0o40000 | 0o100000, 0],
            3,
            b"/etc",
        )
    };
    assert_eq!(
        decode(X86, &r(X86)).args[2],
        "O_RDONLY|O_DIRECT|O_LARGEFILE"
    );
    assert_eq!(
        decode(ARM, &r(ARM)).args[2],
        "O_RDONLY|O_DIRECTORY|O_NOFOLLOW"
    );
    let r = |arch| rec(arch, "openat", &[FDCWD, 1, 0o400000, 0], 3, b"/etc");
    assert_eq!(decode(X86, &r(X86)).args[2], "O_RDONLY|O_NOFOLLOW");
    assert_eq!(decode(ARM, &r(ARM)).args[2], "O_RDONLY|O_LARGEFILE");
}

#[test]
fn o_tmpfile_and_o_sync_are_named_as_a_whole() {
    // O_TMPFILE is __O_TMPFILE | O_DIRECTORY; O_SYNC is __O_SYNC | O_DSYNC.
    let r = rec(
        X86,
        "openat",
        &[FDCWD, 1, 0o2 | 0o20000000 | 0o200000, 0o600],
        3,
        b"/tmp",
    );
    assert_eq!(decode(X86, &r).args[2..], ["O_RDWR|O_TMPFILE", "0600"]);
    let r = rec(
        ARM,
        "openat",
        &[FDCWD, 1, 0o1 | 0o20000000 | 0o40000, 0o600],
        3,
        b"/tmp",
    );
    assert_eq!(decode(ARM, &r).args[2..], ["O_WRONLY|O_TMPFILE", "0600"]);
    let r = rec(X86, "openat", &[FDCWD, 1, 0o1 | 0o4010000, 0], 3, b"/data");
    assert_eq!(decode(X86, &r).args[2], "O_WRONLY|O_SYNC");
    let r = rec(X86, "openat", &[FDCWD, 1, 0o1 | 0o10000, 0], 3, b"/data");
    assert_eq!(decode(X86, &r).args[2], "O_WRONLY|O_DSYNC");
}

#[test]
fn unknown_open_flag_bits_are_kept_in_hex() {
    let r = rec(X86, "openat", &[FDCWD, 1, 0x8000_0000, 0], 3, b"/x");
    assert_eq!(decode(X86, &r).args[2], "O_RDONLY|0x80000000");
}

#[test]
fn truncated_path_is_marked() {
    let mut r = rec(
        X86,
        "openat",
        &[FDCWD, 1, 0, 0],
        errno_ret("ENAMETOOLONG"),
        &[b'a'; 127],
    );
    r.data_truncated = true;
    let ev = decode(X86, &r);
    assert_eq!(ev.args[1], format!("\"{}\"...", "a".repeat(127)));
    assert_eq!(ev.errno.as_deref(), Some("ENAMETOOLONG"));
    // A complete path is not marked, even with a stray flag after its NUL.
    let mut r = rec(X86, "stat", &[1, 2], errno_ret("EACCES"), b"/etc\0garbage");
    r.data_truncated = true;
    assert_eq!(decode(X86, &r).args[0], "\"/etc\"");
}

#[test]
fn path_bytes_are_escaped_not_trusted() {
    let r = rec(
        X86,
        "unlink",
        &[1],
        0,
        b"/tmp/a\"b\\c\nd\x01\xffe/\xc3\xa9t\xc3\xa9",
    );
    assert_eq!(
        decode(X86, &r).args,
        ["\"/tmp/a\\\"b\\\\c\\nd\\x01\\xffe/été\""]
    );
}

#[test]
fn empty_path_with_at_empty_path_is_an_empty_string() {
    // glibc's fstat(fd) is newfstatat(fd, "", buf, AT_EMPTY_PATH): copied when it fails.
    let r = rec(
        X86,
        "newfstatat",
        &[3, 0x1000, 0x2000, 0x1000],
        errno_ret("EBADF"),
        b"",
    );
    assert_eq!(
        decode(X86, &r).args,
        ["3", "\"\"", "0x2000", "AT_EMPTY_PATH"]
    );
    // When it succeeds the kernel copies nothing, and the pointer says so.
    let r = rec(X86, "newfstatat", &[3, 0x1000, 0x2000, 0x1000], 0, b"");
    assert_eq!(
        decode(X86, &r).args,
        ["3", "0x1000 /* not copied */", "0x2000", "AT_EMPTY_PATH"]
    );
}

#[test]
fn bad_path_pointer_shows_the_pointer_and_null_shows_null() {
    let r = rec(
        X86,
        "openat",
        &[FDCWD, 0x10, 0, 0],
        errno_ret("EFAULT"),
        b"",
    );
    assert_eq!(decode(X86, &r).args[1], "0x10");
    let r = rec(X86, "openat", &[FDCWD, 0, 0, 0], errno_ret("EFAULT"), b"");
    assert_eq!(decode(X86, &r).args[1], "NULL");
}

#[test]
fn execve_enoent_shows_path_and_elided_argv() {
    for arch in [X86, ARM] {
        let r = rec(
            arch,
            "execve",
            &[0x1000, 0x2000, 0x3000],
            errno_ret("ENOENT"),
            b"/app/bin/start",
        );
        let ev = decode(arch, &r);
        assert_eq!(ev.args, ["\"/app/bin/start\"", "[...]", "[...]"]);
        assert_eq!(ev.errno.as_deref(), Some("ENOENT"));
    }
}

#[test]
fn access_and_unlinkat_and_faccessat2_flags_decode() {
    let r = rec(X86, "access", &[1, 4 | 1], errno_ret("EACCES"), b"/bin/sh");
    assert_eq!(decode(X86, &r).args, ["\"/bin/sh\"", "R_OK|X_OK"]);
    let r = rec(X86, "access", &[1, 0], 0, b"/bin/sh");
    assert_eq!(decode(X86, &r).args[1], "F_OK");
    let r = rec(
        ARM,
        "unlinkat",
        &[FDCWD, 1, 0x200],
        errno_ret("ENOTEMPTY"),
        b"/var/run",
    );
    assert_eq!(
        decode(ARM, &r).args,
        ["AT_FDCWD", "\"/var/run\"", "AT_REMOVEDIR"]
    );
    let r = rec(
        ARM,
        "faccessat2",
        &[FDCWD, 1, 2, 0x200],
        errno_ret("EROFS"),
        b"/data",
    );
    assert_eq!(
        decode(ARM, &r).args,
        ["AT_FDCWD", "\"/data\"", "W_OK", "AT_EACCESS"]
    );
}

#[test]
fn mkdir_chmod_mknod_modes_decode() {
    let r = rec(X86, "mkdir", &[1, 0o755], errno_ret("EEXIST"), b"/data");
    assert_eq!(decode(X86, &r).args, ["\"/data\"", "0755"]);
    let r = rec(X86, "chmod", &[1, 0], 0, b"/f");
    assert_eq!(decode(X86, &r).args[1], "000");
    let r = rec(ARM, "mknodat", &[FDCWD, 1, 0o010644, 0], 0, b"/fifo");
    assert_eq!(decode(ARM, &r).args[2], "S_IFIFO|0644");
}

#[test]
fn symlink_shows_the_link_path_and_rename_the_source() {
    let r = rec(
        X86,
        "symlink",
        &[0x1000, 0x2000],
        errno_ret("EEXIST"),
        b"/etc/alternatives/x",
    );
    assert_eq!(decode(X86, &r).args, ["0x1000", "\"/etc/alternatives/x\""]);
    let r = rec(
        ARM,
        "renameat2",
        &[FDCWD, 1, FDCWD, 0x2000, 1],
        0,
        b"/tmp/a",
    );
    assert_eq!(
        decode(ARM, &r).args,
        [
            "AT_FDCWD",
            "\"/tmp/a\"",
            "AT_FDCWD",
            "0x2000",
            "RENAME_NOREPLACE"
        ]
    );
}

// --- Sockets -------------------------------------------------------------------------------------

#[test]
fn bind_eaddrinuse_decodes_ipv4_address() {
    for arch in [X86, ARM] {
        let data = sockaddr_in([0, 0, 0, 0], 9443);
        let r = rec(
            arch,
            "bind",
            &[3, 0x1000, 16],
            errno_ret("EADDRINUSE"),
            &data,
        );
        let ev = decode(arch, &r);
        assert_eq!(ev.args, ["3", "0.0.0.0:9443", "16"], "{arch:?}");
        assert_eq!(ev.errno.as_deref(), Some("EADDRINUSE"));
    }
}

#[test]
fn connect_ipv6_decodes_with_brackets_and_scope() {
    let data = sockaddr_in6(std::net::Ipv6Addr::LOCALHOST, 8080, 0);
    let r = rec(
        X86,
        "connect",
        &[5, 0x1000, 28],
        errno_ret("ECONNREFUSED"),
        &data,
    );
    assert_eq!(decode(X86, &r).args[1], "[::1]:8080");
    let data = sockaddr_in6("fe80::1".parse().unwrap(), 53, 2);
    let r = rec(ARM, "connect", &[5, 0x1000, 28], 0, &data);
    assert_eq!(decode(ARM, &r).args[1], "[fe80::1%2]:53");
}

#[test]
fn unix_socket_path_and_abstract_name_decode() {
    let mut path = 1u16.to_le_bytes().to_vec();
    path.extend(b"/run/containerd/containerd.sock\0\0\0");
    let r = rec(
        X86,
        "connect",
        &[3, 0x1000, path.len() as u64],
        errno_ret("ENOENT"),
        &path,
    );
    assert_eq!(decode(X86, &r).args[1], "/run/containerd/containerd.sock");

    let mut abs = 1u16.to_le_bytes().to_vec();
    abs.extend(b"\0beam-epmd\0\0");
    let r = rec(
        X86,
        "bind",
        &[3, 0x1000, abs.len() as u64],
        errno_ret("EADDRINUSE"),
        &abs,
    );
    assert_eq!(decode(X86, &r).args[1], "@beam-epmd");

    let unnamed = 1u16.to_le_bytes().to_vec();
    let r = rec(X86, "bind", &[3, 0x1000, 2], 0, &unnamed);
    assert_eq!(decode(X86, &r).args[1], "AF_UNIX");
}

#[test]
fn other_families_are_named_or_numbered() {
    let mut nl = 16u16.to_le_bytes().to_vec();
    nl.extend([0u8; 10]);
    assert_eq!(sockaddr(&nl), "AF_NETLINK");
    assert_eq!(sockaddr(&0u16.to_le_bytes()), "AF_UNSPEC");
    assert_eq!(sockaddr(&999u16.to_le_bytes()), "{sa_family=999}");
}

#[test]
fn garbage_sockaddr_does_not_panic() {
    let cases: [&[u8]; 7] = [
        b"",
        b"\x02",
        b"\x02\x00\x01",
        b"\x02\x00\x01\x02\x03",
        b"\x0a\x00\x00\x50\x00\x00\x00\x00\x01",
        b"\x01\x00",
        b"\x01\x00\x00",
    ];
    for data in cases {
        for arch in [X86, ARM] {
            let r = rec(
                arch,
                "connect",
                &[3, 0x1000, 200],
                errno_ret("EINVAL"),
                data,
            );
            let ev = decode(arch, &r);
            assert_eq!(ev.args.len(), 3);
        }
        let _ = sockaddr(data);
    }
    assert_eq!(sockaddr(b"\x02\x00\x01"), "AF_INET{?}");
    assert_eq!(sockaddr(b"\x01"), "{sa_family=?}");
}

#[test]
fn truncated_sockaddr_is_marked() {
    let mut data = 1u16.to_le_bytes().to_vec();
    data.extend([b'a'; 126]);
    let mut r = rec(
        X86,
        "connect",
        &[3, 0x1000, 300],
        errno_ret("EINVAL"),
        &data,
    );
    r.data_truncated = true;
    assert!(decode(X86, &r).args[1].ends_with("..."));
}

#[test]
fn sendto_with_and_without_destination() {
    let data = sockaddr_in([10, 0, 0, 7], 53);
    let r = rec(
        X86,
        "sendto",
        &[4, 0x1000, 32, 0x4000, 0x2000, 16],
        32,
        &data,
    );
    assert_eq!(
        decode(X86, &r).args,
        ["4", "0x1000", "32", "MSG_NOSIGNAL", "10.0.0.7:53", "16"]
    );
    let r = rec(
        ARM,
        "sendto",
        &[4, 0x1000, 32, 0, 0, 0],
        errno_ret("EPIPE"),
        b"",
    );
    assert_eq!(decode(ARM, &r).args[3..], ["0", "NULL", "0"]);
}

#[test]
fn socket_names_domain_type_and_protocol() {
    let r = rec(X86, "socket", &[2, 1 | 0o2000000 | 0o4000, 6], 3, b"");
    assert_eq!(
        decode(X86, &r).args,
        [
            "AF_INET",
            "SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC",
            "IPPROTO_TCP"
        ]
    );
    let r = rec(ARM, "socket", &[1, 2, 0], 3, b"");
    assert_eq!(decode(ARM, &r).args, ["AF_UNIX", "SOCK_DGRAM", "0"]);
    let r = rec(ARM, "socket", &[16, 3, 0], 3, b"");
    assert_eq!(
        decode(ARM, &r).args,
        ["AF_NETLINK", "SOCK_RAW", "NETLINK_ROUTE"]
    );
    let r = rec(X86, "socket", &[777, 99, 5], errno_ret("EAFNOSUPPORT"), b"");
    assert_eq!(decode(X86, &r).args, ["777", "SOCK_RAW|0x60", "5"]);
}

#[test]
fn accept_listen_shutdown_decode() {
    let r = rec(X86, "accept4", &[3, 0, 0, 0o2000000], 5, b"");
    assert_eq!(decode(X86, &r).args, ["3", "NULL", "NULL", "SOCK_CLOEXEC"]);
    let r = rec(X86, "listen", &[3, 4096], 0, b"");
    assert_eq!(decode(X86, &r).args, ["3", "4096"]);
    let r = rec(ARM, "shutdown", &[3, 2], errno_ret("ENOTCONN"), b"");
    assert_eq!(decode(ARM, &r).args, ["3", "SHUT_RDWR"]);
}

// --- Locks ---------------------------------------------------------------------------------------

#[test]
fn flock_nonblocking_exclusive_decodes() {
    for arch in [X86, ARM] {
        let r = rec(arch, "flock", &[3, 2 | 4], errno_ret("EWOULDBLOCK"), b"");
        let ev = decode(arch, &r);
        assert_eq!(ev.syscall, "flock");
        assert_eq!(ev.args, ["3", "LOCK_EX|LOCK_NB"], "{arch:?}");
        assert_eq!(ev.errno.as_deref(), Some("EAGAIN"));
    }
    let r = rec(X86, "flock", &[3, 8], 0, b"");
    assert_eq!(decode(X86, &r).args[1], "LOCK_UN");
    let r = rec(X86, "flock", &[3, 1 | 4], 0, b"");
    assert_eq!(decode(X86, &r).args[1], "LOCK_SH|LOCK_NB");
}

#[test]
fn fcntl_lock_and_fd_commands_decode() {
    let cases: [(&[u64], &[&str]); 9] = [
        (&[3, 6, 0x7ffc], &["3", "F_SETLK", "0x7ffc"]),
        (&[3, 7, 0x7ffc], &["3", "F_SETLKW", "0x7ffc"]),
        (&[3, 5, 0x7ffc], &["3", "F_GETLK", "0x7ffc"]),
        (&[3, 37, 0x7ffc], &["3", "F_OFD_SETLK", "0x7ffc"]),
        (&[3, 3, 0xdead], &["3", "F_GETFL"]),
        (
            &[3, 4, 0o2 | 0o4000],
            &["3", "F_SETFL", "O_RDWR|O_NONBLOCK"],
        ),
        (&[3, 1030, 10], &["3", "F_DUPFD_CLOEXEC", "10"]),
        (&[3, 2, 1], &["3", "F_SETFD", "FD_CLOEXEC"]),
        (&[3, 4242, 7], &["3", "4242", "0x7"]),
    ];
    for (args, want) in cases {
        for arch in [X86, ARM] {
            let r = rec(arch, "fcntl", args, 0, b"");
            assert_eq!(decode(arch, &r).args, want, "{arch:?} {args:?}");
        }
    }
    let r = rec(X86, "fcntl", &[3, 6, 0x7ffc], errno_ret("EAGAIN"), b"");
    assert_eq!(decode(X86, &r).errno.as_deref(), Some("EAGAIN"));
}

#[test]
fn fcntl_getown_negative_is_a_process_group_not_an_error() {
    let r = rec(X86, "fcntl", &[3, 9], -1234, b"");
    let ev = decode(X86, &r);
    assert_eq!((ev.ret, ev.errno), (-1234, None));
}

// --- Processes, signals, memory ------------------------------------------------------------------

#[test]
fn clone_flags_show_the_exit_signal_in_arch_argument_order() {
    let flags = 0x0120_0000 | 17; // CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD
    let r = rec(
        X86,
        "clone",
        &[flags, 0, 0, 0x7f00, 0],
        errno_ret("EAGAIN"),
        b"",
    );
    let ev = decode(X86, &r);
    assert_eq!(
        ev.args,
        [
            "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD",
            "NULL",
            "NULL",
            "0x7f00",
            "0"
        ]
    );
    assert_eq!(ev.errno.as_deref(), Some("EAGAIN"));
    // arm64: (flags, newsp, parent_tid, tls, child_tid).
    let r = rec(ARM, "clone", &[flags, 0, 0, 0, 0x7f00], 4243, b"");
    assert_eq!(decode(ARM, &r).args[3..], ["0", "0x7f00"]);
    let threads = 0x3d0f00; // what glibc's pthread_create passes
    let r = rec(
        X86,
        "clone",
        &[threads, 0x7f00, 0x7f10, 0x7f10, 0x7f20],
        4244,
        b"",
    );
    assert_eq!(
        decode(X86, &r).args[0],
        "CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID"
    );
    let r = rec(X86, "clone3", &[0x7f00, 88], 4245, b"");
    assert_eq!(decode(X86, &r).args, ["0x7f00", "88"]);
    let r = rec(X86, "unshare", &[0x20000 | 0x40000000], 0, b"");
    assert_eq!(decode(X86, &r).args, ["CLONE_NEWNS|CLONE_NEWNET"]);
}

#[test]
fn kill_and_tgkill_name_the_signal() {
    let r = rec(X86, "kill", &[1, 15], 0, b"");
    assert_eq!(decode(X86, &r).args, ["1", "SIGTERM"]);
    let r = rec(ARM, "kill", &[(-1i64) as u64, 9], errno_ret("EPERM"), b"");
    assert_eq!(decode(ARM, &r).args, ["-1", "SIGKILL"]);
    let r = rec(X86, "tgkill", &[42, 43, 6], 0, b"");
    assert_eq!(decode(X86, &r).args, ["42", "43", "SIGABRT"]);
    let r = rec(X86, "kill", &[42, 0], 0, b"");
    assert_eq!(decode(X86, &r).args[1], "0");
    let r = rec(X86, "kill", &[42, 34], 0, b"");
    assert_eq!(decode(X86, &r).args[1], "SIGRTMIN+2");
}

#[test]
fn exit_group_shows_its_code() {
    let r = rec(ARM, "exit_group", &[3], 0, b"");
    assert_eq!(decode(ARM, &r).args, ["3"]);
}

#[test]
fn mmap_prot_and_flags_decode() {
    let r = rec(
        X86,
        "mmap",
        &[0, 8192, 3, 0x22, u64::MAX, 0],
        errno_ret("ENOMEM"),
        b"",
    );
    let ev = decode(X86, &r);
    assert_eq!(
        ev.args,
        [
            "NULL",
            "8192",
            "PROT_READ|PROT_WRITE",
            "MAP_PRIVATE|MAP_ANONYMOUS",
            "-1",
            "0"
        ]
    );
    assert_eq!(ev.errno.as_deref(), Some("ENOMEM"));
    let r = rec(ARM, "mprotect", &[0x1000, 4096, 0], 0, b"");
    assert_eq!(decode(ARM, &r).args[2], "PROT_NONE");
}

#[test]
fn read_write_show_fd_buffer_and_count() {
    let r = rec(X86, "write", &[1, 0x5600_0000, 12], 12, b"");
    assert_eq!(decode(X86, &r).args, ["1", "0x56000000", "12"]);
    let r = rec(ARM, "read", &[0, 0x1000, 4096], errno_ret("EINTR"), b"");
    assert_eq!(decode(ARM, &r).errno.as_deref(), Some("EINTR"));
}

#[test]
fn futex_op_and_wait4_options_decode() {
    let r = rec(
        X86,
        "futex",
        &[0x1000, 128, 2, 0, 0, 0],
        errno_ret("ETIMEDOUT"),
        b"",
    );
    assert_eq!(decode(X86, &r).args[1], "FUTEX_WAIT_PRIVATE");
    let r = rec(
        X86,
        "wait4",
        &[(-1i64) as u64, 0x1000, 1 | 0x40000000, 0],
        0,
        b"",
    );
    assert_eq!(
        decode(X86, &r).args,
        ["-1", "0x1000", "WNOHANG|__WALL", "NULL"]
    );
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
            DataSpec::Str { on_success, .. } | DataSpec::Sockaddr { on_success, .. } => on_success,
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

// --- fd annotations ------------------------------------------------------------------------------

fn ring(records: Vec<RawSyscall>) -> RawContainer {
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

#[test]
fn ring_order_wins_over_tick_times_that_step_back_across_cpus() {
    // Captured shape (tests/recorder.rs, a container exiting within 50 ms): runc's init threads,
    // killed by the entrypoint's exec, left futex before it, on a CPU whose tick clock was read
    // later than the exec's CPU's. By time they sorted after the shell's last calls.
    let mut raw = ring(vec![
        rec(X86, "futex", &[0xc000, 128], -512, b""),
        rec(X86, "execve", &[0, 0, 0], 0, b"/bin/sh"),
        rec(X86, "getpid", &[], 1, b""),
    ]);
    raw.ring[0].boot_ns = 9_000;
    raw.ring[0].comm = "runc:[2:INIT]".to_string();
    let evs = flight_recorder(X86, &raw, wall);
    let names: Vec<&str> = evs.iter().map(|e| e.syscall.as_str()).collect();
    assert_eq!(names, ["futex", "execve", "getpid"]);
    assert_eq!(evs.last().unwrap().comm, "app");
}

#[test]
fn first_failures_see_the_fds_opened_before_them_in_ring_order() {
    let mut raw = ring(vec![
        rec(X86, "openat", &[FDCWD, 1, 0o100, 0o666], 3, b"/data/lock"),
        rec(X86, "flock", &[3, 2 | 4], errno_ret("EAGAIN"), b""),
    ]);
    // The open ran on a CPU whose tick clock was read later: by time it would come second.
    raw.ring[0].boot_ns = 5_000;
    raw.first_failures = vec![raw.ring[1].clone()];
    let evs = first_failures(X86, &raw, wall);
    assert_eq!(evs[0].args, ["3</data/lock>", "LOCK_EX|LOCK_NB"]);
}

#[test]
fn flock_on_an_opened_file_is_annotated_with_its_path() {
    for arch in [X86, ARM] {
        let raw = ring(vec![
            rec(
                arch,
                "openat",
                &[FDCWD, 1, 0o100 | 0o2000000, 0o666],
                3,
                b"/dev/shm/mongod.lock",
            ),
            rec(arch, "flock", &[3, 2 | 4], errno_ret("EAGAIN"), b""),
            rec(arch, "close", &[3], 0, b""),
            rec(arch, "flock", &[3, 8], errno_ret("EBADF"), b""),
        ]);
        let evs = flight_recorder(arch, &raw, wall);
        assert_eq!(
            evs[1].args,
            ["3</dev/shm/mongod.lock>", "LOCK_EX|LOCK_NB"],
            "{arch:?}"
        );
        assert_eq!(evs[1].errno.as_deref(), Some("EAGAIN"));
        assert_eq!(evs[2].args, ["3</dev/shm/mongod.lock>"]);
        assert_eq!(evs[3].args[0], "3", "closed fds lose their path");
    }
}

#[test]
fn fd_annotations_follow_dup_fork_exec_and_sockets() {
    let mut parent = vec![
        rec(X86, "openat", &[FDCWD, 1, 0o200000, 0], 4, b"/srv"),
        rec(X86, "openat", &[4, 1, 0, 0], 5, b"data/db.sqlite"),
        rec(X86, "dup2", &[5, 9], 9, b""),
        rec(X86, "openat", &[FDCWD, 1, 0o2000000, 0], 6, b"/etc/secret"),
        rec(X86, "socket", &[2, 1, 0], 7, b""),
        rec(
            X86,
            "connect",
            &[7, 0x1000, 16],
            0,
            &sockaddr_in([10, 1, 2, 3], 5432),
        ),
        rec(X86, "clone", &[0x1200011, 0, 0, 0, 0], 5000, b""),
    ];
    let mut child = vec![
        rec(X86, "write", &[9, 0x1000, 1], 1, b""),
        rec(X86, "execve", &[1, 2, 3], 0, b"/bin/sh"),
        rec(X86, "read", &[6, 0x1000, 1], errno_ret("EBADF"), b""),
        rec(X86, "write", &[7, 0x1000, 1], errno_ret("EPIPE"), b""),
    ];
    for r in &mut child {
        r.pid = 5000;
        r.tid = 5000;
    }
    parent.append(&mut child);
    let evs = flight_recorder(X86, &ring(parent), wall);
    assert_eq!(evs[1].args[0], "4</srv>");
    assert_eq!(
        evs[7].args[0], "9</srv/data/db.sqlite>",
        "fork copies, dup2 copies, dirfd joins"
    );
    assert_eq!(evs[9].args[0], "6", "O_CLOEXEC fds are gone after exec");
    assert_eq!(evs[10].args[0], "7<socket:10.1.2.3:5432>");
}

#[test]
fn flight_recorder_is_in_time_order_and_first_failures_are_annotated() {
    let mut raw = ring(vec![
        rec(ARM, "openat", &[FDCWD, 1, 0, 0], 3, b"/var/lib/app/lock"),
        rec(ARM, "fcntl", &[3, 6, 0x7ffc], errno_ret("EAGAIN"), b""),
    ]);
    raw.first_failures = vec![raw.ring[1].clone()];
    raw.ring.swap(0, 1);
    let evs = flight_recorder(ARM, &raw, wall);
    assert_eq!(evs[0].syscall, "openat");
    assert_eq!(evs[1].args[0], "3</var/lib/app/lock>");
    let first = first_failures(ARM, &raw, wall);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].args, ["3</var/lib/app/lock>", "F_SETLK", "0x7ffc"]);
    // Without the ring, the failure still decodes, without a path.
    raw.ring.clear();
    assert_eq!(first_failures(ARM, &raw, wall)[0].args[0], "3");
}

// --- Summary -------------------------------------------------------------------------------------

#[test]
fn summary_counts_errors_by_errno_name_and_drops_restarts() {
    let raw = RawContainer {
        calls: vec![(257, 40), (0, 100), (49, 1), (72, 40), (999, 2)],
        errors: vec![
            (257, 2, 3),
            (257, 13, 1),
            (0, 512, 7),
            (0, 4, 2),
            (49, 98, 1),
            (72, 11, 1),
            (72, 516, 4),
        ],
        ..Default::default()
    };
    let s = summary(X86, &raw);
    let names: Vec<&str> = s.iter().map(|x| x.syscall.as_str()).collect();
    assert_eq!(names, ["read", "fcntl", "openat", "syscall_999", "bind"]);
    let openat = &s[2];
    assert_eq!((openat.calls, openat.errors), (40, 4));
    assert_eq!(openat.errnos.get("ENOENT"), Some(&3));
    assert_eq!(openat.errnos.get("EACCES"), Some(&1));
    let read = &s[0];
    assert_eq!(read.errors, 2, "ERESTARTSYS is not an error of the program");
    assert_eq!(read.errnos.keys().collect::<Vec<_>>(), ["EINTR"]);
    assert_eq!(s[1].errnos.keys().collect::<Vec<_>>(), ["EAGAIN"]);
    assert_eq!(s[4].errnos.get("EADDRINUSE"), Some(&1));
}

#[test]
fn summary_uses_the_arch_table() {
    let raw = RawContainer {
        calls: vec![(56, 3), (221, 1)],
        errors: vec![(56, 2, 1), (221, 2, 1)],
        ..Default::default()
    };
    let s = summary(ARM, &raw);
    assert_eq!(s[0].syscall, "openat");
    assert_eq!(s[1].syscall, "execve");
    assert_eq!(s[1].errnos.get("ENOENT"), Some(&1));
    assert!(summary(ARM, &RawContainer::default()).is_empty());
}

// --- Output --------------------------------------------------------------------------------------

#[test]
fn captured_output_is_none_when_nothing_was_written() {
    assert_eq!(captured_output(&RawContainer::default()), None);
}

#[test]
fn captured_output_keeps_head_and_tail_per_stream() {
    let raw = RawContainer {
        stdout: RawStream {
            total: 12,
            head: b"hello world\n".to_vec(),
            tail: Vec::new(),
        },
        stderr: RawStream {
            total: 10_000,
            head: b"panic: \xff".to_vec(),
            tail: b"goroutine 1\n".to_vec(),
        },
        ..Default::default()
    };
    let out = captured_output(&raw).unwrap();
    assert_eq!(out.captured_by, "coroner");
    assert_eq!(out.stdout.head, "hello world\n");
    assert_eq!(out.stdout.total_bytes, 12);
    assert!(out.stdout.tail.is_empty());
    assert_eq!(
        out.stderr.head, "panic: \u{fffd}",
        "invalid bytes are replaced, not dropped"
    );
    assert_eq!(out.stderr.tail, "goroutine 1\n");
    assert_eq!(out.stderr.total_bytes, 10_000);
    let only_stderr = RawContainer {
        stderr: RawStream {
            total: 3,
            head: b"err".to_vec(),
            tail: Vec::new(),
        },
        ..Default::default()
    };
    let out = captured_output(&only_stderr).unwrap();
    assert_eq!((out.stdout.total_bytes, out.stdout.head.as_str()), (0, ""));
}

#[test]
fn utf8_characters_split_by_the_capture_are_dropped_at_the_cut() {
    // "é" is c3 a9: the head ends inside it, the tail starts inside another.
    let raw = RawContainer {
        stdout: RawStream {
            total: 9000,
            head: b"caf\xc3".to_vec(),
            tail: b"\xa9 fin".to_vec(),
        },
        ..Default::default()
    };
    let out = captured_output(&raw).unwrap();
    assert_eq!(out.stdout.head, "caf");
    assert_eq!(out.stdout.tail, " fin");
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
        let s = summary(arch, &raw);
        assert!(s.windows(2).all(|w| w[0].calls >= w[1].calls));
        let _ = captured_output(&raw);
    }
    for _ in 0..10_000 {
        let _ = sockaddr(&rng.bytes());
    }
}
