//! Pure decoding of what containerd sends: event envelopes and container records.
//!
//! Owns the mapping from containerd's protobuf and JSON (OCI spec, CRI metadata extension) to
//! coroner's types. Touches no socket and no runtime, so it is tested with captured payloads.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use containerd_client::events::{TaskCreate, TaskDelete, TaskExit, TaskOom, TaskStart};
use containerd_client::services::v1::Container;
use containerd_client::types::v1::{Process, Status as TaskStatus};
use containerd_client::types::Envelope;
use prost::Message;
use serde_json::Value;

use crate::model::KubernetesInfo;

/// Label the CRI plugin puts on every object it creates: `sandbox` or `container`.
pub const CRI_KIND_LABEL: &str = "io.cri-containerd.kind";
/// Extension holding the CRI plugin's JSON metadata (kubelet's config, attempt, log path).
pub const CRI_METADATA_EXTENSION: &str = "io.cri-containerd.container.metadata";

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("event {topic} has no payload")]
    MissingPayload { topic: String },
    #[error("event {topic}: payload {type_url} does not decode: {source}")]
    Payload {
        topic: String,
        type_url: String,
        source: prost::DecodeError,
    },
    #[error("container {id}: OCI spec is not JSON: {source}")]
    Spec {
        id: String,
        source: serde_json::Error,
    },
}

impl DecodeError {
    pub fn label(&self) -> &'static str {
        match self {
            DecodeError::MissingPayload { .. } | DecodeError::Payload { .. } => "event_decode",
            DecodeError::Spec { .. } => "spec_decode",
        }
    }
}

/// An event coroner acts on. Everything else is [`Event::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    TaskCreate {
        container_id: String,
        pid: u32,
        /// The OCI bundle directory (`config.json`, `rootfs/`), a path on the node.
        bundle: String,
    },
    TaskStart {
        container_id: String,
        pid: u32,
    },
    /// `exec_id` equals `container_id` for the init process.
    TaskExit {
        container_id: String,
        exec_id: String,
        pid: u32,
        exit_status: u32,
        exited_at: Option<DateTime<Utc>>,
    },
    TaskOom {
        container_id: String,
    },
    TaskDelete {
        container_id: String,
        pid: u32,
    },
    /// A container record made (by the CRI: CreateContainer). A container whose start fails
    /// gets no task event at all after this one.
    ContainerCreate {
        container_id: String,
    },
    ContainerDelete {
        container_id: String,
    },
    Other,
}

/// A decoded envelope: when, where, what.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub timestamp: Option<DateTime<Utc>>,
    pub namespace: String,
    pub topic: String,
    pub event: Event,
}

/// Stable names for the topics coroner counts; any other topic counts as `other`.
pub fn topic_label(topic: &str) -> &'static str {
    match topic {
        "/tasks/create" => "task_create",
        "/tasks/start" => "task_start",
        "/tasks/exit" => "task_exit",
        "/tasks/oom" => "task_oom",
        "/tasks/delete" => "task_delete",
        "/containers/create" => "container_create",
        "/containers/delete" => "container_delete",
        _ => "other",
    }
}

fn timestamp(ts: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.seconds, ts.nanos.clamp(0, 999_999_999) as u32)
}

pub(super) fn opt_timestamp(ts: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    // containerd sends the zero time (year 1) for "never"; both are None here.
    ts.and_then(timestamp).filter(|t| t.timestamp() > 0)
}

/// One task as containerd's task list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskState {
    pub container_id: String,
    pub pid: u32,
    /// Set when the task has stopped: its exit status and time (now, when containerd has none).
    pub exited: Option<(u32, DateTime<Utc>)>,
}

