//! A report as an OpenTelemetry log record: pure conversion, no I/O.
//!
//! One record per report. The body is the diagnosis' one-line summary; the severity comes from
//! the cause; attributes follow the OpenTelemetry semantic conventions where one exists
//! (`k8s.*`, `container.*`, `process.exit.code`, `log.record.uid`) and are `coroner.*` otherwise.
//! Records are grouped under one resource per (node, agent version): the resource is the agent
//! that wrote the report (`service.name` = `coroner`), the record's attributes are the container
//! it is about. `docs/export.md` lists every attribute.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::model::{Cause, Confidence, CrashReport, Outcome, SignalOrigin};

/// `service.name` of the resource and name of the instrumentation scope.
pub const SERVICE_NAME: &str = "coroner";
/// The record's `event_name`: every record is one crash report.
pub const EVENT_NAME: &str = "coroner.report";

/// How the reports' links are made: `<base>/crashes/<id>`, the report's web page.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// Without a trailing `/`; `None`: no link attribute.
    base: Option<String>,
}

impl Links {
    pub fn new(base: Option<&str>) -> Links {
        Links {
            base: base.map(|b| b.trim_end_matches('/').to_string()),
        }
    }

    fn of(&self, id: &str) -> Option<String> {
        self.base.as_ref().map(|b| format!("{b}/crashes/{id}"))
    }
}

/// The export request for `reports`, in the given order, one resource per (node, version).
pub fn request(reports: &[CrashReport], links: &Links) -> ExportLogsServiceRequest {
    let mut resources: Vec<ResourceLogs> = Vec::new();
    let mut keys: Vec<(Option<&str>, &str)> = Vec::new();
    for r in reports {
        let key = (r.agent.node.as_deref(), r.agent.version.as_str());
        let at = match keys.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                keys.push(key);
                resources.push(resource_logs(r));
                resources.len() - 1
            }
        };
        resources[at].scope_logs[0]
            .log_records
            .push(log_record(r, links));
    }
    ExportLogsServiceRequest {
        resource_logs: resources,
    }
}

fn resource_logs(r: &CrashReport) -> ResourceLogs {
    let mut attributes = vec![
        kv("service.name", SERVICE_NAME),
        kv("service.version", r.agent.version.as_str()),
    ];
    if let Some(node) = &r.agent.node {
        attributes.push(kv("k8s.node.name", node.as_str()));
    }
    ResourceLogs {
        resource: Some(Resource {
            attributes,
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            scope: Some(InstrumentationScope {
                name: SERVICE_NAME.into(),
                version: r.agent.version.clone(),
                ..Default::default()
            }),
            log_records: Vec::new(),
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// Severity of a report: INFO for a container that completed, WARN for one killed by a signal
/// someone sent (a deletion or a liveness probe also ends that way), ERROR for every failure.
pub fn severity(r: &CrashReport) -> SeverityNumber {
    match r.diagnosis.as_ref().map(|d| d.cause) {
        Some(Cause::Completed) => SeverityNumber::Info,
        Some(Cause::Killed) => SeverityNumber::Warn,
        Some(_) => SeverityNumber::Error,
        None if r.outcome == Outcome::Completed => SeverityNumber::Info,
        None => SeverityNumber::Error,
    }
}

fn severity_text(s: SeverityNumber) -> &'static str {
    match s {
        SeverityNumber::Info => "INFO",
        SeverityNumber::Warn => "WARN",
        _ => "ERROR",
    }
}

/// The body: the diagnosis' summary, or what the exit status says when there is none.
pub fn body(r: &CrashReport) -> String {
    if let Some(d) = &r.diagnosis {
        return d.summary.clone();
    }
    match &r.exit.signal_name {
        Some(sig) => format!("killed by {sig} (exit code {})", r.exit.code),
        None => format!("exited with code {}", r.exit.code),
    }
}

/// One report as one log record.
pub fn log_record(r: &CrashReport, links: &Links) -> LogRecord {
    let severity = severity(r);
    let mut a = Attrs::default();
    if let Some(k) = &r.kubernetes {
        a.str("k8s.namespace.name", &k.namespace);
        a.str("k8s.pod.name", &k.pod);
        a.opt_str("k8s.pod.uid", k.pod_uid.as_deref());
        a.str("k8s.container.name", &k.container);
        a.opt_int("k8s.container.restart_count", k.attempt.map(i64::from));
    }
    if let Some(node) = &r.agent.node {
        a.str("k8s.node.name", node);
    }
    a.str("container.id", &r.container.id);
    if let Some(image) = &r.container.image {
        let (name, tag) = split_image(image);
        a.str("container.image.name", name);
        if let Some(tag) = tag {
            a.strs("container.image.tags", &[tag]);
        }
        if let Some(digest) = &r.container.image_digest {
            a.strs(
                "container.image.repo_digests",
                &[&format!("{name}@{digest}")],
            );
        }
    }
    a.opt_str("container.image.id", r.container.image_id.as_deref());
    a.int("process.exit.code", i64::from(r.exit.code));
    a.str("log.record.uid", &r.id);

    a.str("coroner.report.id", &r.id);
    if let Some(url) = links.of(&r.id) {
        a.str("coroner.report.url", &url);
    }
    a.str("coroner.outcome", r.outcome.as_str());
    a.str("coroner.containerd.namespace", &r.container.namespace);
    if let Some(d) = &r.diagnosis {
        a.str("coroner.cause", d.cause.as_str());
        a.str("coroner.confidence", confidence(d.confidence));
        a.opt_str("coroner.evidence.key", d.key.as_deref());
    }
    if let Some(s) = r.summary().group_id {
        a.str("coroner.group.id", &s);
    }
    a.bool("coroner.recovered", r.recovered);
    if let Some(sig) = r.exit.signal {
        a.int("coroner.signal.number", i64::from(sig));
    }
    a.opt_str("coroner.signal.name", r.exit.signal_name.as_deref());
    if let Some(core) = r.exit.core_dumped {
        a.bool("coroner.signal.core_dumped", core);
    }
    let rec = r.recorder.as_ref();
    if let Some(f) = rec.and_then(|x| x.fatal_signal.as_ref()) {
        a.str("coroner.signal.origin", origin(f.origin));
        a.opt_int("coroner.signal.sender.pid", f.sender_pid.map(i64::from));
        a.opt_str("coroner.signal.sender.comm", f.sender_comm.as_deref());
    }
    a.bool("coroner.oom.killed", r.oom.killed);
    if let Some(v) = rec.and_then(|x| x.oom_victim.as_ref()) {
        a.int("coroner.oom.victim.pid", i64::from(v.pid));
        a.str("coroner.oom.victim.comm", &v.comm);
        a.bool("coroner.oom.victim.was_init", v.was_init);
        a.opt_int(
            "coroner.oom.victim.rss_bytes",
            i64::try_from(v.rss_bytes).ok(),
        );
    }
    let limits = r.cgroup.limits.as_ref();
    let usage = r.cgroup.usage.as_ref();
    a.opt_int(
        "coroner.memory.limit_bytes",
        limits
            .and_then(|l| l.memory_limit_bytes)
            .and_then(|b| i64::try_from(b).ok()),
    );
    a.opt_int(
        "coroner.memory.peak_bytes",
        usage
            .and_then(|u| u.memory_peak_bytes)
            .and_then(|b| i64::try_from(b).ok()),
    );
    LogRecord {
        time_unix_nano: unix_nanos(r.lifecycle.exited_at),
        observed_time_unix_nano: unix_nanos(r.lifecycle.reported_at),
        severity_number: severity as i32,
        severity_text: severity_text(severity).into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body(r))),
        }),
        attributes: a.0,
        event_name: EVENT_NAME.into(),
        ..Default::default()
    }
}

