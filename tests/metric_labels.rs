//! End-to-end test of the metrics' label sets: containers that are not Kubernetes pods
//! (`ctr run` in `coroner-plain`) must not add a series each to `/metrics`, which would grow
//! with every container that ever ran on the node.

mod harness;

use harness::agent::REPORT_TIMEOUT;
use harness::containerd::PLAIN_NAMESPACE;
use harness::{Agent, Containerd};

const CONTAINERS: usize = 6;

#[tokio::test(flavor = "multi_thread")]
async fn plain_containers_share_one_series_per_image_and_reason() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let mut ids = Vec::new();
    for i in 0..CONTAINERS {
        let id = format!("labels-{i}");
        let plain = cd.plain(&id).command(["sh", "-c", "exit 2"]).run().await;
        let want = id.clone();
        agent
            .wait_for_report(
                move |r| r["container"]["id"] == want.as_str(),
                REPORT_TIMEOUT,
            )
            .await;
        plain.remove().await;
        ids.push(id);
    }

    let (_, metrics) = agent.get_text("/metrics").await;
    let plain: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains(&format!("namespace=\"{PLAIN_NAMESPACE}\"")))
        .collect();
    assert_eq!(
        plain,
        [
            r#"coroner_container_exits_total{namespace="coroner-plain",pod="",container="localhost/coroner-test/busybox",reason="error"} 6"#,
            r#"coroner_crash_causes_total{namespace="coroner-plain",cause="exited_error"} 6"#,
        ],
        "{CONTAINERS} plain containers: one series per metric, whatever their ids:\n{metrics}"
    );
    for id in &ids {
        assert!(
            !metrics.contains(id.as_str()),
            "{id} is a label value:\n{metrics}"
        );
    }
}
