//! End-to-end tests of the probable cause: real containers that fail in the ways SREs meet,
//! created over CRI, with the diagnosis read through the agent's HTTP API.
//!
//! `CORONER_CAPTURE_FIXTURES=1` also writes each report to `tests/fixtures/reports/<case>.json`:
//! the real reports the unit tests of `src/diagnose.rs` are built from.

mod harness;

use std::time::Duration;

use harness::{Agent, Containerd};
use serde_json::Value;

const REPORT_TIMEOUT: Duration = Duration::from_secs(20);

async fn setup() -> (Containerd, Agent) {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    (cd, agent)
}

async fn report_for(agent: &Agent, pod: &str, name: &str) -> Value {
    let (pod, name) = (pod.to_string(), name.to_string());
    agent
        .wait_for_report(
            move |r| {
                r["kubernetes"]["pod"] == pod.as_str()
                    && r["kubernetes"]["container"] == name.as_str()
            },
            REPORT_TIMEOUT,
        )
        .await
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
    let pod = cd.cri().await.run_pod("gateway", "edge").await;
    pod.container("beam")
        .command(["tail", "/dev/zero"])
        .memory_limit(20 << 20)
        .start()
        .await;
    let r = report_for(&agent, "gateway", "beam").await;
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
    let cri = cd.cri().await;
    let pod = cri.run_pod("victim", "default").await;
    let id = pod
        .container("sleeper")
        .command(["sleep", "3600"])
        .start()
        .await;
    cri.wait_running(&id, Duration::from_secs(10)).await;
    let pid = cri.container_pid(&id).await;
    // SAFETY: kill(2) on the pid CRI just gave us: a container process this test owns.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let r = report_for(&agent, "victim", "sleeper").await;
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
    let r = report_for(&agent, "native", "worker").await;
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
    let pod = cd.cri().await.run_pod("app", "default").await;
    pod.container("start")
        .command(["sh", "-c", "/app/bin/start"])
        .start()
        .await;
    let r = report_for(&agent, "app", "start").await;
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
    let port = 20000 + (std::process::id() % 20000);
    let pod = cd.cri().await.run_pod("gateway", "default").await;
    let script =
        format!("httpd -f -p 127.0.0.1:{port} & sleep 0.5; exec httpd -f -p 127.0.0.1:{port}");
    pod.container("beam")
        .command(["sh", "-c", &script])
        .start()
        .await;
    let r = report_for(&agent, "gateway", "beam").await;
    let d = diagnosis("address_in_use", &r);
    assert_eq!(d["cause"], "address_in_use", "{d}");
    let s = summary(&d);
    assert!(
        s.contains(&format!("bind(127.0.0.1:{port}) = EADDRINUSE")),
        "{s}"
    );
    assert!(s.starts_with("Exited 1 after "), "{s}");
    assert_eq!(d["key"], format!("bind 127.0.0.1:{port} EADDRINUSE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_held_by_another_container_is_lock_held() {
    let (cd, agent) = setup().await;
    let cri = cd.cri().await;
    harness::bench_images::import_bench_image(&cd).await;
    let (flock, image) = (
        harness::bench_images::FLOCK,
        harness::bench_images::BENCH_IMAGE,
    );
    // Containers of one pod share the sandbox's /dev/shm: the previous attempt still holds it.
    let pod = cri.run_pod("mongo", "db").await;
    let holder = pod
        .container("holder")
        .image(image)
        .command([flock, "/dev/shm/mongod.lock", "sleep", "3600"])
        .start()
        .await;
    cri.wait_running(&holder, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    pod.container("mongod")
        .image(image)
        .command([flock, "-n", "/dev/shm/mongod.lock", "true"])
        .start()
        .await;
    let r = report_for(&agent, "mongo", "mongod").await;
    let d = diagnosis("lock_held", &r);
    assert_eq!(d["cause"], "lock_held", "{d}");
    let s = summary(&d);
    assert!(s.contains("could not lock /dev/shm/mongod.lock"), "{s}");
    assert!(s.contains("EAGAIN") || s.contains("EWOULDBLOCK"), "{s}");
    assert!(s.contains("held by another process"), "{s}");
    cri.stop_container(&holder, 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fork_loop_under_pids_max_is_pids_limit() {
    let (cd, agent) = setup().await;
    let pod = cd
        .cri()
        .await
        .pod("forker", "default")
        .pids_limit(12)
        .run()
        .await;
    let script = "i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; exit 1";
    pod.container("bomb")
        .command(["sh", "-c", script])
        .start()
        .await;
    let r = report_for(&agent, "forker", "bomb").await;
    let d = diagnosis("pids_limit", &r);
    assert_eq!(d["cause"], "pids_limit", "{d}");
    assert!(summary(&d).contains("pids.max"), "{d}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_file_is_exited_error_with_the_last_failure() {
    let (cd, agent) = setup().await;
    let pod = cd.cri().await.run_pod("reader", "default").await;
    pod.container("cat")
        .command(["cat", "/nonexistent"])
        .start()
        .await;
    let r = report_for(&agent, "reader", "cat").await;
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
    let r = report_for(&agent, "job", "migrate").await;
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
    let r = report_for(&agent, "blind", "app").await;
    let d = diagnosis("exited_error_no_recorder", &r);
    assert_eq!(d["cause"], "exited_error", "{d}");
    assert_eq!(d["confidence"], "low");
    assert!(summary(&d).contains("no syscall data"), "{d}");
}
