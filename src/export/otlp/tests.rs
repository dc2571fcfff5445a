//! The conversion of real reports (captured by `tests/diagnosis.rs` from real containers).

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use prost::Message;

use super::{log_record, request, split_image, Links, EVENT_NAME};
use crate::model::CrashReport;

const FIXTURES: [(&str, &str); 10] = [
    (
        "address_in_use",
        include_str!("../../../tests/fixtures/reports/address_in_use.json"),
    ),
    (
        "completed",
        include_str!("../../../tests/fixtures/reports/completed.json"),
    ),
    (
        "exec_failed",
        include_str!("../../../tests/fixtures/reports/exec_failed.json"),
    ),
    (
        "exited_error",
        include_str!("../../../tests/fixtures/reports/exited_error.json"),
    ),
    (
        "exited_error_no_recorder",
        include_str!("../../../tests/fixtures/reports/exited_error_no_recorder.json"),
    ),
    (
        "killed_by_host",
        include_str!("../../../tests/fixtures/reports/killed_by_host.json"),
    ),
    (
        "lock_held",
        include_str!("../../../tests/fixtures/reports/lock_held.json"),
    ),
    (
        "oom_killed",
        include_str!("../../../tests/fixtures/reports/oom_killed.json"),
    ),
    (
        "pids_limit",
        include_str!("../../../tests/fixtures/reports/pids_limit.json"),
    ),
    (
        "segfault",
        include_str!("../../../tests/fixtures/reports/segfault.json"),
    ),
];

/// A fixture as the store serves it: with the diagnosis filled in.
fn fixture(name: &str) -> CrashReport {
    let (_, json) = FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    let mut r: CrashReport = serde_json::from_str(json).expect("fixture parses");
    r.diagnosis = Some(crate::diagnose::diagnose(&r));
    r
}

/// The record's attributes as text, the way a collector's debug output shows them.
fn attrs(rec: &LogRecord) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for kv in &rec.attributes {
        let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => s.clone(),
            Some(Value::IntValue(i)) => i.to_string(),
            Some(Value::BoolValue(b)) => b.to_string(),
            Some(Value::ArrayValue(a)) => a
                .values
                .iter()
                .map(|v| match &v.value {
                    Some(Value::StringValue(s)) => s.clone(),
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => panic!("{}: unexpected value {other:?}", kv.key),
        };
        assert!(
            out.insert(kv.key.clone(), v).is_none(),
            "attribute {} twice",
            kv.key
        );
    }
    out
}

fn body(rec: &LogRecord) -> &str {
    match rec.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Value::StringValue(s)) => s,
        other => panic!("body {other:?}"),
    }
}

