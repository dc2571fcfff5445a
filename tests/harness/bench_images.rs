//! The benchmark image: a single-layer OCI image [`BENCH_IMAGE`] with busybox (as in
//! [`super::images`]), the host's `strace` with the shared libraries `ldd` lists and the dynamic
//! loader, util-linux `flock`, a NULL-dereferencing `segv` built with clang, and `/data/workload.tar`,
//! a generated tarball for the "realistic" workload.
//!
//! Built once into `target/coroner-test-images/bench-<version>-<hash of the inputs>/` (or under
//! `CORONER_TEST_IMAGE_CACHE`) and imported into `k8s.io` with `ctr images import` by
//! [`import_bench_image`]. Everything is deterministic: the layer tar is sorted, owned by 0, with
//! mtime 0, and the workload tarball's contents come from a fixed-seed generator, not the host.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::containerd::{Containerd, K8S_NAMESPACE};
use super::images::{
    build_cached, busybox_rootfs, cache_root, deterministic_tar, finish_layout, set_dir_modes,
    write_blob, write_image,
};

/// Reference of the benchmark image.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub const BENCH_IMAGE: &str = "localhost/coroner-test/bench:1";
/// Where the workload tarball sits inside the image.
#[allow(dead_code)]
pub const WORKLOAD_TAR: &str = "/data/workload.tar";
/// Where strace sits inside the image (its path on the host, too).
#[allow(dead_code)]
pub const STRACE: &str = "/usr/bin/strace";
/// Regular files in the workload tarball.
#[allow(dead_code)]
pub const WORKLOAD_FILES: usize = 2000;

/// Bump when the image contents or layout produced here change, to invalidate the cache.
const LAYOUT_VERSION: &str = "bench-v4";
const BUSYBOX_BINARY: &str = "/bin/busybox";
/// Directories of the workload tarball; files are spread evenly over them.
const WORKLOAD_DIRS: usize = 50;

/// The built image: its digests and the archive `ctr images import` takes.
#[derive(Debug)]
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct BenchImage {
    pub manifest_digest: String,
    pub config_digest: String,
    /// Bytes of `/data/workload.tar`.
    pub workload_tar_bytes: u64,
    /// Tar of the OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/*`).
    pub archive: PathBuf,
}

/// The benchmark image, built on first use in this process (or loaded from the `target/` cache).
#[allow(dead_code)]
pub fn bench_image() -> &'static BenchImage {
    static IMAGE: OnceLock<BenchImage> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let inputs = host_inputs();
        let mut h = Sha256::new();
        h.update(LAYOUT_VERSION.as_bytes());
        for (path, dest) in &inputs {
            let bytes = fs::read(path).unwrap_or_else(|e| {
                panic!(
                    "reading {}: {e}; install busybox-static and strace (scripts/install-deps.sh)",
                    path.display()
                )
            });
            h.update(dest.as_bytes());
            h.update([0]);
            h.update(Sha256::digest(&bytes));
        }
        h.update(SEGV_SOURCE.as_bytes());
        let key = format!("{LAYOUT_VERSION}-{}", &hex(&h.finalize())[..16]);
        let cache = cache_root().join(key);
        if let Some(image) = load(&cache) {
            return image;
        }
        build_into(&cache, &inputs);
        load(&cache).unwrap_or_else(|| {
            panic!(
                "bench image cache {} unreadable right after building it",
                cache.display()
            )
        })
    })
}

/// Imports [`BENCH_IMAGE`] into `k8s.io` of `cd` (unpacked) and waits until CRI knows it.
#[allow(dead_code)]
pub async fn import_bench_image(cd: &Containerd) {
    let socket = cd.socket().to_path_buf();
    tokio::task::spawn_blocking(move || {
        super::images::import_archive(&socket, K8S_NAMESPACE, &bench_image().archive)
    })
    .await
    .expect("importing the bench image");
    cd.cri()
        .await
        .wait_image(BENCH_IMAGE, Duration::from_secs(20))
        .await;
}

