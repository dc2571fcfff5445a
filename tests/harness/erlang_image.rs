//! The Erlang image [`ERLANG_IMAGE`]: a Debian bookworm root filesystem built by `mmdebstrap`
//! (`--variant=essential`, `--include=erlang-base,strace`) plus the host's busybox-static at
//! [`BUSYBOX`], the realistic workload of `benches/recorder_overhead.rs` (an Erlang/BEAM VM,
//! the kind of gateway coroner was started for). busybox is there for the bench's timing
//! shell: Debian's `dash` has no `$EPOCHREALTIME`. It is not linked as applets, so `erl` and
//! everything it runs are Debian's own tools; `busybox sh` still finds its applets first.
//!
//! Building needs root, `mmdebstrap` (scripts/install-deps.sh) and a Debian mirror
//! (`CORONER_DEBIAN_MIRROR`, default `http://deb.debian.org/debian`), and takes about a minute,
//! so it happens once: into `target/coroner-test-images/erlang-<version>-<hash>/` (the cache
//! root of [`super::images`]), keyed by the mmdebstrap invocation, the mmdebstrap version and
//! busybox. The key cannot hold the package versions, which are only known once apt has
//! resolved them: they are recorded in the cache (`packages.txt`, and [`ErlangImage::versions`])
//! and a mirror that has moved on does not rebuild the image; delete the directory for that.
//! The layer goes through the same deterministic tar and OCI layout writers as the other test
//! images (`SOURCE_DATE_EPOCH=0`, owner 0, mtime 0), so the same mirror state gives the same
//! digest; owner 0 also drops Debian's few non-root groups (`shadow`), which the VM never needs.
//! Nothing here is used by `cargo test`: only the full bench builds it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::containerd::{Containerd, K8S_NAMESPACE};
use super::images::{
    build_cached, cache_root, deterministic_tar, finish_layout, hex_sha256, write_blob, write_image,
};

/// Reference of the Erlang image.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub const ERLANG_IMAGE: &str = "localhost/coroner-test/erlang:1";
/// busybox-static inside the image (`/bin` is a symlink to `usr/bin` there): run scripts with
/// `[BUSYBOX, "sh", "-c", ...]`.
#[allow(dead_code)]
pub const BUSYBOX: &str = "/usr/bin/busybox";
/// Debian's strace inside the image.
#[allow(dead_code)]
pub const STRACE: &str = "/usr/bin/strace";

/// Bump when the image contents or layout produced here change, to invalidate the cache.
const LAYOUT_VERSION: &str = "erlang-v1";
const SUITE: &str = "bookworm";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
const HOST_BUSYBOX: &str = "/bin/busybox";
/// Packages whose versions the bench prints.
const VERSIONS_OF: [&str; 3] = ["erlang-base", "libc6", "strace"];

/// The built image: its digests, the archive `ctr images import` takes, and what it holds.
#[derive(Debug)]
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct ErlangImage {
    pub manifest_digest: String,
    pub config_digest: String,
    /// Bytes of the (uncompressed) layer.
    pub layer_bytes: u64,
    /// `package version` of [`VERSIONS_OF`], as installed.
    pub versions: Vec<String>,
    /// The cache directory; `packages.txt` there lists every installed package.
    pub dir: PathBuf,
    /// Tar of the OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/*`).
    pub archive: PathBuf,
    /// How long this process spent building it (`None`: loaded from the cache).
    pub built_in: Option<Duration>,
}

/// The mmdebstrap arguments before the target directory, and the mirror after it.
fn mmdebstrap_args() -> (Vec<String>, String) {
    let mirror =
        std::env::var("CORONER_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.to_string());
    let args = [
        "--variant=essential",
        "--include=erlang-base,strace",
        // Merged /usr by directory symlinks, as debootstrap does, instead of the usrmerge
        // package (which would pull in perl: 45 MB the VM never touches).
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        // Copied from the host for debootstrap compatibility; the runtime provides its own.
        "--customize-hook=rm -f \"$1/etc/resolv.conf\" \"$1/etc/hostname\"",
        SUITE,
    ]
    .map(String::from)
    .to_vec();
    (args, mirror)
}

/// The Erlang image, built on first use in this process (or loaded from the `target/` cache).
/// Slow the first time (about a minute): call it from a blocking context.
#[allow(dead_code)]
pub fn erlang_image() -> &'static ErlangImage {
    static IMAGE: OnceLock<ErlangImage> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let (args, mirror) = mmdebstrap_args();
        let version = Command::new("mmdebstrap")
            .arg("--version")
            .output()
            .unwrap_or_else(|e| {
                panic!("running mmdebstrap --version: {e}; install mmdebstrap (scripts/install-deps.sh)")
            });
        let busybox = fs::read(HOST_BUSYBOX).unwrap_or_else(|e| {
            panic!("reading {HOST_BUSYBOX}: {e}; install busybox-static (scripts/install-deps.sh)")
        });
        let mut key = Vec::new();
        for part in [LAYOUT_VERSION.as_bytes(), &version.stdout, mirror.as_bytes()]
            .into_iter()
            .chain(args.iter().map(String::as_bytes))
            .chain([busybox.as_slice()])
        {
            key.extend_from_slice(part);
            key.push(0);
        }
        let dir = cache_root().join(format!(
            "{LAYOUT_VERSION}-{}",
            &hex_sha256(&key)[..16]
        ));
        if let Some(image) = load(&dir, None) {
            return image;
        }
        let t0 = Instant::now();
        build_into(&dir, &args, &mirror);
        load(&dir, Some(t0.elapsed())).unwrap_or_else(|| {
            panic!(
                "Erlang image cache {} unreadable right after building it",
                dir.display()
            )
        })
    })
}

