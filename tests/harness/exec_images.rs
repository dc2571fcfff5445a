//! Images whose programs cannot be executed, the ways real images go wrong (built like
//! [`super::images`]: single-layer OCI layouts from host files, cached under `target/`):
//!
//! - [`EXEC_FAILURES_IMAGE`]: busybox plus `/app/gateway`, the host's glibc-linked
//!   `/usr/bin/true` without glibc's loader (the Alpine-vs-Debian mistake); `/app/run.py`, a
//!   script whose `#!/usr/bin/python3` is not in the image; `/app/notexec.sh`, a script without
//!   an execute bit; `/app/arm64`, an AArch64 ELF (the host's `true` header with `e_machine` 183).
//! - [`NO_LIBC_IMAGE`]: busybox plus `/app/gateway` and glibc's loader at
//!   `/lib64/ld-linux-x86-64.so.2`, but not `libc.so.6`: the loader runs and fails.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::containerd::{Containerd, K8S_NAMESPACE};
use super::images::{
    build_cached, busybox_rootfs, cache_root, deterministic_tar, finish_layout, set_dir_modes,
    write_blob, write_image,
};

#[allow(dead_code)] // each test binary uses a different part of the harness
pub const EXEC_FAILURES_IMAGE: &str = "localhost/coroner-test/exec-failures:1";
#[allow(dead_code)]
pub const NO_LIBC_IMAGE: &str = "localhost/coroner-test/glibc-no-libc:1";

/// The glibc-linked host binary copied in as `/app/gateway`.
const GLIBC_BINARY: &str = "/usr/bin/true";
/// Its loader (`PT_INTERP`) on this host.
const GLIBC_LOADER: &str = "/lib64/ld-linux-x86-64.so.2";
const LAYOUT_VERSION: &str = "exec-v1";

/// The archive of both images, built once per process (or loaded from the cache).
fn archive() -> &'static Path {
    static ARCHIVE: OnceLock<std::path::PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let mut h = Sha256::new();
        h.update(LAYOUT_VERSION);
        for input in ["/bin/busybox", GLIBC_BINARY, GLIBC_LOADER] {
            let bytes = fs::read(input).unwrap_or_else(|e| {
                panic!("reading {input}: {e}; the exec-failure images need it")
            });
            h.update(Sha256::digest(&bytes));
        }
        let key: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dest = cache_root().join(format!("{LAYOUT_VERSION}-{key}"));
        let done = |d: &Path| d.join("image.tar").is_file();
        if !done(&dest) {
            build_cached(&dest, "exec", build, done);
        }
        dest.join("image.tar")
    })
}

fn build(scratch: &Path, out: &Path) {
    let glibc = fs::read(GLIBC_BINARY).unwrap();
    // An AArch64 ELF: the x86-64 header with another e_machine. The kernel refuses it at its
    // first check (ENOEXEC), like any binary built for another machine.
    let mut arm64 = glibc[..4096].to_vec();
    arm64[18..20].copy_from_slice(&183u16.to_le_bytes());

    let failures = scratch.join("failures");
    busybox_rootfs(&failures);
    let app = failures.join("app");
    fs::create_dir_all(&app).unwrap();
    for (name, bytes, mode) in [
        ("gateway", &glibc[..], 0o755),
        (
            "run.py",
            &b"#!/usr/bin/python3\nprint('hello')\n"[..],
            0o755,
        ),
        ("notexec.sh", &b"#!/bin/sh\necho hello\n"[..], 0o644),
        ("arm64", &arm64[..], 0o755),
    ] {
        fs::write(app.join(name), bytes).unwrap();
        fs::set_permissions(app.join(name), fs::Permissions::from_mode(mode)).unwrap();
    }
    set_dir_modes(&app);

    let no_libc = scratch.join("no-libc");
    busybox_rootfs(&no_libc);
    fs::create_dir_all(no_libc.join("app")).unwrap();
    fs::create_dir_all(no_libc.join("lib64")).unwrap();
    // fs::copy follows the host's loader symlink into the multiarch directory.
    fs::copy(GLIBC_BINARY, no_libc.join("app/gateway")).unwrap();
    fs::copy(GLIBC_LOADER, no_libc.join("lib64/ld-linux-x86-64.so.2")).unwrap();
    for f in ["app/gateway", "lib64/ld-linux-x86-64.so.2"] {
        fs::set_permissions(no_libc.join(f), fs::Permissions::from_mode(0o755)).unwrap();
    }
    set_dir_modes(&no_libc.join("app"));
    set_dir_modes(&no_libc.join("lib64"));

    let layout = scratch.join("layout");
    let blobs = layout.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).unwrap();
    let mut manifests: Vec<Value> = Vec::new();
    for (rootfs, name) in [(&failures, EXEC_FAILURES_IMAGE), (&no_libc, NO_LIBC_IMAGE)] {
        let tar = scratch.join(format!(
            "{}.tar",
            rootfs.file_name().unwrap().to_string_lossy()
        ));
        deterministic_tar(rootfs, &tar);
        let layer = fs::read(&tar).unwrap();
        let digest = write_blob(&blobs, &layer);
        let (_, _, entry) = write_image(
            &blobs,
            (&digest, layer.len()),
            name,
            &["sh"],
            "coroner test harness: programs that cannot be executed",
        );
        manifests.push(entry);
    }
    finish_layout(&layout, manifests, &out.join("image.tar"));
    fs::write(
        out.join("images.json"),
        json!({ "images": [EXEC_FAILURES_IMAGE, NO_LIBC_IMAGE] }).to_string(),
    )
    .unwrap();
}

/// Imports both images into `k8s.io` of `cd` and waits until CRI knows them.
#[allow(dead_code)]
pub async fn import_exec_images(cd: &Containerd) {
    let socket = cd.socket().to_path_buf();
    tokio::task::spawn_blocking(move || {
        super::images::import_archive(&socket, K8S_NAMESPACE, archive())
    })
    .await
    .expect("importing the exec-failure images");
    let cri = cd.cri().await;
    for image in [EXEC_FAILURES_IMAGE, NO_LIBC_IMAGE] {
        cri.wait_image(image, Duration::from_secs(20)).await;
    }
}
