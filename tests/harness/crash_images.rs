//! [`CRASH_IMAGE`]: busybox plus two builds of one C program that dereferences NULL two calls
//! below `main` (`crash_here`, called from `start_work`): `/app/crash`, static with debug info
//! and frame pointers, and `/app/crash-stripped`, the same binary `strip`ped (same build id, no
//! symbols). Built with the host's gcc like [`super::images`] (a single-layer OCI layout, cached
//! under `target/`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::containerd::{Containerd, K8S_NAMESPACE};
use super::images::{
    build_cached, busybox_rootfs, cache_root, deterministic_tar, finish_layout, set_dir_modes,
    write_blob, write_image,
};

#[allow(dead_code)] // each test binary uses a different part of the harness
pub const CRASH_IMAGE: &str = "localhost/coroner-test/crash:1";
#[allow(dead_code)]
pub const CRASH: &str = "/app/crash";
#[allow(dead_code)]
pub const CRASH_STRIPPED: &str = "/app/crash-stripped";

/// Line 3 faults; line 6 is the call in `start_work`.
#[allow(dead_code)]
pub const CRASH_SOURCE: &str = "#include <stdio.h>
__attribute__((noinline)) void crash_here(volatile int *p) {
\t*p = 42;
}
__attribute__((noinline)) void start_work(void) {
\tcrash_here(0);
\tputs(\"unreachable\");
}
int main(void) {
\tstart_work();
\treturn 0;
}
";

const LAYOUT_VERSION: &str = "crash-v1";

fn archive() -> &'static Path {
    static ARCHIVE: OnceLock<std::path::PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let mut h = Sha256::new();
        h.update(LAYOUT_VERSION);
        h.update(CRASH_SOURCE);
        h.update(Sha256::digest(
            fs::read("/bin/busybox").expect("reading /bin/busybox"),
        ));
        let key: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dest = cache_root().join(format!("{LAYOUT_VERSION}-{key}"));
        let done = |d: &Path| d.join("image.tar").is_file();
        if !done(&dest) {
            build_cached(&dest, "crash", build, done);
        }
        dest.join("image.tar")
    })
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?} (scripts/install-deps.sh installs gcc): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build(scratch: &Path, out: &Path) {
    let rootfs = scratch.join("rootfs");
    busybox_rootfs(&rootfs);
    let app = rootfs.join("app");
    fs::create_dir_all(&app).unwrap();
    let src = scratch.join("crash.c");
    fs::write(&src, CRASH_SOURCE).unwrap();
    run(Command::new("gcc")
        .args(["-g", "-O0", "-fno-omit-frame-pointer", "-static", "-o"])
        .arg(app.join("crash"))
        .arg(&src));
    run(Command::new("strip")
        .arg("-o")
        .arg(app.join("crash-stripped"))
        .arg(app.join("crash")));
    for f in ["crash", "crash-stripped"] {
        fs::set_permissions(app.join(f), fs::Permissions::from_mode(0o755)).unwrap();
    }
    set_dir_modes(&app);

    let layout = scratch.join("layout");
    let blobs = layout.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).unwrap();
    let tar = scratch.join("layer.tar");
    deterministic_tar(&rootfs, &tar);
    let layer = fs::read(&tar).unwrap();
    let digest = write_blob(&blobs, &layer);
    let (_, _, entry) = write_image(
        &blobs,
        (&digest, layer.len()),
        CRASH_IMAGE,
        &[CRASH],
        "coroner test harness: a C program that faults in a named function, and its stripped twin",
    );
    finish_layout(&layout, vec![entry], &out.join("image.tar"));
}

/// Imports [`CRASH_IMAGE`] into `k8s.io` of `cd` and waits until CRI knows it.
#[allow(dead_code)]
pub async fn import_crash_image(cd: &Containerd) {
    let socket = cd.socket().to_path_buf();
    tokio::task::spawn_blocking(move || {
        super::images::import_archive(&socket, K8S_NAMESPACE, archive())
    })
    .await
    .expect("importing the crash image");
    cd.cri()
        .await
        .wait_image(CRASH_IMAGE, Duration::from_secs(20))
        .await;
}
