//! The runtimes image [`RUNTIMES_IMAGE`] of the corpus of real deaths (`tests/corpus.rs`): a
//! Debian bookworm root built by `mmdebstrap` with the runtimes and servers whose crash
//! statements coroner recognises (`erlang-base`, `python3-minimal`, `nodejs`, `nginx-light`,
//! `openjdk-17-jre-headless`, `busybox`), plus the failing test programs of
//! `tests/fixtures/statements/programs/` built inside the root by Debian's own compilers
//! (`golang-go`, `rustc`, `gcc`, `openjdk-17-jdk-headless`), which are then purged with everything
//! they pulled in, so the image holds the programs and not the toolchains.
//!
//! Built like the Erlang image ([`super::erlang_image`]): once, into
//! `target/coroner-test-images/runtimes-<version>-<hash>/`, keyed by the mmdebstrap invocation,
//! its version, the mirror (`CORONER_DEBIAN_MIRROR`) and the programs' sources; the installed
//! package versions are recorded in `packages.txt`. Needs root, `mmdebstrap` and the mirror.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::containerd::{Containerd, K8S_NAMESPACE};
use super::erlang_image::{dpkg_list, remove_dev_nodes};
use super::images::{
    build_cached, cache_root, deterministic_tar, finish_layout, hex_sha256, write_blob, write_image,
};

/// Reference of the runtimes image.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub const RUNTIMES_IMAGE: &str = "localhost/coroner-test/runtimes:1";

/// Bump when the image contents or layout produced here change, to invalidate the cache.
const LAYOUT_VERSION: &str = "runtimes-v1";
const SUITE: &str = "bookworm";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// Installed to build the programs, purged (with what they pulled in) before the layer is made.
const TOOLCHAINS: &str = "golang-go rustc gcc libc6-dev openjdk-17-jdk-headless";

/// The built image.
#[derive(Debug)]
#[allow(dead_code)]
pub struct RuntimesImage {
    /// Bytes of the (uncompressed) layer.
    pub layer_bytes: u64,
    /// The cache directory; `packages.txt` there lists every installed package.
    pub dir: PathBuf,
    /// Tar of the OCI image layout.
    pub archive: PathBuf,
    /// How long this process spent building it (`None`: loaded from the cache).
    pub built_in: Option<Duration>,
}

fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/statements/programs")
}

