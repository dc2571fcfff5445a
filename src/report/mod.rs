//! The one place a report is made: [`build_report`] turns the inputs the agent gathered (the exit,
//! what enrichment learned, the cgroup figures read at exit, the flight recorder's drain) into the
//! finished [`CrashReport`], diagnosis included.
//!
//! Pure: no I/O, no clock, no metrics. Everything read from the node arrives in [`Inputs`]; what
//! the report withholds for secrecy is decided here too ([`Redaction`]).

pub mod artifacts;
mod image_tag;
mod inputs;
mod secrets;

pub use image_tag::{content as image_content, ImageLookup};
pub use inputs::{Enriched, ExitEvent, Inputs, Redaction};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::model::{
    report_id, CgroupReport, ContainerInfo, CrashReport, CriStatus, ExitStatus, ImageContent,
    Lifecycle, OomInfo, Outcome, UsageHistory, SCHEMA_VERSION,
};

/// The finished report of one exit. The exit status is the kernel's wait status when the recorder
/// saw init die (exact where containerd's number is ambiguous: `exit(137)` versus SIGKILL, and it
/// carries the core-dump flag), else containerd's.
pub fn build_report(inputs: Inputs<'_>, redaction: &Redaction) -> CrashReport {
    let Inputs {
        exit,
        created_at,
        started_at,
        enriched,
        cgroup_version,
        usage,
        usage_source,
        oom_events,
        recovered,
        errors,
        agent,
        reported_at,
        mut recorder,
        init_wait_status,
        cri,
        log_output,
        usage_history,
        artifacts,
        image_now,
    } = inputs;
    let meta = enriched.meta.as_ref();
    let killed_at = recorder
        .as_ref()
        .and_then(|r| r.oom_victim.as_ref())
        .map(|v| v.time);
    let lived_until = killed_at.into_iter().chain([exit.exited_at]).min();
    let status = match init_wait_status {
        Some(ws) => ExitStatus {
            status: exit.exit_status,
            ..ExitStatus::from_wait_status(ws)
        },
        None => ExitStatus::from_containerd(exit.exit_status),
    };
    let oom_kills = usage.as_ref().and_then(|u| u.oom_kill_count);
    // kubelet's `OOMKilled` is the CRI plugin's reading of containerd's OOM event: evidence too.
    let cri_oom = cri.is_some_and(|c| c.reason.as_deref() == Some("OOMKilled"));
    let oom = OomInfo {
        killed: oom_events > 0 || oom_kills.is_some_and(|k| k > 0) || cri_oom,
        events: oom_events,
        kills: oom_kills,
    };
    let created_at = created_at.or(cri.and_then(|c| c.created_at));
    let started_at = started_at.or(cri.and_then(|c| c.started_at));
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
    let command = meta.map(|m| m.command.clone()).unwrap_or_default();
    let labels = meta.map(|m| m.labels.clone()).unwrap_or_default();

    // What ran, as the agent resolved it at create (the digest alone from an older journal).
    let ran = enriched.image_ran.clone().or_else(|| {
        enriched.image_digest.clone().map(|d| ImageContent {
            digest: Some(d),
            ..Default::default()
        })
    });
    let mut collection_errors = enriched.errors.clone();
    collection_errors.extend(errors);

    if let (Some(r), Some(out)) = (recorder.as_mut(), log_output) {
        r.output.get_or_insert(out);
    }
    let mut report = CrashReport {
        schema_version: SCHEMA_VERSION,
        id: report_id(&exit.namespace, &exit.container_id, exit.exited_at),
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
            usage_source,
        },
        recovered,
        cri: cri.map(|c| CriStatus {
            reason: c.reason.clone(),
            message: c.message.clone(),
        }),
        collection_errors,
        agent,
        recorder,
        entrypoint: enriched.entrypoint.clone(),
        usage_history: usage_history.map(|h| lived_part(h, lived_until)),
        artifacts,
        image_tag: image_tag::image_tag(
            meta.and_then(|m| m.image.as_deref()),
            meta.and_then(|m| m.image_id.as_deref()),
            ran.as_ref(),
            image_now.as_ref(),
        ),
        diagnosis: None,
    };
    // Before diagnosis, which quotes output and arguments into the summary every view shows.
    secrets::withhold(&mut report, redaction);
    let mut diagnosis = crate::diagnose::diagnose(&report);
    if let Some(tag) = report.image_tag.as_ref().filter(|t| t.is_stale()) {
        crate::diagnose::stale_image::note(&mut diagnosis, tag);
    }
    report.diagnosis = Some(diagnosis);
    report
}

