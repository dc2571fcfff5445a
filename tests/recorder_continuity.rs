//! The flight recorder across the agent's own restarts (issue 11, item 2) and the cgroup's usage
//! when the agent is late (item 3): real containers over CRI, the agent killed with SIGKILL and
//! started again on the same bpffs pin directory, reports read through the HTTP API.
//!
//! Each container opens a marker path that does not exist (a failing `openat`, always copied by
//! the kernel), then blocks reading a FIFO with a single syscall, so the ring still holds the
//! marker when the test releases it (by writing into the FIFO through `/proc/<pid>/root`).

mod harness;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::{Agent, Containerd, Cri};
use serde_json::Value;

const MARKER: &str = "/coroner-marker-before-restart";

/// Opens the marker (fails: ENOENT), then waits on a FIFO; exits 3 once released.
fn blocked_script() -> String {
    format!("cat {MARKER} 2>/dev/null; mkfifo /tmp/go; read x < /tmp/go; exit 3")
}

/// Starts the blocked container and waits until it sits in the FIFO read; returns its host pid.
async fn start_blocked(cri: &Cri, pod_name: &str) -> u32 {
    let pod = cri.run_pod(pod_name, "default").await;
    let id = pod
        .container("app")
        .command(["sh", "-c", &blocked_script()])
        .start()
        .await;
    let pid = cri.container_pid(&id).await;
    let fifo = fifo_path(pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fifo.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            fifo.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The shell opens the FIFO right after mkfifo; give it the moment to block there.
    tokio::time::sleep(Duration::from_millis(200)).await;
    pid
}

fn fifo_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root/tmp/go"))
}

/// Unblocks the container: it exits 3.
fn release(pid: u32) {
    let path = fifo_path(pid);
    std::fs::write(&path, "go\n").unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn ring(rec: &Value) -> &Vec<Value> {
    rec["flight_recorder"]
        .as_array()
        .unwrap_or_else(|| panic!("no flight_recorder: {rec}"))
}

/// The failing `openat` of the marker, made before any restart.
fn marker_open(rec: &Value) -> Option<&Value> {
    ring(rec).iter().find(|e| {
        e["syscall"] == "openat"
            && e["errno"] == "ENOENT"
            && e["args"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x.as_str().is_some_and(|s| s.contains(MARKER)))
            })
    })
}

