//! Who crashed, as it survives a restart: the workload (namespace, the pod's owner, the container
//! name) and the crash-loop group id of a workload's cause. Pure; grouping itself is
//! [`crate::groups`], which builds on these.

use sha2::{Digest, Sha256};

use super::{Cause, CrashReport, CrashSummary, Workload};

/// Characters Kubernetes uses for generated name suffixes (`k8s.io/apimachinery` rand: no
/// vowels, no look-alikes), so `api-server` keeps its `server`.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generated(part: &str, lens: std::ops::RangeInclusive<usize>) -> bool {
    lens.contains(&part.len()) && part.bytes().all(|b| SUFFIX_ALPHABET.contains(&b))
}

/// The pod's owner prefix: `gateway-7d9f8b6c5d-x2x9q` -> `gateway` (Deployment),
/// `agent-x2x9q` -> `agent` (DaemonSet, Job, ReplicaSet), `backup-28731540-v4z8w` -> `backup`
/// (CronJob); `db-0` and `debug` stay as they are.
pub fn pod_owner(pod: &str) -> &str {
    let Some((rest, last)) = pod.rsplit_once('-') else {
        return pod;
    };
    if rest.is_empty() || !generated(last, 5..=5) {
        return pod;
    }
    // A Deployment's pod-template-hash, or a CronJob's schedule time in minutes, comes before
    // the random suffix.
    let cron = |p: &str| p.len() >= 8 && p.bytes().all(|b| b.is_ascii_digit());
    match rest.rsplit_once('-') {
        Some((owner, mid)) if !owner.is_empty() && (generated(mid, 6..=10) || cron(mid)) => owner,
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

/// The workload of a listed report (the same as [`CrashReport::workload`]).
pub fn summary_workload(s: &CrashSummary) -> Workload {
    Workload {
        namespace: s.namespace.clone(),
        owner: s.pod.as_deref().map(|p| pod_owner(p).to_string()),
        container: s.container.clone(),
    }
}

impl CrashReport {
    /// Who crashed, the same for every attempt of a crash loop.
    pub fn workload(&self) -> Workload {
        match &self.kubernetes {
            Some(k) => Workload {
                namespace: k.namespace.clone(),
                owner: Some(pod_owner(&k.pod).to_string()),
                container: k.container.clone(),
            },
            None => Workload {
                namespace: self.container.namespace.clone(),
                owner: None,
                container: self.container.id.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_owner_strips_only_generated_suffixes() {
        assert_eq!(pod_owner("gateway-7d9f8b6c5d-x2x9q"), "gateway");
        assert_eq!(pod_owner("node-agent-x2x9q"), "node-agent");
        assert_eq!(pod_owner("migrate-28731540-v4z8w"), "migrate");
        assert_eq!(pod_owner("mongo-0"), "mongo-0");
        assert_eq!(pod_owner("api-server"), "api-server");
        // "debug" has vowels: not a generated suffix.
        assert_eq!(pod_owner("web-debug"), "web-debug");
        assert_eq!(pod_owner("-x2x9q"), "-x2x9q");
        assert_eq!(pod_owner("solo"), "solo");
    }
}
