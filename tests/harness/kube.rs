//! Kubernetes manifests, run for real: renders a kustomization with `kubectl kustomize` (YAML
//! turned into JSON by `scripts/yaml-to-json.py`, so no YAML crate is needed) and runs a pod
//! template through the CRI API the way kubelet would: hostPath volumes as bind mounts, env with
//! the downward API, `securityContext`, `hostPID`, resources, kubelet's default masked paths.
//!
//! The translation refuses what it does not know (a volume type, an env source, a pod or
//! container field) instead of ignoring it, so a manifest cannot gain a setting the test silently
//! drops. Two things differ from a cluster, both by necessity and both explicit:
//! - every pod uses the host network (the harness has no CNI), whatever `hostNetwork` says;
//! - host paths outside `/sys` and `/proc` must be mapped to test directories
//!   ([`Kubelet::host_path`]), so a test never writes to the real node's directories.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_cri::v1::{Mount, MountPropagation, SecurityProfile};
use serde_json::Value;

use super::cri::{Cri, Pod};

/// The crate's root directory (where `deploy/` and `scripts/` are).
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `kubectl kustomize <dir>`, as a list of objects. Panics with kubectl's message on failure.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn render(dir: &Path) -> Vec<Value> {
    let yaml = render_yaml(dir);
    yaml_to_json(&yaml)
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("rendering {} gave no list of objects", dir.display()))
}

/// `kubectl kustomize <dir>`, as YAML text.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn render_yaml(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running kubectl (scripts/install-deps.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed ({}): {}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kubectl kustomize printed non-UTF-8")
}

/// A YAML stream as a JSON array of its documents, through `scripts/yaml-to-json.py`.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn yaml_to_json(yaml: &str) -> Value {
    let script = repo_root().join("scripts/yaml-to-json.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running python3 {}: {e}", script.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .expect("writing YAML to yaml-to-json.py");
    let out = child
        .wait_with_output()
        .expect("waiting for yaml-to-json.py");
    assert!(
        out.status.success(),
        "yaml-to-json.py failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("yaml-to-json.py printed invalid JSON")
}

/// The object of `kind` named `name`; panics listing what there is when it is missing.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            let have: Vec<String> = objects
                .iter()
                .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
                .collect();
            panic!("no {kind} named {name} among {have:?}")
        })
}

/// The container `name` of a pod spec.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn container<'a>(pod_spec: &'a Value, name: &str) -> &'a Value {
    pod_spec["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("pod spec has no container {name}"))
}

/// The literal `value` of env var `name` of a container (`None` when absent or not a literal).
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?
        .get("value")?
        .as_str()
}

/// The volume of `pod_spec` a container mounts at `mount_path` (or at the closest parent of it).
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn volume_for_path<'a>(pod_spec: &'a Value, container: &Value, path: &Path) -> &'a Value {
    let mount = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| path.starts_with(m["mountPath"].as_str().unwrap_or("\0")))
        .max_by_key(|m| m["mountPath"].as_str().map_or(0, str::len))
        .unwrap_or_else(|| panic!("no volume mounted at or above {}", path.display()));
    volume(pod_spec, mount["name"].as_str().unwrap())
}

/// The volume `name` of a pod spec.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn volume<'a>(pod_spec: &'a Value, name: &str) -> &'a Value {
    pod_spec["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == name))
        .unwrap_or_else(|| panic!("pod spec has no volume {name}"))
}

/// The container port a probe (or any `httpGet`) targets: a number, or a port name resolved
/// against the container's `ports`.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn http_get_port(container: &Value, http_get: &Value) -> u16 {
    match &http_get["port"] {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .expect("port"),
        Value::String(name) => container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name.as_str())
            .and_then(|p| p["containerPort"].as_u64())
            .map(|p| p as u16)
            .unwrap_or_else(|| panic!("httpGet port {name} is no named port of the container")),
        other => panic!("httpGet port {other} is neither a number nor a name"),
    }
}

