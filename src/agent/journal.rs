//! The registry's memory on disk: one small file per live container, written once its
//! enrichment is known and removed once its report is stored. When the agent comes back from a
//! restart, a container that is in the journal but gone from containerd and the CRI (a
//! `ctr run --rm` container, or one removed while the agent was away) exited unseen; its identity
//! comes from here and its exit from the pinned flight recorder, which kept recording.
//!
//! Entries hold what the report needs and nothing it would withhold: environment values only
//! when allow-listed, arguments and labels redacted as the report's are. Files are written
//! atomically (temporary file, rename) in `<data dir>/tracked/`; a file that does not parse is
//! removed and counted, never fatal.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::warn;

use crate::containerd::ContainerMeta;
use crate::model::{CgroupLimits, ImageContent};
use crate::redact::{redact_args, redact_labels};
use crate::report::{Enriched, Redaction};

/// The subdirectory of the data dir the journal lives in.
const DIR: &str = "tracked";
const TMP_PREFIX: &str = ".tmp-";

/// One tracked container, as a restarted agent needs it to report an exit it did not see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub namespace: String,
    pub container_id: String,
    /// The init process, as the agent last knew it.
    pub pid: u32,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub meta: Option<ContainerMeta>,
    pub image_digest: Option<String>,
    /// What the image reference resolved to at create (absent in older journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ran: Option<ImageContent>,
    pub cgroup_path: Option<String>,
    pub limits: Option<CgroupLimits>,
    /// The flight recorder's key: where the container's recording is found.
    pub cgroup_id: Option<u64>,
}

impl Entry {
    /// What the journal keeps of an enrichment: secrets withheld as the report would withhold
    /// them, since the file is on the node's disk.
    pub fn new(
        namespace: &str,
        container_id: &str,
        pid: u32,
        times: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        e: &Enriched,
        redaction: &Redaction,
    ) -> Entry {
        let meta = e.meta.clone().map(|mut m| {
            for (k, v) in &mut m.env {
                if !redaction.env_allow.contains(k) {
                    v.clear();
                }
            }
            if !redaction.keep_args {
                m.command = redact_args(&m.command);
            }
            if !redaction.keep_labels {
                m.labels = redact_labels(&m.labels);
            }
            m
        });
        Entry {
            namespace: namespace.to_string(),
            container_id: container_id.to_string(),
            pid,
            created_at: times.0,
            started_at: times.1,
            meta,
            image_digest: e.image_digest.clone(),
            image_ran: e.image_ran.clone(),
            cgroup_path: e.cgroup_path.clone(),
            limits: e.limits.clone(),
            cgroup_id: e.cgroup_id,
        }
    }

