use super::*;
use crate::model::*;

fn report(id_seed: u32, secs: i64, outcome: Outcome, pod: &str) -> CrashReport {
    let exited_at = DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap();
    let mut r = CrashReport {
        schema_version: SCHEMA_VERSION,
        id: report_id("k8s.io", &format!("c{id_seed}"), exited_at),
        outcome,
        container: ContainerInfo {
            namespace: "k8s.io".into(),
            id: format!("c{id_seed}"),
            ..Default::default()
        },
        kubernetes: Some(KubernetesInfo {
            pod: pod.into(),
            namespace: "shop".into(),
            container: "app".into(),
            ..Default::default()
        }),
        lifecycle: Lifecycle {
            exited_at,
            reported_at: exited_at,
            ..Default::default()
        },
        exit: ExitStatus::from_containerd(if outcome == Outcome::Crashed { 1 } else { 0 }),
        oom: OomInfo::default(),
        cgroup: CgroupReport::default(),
        recovered: false,
        cri: None,
        collection_errors: vec![],
        agent: AgentInfo::default(),
        recorder: None,
        entrypoint: None,
        diagnosis: None,
    };
    // As the agent stores it: finished, diagnosis included.
    r.diagnosis = Some(crate::diagnose::diagnose(&r));
    r
}

const ROOMY: Retention = Retention {
    max_reports: 1000,
    max_bytes: 1 << 30,
};

fn all() -> Query {
    Query {
        outcome: None,
        ..Query::default()
    }
}

#[test]
fn reports_survive_reopen_and_are_listed_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), ROOMY).unwrap();
    for i in 0..5 {
        store
            .insert(&report(i, i as i64, Outcome::Crashed, "p"))
            .unwrap();
    }
    drop(store);
    let (store, skipped) = Store::open(dir.path(), ROOMY).unwrap();
    assert_eq!(skipped, 0);
    let page = store.list(&all());
    let secs: Vec<i64> = page
        .items
        .iter()
        .map(|s| s.exited_at.timestamp() - 1_700_000_000)
        .collect();
    assert_eq!(secs, [4, 3, 2, 1, 0]);
    let full = store.get(&page.items[0].id).unwrap().unwrap();
    assert_eq!(full, report(4, 4, Outcome::Crashed, "p"));
    assert_eq!(page.items[0].cause, Some(crate::model::Cause::ExitedError));
}

#[test]
fn the_same_exit_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), ROOMY).unwrap();
    let r = report(1, 1, Outcome::Crashed, "p");
    assert_eq!(store.insert(&r).unwrap(), Inserted::Stored { evicted: 0 });
    assert_eq!(store.insert(&r).unwrap(), Inserted::Duplicate);
    assert_eq!(store.stats().0, 1);
}

#[test]
fn corrupt_foreign_and_half_written_files_are_skipped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), ROOMY).unwrap();
    store.insert(&report(1, 1, Outcome::Crashed, "p")).unwrap();
    drop(store);
    fs::write(dir.path().join("abcdef.json"), b"{\"truncated\": ").unwrap();
    fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    fs::write(dir.path().join(".tmp-0123.json-1-0"), b"{").unwrap();
    // A valid report under another report's name.
    let other = report(2, 2, Outcome::Crashed, "p");
    fs::write(
        dir.path().join("0000.json"),
        serde_json::to_vec(&other).unwrap(),
    )
    .unwrap();
    let (store, skipped) = Store::open(dir.path(), ROOMY).unwrap();
    assert_eq!(skipped, 3);
    assert_eq!(store.stats().0, 1);
    assert!(
        !dir.path().join(".tmp-0123.json-1-0").exists(),
        "interrupted writes are cleaned up"
    );
}

#[test]
fn retention_by_count_deletes_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(
        dir.path(),
        Retention {
            max_reports: 3,
            max_bytes: 1 << 30,
        },
    )
    .unwrap();
    for i in 0..5 {
        store
            .insert(&report(i, i as i64, Outcome::Crashed, "p"))
            .unwrap();
    }
    let ids: Vec<_> = store
        .list(&all())
        .items
        .into_iter()
        .map(|s| s.exited_at.timestamp() - 1_700_000_000)
        .collect();
    assert_eq!(ids, [4, 3, 2]);
    let files = fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files, 3, "expired files are deleted from disk");
}

#[test]
fn retention_by_bytes_keeps_total_under_budget() {
    let dir = tempfile::tempdir().unwrap();
    let one = serde_json::to_vec_pretty(&report(0, 0, Outcome::Crashed, "p"))
        .unwrap()
        .len() as u64;
    let budget = one * 2 + one / 2;
    let (store, _) = Store::open(
        dir.path(),
        Retention {
            max_reports: 100,
            max_bytes: budget,
        },
    )
    .unwrap();
    for i in 0..6 {
        store
            .insert(&report(i, i as i64, Outcome::Crashed, "p"))
            .unwrap();
    }
    let (n, bytes) = store.stats();
    assert_eq!(n, 2);
    assert!(bytes <= budget);
}

#[test]
fn shrinking_limits_apply_at_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), ROOMY).unwrap();
    for i in 0..4 {
        store
            .insert(&report(i, i as i64, Outcome::Crashed, "p"))
            .unwrap();
    }
    drop(store);
    let (store, _) = Store::open(
        dir.path(),
        Retention {
            max_reports: 1,
            max_bytes: 1 << 30,
        },
    )
    .unwrap();
    assert_eq!(store.stats().0, 1);
}

#[test]
fn filters_and_cursor_pagination_cover_every_match_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), ROOMY).unwrap();
    for i in 0..10 {
        let outcome = if i % 2 == 0 {
            Outcome::Crashed
        } else {
            Outcome::Completed
        };
        let pod = if i < 5 { "a" } else { "b" };
        // Two reports share each exit second, so ties are broken by id.
        store
            .insert(&report(i, (i / 2) as i64, outcome, pod))
            .unwrap();
    }
    let mut q = all();
    q.limit = 3;
    let mut seen = Vec::new();
    loop {
        let page = store.list(&q);
        seen.extend(page.items.iter().map(|s| s.id.clone()));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!((seen.len(), dedup.len()), (10, 10));

    let crashed_b = Query {
        pod: Some("b".into()),
        ..Query::default()
    };
    let items = store.list(&crashed_b).items;
    assert!(items
        .iter()
        .all(|s| s.outcome == Outcome::Crashed && s.pod.as_deref() == Some("b")));
    assert_eq!(items.len(), 2); // i = 6, 8

    let since = Query {
        since: DateTime::from_timestamp(1_700_000_003, 0),
        ..all()
    };
    assert_eq!(store.list(&since).items.len(), 4); // seconds 3 and 4
}

#[test]
fn unknown_and_malformed_ids_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), ROOMY).unwrap();
    assert!(store.get("0123456789").unwrap().is_none());
    assert!(store.get("../../etc/passwd").unwrap().is_none());
}
