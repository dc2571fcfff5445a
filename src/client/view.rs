//! What the client shows of the agent's JSON: lenient mirrors of the summaries and groups, and
//! their table rows and watch lines. Pure.
//!
//! The client reads its own structs rather than [`crate::model`]'s so that a client older than
//! the agent still lists reports whose `cause` is a value it does not know yet (the vocabulary
//! grows), and ignores fields added later. A unit test checks they read what the model writes.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::table::{sanitize, Column};
use crate::units::short_age;

/// The fields of a crash summary (`/api/v1/crashes` items, `crash` events) the client shows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Crash {
    pub id: String,
    pub exited_at: DateTime<Utc>,
    pub namespace: String,
    #[serde(default)]
    pub pod: Option<String>,
    pub container: String,
    pub exit_code: u32,
    #[serde(default)]
    pub signal_name: Option<String>,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub attempt: Option<u32>,
    #[serde(default)]
    pub cause: Option<String>,
    #[serde(default)]
    pub diagnosis: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Workload {
    pub namespace: String,
    #[serde(default)]
    pub owner: Option<String>,
    pub container: String,
}

/// The fields of a crash group (`/api/v1/groups` items) the client shows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Group {
    pub id: String,
    pub workload: Workload,
    pub cause: String,
    pub summary: String,
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub latest_report_id: String,
    #[serde(default)]
    pub cause_changed: bool,
    #[serde(default)]
    pub previous_cause: Option<String>,
    #[serde(default)]
    pub current: bool,
}

pub const CRASH_COLUMNS: [Column; 8] = [
    Column::new("AGE"),
    Column::new("NAMESPACE"),
    Column::new("POD"),
    Column::new("CONTAINER"),
    Column::keep("EXIT"),
    Column::keep("CAUSE"),
    Column::keep("ID"),
    Column::new("DIAGNOSIS"),
];

pub const GROUP_COLUMNS: [Column; 10] = [
    Column::new("LAST"),
    Column::new("FIRST"),
    Column::keep("COUNT"),
    Column::new("NAMESPACE"),
    Column::new("WORKLOAD"),
    Column::new("CONTAINER"),
    Column::keep("CAUSE"),
    Column::new("STATUS"),
    Column::keep("LATEST REPORT"),
    Column::new("SUMMARY"),
];

const NONE: &str = "-";

/// `1`, `137/SIGKILL`, `137/SIGKILL OOM`.
pub fn exit(c: &Crash) -> String {
    let mut s = match &c.signal_name {
        Some(sig) => format!("{}/{sig}", c.exit_code),
        None => c.exit_code.to_string(),
    };
    if c.oom_killed {
        s.push_str(" OOM");
    }
    s
}

pub fn crash_row(c: &Crash, now: DateTime<Utc>) -> Vec<String> {
    vec![
        short_age(c.exited_at, now),
        c.namespace.clone(),
        c.pod.clone().unwrap_or_else(|| NONE.into()),
        c.container.clone(),
        exit(c),
        c.cause.clone().unwrap_or_else(|| NONE.into()),
        c.id.clone(),
        c.diagnosis.clone().unwrap_or_default(),
    ]
}

/// Whether the loop is still on this cause, and whether it changed.
pub fn group_status(g: &Group) -> String {
    match (g.current, g.cause_changed, &g.previous_cause) {
        (true, _, Some(prev)) => format!("current (was {prev})"),
        (true, true, None) => "current (cause changed)".into(),
        (true, false, None) => "current".into(),
        (false, _, _) => "past (cause changed)".into(),
    }
}

pub fn group_row(g: &Group, now: DateTime<Utc>) -> Vec<String> {
    vec![
        short_age(g.last_seen, now),
        short_age(g.first_seen, now),
        g.count.to_string(),
        g.workload.namespace.clone(),
        g.workload.owner.clone().unwrap_or_else(|| NONE.into()),
        g.workload.container.clone(),
        g.cause.clone(),
        group_status(g),
        g.latest_report_id.clone(),
        g.summary.clone(),
    ]
}

