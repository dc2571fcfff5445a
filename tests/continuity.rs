//! Lose no crash: every exit gets exactly one report, live or recovered, when the agent itself is
//! killed and restarted, and when containerd is killed and restarted, during kubelet-like crash
//! loops (each attempt a new CRI container, old ones kept until "kubelet" removes them).

mod harness;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{Agent, Containerd, Cri};
use k8s_cri::v1::{ContainerFilter, ContainerState, ContainerStateValue, ListContainersRequest};
use serde_json::Value;

/// Crash loops run at once, as separate pods.
const LOOPS: usize = 3;

/// Runs `LOOPS` crash loops (`echo ... >&2; exit 3`) until `stop` is set, each attempt a new
/// container of the same pod, the way kubelet restarts a crashing container (without its
/// back-off). Returns how many attempts were started.
async fn crash_loops(cri: Cri, tag: &str, stop: Arc<AtomicBool>) -> usize {
    let mut loops = Vec::new();
    for l in 0..LOOPS {
        let cri = cri.clone();
        let stop = stop.clone();
        let name = format!("{tag}-{l}");
        loops.push(tokio::spawn(async move {
            let pod = cri.run_pod(&name, "default").await;
            let mut attempt = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let started = pod
                    .container("app")
                    .command([
                        "sh",
                        "-c",
                        &format!("echo attempt {attempt} of {name} failing >&2; exit 3"),
                    ])
                    .attempt(attempt)
                    .try_start()
                    .await;
                match started {
                    Ok(id) => {
                        // containerd may be down right now (that is the point): keep trying.
                        let deadline = Instant::now() + Duration::from_secs(20);
                        while !exited(&cri, &id).await && Instant::now() < deadline {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        attempt += 1;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            attempt as usize
        }));
    }
    let mut total = 0;
    for l in loops {
        total += l.await.expect("crash loop task");
    }
    total
}

/// True once the container has exited; false while it runs or while containerd does not answer.
async fn exited(cri: &Cri, id: &str) -> bool {
    matches!(cri.try_container_status(id).await,
        Ok(s) if s.state == ContainerState::ContainerExited as i32)
}

/// Every exited container the CRI lists: id -> exit code (`None`: the CRI does not know it).
async fn cri_exited(cri: &Cri) -> HashMap<String, Option<i32>> {
    let req = ListContainersRequest {
        filter: Some(ContainerFilter {
            state: Some(ContainerStateValue {
                state: ContainerState::ContainerExited as i32,
            }),
            ..Default::default()
        }),
    };
    let listed = cri
        .runtime()
        .list_containers(req)
        .await
        .expect("ListContainers")
        .into_inner()
        .containers;
    let mut out = HashMap::new();
    for c in listed {
        let status = cri.container_status(&c.id).await;
        // After a containerd restart the CRI may have lost an exit it was handling: it then
        // says `Unknown` and 255, and only the agent has the real code.
        let code = (status.reason != "Unknown").then_some(status.exit_code);
        out.insert(c.id, code);
    }
    out
}

/// Every report the agent lists (completed ones too), by container id.
async fn reports_by_container(agent: &Agent) -> HashMap<String, Vec<Value>> {
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/crashes?outcome=all&limit=500&cursor={c}"),
            None => "/api/v1/crashes?outcome=all&limit=500".to_string(),
        };
        let (_, page) = agent.get(&path).await;
        for s in page["items"].as_array().expect("items") {
            let id = s["container_id"]
                .as_str()
                .expect("container_id")
                .to_string();
            out.entry(id).or_default().push(s.clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// Waits until every exited container has a report; returns the reports.
async fn wait_all_reported(
    agent: &Agent,
    exited: &HashMap<String, Option<i32>>,
) -> HashMap<String, Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reports = reports_by_container(agent).await;
        let missing: Vec<&String> = exited
            .keys()
            .filter(|id| !reports.contains_key(*id))
            .collect();
        if missing.is_empty() {
            return reports;
        }
        if Instant::now() > deadline {
            let _ = std::fs::write("/tmp/continuity-agent.log", agent.log());
            panic!(
                "{} of {} exits have no report: {missing:?}; agent log:\n{}",
                missing.len(),
                exited.len(),
                agent.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn assert_exactly_one_each(
    exited: &HashMap<String, Option<i32>>,
    reports: &HashMap<String, Vec<Value>>,
) -> usize {
    let mut recovered = 0;
    for (id, code) in exited {
        let rs = &reports[id];
        assert_eq!(
            rs.len(),
            1,
            "container {id} has {} reports: {rs:?}",
            rs.len()
        );
        if let Some(code) = code {
            assert_eq!(rs[0]["exit_code"], *code, "{}", rs[0]);
        }
        if rs[0]["recovered"] == true {
            recovered += 1;
        }
    }
    // No container is reported twice, whatever the CRI says of it. (A container whose start
    // containerd's SIGKILL interrupted can have run and died while the CRI still calls it
    // created: its report is a real exit the CRI lost, not a duplicate.)
    for (id, rs) in reports {
        assert_eq!(
            rs.len(),
            1,
            "container {id} has {} reports: {rs:?}",
            rs.len()
        );
    }
    recovered
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_kill9_during_cri_crash_loops_loses_no_exit() {
    let cd = Containerd::start().await;
    let mut agent = Agent::builder(&cd)
        .env("RUST_LOG", "coroner=debug")
        .start()
        .await;
    let cri = cd.cri().await;
    let stop = Arc::new(AtomicBool::new(false));
    let loops = tokio::spawn(crash_loops(cri.clone(), "gap", stop.clone()));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    agent.kill9();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    agent.restart().await;
    let gap = down.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let attempts = loops.await.expect("crash loops");

    let exited = cri_exited(&cri).await;
    assert!(
        exited.len() >= attempts.saturating_sub(LOOPS),
        "{} exited of {attempts} started",
        exited.len()
    );
    let reports = wait_all_reported(&agent, &exited).await;
    let recovered = assert_exactly_one_each(&exited, &reports);
    eprintln!(
        "continuity: {} exits, {recovered} recovered after a {:.1} s gap, 0 lost, 0 duplicated",
        exited.len(),
        gap.as_secs_f64()
    );
    assert!(
        recovered >= 1,
        "no exit fell into the {gap:?} gap: the test proves nothing"
    );

    // A report recovered from the CRI says what the CRI said and what is missing, with the
    // log's words.
    let mut from_cri = None;
    for s in reports
        .values()
        .flatten()
        .filter(|s| s["recovered"] == true)
    {
        let (_, r) = agent
            .get(&format!("/api/v1/crashes/{}", s["id"].as_str().unwrap()))
            .await;
        if !r["cri"].is_null() {
            from_cri = Some(r);
            break;
        }
    }
    let r = from_cri.expect("a report recovered from the CRI");
    assert_eq!(r["cri"]["reason"], "Error", "{}", r["cri"]);
    assert_eq!(r["exit"]["code"], 3);
    let stderr = r["recorder"]["output"]["stderr"]["head"]
        .as_str()
        .unwrap_or("");
    assert!(
        stderr.contains("failing"),
        "output from the CRI log: {}",
        r["recorder"]["output"]
    );
    assert_eq!(r["recorder"]["output"]["captured_by"], "cri-log");
    let stages: Vec<&str> = r["collection_errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["stage"].as_str())
        .collect();
    assert!(stages.contains(&"exit_recovered"), "{stages:?}");

    // Restarting again finds the same exits again and reports none of them twice.
    agent.restart().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let again = reports_by_container(&agent).await;
    assert_exactly_one_each(&exited, &again);
}

#[tokio::test(flavor = "multi_thread")]
async fn containerd_sigkill_during_crash_loops_loses_no_exit() {
    let mut cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    let stop = Arc::new(AtomicBool::new(false));
    let loops = tokio::spawn(crash_loops(cri.clone(), "cdkill", stop.clone()));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    // These exit while containerd is down: nobody publishes their exit events.
    let pod = cri.run_pod("during", "default").await;
    let mut during = Vec::new();
    for i in 0..3 {
        let id = pod
            .container(&format!("c{i}"))
            .command(["sh", "-c", "sleep 1; echo bye >&2; exit 5"])
            .start()
            .await;
        during.push(id);
    }
    cd.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cd.resume().await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);
    loops.await.expect("crash loops");

    let cri = cd.cri().await;
    let exited = cri_exited(&cri).await;
    for id in &during {
        assert!(
            matches!(exited.get(id), Some(Some(5)) | Some(None)),
            "{id} exited while containerd was down: {:?}",
            exited.get(id)
        );
    }
    let reports = wait_all_reported(&agent, &exited).await;
    let recovered = assert_exactly_one_each(&exited, &reports);
    for id in &during {
        let rid = reports[id][0]["id"].as_str().expect("id").to_string();
        let (_, r) = agent.get(&format!("/api/v1/crashes/{rid}")).await;
        assert_eq!(r["exit"]["code"], 5, "{}", r["exit"]);
        // The task stays until containerd is back to delete it, and its cgroup with it.
        assert!(
            !r["collection_errors"].to_string().contains("cgroup_gone"),
            "{}",
            r["collection_errors"]
        );
        assert!(r["cgroup"]["usage"]["memory_peak_bytes"].as_u64() > Some(0));
    }
    eprintln!(
        "continuity: {} exits across a containerd SIGKILL, {recovered} recovered, 0 lost, 0 duplicated",
        exited.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_containers_run_and_removed_while_the_agent_is_away_are_reported_once() {
    let cd = Containerd::start().await;
    let mut agent = Agent::start(&cd).await;
    // `ctr run --rm`: the container and its task are deleted as soon as it exits, so neither
    // containerd nor the CRI keeps a trace; only the agent's journal and the pinned recorder do.
    let mut plains = Vec::new();
    for (i, code) in [(0, 7), (1, 9), (2, 11)] {
        let c = cd
            .plain(&format!("gone-{i}"))
            .command([
                "sh",
                "-c",
                &format!("cat /etc/hostname; sleep 6; exit {code}"),
            ])
            .run()
            .await;
        plains.push((c, code));
    }
    // Journaled once enriched; they run 6 s from their start, so none exits before the kill
    // even when starting the three takes seconds (at load 9, it did: the first exited live).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    agent.kill9();
    for (c, _) in &plains {
        c.wait_exited(Duration::from_secs(10)).await;
    }
    let ids: Vec<String> = plains.iter().map(|(c, _)| c.id().to_string()).collect();
    let codes: Vec<i32> = plains.iter().map(|(_, code)| *code).collect();
    for (c, _) in plains {
        c.remove().await;
    }
    agent.restart().await;
    for (id, code) in ids.iter().zip(codes) {
        let r = agent
            .wait_for_report(
                |r| r["container"]["id"] == id.as_str(),
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(r["recovered"], true, "{r}");
        assert_eq!(r["exit"]["code"], code, "{}", r["exit"]);
        let stages = r["collection_errors"].to_string();
        assert!(stages.contains("exit_recovered"), "{stages}");
        // The recorder kept what the container did before the agent died.
        let rec = &r["recorder"];
        assert!(
            rec["state"] == "recorded" || rec["state"] == "partial",
            "{}",
            rec["state"]
        );
        assert!(
            rec["flight_recorder"].to_string().contains("/etc/hostname"),
            "the openat of /etc/hostname before the restart is in the ring"
        );
    }
    // Once each, also after another restart.
    agent.restart().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let reports = reports_by_container(&agent).await;
    for id in &ids {
        assert_eq!(reports.get(id).map(Vec::len), Some(1), "{id}: {reports:?}");
    }
    eprintln!("continuity: 3 plain containers run and removed while the agent was down, 3 recovered, 0 lost, 0 duplicated");
}
