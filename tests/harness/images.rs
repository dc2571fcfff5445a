//! Registry-free test images: a single-layer OCI image layout built from the host's
//! `busybox-static`, cached under `target/`, and imported into a private containerd with `ctr`.
//!
//! Two images share the one layer: [`BUSYBOX_IMAGE`] (`Cmd ["sh"]`, what tests run) and
//! [`PAUSE_IMAGE`] (`Cmd ["sleep", "2147483647"]`, the CRI sandbox image). The layer tar is
//! deterministic (sorted, owner 0, mtime 0), so digests only change when busybox or this file does.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Reference tests run containers from.
pub const BUSYBOX_IMAGE: &str = "localhost/coroner-test/busybox:1";
/// Reference configured as the CRI `sandbox_image`; its command blocks forever.
pub const PAUSE_IMAGE: &str = "localhost/coroner-test/pause:1";

/// Bump when the image contents or layout produced here change, to invalidate the cache.
const LAYOUT_VERSION: &str = "v1";
const BUSYBOX_BINARY: &str = "/bin/busybox";

/// One image of the layout, with the digests containerd will report for it.
#[derive(Debug, Clone)]
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct TestImage {
    pub name: &'static str,
    /// Digest of the image manifest: the image's target in containerd, the report's `image_digest`.
    pub manifest_digest: String,
    /// Digest of the image config: the image id CRI reports (`image_ref` / `crictl images`).
    pub config_digest: String,
}

/// The built layout: both images and the archive `ctr images import` takes.
#[derive(Debug)]
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct TestImages {
    pub busybox: TestImage,
    pub pause: TestImage,
    pub layer_digest: String,
    /// Tar of the OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/*`).
    pub archive: PathBuf,
}

/// The test images, built on first use in this process (or loaded from the `target/` cache).
pub fn test_images() -> &'static TestImages {
    static IMAGES: OnceLock<TestImages> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let busybox = fs::read(BUSYBOX_BINARY).unwrap_or_else(|e| {
            panic!(
                "reading {BUSYBOX_BINARY}: {e}; install busybox-static (scripts/install-deps.sh)"
            )
        });
        let key = format!("{LAYOUT_VERSION}-{}", &hex_sha256(&busybox)[..16]);
        let cache = cache_root().join(key);
        if let Some(images) = load(&cache) {
            return images;
        }
        build_into(&cache);
        load(&cache).unwrap_or_else(|| {
            panic!(
                "image cache {} unreadable right after building it",
                cache.display()
            )
        })
    })
}

/// Imports the test images into `namespace` of the containerd listening on `socket` (unpacked for
/// the default snapshotter, so CRI and `ctr run` can use them at once).
pub fn import(socket: &Path, namespace: &str) {
    import_archive(socket, namespace, &test_images().archive);
}

/// `ctr images import` of an OCI layout archive into `namespace` of the containerd on `socket`;
/// panics with ctr's error.
pub fn import_archive(socket: &Path, namespace: &str, archive: &Path) {
    let out = Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args(["--namespace", namespace, "images", "import"])
        .arg(archive)
        .output()
        .unwrap_or_else(|e| {
            panic!("running ctr (is containerd installed? scripts/install-deps.sh): {e}")
        });
    assert!(
        out.status.success(),
        "ctr images import {} into {namespace} failed ({}): {}",
        archive.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes one image's config and manifest into `blobs` for a single-layer image; returns the
/// config digest, the manifest digest and the image's `index.json` entry (named `name`).
pub(super) fn write_image(
    blobs: &Path,
    (layer_digest, layer_size): (&str, usize),
    name: &str,
    cmd: &[&str],
    created_by: &str,
) -> (String, String, Value) {
    let arch = oci_arch();
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": cmd,
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        "history": [{ "created": "1970-01-01T00:00:00Z", "created_by": created_by }],
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = write_blob(blobs, &config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_bytes.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = write_blob(blobs, &manifest_bytes);
    let entry = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest,
        "size": manifest_bytes.len(),
        "platform": { "architecture": arch, "os": "linux" },
        "annotations": {
            "io.containerd.image.name": name,
            "org.opencontainers.image.ref.name": "1",
        },
    });
    (config_digest, manifest_digest, entry)
}

/// Writes `index.json` and `oci-layout` into `layout` and tars it into `archive`.
pub(super) fn finish_layout(layout: &Path, manifests: Vec<Value>, archive: &Path) {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .expect("writing index.json");
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("writing oci-layout");
    deterministic_tar(layout, archive);
}

/// `target/coroner-test-images`, found from the running test or bench executable
/// (`target/<profile>/deps/<exe>`) or example (`target/<profile>/examples/<exe>`, the demo),
/// overridable with `CORONER_TEST_IMAGE_CACHE`.
pub(super) fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CORONER_TEST_IMAGE_CACHE") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n == "deps" || n == "examples")
        })
        .and_then(|deps| deps.parent()?.parent())
        .map(|target| target.join("coroner-test-images"))
        .unwrap_or_else(|| std::env::temp_dir().join("coroner-image-cache"))
}

