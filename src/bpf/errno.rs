//! Linux errno names, for the summary and the flight recorder.
//!
//! Values from the kernel's `include/uapi/asm-generic/errno-base.h` and `errno.h` (x86_64 and arm64
//! both use the generic numbering), plus the kernel-internal codes of `include/linux/errno.h` that a
//! syscall-exit probe can see before the signal code rewrites them.
//!
//! Aliases print as the canonical name: `EWOULDBLOCK` is `EAGAIN` (11), `EDEADLOCK` is `EDEADLK`
//! (35), and glibc's `ENOTSUP` is `EOPNOTSUPP` (95).

/// `ERESTARTSYS`: interrupted by a signal; restarted when the handler has `SA_RESTART`.
pub const ERESTARTSYS: u32 = 512;
/// `ERESTARTNOINTR`: always restarted.
pub const ERESTARTNOINTR: u32 = 513;
/// `ERESTARTNOHAND`: restarted when no handler ran.
pub const ERESTARTNOHAND: u32 = 514;
/// `ENOIOCTLCMD`: a driver's "no such ioctl", turned into `ENOTTY` before userspace sees it.
pub const ENOIOCTLCMD: u32 = 515;
/// `ERESTART_RESTARTBLOCK`: restarted through `restart_syscall`.
pub const ERESTART_RESTARTBLOCK: u32 = 516;
/// `ENOTSUPP`: kernel-internal, but known to leak to userspace from some drivers and NFS.
pub const ENOTSUPP: u32 = 524;

/// Names of errno 0..=133 by value; empty where Linux assigns nothing (0, 41, 58).
#[rustfmt::skip]
const NAMES: [&str; 134] = [
    "",  // unassigned
    "EPERM",
    "ENOENT",
    "ESRCH",
    "EINTR",
    "EIO",
    "ENXIO",
    "E2BIG",
    "ENOEXEC",
    "EBADF",
    "ECHILD",
    "EAGAIN",
    "ENOMEM",
    "EACCES",
    "EFAULT",
    "ENOTBLK",
    "EBUSY",
    "EEXIST",
    "EXDEV",
    "ENODEV",
    "ENOTDIR",
    "EISDIR",
    "EINVAL",
    "ENFILE",
    "EMFILE",
    "ENOTTY",
    "ETXTBSY",
    "EFBIG",
    "ENOSPC",
    "ESPIPE",
    "EROFS",
    "EMLINK",
    "EPIPE",
    "EDOM",
    "ERANGE",
    "EDEADLK",
    "ENAMETOOLONG",
    "ENOLCK",
    "ENOSYS",
    "ENOTEMPTY",
    "ELOOP",
    "",  // unassigned
    "ENOMSG",
    "EIDRM",
    "ECHRNG",
    "EL2NSYNC",
    "EL3HLT",
    "EL3RST",
    "ELNRNG",
    "EUNATCH",
    "ENOCSI",
    "EL2HLT",
    "EBADE",
    "EBADR",
    "EXFULL",
    "ENOANO",
    "EBADRQC",
    "EBADSLT",
    "",  // unassigned
    "EBFONT",
    "ENOSTR",
    "ENODATA",
    "ETIME",
    "ENOSR",
    "ENONET",
    "ENOPKG",
    "EREMOTE",
    "ENOLINK",
    "EADV",
    "ESRMNT",
    "ECOMM",
    "EPROTO",
    "EMULTIHOP",
    "EDOTDOT",
    "EBADMSG",
    "EOVERFLOW",
    "ENOTUNIQ",
    "EBADFD",
    "EREMCHG",
    "ELIBACC",
    "ELIBBAD",
    "ELIBSCN",
    "ELIBMAX",
    "ELIBEXEC",
    "EILSEQ",
    "ERESTART",
    "ESTRPIPE",
    "EUSERS",
    "ENOTSOCK",
    "EDESTADDRREQ",
    "EMSGSIZE",
    "EPROTOTYPE",
    "ENOPROTOOPT",
    "EPROTONOSUPPORT",
    "ESOCKTNOSUPPORT",
    "EOPNOTSUPP",
    "EPFNOSUPPORT",
    "EAFNOSUPPORT",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "ENETDOWN",
    "ENETUNREACH",
    "ENETRESET",
    "ECONNABORTED",
    "ECONNRESET",
    "ENOBUFS",
    "EISCONN",
    "ENOTCONN",
    "ESHUTDOWN",
    "ETOOMANYREFS",
    "ETIMEDOUT",
    "ECONNREFUSED",
    "EHOSTDOWN",
    "EHOSTUNREACH",
    "EALREADY",
    "EINPROGRESS",
    "ESTALE",
    "EUCLEAN",
    "ENOTNAM",
    "ENAVAIL",
    "EISNAM",
    "EREMOTEIO",
    "EDQUOT",
    "ENOMEDIUM",
    "EMEDIUMTYPE",
    "ECANCELED",
    "ENOKEY",
    "EKEYEXPIRED",
    "EKEYREVOKED",
    "EKEYREJECTED",
    "EOWNERDEAD",
    "ENOTRECOVERABLE",
    "ERFKILL",
    "EHWPOISON",
];

