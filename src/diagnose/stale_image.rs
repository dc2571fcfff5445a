//! A container that ran other content than its image reference names at its exit: said in the
//! diagnosis' summary and evidence, whatever the cause. It explains no death by itself, so it
//! never changes the cause, the confidence or the crash-loop key; it tells the reader that the
//! code which crashed is not the code the name gives today (fixed already, or not yet deployed),
//! and that the next start from that name runs other content.

use crate::model::{Diagnosis, Evidence, ImageTagReport, ImageTagStatus};
use crate::units::timestamp_seconds;

/// `sha256:0123456789ab`: a digest short enough for a sentence.
pub fn short_digest(d: &str) -> &str {
    let cut = d.find(':').map_or(12, |colon| colon + 1 + 12);
    d.get(..cut).unwrap_or(d)
}

/// The sentence the summary gains and the evidence behind it; nothing for a current reference.
pub fn note(d: &mut Diagnosis, tag: &ImageTagReport) {
    let ran = tag
        .ran
        .config_digest
        .as_deref()
        .or(tag.ran.digest.as_deref())
        .unwrap_or("unknown content");
    let (sentence, fact, field) = match (tag.status, &tag.now) {
        (ImageTagStatus::Moved, Some(now)) => {
            let now_digest = match tag.compared {
                crate::model::ImageCompared::Config => now.config_digest.as_deref(),
                crate::model::ImageCompared::Target => now.digest.as_deref(),
            }
            .unwrap_or("other content");
            let imported = now
                .imported_at
                .map(|t| format!(", imported at {}", timestamp_seconds(t)))
                .unwrap_or_default();
            (
                format!(
                    "The image tag has moved since: this container ran {}; `{}` now resolves to {}{imported}.",
                    short_digest(ran),
                    tag.reference,
                    short_digest(now_digest),
                ),
                format!(
                    "this container ran {ran}; `{}` now resolves to {now_digest}{imported}",
                    tag.reference
                ),
                match tag.compared {
                    crate::model::ImageCompared::Config => "/image_tag/now/config_digest",
                    crate::model::ImageCompared::Target => "/image_tag/now/digest",
                },
            )
        }
        (ImageTagStatus::Removed, _) => (
            format!(
                "The image `{}` this container ran ({}) is no longer in the node's image store.",
                tag.reference,
                short_digest(ran)
            ),
            format!(
                "`{}` no longer resolves in the node's image store; this container ran {ran}",
                tag.reference
            ),
            "/image_tag/status",
        ),
        _ => return,
    };
    if !d.summary.trim().is_empty() {
        d.summary.push(' ');
    }
    d.summary.push_str(&sentence);
    d.evidence.push(Evidence {
        fact,
        field: field.to_string(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cause, Confidence, ImageCompared, ImageContent};

    fn diagnosis() -> Diagnosis {
        Diagnosis {
            cause: Cause::ExitedError,
            confidence: Confidence::Medium,
            summary: "Exited 3 after 12 ms.".into(),
            evidence: vec![],
            key: Some("exit 3".into()),
            statement: None,
            advice: None,
        }
    }

    fn tag(status: ImageTagStatus) -> ImageTagReport {
        ImageTagReport {
            reference: "localhost/gw:1".into(),
            status,
            compared: ImageCompared::Config,
            ran: ImageContent {
                config_digest: Some(format!("sha256:{}", "a".repeat(64))),
                ..Default::default()
            },
            now: (status != ImageTagStatus::Removed).then(|| ImageContent {
                config_digest: Some(format!("sha256:{}", "b".repeat(64))),
                imported_at: Some("2026-12-04T21:00:03Z".parse().unwrap()),
                ..Default::default()
            }),
            checked_at: "2026-12-04T21:00:05Z".parse().unwrap(),
        }
    }

    #[test]
    fn moved_tag_is_said_in_summary_and_evidence_without_changing_the_cause() {
        let mut d = diagnosis();
        note(&mut d, &tag(ImageTagStatus::Moved));
        assert_eq!(
            d.summary,
            "Exited 3 after 12 ms. The image tag has moved since: this container ran \
             sha256:aaaaaaaaaaaa; `localhost/gw:1` now resolves to sha256:bbbbbbbbbbbb, \
             imported at 2026-12-04 21:00:03 UTC."
        );
        assert_eq!(d.evidence.len(), 1);
        assert_eq!(d.evidence[0].field, "/image_tag/now/config_digest");
        assert!(d.evidence[0].fact.contains(&"b".repeat(64)));
        assert_eq!(
            (d.cause, d.confidence, d.key.as_deref()),
            (Cause::ExitedError, Confidence::Medium, Some("exit 3"))
        );
    }

    #[test]
    fn current_tag_says_nothing_and_removed_tag_says_so() {
        let mut d = diagnosis();
        note(&mut d, &tag(ImageTagStatus::Current));
        assert_eq!(d, diagnosis());
        note(&mut d, &tag(ImageTagStatus::Removed));
        assert!(d.summary.contains("no longer in the node's image store"));
        assert_eq!(d.evidence[0].field, "/image_tag/status");
    }

    #[test]
    fn short_digest_keeps_the_algorithm_and_twelve_hex_digits() {
        assert_eq!(
            short_digest(&format!("sha256:{}", "c".repeat(64))),
            "sha256:cccccccccccc"
        );
        assert_eq!(short_digest("sha256:abc"), "sha256:abc");
    }
}