/// A task of `Tasks.List`, as coroner needs it.
pub fn decode_task(task: &Process) -> TaskState {
    // containerd 1.6 fills `id` with the container id and leaves `container_id` empty for init
    // processes; later versions fill both.
    let container_id = if task.container_id.is_empty() {
        task.id.clone()
    } else {
        task.container_id.clone()
    };
    let status = TaskStatus::try_from(task.status).unwrap_or(TaskStatus::Unknown);
    let exited = (status == TaskStatus::Stopped).then(|| {
        let at = task
            .exited_at
            .as_ref()
            .and_then(timestamp)
            .unwrap_or_else(Utc::now);
        (task.exit_status, at)
    });
    TaskState {
        container_id,
        pid: task.pid,
        exited,
    }
}

pub fn decode_envelope(env: &Envelope) -> Result<Decoded, DecodeError> {
    let topic = env.topic.clone();
    let payload = || {
        env.event
            .as_ref()
            .ok_or_else(|| DecodeError::MissingPayload {
                topic: topic.clone(),
            })
    };
    fn decode<M: Message + Default>(topic: &str, any: &prost_types::Any) -> Result<M, DecodeError> {
        M::decode(any.value.as_slice()).map_err(|source| DecodeError::Payload {
            topic: topic.to_string(),
            type_url: any.type_url.clone(),
            source,
        })
    }
    let event = match topic.as_str() {
        "/tasks/create" => {
            let e: TaskCreate = decode(&topic, payload()?)?;
            Event::TaskCreate {
                container_id: e.container_id,
                pid: e.pid,
                bundle: e.bundle,
            }
        }
        "/tasks/start" => {
            let e: TaskStart = decode(&topic, payload()?)?;
            Event::TaskStart {
                container_id: e.container_id,
                pid: e.pid,
            }
        }
        "/tasks/exit" => {
            let e: TaskExit = decode(&topic, payload()?)?;
            Event::TaskExit {
                exited_at: opt_timestamp(e.exited_at.as_ref()),
                container_id: e.container_id,
                exec_id: e.id,
                pid: e.pid,
                exit_status: e.exit_status,
            }
        }
        "/tasks/oom" => {
            let e: TaskOom = decode(&topic, payload()?)?;
            Event::TaskOom {
                container_id: e.container_id,
            }
        }
        "/tasks/delete" => {
            let e: TaskDelete = decode(&topic, payload()?)?;
            Event::TaskDelete {
                container_id: e.container_id,
                pid: e.pid,
            }
        }
        "/containers/create" => {
            let e: containerd_client::events::ContainerCreate = decode(&topic, payload()?)?;
            Event::ContainerCreate { container_id: e.id }
        }
        "/containers/delete" => {
            let e: containerd_client::events::ContainerDelete = decode(&topic, payload()?)?;
            Event::ContainerDelete { container_id: e.id }
        }
        _ => Event::Other,
    };
    Ok(Decoded {
        timestamp: opt_timestamp(env.timestamp.as_ref()),
        namespace: env.namespace.clone(),
        topic,
        event,
    })
}

/// What a container record and its OCI spec say, before any cgroup is read.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainerMeta {
    pub id: String,
    pub image: Option<String>,
    pub runtime: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub created_at: Option<DateTime<Utc>>,
    pub is_sandbox: bool,
    pub command: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    /// Full environment as the spec has it; the collector keeps names only unless allow-listed.
    pub env: Vec<(String, String)>,
    pub cgroups_path: Option<String>,
    pub kubernetes: Option<KubernetesInfo>,
    /// Image id (config digest) from the CRI metadata, when present.
    pub image_id: Option<String>,
    /// The snapshotter and key of the container's writable snapshot (its root filesystem).
    pub snapshot: Option<(String, String)>,
}

