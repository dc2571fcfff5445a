//! End-to-end tests on the node most clusters run: cgroup v2 only, containerd with the CRI plugin
//! and `SystemdCgroup = true`, pods in `kubepods.slice/.../cri-containerd-<id>.scope`.
//!
//! These run INSIDE the VM that `scripts/test-vm.sh` boots (Debian trixie or sid, see
//! docs/test-vm.md), against the node's own containerd (`/run/containerd/containerd.sock`) and
//! the static agent binary the image ships (`CORONER_TEST_AGENT_BIN`). Cargo.toml marks the
//! target `test = false`, so the host's `cargo test` never runs it; run anywhere else it fails at
//! once (it checks the node first), it never skips.
//!
//! Pods are made the way kubelet with `--cgroup-driver=systemd` makes them (the harness's CRI
//! calls with a `kubepods-besteffort-pod<uid>.slice` parent); reports are read over the agent's
//! HTTP API.

mod harness;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use harness::cri::Pod;
use harness::{images, Agent, Cri, K8S_NAMESPACE};
use serde_json::Value;

const SOCKET: &str = "/run/containerd/containerd.sock";
const POD_LOGS: &str = "/var/log/pods";
/// Software emulation (TCG) runs containers ~20x slower than the host.
const REPORT_WAIT: Duration = Duration::from_secs(120);
const MIB: u64 = 1 << 20;

/// The node's CRI and a fresh agent against it. Panics unless this is a cgroup v2-only node whose
/// containerd answers: these tests never pass anywhere else.
async fn node() -> (Cri, Agent) {
    let controllers = Path::new("/sys/fs/cgroup/cgroup.controllers");
    assert!(
        controllers.is_file(),
        "{} missing: not a cgroup v2 unified node (run these tests with scripts/test-vm.sh)",
        controllers.display()
    );
    assert!(
        Path::new(SOCKET).exists(),
        "{SOCKET} missing: no node containerd (run these tests with scripts/test-vm.sh)"
    );
    static IMPORTED: OnceLock<()> = OnceLock::new();
    tokio::task::spawn_blocking(|| {
        IMPORTED.get_or_init(|| images::import(Path::new(SOCKET), K8S_NAMESPACE));
    })
    .await
    .expect("importing the test images");
    let cri = Cri::connect_systemd(Path::new(SOCKET), Path::new(POD_LOGS)).await;
    for image in [images::BUSYBOX_IMAGE, images::PAUSE_IMAGE] {
        cri.wait_image(image, Duration::from_secs(60)).await;
    }
    let agent = Agent::builder_for_socket(Path::new(SOCKET)).start().await;
    (cri, agent)
}

async fn report_of(agent: &Agent, id: &str) -> Value {
    let id = id.to_string();
    agent
        .wait_for_report(move |r| r["container"]["id"] == id.as_str(), REPORT_WAIT)
        .await
}

/// Where runc with the systemd driver puts a container of a best-effort pod, below the root.
fn scope_path(pod: &Pod, container_id: &str) -> String {
    format!(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{container_id}.scope",
        pod.uid.replace('-', "_")
    )
}

fn scope_dir(pod: &Pod, container_id: &str) -> PathBuf {
    PathBuf::from(format!("/sys/fs/cgroup{}", scope_path(pod, container_id)))
}

fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} missing or not a number in {v}"))
}

fn failures_of<'a>(r: &'a Value, syscall: &str, errno: &str) -> Vec<&'a Value> {
    r["recorder"]["flight_recorder"]
        .as_array()
        .unwrap_or_else(|| panic!("no flight recorder in {}", r["recorder"]))
        .iter()
        .filter(|e| e["syscall"] == syscall && e["errno"] == errno)
        .collect()
}

