//! File values: `O_*` open flags (per architecture), modes, `AT_*`, access, rename and `flock`
//! flags, and `fcntl` commands with their third argument.

use super::{flags, fmt_signal, hex, int, pick, ptr, Ctx};
use crate::bpf::raw::Arch;

pub(super) const O_CREAT: u64 = 0o100;
pub(super) const O_CLOEXEC: u32 = 0o2000000;
pub(super) const O_DSYNC: u32 = 0o10000;
pub(super) const O_SYNC_BIT: u32 = 0o4000000;
pub(super) const O_TMPFILE_BIT: u64 = 0o20000000;
pub(super) const AT_FDCWD: i32 = -100;
pub(super) const EFAULT: u32 = 14;

/// The `O_*` bits other than the access mode, in strace's order. x86_64 and arm64 share the
/// asm-generic values except for four bits arm64 (`arch/arm64/include/uapi/asm/fcntl.h`) moves.
pub(super) fn open_bits(arch: Arch) -> [(u64, &'static str); 15] {
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

pub(super) fn o_directory(arch: Arch) -> u32 {
    match arch {
        Arch::X86_64 => 0o200000,
        Arch::Aarch64 => 0o40000,
    }
}

/// `O_RDONLY|O_CREAT|O_CLOEXEC`; `O_SYNC` and `O_TMPFILE` are multi-bit and named as such.
pub(super) fn open_flags(arch: Arch, v: u32) -> String {
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
pub(super) fn fd_flags(arch: Arch, v: u32) -> String {
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
pub(super) fn fmt_mode(m: u32) -> String {
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

pub(super) const AT_FLAGS: &[(u64, &str)] = &[
    (0x100, "AT_SYMLINK_NOFOLLOW"),
    (0x400, "AT_SYMLINK_FOLLOW"),
    (0x800, "AT_NO_AUTOMOUNT"),
    (0x1000, "AT_EMPTY_PATH"),
    (0x2000, "AT_STATX_FORCE_SYNC"),
    (0x4000, "AT_STATX_DONT_SYNC"),
    (0x8000, "AT_RECURSIVE"),
];

pub(super) const FACCESSAT_FLAGS: &[(u64, &str)] = &[
    (0x100, "AT_SYMLINK_NOFOLLOW"),
    (0x200, "AT_EACCESS"),
    (0x1000, "AT_EMPTY_PATH"),
];

pub(super) const ACCESS_MODES: &[(u64, &str)] = &[(4, "R_OK"), (2, "W_OK"), (1, "X_OK")];

pub(super) const RENAME_FLAGS: &[(u64, &str)] = &[
    (1, "RENAME_NOREPLACE"),
    (2, "RENAME_EXCHANGE"),
    (4, "RENAME_WHITEOUT"),
];

pub(super) const FLOCK_OPS: &[(u64, &str)] = &[
    (1, "LOCK_SH"),
    (2, "LOCK_EX"),
    (8, "LOCK_UN"),
    (4, "LOCK_NB"),
    (32, "LOCK_MAND"),
    (64, "LOCK_READ"),
    (128, "LOCK_WRITE"),
];

// fcntl commands (asm-generic/fcntl.h, include/uapi/linux/fcntl.h; the same on x86_64 and arm64).
pub(super) const F_DUPFD: i32 = 0;
pub(super) const F_SETFD: i32 = 2;
pub(super) const F_GETOWN: i32 = 9;
pub(super) const F_DUPFD_CLOEXEC: i32 = 1030;

pub(super) fn fcntl_cmd_name(cmd: i32) -> Option<&'static str> {
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

pub(super) fn fcntl_cmd(cmd: i32) -> String {
    fcntl_cmd_name(cmd).map_or_else(|| cmd.to_string(), str::to_string)
}

/// Whether strace shows a third argument for the command (the getters take none).
pub(super) fn fcntl_takes_arg(cmd: i32) -> bool {
    !matches!(cmd, 1 | 3 | 9 | 11 | 1025 | 1029 | 1032 | 1034)
}

pub(super) fn fcntl_arg(ctx: &Ctx, cmd: i32, v: u64) -> String {
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
#[cfg(test)]
mod tests {
    use crate::bpf::decode::test_support::*;

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
}
