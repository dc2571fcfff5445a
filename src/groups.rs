//! Crash-loop grouping: reports of one workload with the same cause and key evidence are one
//! group. Pure: summaries in, groups out; the store supplies the summaries.
//!
//! The workload is what survives a restart: the namespace, the pod's owner (the pod name without
//! the suffixes a ReplicaSet, Deployment, DaemonSet or Job generates) and the container name. A
//! signature adds the diagnosis' cause and key (`bind 0.0.0.0:9443 EADDRINUSE`), so a loop that
//! changes cause (OOM, then a lock held by the previous attempt) shows as two groups, each marked
//! `cause_changed`.

use std::collections::{BTreeMap, HashMap};

use crate::model::{summary_workload, CrashGroup, CrashSummary, Workload};

/// Reports listed per group, newest first.
pub const GROUP_REPORT_IDS: usize = 20;

/// Groups the crashed reports among `summaries` (any order), most recently seen group first.
/// Completed runs and reports without a diagnosis are left out.
pub fn group<'a>(summaries: impl IntoIterator<Item = &'a CrashSummary>) -> Vec<CrashGroup> {
    // Oldest first, so counts, first/last seen and "previous cause" fall out of one pass.
    let mut crashes: Vec<&CrashSummary> = summaries
        .into_iter()
        .filter(|s| s.outcome == crate::model::Outcome::Crashed)
        .filter(|s| s.cause.is_some() && s.group_id.is_some())
        .collect();
    crashes.sort_by(|a, b| (a.exited_at, &a.id).cmp(&(b.exited_at, &b.id)));

    let mut groups: BTreeMap<String, CrashGroup> = BTreeMap::new();
    // Per workload: the group of its latest crash so far, and every group it has had.
    let mut last_of_workload: HashMap<Workload, String> = HashMap::new();
    let mut groups_of_workload: HashMap<Workload, Vec<String>> = HashMap::new();
    for s in crashes {
        let (Some(cause), Some(id)) = (s.cause, s.group_id.clone()) else {
            continue;
        };
        let workload = summary_workload(s);
        let previous = last_of_workload.insert(workload.clone(), id.clone());
        let previous_cause = previous
            .filter(|p| *p != id)
            .and_then(|p| groups.get(&p))
            .map(|g| g.cause);
        let g = groups.entry(id.clone()).or_insert_with(|| CrashGroup {
            id: id.clone(),
            workload: workload.clone(),
            cause,
            key: s.key.clone(),
            summary: String::new(),
            count: 0,
            first_seen: s.exited_at,
            last_seen: s.exited_at,
            latest_report_id: s.id.clone(),
            report_ids: Vec::new(),
            pods: Vec::new(),
            cause_changed: false,
            previous_cause,
            current: false,
        });
        g.count += 1;
        g.last_seen = s.exited_at;
        g.latest_report_id = s.id.clone();
        g.summary = s.diagnosis.clone().unwrap_or_default();
        g.report_ids.insert(0, s.id.clone());
        g.report_ids.truncate(GROUP_REPORT_IDS);
        if let Some(pod) = &s.pod {
            if !g.pods.contains(pod) {
                g.pods.push(pod.clone());
            }
        }
        let seen = groups_of_workload.entry(workload).or_default();
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    for ids in groups_of_workload.values() {
        for id in ids {
            if let Some(g) = groups.get_mut(id) {
                g.cause_changed = ids.len() > 1;
            }
        }
    }
    for id in last_of_workload.values() {
        if let Some(g) = groups.get_mut(id) {
            g.current = true;
        }
    }
    let mut out: Vec<CrashGroup> = groups.into_values().collect();
    out.sort_by(|a, b| (b.last_seen, &b.id).cmp(&(a.last_seen, &a.id)));
    out
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::model::{group_id, pod_owner, Cause, Outcome};

    fn crash(id: &str, secs: i64, pod: &str, cause: Cause, key: Option<&str>) -> CrashSummary {
        let workload = Workload {
            namespace: "prod".into(),
            owner: Some(pod_owner(pod).to_string()),
            container: "app".into(),
        };
        CrashSummary {
            id: id.into(),
            outcome: if cause == Cause::Completed {
                Outcome::Completed
            } else {
                Outcome::Crashed
            },
            exited_at: DateTime::<Utc>::from_timestamp(1_800_000_000 + secs, 0).unwrap(),
            namespace: "prod".into(),
            pod: Some(pod.into()),
            container: "app".into(),
            container_id: format!("c{id}"),
            image: None,
            exit_code: 1,
            signal_name: None,
            oom_killed: cause == Cause::OomKilled,
            attempt: None,
            recovered: false,
            cause: Some(cause),
            diagnosis: Some(format!("{cause} #{id}")),
            key: key.map(str::to_string),
            group_id: Some(group_id(&workload, cause, key)),
        }
    }

    #[test]
    fn a_crash_loop_across_restarts_and_replicas_is_one_group() {
        let lock = Some("flock /data/db/mongod.lock EAGAIN");
        let summaries = [
            crash("01", 0, "db-7d9f8b6c5d-x2x9q", Cause::LockHeld, lock),
            crash("02", 10, "db-7d9f8b6c5d-x2x9q", Cause::LockHeld, lock),
            crash("03", 30, "db-5c4b8d7f6b-b7k4p", Cause::LockHeld, lock),
            crash("04", 40, "db-5c4b8d7f6b-b7k4p", Cause::Completed, None),
        ];
        let groups = group(summaries.iter().rev());
        assert_eq!(
            groups.len(),
            1,
            "completed runs are not crashes: {groups:#?}"
        );
        let g = &groups[0];
        assert_eq!(g.count, 3);
        assert_eq!(g.workload.owner.as_deref(), Some("db"));
        assert_eq!(g.report_ids, ["03", "02", "01"]);
        assert_eq!(g.latest_report_id, "03");
        assert_eq!(g.first_seen, summaries[0].exited_at);
        assert_eq!(g.last_seen, summaries[2].exited_at);
        assert_eq!(g.pods, ["db-7d9f8b6c5d-x2x9q", "db-5c4b8d7f6b-b7k4p"]);
        assert_eq!(g.summary, "lock_held #03");
        assert!(!g.cause_changed);
        assert!(g.current);
        assert_eq!(g.previous_cause, None);
    }

    #[test]
    fn a_changed_cause_splits_the_loop_and_says_so() {
        let summaries = [
            crash("01", 0, "gw-x2x9q", Cause::OomKilled, Some("oom beam.smp")),
            crash("02", 10, "gw-x2x9q", Cause::OomKilled, Some("oom beam.smp")),
            crash(
                "03",
                20,
                "gw-x2x9q",
                Cause::AddressInUse,
                Some("bind 0.0.0.0:9443 EADDRINUSE"),
            ),
            // Another workload in the same namespace stays apart.
            crash(
                "04",
                25,
                "other-x2x9q",
                Cause::OomKilled,
                Some("oom beam.smp"),
            ),
        ];
        let groups = group(&summaries);
        assert_eq!(groups.len(), 3);
        let by_cause = |c: Cause, owner: &str| {
            groups
                .iter()
                .find(|g| g.cause == c && g.workload.owner.as_deref() == Some(owner))
                .unwrap()
        };
        let oom = by_cause(Cause::OomKilled, "gw");
        let bind = by_cause(Cause::AddressInUse, "gw");
        let other = by_cause(Cause::OomKilled, "other");
        assert_eq!((oom.count, bind.count, other.count), (2, 1, 1));
        assert!(oom.cause_changed && bind.cause_changed && !other.cause_changed);
        assert_eq!(bind.previous_cause, Some(Cause::OomKilled));
        assert_eq!(oom.previous_cause, None);
        assert!(bind.current && !oom.current && other.current);
        assert_ne!(oom.id, other.id, "the workload is part of the signature");
        // Most recently seen first.
        assert_eq!(groups[0].id, other.id);
    }

    #[test]
    fn group_ids_are_stable_hex() {
        let w = Workload {
            namespace: "prod".into(),
            owner: Some("gw".into()),
            container: "app".into(),
        };
        let id = group_id(&w, Cause::OomKilled, Some("oom beam.smp"));
        assert_eq!(id.len(), 16);
        assert!(crate::store::valid_id(&id));
        assert_eq!(id, group_id(&w, Cause::OomKilled, Some("oom beam.smp")));
        assert_ne!(id, group_id(&w, Cause::OomKilled, None));
    }
}