/// Kubernetes quantity -> bytes (`128Mi`, `1G`, `512`).
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn bytes(quantity: &str) -> i64 {
    let units: [(&str, i64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = quantity.strip_suffix(suffix) {
            return n.parse::<i64>().expect("quantity number") * factor;
        }
    }
    quantity
        .parse()
        .unwrap_or_else(|_| panic!("unsupported memory quantity {quantity}"))
}

/// Kubernetes CPU quantity -> millicores (`10m`, `1`, `0.5`).
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn millicores(quantity: &str) -> i64 {
    match quantity.strip_suffix('m') {
        Some(m) => m.parse().expect("millicores"),
        None => (quantity.parse::<f64>().expect("cores") * 1000.0).round() as i64,
    }
}

/// Pod spec fields that have no effect on the CRI calls for one node (the API server, scheduler,
/// DaemonSet controller and token mounter act on them), or that the harness handles as noted.
#[allow(dead_code)] // each test binary uses a different part of the harness
const POD_FIELDS_WITHOUT_CRI_EFFECT: &[&str] = &[
    "serviceAccountName",
    "automountServiceAccountToken", // false: kubelet mounts no token; true is refused below
    "priorityClassName",
    "tolerations",
    "enableServiceLinks", // only adds env vars the agent does not read
    "terminationGracePeriodSeconds",
    "hostNetwork", // the harness always uses the host network (no CNI)
    "nodeSelector",
    "affinity",
    "dnsPolicy",
];

/// Container fields that are not part of CreateContainer (probes are run by the test itself, see
/// [`http_get_port`]; ports only matter to the network).
#[allow(dead_code)] // each test binary uses a different part of the harness
const CONTAINER_FIELDS_WITHOUT_CRI_EFFECT: &[&str] = &[
    "name",
    "image",
    "imagePullPolicy",
    "ports",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
];

/// kubelet's `DefaultMaskedPaths` / `DefaultReadonlyPaths` for `procMount: Default`.
#[allow(dead_code)] // each test binary uses a different part of the harness
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
#[allow(dead_code)] // each test binary uses a different part of the harness
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The node-side choices kubelet would make for a pod, set by the test. See the module docs.
#[derive(Debug, Clone)]
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct Kubelet {
    node_name: String,
    host_paths: Vec<(PathBuf, PathBuf)>,
    env_overrides: Vec<(String, String)>,
    without_volumes: Vec<String>,
}

/// One started container of a pod template.
#[derive(Debug, Clone)]
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct KubeContainer {
    pub name: String,
    pub id: String,
    /// The environment it was started with, after the downward API and the overrides.
    pub env: HashMap<String, String>,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl Kubelet {
    /// A kubelet on a node called `node_name` (what `spec.nodeName` resolves to).
    pub fn new(node_name: &str) -> Kubelet {
        Kubelet {
            node_name: node_name.to_string(),
            host_paths: Vec::new(),
            env_overrides: Vec::new(),
            without_volumes: Vec::new(),
        }
    }

    /// Binds `test_path` wherever a hostPath volume names `node_path` (exactly).
    pub fn host_path(
        mut self,
        node_path: impl Into<PathBuf>,
        test_path: impl Into<PathBuf>,
    ) -> Self {
        self.host_paths.push((node_path.into(), test_path.into()));
        self
    }

    /// Replaces the value of env var `key`, which the container must already set: a deliberate,
    /// visible deviation from the manifest.
    pub fn env_override(mut self, key: &str, value: &str) -> Self {
        self.env_overrides
            .push((key.to_string(), value.to_string()));
        self
    }

    /// Leaves out volume `name` and its mounts, to show that the pod needs it.
    pub fn without_volume(mut self, name: &str) -> Self {
        self.without_volumes.push(name.to_string());
        self
    }

    /// Runs the pod template (`spec.template` of a DaemonSet or Deployment) as pod `name` in
    /// Kubernetes namespace `namespace` and starts its containers, in order.
    pub async fn run(
        &self,
        cri: &Cri,
        namespace: &str,
        name: &str,
        template: &Value,
    ) -> (Pod, Vec<KubeContainer>) {
        let spec = &template["spec"];
        for key in spec.as_object().expect("pod spec").keys() {
            let known = POD_FIELDS_WITHOUT_CRI_EFFECT.contains(&key.as_str())
                || ["containers", "volumes", "hostPID"].contains(&key.as_str());
            assert!(
                known,
                "pod spec field `{key}`: the harness kubelet does not translate it yet"
            );
        }
        assert_ne!(
            spec["automountServiceAccountToken"],
            Value::Bool(true),
            "a service account token mount is not translated"
        );
        let volumes = self.volumes(spec);
        let mut pod = cri.pod(name, namespace);
        for (k, v) in template["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
        {
            pod = pod.label(k, v.as_str().unwrap_or_default());
        }
        for (k, v) in template["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
        {
            pod = pod.annotation(k, v.as_str().unwrap_or_default());
        }
        if spec["hostPID"] == true {
            pod = pod.host_pid();
        }
        let pod = pod.run().await;

        let mut started = Vec::new();
        for c in spec["containers"].as_array().expect("containers") {
            started.push(self.start_container(&pod, c, &volumes).await);
        }
        (pod, started)
    }

    /// hostPath volume name -> its path on this test machine, mapped and checked as kubelet would.
    fn volumes(&self, spec: &Value) -> HashMap<String, PathBuf> {
        let mut out = HashMap::new();
        for v in spec["volumes"].as_array().into_iter().flatten() {
            let name = v["name"].as_str().expect("volume name").to_string();
            if self.without_volumes.contains(&name) {
                continue;
            }
            let host = v
                .get("hostPath")
                .unwrap_or_else(|| panic!("volume {name}: only hostPath volumes are translated"));
            let node_path = PathBuf::from(host["path"].as_str().expect("hostPath.path"));
            let path = match self.host_paths.iter().find(|(n, _)| *n == node_path) {
                Some((_, test)) => test.clone(),
                None if node_path.starts_with("/sys") || node_path.starts_with("/proc") => {
                    node_path.clone()
                }
                None => panic!(
                    "hostPath {} of volume {name} would use the real node's directory: map it with Kubelet::host_path",
                    node_path.display()
                ),
            };
            // What kubelet checks (or creates) before it starts the pod.
            match host["type"].as_str().unwrap_or("") {
                "" => {}
                "Directory" => assert!(
                    path.is_dir(),
                    "hostPath {} (type Directory, volume {name}) is not a directory here",
                    path.display()
                ),
                "DirectoryOrCreate" => fs::create_dir_all(&path)
                    .unwrap_or_else(|e| panic!("creating hostPath {}: {e}", path.display())),
                other => panic!("hostPath type {other} (volume {name}) is not translated"),
            }
            out.insert(name, path);
        }
        out
    }

    async fn start_container(
        &self,
        pod: &Pod,
        c: &Value,
        volumes: &HashMap<String, PathBuf>,
    ) -> KubeContainer {
        let name = c["name"].as_str().expect("container name").to_string();
        for key in c.as_object().expect("container").keys() {
            let known = CONTAINER_FIELDS_WITHOUT_CRI_EFFECT.contains(&key.as_str())
                || [
                    "command",
                    "args",
                    "env",
                    "resources",
                    "securityContext",
                    "volumeMounts",
                ]
                .contains(&key.as_str());
            assert!(
                known,
                "container {name}: field `{key}`: the harness kubelet does not translate it yet"
            );
        }
        let image = c["image"].as_str().expect("container image");
        let mut b = pod.container(&name).image(image);
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let s = s.as_str().expect("string").to_string();
                    assert!(
                        !s.contains("$("),
                        "$(VAR) expansion in {s:?} is not translated"
                    );
                    s
                })
                .collect()
        };
        b = b.command(strings(&c["command"])).args(strings(&c["args"]));

        let env = self.env(&name, c);
        let mut keys: Vec<&String> = env.keys().collect();
        keys.sort();
        for k in keys {
            b = b.env(k, &env[k]);
        }

        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let vname = m["name"].as_str().expect("volumeMount name");
            if self.without_volumes.iter().any(|w| w == vname) {
                continue;
            }
            let host = volumes
                .get(vname)
                .unwrap_or_else(|| panic!("container {name} mounts unknown volume {vname}"));
            for key in m.as_object().unwrap().keys() {
                assert!(
                    ["name", "mountPath", "readOnly", "mountPropagation"].contains(&key.as_str()),
                    "volumeMount field `{key}` is not translated"
                );
            }
            let propagation = match m["mountPropagation"].as_str().unwrap_or("None") {
                "None" => MountPropagation::PropagationPrivate,
                "HostToContainer" => MountPropagation::PropagationHostToContainer,
                "Bidirectional" => MountPropagation::PropagationBidirectional,
                other => panic!("mountPropagation {other}"),
            };
            b = b.mount(Mount {
                container_path: m["mountPath"].as_str().expect("mountPath").to_string(),
                host_path: host.to_string_lossy().into_owned(),
                readonly: m["readOnly"] == true,
                propagation: propagation as i32,
                ..Default::default()
            });
        }

        let resources = &c["resources"];
        if let Some(mem) = resources["limits"]["memory"].as_str() {
            b = b.memory_limit(bytes(mem));
        }
        if let Some(cpu) = resources["limits"]["cpu"].as_str() {
            b = b.cpu_quota(millicores(cpu) * 100, 100_000);
        }
        if let Some(cpu) = resources["requests"]["cpu"].as_str() {
            // kubelet's MilliCPUToShares.
            b = b.cpu_shares((millicores(cpu) * 1024 / 1000).max(2));
        }

        let sc = &c["securityContext"];
        for key in sc.as_object().into_iter().flatten().map(|(k, _)| k) {
            assert!(
                [
                    "runAsUser",
                    "runAsGroup",
                    "runAsNonRoot",
                    "privileged",
                    "allowPrivilegeEscalation",
                    "readOnlyRootFilesystem",
                    "capabilities",
                    "seccompProfile",
                ]
                .contains(&key.as_str()),
                "securityContext field `{key}` is not translated"
            );
        }
        if let Some(uid) = sc["runAsUser"].as_i64() {
            b = b.run_as_user(uid);
        }
        if let Some(gid) = sc["runAsGroup"].as_i64() {
            b = b.run_as_group(gid);
        }
        if sc["runAsNonRoot"] == true {
            assert_ne!(
                sc["runAsUser"], 0,
                "runAsNonRoot with runAsUser 0: kubelet refuses"
            );
        }
        let privileged = sc["privileged"] == true;
        b = b.privileged(privileged);
        if sc["allowPrivilegeEscalation"] == false {
            b = b.no_new_privs(true);
        }
        b = b.readonly_rootfs(sc["readOnlyRootFilesystem"] == true);
        if let Some(caps) = sc.get("capabilities") {
            b = b.capabilities(strings(&caps["add"]), strings(&caps["drop"]));
        }
        match sc["seccompProfile"]["type"].as_str() {
            None | Some("Unconfined") => {}
            Some("RuntimeDefault") => {
                b = b.seccomp(SecurityProfile {
                    profile_type: k8s_cri::v1::security_profile::ProfileType::RuntimeDefault as i32,
                    ..Default::default()
                })
            }
            Some(other) => panic!("seccompProfile type {other} is not translated"),
        }
        if !privileged {
            let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
            b = b.masked_paths(own(MASKED_PATHS), own(READONLY_PATHS));
        }

        let id = b.start().await;
        KubeContainer { name, id, env }
    }

    /// The container's env as kubelet resolves it, with the overrides applied.
    fn env(&self, container: &str, c: &Value) -> HashMap<String, String> {
        let mut env = HashMap::new();
        for e in c["env"].as_array().into_iter().flatten() {
            let key = e["name"].as_str().expect("env name").to_string();
            let value = if let Some(v) = e.get("value") {
                v.as_str().expect("env value").to_string()
            } else {
                match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                    Some("spec.nodeName") => self.node_name.clone(),
                    _ => panic!(
                        "env {key}: only literal values and fieldRef spec.nodeName are translated"
                    ),
                }
            };
            env.insert(key, value);
        }
        for (k, v) in &self.env_overrides {
            assert!(
                env.contains_key(k),
                "container {container}: override of {k}, which the manifest does not set"
            );
            env.insert(k.clone(), v.clone());
        }
        env
    }
}
