//! Compiles the eBPF programs in `src/bpf/` with clang and generates their libbpf-rs skeletons
//! into `OUT_DIR` (`coroner.skel.rs`, `minimal.skel.rs`), which `src/bpf/loader.rs` includes.
//! It also hashes the recorder's sources into `CORONER_BPF_SOURCE_HASH`: the part of the pinned
//! maps' layout version (`loader::layout_version`) that the code decides.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use libbpf_cargo::SkeletonBuilder;

/// The BPF sources and the headers they include (rebuild when any changes).
const PROGRAMS: &[&str] = &["coroner", "minimal"];
const HEADERS: &[&str] = &["src/bpf/coroner.h", "src/bpf/vmlinux.h"];

fn main() {
    let clang = find_clang().unwrap_or_else(|| {
        panic!(
            "clang not found in PATH (or $CLANG): it compiles coroner's eBPF programs (src/bpf/*.bpf.c). \
             Install it (Debian: `apt-get install clang`, or run scripts/install-deps.sh)."
        )
    });
    let out_dir =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"));

    for header in HEADERS {
        println!("cargo:rerun-if-changed={header}");
    }
    let mut hash = FNV_OFFSET;
    for file in ["src/bpf/coroner.bpf.c"].iter().chain(HEADERS) {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("reading {file}: {e}"));
        hash = fnv1a(hash, &bytes);
    }
    println!("cargo:rustc-env=CORONER_BPF_SOURCE_HASH={hash:016x}");
    println!("cargo:rerun-if-env-changed=CLANG");
    for name in PROGRAMS {
        let src = format!("src/bpf/{name}.bpf.c");
        println!("cargo:rerun-if-changed={src}");
        let skel = out_dir.join(format!("{name}.skel.rs"));
        if let Err(err) = SkeletonBuilder::new()
            .source(&src)
            .clang(&clang)
            // v3: 32-bit jumps and atomics that return a value (fetch-add, compare-and-swap).
            .clang_args([OsString::from("-mcpu=v3"), OsString::from("-Wall")])
            // Leave the generated file unformatted: where rustup lacks the rustfmt component its
            // proxy fails, and libbpf-cargo skips formatting only when no binary is found.
            .rustfmt(out_dir.join("no-rustfmt"))
            .build_and_generate(&skel)
        {
            panic!(
                "building the eBPF skeleton for {src} with {}: {err:#}",
                clang.display()
            );
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits: stable across Rust versions (unlike `DefaultHasher`), no dependency.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// `$CLANG` if set, else the first `clang` on `PATH`.
fn find_clang() -> Option<PathBuf> {
    if let Some(clang) = env::var_os("CLANG") {
        return Some(PathBuf::from(clang));
    }
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join("clang"))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
