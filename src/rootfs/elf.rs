//! A small ELF reader: what the kernel and the dynamic loader look at before a program runs.
//! The class, byte order, type and machine from the file header; the `PT_INTERP` loader from
//! the program headers; the `DT_NEEDED` libraries and the `DT_RUNPATH`/`DT_RPATH` search path
//! from the dynamic segment. Also the `#!` line of a script.
//!
//! Pure over a [`ReadAt`] source (a byte slice in tests, a file in the agent), so only the byte
//! ranges it needs are read: a 100 MB binary costs a few small reads. Every length and count
//! read from the file is bounded before it is used.

use std::io;
use std::os::unix::fs::FileExt;

/// The first bytes the kernel reads to pick a binary format (`BINPRM_BUF_SIZE`).
pub const PROBE_LEN: usize = 256;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

/// More program headers than any real binary has (the kernel refuses over 64 KiB of them).
const MAX_PHNUM: usize = 1024;
/// Dynamic entries read at most.
const MAX_DYNAMIC: usize = 4096;
/// Longest loader path, library name or run path kept (`PATH_MAX`).
const MAX_STR: usize = 4096;

/// Positioned reads: a file (`pread`) or bytes in memory.
pub trait ReadAt {
    /// Fills as much of `buf` as the source has from `offset`; returns how much.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

impl ReadAt for std::fs::File {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match FileExt::read_at(self, &mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("ELF class {0} is neither 32- nor 64-bit")]
    Class(u8),
    #[error("ELF byte order {0} is neither little- nor big-endian")]
    ByteOrder(u8),
    #[error("the file ends inside its {0}")]
    Truncated(&'static str),
    #[error("{count} program headers of {size} bytes: not a real binary's")]
    ProgramHeaders { count: usize, size: usize },
    #[error("reading the file: {0}")]
    Read(#[from] io::Error),
}

/// What the kernel and the loader need of an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf {
    pub is_64: bool,
    pub big_endian: bool,
    /// `e_type`: 2 an executable, 3 a shared object (PIE executables too).
    pub elf_type: u16,
    /// `e_machine`: 62 x86-64, 183 AArch64, ... ([`machine_name`]).
    pub machine: u16,
    /// The `PT_INTERP` loader, `None` for a static binary.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` libraries, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH`, else `DT_RPATH`, split at `:` (`$ORIGIN` left as written).
    pub run_path: Vec<String>,
    /// The dynamic segment could not be read whole (a truncated file): `needed` may be short.
    pub dynamic_incomplete: bool,
}

/// True when `probe` starts like an ELF file.
pub fn is_elf(probe: &[u8]) -> bool {
    probe.starts_with(b"\x7fELF")
}

struct Reader<'a, R: ReadAt + ?Sized> {
    src: &'a R,
    is_64: bool,
    big_endian: bool,
}

impl<R: ReadAt + ?Sized> Reader<'_, R> {
    fn bytes(&self, offset: u64, len: usize, what: &'static str) -> Result<Vec<u8>, ElfError> {
        let mut buf = vec![0; len];
        if self.src.read_at(offset, &mut buf)? < len {
            return Err(ElfError::Truncated(what));
        }
        Ok(buf)
    }

    fn uint(&self, b: &[u8], at: usize, width: usize) -> u64 {
        let mut v = 0u64;
        for i in 0..width {
            let byte = u64::from(b[at + i]);
            v |= if self.big_endian {
                byte << (8 * (width - 1 - i))
            } else {
                byte << (8 * i)
            };
        }
        v
    }

    /// A word of the class's size (`Elf64_Addr`/`Off`/`Xword` or their 32-bit forms).
    fn word(&self, b: &[u8], at: usize) -> u64 {
        self.uint(b, at, if self.is_64 { 8 } else { 4 })
    }
}

struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// Parses the headers, the loader path and the dynamic segment of an ELF file.
pub fn parse<R: ReadAt + ?Sized>(src: &R) -> Result<Elf, ElfError> {
    let mut ident = [0u8; 64];
    let n = src.read_at(0, &mut ident)?;
    if n < 16 || !is_elf(&ident) {
        return Err(ElfError::NotElf);
    }
    let is_64 = match ident[4] {
        1 => false,
        2 => true,
        c => return Err(ElfError::Class(c)),
    };
    let big_endian = match ident[5] {
        1 => false,
        2 => true,
        d => return Err(ElfError::ByteOrder(d)),
    };
    let r = Reader {
        src,
        is_64,
        big_endian,
    };
    let header_len = if is_64 { 64 } else { 52 };
    if n < header_len {
        return Err(ElfError::Truncated("file header"));
    }
    let h = &ident[..header_len];
    let elf_type = r.uint(h, 16, 2) as u16;
    let machine = r.uint(h, 18, 2) as u16;
    let (phoff, phentsize, phnum) = if is_64 {
        (r.uint(h, 32, 8), r.uint(h, 54, 2), r.uint(h, 56, 2))
    } else {
        (r.uint(h, 28, 4), r.uint(h, 42, 2), r.uint(h, 44, 2))
    };
    let (phentsize, phnum) = (phentsize as usize, phnum as usize);
    let min_entry = if is_64 { 56 } else { 32 };
    if phnum > MAX_PHNUM || (phnum > 0 && phentsize < min_entry) {
        return Err(ElfError::ProgramHeaders {
            count: phnum,
            size: phentsize,
        });
    }
    let table = r.bytes(phoff, phnum * phentsize, "program headers")?;
    let segments: Vec<Segment> = (0..phnum)
        .map(|i| {
            let p = &table[i * phentsize..(i + 1) * phentsize];
            if is_64 {
                Segment {
                    kind: r.uint(p, 0, 4) as u32,
                    offset: r.uint(p, 8, 8),
                    vaddr: r.uint(p, 16, 8),
                    filesz: r.uint(p, 32, 8),
                }
            } else {
                Segment {
                    kind: r.uint(p, 0, 4) as u32,
                    offset: r.uint(p, 4, 4),
                    vaddr: r.uint(p, 8, 4),
                    filesz: r.uint(p, 16, 4),
                }
            }
        })
        .collect();

    let interpreter = match segments.iter().find(|s| s.kind == PT_INTERP) {
        Some(s) => {
            let len = (s.filesz as usize).min(MAX_STR);
            Some(c_string(&r.bytes(s.offset, len, "loader path")?))
        }
        None => None,
    };
    let mut elf = Elf {
        is_64,
        big_endian,
        elf_type,
        machine,
        interpreter,
        needed: Vec::new(),
        run_path: Vec::new(),
        dynamic_incomplete: false,
    };
    if let Some(dynamic) = segments.iter().find(|s| s.kind == PT_DYNAMIC) {
        if read_dynamic(&r, &segments, dynamic, &mut elf).is_err() {
            elf.dynamic_incomplete = true;
        }
    }
    Ok(elf)
}

