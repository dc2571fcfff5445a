//! The wording the rules share, so that every cause says the same things the same way: the
//! evidence (each fact with the report field it comes from), the start of a summary ("Exited 1
//! after 2 ms"), why there is no syscall data, and how a syscall, its path or a count is written.
//! What a rule concludes stays in its own file.

use super::facts::Facts;
use crate::model::{Cause, Confidence, Diagnosis, Evidence, SyscallEvent};
use crate::units::duration_ms as duration;

pub(super) fn ev(fact: impl Into<String>, field: &str) -> Evidence {
    Evidence {
        fact: fact.into(),
        field: field.to_string(),
    }
}

/// The key lines of the post-mortem files the runtime wrote (`erl_crash.dump`'s slogan,
/// `hs_err`'s signal and problematic frame, ...), quoted with the file they come from.
pub(super) fn artifact_evidence(r: &crate::model::CrashReport) -> Vec<Evidence> {
    let Some(a) = &r.artifacts else {
        return Vec::new();
    };
    a.files
        .iter()
        .enumerate()
        .flat_map(|(i, f)| {
            f.key_lines.iter().enumerate().map(move |(j, k)| {
                let what = match k.label.as_str() {
                    "slogan" => "Slogan".to_string(),
                    "system_version" => "System version".to_string(),
                    "problematic_frame" => "problematic frame".to_string(),
                    "jre_version" => "JRE version".to_string(),
                    other => other.replace('_', " "),
                };
                ev(
                    format!("`{}` says {what}: `{}`", f.name, k.text),
                    &format!("/artifacts/files/{i}/key_lines/{j}/text"),
                )
            })
        })
        .collect()
}

pub(super) fn diagnosis(
    cause: Cause,
    confidence: Confidence,
    summary: String,
    evidence: Vec<Evidence>,
    key: Option<String>,
) -> Diagnosis {
    Diagnosis {
        cause,
        confidence,
        summary,
        evidence,
        key,
        statement: None,
        advice: None,
    }
}

impl Facts<'_> {
    /// "after 1.2 s", or "" when the start is unknown.
    pub(super) fn after(&self) -> String {
        self.r
            .lifecycle
            .runtime_ms
            .map(|ms| format!(" after {}", duration(ms)))
            .unwrap_or_default()
    }

    pub(super) fn exited(&self) -> String {
        format!("Exited {}{}", self.r.exit.code, self.after())
    }

    pub(super) fn exit_evidence(&self) -> Evidence {
        let e = &self.r.exit;
        match &e.signal_name {
            Some(sig) => ev(
                format!("the init process died of {sig}"),
                "/exit/signal_name",
            ),
            None => ev(format!("the init process exited {}", e.code), "/exit/code"),
        }
    }

    /// The failing call that explains the exit, the exit itself, and what the program said.
    pub(super) fn failure_evidence(&self, field: &str, e: &SyscallEvent) -> Vec<Evidence> {
        let errno = e.errno.as_deref().unwrap_or_default();
        let mut evidence = vec![
            ev(format!("{} = {errno}", call(e)), field),
            self.exit_evidence(),
        ];
        evidence.extend(self.last_output_line());
        evidence
    }

    /// The last line the workload wrote to stderr (else stdout), as the recorder captured it.
    pub(super) fn last_output_line(&self) -> Option<Evidence> {
        let out = self.rec?.output.as_ref()?;
        for (name, s) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
            let text = if s.tail.is_empty() { &s.head } else { &s.tail };
            if let Some(line) = text.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
                let field = if s.tail.is_empty() { "head" } else { "tail" };
                return Some(ev(
                    format!("last line on {name}: {}", clip(line, 160)),
                    &format!("/recorder/output/{name}/{field}"),
                ));
            }
        }
        None
    }

    /// Why there is no syscall data, for a low-confidence summary.
    pub(super) fn no_data_reason(&self) -> String {
        match &self.r.recorder {
            None => "the flight recorder did not exist when this report was written".to_string(),
            Some(rec) => match &rec.reason {
                Some(reason) => reason.clone(),
                None => format!("recorder state {:?}", rec.state).to_lowercase(),
            },
        }
    }
}

/// The argument that says what a syscall was about: a path, an address, a file behind an fd.
pub(super) fn main_arg(e: &SyscallEvent) -> String {
    let at = |i: usize| e.args.get(i).map(String::as_str).unwrap_or_default();
    let raw = match e.syscall.as_str() {
        "bind" | "connect" => at(1),
        "sendto" => at(4),
        _ => e
            .args
            .iter()
            .find(|a| a.starts_with('"'))
            .or_else(|| e.args.iter().find(|a| a.contains('<')))
            .or(e.args.first())
            .map(String::as_str)
            .unwrap_or_default(),
    };
    let raw = if raw.contains('<') {
        fd_path(raw)
    } else {
        raw.to_string()
    };
    unquote(&raw)
}

/// `execve("/app/bin/start")`, `bind(0.0.0.0:9443)`, `flock(/data/db/mongod.lock)`.
pub(super) fn call(e: &SyscallEvent) -> String {
    let arg = e
        .args
        .iter()
        .find(|a| a.starts_with('"'))
        .cloned()
        .unwrap_or_else(|| main_arg(e));
    format!("{}({arg})", e.syscall)
}

/// `3</data/db/mongod.lock>` -> `/data/db/mongod.lock`; anything else unchanged.
pub(super) fn fd_path(arg: &str) -> String {
    match (arg.find('<'), arg.rfind('>')) {
        (Some(a), Some(b)) if b > a => arg[a + 1..b].to_string(),
        _ => arg.to_string(),
    }
}

/// `1 OOM kill`, `3 OOM kills`.
pub(super) fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
}

pub(super) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}
