//! Containers that never start: runc cannot start the process (entrypoint missing, a user that
//! cannot enter its working directory, a mount source gone), containerd publishes no task event,
//! and the CRI records `StartError`, exit 128 and runc's message. Each attempt is reported once,
//! as it happens (not at the next reconnect), with the runtime's message and the cause
//! `start_failed`, and a kubelet-like restart loop is one crash-loop group.

mod harness;

use std::time::{Duration, Instant};

use harness::{Agent, Containerd, Cri, Pod};
use k8s_cri::v1::{Mount, StartContainerRequest};
use serde_json::Value;

const REPORT_WAIT: Duration = Duration::from_secs(30);

/// CreateContainer then StartContainer, which must fail; returns the container id and the
/// error StartContainer returned.
async fn start_failing(cri: &Cri, builder: harness::ContainerBuilder) -> (String, String) {
    let id = builder.create().await;
    start_created(cri, &id).await
}

async fn start_created(cri: &Cri, id: &str) -> (String, String) {
    let err = cri
        .runtime()
        .start_container(StartContainerRequest {
            container_id: id.to_string(),
        })
        .await
        .expect_err("StartContainer succeeded for a container that cannot start");
    (id.to_string(), err.message().to_string())
}

/// Every report of one container, from the list (one page is plenty here).
async fn reports_of(agent: &Agent, container_id: &str) -> Vec<Value> {
    let (_, body) = agent.get("/api/v1/crashes?outcome=all&limit=100").await;
    body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["container_id"] == container_id)
        .cloned()
        .collect()
}