fn load(dir: &Path) -> Option<TestImages> {
    let meta: Value = serde_json::from_slice(&fs::read(dir.join("images.json")).ok()?).ok()?;
    let archive = dir.join("image.tar");
    if !archive.is_file() {
        return None;
    }
    let image = |name: &'static str| -> Option<TestImage> {
        let m = meta.get(name)?;
        Some(TestImage {
            name,
            manifest_digest: m.get("manifest_digest")?.as_str()?.to_string(),
            config_digest: m.get("config_digest")?.as_str()?.to_string(),
        })
    };
    Some(TestImages {
        busybox: image(BUSYBOX_IMAGE)?,
        pause: image(PAUSE_IMAGE)?,
        layer_digest: meta.get("layer_digest")?.as_str()?.to_string(),
        archive,
    })
}

/// Builds a cache entry: `build(scratch, out)` works in a scratch directory next to `dest` and
/// fills `out`, which is then renamed to `dest`, so concurrent test binaries never see a
/// half-written cache. The loser of a race discards its copy, as long as `loaded(dest)` says the
/// winner's is whole.
pub(super) fn build_cached(
    dest: &Path,
    what: &str,
    build: impl FnOnce(&Path, &Path),
    loaded: impl Fn(&Path) -> bool,
) {
    let parent = dest.parent().expect("cache dir has a parent");
    fs::create_dir_all(parent).unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
    let scratch = tempfile::Builder::new()
        .prefix(&format!(".building-{what}-"))
        .tempdir_in(parent)
        .unwrap_or_else(|e| panic!("creating a scratch dir in {}: {e}", parent.display()));
    let out = scratch.path().join("out");
    fs::create_dir(&out).expect("creating out dir");
    build(scratch.path(), &out);
    if fs::rename(&out, dest).is_err() && !loaded(dest) {
        panic!(
            "could not move the built {what} image to {}",
            dest.display()
        );
    }
}

/// The busybox and pause images: one layer, two configs.
fn build_into(dest: &Path) {
    build_cached(dest, "busybox", build_layout, |d| load(d).is_some());
}

fn build_layout(scratch: &Path, out: &Path) {
    let rootfs = scratch.join("rootfs");
    busybox_rootfs(&rootfs);
    let layer_tar = scratch.join("layer.tar");
    deterministic_tar(&rootfs, &layer_tar);

    let layout = scratch.join("layout");
    let blobs = layout.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).expect("creating blobs dir");
    let layer = fs::read(&layer_tar).expect("reading layer.tar");
    let layer_digest = write_blob(&blobs, &layer);

    let mut manifests = Vec::new();
    let mut meta = serde_json::Map::new();
    for (name, cmd) in [
        (BUSYBOX_IMAGE, vec!["sh"]),
        (PAUSE_IMAGE, vec!["sleep", "2147483647"]),
    ] {
        let (config_digest, manifest_digest, entry) = write_image(
            &blobs,
            (&layer_digest, layer.len()),
            name,
            &cmd,
            "coroner test harness: busybox-static",
        );
        manifests.push(entry);
        meta.insert(
            name.to_string(),
            json!({ "manifest_digest": manifest_digest, "config_digest": config_digest }),
        );
    }
    meta.insert("layer_digest".into(), json!(layer_digest));
    finish_layout(&layout, manifests, &out.join("image.tar"));
    fs::write(
        out.join("images.json"),
        serde_json::to_vec_pretty(&Value::Object(meta)).unwrap(),
    )
    .expect("writing images.json");
}

/// `/bin/busybox` plus one symlink per applet (`busybox --list-full`), a root user and the usual
/// empty mount points, with fixed modes.
pub(super) fn busybox_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin).expect("creating rootfs/bin");
    fs::copy(BUSYBOX_BINARY, bin.join("busybox")).expect("copying busybox");
    fs::set_permissions(bin.join("busybox"), fs::Permissions::from_mode(0o755)).unwrap();

    let list = Command::new(BUSYBOX_BINARY)
        .arg("--list-full")
        .output()
        .expect("running busybox --list-full");
    assert!(
        list.status.success(),
        "busybox --list-full failed: {}",
        list.status
    );
    for applet in String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        if applet == "bin/busybox" {
            continue;
        }
        let link = rootfs.join(applet);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        if !link.exists() {
            symlink("/bin/busybox", &link)
                .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        }
    }
    for dir in ["etc", "tmp", "proc", "sys", "dev", "root", "var/log"] {
        fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();

    // Fixed modes so the layer does not depend on the umask of whoever built it.
    set_dir_modes(rootfs);
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(rootfs.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
    for f in ["etc/passwd", "etc/group"] {
        fs::set_permissions(rootfs.join(f), fs::Permissions::from_mode(0o644)).unwrap();
    }
}

pub(super) fn set_dir_modes(dir: &Path) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            set_dir_modes(&entry.path());
        }
    }
}

/// GNU tar with everything that varies between builds pinned.
pub(super) fn deterministic_tar(dir: &Path, out: &Path) {
    let status = Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
            "--format=gnu",
        ])
        .arg("-cf")
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .unwrap_or_else(|e| panic!("running tar: {e}"));
    assert!(
        status.success(),
        "tar of {} failed: {status}",
        dir.display()
    );
}

pub(super) fn write_blob(blobs: &Path, bytes: &[u8]) -> String {
    let hex = hex_sha256(bytes);
    fs::write(blobs.join(&hex), bytes).expect("writing blob");
    format!("sha256:{hex}")
}

pub(super) fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => panic!("no OCI architecture name known for {other}"),
    }
}