pub fn decode_container(c: &Container) -> Result<ContainerMeta, DecodeError> {
    let labels: BTreeMap<String, String> = c
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let spec: Value = match &c.spec {
        Some(any) if !any.value.is_empty() => {
            serde_json::from_slice(&any.value).map_err(|source| DecodeError::Spec {
                id: c.id.clone(),
                source,
            })?
        }
        _ => Value::Null,
    };
    let process = &spec["process"];
    let command = strings(&process["args"]);
    let env = strings(&process["env"])
        .into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv, String::new()),
        })
        .collect();
    let user = match (
        &process["user"]["username"],
        &process["user"]["uid"],
        &process["user"]["gid"],
    ) {
        (Value::String(name), _, _) if !name.is_empty() => Some(name.clone()),
        (_, Value::Number(uid), Value::Number(gid)) => Some(format!("{uid}:{gid}")),
        (_, Value::Number(uid), _) => Some(uid.to_string()),
        _ => None,
    };
    let cri = c
        .extensions
        .get(CRI_METADATA_EXTENSION)
        .and_then(|any| serde_json::from_slice::<Value>(&any.value).ok());
    let kubernetes = kubernetes_identity(&labels, &spec["annotations"], cri.as_ref());
    let image_id = cri
        .as_ref()
        .and_then(|m| m["Metadata"]["ImageRef"].as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(ContainerMeta {
        id: c.id.clone(),
        image: Some(c.image.clone()).filter(|s| !s.is_empty()),
        runtime: c
            .runtime
            .as_ref()
            .map(|r| r.name.clone())
            .filter(|s| !s.is_empty()),
        is_sandbox: labels.get(CRI_KIND_LABEL).map(String::as_str) == Some("sandbox"),
        labels,
        created_at: opt_timestamp(c.created_at.as_ref()),
        command,
        cwd: process["cwd"].as_str().map(str::to_string),
        user,
        env,
        cgroups_path: spec["linux"]["cgroupsPath"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        snapshot: (!c.snapshotter.is_empty() && !c.snapshot_key.is_empty())
            .then(|| (c.snapshotter.clone(), c.snapshot_key.clone())),
        kubernetes,
        image_id,
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Kubernetes identity from the CRI labels, falling back to the OCI annotations, plus the attempt
/// and log path that only the CRI metadata extension holds.
fn kubernetes_identity(
    labels: &BTreeMap<String, String>,
    annotations: &Value,
    cri: Option<&Value>,
) -> Option<KubernetesInfo> {
    let label = |k: &str| labels.get(k).filter(|s| !s.is_empty()).cloned();
    let annotation = |k: &str| {
        annotations[k]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let pod =
        label("io.kubernetes.pod.name").or_else(|| annotation("io.kubernetes.cri.sandbox-name"))?;
    let meta = cri.map(|m| &m["Metadata"]);
    let attempt = meta
        .and_then(|m| m["Config"]["metadata"]["attempt"].as_u64())
        .or_else(|| {
            // `Name` is `container_pod_namespace_uid_attempt`; the attempt is the last field.
            meta.and_then(|m| m["Name"].as_str())
                .and_then(|n| n.rsplit('_').next())
                .and_then(|a| a.parse().ok())
        })
        .or(meta.map(|_| 0))
        .map(|a| a as u32);
    Some(KubernetesInfo {
        namespace: label("io.kubernetes.pod.namespace")
            .or_else(|| annotation("io.kubernetes.cri.sandbox-namespace"))
            .unwrap_or_default(),
        pod_uid: label("io.kubernetes.pod.uid")
            .or_else(|| annotation("io.kubernetes.cri.sandbox-uid")),
        container: label("io.kubernetes.container.name")
            .or_else(|| annotation("io.kubernetes.cri.container-name"))
            .unwrap_or_default(),
        attempt,
        log_path: meta
            .and_then(|m| m["LogPath"].as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        sandbox_id: meta
            .and_then(|m| m["SandboxID"].as_str())
            .map(str::to_string)
            .or_else(|| annotation("io.kubernetes.cri.sandbox-id")),
        pod,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::{Any, Timestamp};

    fn envelope<M: Message>(topic: &str, type_url: &str, m: &M) -> Envelope {
        Envelope {
            timestamp: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            namespace: "k8s.io".into(),
            topic: topic.into(),
            event: Some(Any {
                type_url: type_url.into(),
                value: m.encode_to_vec(),
            }),
        }
    }

    #[test]
    fn exit_of_init_process_decodes_status_and_time() {
        let exit = TaskExit {
            container_id: "c1".into(),
            id: "c1".into(),
            pid: 42,
            exit_status: 137,
            exited_at: Some(Timestamp {
                seconds: 1_700_000_001,
                nanos: 0,
            }),
        };
        let d = decode_envelope(&envelope(
            "/tasks/exit",
            "containerd.events.TaskExit",
            &exit,
        ))
        .unwrap();
        assert_eq!(d.namespace, "k8s.io");
        match d.event {
            Event::TaskExit {
                exec_id,
                pid,
                exit_status,
                exited_at,
                ..
            } => {
                assert_eq!((exec_id.as_str(), pid, exit_status), ("c1", 42, 137));
                assert_eq!(exited_at.unwrap().timestamp(), 1_700_000_001);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn garbage_payload_is_an_error_not_a_panic() {
        let env = Envelope {
            timestamp: None,
            namespace: "x".into(),
            topic: "/tasks/exit".into(),
            event: Some(Any {
                type_url: "containerd.events.TaskExit".into(),
                value: vec![0xff, 0xff, 0xff],
            }),
        };
        let err = decode_envelope(&env).unwrap_err();
        assert_eq!(err.label(), "event_decode");
        let env = Envelope { event: None, ..env };
        assert!(matches!(
            decode_envelope(&env),
            Err(DecodeError::MissingPayload { .. })
        ));
    }

    #[test]
    fn unknown_topics_are_other() {
        let env = Envelope {
            topic: "/snapshot/prepare".into(),
            ..Default::default()
        };
        assert_eq!(decode_envelope(&env).unwrap().event, Event::Other);
        assert_eq!(topic_label("/snapshot/prepare"), "other");
    }

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/containerd/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn captured_envelope(e: &Value) -> Envelope {
        Envelope {
            timestamp: None,
            namespace: e["namespace"].as_str().unwrap().into(),
            topic: e["topic"].as_str().unwrap().into(),
            event: Some(Any {
                type_url: e["type_url"].as_str().unwrap().into(),
                value: hex(e["value_hex"].as_str().unwrap()),
            }),
        }
    }

    #[test]
    fn every_captured_event_stream_decodes() {
        let mut exits = 0;
        for name in [
            "stream-cri-exit-0.json",
            "stream-cri-oom-kill.json",
            "stream-cri-pod-and-exit-3.json",
            "stream-plain-exit-3-and-sigkill.json",
        ] {
            for e in fixture(&format!("events/{name}")).as_array().unwrap() {
                let d = decode_envelope(&captured_envelope(e))
                    .unwrap_or_else(|err| panic!("{name}: {err}"));
                if let Event::TaskCreate { bundle, .. } = &d.event {
                    assert_eq!(bundle, e["decoded"]["bundle"].as_str().unwrap());
                    assert!(bundle.ends_with(e["decoded"]["container_id"].as_str().unwrap()));
                }
                if let Event::TaskExit {
                    container_id,
                    pid,
                    exit_status,
                    ..
                } = &d.event
                {
                    exits += 1;
                    assert_eq!(container_id, e["decoded"]["container_id"].as_str().unwrap());
                    assert_eq!(u64::from(*pid), e["decoded"]["pid"].as_u64().unwrap());
                    assert_eq!(
                        u64::from(*exit_status),
                        e["decoded"]["exit_status"].as_u64().unwrap_or(0)
                    );
                }
            }
        }
        assert!(exits >= 4, "the captures hold exits: {exits}");
    }

    #[test]
    fn captured_oom_kill_exit_is_status_137() {
        let e = fixture("events/task-exit-oom-killed.json");
        match decode_envelope(&captured_envelope(&e)).unwrap().event {
            Event::TaskExit { exit_status, .. } => assert_eq!(exit_status, 137),
            other => panic!("{other:?}"),
        }
        let oom = decode_envelope(&captured_envelope(&fixture("events/task-oom.json"))).unwrap();
        assert!(matches!(oom.event, Event::TaskOom { .. }));
    }

    /// A `Container` as `Containers.Get` returned it, rebuilt from the captured `ctr containers info`.
    fn captured_container(info: &str, extensions: Option<&str>) -> Container {
        let info = fixture(info);
        let mut c = Container {
            id: info["ID"].as_str().unwrap().into(),
            image: info["Image"].as_str().unwrap().into(),
            labels: info["Labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().into()))
                .collect(),
            runtime: Some(containerd_client::services::v1::container::Runtime {
                name: info["Runtime"]["Name"].as_str().unwrap().into(),
                options: None,
            }),
            spec: Some(Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                value: serde_json::to_vec(&info["Spec"]).unwrap(),
            }),
            ..Default::default()
        };
        if let Some(ext) = extensions {
            for (k, v) in fixture(ext)["extensions"].as_object().unwrap() {
                c.extensions.insert(
                    k.clone(),
                    Any {
                        type_url: v["type_url"].as_str().unwrap().into(),
                        value: serde_json::to_vec(&v["value"]).unwrap(),
                    },
                );
            }
        }
        c
    }

    #[test]
    fn cri_container_yields_kubernetes_identity_attempt_and_log_path() {
        let m = decode_container(&captured_container(
            "container-info-cri.json",
            Some("cri-container-extensions.json"),
        ))
        .unwrap();
        assert!(!m.is_sandbox);
        let k = m.kubernetes.unwrap();
        assert_eq!(
            (k.pod.as_str(), k.namespace.as_str(), k.container.as_str()),
            ("crasher", "default", "app")
        );
        assert_eq!(
            k.pod_uid.as_deref(),
            Some("4f1c7a52-0d2b-4f8e-9a6c-2b1d7e3c9f10")
        );
        assert_eq!(k.attempt, Some(1));
        assert!(k.log_path.unwrap().ends_with("/app/1.log"));
        assert_eq!(m.command, ["sh", "-c", "echo dying; exit 3"]);
        assert!(m.env.iter().any(|(k, v)| k == "MODE" && v == "crash"));
        assert!(m.image_id.unwrap().starts_with("sha256:"));
        assert!(m.cgroups_path.unwrap().ends_with(&m.id));
        assert_eq!(m.runtime.as_deref(), Some("io.containerd.runc.v2"));
    }

    #[test]
    fn cri_sandbox_is_recognised_and_plain_container_has_no_kubernetes_identity() {
        assert!(
            decode_container(&captured_container("container-info-cri-sandbox.json", None))
                .unwrap()
                .is_sandbox
        );
        let plain =
            decode_container(&captured_container("container-info-plain.json", None)).unwrap();
        assert!(!plain.is_sandbox);
        assert_eq!(plain.kubernetes, None);
        assert_eq!(plain.command, ["sh", "-c", "exit 3"]);
    }

    #[test]
    fn zero_time_is_none() {
        assert_eq!(
            opt_timestamp(Some(&Timestamp {
                seconds: -62135596800,
                nanos: 0
            })),
            None
        );
    }
}

/// The upper (writable) directory of an overlay mount, from its options (`upperdir=...`).
pub fn overlay_upperdir<'a>(options: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    options
        .into_iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .filter(|d| d.starts_with('/'))
}

/// The lower (read-only: the image's layers) directories of an overlay mount, top first, from
/// its options (`lowerdir=/a:/b`).
pub fn overlay_lowerdirs<'a>(options: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    options
        .into_iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .map(|dirs| dirs.split(':').filter(|d| d.starts_with('/')).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod upperdir_tests {
    #[test]
    fn the_upper_dir_is_read_from_overlay_options() {
        let opts = [
            "index=off",
            "workdir=/var/lib/c/snapshots/9/work",
            "upperdir=/var/lib/c/snapshots/9/fs",
            "lowerdir=/a:/b",
        ];
        assert_eq!(
            super::overlay_upperdir(opts),
            Some("/var/lib/c/snapshots/9/fs")
        );
        assert_eq!(super::overlay_upperdir(["ro", "lowerdir=/a"]), None);
        assert_eq!(super::overlay_lowerdirs(opts), vec!["/a", "/b"]);
        assert!(super::overlay_lowerdirs(["ro"]).is_empty());
    }
}