/// `DT_NEEDED` and the run path: names are offsets into the string table, whose address is a
/// virtual one, mapped back to the file through the `PT_LOAD` segment that holds it.
fn read_dynamic<R: ReadAt + ?Sized>(
    r: &Reader<'_, R>,
    segments: &[Segment],
    dynamic: &Segment,
    elf: &mut Elf,
) -> Result<(), ElfError> {
    let entry = if r.is_64 { 16 } else { 8 };
    let count = (dynamic.filesz as usize / entry).min(MAX_DYNAMIC);
    let table = r.bytes(dynamic.offset, count * entry, "dynamic segment")?;
    let (mut needed, mut runpath, mut rpath) = (Vec::new(), None, None);
    let (mut strtab, mut strsz) = (None, None);
    for i in 0..count {
        let tag = r.word(&table, i * entry);
        let val = r.word(&table, i * entry + entry / 2);
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed.push(val),
            DT_STRTAB => strtab = Some(val),
            DT_STRSZ => strsz = Some(val),
            DT_RUNPATH => runpath = Some(val),
            DT_RPATH => rpath = Some(val),
            _ => {}
        }
    }
    let Some(strtab) = strtab else {
        return Err(ElfError::Truncated("dynamic segment"));
    };
    let file_offset = segments
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .find(|s| strtab >= s.vaddr && strtab - s.vaddr < s.filesz)
        .map(|s| strtab - s.vaddr + s.offset)
        // Some linkers leave DT_STRTAB as a file offset in objects loaded at 0.
        .unwrap_or(strtab);
    let strsz = strsz.unwrap_or(MAX_STR as u64);
    let string = |off: u64| -> Result<String, ElfError> {
        if off >= strsz {
            return Err(ElfError::Truncated("string table"));
        }
        let len = ((strsz - off) as usize).min(MAX_STR);
        let mut buf = vec![0; len];
        let n = r.src.read_at(file_offset + off, &mut buf)?;
        buf.truncate(n);
        if !buf.contains(&0) && n < len {
            return Err(ElfError::Truncated("string table"));
        }
        Ok(c_string(&buf))
    };
    for off in needed {
        elf.needed.push(string(off)?);
    }
    if let Some(off) = runpath.or(rpath) {
        elf.run_path = string(off)?
            .split(':')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
    }
    Ok(())
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The `#!` line of a script: the interpreter and its one optional argument, as the kernel
/// splits them (`binfmt_script`: blanks around, the rest of the line is one argument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shebang {
    pub interpreter: String,
    pub arg: Option<String>,
}