#[test]
fn oom_kill_is_an_error_with_kubernetes_identity_and_oom_facts() {
    let r = fixture("oom_killed");
    let rec = log_record(&r, &Links::default());
    assert_eq!(rec.severity_number, SeverityNumber::Error as i32);
    assert_eq!(rec.severity_text, "ERROR");
    assert_eq!(rec.event_name, EVENT_NAME);
    assert_eq!(body(&rec), r.diagnosis.as_ref().unwrap().summary);
    assert_eq!(
        rec.time_unix_nano,
        r.lifecycle.exited_at.timestamp_nanos_opt().unwrap() as u64
    );
    assert_eq!(
        rec.observed_time_unix_nano,
        r.lifecycle.reported_at.timestamp_nanos_opt().unwrap() as u64
    );
    let a = attrs(&rec);
    let want = [
        ("k8s.namespace.name", "edge"),
        ("k8s.pod.name", "gateway"),
        ("k8s.pod.uid", "61a96579-e18b-4fb3-b73a-2af3dc479a26"),
        ("k8s.container.name", "beam"),
        ("k8s.container.restart_count", "0"),
        (
            "container.id",
            "ec6c93b72bbc1a2c6c96c8dac3a95ae867639a1d81c3d1758d5d3eb85a5e752b",
        ),
        ("container.image.name", "localhost/coroner-test/busybox"),
        ("container.image.tags", "1"),
        (
            "container.image.id",
            "sha256:f19d322438b438e1b3c67d6eab533577f3d8364caf5598fb74465ed3fa30639a",
        ),
        (
            "container.image.repo_digests",
            "localhost/coroner-test/busybox@sha256:58f344f7fa2d2c04534c6a6a91601c976c563fba75753aae8f3812061ba94575",
        ),
        ("process.exit.code", "137"),
        ("log.record.uid", "3b26e83de66231393e30"),
        ("coroner.report.id", "3b26e83de66231393e30"),
        ("coroner.cause", "oom_killed"),
        ("coroner.confidence", "high"),
        ("coroner.outcome", "crashed"),
        ("coroner.oom.killed", "true"),
        ("coroner.signal.name", "SIGKILL"),
        ("coroner.signal.number", "9"),
        ("coroner.memory.limit_bytes", "20971520"),
        ("coroner.memory.peak_bytes", "20971520"),
        ("coroner.recovered", "false"),
        ("coroner.containerd.namespace", "k8s.io"),
    ];
    for (k, v) in want {
        assert_eq!(a.get(k).map(String::as_str), Some(v), "{k} in {a:#?}");
    }
    assert!(
        !a.contains_key("coroner.report.url"),
        "no base URL, no link"
    );
    // The node is not known to this fixture's agent: no empty attribute stands in for it.
    assert!(!a.contains_key("k8s.node.name"));
}

#[test]
fn oom_victim_is_named_when_the_recorder_saw_it() {
    let r = fixture("oom_killed");
    let Some(v) = r.recorder.as_ref().and_then(|x| x.oom_victim.clone()) else {
        panic!("the oom fixture has a recorder victim");
    };
    let a = attrs(&log_record(&r, &Links::default()));
    assert_eq!(a["coroner.oom.victim.comm"], v.comm);
    assert_eq!(a["coroner.oom.victim.pid"], v.pid.to_string());
    assert_eq!(a["coroner.oom.victim.was_init"], v.was_init.to_string());
}

#[test]
fn sigkill_from_the_host_is_a_warning_naming_the_sender() {
    let r = fixture("killed_by_host");
    let rec = log_record(&r, &Links::default());
    assert_eq!(rec.severity_number, SeverityNumber::Warn as i32);
    assert_eq!(rec.severity_text, "WARN");
    let a = attrs(&rec);
    assert_eq!(a["coroner.cause"], "killed");
    assert_eq!(a["coroner.signal.origin"], "host");
    assert_eq!(a["coroner.signal.sender.comm"], "kill_from_the_h");
    assert_eq!(a["coroner.signal.sender.pid"], "22321");
    assert_eq!(a["coroner.evidence.key"], "SIGKILL from host");
    assert_eq!(a["coroner.oom.killed"], "false");
}

#[test]
fn segfault_is_an_error_from_a_kernel_fault() {
    let a = attrs(&log_record(&fixture("segfault"), &Links::default()));
    assert_eq!(a["coroner.cause"], "crashed");
    assert_eq!(a["coroner.signal.name"], "SIGSEGV");
    assert_eq!(a["coroner.signal.origin"], "kernel_fault");
    assert_eq!(a["process.exit.code"], "139");
}

#[test]
fn completed_container_is_info() {
    let rec = log_record(&fixture("completed"), &Links::default());
    assert_eq!(rec.severity_number, SeverityNumber::Info as i32);
    let a = attrs(&rec);
    assert_eq!(a["coroner.outcome"], "completed");
    assert_eq!(a["process.exit.code"], "0");
    assert!(!a.contains_key("coroner.signal.name"));
}

#[test]
fn every_fixture_is_one_record_with_its_id_body_and_cause() {
    for (name, _) in FIXTURES {
        let r = fixture(name);
        let rec = log_record(&r, &Links::default());
        let a = attrs(&rec);
        assert_eq!(a["coroner.report.id"], r.id, "{name}");
        assert_eq!(a["log.record.uid"], r.id, "{name}");
        assert_eq!(
            a["coroner.cause"],
            r.diagnosis.as_ref().unwrap().cause.as_str()
        );
        assert!(!body(&rec).is_empty(), "{name}");
        assert!(a.values().all(|v| !v.is_empty()), "{name}: {a:#?}");
        assert!(rec.time_unix_nano > 0 && rec.observed_time_unix_nano >= rec.time_unix_nano);
    }
}