/// One line per crash for `watch`: the exit time instead of an age, the same fields otherwise.
pub fn watch_line(c: &Crash) -> String {
    let line = [
        c.exited_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        c.namespace.clone(),
        c.pod.clone().unwrap_or_else(|| NONE.into()),
        c.container.clone(),
        exit(c),
        c.cause.clone().unwrap_or_else(|| NONE.into()),
        c.id.clone(),
        c.diagnosis.clone().unwrap_or_default(),
    ]
    .join("  ");
    sanitize(line.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cause, CrashGroup, CrashSummary, Outcome};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn summary() -> CrashSummary {
        CrashSummary {
            id: "0f3a9c2e11d4b5a6c7d8".into(),
            outcome: Outcome::Crashed,
            exited_at: t("2026-11-22T10:00:00Z"),
            namespace: "edge".into(),
            pod: Some("gateway-7d9f8b6c5d-x2x9q".into()),
            container: "beam".into(),
            container_id: "c0ffee".into(),
            image: Some("busybox".into()),
            exit_code: 137,
            signal_name: Some("SIGKILL".into()),
            oom_killed: true,
            attempt: Some(2),
            recovered: false,
            cause: Some(Cause::OomKilled),
            diagnosis: Some("the kernel OOM killer killed tail".into()),
            key: None,
            group_id: Some("abcd".into()),
        }
    }

    #[test]
    fn reads_what_the_agent_writes() {
        let json = serde_json::to_value(summary()).unwrap();
        let c: Crash = serde_json::from_value(json).unwrap();
        assert_eq!(c.cause.as_deref(), Some("oom_killed"));
        assert_eq!(c.attempt, Some(2));
        let g = CrashGroup {
            id: "abcd".into(),
            workload: crate::model::Workload {
                namespace: "edge".into(),
                owner: Some("gateway".into()),
                container: "beam".into(),
            },
            cause: Cause::OomKilled,
            key: None,
            summary: "OOM".into(),
            count: 3,
            first_seen: t("2026-11-22T09:00:00Z"),
            last_seen: t("2026-11-22T10:00:00Z"),
            latest_report_id: "0f3a".into(),
            report_ids: vec!["0f3a".into()],
            pods: vec!["gateway-7d9f8b6c5d-x2x9q".into()],
            cause_changed: true,
            previous_cause: Some(Cause::LockHeld),
            current: true,
        };
        let g: Group = serde_json::from_value(serde_json::to_value(g).unwrap()).unwrap();
        assert_eq!(g.workload.owner.as_deref(), Some("gateway"));
        assert_eq!(group_status(&g), "current (was lock_held)");
    }

    #[test]
    fn a_cause_this_client_does_not_know_is_still_listed() {
        let mut json = serde_json::to_value(summary()).unwrap();
        json["cause"] = "seccomp_denied".into();
        json["added_later"] = 1.into();
        let c: Crash = serde_json::from_value(json).unwrap();
        assert_eq!(c.cause.as_deref(), Some("seccomp_denied"));
    }

    #[test]
    fn exit_shows_code_signal_and_oom() {
        let mut c: Crash =
            serde_json::from_value(serde_json::to_value(summary()).unwrap()).unwrap();
        assert_eq!(exit(&c), "137/SIGKILL OOM");
        c.oom_killed = false;
        c.signal_name = None;
        c.exit_code = 1;
        assert_eq!(exit(&c), "1");
    }

    #[test]
    fn rows_and_watch_lines_carry_id_cause_and_diagnosis() {
        let c: Crash = serde_json::from_value(serde_json::to_value(summary()).unwrap()).unwrap();
        let row = crash_row(&c, t("2026-11-22T10:05:00Z"));
        assert_eq!(row.len(), CRASH_COLUMNS.len());
        assert_eq!(row[0], "5m");
        assert_eq!(row[5], "oom_killed");
        assert_eq!(row[6], c.id);
        assert_eq!(
            watch_line(&c),
            "2026-11-22T10:00:00Z  edge  gateway-7d9f8b6c5d-x2x9q  beam  137/SIGKILL OOM  \
             oom_killed  0f3a9c2e11d4b5a6c7d8  the kernel OOM killer killed tail"
        );
    }

    #[test]
    fn a_watch_line_cannot_carry_terminal_escapes() {
        let mut c: Crash =
            serde_json::from_value(serde_json::to_value(summary()).unwrap()).unwrap();
        c.diagnosis = Some("boom\u{1b}]0;pwned\u{7}\nnext".into());
        let line = watch_line(&c);
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }
}
