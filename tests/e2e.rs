//! End-to-end: a private containerd with the CRI plugin, containers created the way kubelet
//! creates them, and the agent binary under test, read only through its HTTP API.

mod harness;

use std::time::Duration;

use harness::{metric_value, Agent, Containerd, BUSYBOX_IMAGE, PLAIN_NAMESPACE};
use reqwest::StatusCode;
use serde_json::Value;

use harness::agent::REPORT_TIMEOUT;

#[tokio::test(flavor = "multi_thread")]
async fn exit_3_is_reported_as_crashed_with_code_3_and_identity() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    let pod = cri
        .pod("checkout", "shop")
        .uid("6f1c2a7e-0000-4000-8000-000000000001")
        .run()
        .await;
    let id = pod
        .container("api")
        .command(["sh", "-c", "exit 3", "--", "--password=hunter2"])
        .env("DB_PASSWORD", "hunter2")
        .env("LANG", "C")
        .working_dir("/tmp")
        .start()
        .await;

    let r = agent.report_for_attempt("checkout", "api", 0).await;
    assert_eq!(r["exit"]["code"], 3);
    assert_eq!(r["exit"]["signal"], Value::Null);
    assert_eq!(r["outcome"], "crashed");
    assert_eq!(r["recovered"], false);
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["container"]["id"], id.as_str());
    assert_eq!(r["container"]["namespace"], "k8s.io");
    assert_eq!(r["kubernetes"]["namespace"], "shop");
    assert_eq!(
        r["kubernetes"]["pod_uid"],
        "6f1c2a7e-0000-4000-8000-000000000001"
    );
    assert_eq!(r["kubernetes"]["sandbox_id"], pod.id.as_str());
    assert!(
        r["kubernetes"]["log_path"]
            .as_str()
            .is_some_and(|p| p.ends_with(".log")),
        "{}",
        r["kubernetes"]
    );
    // The digest of the image that actually ran, so a stale cached image is visible.
    assert_eq!(
        r["container"]["image_digest"],
        cd.images().busybox.manifest_digest.as_str()
    );
    assert!(
        r["container"]["image"]
            .as_str()
            .is_some_and(|i| i.contains("coroner-test/busybox")),
        "{}",
        r["container"]["image"]
    );
    assert_eq!(r["container"]["cwd"], "/tmp");
    assert_eq!(r["container"]["command"][2], "exit 3");
    // Secrets: names kept, values gone, credential-looking arguments redacted.
    let env_keys: Vec<&str> = r["container"]["env_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        env_keys.contains(&"DB_PASSWORD") && env_keys.contains(&"LANG"),
        "{env_keys:?}"
    );
    assert!(
        !r.to_string().contains("hunter2"),
        "a secret leaked into the report: {r}"
    );
    // Lifecycle and cgroup snapshot.
    let runtime = r["lifecycle"]["runtime_ms"].as_u64().expect("runtime_ms");
    assert!(runtime < 5_000, "runtime {runtime} ms");
    assert!(r["lifecycle"]["created_at"].is_string() && r["lifecycle"]["started_at"].is_string());
    assert_eq!(r["cgroup"]["version"], "v1");
    assert!(
        r["cgroup"]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with(&id)),
        "{}",
        r["cgroup"]
    );
    assert!(
        r["cgroup"]["usage"]["cpu_usage_usec"].is_u64(),
        "usage read at exit: {}",
        r["cgroup"]
    );
    assert_eq!(r["collection_errors"], serde_json::json!([]));

    // Stopping the pod kills its sandbox (pause) container: that exit is never a report.
    pod.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, list) = agent.get("/api/v1/crashes?outcome=all&pod=checkout").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_0_is_completed_and_only_listed_when_asked() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let pod = cd.cri().await.run_pod("batch", "jobs").await;
    pod.container("once").command(["true"]).start().await;
    let r = agent.report_for_attempt("batch", "once", 0).await;
    assert_eq!(r["outcome"], "completed");
    assert_eq!(r["exit"]["code"], 0);
    let (_, crashed) = agent.get("/api/v1/crashes?namespace=jobs").await;
    assert_eq!(
        crashed["items"],
        serde_json::json!([]),
        "completed runs are not crashes"
    );
    let (_, all) = agent
        .get("/api/v1/crashes?namespace=jobs&outcome=all")
        .await;
    assert_eq!(all["items"][0]["id"], r["id"]);
    let (_, completed) = agent
        .get("/api/v1/crashes?namespace=jobs&outcome=completed")
        .await;
    assert_eq!(completed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn oom_kill_under_20mb_limit_reports_peak_at_limit() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let pod = cd.cri().await.run_pod("gateway", "edge").await;
    let limit: u64 = 20 << 20;
    // `tail` is the init process (the shell execs it) and the OOM killer's victim: a real
    // SIGKILL. (Under `sh -c 'a | b'` the shell would exit(137) itself after its child was
    // killed.) The second first: the shim registers its OOM watch on the cgroup only after the
    // start, and an OOM before that has no containerd event (seen at load 7).
    pod.container("beam")
        .command(["sh", "-c", "sleep 1; exec tail /dev/zero"])
        .memory_limit(limit as i64)
        .start()
        .await;
    let r = agent.report_for_attempt("gateway", "beam", 0).await;
    assert_eq!(r["oom"]["killed"], true, "{}", r["oom"]);
    assert!(r["oom"]["kills"].as_u64().unwrap_or(0) >= 1, "{}", r["oom"]);
    assert_eq!(r["exit"]["code"], 137);
    assert_eq!(r["exit"]["signal_name"], "SIGKILL");
    assert_eq!(r["cgroup"]["limits"]["memory_limit_bytes"], limit);
    let peak = r["cgroup"]["usage"]["memory_peak_bytes"]
        .as_u64()
        .expect("peak read at exit");
    assert!(
        peak >= limit * 9 / 10 && peak <= limit,
        "peak {peak} vs limit {limit}"
    );

    let (_, metrics) = agent.get_text("/metrics").await;
    assert!(
        metrics.contains(
            r#"coroner_oom_kills_total{namespace="edge",pod="gateway",container="beam"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"reason="oom_killed"} 1"#), "{metrics}");
    // containerd's OOM event comes from the shim's own watch on the cgroup and may land after
    // the exit that the report was written for: give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, metrics) = agent.get_text("/metrics").await;
        if metrics.contains(r#"coroner_events_received_total{topic="task_oom"}"#) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no task_oom event counted: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn segfault_on_itself_reports_sigsegv() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    // Like `shareProcessNamespace: true`: pause is pid 1, so the shell is not a namespace init,
    // which the kernel shields from signals it has no handler for.
    let pod = cd
        .cri()
        .await
        .pod("native", "default")
        .share_process_namespace()
        .run()
        .await;
    pod.container("worker")
        .command(["sh", "-c", "kill -SEGV $$"])
        .start()
        .await;
    let r = agent.report_for_attempt("native", "worker", 0).await;
    assert_eq!(r["exit"]["signal_name"], "SIGSEGV");
    assert_eq!(r["exit"]["code"], 139);
    assert_eq!(r["oom"]["killed"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_by_cri_reports_termination_signal_not_oom() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("web", "default").await;
    let id = pod
        .container("nginx")
        .command(["sleep", "3600"])
        .start()
        .await;
    cri.wait_running(&id, Duration::from_secs(10)).await;
    cri.stop_container(&id, 1).await;
    let r = agent.report_for_attempt("web", "nginx", 0).await;
    let sig = r["exit"]["signal_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(sig == "SIGTERM" || sig == "SIGKILL", "{}", r["exit"]);
    // An exit 137 without OOM evidence must not be called an OOM kill.
    assert_eq!(r["oom"]["killed"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loop_second_attempt_is_attempt_1() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let pod = cd.cri().await.run_pod("loop", "default").await;
    pod.container("app")
        .command(["sh", "-c", "exit 1"])
        .start()
        .await;
    let first = agent.report_for_attempt("loop", "app", 0).await;
    pod.container("app")
        .command(["sh", "-c", "exit 1"])
        .attempt(1)
        .start()
        .await;
    let second = agent.report_for_attempt("loop", "app", 1).await;
    assert_ne!(first["id"], second["id"]);
    assert_ne!(first["container"]["id"], second["container"]["id"]);
    let (_, list) = agent.get("/api/v1/crashes?pod=loop&container=app").await;
    let attempts: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["attempt"])
        .collect();
    assert_eq!(attempts, [&Value::from(1), &Value::from(0)], "newest first");
}

#[tokio::test(flavor = "multi_thread")]
async fn container_running_before_agent_starts_is_tracked() {
    let cd = Containerd::start().await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("early", "default").await;
    let id = pod
        .container("bird")
        .command(["sh", "-c", "sleep 3; exit 7"])
        .memory_limit(64 << 20)
        .start()
        .await;
    cri.wait_running(&id, Duration::from_secs(10)).await;
    let agent = Agent::start(&cd).await;
    let r = agent.report_for_attempt("early", "bird", 0).await;
    assert_eq!(r["exit"]["code"], 7);
    assert_eq!(r["recovered"], false);
    // Tracked from the reconcile at start-up: limits snapshot and start time are known.
    assert_eq!(r["cgroup"]["limits"]["memory_limit_bytes"], 64u64 << 20);
    let runtime = r["lifecycle"]["runtime_ms"]
        .as_u64()
        .expect("start time from /proc");
    assert!((2_500..10_000).contains(&runtime), "runtime {runtime} ms");
}

#[tokio::test(flavor = "multi_thread")]
async fn containerd_restart_does_not_lose_the_next_exit() {
    let mut cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let pod = cd.cri().await.run_pod("survivor", "default").await;
    // Runs across the restart and exits afterwards.
    pod.container("long")
        .command(["sh", "-c", "sleep 4; exit 6"])
        .start()
        .await;
    cd.restart().await;
    let after = cd.cri().await;
    let pod2 = after.run_pod("fresh", "default").await;
    pod2.container("short")
        .command(["sh", "-c", "exit 4"])
        .start()
        .await;
    let fresh = agent.report_for_attempt("fresh", "short", 0).await;
    assert_eq!(fresh["exit"]["code"], 4);
    let long = agent.report_for_attempt("survivor", "long", 0).await;
    assert_eq!(long["exit"]["code"], 6);
    let (_, metrics) = agent.get_text("/metrics").await;
    let reconnects = metric_value(&metrics, "coroner_containerd_reconnects_total")
        .unwrap_or_else(|| panic!("coroner_containerd_reconnects_total not found in:\n{metrics}"));
    assert!(reconnects >= 1.0, "{metrics}");
    let (code, ready) = agent.get("/readyz").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(ready["containerd"]["connected"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_kill9_and_restart_keeps_reports_and_recovers_missed_exit() {
    let cd = Containerd::start().await;
    let mut agent = Agent::start(&cd).await;
    let pod = cd.cri().await.run_pod("durable", "default").await;
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        pod.container(name)
            .command(["sh", "-c", &format!("exit {}", i + 1)])
            .start()
            .await;
        agent.report_for_attempt("durable", name, 0).await;
    }
    let before = all_ids(&agent).await;
    assert_eq!(before.len(), 3);

    // Killed right after an exit it was handling, and down while a plain container exits: the
    // stopped task stays listed in containerd, so the restarted agent recovers it.
    let plain = cd
        .plain("missed")
        .command(["sh", "-c", "sleep 1; exit 9"])
        .run()
        .await;
    agent.kill9();
    plain.wait_exited(Duration::from_secs(10)).await;
    agent.restart().await;

    let recovered = agent
        .wait_for_report(|r| r["container"]["id"] == "missed", REPORT_TIMEOUT)
        .await;
    assert_eq!(recovered["recovered"], true);
    assert_eq!(recovered["exit"]["code"], 9);
    assert_eq!(recovered["kubernetes"], Value::Null);
    let after = all_ids(&agent).await;
    assert_eq!(
        after.len(),
        4,
        "nothing duplicated, nothing lost: {after:?}"
    );
    assert!(before.iter().all(|id| after.contains(id)));

    // A second restart finds the same stopped task again and does not report it twice.
    agent.restart().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(all_ids(&agent).await.len(), 4);
    plain.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_containerd_container_is_reported_without_kubernetes_identity() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let plain = cd
        .plain("plain-exit")
        .command(["sh", "-c", "exit 3"])
        .memory_limit(32 << 20)
        .run()
        .await;
    let r = agent
        .wait_for_report(|r| r["container"]["id"] == "plain-exit", REPORT_TIMEOUT)
        .await;
    assert_eq!(r["container"]["namespace"], PLAIN_NAMESPACE);
    assert_eq!(r["kubernetes"], Value::Null);
    assert_eq!(r["exit"]["code"], 3);
    assert_eq!(r["container"]["image"], BUSYBOX_IMAGE);
    assert_eq!(r["cgroup"]["limits"]["memory_limit_bytes"], 32u64 << 20);
    let (_, list) = agent
        .get(&format!("/api/v1/crashes?namespace={PLAIN_NAMESPACE}"))
        .await;
    assert_eq!(list["items"][0]["container"], "plain-exit");
    plain.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_json_4xx_errors() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let (code, body) = agent.get("/api/v1/crashes/0123456789abcdef0123").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (code, _) = agent.get("/api/v1/crashes/..%2F..%2Fetc%2Fpasswd").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    for (query, param) in [
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("outcome=dead", "outcome"),
        ("cursor=xyz", "cursor"),
        ("colour=red", "colour"),
    ] {
        let (code, body) = agent.get(&format!("/api/v1/crashes?{query}")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["param"], param, "{query}: {body}");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(param)));
    }
    let (code, body) = agent.get("/api/v1/nothing").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (code, _) = agent.get_text("/healthz").await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_pages_with_cursor_and_since() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let pod = cd.cri().await.run_pod("pages", "default").await;
    for i in 0..5 {
        let name = format!("c{i}");
        pod.container(&name)
            .command(["sh", "-c", "exit 2"])
            .start()
            .await;
        agent.report_for_attempt("pages", &name, 0).await;
    }
    let (_, first) = agent.get("/api/v1/crashes?pod=pages&limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let mut seen: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().into())
        .collect();
    let mut cursor = first["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let (_, page) = agent
            .get(&format!("/api/v1/crashes?pod=pages&limit=2&cursor={c}"))
            .await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen.len(), 5);
    let newest = first["items"][0]["exited_at"].as_str().unwrap();
    let (_, since) = agent
        .get(&format!(
            "/api/v1/crashes?pod=pages&since={}",
            newest.replace('+', "%2B")
        ))
        .await;
    assert_eq!(since["items"].as_array().unwrap().len(), 1);
}

async fn all_ids(agent: &Agent) -> Vec<String> {
    let (_, list) = agent.get("/api/v1/crashes?outcome=all&limit=1000").await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_started_before_containerd_is_unready_then_reports() {
    let mut cd = Containerd::start().await;
    cd.kill();
    let mut agent = Agent::builder(&cd).spawn();
    // Serving, but not ready while containerd is not there.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (code, body) = loop {
        if let Ok(resp) = reqwest::get(format!("{}/readyz", agent.base_url())).await {
            let code = resp.status();
            break (code, resp.json::<Value>().await.unwrap_or(Value::Null));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "agent never served HTTP:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["containerd"]["connected"], false);
    let (code, _) = agent.get_text("/healthz").await;
    assert_eq!(code, StatusCode::OK, "alive while unready");

    cd.resume().await;
    agent.wait_ready().await;
    let pod = cd.cri().await.run_pod("late", "default").await;
    pod.container("app")
        .command(["sh", "-c", "exit 5"])
        .start()
        .await;
    let r = agent.report_for_attempt("late", "app", 0).await;
    assert_eq!(r["exit"]["code"], 5);
}
