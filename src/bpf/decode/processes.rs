//! Process, signal and memory values: `clone` and namespace flags, `wait` options, `mmap`
//! protections and flags (per architecture), `futex` operations.

use super::{flags, fmt_signal};
use crate::bpf::raw::Arch;

pub(super) const CLONE_THREAD: u64 = 0x10000;

pub(super) const CLONE_BITS: &[(u64, &str)] = &[
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

pub(super) const NS_FLAGS: &[(u64, &str)] = &[
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
pub(super) fn clone_flags(v: u64) -> String {
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

pub(super) const WAIT_OPTS: &[(u64, &str)] = &[
    (1, "WNOHANG"),
    (2, "WUNTRACED"),
    (4, "WEXITED"),
    (8, "WCONTINUED"),
    (0x1000000, "WNOWAIT"),
    (0x20000000, "__WNOTHREAD"),
    (0x40000000, "__WALL"),
    (0x80000000, "__WCLONE"),
];

pub(super) fn prot(arch: Arch, v: u32) -> String {
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

pub(super) fn map_flags(arch: Arch, v: u32) -> String {
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

pub(super) fn futex_op(v: u32) -> String {
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
#[cfg(test)]
mod tests {
    use crate::bpf::decode::test_support::*;

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
}
