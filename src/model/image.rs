//! Whether the container's image reference still names what ran: the report's `image_tag`
//! section. Filled by `crate::report` from what the agent resolved at create and at the exit;
//! `docs/stale-image.md` explains the comparison.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the reference resolves to at the exit, against what ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageTagStatus {
    /// The reference still resolves to the content that ran.
    Current,
    /// The reference now resolves to different content: the container ran an older (or other)
    /// image than the one the name gives today; its next start from the name runs the new one.
    Moved,
    /// The node's image store no longer has the reference.
    Removed,
}

impl ImageTagStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageTagStatus::Current => "current",
            ImageTagStatus::Moved => "moved",
            ImageTagStatus::Removed => "removed",
        }
    }
}

/// Which digests decided the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageCompared {
    /// The image config digest (the image id) for the node's platform: what runs.
    Config,
    /// The reference's target (manifest or index) digest, when a config digest was missing.
    Target,
}

/// One side of the comparison: image content as the node's image store named it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageContent {
    /// The reference's target: a manifest, or an index for a multi-platform image.
    pub digest: Option<String>,
    /// The manifest for the node's platform, when the target is an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// The image config digest: the image id CRI reports.
    pub config_digest: Option<String>,
    /// When the node's image store last set the reference to this content (an import or a
    /// pull): containerd's `updated_at` of the image record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_at: Option<DateTime<Utc>>,
}

/// The container's image reference, looked up again at the exit in the container's namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageTagReport {
    /// The reference looked up (the container's `image`).
    pub reference: String,
    pub status: ImageTagStatus,
    pub compared: ImageCompared,
    /// What ran: the CRI's image id, else the reference resolved when the container was created.
    pub ran: ImageContent,
    /// What the reference resolves to at the exit; absent when it is `removed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<ImageContent>,
    /// When the agent looked the reference up.
    pub checked_at: DateTime<Utc>,
}

impl ImageTagReport {
    /// The reference no longer names what ran.
    pub fn is_stale(&self) -> bool {
        self.status != ImageTagStatus::Current
    }
}
