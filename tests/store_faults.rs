//! Storage faults with the real agent, containerd and CRI: the data dir fills up during a crash
//! loop and space comes back; the data dir is read-only at start. Faults are real file systems
//! (a 1 MiB tmpfs, a read-only remount), read through the agent's HTTP API. Needs root.

mod harness;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{metric_value, Agent, Containerd};
use reqwest::StatusCode;
use serde_json::Value;

/// Exits of the crash loop (`CORONER_TEST_STORE_CRASHES` for a longer one): well within the
/// default 32 MiB queue at ~80 KB a report.
fn crashes() -> u64 {
    match std::env::var("CORONER_TEST_STORE_CRASHES") {
        Ok(n) => n.parse().expect("CORONER_TEST_STORE_CRASHES is a number"),
        Err(_) => 24,
    }
}

/// `n` exits of one container, as kubelet restarts it: attempt 0, 1, ...
async fn crash_loop(cd: &Containerd, n: u64) {
    let pod = cd.cri().await.run_pod("loop", "default").await;
    for attempt in 0..n {
        pod.container("app")
            .command(["sh", "-c", "exit 3"])
            .attempt(attempt as u32)
            .start()
            .await;
    }
}

/// A tmpfs mounted on `dir` (which stays), unmounted on drop even when the test panics.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        run_mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            dir,
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    fn remount(&self, mode: &str) {
        run_mount(&["-o", &format!("remount,{mode}")], &self.dir);
    }

    /// A filler file written until ENOSPC.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut f = fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return path,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn run_mount(args: &[&str], target: &Path) {
    let out = Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .expect("running mount");
    assert!(
        out.status.success(),
        "mount {args:?} {}: {} (this test needs root)",
        target.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tmp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

/// The value of the sample `name{labels}` exactly, `None` when absent.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `check` on `/readyz` and `/metrics` until it holds; panics with the last view.
async fn wait_until(
    agent: &Agent,
    what: &str,
    timeout: Duration,
    check: impl Fn(StatusCode, &Value, &str) -> bool,
) -> (StatusCode, Value, String) {
    let deadline = Instant::now() + timeout;
    loop {
        let (code, ready) = agent.get("/readyz").await;
        let (_, metrics) = agent.get_text("/metrics").await;
        if check(code, &ready, &metrics) {
            return (code, ready, metrics);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}; /readyz {code} {ready}\n{}",
            metrics
                .lines()
                .filter(|l| l.starts_with("coroner_reports") || l.starts_with("coroner_store"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn listed_ids(agent: &Agent) -> Vec<String> {
    let (code, list) = agent
        .get("/api/v1/crashes?outcome=all&pod=loop&limit=1000")
        .await;
    assert_eq!(code, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn data_dir_full_during_a_crash_loop_loses_no_report_once_space_returns() {
    let crashes = crashes();
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    // The disk fills up under a running agent. Reports are ~80 KB with the recorder's data:
    // the tmpfs holds the crash loop once the filler is gone.
    let data = agent.data_dir().to_path_buf();
    let tmpfs = Tmpfs::mount(&data, &format!("{}k", 1024 + crashes * 100));
    let filler = tmpfs.fill();

    crash_loop(&cd, crashes).await;

    // Every report finished, none on disk: all held, and shown as such.
    let (code, ready, metrics) = wait_until(
        &agent,
        "all reports pending",
        Duration::from_secs(60),
        |_, _, m| metric_value(m, "coroner_store_pending_reports") == Some(crashes as f64),
    )
    .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["store"]["state"], "failing", "{ready}");
    assert_eq!(ready["store"]["reason"], "no_space", "{ready}");
    assert_eq!(ready["store"]["pending"], crashes, "{ready}");
    let error = ready["store"]["error"].as_str().unwrap();
    assert!(error.contains("No space left on device"), "{error}");
    let failures = sample(
        &metrics,
        r#"coroner_store_write_failures_total{reason="no_space"}"#,
    )
    .unwrap();
    // The first write and the retries: reports behind a queued one wait without an attempt.
    assert!(failures >= 1.0, "{failures}");
    assert_eq!(
        sample(
            &metrics,
            r#"coroner_reports_dropped_total{reason="queue_full"}"#
        ),
        Some(0.0)
    );
    assert!(listed_ids(&agent).await.is_empty(), "listed before written");
    assert_eq!(
        tmp_files(&data),
        Vec::<String>::new(),
        "failed writes cleaned up"
    );

    // Space returns: the backoff (at most 5 s) finds it, the queue drains, ready again.
    fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let (_, ready, metrics) = wait_until(
        &agent,
        "queue drained",
        Duration::from_secs(20),
        |code, _, m| {
            code == StatusCode::OK && metric_value(m, "coroner_store_pending_reports") == Some(0.0)
        },
    )
    .await;
    eprintln!(
        "queue of {crashes} drained {:.1} s after space returned",
        freed.elapsed().as_secs_f64()
    );
    assert_eq!(ready["store"]["state"], "ok", "{ready}");
    assert_eq!(ready["store"]["pending"], 0);
    assert_eq!(
        metric_value(&metrics, "coroner_reports_stored"),
        Some(crashes as f64)
    );

    // Exactly one report per exit, listed and on disk, nothing half-written left.
    let ids = listed_ids(&agent).await;
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), distinct.len()),
        (crashes as usize, crashes as usize)
    );
    let mut attempts = BTreeSet::new();
    let mut sizes = Vec::new();
    for id in &ids {
        let (code, r) = agent.get(&format!("/api/v1/crashes/{id}")).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(r["exit"]["code"], 3);
        attempts.insert(r["kubernetes"]["attempt"].as_u64().unwrap());
        sizes.push(fs::metadata(data.join(format!("{id}.json"))).unwrap().len());
    }
    assert_eq!(attempts, (0..crashes).collect::<BTreeSet<_>>());
    assert_eq!(tmp_files(&data), Vec::<String>::new());
    sizes.sort();
    eprintln!(
        "report sizes: min {} median {} max {} bytes",
        sizes[0],
        sizes[sizes.len() / 2],
        sizes[sizes.len() - 1]
    );

    // One log line when the episode began and one when it ended, not one per report.
    let log = agent.log();
    assert_eq!(log.matches("report store failing").count(), 1, "{log}");
    assert_eq!(log.matches("report store writable again").count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_the_retry_queue_bound_reports_are_dropped_counted_and_the_rest_written() {
    const CRASHES: u64 = 10;
    let cd = Containerd::start().await;
    // Room for about five ~80 KB reports.
    let agent = Agent::builder(&cd)
        .args(["--store-retry-queue-bytes", "400Ki"])
        .start()
        .await;
    let data = agent.data_dir().to_path_buf();
    let tmpfs = Tmpfs::mount(&data, "4m");
    let filler = tmpfs.fill();
    crash_loop(&cd, CRASHES).await;

    let dropped_series = r#"coroner_reports_dropped_total{reason="queue_full"}"#;
    // A dropped report may come back: the CRI second look after a (re)connect finds the exited
    // container without a report and tries again (then counted again if the queue is still full).
    let (_, ready, metrics) = wait_until(
        &agent,
        "every report queued or dropped",
        Duration::from_secs(60),
        |_, _, m| {
            let pending = metric_value(m, "coroner_store_pending_reports").unwrap_or(0.0);
            pending + sample(m, dropped_series).unwrap_or(0.0) >= CRASHES as f64
        },
    )
    .await;
    let pending = metric_value(&metrics, "coroner_store_pending_reports").unwrap() as u64;
    let dropped = sample(&metrics, dropped_series).unwrap() as u64;
    assert!(
        dropped > 0 && pending > 0,
        "pending {pending}, dropped {dropped}"
    );
    let bytes = metric_value(&metrics, "coroner_store_pending_bytes").unwrap();
    assert!(bytes <= 400.0 * 1024.0, "{bytes}");
    assert_eq!(ready["store"]["state"], "failing");
    let log = agent.log();
    assert_eq!(log.matches("report retry queue full").count(), 1, "{log}");

    fs::remove_file(&filler).unwrap();
    let (_, _, metrics) = wait_until(
        &agent,
        "queue drained",
        Duration::from_secs(20),
        |code, _, _| code == StatusCode::OK,
    )
    .await;
    // What the queue held is written; what it could not hold is counted as dropped, never
    // silently gone: every crash is a report or a count, and none is written twice.
    let dropped = sample(&metrics, dropped_series).unwrap() as u64;
    let (_, list) = agent
        .get("/api/v1/crashes?outcome=all&pod=loop&limit=1000")
        .await;
    let containers: BTreeSet<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["container_id"].as_str())
        .collect();
    let written = listed_ids(&agent).await.len() as u64;
    assert_eq!(
        containers.len() as u64,
        written,
        "one report per container: {list}"
    );
    assert!(written >= pending, "written {written}, queued {pending}");
    assert!(
        written + dropped >= CRASHES,
        "written {written} + dropped {dropped} < {CRASHES} crashes"
    );
    assert_eq!(tmp_files(&data), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_data_dir_at_start_exits_non_zero_naming_the_dir() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    fs::create_dir(&data).unwrap();
    let tmpfs = Tmpfs::mount(&data, "1m");
    tmpfs.remount("ro");
    let mut cmd = Command::new(harness::agent::agent_binary());
    // Every flag is also a CORONER_* variable: only what this test sets goes in.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CORONER_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .arg("agent")
        .arg("--containerd-socket")
        .arg(work.path().join("no-containerd.sock"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the agent");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the agent did not exit on a read-only data dir");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let expected = format!(
        "data dir {} is not writable: Read-only file system (os error 30)",
        data.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    drop(tmpfs);
}
