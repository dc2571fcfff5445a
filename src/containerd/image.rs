//! What an image name resolves to in containerd's image store, decoded from the `Images.Get`
//! record and the index and manifest blobs of the content store. Pure: the calls live in
//! [`super::client`] (`Containerd::resolve_image`), so this is tested with captured responses.
//!
//! An image's *target* is what the name points to: a manifest, or an index (a multi-platform
//! image, or an OCI layout's nested index) whose entry for this node's platform is the manifest
//! that runs. The manifest names the image *config*, whose digest is the image id CRI reports
//! (`crictl images`, the container's `ImageRef`): the identity of what runs. `docs/stale-image.md`
//! says why that is the digest compared.

use chrono::{DateTime, Utc};
use containerd_client::services::v1::Image;
use serde_json::Value;

use super::decode::opt_timestamp;

/// Media types of an index, whose entries are per-platform manifests.
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// Media types of a manifest, which names one config and its layers.
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A content descriptor: what a blob is and where to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
}

/// An image record as `Images.Get` returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    pub name: String,
    pub target: Descriptor,
    /// When containerd first stored a record under this name.
    pub created_at: Option<DateTime<Utc>>,
    /// When the record last changed: an import or pull that set the name's target.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A name resolved down to the config that runs on this node.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedImage {
    pub record: ImageRecord,
    /// The manifest for this node's platform (the target itself when it is a manifest).
    pub manifest_digest: String,
    /// The image config's digest: the image id.
    pub config_digest: String,
}

/// What the target (or an index entry) is, once its blob has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An index: read this entry (the platform's manifest, or a nested index) next.
    Index(Descriptor),
    /// A manifest, naming its config.
    Manifest { config_digest: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageDecodeError {
    #[error("image {name}: the record has no target")]
    NoTarget { name: String },
    #[error("blob {digest}: not JSON: {reason}")]
    NotJson { digest: String, reason: String },
    #[error("blob {digest}: media type {media_type} is neither an index nor a manifest")]
    MediaType { digest: String, media_type: String },
    #[error("index {digest}: no manifest for {platform}")]
    NoPlatform { digest: String, platform: String },
    #[error("manifest {digest}: no config digest")]
    NoConfig { digest: String },
    #[error("image {name}: more than {depth} nested indexes")]
    TooDeep { name: String, depth: usize },
}

/// The record `Images.Get` returned.
pub fn decode_image(image: &Image) -> Result<ImageRecord, ImageDecodeError> {
    let target = image
        .target
        .as_ref()
        .filter(|t| !t.digest.is_empty())
        .ok_or_else(|| ImageDecodeError::NoTarget {
            name: image.name.clone(),
        })?;
    Ok(ImageRecord {
        name: image.name.clone(),
        target: Descriptor {
            media_type: target.media_type.clone(),
            digest: target.digest.clone(),
        },
        created_at: opt_timestamp(image.created_at.as_ref()),
        updated_at: opt_timestamp(image.updated_at.as_ref()),
    })
}

/// This node's platform as OCI names it (`linux/amd64`): the manifest an index resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub architecture: &'static str,
}

impl Platform {
    pub fn node() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux",
            architecture,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)
    }
}

/// What the blob `desc` says: the entry to follow for `platform` in an index, or a manifest's
/// config. An index entry without a platform (an OCI layout's nested index) matches any.
pub fn step(desc: &Descriptor, blob: &[u8], platform: &Platform) -> Result<Step, ImageDecodeError> {
    let json: Value = serde_json::from_slice(blob).map_err(|e| ImageDecodeError::NotJson {
        digest: desc.digest.clone(),
        reason: e.to_string(),
    })?;
    // The descriptor's type, else the blob's own (an OCI layout entry may omit either).
    let media_type = Some(desc.media_type.as_str())
        .filter(|t| !t.is_empty())
        .or(json["mediaType"].as_str())
        .unwrap_or_default();
    let is_index = INDEX_TYPES.contains(&media_type)
        || (media_type.is_empty() && json["manifests"].is_array());
    let is_manifest = MANIFEST_TYPES.contains(&media_type)
        || (media_type.is_empty() && json["config"].is_object());
    if is_index {
        let entries = json["manifests"].as_array().cloned().unwrap_or_default();
        let chosen = entries.iter().find(|m| {
            let p = &m["platform"];
            p.is_null() || (p["os"] == platform.os && p["architecture"] == platform.architecture)
        });
        let Some(entry) = chosen.and_then(|m| {
            Some(Descriptor {
                media_type: m["mediaType"].as_str().unwrap_or_default().to_string(),
                digest: m["digest"].as_str()?.to_string(),
            })
        }) else {
            return Err(ImageDecodeError::NoPlatform {
                digest: desc.digest.clone(),
                platform: platform.to_string(),
            });
        };
        return Ok(Step::Index(entry));
    }
    if is_manifest {
        return match json["config"]["digest"].as_str() {
            Some(d) if !d.is_empty() => Ok(Step::Manifest {
                config_digest: d.to_string(),
            }),
            _ => Err(ImageDecodeError::NoConfig {
                digest: desc.digest.clone(),
            }),
        };
    }
    Err(ImageDecodeError::MediaType {
        digest: desc.digest.clone(),
        media_type: media_type.to_string(),
    })
}

