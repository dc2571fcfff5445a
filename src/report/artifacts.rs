//! The report's `artifacts` section and the bytes the store keeps beside it, made from what the
//! agent read in the container's filesystem (pure). What may leave the node is decided here:
//! text files are redacted like captured output ([`crate::redact::redact_text`]) and binary ones
//! (cores, heap dumps, anything not text) are withheld, unless `--no-redact-artifacts` keeps
//! them as they were. Key lines are quoted from what is kept, after redaction.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use super::Redaction;
use crate::artifacts::keylines::key_lines;
use crate::artifacts::Collection;
use crate::model::{Artifact, ArtifactsReport, SkippedArtifact};
use crate::redact::redact_text;

pub const TEXT: &str = "text/plain; charset=utf-8";
pub const BINARY: &str = "application/octet-stream";

/// One file to store beside the report: its name in the report and its gzip bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    pub name: String,
    pub gzip: Vec<u8>,
}

/// The section and the files, ready for [`super::Inputs::artifacts`] and the store.
#[derive(Debug, Clone, Default)]
pub struct PreparedArtifacts {
    pub section: Option<ArtifactsReport>,
    pub files: Vec<ArtifactFile>,
}

/// Text: no NUL byte in the first 8 KiB.
fn is_text(data: &[u8]) -> bool {
    !data[..data.len().min(8192)].contains(&0)
}

/// A name safe in a URL path segment and a file name, unique among `taken`.
fn unique_name(path: &str, taken: &[ArtifactFile]) -> String {
    let base: String = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let base = if base.trim_matches('.').is_empty() {
        "artifact".to_string()
    } else {
        base
    };
    let mut name = base.clone();
    let mut n = 2;
    while taken.iter().any(|f| f.name == name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Makes the section and the stored files from a collection (`None`: the filesystem was never
/// looked at; `unavailable`: why it could not be).
pub fn prepare(
    collection: Option<Collection>,
    unavailable: Option<String>,
    redaction: &Redaction,
) -> PreparedArtifacts {
    let Some(collection) = collection else {
        return PreparedArtifacts {
            section: unavailable.map(|u| ArtifactsReport {
                unavailable: Some(u),
                ..Default::default()
            }),
            files: Vec::new(),
        };
    };
    let mut section = ArtifactsReport {
        read_from: collection.source.map(|s| s.as_str().to_string()),
        skipped: collection.skipped,
        unavailable,
        ..Default::default()
    };
    let mut files: Vec<ArtifactFile> = Vec::new();
    for c in collection.files {
        let truncated = c.truncated();
        let text = is_text(&c.data);
        if !text && !redaction.keep_artifacts {
            section.skipped.push(SkippedArtifact {
                path: c.path,
                size_bytes: Some(c.size),
                reason: "binary: cannot be redacted; kept only with --no-redact-artifacts".into(),
            });
            continue;
        }
        let (data, redacted, lines) = if text {
            let s = String::from_utf8_lossy(&c.data);
            let (kept, redacted) = if redaction.keep_artifacts {
                (s.into_owned(), false)
            } else {
                match redact_text(&s) {
                    std::borrow::Cow::Owned(r) => (r, true),
                    std::borrow::Cow::Borrowed(_) => (s.into_owned(), true),
                }
            };
            let lines = key_lines(c.kind, &kept);
            (kept.into_bytes(), redacted, lines)
        } else {
            (c.data, false, Vec::new())
        };
        let name = unique_name(&c.path, &files);
        let gz = gzip(&data);
        section.files.push(Artifact {
            name: name.clone(),
            path: c.path,
            kind: c.kind,
            content_type: if text { TEXT } else { BINARY }.to_string(),
            size_bytes: c.size,
            kept_bytes: data.len() as u64,
            stored_bytes: gz.len() as u64,
            truncated,
            redacted,
            key_lines: lines,
        });
        files.push(ArtifactFile { name, gzip: gz });
    }
    let empty = section.files.is_empty() && section.skipped.is_empty();
    PreparedArtifacts {
        section: (!empty || section.unavailable.is_some()).then_some(section),
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::{Collected, Source};
    use crate::model::ArtifactKind;
    use std::io::Read;

    fn collection(files: Vec<(&str, ArtifactKind, &[u8])>) -> Collection {
        Collection {
            files: files
                .into_iter()
                .map(|(p, kind, d)| Collected {
                    path: p.into(),
                    kind,
                    size: d.len() as u64,
                    data: d.to_vec(),
                })
                .collect(),
            skipped: vec![],
            source: Some(Source::BundleRootfs),
        }
    }

    fn gunzip(b: &[u8]) -> String {
        let mut s = String::new();
        flate2::read::GzDecoder::new(b)
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn a_crash_dump_is_redacted_compressed_and_quoted() {
        let dump = b"=erl_crash_dump:0.5\nSlogan: db password=hunter2 refused\nSystem version: Erlang/OTP 25\n";
        let p = prepare(
            Some(collection(vec![(
                "/erl_crash.dump",
                ArtifactKind::ErlangCrashDump,
                dump,
            )])),
            None,
            &Redaction::default(),
        );
        let s = p.section.unwrap();
        assert_eq!(s.read_from.as_deref(), Some("bundle_rootfs"));
        let a = &s.files[0];
        assert_eq!(
            (a.name.as_str(), a.content_type.as_str(), a.redacted),
            ("erl_crash.dump", TEXT, true)
        );
        let stored = gunzip(&p.files[0].gzip);
        assert!(
            !stored.contains("hunter2") && stored.contains("System version"),
            "{stored}"
        );
        assert!(
            !a.key_lines[0].text.contains("hunter2"),
            "{:?}",
            a.key_lines
        );
        assert_eq!(a.stored_bytes, p.files[0].gzip.len() as u64);
    }

    #[test]
    fn binaries_are_withheld_unless_raw_is_asked_for() {
        let c = || {
            collection(vec![
                ("/core", ArtifactKind::Core, b"\x7fELF\0\0core"),
                ("/x/core", ArtifactKind::Core, b"\x7fELF\0\0"),
            ])
        };
        let p = prepare(Some(c()), None, &Redaction::default());
        let s = p.section.unwrap();
        assert!(s.files.is_empty() && p.files.is_empty());
        assert_eq!(s.skipped.len(), 2);
        let raw = Redaction {
            keep_artifacts: true,
            ..Default::default()
        };
        let p = prepare(Some(c()), None, &raw);
        let names: Vec<_> = p.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["core", "core-2"], "names are unique");
        assert_eq!(p.section.unwrap().files[0].content_type, BINARY);
    }

    #[test]
    fn names_are_safe_path_segments() {
        assert_eq!(unique_name("/a/b/..", &[]), "artifact");
        assert_eq!(unique_name("/a/we ird%2f.log", &[]), "we_ird_2f.log");
        assert!(
            prepare(Some(Collection::default()), None, &Redaction::default())
                .section
                .is_none()
        );
    }
}
