//! A crash's user stack in report terms ([`crate::model::CrashStack`]): addresses in hex, the
//! `si_code` by name, the fault's mapping, and each frame's build id and file offset. Names,
//! source lines and the files they come from are filled in later by [`crate::stacks`], which
//! reads the container's files; this file touches none.

use chrono::{DateTime, Utc};

use crate::bpf::raw::{RawFatalStack, RawFaultMapping, RawFrame};
use crate::model::{signal_name, CrashStack, FaultMapping, StackFrame};

/// `si_code` of a crash signal by name (asm-generic/siginfo.h), else its number.
pub fn si_code_name(sig: i32, code: i32) -> String {
    let name = match (sig, code) {
        (_, 0) => "SI_USER",
        (_, 0x80) => "SI_KERNEL",
        (_, -1) => "SI_QUEUE",
        (_, -6) => "SI_TKILL",
        (11, 1) => "SEGV_MAPERR",
        (11, 2) => "SEGV_ACCERR",
        (11, 3) => "SEGV_BNDERR",
        (11, 4) => "SEGV_PKUERR",
        (7, 1) => "BUS_ADRALN",
        (7, 2) => "BUS_ADRERR",
        (7, 3) => "BUS_OBJERR",
        (7, 4) => "BUS_MCEERR_AR",
        (7, 5) => "BUS_MCEERR_AO",
        (4, 1) => "ILL_ILLOPC",
        (4, 2) => "ILL_ILLOPN",
        (4, 3) => "ILL_ILLADR",
        (4, 4) => "ILL_ILLTRP",
        (4, 5) => "ILL_PRVOPC",
        (4, 6) => "ILL_PRVREG",
        (4, 7) => "ILL_COPROC",
        (4, 8) => "ILL_BADSTK",
        (8, 1) => "FPE_INTDIV",
        (8, 2) => "FPE_INTOVF",
        (8, 3) => "FPE_FLTDIV",
        (8, 4) => "FPE_FLTOVF",
        (8, 5) => "FPE_FLTUND",
        (8, 6) => "FPE_FLTRES",
        (8, 7) => "FPE_FLTINV",
        (8, 8) => "FPE_FLTSUB",
        _ => return code.to_string(),
    };
    name.to_string()
}

pub fn hex(v: u64) -> String {
    format!("{v:#x}")
}

pub fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stack as the kernel took it, nothing symbolized yet. The two walks (addresses, build-id
/// form) cover the same frames; a frame only one of them has keeps what it has.
pub fn crash_stack(raw: &RawFatalStack, wall: &dyn Fn(u64) -> DateTime<Utc>) -> CrashStack {
    let n = raw.ips.len().max(raw.frames.len());
    let frames = (0..n)
        .map(|i| {
            let ip = raw.ips.get(i).copied();
            let (build_id, file_offset, addr) = match raw.frames.get(i) {
                Some(RawFrame::BuildId {
                    build_id,
                    file_offset,
                }) => (Some(hex_bytes(build_id)), Some(hex(*file_offset)), None),
                Some(RawFrame::Address(a)) => (None, None, Some(*a)),
                None => (None, None, None),
            };
            StackFrame {
                address: hex(ip.or(addr).unwrap_or(0)),
                build_id,
                file_offset,
                object: None,
                function: None,
                function_offset: None,
                source_file: None,
                line: None,
            }
        })
        .collect();
    let fault_mapping = match &raw.fault_mapping {
        RawFaultMapping::Unknown => None,
        RawFaultMapping::Unmapped => Some(FaultMapping {
            mapped: false,
            start: None,
            end: None,
            permissions: None,
            file: None,
        }),
        RawFaultMapping::Mapped(v) => Some(FaultMapping {
            mapped: true,
            start: Some(hex(v.start)),
            end: Some(hex(v.end)),
            permissions: Some(format!(
                "{}{}{}",
                if v.readable { 'r' } else { '-' },
                if v.writable { 'w' } else { '-' },
                if v.executable { 'x' } else { '-' }
            )),
            file: (!v.file.is_empty()).then(|| v.file.clone()),
        }),
    };
    CrashStack {
        time: wall(raw.boot_ns),
        pid: raw.pid,
        tid: raw.tid,
        comm: raw.comm.clone(),
        signal: signal_name(raw.signal),
        code: si_code_name(raw.signal, raw.code),
        fault_address: raw.fault_addr.map(hex),
        fault_mapping,
        frames,
        symbolization_errors: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::raw::RawVma;

    #[test]
    fn null_dereference_reads_as_maperr_at_0x0_with_no_mapping() {
        let raw = RawFatalStack {
            boot_ns: 5,
            pid: 9,
            tid: 10,
            signal: 11,
            code: 1,
            comm: "crash".into(),
            fault_addr: Some(0),
            fault_mapping: RawFaultMapping::Unmapped,
            ips: vec![0x401136, 0x401150, 0x401170],
            frames: vec![
                RawFrame::BuildId {
                    build_id: vec![0xab, 0x01],
                    file_offset: 0x1136,
                },
                RawFrame::Address(0x401150),
            ],
        };
        let wall = |_| DateTime::from_timestamp(0, 0).unwrap();
        let s = crash_stack(&raw, &wall);
        assert_eq!(
            (s.signal.as_str(), s.code.as_str()),
            ("SIGSEGV", "SEGV_MAPERR")
        );
        assert_eq!(s.fault_address.as_deref(), Some("0x0"));
        assert!(!s.fault_mapping.as_ref().unwrap().mapped);
        assert_eq!(s.frames.len(), 3);
        assert_eq!(s.frames[0].address, "0x401136");
        assert_eq!(s.frames[0].build_id.as_deref(), Some("ab01"));
        assert_eq!(s.frames[0].file_offset.as_deref(), Some("0x1136"));
        assert_eq!(s.frames[1].build_id, None);
        assert_eq!(s.frames[2].address, "0x401170");
    }

    #[test]
    fn a_mapped_fault_names_its_file_and_permissions() {
        let raw = RawFatalStack {
            boot_ns: 0,
            pid: 1,
            tid: 1,
            signal: 11,
            code: 2,
            comm: "app".into(),
            fault_addr: Some(0x402000),
            fault_mapping: RawFaultMapping::Mapped(RawVma {
                start: 0x402000,
                end: 0x403000,
                file_offset: 0x2000,
                readable: true,
                writable: false,
                executable: false,
                file: "app".into(),
            }),
            ips: vec![],
            frames: vec![],
        };
        let s = crash_stack(&raw, &|_| DateTime::from_timestamp(0, 0).unwrap());
        let m = s.fault_mapping.unwrap();
        assert_eq!(s.code, "SEGV_ACCERR");
        assert_eq!(m.permissions.as_deref(), Some("r--"));
        assert_eq!(m.file.as_deref(), Some("app"));
        assert_eq!(si_code_name(6, -6), "SI_TKILL");
    }
}
