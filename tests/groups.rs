//! End-to-end tests of crash-loop grouping and the live feed: a pod whose container crashes
//! again and again, the way kubelet restarts it (same pod, attempt 0, 1, 2, ...), read through
//! `/api/v1/groups` and `/api/v1/events`.

mod harness;

use std::time::Instant;

use harness::{Agent, Containerd};
use serde_json::Value;

use harness::agent::REPORT_TIMEOUT;

fn groups_of(list: &Value, container: &str) -> Vec<Value> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|g| g["workload"]["container"] == container)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_attempts_of_a_crash_loop_are_one_group_until_the_cause_changes() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    // A Deployment's pod name: the group is keyed by its owner, `gateway`.
    let pod = cd
        .cri()
        .await
        .run_pod("gateway-7d9f8b6c5d-x2x9q", "edge")
        .await;
    let mut ids = Vec::new();
    for attempt in 0..3 {
        pod.container("app")
            .command(["cat", "/etc/gateway/config.yaml"])
            .attempt(attempt)
            .start()
            .await;
        let r = agent
            .report_for_attempt("gateway-7d9f8b6c5d-x2x9q", "app", attempt.into())
            .await;
        ids.push(r["id"].as_str().unwrap().to_string());
    }

    let (status, list) = agent.get("/api/v1/groups").await;
    assert_eq!(status, 200, "{list}");
    let groups = groups_of(&list, "app");
    assert_eq!(groups.len(), 1, "{list}");
    let g = &groups[0];
    assert_eq!(g["count"], 3, "{g}");
    assert_eq!(g["cause"], "exited_error");
    assert_eq!(g["key"], "openat /etc/gateway/config.yaml ENOENT");
    assert_eq!(g["workload"]["owner"], "gateway");
    assert_eq!(g["workload"]["namespace"], "edge");
    assert_eq!(g["latest_report_id"], ids[2].as_str());
    let listed: Vec<&str> = g["report_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed, [&ids[2], &ids[1], &ids[0]], "newest first");
    assert_eq!(g["cause_changed"], false);
    assert_eq!(g["current"], true);
    assert!(g["first_seen"].as_str() < g["last_seen"].as_str(), "{g}");
    // Each report names its group.
    let (_, crashes) = agent
        .get("/api/v1/crashes?pod=gateway-7d9f8b6c5d-x2x9q")
        .await;
    for item in crashes["items"].as_array().unwrap() {
        assert_eq!(item["group_id"], g["id"], "{item}");
        assert_eq!(item["cause"], "exited_error");
    }

    // Attempt 3 gets further and dies of something else: a new group, and both say so.
    pod.container("app")
        .command(["sh", "-c", "/app/bin/start"])
        .attempt(3)
        .start()
        .await;
    agent
        .report_for_attempt("gateway-7d9f8b6c5d-x2x9q", "app", 3)
        .await;
    let (_, list) = agent.get("/api/v1/groups?namespace=edge").await;
    let groups = groups_of(&list, "app");
    assert_eq!(groups.len(), 2, "{list}");
    let (new, old) = (&groups[0], &groups[1]);
    assert_eq!(new["cause"], "exec_failed", "most recent first: {list}");
    assert_eq!(new["count"], 1);
    assert_eq!(new["cause_changed"], true);
    assert_eq!(new["previous_cause"], "exited_error");
    assert_eq!(new["current"], true);
    assert_eq!(old["cause_changed"], true);
    assert_eq!(old["current"], false);

    // One group by id, filters, and errors.
    let (status, one) = agent
        .get(&format!("/api/v1/groups/{}", old["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["count"], 3, "{one}");
    let (_, filtered) = agent.get("/api/v1/groups?cause=exec_failed").await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1, "{filtered}");
    let (status, err) = agent.get("/api/v1/groups?cause=sadness").await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "cause", "{err}");
    let (status, err) = agent.get("/api/v1/groups/0123456789abcdef").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "not_found", "{err}");

    let (_, metrics) = agent.get_text("/metrics").await;
    assert!(
        metrics.contains(r#"coroner_crash_causes_total{namespace="edge",cause="exited_error"} 3"#),
        "{metrics}"
    );
}

/// Reads SSE frames off a streaming response until `want` `crash` events arrived.
async fn read_crash_events(resp: &mut reqwest::Response, want: usize) -> Vec<(String, Value)> {
    let deadline = Instant::now() + REPORT_TIMEOUT;
    let mut buf = String::new();
    let mut events = Vec::new();
    while events.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no crash event within {REPORT_TIMEOUT:?}; got {buf:?}"))
            .expect("reading the event stream")
            .expect("the stream ended");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start().to_string()))
            };
            if field("event:").as_deref() == Some("crash") {
                let id = field("id:").expect("crash events carry an id");
                let data: Value = serde_json::from_str(&field("data:").unwrap()).unwrap();
                events.push((id, data));
            }
        }
    }
    events
}

async fn subscribe(agent: &Agent, last_event_id: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{}/api/v1/events", agent.base_url()));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.send().await.expect("GET /api/v1/events");
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    resp
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_stream_delivers_a_new_crash_and_replays_after_a_reconnect() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let mut live = subscribe(&agent, None).await;
    let pod = cd.cri().await.run_pod("feed", "default").await;
    pod.container("first")
        .command(["sh", "-c", "exit 3"])
        .start()
        .await;
    let got = read_crash_events(&mut live, 1).await;
    let (id, summary) = &got[0];
    assert_eq!(summary["id"], id.as_str());
    assert_eq!(summary["pod"], "feed");
    assert_eq!(summary["container"], "first");
    assert_eq!(summary["exit_code"], 3);
    assert_eq!(summary["cause"], "exited_error");
    assert!(summary["diagnosis"]
        .as_str()
        .unwrap()
        .starts_with("Exited 3"));
    drop(live);

    // Two crashes while disconnected: a reconnect with Last-Event-ID gets both, in order.
    for name in ["second", "third"] {
        pod.container(name)
            .command(["sh", "-c", "exit 4"])
            .start()
            .await;
        agent.report_for_attempt("feed", name, 0).await;
    }
    let mut again = subscribe(&agent, Some(id)).await;
    let replayed = read_crash_events(&mut again, 2).await;
    let names: Vec<&Value> = replayed.iter().map(|(_, s)| &s["container"]).collect();
    assert_eq!(names, ["second", "third"], "{replayed:?}");
}
