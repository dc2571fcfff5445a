//! Symbolizes a crash's user stack ([`CrashStack`], as [`crate::bpf::decode::crash_stack`] made
//! it from the kernel's record) against the container's own files: each frame's build id is
//! matched to a file of the container (the programs it executed, then the shared-library
//! directories), and that file's symbol table and DWARF line table (blazesym) give the function
//! and source line at the frame's file offset.
//!
//! The container's files are read through [`Root`] (`openat2(RESOLVE_IN_ROOT)`), in layers, top
//! first: the task's root filesystem while it is mounted, else the snapshot's upper directory and
//! the image's layers. blazesym gets `/proc/self/fd/N` of a file opened that way, so a hostile
//! image's symlink cannot make it read a node file. Every failure is a line in
//! `symbolization_errors`, never a panic: a stripped binary keeps its addresses and build id.
//!
//! Blocking (file reads); the agent runs it off the async workers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};

use crate::model::{CrashStack, ProcessEvent, ProcessEventKind};
use crate::rootfs::Root;

/// Files whose build id is read at most while looking for the libraries of a stack.
const MAX_SCANNED: usize = 4096;

/// Where shared libraries live, for frames whose file was not one the container executed.
const LIBRARY_DIRS: &[&str] = &[
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
];

/// The container's file tree as layers, top first (a file in an upper layer hides the same path
/// below; whiteouts are not followed).
pub struct Layers {
    roots: Vec<(PathBuf, Root)>,
}

impl Layers {
    /// Opens the directories that exist and are not empty (an unmounted rootfs is an empty
    /// directory).
    pub fn open(dirs: &[PathBuf]) -> Layers {
        let roots = dirs
            .iter()
            .filter_map(|d| {
                let root = Root::open(d, false).ok()?;
                (!root.is_empty()).then(|| (d.clone(), root))
            })
            .collect();
        Layers { roots }
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    fn open_file(&self, path: &str) -> Option<File> {
        self.roots.iter().find_map(|(_, r)| r.open_regular(path))
    }

    fn list(&self, dir: &str) -> BTreeSet<String> {
        self.roots.iter().flat_map(|(_, r)| r.list(dir)).collect()
    }
}

fn fd_path(f: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))
}

fn build_id_of(f: &File) -> Option<String> {
    let id = blazesym::helper::read_elf_build_id(&fd_path(f)).ok()??;
    Some(crate::bpf::decode::hex_bytes(&id))
}

/// Fills in `stack`'s frames: file, function, offset, source line; says in
/// `symbolization_errors` why a frame has none. `programs` are the container paths the
/// container executed, the crashing process's first (looked at before the library directories).
pub fn symbolize(stack: &mut CrashStack, programs: &[String], layers: &Layers) {
    let wanted: BTreeSet<String> = stack
        .frames
        .iter()
        .filter_map(|f| f.build_id.clone())
        .collect();
    let bare: Vec<&str> = stack
        .frames
        .iter()
        .filter(|f| f.build_id.is_none())
        .map(|f| f.address.as_str())
        .collect();
    if !bare.is_empty() {
        stack.symbolization_errors.push(format!(
            "{} (address only): no build id from the kernel: no file is mapped there (the \
             frame-pointer walk went past code built without frame pointers), the file has no \
             build id, or the process's memory map was busy",
            bare.join(", ")
        ));
    }
    if wanted.is_empty() {
        return;
    }
    if layers.is_empty() {
        stack.symbolization_errors.push(
            "the container's files were no longer readable (root filesystem unmounted, no \
             snapshot layers known): frames keep their build ids and offsets"
                .into(),
        );
        return;
    }
    let found = find_objects(&wanted, programs, layers);
    let symbolizer = Symbolizer::new();
    for id in &wanted {
        let Some((path, file)) = found.get(id) else {
            stack.symbolization_errors.push(format!(
                "build id {id}: no file with it among the programs the container ran and its library directories"
            ));
            continue;
        };
        let frames: Vec<usize> = (0..stack.frames.len())
            .filter(|&i| stack.frames[i].build_id.as_deref() == Some(id.as_str()))
            .collect();
        let offsets: Vec<u64> = frames
            .iter()
            .map(|&i| {
                let off = stack.frames[i].file_offset.as_deref().unwrap_or("0x0");
                let off = u64::from_str_radix(off.trim_start_matches("0x"), 16).unwrap_or(0);
                // Return addresses point after the call: look up the call itself.
                if i > 0 {
                    off.saturating_sub(1)
                } else {
                    off
                }
            })
            .collect();
        for &i in &frames {
            stack.frames[i].object = Some(path.clone());
        }
        let src = Source::Elf(Elf::new(fd_path(file)));
        let syms = match symbolizer.symbolize(&src, Input::FileOffset(&offsets)) {
            Ok(s) => s,
            Err(e) => {
                stack
                    .symbolization_errors
                    .push(format!("{path}: not symbolized: {e}"));
                continue;
            }
        };
        let mut reasons = BTreeSet::new();
        for (&i, sym) in frames.iter().zip(syms) {
            match sym {
                Symbolized::Sym(s) => {
                    let f = &mut stack.frames[i];
                    f.function = Some(s.name.to_string());
                    // The call's offset was looked up for a return address: count the byte back.
                    f.function_offset = Some(s.offset as u64 + u64::from(i > 0));
                    if let Some(ci) = s.code_info.as_deref() {
                        f.source_file = Some(ci.file.to_string_lossy().into_owned());
                        f.line = ci.line;
                    }
                }
                Symbolized::Unknown(reason) => {
                    reasons.insert(reason.to_string());
                }
            }
        }
        for r in reasons {
            stack
                .symbolization_errors
                .push(format!("{path} (build id {id}): {r}"));
        }
    }
}