/// Captured `Images.Get` records and blobs (`tests/fixtures/containerd/images/`), resolved as
/// the client resolves them: shared with the comparison's tests in `crate::report`.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/containerd/images/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub fn json(name: &str) -> Value {
        serde_json::from_slice(&fixture(name)).unwrap()
    }

    /// An `Images.Get` record rebuilt from its capture.
    pub fn captured_image(name: &str) -> Image {
        let v = json(name);
        let ts = |v: &Value| {
            Some(prost_types::Timestamp {
                seconds: v["seconds"].as_i64().unwrap(),
                nanos: v["nanos"].as_i64().unwrap() as i32,
            })
        };
        Image {
            name: v["name"].as_str().unwrap().into(),
            target: Some(containerd_client::types::Descriptor {
                media_type: v["target"]["media_type"].as_str().unwrap().into(),
                digest: v["target"]["digest"].as_str().unwrap().into(),
                size: v["target"]["size"].as_i64().unwrap(),
                ..Default::default()
            }),
            created_at: ts(&v["created_at"]),
            updated_at: ts(&v["updated_at"]),
            ..Default::default()
        }
    }

    pub fn amd64() -> Platform {
        Platform {
            os: "linux",
            architecture: "amd64",
        }
    }

    /// Follows a captured record through its captured blobs, as the client does.
    pub fn resolve(record: &str) -> Result<ResolvedImage, ImageDecodeError> {
        let record = decode_image(&captured_image(record))?;
        let mut desc = record.target.clone();
        loop {
            let blob = fixture(&format!("blobs/{}", desc.digest.replace(':', "-")));
            match step(&desc, &blob, &amd64())? {
                Step::Index(next) => desc = next,
                Step::Manifest { config_digest } => {
                    return Ok(ResolvedImage {
                        record,
                        manifest_digest: desc.digest,
                        config_digest,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn reimported_tag_resolves_to_the_new_config_and_says_when() {
        let before = resolve("get-stale-before.json").unwrap();
        let after = resolve("get-stale-after.json").unwrap();
        assert_eq!(before.record.name, after.record.name);
        assert_ne!(before.config_digest, after.config_digest);
        assert_ne!(before.manifest_digest, after.manifest_digest);
        // The record keeps its first creation time; its update time is the re-import.
        assert_eq!(before.record.created_at, after.record.created_at);
        assert!(after.record.updated_at > before.record.updated_at);
        assert_eq!(
            before.record.target.media_type,
            "application/vnd.oci.image.manifest.v1+json"
        );
    }

    #[test]
    fn multi_platform_index_resolves_to_this_platforms_manifest() {
        let r = resolve("get-multi.json").unwrap();
        assert_eq!(
            r.record.target.media_type,
            "application/vnd.oci.image.index.v1+json"
        );
        assert_ne!(r.manifest_digest, r.record.target.digest);
        let arm = Platform {
            os: "linux",
            architecture: "arm64",
        };
        let index = fixture(&format!(
            "blobs/{}",
            r.record.target.digest.replace(':', "-")
        ));
        let Step::Index(arm_manifest) = step(&r.record.target, &index, &arm).unwrap() else {
            panic!("an index");
        };
        assert_ne!(arm_manifest.digest, r.manifest_digest);
        let riscv = Platform {
            os: "linux",
            architecture: "riscv64",
        };
        assert!(matches!(
            step(&r.record.target, &index, &riscv),
            Err(ImageDecodeError::NoPlatform { .. })
        ));
    }

    #[test]
    fn record_without_target_and_foreign_blobs_are_errors() {
        let mut image = captured_image("get-stale-before.json");
        image.target = None;
        assert!(matches!(
            decode_image(&image),
            Err(ImageDecodeError::NoTarget { .. })
        ));
        let desc = Descriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            digest: "sha256:00".into(),
        };
        assert!(matches!(
            step(&desc, b"{}", &amd64()),
            Err(ImageDecodeError::MediaType { .. })
        ));
        assert!(matches!(
            step(&desc, b"\x7fELF", &amd64()),
            Err(ImageDecodeError::NotJson { .. })
        ));
    }
}
