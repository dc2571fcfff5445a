//! OTLP export with real peers: containers crash under the harness's real containerd and CRI,
//! the agent exports their reports to a real OpenTelemetry collector (rotel), and the tests read
//! the records as the collector decoded them. Faults are real too: the collector is killed and
//! started again, the agent is restarted. Needs root.

mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness::agent::REPORT_TIMEOUT;
use harness::{metric_value, Agent, Collector, Containerd};
use reqwest::StatusCode;

/// Longer than the exporter's longest backoff (30 s) plus a request.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(45);

async fn metrics(agent: &Agent) -> String {
    let (status, text) = agent.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    text
}

/// Waits until a metric has `want`, returns the metrics text.
async fn wait_metric(agent: &Agent, name: &str, want: f64, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = metrics(agent).await;
        if metric_value(&text, name) == Some(want) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{name} is not {want} after {timeout:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sum of a counter over all its label sets.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Each report id the collector received, with how many times.
fn received(collector: &Collector) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for r in collector.records() {
        if let Some(id) = r.str("coroner.report.id") {
            *n.entry(id.to_string()).or_default() += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_reports_reach_the_collector_with_their_attributes() {
    let collector = Collector::start().await;
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd)
        .args(["--otlp-endpoint", &collector.http_endpoint()])
        .args(["--otlp-header", "authorization=Bearer not-in-any-log"])
        .args(["--node-name", "node-a"])
        .args(["--report-base-url", "https://coroner.example.com/node-a/"])
        .start()
        .await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("gateway", "edge").await;
    pod.container("beam")
        .command(["tail", "/dev/zero"])
        .memory_limit(20 << 20)
        .start()
        .await;
    let oom = agent.report_for("gateway", "beam").await;
    let api = cri.run_pod("api", "shop").await;
    api.container("server")
        .command(["sh", "-c", "exit 3"])
        .attempt(2)
        .start()
        .await;
    let exit3 = agent.report_for("api", "server").await;

    let oom_id = oom["id"].as_str().unwrap();
    let rec = collector.wait_for_report(oom_id, EXPORT_TIMEOUT).await;
    assert_eq!(rec.severity_text, "ERROR");
    assert_eq!(rec.severity_number, "SEVERITY_NUMBER_ERROR(17)");
    assert_eq!(rec.event_name, "coroner.report");
    assert_eq!(rec.body, oom["diagnosis"]["summary"].as_str().unwrap());
    let exited_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(oom["lifecycle"]["exited_at"].clone()).unwrap();
    assert_eq!(
        rec.timestamp,
        exited_at.timestamp_nanos_opt().unwrap() as u64
    );
    let image = oom["container"]["image"].as_str().unwrap();
    let (image_name, tag) = image.rsplit_once(':').unwrap();
    let want = [
        ("k8s.namespace.name", "Str(edge)".to_string()),
        ("k8s.pod.name", "Str(gateway)".to_string()),
        (
            "k8s.pod.uid",
            format!("Str({})", oom["kubernetes"]["pod_uid"].as_str().unwrap()),
        ),
        ("k8s.container.name", "Str(beam)".to_string()),
        ("k8s.container.restart_count", "Int(0)".to_string()),
        ("k8s.node.name", "Str(node-a)".to_string()),
        (
            "container.id",
            format!("Str({})", oom["container"]["id"].as_str().unwrap()),
        ),
        ("container.image.name", format!("Str({image_name})")),
        ("container.image.tags", format!("Slice(Str({tag}))")),
        (
            "container.image.id",
            format!("Str({})", oom["container"]["image_id"].as_str().unwrap()),
        ),
        ("process.exit.code", "Int(137)".to_string()),
        ("log.record.uid", format!("Str({oom_id})")),
        ("coroner.report.id", format!("Str({oom_id})")),
        (
            "coroner.report.url",
            format!("Str(https://coroner.example.com/node-a/crashes/{oom_id})"),
        ),
        ("coroner.cause", "Str(oom_killed)".to_string()),
        ("coroner.confidence", "Str(high)".to_string()),
        ("coroner.oom.killed", "Bool(true)".to_string()),
        ("coroner.signal.name", "Str(SIGKILL)".to_string()),
        ("coroner.memory.limit_bytes", format!("Int({})", 20 << 20)),
    ];
    for (key, value) in want {
        assert_eq!(
            rec.typed(key).as_deref(),
            Some(value.as_str()),
            "{key} in {:#?}",
            rec.attributes
        );
    }
    assert_eq!(
        rec.resource.get("service.name").map(|v| v.1.as_str()),
        Some("coroner")
    );
    assert_eq!(
        rec.resource.get("k8s.node.name").map(|v| v.1.as_str()),
        Some("node-a")
    );

    let exit3_id = exit3["id"].as_str().unwrap();
    let rec = collector.wait_for_report(exit3_id, EXPORT_TIMEOUT).await;
    assert_eq!(rec.typed("process.exit.code").as_deref(), Some("Int(3)"));
    assert_eq!(
        rec.typed("k8s.container.restart_count").as_deref(),
        Some("Int(2)")
    );
    assert_eq!(
        rec.str("coroner.cause"),
        exit3["diagnosis"]["cause"].as_str()
    );
    assert_eq!(rec.str("k8s.namespace.name"), Some("shop"));

    let text = wait_metric(
        &agent,
        "coroner_otlp_exported_reports_total",
        2.0,
        EXPORT_TIMEOUT,
    )
    .await;
    assert_eq!(
        metric_value(&text, "coroner_otlp_pending_reports"),
        Some(0.0)
    );
    assert_eq!(metric_value(&text, "coroner_otlp_lag_seconds"), Some(0.0));
    assert_eq!(
        metric_sum(&text, "coroner_otlp_export_errors_total"),
        0.0,
        "{text}"
    );
    let count = metric_value(&text, "coroner_otlp_export_latency_seconds_count").unwrap();
    let sum = metric_value(&text, "coroner_otlp_export_latency_seconds_sum").unwrap();
    assert_eq!(count, 2.0);
    println!(
        "export latency (report written -> collector acknowledged), mean of {count}: {:.1} ms",
        sum / count * 1000.0
    );
    // The header's value is a secret: nowhere in the agent's output.
    assert!(!agent.log().contains("not-in-any-log"));
    assert_eq!(received(&collector).len(), 2, "{:?}", received(&collector));
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_delivers_the_same_records() {
    let collector = Collector::start().await;
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd)
        .args(["--otlp-endpoint", &collector.grpc_endpoint()])
        .args(["--otlp-header", "x-tenant=team-a"])
        .start()
        .await;
    let pod = cd.cri().await.run_pod("worker", "batch").await;
    pod.container("job")
        .command(["sh", "-c", "exit 7"])
        .start()
        .await;
    let r = agent.report_for("worker", "job").await;
    let id = r["id"].as_str().unwrap();
    let rec = collector.wait_for_report(id, EXPORT_TIMEOUT).await;
    assert_eq!(rec.typed("process.exit.code").as_deref(), Some("Int(7)"));
    assert_eq!(rec.str("k8s.pod.name"), Some("worker"));
    assert_eq!(rec.str("k8s.namespace.name"), Some("batch"));
    assert_eq!(rec.body, r["diagnosis"]["summary"].as_str().unwrap());
    wait_metric(
        &agent,
        "coroner_otlp_exported_reports_total",
        1.0,
        EXPORT_TIMEOUT,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn collector_down_at_the_crash_gets_the_report_once_it_starts() {
    let mut collector = Collector::new();
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd)
        .args(["--otlp-endpoint", &collector.http_endpoint()])
        .start()
        .await;
    let pod = cd.cri().await.run_pod("web", "default").await;
    pod.container("app")
        .command(["sh", "-c", "exit 3"])
        .start()
        .await;
    let r = agent.report_for("web", "app").await;
    let id = r["id"].as_str().unwrap().to_string();

    // Nobody listens: the report waits, the failures are counted, the agent stays ready.
    let deadline = Instant::now() + REPORT_TIMEOUT;
    loop {
        let text = metrics(&agent).await;
        if metric_value(&text, "coroner_otlp_pending_reports") == Some(1.0)
            && metric_value(
                &text,
                "coroner_otlp_export_errors_total{reason=\"unreachable\"}",
            )
            .is_some_and(|n| n >= 1.0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed export counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The lag grows while the report waits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let text = metrics(&agent).await;
    assert!(
        metric_value(&text, "coroner_otlp_lag_seconds").is_some_and(|s| s >= 1.0),
        "{text}"
    );
    let (status, ready) = agent.get("/readyz").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a down collector is not the agent's fault: {ready}"
    );
    assert_eq!(ready["ready"], true);
    assert_eq!(
        metric_value(&text, "coroner_otlp_exported_reports_total"),
        Some(0.0)
    );

    collector.resume().await;
    collector.wait_for_report(&id, EXPORT_TIMEOUT).await;
    wait_metric(&agent, "coroner_otlp_pending_reports", 0.0, EXPORT_TIMEOUT).await;
    // Later retries or feeds send nothing more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(received(&collector).get(&id), Some(&1));
    let text = metrics(&agent).await;
    assert_eq!(
        metric_value(&text, "coroner_otlp_exported_reports_total"),
        Some(1.0)
    );
    assert_eq!(metric_value(&text, "coroner_otlp_lag_seconds"), Some(0.0));
}

/// Attempt `attempt` of container `cart` exits 5; returns its container id.
async fn crash(pod: &harness::Pod, attempt: u32) -> String {
    pod.container("cart")
        .command(["sh", "-c", "exit 5"])
        .attempt(attempt)
        .start()
        .await
}

async fn report(agent: &Agent, attempt: u64) -> String {
    agent.report_for_attempt("shop", "cart", attempt).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_restarted_between_loses_nothing_and_sends_nothing_twice() {
    let mut collector = Collector::start().await;
    let cd = Containerd::start().await;
    let mut agent = Agent::builder(&cd)
        .args(["--otlp-endpoint", &collector.http_endpoint()])
        .start()
        .await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("shop", "default").await;

    // A: exported while everything runs.
    crash(&pod, 0).await;
    let a = report(&agent, 0).await;
    collector.wait_for_report(&a, EXPORT_TIMEOUT).await;
    wait_metric(&agent, "coroner_otlp_pending_reports", 0.0, EXPORT_TIMEOUT).await;

    // B: stored while the collector is down, then the agent restarts (SIGTERM, as kubelet does).
    collector.stop();
    crash(&pod, 1).await;
    let b = report(&agent, 1).await;
    agent.terminate(Duration::from_secs(20));
    // C: the container dies while no agent runs; the next one recovers it from the CRI.
    let c_id = crash(&pod, 2).await;
    cri.wait_exited(&c_id, REPORT_TIMEOUT).await;
    agent.restart().await;
    let c = report(&agent, 2).await;
    // D: killed (no graceful shutdown) while B and C wait; then the collector comes back.
    agent.kill9();
    agent.restart().await;
    // B and C wait after the restarts.
    wait_metric(&agent, "coroner_otlp_pending_reports", 2.0, REPORT_TIMEOUT).await;

    collector.resume().await;
    collector.wait_for_report(&b, EXPORT_TIMEOUT).await;
    collector.wait_for_report(&c, EXPORT_TIMEOUT).await;
    wait_metric(&agent, "coroner_otlp_pending_reports", 0.0, EXPORT_TIMEOUT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = received(&collector);
    let want: BTreeMap<String, usize> = [(a, 1), (b, 1), (c, 1)].into_iter().collect();
    assert_eq!(got, want, "each report exactly once across restarts");
    // The restarted agent counts only what it sent.
    assert_eq!(
        metric_value(
            &metrics(&agent).await,
            "coroner_otlp_exported_reports_total"
        ),
        Some(2.0)
    );
}