fn args_contain(e: &Value, needle: &str) -> bool {
    e["args"].as_array().is_some_and(|a| {
        a.iter()
            .any(|x| x.as_str().is_some_and(|s| s.contains(needle)))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_code_is_reported_with_the_scope_path_and_limits_under_systemd_slices() {
    let (cri, agent) = node().await;
    let pod = cri.run_pod("web", "default").await;
    let id = pod
        .container("app")
        .command(["sh", "-c", "sleep 0.5; exit 3"])
        .memory_limit(64 << 20)
        .cpu_quota(50_000, 100_000)
        .start()
        .await;
    let r = report_of(&agent, &id).await;
    assert_eq!(r["exit"]["code"], 3, "{}", r["exit"]);
    assert_eq!(r["kubernetes"]["pod"], "web");
    assert_eq!(r["kubernetes"]["container"], "app");
    assert_eq!(r["kubernetes"]["pod_uid"], pod.uid.as_str());
    let cg = &r["cgroup"];
    assert_eq!(cg["version"], "v2", "{cg}");
    assert_eq!(cg["path"], scope_path(&pod, &id).as_str(), "{cg}");
    assert_eq!(u64_at(cg, "/limits/memory_limit_bytes"), 64 * MIB, "{cg}");
    assert_eq!(u64_at(cg, "/limits/cpu_quota_us"), 50_000, "{cg}");
    assert_eq!(u64_at(cg, "/limits/cpu_period_us"), 100_000, "{cg}");
    assert!(u64_at(cg, "/usage/cpu_usage_usec") > 0, "{cg}");
    assert_eq!(r["collection_errors"], serde_json::json!([]), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn container_living_50_ms_is_reported_with_its_usage() {
    let (cri, agent) = node().await;
    let pod = cri.run_pod("blink", "default").await;
    let id = pod
        .container("once")
        .command(["sh", "-c", "sleep 0.05; exit 7"])
        .start()
        .await;
    let r = report_of(&agent, &id).await;
    assert_eq!(r["exit"]["code"], 7, "{}", r["exit"]);
    assert!(
        u64_at(&r, "/lifecycle/runtime_ms") >= 50,
        "{}",
        r["lifecycle"]
    );
    let cg = &r["cgroup"];
    assert_eq!(cg["path"], scope_path(&pod, &id).as_str(), "{cg}");
    // From the files when the agent beats systemd's removal of the empty scope, else from the
    // kernel's figures at the exit (the recorder's cgroup found by the init's exit event when
    // the scope was gone before the agent saw it).
    assert!(
        r.pointer("/cgroup/usage/cpu_usage_usec")
            .and_then(Value::as_u64)
            .is_some_and(|v| v > 0),
        "{r}"
    );
    assert!(u64_at(cg, "/usage/pids_peak") >= 1, "{cg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oom_kill_reports_victim_peak_at_limit_and_memory_events() {
    let (cri, agent) = node().await;
    let pod = cri.run_pod("gateway", "edge").await;
    let limit = 20 * MIB;
    let id = pod
        .container("beam")
        .command(["tail", "/dev/zero"])
        .memory_limit(limit as i64)
        .start()
        .await;
    let r = report_of(&agent, &id).await;
    assert_eq!(r["exit"]["code"], 137, "{}", r["exit"]);
    assert_eq!(r["oom"]["killed"], true, "{}", r["oom"]);
    let cg = &r["cgroup"];
    assert_eq!(u64_at(cg, "/limits/memory_limit_bytes"), limit, "{cg}");
    let peak = u64_at(cg, "/usage/memory_peak_bytes");
    assert!(
        peak <= limit && peak >= limit - 2 * MIB,
        "memory.peak {peak} against memory.max {limit}: {cg}"
    );
    // memory.events: `oom` and `oom_kill`.
    assert!(u64_at(cg, "/usage/oom_count") >= 1, "{cg}");
    assert!(u64_at(cg, "/usage/oom_kill_count") >= 1, "{cg}");
    assert!(u64_at(&r, "/oom/kills") >= 1, "{}", r["oom"]);
    let victim = &r["recorder"]["oom_victim"];
    assert_eq!(victim["comm"], "tail", "{}", r["recorder"]);
    assert_eq!(r["diagnosis"]["cause"], "oom_killed", "{}", r["diagnosis"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn syscall_failure_is_recorded_with_its_path_under_the_scope_cgroup_id() {
    let (cri, agent) = node().await;
    let pod = cri.run_pod("reader", "default").await;
    let id = pod
        .container("cat")
        .command(["sh", "-c", "sleep 2; cat /nonexistent"])
        .start()
        .await;
    cri.wait_running(&id, REPORT_WAIT).await;
    let pid = cri.container_pid(&id).await;
    // The container's cgroup as the kernel sees it, and the inode that the BPF programs'
    // bpf_get_current_cgroup_id() returns for it.
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(
        own.trim(),
        format!("0::{}", scope_path(&pod, &id)),
        "v2 only: one line"
    );
    let inode = std::fs::metadata(scope_dir(&pod, &id))
        .unwrap_or_else(|e| panic!("stat {}: {e}", scope_dir(&pod, &id).display()))
        .ino();
    eprintln!("scope {} inode {inode}", scope_path(&pod, &id));

    let r = report_of(&agent, &id).await;
    assert_eq!(r["exit"]["code"], 1, "{}", r["exit"]);
    let rec = &r["recorder"];
    // The agent keys the recorder by the inode of the scope directory named in the OCI spec: its
    // data is there only if that inode is the id the kernel gave the container's syscalls.
    assert_eq!(rec["state"], "recorded", "{rec}");
    let failing: Vec<&Value> = failures_of(&r, "openat", "ENOENT")
        .into_iter()
        .filter(|e| args_contain(e, "\"/nonexistent\""))
        .collect();
    assert_eq!(failing.len(), 1, "{}", rec["flight_recorder"]);
    assert_eq!(failing[0]["comm"], "cat");
    let pids: Vec<u64> = rec["flight_recorder"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["pid"].as_u64())
        .collect();
    assert!(
        pids.contains(&u64::from(pid)),
        "the container's init (pid {pid}) is among the recorded processes: {pids:?}"
    );
    assert_eq!(
        r["diagnosis"]["cause"], "exited_error",
        "{}",
        r["diagnosis"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_from_the_host_names_the_host_sender() {
    let (cri, agent) = node().await;
    let pod = cri.run_pod("victim", "default").await;
    let id = pod
        .container("sleeper")
        .command(["sleep", "3600"])
        .start()
        .await;
    cri.wait_running(&id, REPORT_WAIT).await;
    let pid = cri.container_pid(&id).await;
    // SAFETY: kill(2) on the pid CRI just gave us: a container process this test owns.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let r = report_of(&agent, &id).await;
    assert_eq!(r["exit"]["code"], 137, "{}", r["exit"]);
    assert_eq!(r["exit"]["signal_name"], "SIGKILL", "{}", r["exit"]);
    assert_eq!(r["oom"]["killed"], false, "{}", r["oom"]);
    let sig = &r["recorder"]["fatal_signal"];
    assert_eq!(sig["origin"], "host", "{sig}");
    assert_eq!(sig["sender_pid"], std::process::id(), "{sig}");
    assert_eq!(r["diagnosis"]["cause"], "killed", "{}", r["diagnosis"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn fork_loop_under_the_pod_slice_tasks_max_is_pids_limit() {
    let (cri, agent) = node().await;
    // kubelet's pod-level pids limit: TasksMax on the pod slice.
    let pod = cri.pod("forker", "default").pids_limit(12).run().await;
    let script = "i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; exit 1";
    let id = pod
        .container("bomb")
        .command(["sh", "-c", script])
        .start()
        .await;
    let r = report_of(&agent, &id).await;
    // The loop never reaches `exit 1`: the fork that finds the slice full fails with EAGAIN and
    // busybox sh gives up there, "can't fork", with the status of a shell error (2).
    assert_eq!(r["exit"]["code"], 2, "{}", r["exit"]);
    let stderr = &r["recorder"]["output"]["stderr"]["head"];
    assert!(
        stderr.as_str().is_some_and(|s| s.contains("can't fork")),
        "stderr: {stderr}"
    );
    let eagain: usize = ["clone", "clone3", "fork", "vfork"]
        .iter()
        .map(|s| failures_of(&r, s, "EAGAIN").len())
        .sum();
    let summary = &r["recorder"]["summary"];
    assert!(
        eagain >= 1
            || summary.as_array().is_some_and(|s| s.iter().any(|s| {
                s["syscall"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("clone"))
                    && s["errnos"]["EAGAIN"].as_u64().unwrap_or(0) >= 1
            })),
        "no clone EAGAIN recorded: {summary}"
    );
    assert_eq!(r["diagnosis"]["cause"], "pids_limit", "{}", r["diagnosis"]);
}
