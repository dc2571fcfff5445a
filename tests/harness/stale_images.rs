//! One tag, several contents: what a node's image cache holds after the same tag was imported
//! twice (`kind load docker-image gw:1` after a rebuild). Each [`StaleVariant`] is a single-layer
//! busybox image (built like [`super::images`], cached under `target/`) whose config differs by a
//! version, so its config digest (the image id) and manifest digest differ too; [`StaleVariant::Multi`]
//! is a multi-platform index (this node's platform plus arm64 or amd64) around the `A` config.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::containerd::{Containerd, K8S_NAMESPACE};
use super::images::{
    build_cached, busybox_rootfs, cache_root, deterministic_tar, finish_layout, hex_sha256,
    oci_arch, write_blob, write_image,
};

/// The tag every variant is imported under.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub const STALE_TAG: &str = "localhost/coroner-test/stale:1";
const LAYOUT_VERSION: &str = "stale-v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(dead_code)]
pub enum StaleVariant {
    A,
    B,
    /// An OCI index: this platform's manifest (the `A` config) and one for another platform.
    Multi,
}

impl StaleVariant {
    fn key(self) -> &'static str {
        match self {
            StaleVariant::A => "a",
            StaleVariant::B => "b",
            StaleVariant::Multi => "multi",
        }
    }
}

/// One built variant: the archive `ctr images import` takes and the digests containerd reports.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct StaleImage {
    pub archive: PathBuf,
    /// The tag's target: the manifest, or the index for `Multi`.
    pub target_digest: String,
    /// This platform's manifest.
    pub manifest_digest: String,
    /// The image id.
    pub config_digest: String,
}

/// A variant tagged `tag`, built once per process (or loaded from the cache).
#[allow(dead_code)]
pub fn stale_image(variant: StaleVariant, tag: &str) -> StaleImage {
    static BUILT: OnceLock<
        std::sync::Mutex<std::collections::HashMap<(StaleVariant, String), StaleImage>>,
    > = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    built
        .entry((variant, tag.to_string()))
        .or_insert_with(|| {
            let busybox = fs::read("/bin/busybox").expect("reading /bin/busybox");
            let key =
                hex_sha256(format!("{}{tag}{}", variant.key(), hex_sha256(&busybox)).as_bytes());
            let dest = cache_root().join(format!("{LAYOUT_VERSION}-{}", &key[..16]));
            let done = |d: &Path| load(d).is_some();
            if !done(&dest) {
                build_cached(
                    &dest,
                    "stale",
                    |scratch, out| build(scratch, out, variant, tag),
                    done,
                );
            }
            load(&dest).unwrap_or_else(|| panic!("stale image cache {} unreadable", dest.display()))
        })
        .clone()
}

fn load(dir: &Path) -> Option<StaleImage> {
    let meta: Value = serde_json::from_slice(&fs::read(dir.join("image.json")).ok()?).ok()?;
    let archive = dir.join("image.tar");
    archive.is_file().then_some(())?;
    let s = |k: &str| meta[k].as_str().map(str::to_string);
    Some(StaleImage {
        archive,
        target_digest: s("target_digest")?,
        manifest_digest: s("manifest_digest")?,
        config_digest: s("config_digest")?,
    })
}

fn build(scratch: &Path, out: &Path, variant: StaleVariant, tag: &str) {
    let rootfs = scratch.join("rootfs");
    busybox_rootfs(&rootfs);
    let layer_tar = scratch.join("layer.tar");
    deterministic_tar(&rootfs, &layer_tar);
    let layout = scratch.join("layout");
    let blobs = layout.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).expect("creating blobs dir");
    let layer = fs::read(&layer_tar).expect("reading layer.tar");
    let layer_digest = write_blob(&blobs, &layer);
    let version = match variant {
        StaleVariant::B => "b",
        StaleVariant::A | StaleVariant::Multi => "a",
    };
    let (config_digest, manifest_digest, entry) = write_image(
        &blobs,
        (&layer_digest, layer.len()),
        tag,
        &["sh"],
        &format!("coroner test harness: stale-image content {version}"),
    );
    let (target_digest, entry) = match variant {
        StaleVariant::A | StaleVariant::B => (manifest_digest.clone(), entry),
        StaleVariant::Multi => {
            // Another platform's manifest beside this one's, as a registry's multi-arch tag has.
            let other = if oci_arch() == "amd64" {
                "arm64"
            } else {
                "amd64"
            };
            let other_config = json!({
                "architecture": other,
                "os": "linux",
                "config": { "Cmd": ["sh"] },
                "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
            });
            let other_config = serde_json::to_vec(&other_config).unwrap();
            let other_config_digest = write_blob(&blobs, &other_config);
            let other_manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": other_config_digest,
                    "size": other_config.len(),
                },
                "layers": [{
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": layer.len(),
                }],
            }))
            .unwrap();
            let other_manifest_digest = write_blob(&blobs, &other_manifest);
            let mut this = entry.clone();
            this.as_object_mut().unwrap().remove("annotations");
            let index = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    this,
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": other_manifest_digest,
                        "size": other_manifest.len(),
                        "platform": { "architecture": other, "os": "linux" },
                    },
                ],
            }))
            .unwrap();
            let index_digest = write_blob(&blobs, &index);
            let entry = json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": index_digest,
                "size": index.len(),
                "annotations": entry["annotations"].clone(),
            });
            (index_digest, entry)
        }
    };
    finish_layout(&layout, vec![entry], &out.join("image.tar"));
    fs::write(
        out.join("image.json"),
        json!({
            "target_digest": target_digest,
            "manifest_digest": manifest_digest,
            "config_digest": config_digest,
        })
        .to_string(),
    )
    .expect("writing image.json");
}

/// Imports `variant` under `tag` into `k8s.io` of `cd` (moving the tag if it was imported
/// before) and waits until CRI resolves the tag to it.
#[allow(dead_code)]
pub async fn import_stale(cd: &Containerd, variant: StaleVariant, tag: &str) -> StaleImage {
    let image = stale_image(variant, tag);
    let (socket, archive) = (cd.socket().to_path_buf(), image.archive.clone());
    tokio::task::spawn_blocking(move || {
        super::images::import_archive(&socket, K8S_NAMESPACE, &archive)
    })
    .await
    .expect("importing a stale-image variant");
    let cri = cd.cri().await;
    let timeout = Duration::from_secs(20);
    let deadline = Instant::now() + timeout;
    loop {
        match cri.image_id(tag).await {
            Some(id) if id == image.config_digest => return image,
            seen if Instant::now() > deadline => panic!(
                "CRI resolves {tag} to {seen:?}, not {} after {timeout:?}",
                image.config_digest
            ),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
