//! End-to-end tests of the eBPF flight recorder: real containers created over CRI, reports read
//! through the agent's HTTP API, asserting what the kernel saw.

mod harness;

use harness::{metric_value, scenarios, Agent, Containerd};
use serde_json::Value;

fn recorder(r: &Value) -> &Value {
    let rec = &r["recorder"];
    assert_eq!(rec["state"], "recorded", "recorder data missing: {}", rec);
    rec
}

/// Flight-recorder entries for one syscall name.
fn calls<'a>(rec: &'a Value, section: &str, syscall: &str) -> Vec<&'a Value> {
    rec[section]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["syscall"] == syscall)
        .collect()
}

fn summary_errno(rec: &Value, syscall: &str, errno: &str) -> u64 {
    rec["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["syscall"] == syscall)
        .and_then(|s| s["errnos"][errno].as_u64())
        .unwrap_or(0)
}

fn args_contain(e: &Value, needle: &str) -> bool {
    e["args"].as_array().is_some_and(|a| {
        a.iter()
            .any(|x| x.as_str().is_some_and(|s| s.contains(needle)))
    })
}

async fn setup() -> (Containerd, Agent) {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    (cd, agent)
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_file_shows_openat_enoent_with_path() {
    let (cd, agent) = setup().await;
    let r = scenarios::missing_file(&cd, &agent).await;
    let rec = recorder(&r);
    let failing: Vec<&Value> = calls(rec, "flight_recorder", "openat")
        .into_iter()
        .filter(|e| e["errno"] == "ENOENT" && args_contain(e, "\"/nonexistent\""))
        .collect();
    assert_eq!(failing.len(), 1, "{}", rec["flight_recorder"]);
    assert_eq!(failing[0]["comm"], "cat");
    assert!(
        summary_errno(rec, "openat", "ENOENT") >= 1,
        "{}",
        rec["summary"]
    );
    let first = &rec["first_failures"];
    assert!(
        first
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["syscall"] == "openat" && args_contain(e, "/nonexistent")),
        "{first}"
    );
    assert!(
        rec["setup_syscalls"].as_u64().unwrap() > 0,
        "runc's set-up is counted apart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_to_a_held_port_shows_eaddrinuse_with_the_address() {
    let (cd, agent) = setup().await;
    let (r, port) = scenarios::bind_held_port(&cd, &agent).await;
    let rec = recorder(&r);
    let binds: Vec<&Value> = calls(rec, "flight_recorder", "bind")
        .into_iter()
        .filter(|e| e["errno"] == "EADDRINUSE")
        .collect();
    assert!(!binds.is_empty(), "{}", rec["flight_recorder"]);
    assert!(
        args_contain(binds[0], &format!("127.0.0.1:{port}")),
        "{}",
        binds[0]
    );
    assert!(summary_errno(rec, "bind", "EADDRINUSE") >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_held_by_another_container_shows_flock_eagain_with_path() {
    let (cd, agent) = setup().await;
    let r = scenarios::lock_held(&cd, &agent).await;
    assert_eq!(r["exit"]["code"], 1);
    let rec = recorder(&r);
    let flocks: Vec<&Value> = calls(rec, "flight_recorder", "flock")
        .into_iter()
        .filter(|e| e["errno"] == "EAGAIN")
        .collect();
    assert_eq!(flocks.len(), 1, "{}", rec["flight_recorder"]);
    assert!(args_contain(flocks[0], "LOCK_EX|LOCK_NB"), "{}", flocks[0]);
    assert!(
        args_contain(flocks[0], "/dev/shm/mongod.lock"),
        "the fd is annotated with its path: {}",
        flocks[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_of_missing_binary_shows_execve_enoent() {
    let (cd, agent) = setup().await;
    let r = scenarios::exec_missing_binary(&cd, &agent).await;
    assert_eq!(r["exit"]["code"], 127);
    let rec = recorder(&r);
    let execs: Vec<&Value> = calls(rec, "flight_recorder", "execve")
        .into_iter()
        .filter(|e| e["errno"] == "ENOENT")
        .collect();
    assert!(
        execs.iter().any(|e| args_contain(e, "/app/bin/start")),
        "{}",
        rec["flight_recorder"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fork_loop_under_pids_max_shows_clone_eagain() {
    let (cd, agent) = setup().await;
    let r = scenarios::fork_loop_under_pids_max(&cd, &agent).await;
    let rec = recorder(&r);
    let eagain: u64 = ["clone", "clone3", "fork", "vfork"]
        .iter()
        .map(|s| summary_errno(rec, s, "EAGAIN"))
        .sum();
    assert!(eagain >= 1, "{}", rec["summary"]);
    assert!(
        r["cgroup"]["usage"]["pids_max_events"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{}",
        r["cgroup"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn container_killed_from_the_host_names_the_host_sender() {
    let (cd, agent) = setup().await;
    let r = scenarios::killed_from_host(&cd, &agent).await;
    assert_eq!(r["exit"]["signal_name"], "SIGKILL");
    let sig = &recorder(&r)["fatal_signal"];
    assert_eq!(sig["origin"], "host", "{sig}");
    assert_eq!(sig["sender_pid"], std::process::id());
    assert_eq!(sig["signal"], "SIGKILL");
}

#[tokio::test(flavor = "multi_thread")]
async fn oom_kill_records_the_victim() {
    let (cd, agent) = setup().await;
    let pod = cd.cri().await.run_pod("hog", "default").await;
    pod.container("tail")
        .command(["sh", "-c", "head -c 100000000 /dev/zero | tail"])
        .memory_limit(20 << 20)
        .start()
        .await;
    let r = agent.report_for("hog", "tail").await;
    assert_eq!(r["oom"]["killed"], true);
    let victim = &recorder(&r)["oom_victim"];
    assert_eq!(victim["comm"], "tail", "{victim}");
    assert_eq!(
        victim["was_init"], false,
        "sh is init, tail was chosen: {victim}"
    );
    // RSS counts file-backed pages too (the binary, libc), which the memory limit does not: a
    // little above the 20 MiB limit is normal.
    let rss = victim["rss_bytes"].as_u64().unwrap();
    assert!(rss > 10 << 20 && rss <= 24 << 20, "victim RSS {rss}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oom_kill_of_init_is_kernel_oom_signal() {
    let (cd, agent) = setup().await;
    let r = scenarios::oom_of_init(&cd, &agent).await;
    let rec = recorder(&r);
    assert_eq!(rec["oom_victim"]["was_init"], true, "{}", rec["oom_victim"]);
    assert_eq!(
        rec["fatal_signal"]["origin"], "kernel_oom",
        "{}",
        rec["fatal_signal"]
    );
    assert_eq!(r["exit"]["signal_name"], "SIGKILL");
}

#[tokio::test(flavor = "multi_thread")]
async fn container_exiting_within_50ms_has_complete_data() {
    let (cd, agent) = setup().await;
    let pod = cd.cri().await.run_pod("blink", "default").await;
    pod.container("fast")
        .command(["sh", "-c", "exit 2"])
        .start()
        .await;
    let r = agent.report_for("blink", "fast").await;
    assert!(
        r["lifecycle"]["runtime_ms"].as_u64().unwrap() < 50,
        "{}",
        r["lifecycle"]
    );
    let rec = recorder(&r);
    let procs = rec["processes"].as_array().unwrap();
    assert!(
        procs
            .iter()
            .any(|p| p["kind"] == "exec"
                && p["filename"].as_str().is_some_and(|f| f.ends_with("sh"))),
        "{procs:?}"
    );
    assert!(
        procs
            .iter()
            .any(|p| p["kind"] == "exit" && p["exit_code"] == 2),
        "{procs:?}"
    );
    // exit_group never returns, so the recorder (which reads syscalls at their exit) shows the
    // process's exit in `processes`; the ring ends with the shell's own last calls.
    let ring = rec["flight_recorder"].as_array().unwrap();
    assert_eq!(
        ring.last().unwrap()["comm"],
        "sh",
        "the newest records are kept: {:?}",
        ring.last()
    );
    assert!(ring
        .iter()
        .any(|e| e["syscall"] == "execve" && e["comm"] == "sh" && e["ret"] == 0));
    assert!(rec["setup_syscalls"].as_u64().unwrap() > 0);
    assert!(!rec["summary"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn stdout_and_stderr_bytes_are_captured() {
    let (cd, agent) = setup().await;
    let pod = cd.cri().await.run_pod("talker", "default").await;
    let script = "echo hello-out; echo hello-err >&2; i=0; while [ $i -lt 1000 ]; do echo line-$i; i=$((i+1)); done; echo last-words >&2; exit 1";
    pod.container("app")
        .command(["sh", "-c", script])
        .start()
        .await;
    let r = agent.report_for("talker", "app").await;
    let out = &recorder(&r)["output"];
    assert_eq!(out["captured_by"], "coroner");
    assert!(
        out["stdout"]["head"]
            .as_str()
            .unwrap()
            .starts_with("hello-out\nline-0\n"),
        "{out}"
    );
    assert!(
        out["stdout"]["tail"]
            .as_str()
            .unwrap()
            .ends_with("line-999\n"),
        "{out}"
    );
    // 10 + 8890 bytes: more than the head and the tail hold together.
    assert_eq!(out["stdout"]["total_bytes"], 10 + 8890, "{out}");
    assert_eq!(out["stderr"]["head"], "hello-err\nlast-words\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn process_tree_with_several_execs_is_in_order() {
    let (cd, agent) = setup().await;
    let pod = cd.cri().await.run_pod("tree", "default").await;
    pod.container("init")
        .command(["sh", "-c", "/bin/true; /bin/echo hi; exec /bin/sleep 0.1"])
        .start()
        .await;
    let r = agent.report_for("tree", "init").await;
    let procs = recorder(&r)["processes"].as_array().unwrap();
    let execs: Vec<String> = procs
        .iter()
        .filter(|p| p["kind"] == "exec")
        .map(|p| p["filename"].as_str().unwrap_or_default().to_string())
        .collect();
    let order: Vec<&str> = ["true", "echo", "sleep"]
        .iter()
        .copied()
        .filter(|n| execs.iter().any(|e| e.ends_with(n)))
        .collect();
    assert_eq!(order, ["true", "echo", "sleep"], "{execs:?}");
    let pos = |n: &str| execs.iter().position(|e| e.ends_with(n)).unwrap();
    assert!(
        pos("true") < pos("echo") && pos("echo") < pos("sleep"),
        "{execs:?}"
    );
    assert!(
        procs.iter().filter(|p| p["kind"] == "fork").count() >= 2,
        "{procs:?}"
    );
    let argv = procs
        .iter()
        .find(|p| {
            p["kind"] == "exec" && p["filename"].as_str().is_some_and(|f| f.ends_with("echo"))
        })
        .unwrap();
    assert_eq!(argv["argv"], serde_json::json!(["/bin/echo", "hi"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_recorder_is_a_visible_degraded_mode() {
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd).arg("--no-recorder").start().await;
    let (_, ready) = agent.get("/readyz").await;
    assert_eq!(ready["ready"], true, "exits are still reported");
    assert_eq!(ready["recorder"]["state"], "disabled", "{ready}");
    let (_, metrics) = agent.get_text("/metrics").await;
    assert!(metrics.contains("coroner_recorder_loaded 0"), "{metrics}");
    let pod = cd.cri().await.run_pod("plain", "default").await;
    pod.container("c")
        .command(["sh", "-c", "exit 3"])
        .start()
        .await;
    let r = agent.report_for("plain", "c").await;
    assert_eq!(r["exit"]["code"], 3);
    assert_eq!(r["recorder"]["state"], "disabled");
    assert!(
        r["recorder"]["reason"]
            .as_str()
            .is_some_and(|s| s.contains("--no-recorder")),
        "{}",
        r["recorder"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn runc_set_up_is_never_taken_for_the_workload() {
    // runc re-executes itself (`runc init`) and is sometimes already in the container's cgroup
    // when it does; that exec must not start the workload's count. The race goes either way, so
    // several containers give it several chances to show.
    let (cd, agent) = setup().await;
    let pod = cd.cri().await.run_pod("setup", "default").await;
    let names: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    // Started all at once: runc is slowest to exec itself under load.
    futures_util::future::join_all(
        names
            .iter()
            .map(|name| pod.container(name).command(["sh", "-c", "exit 1"]).start()),
    )
    .await;
    for name in &names {
        let r = agent.report_for("setup", name).await;
        let rec = recorder(&r);
        for e in rec["first_failures"].as_array().unwrap() {
            assert!(
                !e["comm"].as_str().unwrap().starts_with("runc"),
                "{name}: runc's failure counted as the workload's: {e}"
            );
        }
        let summary: Vec<&str> = rec["summary"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["syscall"].as_str().unwrap())
            .collect();
        for setup_only in ["pivot_root", "seccomp", "mount", "sethostname"] {
            assert!(
                !summary.contains(&setup_only),
                "{name}: runc's {setup_only} in the workload's summary: {summary:?}"
            );
        }
        assert!(
            rec["setup_syscalls"].as_u64().unwrap() > 200,
            "{name}: runc's set-up is larger than {}",
            rec["setup_syscalls"]
        );
    }
}

/// More live containers than `--recorder-containers` (16, the minimum): the newest take over the
/// oldest slots, and the operator sees it in `/metrics` instead of only in `no_data` reports.
#[tokio::test(flavor = "multi_thread")]
async fn more_live_containers_than_recorder_slots_shows_in_the_eviction_metric() {
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd)
        .args(["--recorder-containers", "16"])
        .start()
        .await;
    let (_, before) = agent.get_text("/metrics").await;
    assert_eq!(
        metric_value(&before, "coroner_recorder_slot_evictions_total"),
        Some(0.0),
        "{before}"
    );
    let memory = metric_value(&before, "coroner_recorder_kernel_memory_bytes").unwrap_or(0.0);
    assert!(
        memory > f64::from(16 * 256 * 256),
        "the ring alone is 16 x 256 records of 256 bytes: {before}"
    );

    let pod = cd.cri().await.run_pod("crowd", "default").await;
    for i in 0..20 {
        pod.container(&format!("c{i}"))
            .command(["sh", "-c", "while true; do sleep 1; done"])
            .start()
            .await;
    }
    // The agent publishes the kernel's totals at every host-cgroup sweep (5 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, text) = agent.get_text("/metrics").await;
        let evictions = metric_value(&text, "coroner_recorder_slot_evictions_total");
        if evictions.is_some_and(|n| n >= 4.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "21 live cgroups (20 containers and the sandbox) in 16 slots evict at least 5 times: {evictions:?}\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A boot's noise of routine failures, then the telling one: 50 ENOENT opens, a bind to a port
/// another process of the container holds, then 300 more ENOENT opens that overwrite the flight
/// recorder. The first failures are all ENOENT; the kernel's first occurrence of each distinct
/// (syscall, errno) keeps the bind with its address, ranked before the lookups.
#[tokio::test(flavor = "multi_thread")]
async fn a_taken_port_survives_a_boot_of_enoent_noise_in_telling_failures() {
    let (cd, agent) = setup().await;
    // The pod shares the host's network: a port per test process (another than the bind test's).
    let port = 40000 + (std::process::id() % 20000);
    let pod = cd.cri().await.run_pod("noisy", "default").await;
    let script = format!(
        "i=0; while [ $i -lt 50 ]; do true < /missing-$i; i=$((i + 1)); done 2>/dev/null; \
         httpd -f -p 127.0.0.1:{port} & sleep 0.5; httpd -f -p 127.0.0.1:{port}; \
         i=0; while [ $i -lt 300 ]; do true < /late-$i; i=$((i + 1)); done 2>/dev/null; exit 3"
    );
    pod.container("gateway")
        .command(["sh", "-c", &script])
        .start()
        .await;
    let r = agent.report_for("noisy", "gateway").await;
    assert_eq!(r["exit"]["code"], 3, "{}", r["exit"]);
    let rec = recorder(&r);
    // The scenario did what it says: the noise filled the first failures and the ring.
    let first = rec["first_failures"].as_array().unwrap();
    assert!(
        first.len() == 8 && first.iter().all(|e| e["syscall"] != "bind"),
        "the first failures should be full of the boot's lookups: {}",
        rec["first_failures"]
    );
    assert!(
        calls(rec, "flight_recorder", "bind")
            .iter()
            .all(|e| e["errno"] != "EADDRINUSE"),
        "the later opens should have overwritten the failed bind in the ring: {}",
        rec["flight_recorder"]
    );
    let telling = rec["telling_failures"]
        .as_array()
        .expect("telling_failures");
    let bind = telling
        .iter()
        .position(|e| e["syscall"] == "bind" && e["errno"] == "EADDRINUSE")
        .unwrap_or_else(|| panic!("no bind EADDRINUSE in {}", rec["telling_failures"]));
    assert!(
        args_contain(&telling[bind], &format!("127.0.0.1:{port}")),
        "{}",
        telling[bind]
    );
    let enoent = telling
        .iter()
        .position(|e| e["errno"] == "ENOENT")
        .unwrap_or_else(|| {
            panic!(
                "the ENOENT opens are distinct failures too: {}",
                rec["telling_failures"]
            )
        });
    assert!(
        bind < enoent,
        "ranked before the lookups: {}",
        rec["telling_failures"]
    );
}
