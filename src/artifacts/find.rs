//! Which files to look for (pure): the runtimes' known post-mortem files around the working
//! directory, and the paths a crash message names in the captured output.

use std::sync::LazyLock;

use regex::Regex;

use crate::model::ArtifactKind;

/// Paths taken from one output at most.
const MAX_NAMED: usize = 8;

/// What the container's spec says about where its runtime writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The process's working directory (`/` when unset).
    pub cwd: String,
    /// `$ERL_CRASH_DUMP`, when the container sets it.
    pub erl_crash_dump: Option<String>,
    /// Paths named in the captured output, as written there.
    pub named: Vec<String>,
}

impl Plan {
    /// From the working directory and environment of the container's process.
    pub fn new<'a>(cwd: Option<&str>, env: impl IntoIterator<Item = (&'a str, &'a str)>) -> Plan {
        let erl_crash_dump = env
            .into_iter()
            .find(|(k, _)| *k == "ERL_CRASH_DUMP")
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty());
        Plan {
            cwd: cwd
                .filter(|c| c.starts_with('/'))
                .unwrap_or("/")
                .to_string(),
            erl_crash_dump,
            named: Vec::new(),
        }
    }

    /// From an OCI spec (`process.cwd`, `process.env`).
    pub fn from_spec(spec: &serde_json::Value) -> Plan {
        let env = spec["process"]["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str()?.split_once('='));
        Plan::new(spec["process"]["cwd"].as_str(), env)
    }

    /// `path` made absolute against the working directory.
    pub fn absolute(&self, path: &str) -> String {
        if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{}/{}", self.cwd.trim_end_matches('/'), path)
        }
    }

    /// The fixed candidates: files whose name is known in advance.
    pub fn fixed(&self) -> Vec<(String, ArtifactKind)> {
        let dump = self.erl_crash_dump.as_deref().unwrap_or("erl_crash.dump");
        vec![(self.absolute(dump), ArtifactKind::ErlangCrashDump)]
    }

    /// Directories to list for files whose name holds a pid.
    pub fn listed_dirs(&self) -> Vec<String> {
        let mut dirs = vec![self.cwd.clone()];
        if self.cwd.trim_end_matches('/') != "/tmp" {
            dirs.push("/tmp".to_string());
        }
        dirs
    }
}

/// The kind of a file found by listing `dir`, if it is a known post-mortem file.
pub fn kind_of_listed(dir: &str, name: &str, cwd: &str) -> Option<ArtifactKind> {
    static HS_ERR: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^hs_err_pid\d+\.log$").expect("valid regex"));
    static HPROF: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^java_pid\d+\.hprof$").expect("valid regex"));
    static CORE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^core(\.\d+)?$").expect("valid regex"));
    let in_cwd = dir.trim_end_matches('/') == cwd.trim_end_matches('/');
    if HS_ERR.is_match(name) {
        Some(ArtifactKind::JvmErrorLog)
    } else if HPROF.is_match(name) && in_cwd {
        Some(ArtifactKind::JvmHeapDump)
    } else if CORE.is_match(name) && in_cwd {
        Some(ArtifactKind::Core)
    } else {
        None
    }
}

/// The kind of a file a message named, from its name.
pub fn kind_of_named(path: &str) -> ArtifactKind {
    let name = path.rsplit('/').next().unwrap_or(path);
    kind_of_listed("/", name, "/")
        .or_else(|| (name == "erl_crash.dump").then_some(ArtifactKind::ErlangCrashDump))
        .or_else(|| {
            name.ends_with(".hprof")
                .then_some(ArtifactKind::JvmHeapDump)
        })
        .unwrap_or(ArtifactKind::NamedInOutput)
}

