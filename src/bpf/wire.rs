//! The kernel's records (the skeleton's types, generated from `coroner.h`) turned into the
//! layout-free types of [`super::raw`]. Pure: no map access, no libbpf calls, so the conversions
//! are tested with records built in memory. A record shorter than its struct is an error here,
//! never a panic; [`super::loader`] skips and counts it.

use std::mem::size_of;

use super::raw::{
    RawContainer, RawEvent, RawExitUsage, RawFatalStack, RawFaultMapping, RawFrame, RawStream,
    RawSyscall, RawVma,
};

/// The skeletons libbpf-cargo generated from `src/bpf/*.bpf.c` in build.rs.
#[allow(clippy::all, unsafe_op_in_unsafe_fn, unused_qualifications)]
pub(crate) mod skel {
    include!(concat!(env!("OUT_DIR"), "/coroner.skel.rs"));
}

#[allow(clippy::all, unsafe_op_in_unsafe_fn, unused_qualifications)]
pub(crate) mod minimal_skel {
    include!(concat!(env!("OUT_DIR"), "/minimal.skel.rs"));
}

pub(crate) use skel::types;

/// Constants of `coroner.h` the conversions need; the struct sizes below keep them honest.
pub(crate) const COMM_LEN: usize = 16;
pub(crate) const NR_MAX: usize = 512;
pub(crate) const OUT_CAP: usize = 4096;
pub(crate) const FIRST_FAILURES: usize = 8;
pub(crate) const DISTINCT_FAILURES: usize = 16;
pub(crate) const DATA_MAX: usize = 128;
const EV_FORK: u32 = 1;
const EV_EXEC: u32 = 2;
const EV_EXIT: u32 = 3;
const EV_SIGNAL: u32 = 4;
const EV_OOM: u32 = 5;
/// `CORONER_USAGE_*`: which `exit_usage` figures the kernel had.
const USAGE_PEAK: u32 = 0x01;
const USAGE_FAILCNT: u32 = 0x02;
const USAGE_OOM: u32 = 0x04;
const USAGE_OOM_KILL: u32 = 0x08;
const USAGE_CURRENT: u32 = 0x10;
const USAGE_CPU: u32 = 0x20;
const USAGE_PIDS_PEAK: u32 = 0x40;
/// `CORONER_STACK_*`, `CORONER_FRAME_*` and the stack's size.
const STACK_MAX: usize = 32;
const STACK_FAULT_ADDR: u32 = 0x01;
const STACK_VMA: u32 = 0x02;
const STACK_NO_VMA: u32 = 0x04;
const FRAME_VALID: i32 = 1;
const FRAME_IP: i32 = 2;
/// `VM_READ`, `VM_WRITE`, `VM_EXEC` in `vm_flags`.
const VM_READ: u64 = 0x1;
const VM_WRITE: u64 = 0x2;
const VM_EXEC: u64 = 0x4;
/// `CORONER_EVENT_MAX`: room for the largest event in a saved event.
pub(crate) const EVENT_MAX: usize = 816;

const _: () = {
    assert!(size_of::<types::sys_record>() == 128 + DATA_MAX);
    assert!(size_of::<[u64; NR_MAX]>() == size_of::<[u64; 512]>());
    assert!(size_of::<types::out_stream>() == 8 + 2 * OUT_CAP);
    assert!(size_of::<types::exec_event>() == EVENT_MAX);
    assert!(size_of::<types::saved_event>() == 8 + EVENT_MAX);
    assert!(size_of::<types::stack_frame_id>() == 32);
    assert!(size_of::<[u64; STACK_MAX]>() == size_of::<[u64; 32]>());
};

/// Types that are plain old data: generated from `coroner.h`, `#[repr(C)]`, made only of
/// integers and arrays of integers, so every bit pattern is a valid value.
///
/// # Safety
/// Implement only for such types.
pub(crate) unsafe trait Plain: Copy {}

// SAFETY: all generated from coroner.h, whose structs hold only fixed-width integers and arrays
// of them (no enums, bools or pointers).
unsafe impl Plain for types::slot {}
unsafe impl Plain for types::sys_record {}
unsafe impl Plain for types::event_header {}
unsafe impl Plain for types::fork_event {}
unsafe impl Plain for types::exec_event {}
unsafe impl Plain for types::exit_event {}
unsafe impl Plain for types::signal_event {}
unsafe impl Plain for types::oom_event {}
unsafe impl Plain for types::bss {}
unsafe impl Plain for types::agent_state {}
unsafe impl Plain for types::saved_event_key {}
unsafe impl Plain for types::saved_event {}
unsafe impl Plain for types::fatal_stack {}