fn layouts(pin: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pin)
        .unwrap_or_else(|e| panic!("reading {}: {e}", pin.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn container_running_across_an_agent_restart_keeps_its_ring_and_is_complete() {
    let cd = Containerd::start().await;
    let mut agent = Agent::start(&cd).await;
    let pin = agent
        .pin_dir()
        .expect("the harness pins the recorder")
        .to_path_buf();
    let cri = cd.cri().await;
    let pid = start_blocked(&cri, "survivor").await;

    agent.kill9();
    // The kernel keeps recording while no agent runs; the process events wait in its buffer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    agent.restart().await;
    assert!(
        agent.log().contains("pinned flight recorder adopted"),
        "the new agent process adopted the pinned recorder"
    );
    assert_eq!(
        layouts(&pin).len(),
        1,
        "one layout pinned: {:?}",
        layouts(&pin)
    );
    release(pid);

    let r = agent.report_for("survivor", "app").await;
    assert_eq!(r["exit"]["code"], 3);
    let rec = &r["recorder"];
    assert_eq!(rec["state"], "recorded", "complete, not partial: {rec}");
    assert!(rec.get("gap").is_none(), "{}", rec["gap"]);
    assert!(
        marker_open(rec).is_some(),
        "the openat made before the restart is in the ring: {}",
        rec["flight_recorder"]
    );
    // The exec of the entrypoint happened before the restart: the old process consumed that
    // event and kept it in the kernel, the new one restored it.
    let execs: Vec<&Value> = rec["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "exec")
        .collect();
    assert!(
        execs.iter().any(|e| e["argv"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == MARKER))),
        "the pre-restart exec of `cat {MARKER}` is in the timeline: {}",
        rec["processes"]
    );
    assert!(
        rec["setup_syscalls"].as_u64().unwrap() > 0,
        "runc's set-up, before the restart, is counted"
    );
    eprintln!(
        "[figure] pinned: ring entries after an agent restart: {} (overwritten: {})",
        ring(rec).len(),
        rec["flight_recorder_overwritten"]
    );
    assert!(ring(rec).len() > 14, "more than an unpinned restart keeps");
}

#[tokio::test(flavor = "multi_thread")]
async fn recorder_loaded_while_the_container_runs_is_partial_since_the_load() {
    let cd = Containerd::start().await;
    let mut agent = Agent::builder(&cd).arg("--no-bpf-pin").start().await;
    let cri = cd.cri().await;
    let pid = start_blocked(&cri, "late").await;

    // Unpinned: the recorder dies with the process and the next one starts empty.
    agent.kill9();
    let restarted_at = chrono::Utc::now();
    agent.restart().await;
    release(pid);

    let r = agent.report_for("late", "app").await;
    let rec = &r["recorder"];
    assert_eq!(rec["state"], "partial", "{rec}");
    let gap = &rec["gap"];
    assert_eq!(gap["missing"], "everything", "{gap}");
    assert_eq!(gap["cause"], "loaded_after_start", "{gap}");
    let until: chrono::DateTime<chrono::Utc> = gap["until"].as_str().unwrap().parse().unwrap();
    let from: chrono::DateTime<chrono::Utc> = gap["from"].as_str().unwrap().parse().unwrap();
    assert!(from < until, "{gap}");
    assert!(
        until >= restarted_at - chrono::Duration::milliseconds(50),
        "recorded since the new load ({until}), not before the restart ({restarted_at})"
    );
    assert!(
        rec["reason"]
            .as_str()
            .unwrap()
            .contains("recorded only from"),
        "{}",
        rec["reason"]
    );
    assert!(marker_open(rec).is_none(), "nothing from before the load");
    eprintln!(
        "[figure] unpinned: ring entries after an agent restart: {}",
        ring(rec).len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pinned_recorder_of_another_layout_is_replaced_and_reports_say_so() {
    let cd = Containerd::start().await;
    // A different ring size is a different layout: the maps cannot be shared.
    let mut agent = Agent::builder(&cd)
        .args(["--recorder-ring", "64"])
        .start()
        .await;
    let pin = agent
        .pin_dir()
        .expect("the harness pins the recorder")
        .to_path_buf();
    let before = layouts(&pin);
    assert_eq!(before.len(), 1, "{before:?}");
    let cri = cd.cri().await;
    let pid = start_blocked(&cri, "upgraded").await;

    agent.kill9();
    agent.restart_with_args(&[]).await;
    assert!(
        agent.log().contains("pinned flight recorder replaced"),
        "the replacement is logged"
    );
    let after = layouts(&pin);
    assert_eq!(after.len(), 1, "the old layout is gone: {after:?}");
    assert_ne!(after, before, "a new layout is pinned");
    release(pid);

    let r = agent.report_for("upgraded", "app").await;
    let rec = &r["recorder"];
    assert_eq!(rec["state"], "partial", "{rec}");
    assert_eq!(rec["gap"]["cause"], "layout_replaced", "{}", rec["gap"]);
    assert_eq!(rec["gap"]["missing"], "everything", "{}", rec["gap"]);
    assert!(
        rec["reason"].as_str().unwrap().contains("replaced"),
        "{}",
        rec["reason"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oom_kill_read_after_the_cgroup_is_gone_reports_the_kernels_figures() {
    let cd = Containerd::start().await;
    // The agent reads the usage a second late: the CRI plugin has deleted the task and the
    // kernel its memory cgroup by then (5-100 ms after the exit).
    let agent = Agent::builder(&cd)
        .env("CORONER_TEST_USAGE_DELAY_MS", "1000")
        .start()
        .await;
    let pod = cd.cri().await.run_pod("hog", "default").await;
    pod.container("tail")
        .command(["sh", "-c", "head -c 100000000 /dev/zero | tail"])
        .memory_limit(20 << 20)
        .start()
        .await;
    let r = agent.report_for("hog", "tail").await;
    let cgroup = &r["cgroup"];
    let path = cgroup["path"].as_str().expect("the cgroup path was known");
    let fs = coroner::cgroup::CgroupFs::detect().expect("reading mountinfo");
    let memory_root = fs
        .v1_mount("memory")
        .or_else(|| fs.unified_mount())
        .expect("a memory hierarchy");
    let dir = memory_root.join(path.trim_start_matches('/'));
    assert!(
        !dir.exists(),
        "{} is gone, as for a late agent",
        dir.display()
    );
    assert_eq!(
        cgroup["usage_source"], "kernel_at_exit",
        "the files were gone, the kernel's figures stand in: {cgroup}"
    );
    let usage = &cgroup["usage"];
    let peak = usage["memory_peak_bytes"].as_u64().unwrap_or(0);
    assert!(
        peak > 15 << 20 && peak <= 20 << 20,
        "peak at the 20 MiB limit: {usage}"
    );
    assert!(
        usage["oom_kill_count"].as_u64().unwrap_or(0) >= 1,
        "{usage}"
    );
    // The exited threads' CPU time, summed in the kernel, and the pids cgroup's peak (sh, head
    // and tail at once).
    assert!(usage["cpu_usage_usec"].as_u64().unwrap_or(0) > 0, "{usage}");
    assert!(usage["pids_peak"].as_u64().unwrap_or(0) >= 2, "{usage}");
    assert_eq!(r["oom"]["killed"], true, "{}", r["oom"]);
    let errors = r["collection_errors"].as_array().unwrap();
    assert!(
        !errors.iter().any(|e| e["stage"] == "cgroup_gone"),
        "no cgroup_gone when the kernel kept the figures: {errors:?}"
    );
}
