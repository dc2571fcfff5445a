//! Does the container's image reference still name what ran? Compares what ran (the CRI's image
//! id, else the reference resolved at create) with the reference resolved again at the exit.
//! Pure; the look-ups are the agent's (`agent/enrich.rs` at create, `agent/finish.rs` at exit).
//!
//! The config digest for the node's platform decides when both sides have one: it is the image
//! id, and it fixes the layers and the runtime configuration. A manifest or index digest can
//! change while the config for this platform does not (another platform rebuilt, layers
//! recompressed): that content is the same, so it is not a moved tag. The target digests decide
//! only when a config digest is missing (`docs/stale-image.md`).

use chrono::{DateTime, Utc};

use crate::containerd::ResolvedImage;
use crate::model::{ImageCompared, ImageContent, ImageTagReport, ImageTagStatus};

/// The reference looked up again at the exit.
#[derive(Debug, Clone)]
pub struct ImageLookup {
    pub checked_at: DateTime<Utc>,
    /// `None`: the image store has no image of that name any more.
    pub resolved: Option<ResolvedImage>,
}

/// What an image store record says, as a side of the comparison.
pub fn content(r: &ResolvedImage) -> ImageContent {
    ImageContent {
        digest: Some(r.record.target.digest.clone()),
        manifest_digest: Some(r.manifest_digest.clone()).filter(|m| *m != r.record.target.digest),
        config_digest: Some(r.config_digest.clone()),
        imported_at: r.record.updated_at,
    }
}

/// The `image_tag` section, or `None` when there is nothing to compare: no reference, a
/// reference that is itself a digest (it cannot move), no look-up at the exit, or no digest of
/// what ran.
pub fn image_tag(
    reference: Option<&str>,
    cri_image_id: Option<&str>,
    ran: Option<&ImageContent>,
    now: Option<&ImageLookup>,
) -> Option<ImageTagReport> {
    let reference = reference.filter(|r| !pinned(r))?;
    let now = now?;
    let mut ran = ran.cloned().unwrap_or_default();
    // The CRI's image id is what the CRI resolved when it created the container: it wins over
    // the agent's own look-up, made a few milliseconds later.
    if let Some(id) = cri_image_id {
        ran.config_digest = Some(id.to_string());
    }
    if ran.digest.is_none() && ran.config_digest.is_none() {
        return None;
    }
    let by_config = ran.config_digest.is_some();
    let compared = if by_config {
        ImageCompared::Config
    } else {
        ImageCompared::Target
    };
    let (status, now_content) = match &now.resolved {
        None => (ImageTagStatus::Removed, None),
        Some(r) => {
            let c = content(r);
            let same = if by_config {
                c.config_digest == ran.config_digest
            } else {
                c.digest == ran.digest
            };
            let status = if same {
                ImageTagStatus::Current
            } else {
                ImageTagStatus::Moved
            };
            (status, Some(c))
        }
    };
    Some(ImageTagReport {
        reference: reference.to_string(),
        status,
        compared,
        ran,
        now: now_content,
        checked_at: now.checked_at,
    })
}

