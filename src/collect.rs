//! Joins an exit with what was recorded about the container into one [`CrashReport`].
//!
//! Pure: the agent gathers the inputs (event, enrichment, cgroup figures read at exit) and this
//! file decides what the report says, including what is withheld for secrecy.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::model::{
    report_id, AgentInfo, CgroupReport, CgroupUsage, CgroupVersion, CollectionError, ContainerInfo,
    CrashReport, ExitStatus, Lifecycle, OomInfo, Outcome, SCHEMA_VERSION,
};
use crate::redact::redact_args;
use crate::registry::Enriched;

/// What may leave the node in a report.
#[derive(Debug, Clone, Default)]
pub struct Redaction {
    /// Environment variables whose values may be stored.
    pub env_allow: BTreeSet<String>,
    /// Keep arguments as they are (credential-looking values are redacted otherwise).
    pub keep_args: bool,
}

/// The exit as containerd reported it.
#[derive(Debug, Clone)]
pub struct ExitEvent {
    pub namespace: String,
    pub container_id: String,
    pub pid: u32,
    pub exit_status: u32,
    pub exited_at: DateTime<Utc>,
}

/// Everything known when the report is written.
pub struct Inputs<'a> {
    pub exit: &'a ExitEvent,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub enriched: &'a Enriched,
    pub cgroup_version: Option<CgroupVersion>,
    pub usage: Option<CgroupUsage>,
    pub oom_events: u32,
    pub recovered: bool,
    /// Errors met at exit time (e.g. the cgroup was already gone).
    pub errors: Vec<CollectionError>,
    pub agent: AgentInfo,
    pub reported_at: DateTime<Utc>,
}

