//! End-to-end tests of the probable cause: real containers that fail in the ways SREs meet,
//! created over CRI, with the diagnosis read through the agent's HTTP API.
//!
//! `CORONER_CAPTURE_FIXTURES=1` also writes each report to `tests/fixtures/reports/<case>.json`:
//! the real reports the unit tests of `src/diagnose.rs` are built from.

mod harness;

use harness::{scenarios, Agent, Containerd};
use serde_json::Value;

async fn setup() -> (Containerd, Agent) {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    (cd, agent)
}

/// The report's diagnosis, after saving the report as a fixture when asked to, and checking
/// that every piece of evidence points at a field the report has.
fn diagnosis(case: &str, r: &Value) -> Value {
    if std::env::var_os("CORONER_CAPTURE_FIXTURES").is_some() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports");
        std::fs::create_dir_all(&dir).unwrap();
        let mut bare = r.clone();
        bare.as_object_mut().unwrap().remove("diagnosis");
        std::fs::write(
            dir.join(format!("{case}.json")),
            serde_json::to_string_pretty(&bare).unwrap() + "\n",
        )
        .unwrap();
    }
    let d = r["diagnosis"].clone();
    assert!(d.is_object(), "no diagnosis in {r}");
    let evidence = d["evidence"].as_array().expect("evidence list");
    assert!(!evidence.is_empty(), "a diagnosis without evidence: {d}");
    for e in evidence {
        let field = e["field"].as_str().unwrap();
        assert!(
            r.pointer(field).is_some_and(|v| !v.is_null()),
            "evidence {e} points at {field}, which the report lacks"
        );
    }
    d
}

fn summary(d: &Value) -> &str {
    d["summary"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn oom_kill_names_the_victim_and_the_limit() {
    let (cd, agent) = setup().await;
    let r = scenarios::oom_of_init(&cd, &agent).await;
    let d = diagnosis("oom_killed", &r);
    assert_eq!(d["cause"], "oom_killed", "{d}");
    assert_eq!(d["confidence"], "high");
    let s = summary(&d);
    assert!(s.starts_with("OOM-killed after "), "{s}");
    assert!(s.contains("20.0 MiB"), "the limit is named: {s}");
    assert!(s.contains("`tail`"), "the victim is named: {s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_from_the_host_is_killed_with_the_sender() {
    let (cd, agent) = setup().await;
    let r = scenarios::killed_from_host(&cd, &agent).await;
    let d = diagnosis("killed_by_host", &r);
    assert_eq!(d["cause"], "killed", "{d}");
    assert_eq!(d["confidence"], "high");
    let s = summary(&d);
    assert!(s.contains("SIGKILL"), "{s}");
    assert!(s.contains("on the host"), "{s}");
    assert!(
        s.contains(&format!("pid {}", std::process::id())),
        "the sender pid: {s}"
    );
    assert!(
        s.contains("not an OOM kill"),
        "exit 137 without OOM evidence: {s}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn segfault_is_crashed() {
    let (cd, agent) = setup().await;
    harness::bench_images::import_bench_image(&cd).await;
    let pod = cd.cri().await.run_pod("native", "default").await;
    pod.container("worker")
        .image(harness::bench_images::BENCH_IMAGE)
        .command([harness::bench_images::SEGV])
        .start()
        .await;
    let r = agent.report_for("native", "worker").await;
    let d = diagnosis("segfault", &r);
    assert_eq!(d["cause"], "crashed", "{d}");
    assert_eq!(d["confidence"], "high");
    let s = summary(&d);
    assert!(s.contains("SIGSEGV"), "{s}");
    assert!(s.contains("segv"), "the faulting program: {s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_of_missing_binary_is_exec_failed() {
    let (cd, agent) = setup().await;
    let r = scenarios::exec_missing_binary(&cd, &agent).await;
    let d = diagnosis("exec_failed", &r);
    assert_eq!(d["cause"], "exec_failed", "{d}");
    assert_eq!(
        summary(&d),
        "exec of /app/bin/start failed: ENOENT (exit 127)"
    );
    assert_eq!(d["key"], "execve /app/bin/start ENOENT");
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_to_a_held_port_is_address_in_use() {
    let (cd, agent) = setup().await;
    let (r, port) = scenarios::bind_held_port(&cd, &agent).await;
    let d = diagnosis("address_in_use", &r);
    assert_eq!(d["cause"], "address_in_use", "{d}");
    let s = summary(&d);
    assert!(
        s.contains(&format!("bind(127.0.0.1:{port}) = EADDRINUSE")),
        "{s}"
    );
    // busybox httpd's own words lead; the failing bind proves them.
    assert!(
        s.starts_with("httpd: bind: Address already in use (bind("),
        "{s}"
    );
    assert!(s.contains("; exited 1 after "), "{s}");
    assert_eq!(d["key"], format!("bind 127.0.0.1:{port} EADDRINUSE"));
    assert_eq!(d["statement"]["runtime"], "generic", "{d}");
    assert!(d["advice"].as_str().unwrap().contains("holds"), "{d}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_held_by_another_container_is_lock_held() {
    let (cd, agent) = setup().await;
    let r = scenarios::lock_held(&cd, &agent).await;
    let d = diagnosis("lock_held", &r);
    assert_eq!(d["cause"], "lock_held", "{d}");
    let s = summary(&d);
    assert!(s.contains("could not lock /dev/shm/mongod.lock"), "{s}");
    assert!(s.contains("EAGAIN") || s.contains("EWOULDBLOCK"), "{s}");
    assert!(s.contains("held by another process"), "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fork_loop_under_pids_max_is_pids_limit() {
    let (cd, agent) = setup().await;
    let r = scenarios::fork_loop_under_pids_max(&cd, &agent).await;
    let d = diagnosis("pids_limit", &r);
    assert_eq!(d["cause"], "pids_limit", "{d}");
    assert!(summary(&d).contains("pids.max"), "{d}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_file_is_exited_error_with_the_last_failure() {
    let (cd, agent) = setup().await;
    let r = scenarios::missing_file(&cd, &agent).await;
    let d = diagnosis("exited_error", &r);
    assert_eq!(d["cause"], "exited_error", "{d}");
    let s = summary(&d);
    assert!(
        s.contains("last failing syscall before exit: openat(\"/nonexistent\") = ENOENT"),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn clean_exit_is_completed() {
    let (cd, agent) = setup().await;
    let pod = cd.cri().await.run_pod("job", "batch").await;
    pod.container("migrate")
        .command(["sh", "-c", "echo done"])
        .start()
        .await;
    let r = agent.report_for("job", "migrate").await;
    let d = diagnosis("completed", &r);
    assert_eq!(d["cause"], "completed", "{d}");
    assert!(summary(&d).starts_with("Completed (exit 0) after "), "{d}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_recorder_an_exit_1_says_the_evidence_is_thin() {
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd).arg("--no-recorder").start().await;
    let pod = cd.cri().await.run_pod("blind", "default").await;
    pod.container("app")
        .command(["cat", "/nonexistent"])
        .start()
        .await;
    let r = agent.report_for("blind", "app").await;
    let d = diagnosis("exited_error_no_recorder", &r);
    assert_eq!(d["cause"], "exited_error", "{d}");
    assert_eq!(d["confidence"], "low");
    assert!(summary(&d).contains("no syscall data"), "{d}");
}