/// `name@sha256:...` or a bare image id: a name that always means the same content.
fn pinned(reference: &str) -> bool {
    reference.contains('@') || reference.starts_with("sha256:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerd::image::testing::resolve;

    fn at(resolved: Option<ResolvedImage>) -> ImageLookup {
        ImageLookup {
            checked_at: "2026-12-04T21:00:00Z".parse().unwrap(),
            resolved,
        }
    }

    const TAG: &str = "localhost/coroner-test/stale:1";

    #[test]
    fn container_from_old_content_after_reimport_is_moved_with_the_import_time() {
        let before = resolve("get-stale-before.json").unwrap();
        let after = resolve("get-stale-after.json").unwrap();
        // A CRI container: its image id is the old config.
        let r = image_tag(
            Some(TAG),
            Some(&before.config_digest),
            Some(&content(&before)),
            Some(&at(Some(after.clone()))),
        )
        .unwrap();
        assert_eq!(r.status, ImageTagStatus::Moved);
        assert_eq!(r.compared, ImageCompared::Config);
        assert_eq!(r.ran.config_digest.as_ref(), Some(&before.config_digest));
        let now = r.now.unwrap();
        assert_eq!(now.config_digest.as_ref(), Some(&after.config_digest));
        assert_eq!(now.digest.as_ref(), Some(&after.record.target.digest));
        assert_eq!(now.imported_at, after.record.updated_at);
        assert!(now.imported_at.is_some());
    }

    #[test]
    fn container_from_current_content_is_current() {
        let after = resolve("get-stale-after.json").unwrap();
        let r = image_tag(
            Some(TAG),
            Some(&after.config_digest),
            Some(&content(&after)),
            Some(&at(Some(after.clone()))),
        )
        .unwrap();
        assert_eq!(r.status, ImageTagStatus::Current);
        assert!(!r.is_stale());
    }

    #[test]
    fn cri_image_id_decides_over_the_agents_own_lookup_at_create() {
        // The agent's look-up at create raced the re-import and saw the new content; the CRI
        // had already resolved the old one.
        let before = resolve("get-stale-before.json").unwrap();
        let after = resolve("get-stale-after.json").unwrap();
        let r = image_tag(
            Some(TAG),
            Some(&before.config_digest),
            Some(&content(&after)),
            Some(&at(Some(after))),
        )
        .unwrap();
        assert_eq!(r.status, ImageTagStatus::Moved);
    }

    #[test]
    fn same_config_under_another_index_is_not_moved() {
        // A multi-platform index whose entry for this platform has the config that ran: the
        // target digest differs (an index, not the manifest), the content that runs does not.
        let multi = resolve("get-multi.json").unwrap();
        let ran = ImageContent {
            digest: Some(multi.manifest_digest.clone()),
            config_digest: Some(multi.config_digest.clone()),
            ..Default::default()
        };
        let r = image_tag(Some(TAG), None, Some(&ran), Some(&at(Some(multi.clone())))).unwrap();
        assert_eq!(r.status, ImageTagStatus::Current);
        let now = r.now.unwrap();
        assert_ne!(now.digest, ran.digest);
        assert_eq!(now.manifest_digest, ran.digest);
    }

    #[test]
    fn without_a_config_digest_the_targets_decide() {
        let before = resolve("get-stale-before.json").unwrap();
        let after = resolve("get-stale-after.json").unwrap();
        let ran = ImageContent {
            digest: Some(before.record.target.digest.clone()),
            ..Default::default()
        };
        let r = image_tag(Some(TAG), None, Some(&ran), Some(&at(Some(after)))).unwrap();
        assert_eq!(
            (r.status, r.compared),
            (ImageTagStatus::Moved, ImageCompared::Target)
        );
        let r = image_tag(Some(TAG), None, Some(&ran), Some(&at(Some(before)))).unwrap();
        assert_eq!(r.status, ImageTagStatus::Current);
    }

    #[test]
    fn removed_reference_pinned_reference_and_nothing_known_of_what_ran() {
        let before = resolve("get-stale-before.json").unwrap();
        let r = image_tag(
            Some(TAG),
            Some(&before.config_digest),
            None,
            Some(&at(None)),
        )
        .unwrap();
        assert_eq!(r.status, ImageTagStatus::Removed);
        assert!(r.now.is_none());
        let pinned = format!("localhost/gw@{}", before.record.target.digest);
        let lookup = at(Some(before.clone()));
        assert!(image_tag(Some(&pinned), None, Some(&content(&before)), Some(&lookup)).is_none());
        assert!(image_tag(Some(&before.config_digest), None, None, Some(&lookup)).is_none());
        assert!(image_tag(Some(TAG), None, None, Some(&lookup)).is_none());
        assert!(image_tag(Some(TAG), Some(&before.config_digest), None, None).is_none());
        assert!(image_tag(None, Some(&before.config_digest), None, Some(&lookup)).is_none());
    }
}