pub fn build(inputs: Inputs<'_>, redaction: &Redaction) -> CrashReport {
    let Inputs {
        exit,
        created_at,
        started_at,
        enriched,
        cgroup_version,
        usage,
        oom_events,
        recovered,
        errors,
        agent,
        reported_at,
    } = inputs;
    let meta = enriched.meta.as_ref();
    let status = ExitStatus::from_containerd(exit.exit_status);
    let oom_kills = usage.as_ref().and_then(|u| u.oom_kill_count);
    let oom = OomInfo {
        killed: oom_events > 0 || oom_kills.is_some_and(|k| k > 0),
        events: oom_events,
        kills: oom_kills,
    };
    let started = started_at
        .or(created_at)
        .or(meta.and_then(|m| m.created_at));
    // containerd stamps the start event when it publishes it, which for a process that exits at
    // once can be after the exit itself: such a run lasted no measurable time, not "unknown".
    let runtime_ms = started.map(|s| (exit.exited_at - s).num_milliseconds().max(0) as u64);

    let (env_keys, env_values) = match meta {
        Some(m) => {
            let keys = m.env.iter().map(|(k, _)| k.clone()).collect();
            let values = m
                .env
                .iter()
                .filter(|(k, _)| redaction.env_allow.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (keys, values)
        }
        None => (Vec::new(), BTreeMap::new()),
    };
    let command = meta
        .map(|m| {
            if redaction.keep_args {
                m.command.clone()
            } else {
                redact_args(&m.command)
            }
        })
        .unwrap_or_default();
    let labels = meta.map(|m| m.labels.clone()).unwrap_or_default();

    let mut collection_errors = enriched.errors.clone();
    collection_errors.extend(errors);

    CrashReport {
        schema_version: SCHEMA_VERSION,
        id: report_id(&exit.namespace, &exit.container_id, exit.pid),
        outcome: if status.is_success() {
            Outcome::Completed
        } else {
            Outcome::Crashed
        },
        container: ContainerInfo {
            namespace: exit.namespace.clone(),
            id: exit.container_id.clone(),
            image: meta.and_then(|m| m.image.clone()),
            image_digest: enriched.image_digest.clone(),
            image_id: meta.and_then(|m| m.image_id.clone()),
            runtime: meta.and_then(|m| m.runtime.clone()),
            pid: exit.pid,
            command,
            cwd: meta.and_then(|m| m.cwd.clone()),
            user: meta.and_then(|m| m.user.clone()),
            env_keys,
            env_values,
            labels,
        },
        kubernetes: meta.and_then(|m| m.kubernetes.clone()),
        lifecycle: Lifecycle {
            created_at: created_at.or(meta.and_then(|m| m.created_at)),
            started_at,
            exited_at: exit.exited_at,
            runtime_ms,
            reported_at,
        },
        exit: status,
        oom,
        cgroup: CgroupReport {
            version: cgroup_version,
            path: enriched.cgroup_path.clone(),
            limits: enriched.limits.clone(),
            usage,
        },
        recovered,
        collection_errors,
        agent,
        recorder: None,
        diagnosis: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerd::ContainerMeta;

    fn exit(status: u32) -> ExitEvent {
        ExitEvent {
            namespace: "k8s.io".into(),
            container_id: "abc".into(),
            pid: 4242,
            exit_status: status,
            exited_at: DateTime::from_timestamp(1_700_000_010, 0).unwrap(),
        }
    }

    fn enriched() -> Enriched {
        Enriched {
            meta: Some(ContainerMeta {
                id: "abc".into(),
                command: vec!["app".into(), "--db-password=hunter2".into()],
                env: vec![
                    ("PATH".into(), "/bin".into()),
                    ("DB_PASSWORD".into(), "hunter2".into()),
                ],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn inputs<'a>(
        exit: &'a ExitEvent,
        enriched: &'a Enriched,
        usage: Option<CgroupUsage>,
        oom_events: u32,
    ) -> Inputs<'a> {
        Inputs {
            exit,
            created_at: None,
            started_at: DateTime::from_timestamp(1_700_000_009, 500_000_000),
            enriched,
            cgroup_version: Some(CgroupVersion::V1),
            usage,
            oom_events,
            recovered: false,
            errors: vec![],
            agent: AgentInfo::default(),
            reported_at: Utc::now(),
        }
    }

    #[test]
    fn env_values_are_withheld_unless_allow_listed() {
        let (e, en) = (exit(1), enriched());
        let r = build(inputs(&e, &en, None, 0), &Redaction::default());
        assert_eq!(r.container.env_keys, ["PATH", "DB_PASSWORD"]);
        assert!(r.container.env_values.is_empty());
        assert!(!serde_json::to_string(&r).unwrap().contains("hunter2"));
        let allow = Redaction {
            env_allow: ["PATH".to_string()].into(),
            keep_args: false,
        };
        let r = build(inputs(&e, &en, None, 0), &allow);
        assert_eq!(
            r.container.env_values.get("PATH").map(String::as_str),
            Some("/bin")
        );
    }

    #[test]
    fn exit_137_without_oom_evidence_is_not_an_oom_kill() {
        let (e, en) = (exit(137), enriched());
        let usage = CgroupUsage {
            oom_kill_count: Some(0),
            ..Default::default()
        };
        let r = build(inputs(&e, &en, Some(usage), 0), &Redaction::default());
        assert!(!r.oom.killed);
        assert_eq!(r.exit.signal_name.as_deref(), Some("SIGKILL"));
        assert_eq!(r.outcome, Outcome::Crashed);
    }

    #[test]
    fn cgroup_oom_kill_counter_is_oom_evidence_even_without_events() {
        let (e, en) = (exit(137), enriched());
        let usage = CgroupUsage {
            oom_kill_count: Some(1),
            ..Default::default()
        };
        let r = build(inputs(&e, &en, Some(usage), 0), &Redaction::default());
        assert!(r.oom.killed);
        assert_eq!(r.oom.kills, Some(1));
    }

    #[test]
    fn start_event_stamped_after_the_exit_is_a_zero_runtime_not_an_unknown_one() {
        let (e, en) = (exit(2), enriched());
        let mut i = inputs(&e, &en, None, 0);
        i.started_at = Some(e.exited_at + chrono::Duration::microseconds(300));
        let r = build(i, &Redaction::default());
        assert_eq!(r.lifecycle.runtime_ms, Some(0));
    }

    #[test]
    fn clean_exit_is_completed_with_runtime() {
        let (e, en) = (exit(0), enriched());
        let r = build(inputs(&e, &en, None, 0), &Redaction::default());
        assert_eq!(r.outcome, Outcome::Completed);
        assert_eq!(r.lifecycle.runtime_ms, Some(500));
        assert_eq!(r.id, report_id("k8s.io", "abc", 4242));
    }
}
