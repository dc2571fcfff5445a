//! The optional bearer token of the API listener (`--api-token-file`).
//!
//! The token is read from its file at start and again whenever the file's identity or mtime
//! changes (a mounted Secret is replaced by a symlink swap), so a rotated token takes effect
//! without a restart. If the file becomes unreadable or empty, the last good token stays in
//! force: the API never opens because a Secret went missing. Tokens are compared by their
//! SHA-256 digests in constant time. The metrics listener never asks for it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use tracing::warn;

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no token (empty or only whitespace)")]
    Empty { path: PathBuf },
    #[error("{path}: a bearer token is one line of visible ASCII (RFC 6750), without spaces")]
    NotVisibleAscii { path: PathBuf },
}

impl TokenError {
    pub fn label(&self) -> &'static str {
        match self {
            TokenError::Read { .. } => "token_read",
            TokenError::Empty { .. } => "token_empty",
            TokenError::NotVisibleAscii { .. } => "token_invalid",
        }
    }
}

/// The token in `path`, without surrounding whitespace (a trailing newline is usual).
pub fn read_token(path: &Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_path_buf(),
        });
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::NotVisibleAscii {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_string())
}

/// What identifies one version of the file: a replaced file has another inode or mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: m.modified().ok(),
    })
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// The API's bearer token, re-read when its file changes.
pub struct ApiToken {
    path: PathBuf,
    current: Mutex<(Option<Stamp>, [u8; 32])>,
}

impl ApiToken {
    pub fn load(path: &Path) -> Result<ApiToken, TokenError> {
        let before = stamp(path);
        let token = read_token(path)?;
        Ok(ApiToken {
            path: path.to_path_buf(),
            current: Mutex::new((before, digest(token.as_bytes()))),
        })
    }

    /// The digest of the token in force, after re-reading a changed file.
    fn expected(&self) -> [u8; 32] {
        let now = stamp(&self.path);
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if now.is_some() && now != current.0 {
            match read_token(&self.path) {
                Ok(token) => *current = (now, digest(token.as_bytes())),
                Err(e) => {
                    // Remember the stamp so the warning is logged once per change.
                    current.0 = now;
                    warn!(error = %e, "API token file changed but is unusable; the previous token stays in force");
                }
            }
        }
        current.1
    }

    /// Whether the request carries `Authorization: Bearer <the token>`.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
        else {
            return false;
        };
        constant_time_eq(&digest(given.as_bytes()), &self.expected())
    }
}

/// The credentials of a `Bearer` authorization (the scheme is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Equal digests, in time independent of where they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn only_the_token_in_the_file_is_accepted_and_a_rotation_takes_effect() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-token\n").unwrap();
        let t = ApiToken::load(&path).unwrap();
        assert!(t.accepts(&with_auth("Bearer s3cret-token")));
        assert!(t.accepts(&with_auth("bearer  s3cret-token ")));
        assert!(!t.accepts(&with_auth("Bearer s3cret-tokem")));
        assert!(!t.accepts(&with_auth("Basic s3cret-token")));
        assert!(!t.accepts(&with_auth("Bearer")));
        assert!(!t.accepts(&HeaderMap::new()));

        // A Secret update: a new file renamed over the old one.
        let next = dir.path().join("token.new");
        std::fs::write(&next, "rotated\n").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert!(t.accepts(&with_auth("Bearer rotated")));
        assert!(!t.accepts(&with_auth("Bearer s3cret-token")));

        // Gone or emptied: the last good token stays.
        std::fs::write(&next, "  \n").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert!(t.accepts(&with_auth("Bearer rotated")));
        std::fs::remove_file(&path).unwrap();
        assert!(t.accepts(&with_auth("Bearer rotated")));
    }

    #[test]
    fn unusable_token_files_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = read_token(&missing).unwrap_err();
        assert_eq!(e.label(), "token_read");
        assert!(e.to_string().contains("missing"), "{e}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert_eq!(read_token(&empty).unwrap_err().label(), "token_empty");
        let spaced = dir.path().join("spaced");
        std::fs::write(&spaced, "two words").unwrap();
        assert_eq!(read_token(&spaced).unwrap_err().label(), "token_invalid");
    }
}