/// util-linux `flock(1)` (busybox has none): the lock-contention tests hold and try locks with it.
pub const FLOCK: &str = "/usr/bin/flock";

/// A program that dereferences NULL at its first instruction: a real SIGSEGV from the kernel
/// (a shell's `kill -SEGV $$` is a signal sent, not a fault).
#[allow(dead_code)]
pub const SEGV: &str = "/usr/local/bin/segv";

/// No libc: `_start` faults straight away, so the binary needs nothing but the kernel.
const SEGV_SOURCE: &str = "void _start(void) { *(volatile int *)0 = 1; for (;;) {} }\n";

/// Compiles [`SEGV_SOURCE`] into `dest` with clang (installed by scripts/install-deps.sh).
fn build_segv(dest: &Path) {
    let dir = dest.parent().expect("segv has a parent dir");
    fs::create_dir_all(dir).unwrap();
    let src = dir.join("segv.c");
    fs::write(&src, SEGV_SOURCE).unwrap();
    let out = Command::new("clang")
        .args(["-O1", "-static", "-nostdlib", "-fno-stack-protector", "-o"])
        .arg(dest)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("running clang (scripts/install-deps.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "clang {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    fs::remove_file(&src).unwrap();
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Host files copied into the image, with their path inside it: busybox, strace, flock, and
/// every library `ldd` lists for them (the dynamic loader included), at the path `ldd` shows.
fn host_inputs() -> Vec<(PathBuf, String)> {
    let mut inputs = vec![(PathBuf::from(BUSYBOX_BINARY), "/bin/busybox".to_string())];
    for binary in [STRACE, FLOCK] {
        inputs.push((PathBuf::from(binary), binary.to_string()));
        let out = Command::new("ldd").arg(binary).output().unwrap_or_else(|e| {
            panic!("running ldd {binary}: {e}; install strace and util-linux (scripts/install-deps.sh)")
        });
        assert!(
            out.status.success(),
            "ldd {binary} failed ({}): {}{}; install strace and util-linux (scripts/install-deps.sh)",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for lib in ldd_paths(&String::from_utf8_lossy(&out.stdout)) {
            inputs.push((PathBuf::from(&lib), lib));
        }
    }
    inputs.sort_by(|a, b| a.1.cmp(&b.1));
    inputs.dedup_by(|a, b| a.1 == b.1);
    inputs
}

/// Absolute paths in `ldd` output: `name => /path (0x..)` and the loader's `/path (0x..)`;
/// the vDSO (no path) is skipped.
fn ldd_paths(ldd: &str) -> Vec<String> {
    ldd.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}

fn load(dir: &Path) -> Option<BenchImage> {
    let meta: Value = serde_json::from_slice(&fs::read(dir.join("image.json")).ok()?).ok()?;
    let archive = dir.join("image.tar");
    if !archive.is_file() {
        return None;
    }
    Some(BenchImage {
        manifest_digest: meta.get("manifest_digest")?.as_str()?.to_string(),
        config_digest: meta.get("config_digest")?.as_str()?.to_string(),
        workload_tar_bytes: meta.get("workload_tar_bytes")?.as_u64()?,
        archive,
    })
}

/// Builds the layout in a scratch directory next to `dest` and renames it into place, so
/// concurrent binaries never see a half-written cache (the loser of the race discards its copy).
fn build_into(dest: &Path, inputs: &[(PathBuf, String)]) {
    build_cached(
        dest,
        "bench",
        |scratch, out| build_layout(scratch, out, inputs),
        |d| load(d).is_some(),
    );
}

fn build_layout(scratch: &Path, out: &Path, inputs: &[(PathBuf, String)]) {
    let rootfs = scratch.join("rootfs");
    build_rootfs(&rootfs, inputs);
    build_segv(&rootfs.join(SEGV.trim_start_matches('/')));
    let workload_src = scratch.join("workload");
    generate_workload_files(&workload_src);
    fs::create_dir_all(rootfs.join("data")).unwrap();
    let workload_tar = rootfs.join(WORKLOAD_TAR.trim_start_matches('/'));
    deterministic_tar(&workload_src, &workload_tar);
    fs::set_permissions(&workload_tar, fs::Permissions::from_mode(0o644)).unwrap();
    let workload_tar_bytes = fs::metadata(&workload_tar).unwrap().len();
    set_dir_modes(&rootfs);
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(rootfs.join("root"), fs::Permissions::from_mode(0o700)).unwrap();

    let layer_tar = scratch.join("layer.tar");
    deterministic_tar(&rootfs, &layer_tar);

    let layout = scratch.join("layout");
    let blobs = layout.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).expect("creating blobs dir");
    let layer = fs::read(&layer_tar).expect("reading layer.tar");
    let layer_digest = write_blob(&blobs, &layer);

    let (config_digest, manifest_digest, entry) = write_image(
        &blobs,
        (&layer_digest, layer.len()),
        BENCH_IMAGE,
        &["sh"],
        "coroner test harness: busybox-static, strace, flock, segv, workload tarball",
    );
    finish_layout(&layout, vec![entry], &out.join("image.tar"));
    let meta = json!({
        "manifest_digest": manifest_digest,
        "config_digest": config_digest,
        "layer_digest": layer_digest,
        "workload_tar_bytes": workload_tar_bytes,
    });
    fs::write(
        out.join("image.json"),
        serde_json::to_vec_pretty(&meta).unwrap(),
    )
    .expect("writing image.json");
}

/// The busybox root of [`super::images`] plus the host files of [`host_inputs`] and `/data`.
fn build_rootfs(rootfs: &Path, inputs: &[(PathBuf, String)]) {
    busybox_rootfs(rootfs);
    for (src, dest) in inputs.iter().filter(|(_, d)| d != "/bin/busybox") {
        let to = rootfs.join(dest.trim_start_matches('/'));
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        // fs::copy follows symlinks (/lib64/ld-linux-x86-64.so.2 is one on Debian).
        fs::copy(src, &to)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", src.display(), to.display()));
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::create_dir_all(rootfs.join("data")).unwrap();
}

/// [`WORKLOAD_FILES`] text files of 100 B to ~12 KiB (about 5 MB in all) in [`WORKLOAD_DIRS`]
/// directories two levels deep, from a fixed-seed generator: the same bytes on every host.
fn generate_workload_files(dir: &Path) {
    const WORDS: [&str; 16] = [
        "container",
        "kernel",
        "syscall",
        "cgroup",
        "signal",
        "exit",
        "memory",
        "socket",
        "path",
        "errno",
        "process",
        "thread",
        "record",
        "trace",
        "report",
        "node",
    ];
    let mut rng = SplitMix64(0x636f_726f_6e65_7221);
    for i in 0..WORKLOAD_FILES {
        let d = i % WORKLOAD_DIRS;
        let sub = dir
            .join(format!("pkg{:02}", d / 10))
            .join(format!("mod{:02}", d));
        fs::create_dir_all(&sub).unwrap();
        // Mostly small files with a tail of bigger ones, like a source tree.
        let r = rng.next();
        let size = 100
            + (r % 2500) as usize
            + if r % 8 == 0 {
                (r >> 32) as usize % 10_000
            } else {
                0
            };
        let mut text = String::with_capacity(size + 16);
        while text.len() < size {
            let w = rng.next();
            text.push_str(WORDS[(w % 16) as usize]);
            text.push(if w % 11 == 0 { '\n' } else { ' ' });
        }
        text.truncate(size);
        text.push('\n');
        let path = sub.join(format!("file{i:04}.txt"));
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    }
    set_dir_modes(dir);
}

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
