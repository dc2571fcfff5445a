//! Copied paths: how a path argument reads (quoted, escaped, cut, or an uncopied pointer) and the
//! unquoted form an fd label takes. Nothing here knows which syscalls take paths (`table` does).

use super::files::EFAULT;
use super::{errno_of, ptr, Ctx};
use crate::bpf::raw::{DataSpec, RawSyscall};

/// The copied path of argument `i`: quoted and escaped, `"..."...` when cut.
pub(super) fn fmt_path(ctx: &Ctx, i: usize) -> String {
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
pub(super) fn not_copied(v: u64) -> String {
    format!("{} /* not copied */", ptr(v))
}

/// The copied string up to its NUL, and whether it was cut at the record's capacity.
pub(super) fn path_bytes(raw: &RawSyscall) -> (&[u8], bool) {
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
pub(super) fn escape(bytes: &[u8]) -> String {
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
pub(super) fn path_label(raw: &RawSyscall) -> String {
    let (s, cut) = path_bytes(raw);
    let mut out = escape(s);
    if cut {
        out.push_str("...");
    }
    out
}
#[cfg(test)]
mod tests {
    use crate::bpf::decode::test_support::*;

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
}
