//! Stale images end to end: the same tag imported twice with different content while a
//! crash-looping pod runs from it, as on a Kind node after `kind load docker-image gw:1` of a
//! rebuilt image. The harness's real containerd + CRI; results read through the agent's HTTP API.

mod harness;

use std::time::Duration;

use chrono::{DateTime, Utc};
use harness::stale_images::{import_stale, StaleVariant, STALE_TAG};
use harness::{metric_value, Agent, Containerd, BUSYBOX_IMAGE};
use k8s_cri::v1::Mount;
use serde_json::Value;

const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn summary(r: &Value) -> &str {
    r["diagnosis"]["summary"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn container_from_old_content_reports_the_tag_moved_to_new_content() {
    let cd = Containerd::start().await;
    let a = import_stale(&cd, StaleVariant::A, STALE_TAG).await;
    let agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    let gate = tempfile::tempdir().expect("gate dir");
    let pod = cri.run_pod("gw", "default").await;

    // Attempt 0 runs content A and crashes while the tag still names A.
    pod.container("app")
        .image(STALE_TAG)
        .attempt(0)
        .command(["sh", "-c", "echo starting; exit 3"])
        .start()
        .await;
    let r0 = agent.report_for_attempt("gw", "app", 0).await;
    assert_eq!(r0["image_tag"]["status"], "current", "{r0:#}");
    assert_eq!(
        r0["image_tag"]["ran"]["config_digest"],
        a.config_digest.as_str()
    );
    assert_eq!(
        r0["image_tag"]["now"]["config_digest"],
        a.config_digest.as_str()
    );
    assert!(!summary(&r0).contains("moved"), "{}", summary(&r0));

    // Attempt 1 is created from A, then waits; meanwhile the tag is re-imported with B.
    let id1 = pod
        .container("app")
        .image(STALE_TAG)
        .attempt(1)
        .mount(Mount {
            container_path: "/gate".into(),
            host_path: gate.path().to_string_lossy().into_owned(),
            ..Default::default()
        })
        .command([
            "sh",
            "-c",
            "while [ ! -e /gate/go ]; do sleep 0.05; done; echo crashing; exit 3",
        ])
        .start()
        .await;
    cri.wait_running(&id1, EXIT_TIMEOUT).await;
    let before_import = Utc::now();
    let b = import_stale(&cd, StaleVariant::B, STALE_TAG).await;
    let after_import = Utc::now();
    assert_ne!(a.config_digest, b.config_digest);
    std::fs::write(gate.path().join("go"), b"").expect("opening the gate");
    cri.wait_exited(&id1, EXIT_TIMEOUT).await;

    let r1 = agent.report_for_attempt("gw", "app", 1).await;
    let tag = &r1["image_tag"];
    assert_eq!(tag["reference"], STALE_TAG, "{r1:#}");
    assert_eq!(tag["status"], "moved", "{r1:#}");
    assert_eq!(tag["compared"], "config");
    assert_eq!(tag["ran"]["config_digest"], a.config_digest.as_str());
    assert_eq!(tag["ran"]["digest"], a.target_digest.as_str());
    assert_eq!(r1["container"]["image_id"], a.config_digest.as_str());
    assert_eq!(tag["now"]["config_digest"], b.config_digest.as_str());
    assert_eq!(tag["now"]["digest"], b.target_digest.as_str());
    let imported = time(&tag["now"]["imported_at"]);
    assert!(
        before_import <= imported && imported <= after_import,
        "B imported between {before_import} and {after_import}, the report says {imported}"
    );
    assert!(time(&tag["checked_at"]) >= imported);
    // The diagnosis keeps its cause (a moved tag explains no death) and says the tag moved,
    // with B's short digest.
    assert_eq!(r1["diagnosis"]["cause"], "exited_error", "{r1:#}");
    let b_short = &b.config_digest[..19];
    assert!(
        summary(&r1).contains(&format!("`{STALE_TAG}` now resolves to {b_short}")),
        "{}",
        summary(&r1)
    );
    let evidence = r1["diagnosis"]["evidence"].as_array().expect("evidence");
    assert!(
        evidence
            .iter()
            .any(|e| e["field"] == "/image_tag/now/config_digest"
                && e["fact"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(&b.config_digest)),
        "{evidence:#?}"
    );

    // The renderings say it: Markdown, the text the CLI shows, the page.
    let id = r1["id"].as_str().expect("report id");
    let (_, md) = agent
        .get_text(&format!("/api/v1/crashes/{id}?format=markdown"))
        .await;
    assert!(md.contains("## Image tag"), "{md}");
    assert!(
        md.contains(&format!(
            "This container ran `{}`; `{STALE_TAG}` now resolves to `{}`",
            a.config_digest, b.config_digest
        )),
        "{md}"
    );
    let (_, text) = agent
        .get_text(&format!("/api/v1/crashes/{id}?format=text"))
        .await;
    let flowed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flowed.contains(&format!("{STALE_TAG} now resolves to {}", b.config_digest)),
        "{text}"
    );
    let (_, page) = agent.get_text(&format!("/crashes/{id}")).await;
    assert!(page.contains("tag moved"), "{page}");

    // Attempt 2, created from the tag after the move, runs B: nothing stale.
    pod.container("app")
        .image(STALE_TAG)
        .attempt(2)
        .command(["sh", "-c", "exit 3"])
        .start()
        .await;
    let r2 = agent.report_for_attempt("gw", "app", 2).await;
    assert_eq!(r2["image_tag"]["status"], "current", "{r2:#}");
    assert_eq!(
        r2["image_tag"]["ran"]["config_digest"],
        b.config_digest.as_str()
    );
    assert!(!summary(&r2).contains("moved"), "{}", summary(&r2));

    // A pod whose tag never moved says nothing about staleness.
    let other = cri.run_pod("steady", "default").await;
    other
        .container("app")
        .image(BUSYBOX_IMAGE)
        .command(["sh", "-c", "exit 4"])
        .start()
        .await;
    let steady = agent.report_for_attempt("steady", "app", 0).await;
    assert_eq!(steady["image_tag"]["status"], "current", "{steady:#}");
    assert!(!summary(&steady).contains("image"), "{}", summary(&steady));
    assert!(steady["diagnosis"]["evidence"]
        .as_array()
        .is_some_and(|e| e.iter().all(|e| !e["field"]
            .as_str()
            .unwrap_or_default()
            .starts_with("/image_tag"))));

    // Counted once, for the one exit that ran the old content.
    let (_, metrics) = agent.get_text("/metrics").await;
    let moved = r#"coroner_stale_image_exits_total{namespace="default",pod="gw",container="app",status="moved"}"#;
    assert_eq!(metric_value(&metrics, moved), Some(1.0), "{metrics}");
    assert!(
        !metrics.contains(r#"coroner_stale_image_exits_total{namespace="default",pod="steady""#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_lookup_at_exit_is_a_collection_error_and_the_report_is_still_written() {
    let cd = Containerd::start().await;
    let tag = "localhost/coroner-test/stale-broken:1";
    let a = import_stale(&cd, StaleVariant::A, tag).await;
    let agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    let gate = tempfile::tempdir().expect("gate dir");
    let pod = cri.run_pod("broken", "default").await;
    let id = pod
        .container("app")
        .image(tag)
        .mount(Mount {
            container_path: "/gate".into(),
            host_path: gate.path().to_string_lossy().into_owned(),
            ..Default::default()
        })
        .command([
            "sh",
            "-c",
            "while [ ! -e /gate/go ]; do sleep 0.05; done; exit 3",
        ])
        .start()
        .await;
    cri.wait_running(&id, EXIT_TIMEOUT).await;
    // The tag's record stays, its manifest goes: the look-up at the exit cannot finish.
    cd.ctr("k8s.io", &["content", "rm", &a.manifest_digest]);
    std::fs::write(gate.path().join("go"), b"").expect("opening the gate");
    cri.wait_exited(&id, EXIT_TIMEOUT).await;

    let r = agent.report_for_attempt("broken", "app", 0).await;
    assert_eq!(r["exit"]["code"], 3, "{r:#}");
    assert!(r.get("image_tag").is_none(), "{r:#}");
    let errors = r["collection_errors"]
        .as_array()
        .expect("collection errors");
    assert!(
        errors.iter().any(|e| e["stage"] == "image_lookup"
            && e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("Content.Read")),
        "{errors:#?}"
    );
    // What ran is still known from create time.
    assert_eq!(r["container"]["image_id"], a.config_digest.as_str());
    let (_, metrics) = agent.get_text("/metrics").await;
    assert_eq!(
        metric_value(
            &metrics,
            r#"coroner_collection_errors_total{stage="image_lookup"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
}