/// The samples taken before `end` (the OOM kill, else the exit): after the kernel's kill the
/// memory is freed while the task is still counted, and a plot would end near zero.
fn lived_part(mut h: UsageHistory, end: Option<DateTime<Utc>>) -> UsageHistory {
    if let Some(end) = end {
        let lived_ms = (end - h.started_at).num_milliseconds();
        h.samples.retain(|s| (s.t_ms as i64) < lived_ms);
    }
    h
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::containerd::ContainerMeta;
    use crate::model::{
        AgentInfo, CapturedOutput, CgroupUsage, CgroupVersion, ProcessEvent, ProcessEventKind,
        RecorderReport, RecorderState, StreamCapture, SyscallEvent,
    };
    use crate::redact::REDACTED;

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
            usage_source: None,
            oom_events,
            recovered: false,
            errors: vec![],
            agent: AgentInfo::default(),
            reported_at: Utc::now(),
            recorder: None,
            init_wait_status: None,
            cri: None,
            log_output: None,
            usage_history: None,
            artifacts: None,
            image_now: None,
        }
    }

    #[test]
    fn env_values_are_withheld_unless_allow_listed() {
        let (e, en) = (exit(1), enriched());
        let r = build_report(inputs(&e, &en, None, 0), &Redaction::default());
        assert_eq!(r.container.env_keys, ["PATH", "DB_PASSWORD"]);
        assert!(r.container.env_values.is_empty());
        assert!(!serde_json::to_string(&r).unwrap().contains("hunter2"));
        let allow = Redaction {
            env_allow: ["PATH".to_string()].into(),
            ..Redaction::default()
        };
        let r = build_report(inputs(&e, &en, None, 0), &allow);
        assert_eq!(
            r.container.env_values.get("PATH").map(String::as_str),
            Some("/bin")
        );
    }

    /// A container that was handed secrets every way there is and printed some of them.
    fn leaky() -> (Enriched, RecorderReport) {
        let at = DateTime::from_timestamp(1_700_000_009, 700_000_000).unwrap();
        let mut en = enriched();
        if let Some(m) = en.meta.as_mut() {
            m.command = vec![
                "sh".into(),
                "-c".into(),
                "mysql -pSQL-PW shop; curl -H 'Authorization: Bearer CURL-TOK' https://api".into(),
            ];
            m.labels = [
                ("db-password", "LABEL-PW"),
                ("backup", "postgres://app:URL-PW@db/prod"),
                ("team", "payments"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        }
        let rec = RecorderReport {
            state: RecorderState::Recorded,
            reason: None,
            gap: None,
            summary: vec![],
            setup_syscalls: 0,
            flight_recorder: vec![SyscallEvent {
                time: at,
                pid: 7,
                tid: 7,
                comm: "app".into(),
                syscall: "openat".into(),
                args: vec!["AT_FDCWD".into(), "\"/tmp/upload?token=PATH-PW\"".into()],
                ret: 3,
                errno: None,
            }],
            flight_recorder_overwritten: 0,
            first_failures: vec![],
            telling_failures: vec![],
            processes: vec![ProcessEvent {
                time: at,
                kind: ProcessEventKind::Exec,
                pid: 7,
                ppid: None,
                comm: "app".into(),
                filename: Some("/app".into()),
                argv: vec!["/app".into(), "--token".into(), "EXEC-TOK".into()],
                exit_code: None,
                signal: None,
                core_dumped: None,
            }],
            fatal_signal: None,
            oom_victim: None,
            output: Some(CapturedOutput {
                captured_by: "coroner".into(),
                stdout: StreamCapture::default(),
                stderr: StreamCapture {
                    total_bytes: 60,
                    head: "starting\nfatal: login refused, passwd: STDERR-PW\n".into(),
                    tail: String::new(),
                },
            }),
            crash_stack: None,
        };
        (en, rec)
    }

    const LEAKED: [&str; 7] = [
        "SQL-PW",
        "CURL-TOK",
        "LABEL-PW",
        "URL-PW",
        "PATH-PW",
        "EXEC-TOK",
        "STDERR-PW",
    ];

    #[test]
    fn no_secret_reaches_the_report_or_its_diagnosis() {
        let (e, (en, rec)) = (exit(1), leaky());
        let mut i = inputs(&e, &en, None, 0);
        i.recorder = Some(rec);
        let r = build_report(i, &Redaction::default());
        let json = serde_json::to_string(&r).unwrap();
        for secret in LEAKED {
            assert!(!json.contains(secret), "{secret} leaked: {json}");
        }
        assert_eq!(r.container.labels["team"], "payments");
        assert_eq!(r.container.labels["db-password"], REDACTED);
        let d = r.diagnosis.as_ref().unwrap();
        assert!(
            d.summary.contains("passwd: <redacted>"),
            "the summary quotes the redacted last line: {}",
            d.summary
        );
        assert!(!serde_json::to_string(&r.summary())
            .unwrap()
            .contains("STDERR-PW"));
    }

    #[test]
    fn each_kind_of_redaction_can_be_turned_off_alone() {
        let (e, (en, rec)) = (exit(1), leaky());
        let build = |redaction: Redaction| {
            let mut i = inputs(&e, &en, None, 0);
            i.recorder = Some(rec.clone());
            serde_json::to_string(&build_report(i, &redaction)).unwrap()
        };
        let args = build(Redaction {
            keep_args: true,
            ..Redaction::default()
        });
        let labels = build(Redaction {
            keep_labels: true,
            ..Redaction::default()
        });
        let output = build(Redaction {
            keep_output: true,
            ..Redaction::default()
        });
        let kept =
            |json: &str| -> Vec<&str> { LEAKED.into_iter().filter(|s| json.contains(s)).collect() };
        assert_eq!(kept(&args), ["SQL-PW", "CURL-TOK", "PATH-PW", "EXEC-TOK"]);
        assert_eq!(kept(&labels), ["LABEL-PW", "URL-PW"]);
        assert_eq!(kept(&output), ["STDERR-PW"]);
    }

    #[test]
    fn exit_137_without_oom_evidence_is_not_an_oom_kill() {
        let (e, en) = (exit(137), enriched());
        let usage = CgroupUsage {
            oom_kill_count: Some(0),
            ..Default::default()
        };
        let r = build_report(inputs(&e, &en, Some(usage), 0), &Redaction::default());
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
        let r = build_report(inputs(&e, &en, Some(usage), 0), &Redaction::default());
        assert!(r.oom.killed);
        assert_eq!(r.oom.kills, Some(1));
    }

    #[test]
    fn start_event_stamped_after_the_exit_is_a_zero_runtime_not_an_unknown_one() {
        let (e, en) = (exit(2), enriched());
        let mut i = inputs(&e, &en, None, 0);
        i.started_at = Some(e.exited_at + chrono::Duration::microseconds(300));
        let r = build_report(i, &Redaction::default());
        assert_eq!(r.lifecycle.runtime_ms, Some(0));
    }

    #[test]
    fn clean_exit_is_completed_with_runtime() {
        let (e, en) = (exit(0), enriched());
        let r = build_report(inputs(&e, &en, None, 0), &Redaction::default());
        assert_eq!(r.outcome, Outcome::Completed);
        assert_eq!(r.lifecycle.runtime_ms, Some(500));
        assert_eq!(r.id, report_id("k8s.io", "abc", e.exited_at));
    }

    #[test]
    fn the_history_ends_at_the_oom_kill_not_after_it() {
        use crate::model::{OomVictim, UsageSample};
        let (e, (en, mut rec)) = (exit(137), leaky());
        let mut i = inputs(&e, &en, None, 1);
        let died = e.exited_at;
        let sample = |t_ms, memory| UsageSample {
            t_ms,
            memory_bytes: Some(memory),
            cpu_usec: None,
            pids: Some(1),
        };
        // Sampled from 2 s before the exit; the kill 150 ms before it, and a sample between
        // (the memory freed, the task still counted) that is not the container's use.
        i.usage_history = Some(UsageHistory {
            started_at: died - chrono::Duration::milliseconds(2000),
            fine_interval_ms: 100,
            fine_for_ms: 5000,
            coarse_interval_ms: 1000,
            dropped: 0,
            samples: vec![
                sample(0, 1 << 20),
                sample(1800, 20 << 20),
                sample(1900, 1 << 18),
            ],
        });
        rec.oom_victim = Some(OomVictim {
            pid: 7,
            comm: "leak".into(),
            rss_bytes: 20 << 20,
            was_init: true,
            time: died - chrono::Duration::milliseconds(150),
        });
        i.recorder = Some(rec);
        let r = build_report(i, &Redaction::default());
        let kept: Vec<u64> = r
            .usage_history
            .unwrap()
            .samples
            .iter()
            .map(|s| s.t_ms)
            .collect();
        assert_eq!(kept, [0, 1800]);
    }
}
