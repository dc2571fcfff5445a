use super::*;
use crate::model::*;
use std::io::Write;

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
        usage_history: None,
        artifacts: None,
        image_tag: None,
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

/// A real tmpfs of a few pages mounted on a temp dir: storage faults without mocks. Needs root;
/// a test that cannot mount fails (never skips).
struct Tmpfs {
    dir: tempfile::TempDir,
    filler: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            dir.path(),
        );
        let filler = dir.path().join("filler");
        Tmpfs { dir, filler }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Writes a filler file until the file system says ENOSPC.
    fn fill(&self) {
        let mut f = File::create(&self.filler).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", self.filler.display()),
            }
        }
    }

    fn free(&self) {
        fs::remove_file(&self.filler).unwrap();
    }

    fn remount(&self, mode: &str) {
        mount(&["-o", &format!("remount,{mode}")], self.dir.path());
    }

    fn tmp_files(&self) -> Vec<String> {
        fs::read_dir(self.data())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(TMP_PREFIX))
            .collect()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn mount(args: &[&str], target: &Path) {
    let out = std::process::Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .expect("running mount");
    assert!(
        out.status.success(),
        "mount {args:?} {}: {} (these tests need root)",
        target.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn failures(status: &StoreStatus, reason: &str) -> u64 {
    status
        .write_failures
        .iter()
        .find(|(r, _)| *r == reason)
        .map(|(_, n)| *n)
        .unwrap()
}

#[test]
fn a_write_on_a_full_disk_leaves_no_temporary_file_and_queues_the_report() {
    let fs = Tmpfs::mount("256k");
    let (store, _) = Store::open(&fs.data(), ROOMY).unwrap();
    fs.fill();
    let r = report(1, 1, Outcome::Crashed, "p");
    assert_eq!(store.insert(&r).unwrap(), Inserted::Queued);
    assert_eq!(fs.tmp_files(), Vec::<String>::new());
    let status = store.status();
    let failing = status.failing.expect("failing");
    assert_eq!(failing.reason, "no_space");
    assert!(
        failing.error.contains("No space left on device"),
        "{failing:?}"
    );
    assert!(failing.error.contains(&fs.data().display().to_string()));
    assert_eq!(
        (status.pending, failures(&store.status(), "no_space")),
        (1, 1)
    );
    // Known (a second sighting is a duplicate) and readable by id, not listed until written.
    assert!(store.contains(&r.id));
    assert_eq!(store.insert(&r).unwrap(), Inserted::Duplicate);
    assert_eq!(store.get(&r.id).unwrap(), Some(r));
    assert!(store.list(&all()).items.is_empty());
}

#[test]
fn queued_reports_are_written_oldest_first_and_announced_only_once_on_disk() {
    let fs = Tmpfs::mount("256k");
    let (store, _) = Store::open(&fs.data(), ROOMY).unwrap();
    let mut feed = store.subscribe();
    fs.fill();
    let reports: Vec<CrashReport> = (0..5)
        .map(|i| report(i, 100 - i as i64, Outcome::Crashed, "p"))
        .collect();
    for r in &reports[..4] {
        assert_eq!(store.insert(r).unwrap(), Inserted::Queued);
    }
    // Still full: a retry writes nothing, loses nothing, counts its failed attempt.
    let retried = store.retry_pending();
    assert!(retried.written.is_empty());
    assert_eq!(retried.remaining, 4);
    assert_eq!(
        failures(&store.status(), "no_space"),
        2,
        "first write, then one retry"
    );
    assert!(feed.try_recv().is_err(), "nothing announced while queued");
    assert_eq!(fs.tmp_files(), Vec::<String>::new());

    fs.free();
    // Space is back, but reports already queued go first: this one queues behind them.
    assert_eq!(store.insert(&reports[4]).unwrap(), Inserted::Queued);
    let retried = store.retry_pending();
    let written: Vec<&str> = retried.written.iter().map(|(r, _)| r.id.as_str()).collect();
    let expected: Vec<&str> = reports.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(written, expected, "in the order they were queued");
    assert_eq!(retried.remaining, 0);
    let announced: Vec<String> = (0..5).map(|_| feed.try_recv().unwrap().id).collect();
    assert_eq!(announced, expected);
    let status = store.status();
    assert_eq!((status.failing, status.pending), (None, 0));
    assert_eq!(store.stats().0, 5);
    for r in &reports {
        assert!(fs.data().join(format!("{}.json", r.id)).is_file());
        assert_eq!(store.get(&r.id).unwrap().as_ref(), Some(r));
    }
    assert_eq!(fs.tmp_files(), Vec::<String>::new());
    // On disk for good: a reopened store has them all.
    drop(store);
    let (store, skipped) = Store::open(&fs.data(), ROOMY).unwrap();
    assert_eq!((store.stats().0, skipped), (5, 0));
}

#[test]
fn beyond_the_queue_bound_reports_are_dropped_and_counted() {
    let fs = Tmpfs::mount("256k");
    let one = serde_json::to_vec_pretty(&report(0, 0, Outcome::Crashed, "p"))
        .unwrap()
        .len() as u64;
    // Room for two reports of this size, not three.
    let (store, _) = Store::open(&fs.data(), ROOMY).unwrap();
    let store = store.with_retry_queue(2 * one + one / 2);
    fs.fill();
    assert_eq!(
        store.insert(&report(0, 0, Outcome::Crashed, "p")).unwrap(),
        Inserted::Queued
    );
    assert_eq!(
        store.insert(&report(1, 1, Outcome::Crashed, "p")).unwrap(),
        Inserted::Queued
    );
    let dropped = report(2, 2, Outcome::Crashed, "p");
    let err = store.insert(&dropped).unwrap_err();
    assert!(matches!(err, StoreError::QueueFull { .. }), "{err}");
    assert_eq!(err.label(), "store_queue_full");
    assert!(!store.contains(&dropped.id));
    let status = store.status();
    assert_eq!((status.pending, status.dropped_queue_full), (2, 1));
    assert!(status.pending_bytes <= 2 * one + one / 2);
    let queued = report(0, 0, Outcome::Crashed, "p");
    assert!(
        store.has_container(&queued.container.id),
        "a queued report's container"
    );
    assert!(
        !store.has_container(&dropped.container.id),
        "a dropped report's container"
    );

    fs.free();
    assert_eq!(store.retry_pending().written.len(), 2);
    assert!(
        store.has_container(&queued.container.id),
        "a written report's container"
    );
    assert_eq!(store.stats().0, 2);
    assert_eq!(store.status().dropped_queue_full, 1);
    // Once written, the queue takes reports again; and with space, they are written at once.
    assert_eq!(
        store.insert(&dropped).unwrap(),
        Inserted::Stored { evicted: 0 }
    );
}

#[test]
fn a_read_only_remount_queues_reports_until_the_dir_is_writable_again() {
    let fs = Tmpfs::mount("1m");
    let (store, _) = Store::open(&fs.data(), ROOMY).unwrap();
    fs.remount("ro");
    let r = report(1, 1, Outcome::Crashed, "p");
    assert_eq!(store.insert(&r).unwrap(), Inserted::Queued);
    assert_eq!(store.status().failing.unwrap().reason, "read_only");
    assert_eq!(store.retry_pending().remaining, 1);
    fs.remount("rw");
    assert_eq!(store.retry_pending().written.len(), 1);
    assert_eq!(store.status().failing, None);
    assert_eq!(failures(&store.status(), "read_only"), 2);
}

#[test]
fn a_read_only_data_dir_at_open_is_an_error_naming_the_dir_and_errno() {
    let fs = Tmpfs::mount("1m");
    fs::create_dir(fs.data()).unwrap();
    fs.remount("ro");
    let err = match Store::open(&fs.data(), ROOMY) {
        Ok(_) => panic!("a read-only data dir opened"),
        Err(e) => e,
    };
    assert!(matches!(err, StoreError::NotWritable { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&fs.data().display().to_string()), "{msg}");
    assert!(msg.contains("Read-only file system (os error 30)"), "{msg}");
    assert_eq!(err.fault(), Some(WriteFault::ReadOnly));
}

#[test]
fn a_full_data_dir_at_open_opens_failing_and_recovers_when_space_returns() {
    let fs = Tmpfs::mount("256k");
    fs::create_dir(fs.data()).unwrap();
    fs.fill();
    let (store, _) = Store::open(&fs.data(), ROOMY).expect("full is transient: opens");
    let status = store.status();
    assert_eq!(status.failing.unwrap().reason, "no_space");
    assert_eq!(status.pending, 0);
    // Still full: the probe fails again, nothing is left behind.
    store.retry_pending();
    assert!(store.status().failing.is_some());
    assert_eq!(fs.tmp_files(), Vec::<String>::new());
    fs.free();
    store.retry_pending();
    assert_eq!(store.status().failing, None);
}

#[test]
fn artifacts_are_served_only_when_listed_and_removed_with_their_report() {
    use crate::report::artifacts::ArtifactFile;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(
        dir.path(),
        Retention {
            max_reports: 1,
            max_bytes: u64::MAX,
        },
    )
    .unwrap();
    let mut r = report(1, 1, Outcome::Crashed, "p");
    r.artifacts = Some(ArtifactsReport {
        files: vec![Artifact {
            name: "erl_crash.dump".into(),
            path: "/erl_crash.dump".into(),
            kind: ArtifactKind::ErlangCrashDump,
            content_type: "text/plain; charset=utf-8".into(),
            size_bytes: 4,
            kept_bytes: 4,
            stored_bytes: 3,
            truncated: false,
            redacted: true,
            key_lines: vec![],
        }],
        ..Default::default()
    });
    let files = [
        ArtifactFile {
            name: "erl_crash.dump".into(),
            gzip: b"gz1".to_vec(),
        },
        // Not listed in the report: never served.
        ArtifactFile {
            name: "other".into(),
            gzip: b"gz2".to_vec(),
        },
    ];
    store.insert_with_artifacts(&r, &files).unwrap();
    assert_eq!(
        store.artifact(&r.id, "erl_crash.dump").unwrap().as_deref(),
        Some(&b"gz1"[..])
    );
    assert_eq!(store.artifact(&r.id, "other").unwrap(), None);
    assert_eq!(store.artifact(&r.id, "../../etc/passwd").unwrap(), None);
    assert_eq!(store.artifact("zz", "erl_crash.dump").unwrap(), None);
    let (_, bytes) = store.stats();
    assert!(bytes > 3, "artifact bytes count toward retention");
    let artifact_dir = dir.path().join("artifacts").join(&r.id);
    assert!(artifact_dir.is_dir());
    // Reopening skips the artifacts dir (not a foreign report file).
    drop(store);
    let (store, skipped) = Store::open(
        dir.path(),
        Retention {
            max_reports: 1,
            max_bytes: u64::MAX,
        },
    )
    .unwrap();
    assert_eq!(skipped, 0);
    // The next report evicts the first, and its files with it.
    store.insert(&report(2, 2, Outcome::Crashed, "p")).unwrap();
    assert!(!artifact_dir.exists(), "artifacts outlived their report");
}