/// The report of `id`, checked for what every failed start must show.
async fn start_failure_report(
    agent: &Agent,
    pod: &Pod,
    id: &str,
    runtime_error: &str,
    runc_errno: &str,
) -> Value {
    let started = Instant::now();
    let wanted = id.to_string();
    let r = agent
        .wait_for_report(
            move |r| r["container"]["id"] == wanted.as_str(),
            REPORT_WAIT,
        )
        .await;
    let pretty = serde_json::to_string_pretty(&r).unwrap();
    assert_eq!(r["diagnosis"]["cause"], "start_failed", "{pretty}");
    assert_eq!(r["cri"]["reason"], "StartError", "{pretty}");
    assert_eq!(r["exit"]["code"], 128, "{pretty}");
    let message = r["cri"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(runtime_error), "{pretty}");
    let summary = r["diagnosis"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("Never started: runc could not start the process: ")
            && summary.contains(runtime_error),
        "{pretty}"
    );
    // The CRI identity.
    assert_eq!(r["kubernetes"]["pod"], pod.name.as_str(), "{pretty}");
    assert_eq!(r["kubernetes"]["namespace"], "default", "{pretty}");
    // Seen as it happened: not a recovery after a reconnect.
    assert_eq!(r["recovered"], false, "{pretty}");
    let no_task = r["collection_errors"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| e["stage"] != "exit_recovered");
    assert!(no_task, "{pretty}");
    // Nothing to read of a cgroup runc removed with its attempt: not a collection failure.
    let cgroup_errors = r["collection_errors"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["stage"].as_str().is_some_and(|s| s.starts_with("cgroup")));
    assert!(!cgroup_errors, "{pretty}");
    // What the flight recorder saw of runc's attempt, found by the cgroup id the agent read
    // while the cgroup existed: runc init's failing call, as evidence.
    assert_eq!(r["recorder"]["state"], "recorded", "{pretty}");
    let seen = r["diagnosis"]["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e["fact"]
                .as_str()
                .is_some_and(|f| f.starts_with("the recorder saw runc's"))
        })
        .unwrap_or_else(|| panic!("no recorder evidence: {pretty}"));
    let event = r
        .pointer(seen["field"].as_str().unwrap_or_default())
        .unwrap_or_else(|| panic!("evidence points nowhere: {pretty}"));
    assert_eq!(event["comm"], "runc:[2:INIT]", "{event}");
    assert_eq!(event["errno"], runc_errno, "{event}");
    println!(
        "{id}: reported {:?} after the failed start returned: {summary}",
        started.elapsed()
    );
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_entrypoint_is_reported_at_once_and_restarts_are_one_group() {
    let cd = Containerd::start().await;
    let mut agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("never-started", "default").await;

    let mut ids = Vec::new();
    for attempt in 0..2 {
        let builder = pod
            .container("app")
            .command(["/no/such/binary"])
            .attempt(attempt);
        let (id, err) = start_failing(&cri, builder).await;
        assert!(err.contains("no such file or directory"), "{err}");
        let r = start_failure_report(
            &agent,
            &pod,
            &id,
            "exec: \"/no/such/binary\": stat /no/such/binary: no such file or directory",
            "ENOENT",
        )
        .await;
        assert_eq!(r["kubernetes"]["container"], "app");
        assert_eq!(r["kubernetes"]["attempt"], attempt);
        ids.push(id);
    }

    // One group of count 2: the same workload, cause and runc error.
    let (_, groups) = agent.get("/api/v1/groups").await;
    let group = groups["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["cause"] == "start_failed")
        .unwrap_or_else(|| panic!("no start_failed group: {groups:#}"));
    assert_eq!(group["count"], 2, "{group:#}");
    assert_eq!(
        group["key"],
        "exec: \"/no/such/binary\": stat /no/such/binary: no such file or directory"
    );

    // Never twice: the agent restarted finds the same CRI exits (the reconcile and its second
    // look one second later) and must recognise them as reported.
    agent.restart().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in &ids {
        let reports = reports_of(&agent, id).await;
        assert_eq!(reports.len(), 1, "{id}: {reports:#?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn entrypoint_not_on_path_is_start_failed() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("not-on-path", "default").await;
    let (id, _) = start_failing(&cri, pod.container("app").command(["nosuchcmd"])).await;
    let r = start_failure_report(
        &agent,
        &pod,
        &id,
        "exec: \"nosuchcmd\": executable file not found in $PATH",
        "ENOENT",
    )
    .await;
    assert_eq!(
        r["diagnosis"]["key"],
        "exec: \"nosuchcmd\": executable file not found in $PATH"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn user_that_cannot_reach_its_entrypoint_is_start_failed() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("bad-user", "default").await;
    // An image made for root, run as the restricted Pod Security Standard asks (a non-root
    // user, every capability dropped): the image's /root is 0700, so uid 4242 cannot even look
    // for its entrypoint there.
    let builder = pod
        .container("app")
        .command(["/root/entrypoint"])
        .run_as_user(4242)
        .capabilities(Vec::<&str>::new(), ["ALL"]);
    let (id, err) = start_failing(&cri, builder).await;
    assert!(err.contains("permission denied"), "{err}");
    start_failure_report(
        &agent,
        &pod,
        &id,
        "exec: \"/root/entrypoint\": stat /root/entrypoint: permission denied",
        "EACCES",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_mount_source_is_start_failed() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("mount-gone", "default").await;
    // The CRI plugin creates a missing hostPath at CreateContainer; a source removed between
    // the create and the start (a volume unmounted, a socket's directory deleted) is gone for
    // runc.
    let source = cd.dir().join("volume-gone");
    std::fs::create_dir(&source).expect("creating the mount source");
    let id = pod
        .container("app")
        .command(["sh", "-c", "exit 0"])
        .mount(Mount {
            container_path: "/data".into(),
            host_path: source.display().to_string(),
            ..Default::default()
        })
        .create()
        .await;
    std::fs::remove_dir(&source).expect("removing the mount source");
    let (id, err) = start_created(&cri, &id).await;
    assert!(err.contains("no such file or directory"), "{err}");
    let r = start_failure_report(&agent, &pod, &id, "no such file or directory", "ENOENT").await;
    let key = r["diagnosis"]["key"].as_str().unwrap_or_default();
    assert!(
        !key.contains(&id),
        "the group key must not name the attempt: {key}"
    );
}