/// An image reference split into the name and the tag (`registry:5000/app:1.2@sha256:...` ->
/// `registry:5000/app`, `1.2`), as `container.image.name` and `container.image.tags` want them.
pub fn split_image(image: &str) -> (&str, Option<&str>) {
    let without_digest = image.split_once('@').map_or(image, |(n, _)| n);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(i) => {
            let colon = last_slash + i;
            (&without_digest[..colon], Some(&without_digest[colon + 1..]))
        }
        None => (without_digest, None),
    }
}

fn confidence(c: Confidence) -> &'static str {
    match c {
        Confidence::High => "high",
        Confidence::Medium => "medium",
        Confidence::Low => "low",
    }
}

fn origin(o: SignalOrigin) -> &'static str {
    match o {
        SignalOrigin::Container => "container",
        SignalOrigin::Host => "host",
        SignalOrigin::KernelOom => "kernel_oom",
        SignalOrigin::KernelFault => "kernel_fault",
        SignalOrigin::Kernel => "kernel",
    }
}

fn unix_nanos(t: chrono::DateTime<chrono::Utc>) -> u64 {
    t.timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

#[derive(Default)]
struct Attrs(Vec<KeyValue>);

impl Attrs {
    fn put(&mut self, key: &str, value: any_value::Value) {
        self.0.push(KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        });
    }

    fn str(&mut self, key: &str, value: &str) {
        self.put(key, any_value::Value::StringValue(value.into()));
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    fn strs(&mut self, key: &str, values: &[&str]) {
        let values = values
            .iter()
            .map(|v| AnyValue {
                value: Some(any_value::Value::StringValue((*v).into())),
            })
            .collect();
        self.put(
            key,
            any_value::Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                values,
            }),
        );
    }

    fn int(&mut self, key: &str, value: i64) {
        self.put(key, any_value::Value::IntValue(value));
    }

    fn opt_int(&mut self, key: &str, value: Option<i64>) {
        if let Some(v) = value {
            self.int(key, v);
        }
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.put(key, any_value::Value::BoolValue(value));
    }
}

#[cfg(test)]
mod tests;
