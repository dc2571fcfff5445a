//! Containers that fail the ways production ones do, each run over CRI against a private
//! containerd and returned as the agent's report: the recorder tests assert what the kernel saw,
//! the diagnosis tests what coroner concludes, from the same runs.

use std::time::Duration;

use serde_json::Value;

use super::bench_images::{import_bench_image, BENCH_IMAGE, FLOCK};
use super::{Agent, Containerd};

/// `cat /nonexistent` (pod `reader`, container `cat`): exit 1 after openat = ENOENT.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub async fn missing_file(cd: &Containerd, agent: &Agent) -> Value {
    let pod = cd.cri().await.run_pod("reader", "default").await;
    pod.container("cat")
        .command(["cat", "/nonexistent"])
        .start()
        .await;
    agent.report_for("reader", "cat").await
}

/// A second `httpd` on a port the first holds (pod `gateway`, container `beam`): exit 1 after
/// bind = EADDRINUSE. Returns the report and the port.
#[allow(dead_code)]
pub async fn bind_held_port(cd: &Containerd, agent: &Agent) -> (Value, u32) {
    // The pod shares the host's network: a port per test process.
    let port = 20000 + (std::process::id() % 20000);
    let pod = cd.cri().await.run_pod("gateway", "default").await;
    let script =
        format!("httpd -f -p 127.0.0.1:{port} & sleep 0.5; exec httpd -f -p 127.0.0.1:{port}");
    pod.container("beam")
        .command(["sh", "-c", &script])
        .start()
        .await;
    (agent.report_for("gateway", "beam").await, port)
}

/// `flock -n` on `/dev/shm/mongod.lock`, which another container of the pod holds, as the
/// previous attempt of a database still does on redeploy (pod `mongo`, container `mongod`).
#[allow(dead_code)]
pub async fn lock_held(cd: &Containerd, agent: &Agent) -> Value {
    let cri = cd.cri().await;
    // util-linux flock(1) lives in the bench image (busybox has none).
    import_bench_image(cd).await;
    // Containers of one pod share the sandbox's /dev/shm.
    let pod = cri.run_pod("mongo", "db").await;
    let holder = pod
        .container("holder")
        .image(BENCH_IMAGE)
        .command([FLOCK, "-x", "/dev/shm/mongod.lock", "sleep", "30"])
        .start()
        .await;
    cri.wait_running(&holder, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    pod.container("mongod")
        .image(BENCH_IMAGE)
        .command([FLOCK, "-n", "-x", "/dev/shm/mongod.lock", "true"])
        .start()
        .await;
    let report = agent.report_for("mongo", "mongod").await;
    cri.stop_container(&holder, 1).await;
    report
}

/// `sh -c /app/bin/start` with no such file (pod `app`, container `start`): exit 127.
#[allow(dead_code)]
pub async fn exec_missing_binary(cd: &Containerd, agent: &Agent) -> Value {
    let pod = cd.cri().await.run_pod("app", "default").await;
    pod.container("start")
        .command(["sh", "-c", "/app/bin/start"])
        .start()
        .await;
    agent.report_for("app", "start").await
}

/// A shell starting 40 background sleeps in a pod whose pids.max is 12 (pod `forker`,
/// container `bomb`): clone = EAGAIN, then `sh: can't fork`.
#[allow(dead_code)]
pub async fn fork_loop_under_pids_max(cd: &Containerd, agent: &Agent) -> Value {
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
    agent.report_for("forker", "bomb").await
}

/// `sleep 3600` killed with SIGKILL by this test process, on the host (pod `victim`, container
/// `sleeper`).
#[allow(dead_code)]
pub async fn killed_from_host(cd: &Containerd, agent: &Agent) -> Value {
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
    agent.report_for("victim", "sleeper").await
}

/// `tail /dev/zero` under a 20 MiB limit (pod `gateway` in `edge`, container `beam`): the init
/// process is the OOM killer's victim.
#[allow(dead_code)]
pub async fn oom_of_init(cd: &Containerd, agent: &Agent) -> Value {
    let pod = cd.cri().await.run_pod("gateway", "edge").await;
    pod.container("beam")
        .command(["tail", "/dev/zero"])
        .memory_limit(20 << 20)
        .start()
        .await;
    agent.report_for("gateway", "beam").await
}
