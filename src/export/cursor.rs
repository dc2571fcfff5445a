//! The exporter's cursor: the ids of the reports the collector acknowledged, persisted in the
//! data dir (`.otlp-cursor`, a hidden file the store skips), so a restart neither loses nor
//! resends a report.
//!
//! Reports are stored out of exit-time order (concurrent finishes, exits recovered after a
//! restart, writes retried after a disk fault), so a position in the store's index cannot say
//! what was sent; the set of acknowledged ids can. It holds only ids the store still has (it is
//! pruned at each write), so it is bounded by `--max-reports`. Written like a report: temporary
//! file, fsync, rename, fsync of the directory. Blocking I/O.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::valid_id;

/// The cursor's file name in the data dir.
pub const FILE: &str = ".otlp-cursor";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not an export cursor: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    /// Acknowledged report ids, sorted.
    exported: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Cursor {
    exported: HashSet<String>,
}

impl Cursor {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    /// The cursor in `dir`; empty when there is none yet (the first run exports every stored
    /// report).
    pub fn load(dir: &Path) -> Result<Cursor, CursorError> {
        let path = Cursor::path(dir);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Cursor::default()),
            Err(source) => return Err(CursorError::Read { path, source }),
        };
        let corrupt = |reason: String| CursorError::Corrupt {
            path: path.clone(),
            reason,
        };
        let disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if disk.version != VERSION {
            return Err(corrupt(format!(
                "version {} (expected {VERSION})",
                disk.version
            )));
        }
        if let Some(bad) = disk.exported.iter().find(|id| !valid_id(id)) {
            return Err(corrupt(format!("{bad:?} is not a report id")));
        }
        Ok(Cursor {
            exported: disk.exported.into_iter().collect(),
        })
    }

    pub fn contains(&self, id: &str) -> bool {
        self.exported.contains(id)
    }

    pub fn len(&self) -> usize {
        self.exported.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exported.is_empty()
    }

    pub fn insert(&mut self, id: &str) {
        self.exported.insert(id.to_string());
    }

    /// Forgets the ids `keep` refuses (reports the store no longer holds).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.exported.retain(|id| keep(id));
    }

    /// The file's contents.
    pub fn encode(&self) -> Vec<u8> {
        let mut exported: Vec<String> = self.exported.iter().cloned().collect();
        exported.sort_unstable();
        serde_json::to_vec(&OnDisk {
            version: VERSION,
            exported,
        })
        .unwrap_or_default()
    }
}

/// Writes `bytes` (from [`Cursor::encode`]) as the cursor of `dir`, atomically and durably.
pub fn write(dir: &Path, bytes: &[u8]) -> Result<(), CursorError> {
    let path = Cursor::path(dir);
    // The store's temporary prefix: a write interrupted by `kill -9` is removed at the next open.
    let tmp = dir.join(format!(
        "{}otlp-cursor-{}",
        crate::store::TMP_PREFIX,
        std::process::id()
    ));
    let written = (|| {
        let werr = |source| CursorError::Write {
            path: tmp.clone(),
            source,
        };
        let mut f = File::create(&tmp).map_err(werr)?;
        f.write_all(bytes).map_err(werr)?;
        f.sync_all().map_err(werr)?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|source| CursorError::Write {
            path: path.clone(),
            source,
        })
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
        return written;
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| CursorError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Retention, Store};

    #[test]
    fn a_missing_cursor_is_empty_and_a_written_one_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cursor::load(dir.path()).unwrap();
        assert!(c.is_empty());
        c.insert("3b26e83de66231393e30");
        c.insert("00aa");
        write(dir.path(), &c.encode()).unwrap();
        let back = Cursor::load(dir.path()).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back.contains("00aa") && back.contains("3b26e83de66231393e30"));
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [FILE]);
    }

    #[test]
    fn retain_forgets_reports_the_store_dropped() {
        let mut c = Cursor::default();
        for id in ["01", "02", "03"] {
            c.insert(id);
        }
        c.retain(|id| id != "02");
        assert!(c.contains("01") && !c.contains("02") && c.contains("03"));
    }

    #[test]
    fn a_corrupt_cursor_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (bytes, says) in [
            (&b"{not json"[..], "not an export cursor"),
            (br#"{"version":9,"exported":[]}"#, "version 9"),
            (br#"{"version":1,"exported":["../etc"]}"#, "not a report id"),
        ] {
            fs::write(Cursor::path(dir.path()), bytes).unwrap();
            let e = Cursor::load(dir.path()).unwrap_err().to_string();
            assert!(e.contains(FILE) && e.contains(says), "{e}");
        }
    }

    #[test]
    fn the_store_does_not_count_the_cursor_as_a_foreign_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &Cursor::default().encode()).unwrap();
        // A write interrupted before its rename.
        fs::write(dir.path().join(".tmp-otlp-cursor-1"), b"{").unwrap();
        let retention = Retention {
            max_reports: 10,
            max_bytes: 1 << 20,
        };
        let (_store, skipped) = Store::open(dir.path(), retention).unwrap();
        assert_eq!(skipped, 0);
        assert!(!dir.path().join(".tmp-otlp-cursor-1").exists());
        assert!(Cursor::path(dir.path()).exists());
    }
}