    /// The enrichment again, as the report build takes it.
    pub fn enriched(&self) -> Enriched {
        Enriched {
            meta: self.meta.clone(),
            image_digest: self.image_digest.clone(),
            image_ran: self.image_ran.clone(),
            cgroup_path: self.cgroup_path.clone(),
            limits: self.limits.clone(),
            cgroup_id: self.cgroup_id,
            ..Enriched::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
}

/// The journal directory. Blocking I/O: call from `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

/// A file name for a container: a digest, so any namespace or id is a safe name.
fn file_name(namespace: &str, container_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(namespace.as_bytes());
    h.update([0]);
    h.update(container_id.as_bytes());
    let hex: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{hex}.json")
}

impl Journal {
    /// The journal of a data dir, created if missing.
    pub fn open(data_dir: &Path) -> Result<Journal, JournalError> {
        let dir = data_dir.join(DIR);
        fs::create_dir_all(&dir).map_err(|source| JournalError::Write {
            path: dir.clone(),
            source,
        })?;
        Ok(Journal { dir })
    }

    pub fn record(&self, entry: &Entry) -> Result<(), JournalError> {
        let path = self
            .dir
            .join(file_name(&entry.namespace, &entry.container_id));
        let tmp = self.dir.join(format!(
            "{TMP_PREFIX}{}",
            file_name(&entry.namespace, &entry.container_id)
        ));
        let json = serde_json::to_vec(entry).expect("a journal entry always serializes");
        let write = || -> io::Result<()> {
            let mut f = match fs::File::create(&tmp) {
                // The dir went away under the agent (deleted, or a volume mounted over the data
                // dir): make it again rather than stop journaling.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir_all(&self.dir)?;
                    fs::File::create(&tmp)?
                }
                other => other?,
            };
            f.write_all(&json)?;
            // No fsync: the journal covers the agent's restarts, not the node's; a node that
            // loses its page cache has lost its containers too.
            fs::rename(&tmp, &path)
        };
        write().map_err(|source| {
            let _ = fs::remove_file(&tmp);
            JournalError::Write { path, source }
        })
    }

    /// Forgets a container (its report is stored, or it will never have one). Missing is fine.
    pub fn forget(&self, namespace: &str, container_id: &str) {
        let path = self.dir.join(file_name(namespace, container_id));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(path = %path.display(), error = %e, "could not forget a tracked container")
            }
        }
    }

    /// Every entry, and how many files were unreadable (removed).
    pub fn load(&self) -> Result<(Vec<Entry>, usize), JournalError> {
        let read_err = |source| JournalError::Read {
            path: self.dir.clone(),
            source,
        };
        let mut entries = Vec::new();
        let mut bad = 0;
        for f in fs::read_dir(&self.dir).map_err(read_err)? {
            let f = f.map_err(read_err)?;
            let path = f.path();
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                let _ = fs::remove_file(&path);
                continue;
            }
            match fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
            {
                Some(e) => entries.push(e),
                None => {
                    warn!(path = %path.display(), "unreadable journal entry removed");
                    let _ = fs::remove_file(&path);
                    bad += 1;
                }
            }
        }
        Ok((entries, bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enriched() -> Enriched {
        Enriched {
            meta: Some(ContainerMeta {
                id: "abc".into(),
                command: vec!["app".into(), "--password=hunter2".into()],
                env: vec![
                    ("PATH".into(), "/bin".into()),
                    ("DB_PASSWORD".into(), "hunter2".into()),
                ],
                labels: [("api-token".to_string(), "hunter2".to_string())].into(),
                ..Default::default()
            }),
            cgroup_id: Some(42),
            cgroup_path: Some("/coroner-plain/abc".into()),
            ..Default::default()
        }
    }

    #[test]
    fn entries_round_trip_and_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let e = Entry::new(
            "coroner-plain",
            "abc",
            7,
            (None, None),
            &enriched(),
            &Redaction::default(),
        );
        j.record(&e).unwrap();
        let (loaded, bad) = j.load().unwrap();
        assert_eq!((loaded, bad), (vec![e.clone()], 0));
        assert_eq!(e.enriched().cgroup_id, Some(42));
        j.forget("coroner-plain", "abc");
        assert!(j.load().unwrap().0.is_empty());
        j.forget("coroner-plain", "abc"); // twice is fine
    }

    #[test]
    fn no_secret_is_written_to_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let e = Entry::new(
            "ns",
            "abc",
            7,
            (None, None),
            &enriched(),
            &Redaction::default(),
        );
        j.record(&e).unwrap();
        for f in fs::read_dir(dir.path().join(DIR)).unwrap() {
            let text = fs::read_to_string(f.unwrap().path()).unwrap();
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("DB_PASSWORD"), "names are kept: {text}");
        }
    }

    #[test]
    fn a_journal_dir_removed_under_the_agent_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        fs::remove_dir(dir.path().join(DIR)).unwrap();
        let e = Entry::new(
            "ns",
            "c1",
            7,
            (None, None),
            &enriched(),
            &Redaction::default(),
        );
        journal.record(&e).unwrap();
        assert_eq!(journal.load().unwrap().0.len(), 1);
    }

    #[test]
    fn an_unreadable_entry_is_removed_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        fs::write(dir.path().join(DIR).join("junk.json"), b"{not json").unwrap();
        fs::write(dir.path().join(DIR).join(".tmp-x.json"), b"half").unwrap();
        let (loaded, bad) = j.load().unwrap();
        assert!(loaded.is_empty());
        assert_eq!(bad, 1);
        assert_eq!(fs::read_dir(dir.path().join(DIR)).unwrap().count(), 0);
    }
}