/// The name of a (positive) errno value: `ENOENT` for 2.
pub fn name(errno: u32) -> Option<&'static str> {
    match errno {
        0..=133 => Some(NAMES[errno as usize]).filter(|n| !n.is_empty()),
        ERESTARTSYS => Some("ERESTARTSYS"),
        ERESTARTNOINTR => Some("ERESTARTNOINTR"),
        ERESTARTNOHAND => Some("ERESTARTNOHAND"),
        ENOIOCTLCMD => Some("ENOIOCTLCMD"),
        ERESTART_RESTARTBLOCK => Some("ERESTART_RESTARTBLOCK"),
        ENOTSUPP => Some("ENOTSUPP"),
        _ => None,
    }
}

/// The errno value of a name, aliases included (`EWOULDBLOCK` -> 11).
pub fn number(name: &str) -> Option<u32> {
    match name {
        "EWOULDBLOCK" => return Some(11),
        "EDEADLOCK" => return Some(35),
        "ENOTSUP" => return Some(95),
        _ => {}
    }
    (1..=133)
        .chain(ERESTARTSYS..=ERESTART_RESTARTBLOCK)
        .chain([ENOTSUPP])
        .find(|&n| self::name(n) == Some(name))
}

/// A code from `include/linux/errno.h` that userspace should never see (>= 512).
pub fn is_kernel_internal(errno: u32) -> bool {
    errno >= 512 && name(errno).is_some()
}

/// One of the `ERESTART*` codes: the syscall was interrupted by a signal and will be restarted
/// (or turned into `EINTR`), so it is not an error of the program. Summaries drop these.
pub fn is_restart(errno: u32) -> bool {
    matches!(
        errno,
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND | ERESTART_RESTARTBLOCK
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_errnos_have_their_linux_names() {
        for (n, want) in [
            (1, "EPERM"),
            (2, "ENOENT"),
            (4, "EINTR"),
            (9, "EBADF"),
            (12, "ENOMEM"),
            (13, "EACCES"),
            (17, "EEXIST"),
            (22, "EINVAL"),
            (24, "EMFILE"),
            (28, "ENOSPC"),
            (32, "EPIPE"),
            (38, "ENOSYS"),
            (42, "ENOMSG"),
            (59, "EBFONT"),
            (95, "EOPNOTSUPP"),
            (98, "EADDRINUSE"),
            (104, "ECONNRESET"),
            (110, "ETIMEDOUT"),
            (111, "ECONNREFUSED"),
            (133, "EHWPOISON"),
        ] {
            assert_eq!(name(n), Some(want), "{n}");
            assert_eq!(number(want), Some(n), "{want}");
        }
    }

    #[test]
    fn ewouldblock_prints_as_eagain() {
        assert_eq!(name(11), Some("EAGAIN"));
        assert_eq!(number("EWOULDBLOCK"), Some(11));
    }

    #[test]
    fn edeadlock_prints_as_edeadlk() {
        assert_eq!(name(35), Some("EDEADLK"));
        assert_eq!(number("EDEADLOCK"), Some(35));
    }

    #[test]
    fn alias_holes_41_and_58_have_no_name() {
        assert_eq!(name(41), None);
        assert_eq!(name(58), None);
        assert_eq!(name(0), None);
    }

    #[test]
    fn restart_codes_are_kernel_internal_and_named() {
        assert_eq!(name(512), Some("ERESTARTSYS"));
        assert_eq!(name(515), Some("ENOIOCTLCMD"));
        assert_eq!(name(516), Some("ERESTART_RESTARTBLOCK"));
        for n in 512..=516 {
            assert!(is_kernel_internal(n), "{n}");
        }
        assert!(is_restart(512) && is_restart(513) && is_restart(514) && is_restart(516));
        assert!(!is_restart(ENOIOCTLCMD));
        assert!(!is_kernel_internal(2) && !is_restart(4));
    }

    #[test]
    fn out_of_range_values_have_no_name() {
        for n in [134, 200, 511, 517, 4095, u32::MAX] {
            assert_eq!(name(n), None, "{n}");
            assert!(!is_kernel_internal(n));
        }
    }

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for n in (0..=600).filter(|&n| name(n).is_some()) {
            assert!(seen.insert(name(n).unwrap()), "{n}");
        }
        assert_eq!(seen.len(), 131 + 6);
    }
}