/// Paths a crash message says it wrote: the BEAM's "Crash dump is being written to: X...done",
/// the JVM's "An error report file ... is saved as:\n# X" and "Dumping heap to X ...", and the
/// generic "written to X" / "saved as X" / "dumped to X". At most [`MAX_NAMED`], first first.
pub fn named_paths(output: &str) -> Vec<String> {
    static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
        [
            r"Crash dump is being written to: ([^\s]+?)(?:\.\.\.|\s|$)",
            r"(?m)is saved as:\s*\n#\s*(\S+)",
            r"Dumping heap to (\S+)",
            r"(?i)\b(?:written|saved|dumped|wrote)\s+(?:to|as|in)[:\s]+(\S+)",
        ]
        .iter()
        .map(|p| Regex::new(p).expect("valid regex"))
        .collect()
    });
    let mut found: Vec<(usize, String)> = Vec::new();
    for re in PATTERNS.iter() {
        for c in re.captures_iter(output) {
            let Some(m) = c.get(1) else { continue };
            let path = clean(m.as_str());
            if plausible(&path) && !found.iter().any(|(_, p)| *p == path) {
                found.push((m.start(), path));
            }
        }
    }
    found.sort();
    found.into_iter().map(|(_, p)| p).take(MAX_NAMED).collect()
}

/// Strips the quotes and punctuation messages put around a path.
fn clean(raw: &str) -> String {
    let s = raw.trim_matches(|c: char| matches!(c, '"' | '\'' | '`' | '(' | ')' | '[' | ']' | ','));
    // "erl_crash.dump...done": the path ends where the ellipsis starts.
    let s = s.split("...").next().unwrap_or_default();
    let s = s.trim_end_matches(['.', ':', ';']);
    s.trim_matches(|c: char| matches!(c, '"' | '\'' | '`'))
        .to_string()
}

/// A file path, not a URL, a number or a sentence fragment.
fn plausible(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 4096
        && !path.contains("://")
        && !path.contains('\0')
        && (path.contains('/') || path.contains('.'))
        && path.chars().any(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_beam_names_its_crash_dump() {
        let out = "Kernel pid terminated (application_controller)\n\nCrash dump is being written to: erl_crash.dump...done\n";
        assert_eq!(named_paths(out), ["erl_crash.dump"]);
        let out = "Crash dump is being written to: /var/log/app/dump.txt...";
        assert_eq!(named_paths(out), ["/var/log/app/dump.txt"]);
    }

    #[test]
    fn the_jvm_names_its_error_log_and_heap_dump() {
        let out = "#\n# An error report file with more information is saved as:\n# /tmp/hs_err_pid7.log\n#\n";
        assert_eq!(named_paths(out), ["/tmp/hs_err_pid7.log"]);
        let out = "java.lang.OutOfMemoryError: Java heap space\nDumping heap to java_pid1.hprof ...\nHeap dump file created";
        assert_eq!(named_paths(out), ["java_pid1.hprof"]);
        assert_eq!(kind_of_named("java_pid1.hprof"), ArtifactKind::JvmHeapDump);
        assert_eq!(
            kind_of_named("/tmp/hs_err_pid7.log"),
            ArtifactKind::JvmErrorLog
        );
        assert_eq!(kind_of_named("/data/x.txt"), ArtifactKind::NamedInOutput);
    }

    #[test]
    fn urls_and_words_are_not_paths() {
        assert!(named_paths("request saved to https://example.com/x").is_empty());
        assert!(named_paths("wrote to 42").is_empty());
        assert_eq!(
            named_paths("state saved to '/data/state.bin'."),
            ["/data/state.bin"]
        );
    }

    #[test]
    fn known_files_are_recognised_where_runtimes_write_them() {
        assert_eq!(
            kind_of_listed("/app", "hs_err_pid1.log", "/app"),
            Some(ArtifactKind::JvmErrorLog)
        );
        assert_eq!(
            kind_of_listed("/tmp", "hs_err_pid1.log", "/app"),
            Some(ArtifactKind::JvmErrorLog)
        );
        assert_eq!(
            kind_of_listed("/app", "core.12", "/app"),
            Some(ArtifactKind::Core)
        );
        assert_eq!(kind_of_listed("/tmp", "core", "/app"), None);
        assert_eq!(kind_of_listed("/app", "core.txt", "/app"), None);
    }

    #[test]
    fn the_plan_follows_cwd_and_erl_crash_dump() {
        let spec = serde_json::json!({"process": {"cwd": "/srv", "env": ["ERL_CRASH_DUMP=dumps/crash.dump", "X=1"]}});
        let plan = Plan::from_spec(&spec);
        assert_eq!(plan.fixed()[0].0, "/srv/dumps/crash.dump");
        assert_eq!(plan.listed_dirs(), ["/srv", "/tmp"]);
        let plan = Plan::new(None, []);
        assert_eq!(plan.fixed()[0].0, "/erl_crash.dump");
    }
}