/// The files the container executed, as absolute container paths: the crashing process's last
/// exec first (the crash is in it or its libraries), then the others, newest first. Relative
/// exec paths are taken from `cwd`.
pub fn programs(processes: &[ProcessEvent], crashed_pid: u32, cwd: Option<&str>) -> Vec<String> {
    let cwd = cwd.unwrap_or("/");
    let mut execs: Vec<(bool, String)> = processes
        .iter()
        .rev()
        .filter(|e| e.kind == ProcessEventKind::Exec)
        .filter_map(|e| {
            let f = e.filename.as_deref()?;
            Some((e.pid != crashed_pid, crate::rootfs::command::clean(cwd, f)))
        })
        .collect();
    execs.sort_by_key(|(other, _)| *other);
    let mut seen = BTreeSet::new();
    execs
        .into_iter()
        .filter_map(|(_, p)| seen.insert(p.clone()).then_some(p))
        .collect()
}

/// The container's files with the wanted build ids: the programs first, then the library
/// directories (at most [`MAX_SCANNED`] files read).
fn find_objects(
    wanted: &BTreeSet<String>,
    programs: &[String],
    layers: &Layers,
) -> BTreeMap<String, (String, File)> {
    let mut found = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut scanned = 0;
    let mut look = |path: String, found: &mut BTreeMap<String, (String, File)>| {
        if !seen.insert(path.clone()) || scanned >= MAX_SCANNED {
            return;
        }
        scanned += 1;
        let Some(f) = layers.open_file(&path) else {
            return;
        };
        if let Some(id) = build_id_of(&f) {
            if wanted.contains(&id) && !found.contains_key(&id) {
                found.insert(id, (path, f));
            }
        }
    };
    for p in programs.iter().filter(|p| p.starts_with('/')) {
        look(p.clone(), &mut found);
    }
    if found.len() < wanted.len() {
        'dirs: for dir in LIBRARY_DIRS {
            for name in layers.list(dir) {
                if !name.contains(".so") {
                    continue;
                }
                look(format!("{dir}/{name}"), &mut found);
                if found.len() == wanted.len() {
                    break 'dirs;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn exec(pid: u32, filename: &str) -> ProcessEvent {
        ProcessEvent {
            time: DateTime::from_timestamp(0, 0).unwrap(),
            kind: ProcessEventKind::Exec,
            pid,
            ppid: None,
            comm: String::new(),
            filename: Some(filename.into()),
            argv: vec![],
            exit_code: None,
            signal: None,
            core_dumped: None,
        }
    }

    #[test]
    fn the_crashing_process_program_is_looked_at_first() {
        let events = [
            exec(1, "/bin/sh"),
            exec(2, "./worker"),
            exec(1, "/usr/bin/env"),
        ];
        assert_eq!(
            programs(&events, 2, Some("/app")),
            vec!["/app/worker", "/usr/bin/env", "/bin/sh"]
        );
    }

    #[test]
    fn nothing_readable_says_so_and_keeps_the_frames() {
        let mut stack = crate::bpf::decode::crash_stack(
            &crate::bpf::raw::RawFatalStack {
                boot_ns: 0,
                pid: 1,
                tid: 1,
                signal: 6,
                code: -6,
                comm: "app".into(),
                fault_addr: None,
                fault_mapping: crate::bpf::raw::RawFaultMapping::Unknown,
                ips: vec![0x1000],
                frames: vec![crate::bpf::raw::RawFrame::BuildId {
                    build_id: vec![1; 20],
                    file_offset: 0x10,
                }],
            },
            &|_| DateTime::from_timestamp(0, 0).unwrap(),
        );
        symbolize(&mut stack, &[], &Layers::open(&[]));
        assert_eq!(stack.frames[0].function, None);
        assert_eq!(stack.frames[0].address, "0x1000");
        assert!(
            stack.symbolization_errors[0].contains("no longer readable"),
            "{:?}",
            stack.symbolization_errors
        );
    }

    #[test]
    fn a_build_id_no_file_has_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/libx.so.1"), b"not an elf").unwrap();
        let mut stack = crate::model::CrashStack {
            time: DateTime::from_timestamp(0, 0).unwrap(),
            pid: 1,
            tid: 1,
            comm: "app".into(),
            signal: "SIGSEGV".into(),
            code: "SEGV_MAPERR".into(),
            fault_address: None,
            fault_mapping: None,
            frames: vec![crate::model::StackFrame {
                address: "0x1".into(),
                build_id: Some("ab".into()),
                file_offset: Some("0x1".into()),
                object: None,
                function: None,
                function_offset: None,
                source_file: None,
                line: None,
            }],
            symbolization_errors: vec![],
        };
        symbolize(
            &mut stack,
            &["/app".into()],
            &Layers::open(&[dir.path().into()]),
        );
        assert_eq!(
            stack.symbolization_errors,
            vec!["build id ab: no file with it among the programs the container ran and its library directories"]
        );
    }
}
