//! Crash-loop grouping: reports of one workload with the same cause and key evidence are one
//! group. Pure: summaries in, groups out; the store supplies the summaries.
//!
//! The workload is what survives a restart: the namespace, the pod's owner (the pod name without
//! the suffixes a ReplicaSet, Deployment, DaemonSet or Job generates) and the container name. A
//! signature adds the diagnosis' cause and key (`bind 0.0.0.0:9443 EADDRINUSE`), so a loop that
//! changes cause (OOM, then a lock held by the previous attempt) shows as two groups, each marked
//! `cause_changed`.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use crate::model::{Cause, CrashGroup, CrashSummary, Workload};

/// Reports listed per group, newest first.
pub const GROUP_REPORT_IDS: usize = 20;

/// Characters Kubernetes uses for generated name suffixes (`k8s.io/apimachinery` rand: no
/// vowels, no look-alikes), so `api-server` keeps its `server`.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generated(part: &str, lens: std::ops::RangeInclusive<usize>) -> bool {
    lens.contains(&part.len()) && part.bytes().all(|b| SUFFIX_ALPHABET.contains(&b))
}

/// The pod's owner prefix: `gateway-7d9f8b6c5d-x2x9q` -> `gateway` (Deployment),
/// `agent-x2x9q` -> `agent` (DaemonSet, Job, ReplicaSet); `db-0` and `debug` stay as they are.
pub fn pod_owner(pod: &str) -> &str {
    let Some((rest, last)) = pod.rsplit_once('-') else {
        return pod;
    };
    if rest.is_empty() || !generated(last, 5..=5) {
        return pod;
    }
    // A Deployment's pod-template-hash comes before the random suffix.
    match rest.rsplit_once('-') {
        Some((owner, hash)) if !owner.is_empty() && generated(hash, 6..=10) => owner,
        _ => rest,
    }
}

/// The group id of a signature: 16 hex digits of a SHA-256 over its parts.
pub fn group_id(w: &Workload, cause: Cause, key: Option<&str>) -> String {
    let mut h = Sha256::new();
    for part in [
        w.namespace.as_str(),
        w.owner.as_deref().unwrap_or(""),
        w.container.as_str(),
        cause.as_str(),
        key.unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The workload of a listed report (the same as [`crate::model::CrashReport::workload`]).
pub fn summary_workload(s: &CrashSummary) -> Workload {
    Workload {
        namespace: s.namespace.clone(),
        owner: s.pod.as_deref().map(|p| pod_owner(p).to_string()),
        container: s.container.clone(),
    }
}

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