/// Imports [`ERLANG_IMAGE`] into `k8s.io` of `cd` (unpacked) and waits until CRI knows it.
/// Builds the image first if needed (see [`erlang_image`]).
#[allow(dead_code)]
pub async fn import_erlang_image(cd: &Containerd) {
    let socket = cd.socket().to_path_buf();
    tokio::task::spawn_blocking(move || {
        super::images::import_archive(&socket, K8S_NAMESPACE, &erlang_image().archive)
    })
    .await
    .expect("importing the Erlang image");
    cd.cri()
        .await
        .wait_image(ERLANG_IMAGE, Duration::from_secs(60))
        .await;
}

fn load(dir: &Path, built_in: Option<Duration>) -> Option<ErlangImage> {
    let meta: Value = serde_json::from_slice(&fs::read(dir.join("image.json")).ok()?).ok()?;
    let archive = dir.join("image.tar");
    if !archive.is_file() {
        return None;
    }
    Some(ErlangImage {
        manifest_digest: meta.get("manifest_digest")?.as_str()?.to_string(),
        config_digest: meta.get("config_digest")?.as_str()?.to_string(),
        layer_bytes: meta.get("layer_bytes")?.as_u64()?,
        versions: meta
            .get("versions")?
            .as_array()?
            .iter()
            .filter_map(|v| Some(v.as_str()?.to_string()))
            .collect(),
        dir: dir.to_path_buf(),
        archive,
        built_in,
    })
}

/// Runs mmdebstrap and finishes the layout in a cache entry (see `images::build_cached`).
fn build_into(dest: &Path, args: &[String], mirror: &str) {
    build_cached(
        dest,
        "erlang",
        |scratch, out| build_layout(scratch, out, args, mirror),
        |d| load(d, None).is_some(),
    );
}

fn build_layout(scratch: &Path, out: &Path, args: &[String], mirror: &str) {
    let rootfs = scratch.join("rootfs");
    let run = Command::new("mmdebstrap")
        .args(args)
        .arg(&rootfs)
        .arg(mirror)
        .env("SOURCE_DATE_EPOCH", "0")
        .output()
        .unwrap_or_else(|e| {
            panic!("running mmdebstrap: {e}; install mmdebstrap (scripts/install-deps.sh)")
        });
    assert!(
        run.status.success(),
        "mmdebstrap {} {} {mirror} failed ({}); it needs root and the mirror:\n{}",
        args.join(" "),
        rootfs.display(),
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    remove_dev_nodes(&rootfs);
    let busybox = rootfs.join(BUSYBOX.trim_start_matches('/'));
    fs::copy(HOST_BUSYBOX, &busybox)
        .unwrap_or_else(|e| panic!("copying {HOST_BUSYBOX} to {}: {e}", busybox.display()));
    fs::set_permissions(&busybox, fs::Permissions::from_mode(0o755)).unwrap();

    let packages = dpkg_list(&rootfs);
    let versions: Vec<String> = VERSIONS_OF
        .iter()
        .map(|name| {
            packages
                .lines()
                .find(|l| {
                    l.split(' ')
                        .next()
                        .is_some_and(|p| p.split(':').next() == Some(*name))
                })
                .unwrap_or_else(|| panic!("{name} is not installed in {}", rootfs.display()))
                .to_string()
        })
        .collect();

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
        ERLANG_IMAGE,
        &[BUSYBOX, "sh"],
        &format!(
            "coroner test harness: mmdebstrap {} <dir> {mirror}; busybox-static at {BUSYBOX}",
            args.join(" ")
        ),
    );
    finish_layout(&layout, vec![entry], &out.join("image.tar"));
    fs::write(out.join("packages.txt"), &packages).expect("writing packages.txt");
    let meta = json!({
        "manifest_digest": manifest_digest,
        "config_digest": config_digest,
        "layer_digest": layer_digest,
        "layer_bytes": layer.len(),
        "versions": versions,
        "mmdebstrap": args,
        "mirror": mirror,
    });
    fs::write(
        out.join("image.json"),
        serde_json::to_vec_pretty(&meta).unwrap(),
    )
    .expect("writing image.json");
}

/// The runtime mounts its own /dev: no device nodes in the layer, as in the other images.
pub(super) fn remove_dev_nodes(rootfs: &Path) {
    let dev = rootfs.join("dev");
    for entry in fs::read_dir(&dev)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dev.display()))
        .flatten()
    {
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.unwrap_or_else(|e| panic!("removing {}: {e}", path.display()));
    }
}

/// `package version` lines of everything installed in `rootfs`, sorted.
pub(super) fn dpkg_list(rootfs: &Path) -> String {
    let out = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            rootfs.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${Package}:${Architecture} ${Version}\\n"])
        .output()
        .unwrap_or_else(|e| panic!("running dpkg-query: {e}"));
    assert!(
        out.status.success(),
        "dpkg-query on {} failed ({}): {}",
        rootfs.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("dpkg-query prints UTF-8")
        .lines()
        .collect();
    lines.sort_unstable();
    lines.join("\n") + "\n"
}