/// The `#!` line of `probe` (the file's first [`PROBE_LEN`] bytes), or `None` when there is
/// none or it names no interpreter.
pub fn shebang(probe: &[u8]) -> Option<Shebang> {
    let rest = probe.strip_prefix(b"#!")?;
    let line = rest.split(|&c| c == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r' || c == '\0');
    if line.is_empty() {
        return None;
    }
    let (interpreter, arg) = match line.split_once([' ', '\t']) {
        Some((i, a)) => {
            let a = a.trim_matches(|c| c == ' ' || c == '\t');
            (i, (!a.is_empty()).then(|| a.to_string()))
        }
        None => (line, None),
    };
    Some(Shebang {
        interpreter: interpreter.to_string(),
        arg,
    })
}

/// The usual name of an `e_machine` value (`uname -m` style).
pub fn machine_name(machine: u16) -> String {
    match machine {
        3 => "i386",
        8 => "mips",
        20 => "ppc",
        21 => "ppc64",
        22 => "s390x",
        40 => "arm",
        62 => "x86_64",
        183 => "aarch64",
        243 => "riscv64",
        258 => "loongarch64",
        n => return format!("machine {n}"),
    }
    .to_string()
}

/// The `e_machine` of the machine this agent was built for.
pub fn host_machine() -> Option<u16> {
    Some(match std::env::consts::ARCH {
        "x86" => 3,
        "x86_64" => 62,
        "aarch64" => 183,
        "arm" => 40,
        "riscv64" => 243,
        "s390x" => 22,
        "powerpc64" => 21,
        "loongarch64" => 258,
        _ => return None,
    })
}

/// Whether the kernel of `host` can run a `machine` binary: the same machine, or a 32-bit x86
/// one on x86-64 (IA-32 emulation, on in every distribution kernel).
pub fn runs_on(machine: u16, host: u16) -> bool {
    machine == host || (host == 62 && machine == 3)
}

/// The multiarch directory name of a machine (`/lib/<triplet>` on Debian and Ubuntu).
pub fn multiarch_triplet(machine: u16, is_64: bool) -> Option<&'static str> {
    Some(match (machine, is_64) {
        (62, true) => "x86_64-linux-gnu",
        (3, false) => "i386-linux-gnu",
        (183, true) => "aarch64-linux-gnu",
        (40, false) => "arm-linux-gnueabihf",
        (243, true) => "riscv64-linux-gnu",
        (22, true) => "s390x-linux-gnu",
        (21, true) => "powerpc64le-linux-gnu",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/elf")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    #[test]
    fn glibc_true_names_its_loader_and_libc() {
        let elf = parse(fixture("debian-true-x86_64")[..].as_ref()).unwrap();
        assert!(elf.is_64 && !elf.big_endian);
        assert_eq!(elf.elf_type, 3, "a PIE executable is ET_DYN");
        assert_eq!(machine_name(elf.machine), "x86_64");
        assert_eq!(
            elf.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert_eq!(elf.needed, ["libc.so.6"]);
        assert!(elf.run_path.is_empty());
        assert!(!elf.dynamic_incomplete);
    }

    #[test]
    fn musl_binary_names_the_musl_loader() {
        let elf = parse(fixture("musl-hello-x86_64")[..].as_ref()).unwrap();
        assert_eq!(elf.interpreter.as_deref(), Some("/lib/ld-musl-x86_64.so.1"));
        assert_eq!(elf.needed, ["libc.so"]);
    }

    #[test]
    fn run_path_and_several_libraries_are_read() {
        let elf = parse(fixture("gcc-libm-runpath-x86_64")[..].as_ref()).unwrap();
        assert_eq!(elf.needed, ["libm.so.6", "libc.so.6"]);
        assert_eq!(elf.run_path, ["$ORIGIN/../lib", "/opt/app/lib"]);
    }

    #[test]
    fn static_busybox_has_no_loader_and_no_libraries() {
        // Only the first 4 KiB of Debian's busybox-static: its headers.
        let elf = parse(fixture("busybox-static-x86_64.head")[..].as_ref()).unwrap();
        assert_eq!(elf.elf_type, 2);
        assert_eq!(elf.interpreter, None);
        assert!(elf.needed.is_empty());
    }

    #[test]
    fn aarch64_binary_is_not_runnable_on_x86_64() {
        let elf = parse(fixture("aarch64-true.head")[..].as_ref()).unwrap();
        assert_eq!(machine_name(elf.machine), "aarch64");
        assert_eq!(
            elf.interpreter.as_deref(),
            Some("/lib/ld-linux-aarch64.so.1")
        );
        assert!(!runs_on(elf.machine, 62));
        assert!(runs_on(3, 62), "i386 binaries run on x86-64");
        // The head stops before the dynamic segment: what is missing is said, not guessed.
        assert!(elf.dynamic_incomplete);
        assert!(elf.needed.is_empty());
    }

    #[test]
    fn truncated_or_foreign_files_are_errors_not_panics() {
        let true_bytes = fixture("debian-true-x86_64");
        assert!(matches!(parse(&b"#!/bin/sh\n"[..]), Err(ElfError::NotElf)));
        assert!(matches!(
            parse(&true_bytes[..20]),
            Err(ElfError::Truncated(_))
        ));
        assert!(matches!(
            parse(&true_bytes[..100]),
            Err(ElfError::Truncated("program headers"))
        ));
        let mut bad = true_bytes[..64].to_vec();
        bad[4] = 9;
        assert!(matches!(parse(&bad[..]), Err(ElfError::Class(9))));
        // A header claiming 60000 program headers.
        let mut huge = true_bytes.clone();
        huge[56] = 0x60;
        huge[57] = 0xea;
        assert!(matches!(
            parse(&huge[..]),
            Err(ElfError::ProgramHeaders { .. })
        ));
        // Every prefix parses or fails cleanly.
        for len in (0..true_bytes.len()).step_by(97) {
            let _ = parse(&true_bytes[..len]);
        }
    }

    #[test]
    fn shebang_lines_are_split_like_the_kernel_does() {
        assert_eq!(
            shebang(b"#!/usr/bin/python3\nimport sys\n"),
            Some(Shebang {
                interpreter: "/usr/bin/python3".into(),
                arg: None
            })
        );
        assert_eq!(
            shebang(b"#! /usr/bin/env  python3 -u \n"),
            Some(Shebang {
                interpreter: "/usr/bin/env".into(),
                arg: Some("python3 -u".into())
            })
        );
        assert_eq!(
            shebang(b"#!/bin/sh\r\n"),
            Some(Shebang {
                interpreter: "/bin/sh".into(),
                arg: None
            })
        );
        assert_eq!(shebang(b"#!\n"), None);
        assert_eq!(shebang(b"\x7fELF"), None);
    }
}