#[test]
fn a_report_without_a_diagnosis_says_its_exit_status() {
    let mut r = fixture("killed_by_host");
    r.diagnosis = None;
    let rec = log_record(&r, &Links::default());
    assert_eq!(body(&rec), "killed by SIGKILL (exit code 137)");
    assert_eq!(rec.severity_number, SeverityNumber::Error as i32);
    assert!(!attrs(&rec).contains_key("coroner.cause"));
}

#[test]
fn a_plain_container_has_no_kubernetes_attributes() {
    let mut r = fixture("exited_error");
    r.kubernetes = None;
    let a = attrs(&log_record(&r, &Links::default()));
    assert!(a.keys().all(|k| !k.starts_with("k8s.")), "{a:#?}");
    assert_eq!(a["container.id"], r.container.id);
}

#[test]
fn the_link_points_at_the_report_page_under_the_base_url() {
    let r = fixture("lock_held");
    for base in [
        "https://coroner.example.com/node-a",
        "https://coroner.example.com/node-a/",
    ] {
        let a = attrs(&log_record(&r, &Links::new(Some(base))));
        assert_eq!(
            a["coroner.report.url"],
            format!("https://coroner.example.com/node-a/crashes/{}", r.id)
        );
    }
}

#[test]
fn records_are_grouped_under_one_resource_per_node() {
    let mut a = fixture("oom_killed");
    a.agent.node = Some("node-a".into());
    let mut b = fixture("segfault");
    b.agent.node = Some("node-b".into());
    let mut c = fixture("completed");
    c.agent.node = Some("node-a".into());
    let req = request(&[a, b, c], &Links::default());
    assert_eq!(req.resource_logs.len(), 2);
    let nodes: Vec<(String, usize)> = req
        .resource_logs
        .iter()
        .map(|rl| {
            let res = rl.resource.as_ref().unwrap();
            let node = res
                .attributes
                .iter()
                .find(|kv| kv.key == "k8s.node.name")
                .and_then(|kv| kv.value.as_ref()?.value.clone());
            let Some(Value::StringValue(node)) = node else {
                panic!("no node in {res:?}")
            };
            assert!(res.attributes.iter().any(|kv| kv.key == "service.name"
                && kv.value.as_ref().unwrap().value == Some(Value::StringValue("coroner".into()))));
            (node, rl.scope_logs[0].log_records.len())
        })
        .collect();
    assert_eq!(
        nodes,
        [("node-a".to_string(), 2), ("node-b".to_string(), 1)]
    );
}

#[test]
fn the_request_survives_protobuf_encoding() {
    let reports: Vec<CrashReport> = FIXTURES.iter().map(|(n, _)| fixture(n)).collect();
    let req = request(&reports, &Links::new(Some("http://x")));
    let bytes = req.encode_to_vec();
    let back = ExportLogsServiceRequest::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(back, req);
    assert_eq!(back.resource_logs[0].scope_logs[0].log_records.len(), 10);
}

#[test]
fn image_references_split_into_name_and_tag() {
    for (image, name, tag) in [
        ("busybox", "busybox", None),
        ("busybox:1.36", "busybox", Some("1.36")),
        (
            "localhost/coroner-test/busybox:1",
            "localhost/coroner-test/busybox",
            Some("1"),
        ),
        ("registry:5000/team/app", "registry:5000/team/app", None),
        (
            "registry:5000/team/app:v2",
            "registry:5000/team/app",
            Some("v2"),
        ),
        ("app@sha256:abcd", "app", None),
        ("app:3@sha256:abcd", "app", Some("3")),
    ] {
        assert_eq!(split_image(image), (name, tag), "{image}");
    }
}
