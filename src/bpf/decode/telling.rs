//! How telling a failed syscall is in a postmortem: a bind's `EADDRINUSE`, `EACCES`, `EROFS`,
//! `ENOSPC`, `EMFILE` or a lock's `EAGAIN` usually names the cause of a crash; the `ENOENT` of a
//! path search, a non-blocking read's `EAGAIN` or a terminal probe's `ENOTTY` is what every boot
//! does. Pure: syscall and errno names in, a rank out.

/// How telling a failure is; the derived order puts the most telling first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Telling {
    /// Usually the cause: refused permissions, a full or read-only disk, no fds or memory left,
    /// an address or lock someone else holds, a peer that refused.
    Cause,
    /// Neither routine nor usually the cause.
    Unusual,
    /// What a healthy program does all the time (lookups, probes, non-blocking retries).
    Routine,
}

/// Errnos that usually are the cause, whatever the syscall.
const CAUSES: &[&str] = &[
    "EACCES",
    "EPERM",
    "EROFS",
    "ENOSPC",
    "EDQUOT",
    "EMFILE",
    "ENFILE",
    "ENOMEM",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "ENOEXEC",
    "ETXTBSY",
    "EIO",
    "EFBIG",
    "ELOOP",
    "ENAMETOOLONG",
    "EDEADLK",
    "ENOLCK",
];

/// Errnos a healthy program meets all the time, whatever the syscall.
const ROUTINE: &[&str] = &[
    "ENOENT",
    "EINTR",
    "ENOTTY",
    "EINPROGRESS",
    "ECHILD",
    "ESPIPE",
    "ENOSYS",
    "EOPNOTSUPP",
    "ENODATA",
    "ENXIO",
    "EEXIST",
    "ENOTDIR",
    "ESRCH",
    "EALREADY",
];

/// Syscalls whose `EAGAIN` is a lock someone else holds (`flock(LOCK_NB)`, `fcntl(F_SETLK)`),
/// not a non-blocking read with nothing to read.
const LOCKS: &[&str] = &["flock", "fcntl", "fcntl64"];

/// The rank of a failed `syscall` with `errno` (names as in reports).
pub fn telling(syscall: &str, errno: &str) -> Telling {
    if CAUSES.contains(&errno) {
        return Telling::Cause;
    }
    if errno == "EAGAIN" || errno == "EWOULDBLOCK" {
        return if LOCKS.contains(&syscall) {
            Telling::Cause
        } else {
            Telling::Routine
        };
    }
    if ROUTINE.contains(&errno) {
        return Telling::Routine;
    }
    Telling::Unusual
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_ranks_above_a_missing_file() {
        assert!(telling("bind", "EADDRINUSE") < telling("openat", "ENOENT"));
        assert_eq!(telling("openat", "ENOENT"), Telling::Routine);
    }

    #[test]
    fn eagain_is_telling_only_on_a_lock() {
        assert_eq!(telling("flock", "EAGAIN"), Telling::Cause);
        assert_eq!(telling("fcntl", "EAGAIN"), Telling::Cause);
        assert_eq!(telling("read", "EAGAIN"), Telling::Routine);
        assert_eq!(telling("accept4", "EAGAIN"), Telling::Routine);
    }

    #[test]
    fn the_causes_of_the_issue_rank_first() {
        for (call, errno) in [
            ("openat", "EACCES"),
            ("openat", "EROFS"),
            ("write", "ENOSPC"),
            ("socket", "EMFILE"),
            ("connect", "ECONNREFUSED"),
        ] {
            assert_eq!(telling(call, errno), Telling::Cause, "{call} {errno}");
        }
        assert_eq!(telling("ioctl", "EINVAL"), Telling::Unusual);
    }
}