fn mmdebstrap_args(programs: &Path) -> (Vec<String>, String) {
    let mirror =
        std::env::var("CORONER_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.to_string());
    let args = vec![
        // `apt`, not `essential`: the toolchains are purged with apt's autoremove.
        "--variant=apt".to_string(),
        format!(
            "--include=erlang-base,python3-minimal,nodejs,nginx-light,openjdk-17-jre-headless,busybox,{}",
            TOOLCHAINS.replace(' ', ",")
        ),
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr".to_string(),
        "--dpkgopt=path-exclude=/usr/share/man/*".to_string(),
        "--dpkgopt=path-exclude=/usr/share/locale/*".to_string(),
        "--dpkgopt=path-exclude=/usr/share/doc/*".to_string(),
        "--dpkgopt=path-include=/usr/share/doc/*/copyright".to_string(),
        // openjdk's postinst registers its man page with update-alternatives, which fails when
        // the directory was excluded.
        "--essential-hook=mkdir -p \"$1/usr/share/man/man1\"".to_string(),
        "--customize-hook=mkdir -p \"$1/src\"".to_string(),
        format!("--customize-hook=copy-in {} /src", programs.display()),
        "--customize-hook=chroot \"$1\" sh /src/programs/build.sh /src/programs /opt/cases"
            .to_string(),
        format!("--customize-hook=chroot \"$1\" apt-get purge -y --autoremove {TOOLCHAINS}"),
        "--customize-hook=chroot \"$1\" apt-get clean".to_string(),
        "--customize-hook=rm -rf \"$1/src\" \"$1/tmp/gocache\" \"$1/tmp/gopath\" \"$1/tmp/libgreet.so\" \"$1/var/lib/apt/lists\"".to_string(),
        "--customize-hook=rm -f \"$1/etc/resolv.conf\" \"$1/etc/hostname\"".to_string(),
        SUITE.to_string(),
    ];
    (args, mirror)
}

/// The runtimes image, built on first use in this process (or loaded from the `target/` cache).
/// Slow the first time (minutes): call it from a blocking context.
#[allow(dead_code)]
pub fn runtimes_image() -> &'static RuntimesImage {
    static IMAGE: OnceLock<RuntimesImage> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let programs = programs_dir();
        let (args, mirror) = mmdebstrap_args(&programs);
        let version = Command::new("mmdebstrap")
            .arg("--version")
            .output()
            .unwrap_or_else(|e| {
                panic!("running mmdebstrap --version: {e}; install mmdebstrap (scripts/install-deps.sh)")
            });
        let mut key = Vec::new();
        for part in [LAYOUT_VERSION.as_bytes(), &version.stdout, mirror.as_bytes()]
            .into_iter()
            .chain(args.iter().map(String::as_bytes))
        {
            key.extend_from_slice(part);
            key.push(0);
        }
        let mut sources: Vec<PathBuf> = fs::read_dir(&programs)
            .unwrap_or_else(|e| panic!("reading {}: {e}", programs.display()))
            .flatten()
            .map(|e| e.path())
            .collect();
        sources.sort();
        for path in sources {
            key.extend_from_slice(path.file_name().unwrap().as_encoded_bytes());
            key.push(0);
            key.extend(fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
            key.push(0);
        }
        let dir = cache_root().join(format!("{LAYOUT_VERSION}-{}", &hex_sha256(&key)[..16]));
        if let Some(image) = load(&dir, None) {
            return image;
        }
        let t0 = Instant::now();
        build_cached(
            &dir,
            "runtimes",
            |scratch, out| build_layout(scratch, out, &args, &mirror),
            |d| load(d, None).is_some(),
        );
        load(&dir, Some(t0.elapsed())).unwrap_or_else(|| {
            panic!("runtimes image cache {} unreadable right after building it", dir.display())
        })
    })
}

/// Imports [`RUNTIMES_IMAGE`] into `k8s.io` of `cd` and waits until CRI knows it. Builds the
/// image first if needed (see [`runtimes_image`]).
#[allow(dead_code)]
pub async fn import_runtimes_image(cd: &Containerd) {
    let socket = cd.socket().to_path_buf();
    tokio::task::spawn_blocking(move || {
        super::images::import_archive(&socket, K8S_NAMESPACE, &runtimes_image().archive)
    })
    .await
    .expect("importing the runtimes image");
    cd.cri()
        .await
        .wait_image(RUNTIMES_IMAGE, Duration::from_secs(120))
        .await;
}

fn load(dir: &Path, built_in: Option<Duration>) -> Option<RuntimesImage> {
    let meta: Value = serde_json::from_slice(&fs::read(dir.join("image.json")).ok()?).ok()?;
    let archive = dir.join("image.tar");
    if !archive.is_file() {
        return None;
    }
    Some(RuntimesImage {
        layer_bytes: meta.get("layer_bytes")?.as_u64()?,
        dir: dir.to_path_buf(),
        archive,
        built_in,
    })
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
    for program in [
        "opt/cases/bin/go-listen",
        "opt/cases/bin/smash",
        "opt/cases/java/Boom.class",
    ] {
        assert!(
            rootfs.join(program).is_file(),
            "{program} was not built in {}",
            rootfs.display()
        );
    }
    let packages = dpkg_list(&rootfs);
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
        RUNTIMES_IMAGE,
        &["/bin/sh"],
        &format!(
            "coroner test harness: mmdebstrap {} <dir> {mirror}",
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
        "mmdebstrap": args,
        "mirror": mirror,
    });
    fs::write(
        out.join("image.json"),
        serde_json::to_vec_pretty(&meta).unwrap(),
    )
    .expect("writing image.json");
}