/// A copy of the `T` at the start of `bytes`, or `None` when `bytes` is too short.
pub(crate) fn read<T: Plain>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: the length is checked above, `read_unaligned` needs no alignment, and `T: Plain`
    // makes any bytes a valid `T`.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// The bytes of a `T`, to write a value back to a map.
pub(crate) fn bytes_of<T: Plain>(value: &T) -> &[u8] {
    // SAFETY: `T: Plain` has no padding the generated types leave implicit (libbpf-cargo adds
    // explicit `__pad` fields), and a shared borrow of `size_of::<T>()` bytes of it is valid.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}

/// Why an event record could not be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("event record of {len} bytes is shorter than its {need}-byte struct (type {ty})")]
    Short { ty: u32, len: usize, need: usize },
    #[error("event record of unknown type {ty}")]
    UnknownType { ty: u32 },
}

/// A NUL-terminated kernel `char[]` as text (lossy: comm and paths are bytes to the kernel).
fn c_string(chars: &[i8]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn comm(chars: &[i8; COMM_LEN]) -> String {
    c_string(chars)
}

pub(crate) fn syscall(r: &types::sys_record) -> RawSyscall {
    let len = usize::from(r.data_len).min(r.data.len());
    RawSyscall {
        seq: r.seq,
        boot_ns: r.boot_ns,
        pid: r.pid,
        tid: r.tid,
        comm: comm(&r.comm),
        nr: r.nr,
        args: r.args,
        ret: r.ret,
        data: r.data[..len].to_vec(),
        data_truncated: r.data_truncated != 0,
    }
}

/// Ring position `pos` (0-based) holds a record of this slot's owner.
pub(crate) fn ring_record_valid(r: &types::sys_record, slot_gen: u32, pos: u64) -> bool {
    r.seq == pos + 1 && r.r#gen == slot_gen
}

pub(crate) fn stream(s: &types::out_stream) -> RawStream {
    let cap = OUT_CAP as u64;
    let head_len = s.total.min(cap) as usize;
    let mut tail = Vec::new();
    if s.total > cap {
        // Positions past the head, counted from the start of the tail area.
        let end = s.total - cap;
        let start = end - end.min(cap);
        tail.reserve((end - start) as usize);
        for p in start..end {
            tail.push(s.tail[(p % cap) as usize]);
        }
    }
    RawStream {
        total: s.total,
        head: s.head[..head_len].to_vec(),
        tail,
    }
}

/// Everything in a slot but the ring, which the caller reads from its own map.
pub(crate) fn container(slot: &types::slot, ring: Vec<RawSyscall>) -> RawContainer {
    let calls = slot
        .counts
        .iter()
        .enumerate()
        .filter(|(_, &n)| n != 0)
        .map(|(nr, &n)| (nr as u32, n))
        .collect();
    let mut errors: Vec<(u32, u32, u64)> = slot
        .errs
        .iter()
        .filter(|e| e.key != 0 && e.count != 0)
        .map(|e| (e.key >> 12, e.key & 0xfff, u64::from(e.count)))
        .collect();
    errors.sort_unstable();
    let kept = |records: &[types::sys_record], claimed: u32, cap: usize| -> Vec<RawSyscall> {
        records[..(claimed as usize).min(cap)]
            .iter()
            .filter(|r| r.seq != 0 && r.r#gen == slot.r#gen)
            .map(syscall)
            .collect()
    };
    let first_failures = kept(&slot.first_fail, slot.first_fail_n, FIRST_FAILURES);
    let distinct_failures = kept(&slot.distinct_fail, slot.distinct_n, DISTINCT_FAILURES);
    RawContainer {
        calls,
        errors,
        setup_calls: slot.setup_calls,
        ring,
        ring_total: slot.ring_head,
        first_failures,
        distinct_failures,
        stdout: stream(&slot.out[0]),
        stderr: stream(&slot.out[1]),
        exit_usage: exit_usage(&slot.usage),
        fatal_stack: None,
    }
}

/// A `fatal_stacks` value; frames past the counts the kernel wrote are ignored.
pub(crate) fn fatal_stack(s: &types::fatal_stack, page_size: u64) -> RawFatalStack {
    let n_ips = (s.nr_ips as usize).min(STACK_MAX);
    let n_ids = (s.nr_ids as usize).min(STACK_MAX);
    let frames = s.ids[..n_ids]
        .iter()
        .filter_map(|f| match f.status {
            FRAME_VALID => Some(RawFrame::BuildId {
                build_id: trim_build_id(&f.build_id),
                file_offset: f.offset_or_ip,
            }),
            FRAME_IP => Some(RawFrame::Address(f.offset_or_ip)),
            _ => None,
        })
        .collect();
    let fault_mapping = if s.flags & STACK_VMA != 0 {
        RawFaultMapping::Mapped(RawVma {
            start: s.vma_start,
            end: s.vma_end,
            file_offset: s.vma_pgoff.saturating_mul(page_size),
            readable: s.vma_flags & VM_READ != 0,
            writable: s.vma_flags & VM_WRITE != 0,
            executable: s.vma_flags & VM_EXEC != 0,
            file: c_string(&s.vma_file),
        })
    } else if s.flags & STACK_NO_VMA != 0 {
        RawFaultMapping::Unmapped
    } else {
        RawFaultMapping::Unknown
    };
    RawFatalStack {
        boot_ns: s.boot_ns,
        pid: s.pid,
        tid: s.tid,
        signal: s.sig,
        code: s.code,
        comm: comm(&s.comm),
        fault_addr: (s.flags & STACK_FAULT_ADDR != 0).then_some(s.fault_addr),
        fault_mapping,
        ips: s.ips[..n_ips].to_vec(),
        frames,
    }
}

/// The kernel pads a 16-byte build id (`--build-id=md5` or `uuid`) with zeroes to 20 bytes and
/// keeps no length: four zero bytes at the end are taken for that padding.
fn trim_build_id(id: &[u8; 20]) -> Vec<u8> {
    if id[16..].iter().all(|&b| b == 0) {
        id[..16].to_vec()
    } else {
        id.to_vec()
    }
}

/// The kernel's figures at the cgroup's last process exit; `None` before any exit.
pub(crate) fn exit_usage(u: &types::exit_usage) -> Option<RawExitUsage> {
    if u.boot_ns == 0 {
        return None;
    }
    let has = |flag: u32, v: u64| (u.flags & flag != 0).then_some(v);
    Some(RawExitUsage {
        boot_ns: u.boot_ns,
        pid: u.pid,
        current_bytes: has(USAGE_CURRENT, u.current_bytes),
        peak_bytes: has(USAGE_PEAK, u.peak_bytes),
        failcnt: has(USAGE_FAILCNT, u.failcnt),
        oom: has(USAGE_OOM, u.oom),
        oom_kill: has(USAGE_OOM_KILL, u.oom_kill),
        cpu_ns: has(USAGE_CPU, u.cpu_ns),
        pids_peak: has(USAGE_PIDS_PEAK, u.pids_peak),
    })
}

/// A saved event's bytes, as the ring buffer delivered them (`None` if its length is invalid).
pub(crate) fn saved_event_bytes(e: &types::saved_event) -> Option<&[u8]> {
    e.data.get(..e.len as usize)
}

/// A ring-buffer record packed for the `saved_events` map; `None` if it does not fit.
pub(crate) fn saved_event(bytes: &[u8]) -> Option<types::saved_event> {
    if bytes.len() > EVENT_MAX {
        return None;
    }
    let mut e = types::saved_event {
        len: bytes.len() as u32,
        _pad: 0,
        data: [0; EVENT_MAX],
    };
    e.data[..bytes.len()].copy_from_slice(bytes);
    Some(e)
}

fn need<T: Plain>(ty: u32, bytes: &[u8]) -> Result<T, WireError> {
    read::<T>(bytes).ok_or(WireError::Short {
        ty,
        len: bytes.len(),
        need: size_of::<T>(),
    })
}

/// NUL-separated argv as the kernel laid it out (a trailing NUL ends the last argument; a cut
/// last argument is kept as far as it goes).
fn split_argv(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// One ring-buffer record as a process event.
pub(crate) fn event(bytes: &[u8]) -> Result<RawEvent, WireError> {
    let hdr: types::event_header = need(0, bytes)?;
    let ty = hdr.r#type;
    let base = |h: &types::event_header| (h.boot_ns, h.cgroup_id, h.pid, comm(&h.comm));
    Ok(match ty {
        EV_FORK => {
            let e: types::fork_event = need(ty, bytes)?;
            let (boot_ns, cgroup_id, parent_pid, comm) = base(&e.hdr);
            RawEvent::Fork {
                boot_ns,
                cgroup_id,
                parent_pid,
                child_pid: e.child_pid,
                comm,
            }
        }
        EV_EXEC => {
            let e: types::exec_event = need(ty, bytes)?;
            let (boot_ns, cgroup_id, pid, comm) = base(&e.hdr);
            let flen = (e.filename_len as usize).min(e.filename.len());
            let alen = (e.argv_len as usize).min(e.argv.len());
            let argv: Vec<u8> = e.argv[..alen].iter().map(|&c| c as u8).collect();
            RawEvent::Exec {
                boot_ns,
                cgroup_id,
                pid,
                comm,
                filename: c_string(&e.filename[..flen]),
                argv: split_argv(&argv),
            }
        }
        EV_EXIT => {
            let e: types::exit_event = need(ty, bytes)?;
            let (boot_ns, cgroup_id, pid, comm) = base(&e.hdr);
            RawEvent::Exit {
                boot_ns,
                cgroup_id,
                pid,
                comm,
                wait_status: e.wait_status,
            }
        }
        EV_SIGNAL => {
            let e: types::signal_event = need(ty, bytes)?;
            RawEvent::Signal {
                boot_ns: e.hdr.boot_ns,
                cgroup_id: e.hdr.cgroup_id,
                target_pid: e.hdr.pid,
                sig: e.sig,
                code: e.code,
                sender_pid: e.sender_pid,
                sender_comm: comm(&e.sender_comm),
                sender_cgroup_id: e.sender_cgroup_id,
            }
        }
        EV_OOM => {
            let e: types::oom_event = need(ty, bytes)?;
            let (boot_ns, cgroup_id, pid, comm) = base(&e.hdr);
            RawEvent::OomVictim {
                boot_ns,
                cgroup_id,
                pid,
                comm,
                rss_bytes: e.rss_bytes,
            }
        }
        ty => return Err(WireError::UnknownType { ty }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_stack_keeps_the_frames_the_kernel_counted_and_their_build_ids() {
        let mut s: types::fatal_stack = read(&[0u8; size_of::<types::fatal_stack>()]).unwrap();
        s.pid = 7;
        s.sig = 11;
        s.code = 1;
        s.fault_addr = 0;
        s.flags = STACK_FAULT_ADDR | STACK_NO_VMA;
        s.nr_ips = 2;
        s.ips[0] = 0x401136;
        s.ips[1] = 0x401150;
        s.ips[2] = 0xdead; // beyond nr_ips: stale
        s.nr_ids = 3;
        s.ids[0].status = FRAME_VALID;
        s.ids[0].build_id = [0xab; 20];
        s.ids[0].offset_or_ip = 0x1136;
        s.ids[1].status = FRAME_VALID;
        s.ids[1].build_id[..16].copy_from_slice(&[0xcd; 16]);
        s.ids[1].offset_or_ip = 0x1150;
        s.ids[2].status = FRAME_IP;
        s.ids[2].offset_or_ip = 0x7fff_0000;
        s.comm = chars("crash");
        let raw = fatal_stack(&s, 4096);
        assert_eq!(raw.ips, vec![0x401136, 0x401150]);
        assert_eq!(raw.fault_addr, Some(0));
        assert_eq!(raw.fault_mapping, RawFaultMapping::Unmapped);
        assert_eq!(
            raw.frames,
            vec![
                RawFrame::BuildId {
                    build_id: vec![0xab; 20],
                    file_offset: 0x1136
                },
                RawFrame::BuildId {
                    build_id: vec![0xcd; 16],
                    file_offset: 0x1150
                },
                RawFrame::Address(0x7fff_0000),
            ]
        );
        assert_eq!(raw.comm, "crash");
        s.flags = STACK_VMA;
        s.vma_pgoff = 2;
        s.vma_flags = VM_READ | VM_EXEC;
        s.vma_file = chars("libc.so.6");
        let raw = fatal_stack(&s, 4096);
        assert_eq!(raw.fault_addr, None, "no fault address without its flag");
        match raw.fault_mapping {
            RawFaultMapping::Mapped(v) => {
                assert_eq!(
                    (v.file_offset, v.readable, v.writable, v.executable),
                    (8192, true, false, true)
                );
                assert_eq!(v.file, "libc.so.6");
            }
            other => panic!("{other:?}"),
        }
    }

    fn chars<const N: usize>(s: &str) -> [i8; N] {
        let mut out = [0i8; N];
        for (o, b) in out.iter_mut().zip(s.bytes()) {
            *o = b as i8;
        }
        out
    }

    fn header(ty: u32) -> types::event_header {
        types::event_header {
            r#type: ty,
            pid: 42,
            boot_ns: 7,
            cgroup_id: 9,
            comm: chars("sh"),
        }
    }

    #[test]
    fn usage_flags_and_event_size_are_the_ones_coroner_h_defines() {
        let header = include_str!("coroner.h");
        let define = |name: &str| -> u32 {
            let line = header
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(name))
                .unwrap_or_else(|| panic!("no #define {name} in coroner.h"));
            let value = line.split_whitespace().nth(2).unwrap();
            match value.strip_prefix("0x") {
                Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
                None => value.parse().unwrap(),
            }
        };
        assert_eq!(define("CORONER_USAGE_PEAK"), USAGE_PEAK);
        assert_eq!(define("CORONER_USAGE_FAILCNT"), USAGE_FAILCNT);
        assert_eq!(define("CORONER_USAGE_OOM"), USAGE_OOM);
        assert_eq!(define("CORONER_USAGE_OOM_KILL"), USAGE_OOM_KILL);
        assert_eq!(define("CORONER_USAGE_CURRENT"), USAGE_CURRENT);
        assert_eq!(define("CORONER_USAGE_CPU"), USAGE_CPU);
        assert_eq!(define("CORONER_USAGE_PIDS_PEAK"), USAGE_PIDS_PEAK);
        assert_eq!(define("CORONER_EVENT_MAX") as usize, EVENT_MAX);
    }

    #[test]
    fn exit_usage_keeps_only_the_figures_the_kernel_had() {
        let mut u = types::exit_usage::default();
        assert_eq!(exit_usage(&u), None, "no process exited yet");
        u.boot_ns = 5;
        u.pid = 42;
        u.peak_bytes = 20 << 20;
        u.oom_kill = 1;
        u.failcnt = 9;
        u.flags = USAGE_PEAK | USAGE_OOM_KILL;
        let raw = exit_usage(&u).unwrap();
        assert_eq!(raw.peak_bytes, Some(20 << 20));
        assert_eq!(raw.oom_kill, Some(1));
        assert_eq!(
            raw.failcnt, None,
            "flag clear: the kernel has no such field"
        );
        assert_eq!(raw.pid, 42);
        assert_eq!(raw.cpu_ns, None);
        u.cpu_ns = 3_500_000;
        u.pids_peak = 4;
        u.flags |= USAGE_CPU | USAGE_PIDS_PEAK;
        let raw = exit_usage(&u).unwrap();
        assert_eq!(raw.cpu_ns, Some(3_500_000));
        assert_eq!(raw.pids_peak, Some(4));
    }

    #[test]
    fn saved_events_round_trip_and_refuse_oversized_records() {
        let e = types::exit_event {
            hdr: header(EV_EXIT),
            wait_status: 9,
            ..Default::default()
        };
        let bytes = bytes_of(&e);
        let saved = saved_event(bytes).unwrap();
        let back = saved_event_bytes(&saved).unwrap();
        assert_eq!(back, bytes);
        assert_eq!(event(back), event(bytes));
        assert!(saved_event(&[0u8; EVENT_MAX + 1]).is_none());
        let mut bad = saved;
        bad.len = EVENT_MAX as u32 + 1;
        assert!(saved_event_bytes(&bad).is_none());
    }

    #[test]
    fn exec_event_splits_argv_and_keeps_empty_arguments() {
        let mut e = types::exec_event {
            hdr: header(EV_EXEC),
            ..Default::default()
        };
        let argv = b"busybox\0sh\0\0-c\0";
        e.argv[..argv.len()].copy_from_slice(&argv.map(|b| b as i8));
        e.argv_len = argv.len() as u32;
        e.filename = chars("/bin/busybox");
        e.filename_len = 12;
        let ev = event(bytes_of(&e)).unwrap();
        assert_eq!(
            ev,
            RawEvent::Exec {
                boot_ns: 7,
                cgroup_id: 9,
                pid: 42,
                comm: "sh".into(),
                filename: "/bin/busybox".into(),
                argv: vec!["busybox".into(), "sh".into(), "".into(), "-c".into()],
            }
        );
    }

    #[test]
    fn short_or_unknown_event_records_are_errors_not_panics() {
        let e = types::exit_event {
            hdr: header(EV_EXIT),
            wait_status: 3 << 8,
            _pad: 0,
        };
        let b = bytes_of(&e);
        assert!(matches!(
            event(&b[..b.len() - 1]),
            Err(WireError::Short { ty: EV_EXIT, .. })
        ));
        assert!(matches!(
            event(&b[..3]),
            Err(WireError::Short { ty: 0, .. })
        ));
        assert_eq!(
            event(&[]),
            Err(WireError::Short {
                ty: 0,
                len: 0,
                need: size_of::<types::event_header>()
            })
        );
        let odd = types::exit_event {
            hdr: header(99),
            ..e
        };
        assert_eq!(
            event(bytes_of(&odd)),
            Err(WireError::UnknownType { ty: 99 })
        );
        assert!(matches!(
            event(b),
            Ok(RawEvent::Exit {
                wait_status: 768,
                ..
            })
        ));
    }

    #[test]
    fn stream_tail_is_oldest_first_and_excludes_the_head() {
        let mut s = types::out_stream::default();
        // 4096 head bytes, then 4096 + 10 more: the tail holds the last 4096, wrapped by 10.
        let total = (OUT_CAP * 2 + 10) as u64;
        for p in OUT_CAP as u64..total {
            s.tail[((p - OUT_CAP as u64) % OUT_CAP as u64) as usize] = (p % 251) as u8;
        }
        s.total = total;
        let r = stream(&s);
        assert_eq!(r.head.len(), OUT_CAP);
        assert_eq!(r.tail.len(), OUT_CAP);
        let expect: Vec<u8> = (total - OUT_CAP as u64..total)
            .map(|p| (p % 251) as u8)
            .collect();
        assert_eq!(r.tail, expect);

        let mut small = types::out_stream::default();
        small.head[..4].copy_from_slice(b"out\n");
        small.total = 4;
        assert_eq!(
            stream(&small),
            RawStream {
                total: 4,
                head: b"out\n".to_vec(),
                tail: vec![]
            }
        );
    }

    #[test]
    fn container_keeps_only_records_of_the_slot_generation() {
        let mut slot = types::slot {
            r#gen: 3,
            first_fail_n: 11,
            setup_calls: 5,
            ..Default::default()
        };
        slot.counts[257] = 2;
        slot.errs[5] = types::err_entry {
            key: (257 << 12) | 2,
            count: 1,
        };
        for (i, r) in slot.first_fail.iter_mut().enumerate() {
            r.seq = i as u64 + 1;
            r.r#gen = if i == 1 { 2 } else { 3 };
            r.nr = 257;
            r.ret = -2;
        }
        slot.distinct_n = 2;
        slot.distinct_fail[0] = slot.first_fail[0];
        slot.distinct_fail[1] = slot.first_fail[1];
        let c = container(&slot, vec![]);
        assert_eq!(c.calls, vec![(257, 2)]);
        assert_eq!(c.errors, vec![(257, 2, 1)]);
        assert_eq!(c.setup_calls, 5);
        assert_eq!(c.first_failures.len(), FIRST_FAILURES - 1);
        assert_eq!(
            c.distinct_failures.len(),
            1,
            "generation 2's record is not this slot's"
        );
    }

    #[test]
    fn syscall_data_is_cut_at_its_length() {
        let mut r = types::sys_record {
            data_len: 11,
            comm: chars("cat"),
            ..Default::default()
        };
        r.data[..12].copy_from_slice(b"/nonexistent");
        let s = syscall(&r);
        assert_eq!(s.data, b"/nonexisten");
        assert_eq!(s.comm, "cat");
        r.data_len = 60000;
        assert_eq!(syscall(&r).data.len(), DATA_MAX);
    }
}
