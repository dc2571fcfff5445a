//! The views of a whole container's records: the `strace -c`-like summary, the flight recorder and
//! the first failures (ordered and fd-annotated), and the captured stdout/stderr.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::fds::FdTracker;
use super::{decode_with, errno_name, syscall_name};
use crate::bpf::errno;
use crate::bpf::raw::{Arch, RawContainer, RawStream, RawSyscall};
use crate::model::{CapturedOutput, StreamCapture, SyscallEvent, SyscallStat};

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

/// The first call of each distinct (syscall, errno) the kernel kept, decoded and fd-annotated like
/// [`first_failures`], most telling first ([`super::telling`]), in order of occurrence within a
/// rank.
pub fn telling_failures(
    arch: Arch,
    raw: &RawContainer,
    wall: impl Fn(u64) -> DateTime<Utc>,
) -> Vec<SyscallEvent> {
    let ring = in_ring_order(&raw.ring);
    let mut next = ring.iter().peekable();
    let mut fds = FdTracker::default();
    let mut events: Vec<SyscallEvent> = in_ring_order(&raw.distinct_failures)
        .into_iter()
        .map(|f| {
            while let Some(r) = next.next_if(|r| r.seq < f.seq) {
                fds.observe(arch, r);
            }
            decode_with(arch, f, &wall, Some(&fds))
        })
        .collect();
    // Stable: occurrence order within a rank.
    events.sort_by_key(|e| super::telling(&e.syscall, e.errno.as_deref().unwrap_or("")));
    events
}

/// First failures are copies of ring records, so they carry their ring position too.
pub(super) fn in_ring_order(records: &[RawSyscall]) -> Vec<&RawSyscall> {
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

pub(super) fn stream(s: &RawStream) -> StreamCapture {
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
pub(super) fn trim_partial_end(b: &[u8]) -> &[u8] {
    match std::str::from_utf8(b) {
        Err(e) if e.error_len().is_none() && b.len() - e.valid_up_to() <= 3 => {
            &b[..e.valid_up_to()]
        }
        _ => b,
    }
}

/// Drops UTF-8 continuation bytes (at most 3) at the start of `b`.
pub(super) fn trim_partial_start(b: &[u8]) -> &[u8] {
    let skip = b.iter().take(3).take_while(|&&c| c & 0xc0 == 0x80).count();
    &b[skip..]
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::decode::test_support::*;

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
}
