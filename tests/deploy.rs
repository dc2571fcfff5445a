//! The deployment, proven instead of hoped: the Containerfile and the manifests in `deploy/` pass
//! their linters, agree with each other, and the agent's own image runs the way the rendered
//! DaemonSet says (host pid namespace, capabilities, mounts, read-only root, env, probes) under a
//! real containerd through the CRI API, and reports a crash with its cgroup figures and the
//! syscall recorder's data. Two variants show what the cgroup volume and the added capabilities
//! are for.
//!
//! Nothing about the pod is restated here: it is read from `kubectl kustomize deploy/` and run by
//! [`harness::kube::Kubelet`]. The test only chooses what a node would: its name, where the
//! containerd socket directory and the data dir are (the harness's, a temp dir), and, as the one
//! deviation from the manifest, the listen addresses (see [`start_daemonset_pod`]).

mod harness;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use harness::kube::{self, repo_root, Kubelet};
use harness::{host, Containerd, Cri, Pod, K8S_NAMESPACE};
use serde_json::Value;

const NODE_NAME: &str = "deploy-test-node";
const TIMEOUT: Duration = Duration::from_secs(30);

/// The base manifests, rendered.
fn base() -> Vec<Value> {
    kube::render(&repo_root().join("deploy"))
}

fn daemonset(objects: &[Value]) -> &Value {
    kube::find(objects, "DaemonSet", "coroner")
}

fn agent_container(ds: &Value) -> &Value {
    kube::container(&ds["spec"]["template"]["spec"], "coroner")
}

/// Runs `scripts/<name>` with `args` from the repository root; panics with its output on failure.
fn script(name: &str, args: &[&str]) -> String {
    let path = repo_root().join("scripts").join(name);
    let out = Command::new(&path)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{name} {args:?} failed ({}):\n{text}",
        out.status
    );
    text
}

/// The agent's image, built offline from the Containerfile (`scripts/build-image.sh --offline`:
/// the static binary compiled on this host by the build stage's own script) under the reference
/// the DaemonSet names, as an OCI archive. Built once per test process.
fn image_archive(image: &str) -> &'static Path {
    static ARCHIVE: OnceLock<(String, PathBuf)> = OnceLock::new();
    let (built, path) = ARCHIVE.get_or_init(|| {
        let dir = repo_root().join("target/coroner-image");
        let archive = dir.join("coroner-oci.tar");
        let t0 = Instant::now();
        let log = script(
            "build-image.sh",
            &[
                "--offline",
                "--tag",
                image,
                "--archive",
                archive.to_str().unwrap(),
                "--storage",
                dir.join("storage").to_str().unwrap(),
            ],
        );
        eprintln!(
            "[deploy] image {image} built in {:?}: {}",
            t0.elapsed(),
            log.lines().last().unwrap_or_default()
        );
        (image.to_string(), archive)
    });
    assert_eq!(built, image, "one image reference per test process");
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The agent pod as the DaemonSet would have it on this node, plus where to reach and inspect it.
struct AgentPod {
    _pod: Pod,
    container_id: String,
    /// `http://127.0.0.1:<port>`: the report API.
    base_url: String,
    /// `http://127.0.0.1:<port>`: /metrics and the probes.
    metrics_url: String,
    /// What the DaemonSet's data volume is on this "node".
    data_dir: PathBuf,
    log_dir: PathBuf,
    /// The recorder's pin dir in the node's bpffs (the manifest's, renamed for this test).
    pin_dir: PathBuf,
}

impl Drop for AgentPod {
    fn drop(&mut self) {
        // Unpinned, the programs detach once the agent's process is gone too.
        if let Err(e) = host::remove_pins(&self.pin_dir) {
            eprintln!("[deploy] removing {}: {e}", self.pin_dir.display());
        }
    }
}

impl AgentPod {
    fn log(&self) -> String {
        let mut text = String::new();
        for entry in walk(&self.log_dir) {
            text.push_str(&fs::read_to_string(&entry).unwrap_or_default());
        }
        text
    }

    /// Polls `GET path` until it answers 200; panics with the agent's log after [`TIMEOUT`].
    /// `/metrics` and the probes go to the metrics listener, as Prometheus and kubelet reach them.
    async fn wait_ok(&self, path: &str) -> String {
        let base = if matches!(path, "/metrics" | "/readyz" | "/healthz") {
            &self.metrics_url
        } else {
            &self.base_url
        };
        let url = format!("{base}{path}");
        let deadline = Instant::now() + TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            match http().get(&url).send().await {
                Ok(r) if r.status().is_success() => return r.text().await.unwrap_or_default(),
                Ok(r) => {
                    last = format!(
                        "HTTP {}: {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    )
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "GET {url} not 200 within {TIMEOUT:?} (last: {last}); agent log:\n{}",
            self.log()
        );
    }

    /// Polls the crash list until a report satisfies `pred`; returns the full report.
    async fn wait_report(&self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            let list: Value =
                serde_json::from_str(&self.wait_ok("/api/v1/crashes?outcome=all").await)
                    .expect("crash list is JSON");
            for item in list["items"].as_array().into_iter().flatten() {
                let id = item["id"].as_str().expect("summary id");
                let report: Value =
                    serde_json::from_str(&self.wait_ok(&format!("/api/v1/crashes/{id}")).await)
                        .expect("report is JSON");
                if pred(&report) {
                    return report;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no matching report within {TIMEOUT:?}; agent log:\n{}",
            self.log()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Imports the agent's image into `cd` and starts the rendered DaemonSet's pod template through
/// CRI as kubelet would on a node named [`NODE_NAME`], with `adjust` applied to the kubelet
/// (e.g. leaving a volume out).
async fn start_daemonset_pod(
    cd: &Containerd,
    cri: &Cri,
    objects: &[Value],
    adjust: impl FnOnce(Kubelet) -> Kubelet,
) -> AgentPod {
    let ds = daemonset(objects);
    let template = &ds["spec"]["template"];
    let spec = &template["spec"];
    let c = agent_container(ds);
    let image = c["image"].as_str().expect("image");

    let archive = {
        let image = image.to_string();
        tokio::task::spawn_blocking(move || image_archive(&image).to_path_buf())
            .await
            .expect("building the image")
    };
    cd.ctr(
        K8S_NAMESPACE,
        &["images", "import", archive.to_str().unwrap()],
    );
    cri.wait_image(image, Duration::from_secs(10)).await;

    // Where the node keeps what the volumes name, found through the settings that use them.
    let socket = Path::new(
        kube::env_value(c, "CORONER_CONTAINERD_SOCKET").expect("the manifest sets the socket"),
    );
    assert_eq!(
        socket.file_name(),
        cd.socket().file_name(),
        "the harness's containerd socket must have the manifest's file name"
    );
    let socket_volume = kube::volume_for_path(spec, c, socket.parent().unwrap());
    let data_path = kube::env_value(c, "CORONER_DATA_DIR").expect("the manifest sets the data dir");
    let data_volume = kube::volume_for_path(spec, c, Path::new(data_path));
    let node_data_dir = cd.dir().join("node-data");
    let host_path = |v: &Value| {
        v["hostPath"]["path"]
            .as_str()
            .expect("a hostPath")
            .to_string()
    };

    // A systemd node's /run is a shared mount; this VM's / is private. The manifest's
    // HostToContainer propagation needs a shared (or slave) source.
    host::make_shared(cd.dir());
    let (port, metrics_port) = (free_port(), free_port());
    // The manifest's pin dir is the node's; each test pins in one of its own there.
    host::ensure_bpffs();
    let manifest_pin =
        kube::env_value(c, "CORONER_BPF_PIN_DIR").expect("the manifest sets the pin dir");
    let stamp = host::owner_stamp()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-");
    let pin_dir = PathBuf::from(format!("{manifest_pin}-test-{stamp}-{port}"));
    let kubelet = Kubelet::new(NODE_NAME)
        .host_path(host_path(socket_volume), cd.dir())
        .host_path(host_path(data_volume), &node_data_dir)
        .host_path("/var/log/pods", cd.dir().join("pods"))
        // THE deviation from the manifest. The harness has no CNI, so every pod runs in the host
        // network namespace, where the manifest's 127.0.0.1:7464 and 0.0.0.0:7465 would collide
        // with parallel tests (and the latter bind all of this machine's addresses). In a cluster
        // the pod has its own network (hostNetwork: false) and the addresses are the pod's;
        // nothing the agent collects depends on the network namespace.
        .env_override("CORONER_LISTEN", &format!("127.0.0.1:{port}"))
        .env_override(
            "CORONER_METRICS_LISTEN",
            &format!("127.0.0.1:{metrics_port}"),
        )
        .env_override("CORONER_BPF_PIN_DIR", pin_dir.to_str().unwrap());
    let kubelet = adjust(kubelet);

    let (pod, started) = kubelet
        .run(cri, "coroner", "coroner-agent-test", template)
        .await;
    let log_dir = pod.log_directory.clone();
    let container_id = started
        .into_iter()
        .find(|s| s.name == "coroner")
        .expect("the coroner container started")
        .id;
    AgentPod {
        _pod: pod,
        container_id,
        base_url: format!("http://127.0.0.1:{port}"),
        metrics_url: format!("http://127.0.0.1:{metrics_port}"),
        data_dir: node_data_dir,
        log_dir,
        pin_dir,
    }
}

/// A container that uses 20 MB and some CPU, then exits 3, in a pod of its own.
async fn crash_a_container(cri: &Cri) -> String {
    let pod = cri.pod("checkout", "shop").run().await;
    pod.container("api")
        .command([
            "sh",
            "-c",
            "head -c 20000000 /dev/zero | tail >/dev/null; exit 3",
        ])
        .memory_limit(64 << 20)
        .start()
        .await
}

/// Crashes a container and returns its report; again (up to 3 times) while the report only
/// lacks its usage because the cgroup was gone. The agent reads usage the moment the exit event
/// arrives, 5-25 ms before the runtime removes the cgroup; on a loaded 2-core machine the
/// containerized agent can miss that window, which the report then says (`cgroup_gone`). These
/// tests are about what the pod's settings allow, not that race.
async fn crash_report_with_figures(cri: &Cri, agent: &AgentPod) -> Value {
    let mut r = Value::Null;
    for attempt in 1..=3 {
        let crashed = crash_a_container(cri).await;
        r = agent
            .wait_report(|r| r["container"]["id"] == crashed.as_str())
            .await;
        let errors = r["collection_errors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if errors.is_empty() || errors.iter().any(|e| e["stage"] != "cgroup_gone") {
            return r;
        }
        eprintln!(
            "[deploy] attempt {attempt}: the cgroup was gone before the agent read it; again"
        );
    }
    r
}

/// `/proc/<pid>/status` field (`CapEff`, `NoNewPrivs`, ...).
fn proc_status(pid: u32, field: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

#[test]
fn containerfile_passes_hadolint_and_manifests_validate_for_kubernetes_1_27_to_1_33() {
    let out = script("lint-deploy.sh", &[]);
    eprintln!("{out}");
}

#[test]
fn manifests_agree_with_each_other_in_every_overlay() {
    let deploy = repo_root().join("deploy");
    let mut roots = vec![deploy.clone()];
    let mut overlays: Vec<PathBuf> = fs::read_dir(deploy.join("overlays"))
        .expect("deploy/overlays")
        .map(|e| e.unwrap().path())
        .collect();
    overlays.sort();
    roots.extend(overlays);
    let base = base();
    for root in &roots {
        let objects = kube::render(root);
        let what = root
            .strip_prefix(repo_root())
            .unwrap()
            .display()
            .to_string();
        let ds = daemonset(&objects);
        let template = &ds["spec"]["template"];
        let labels = &template["metadata"]["labels"];
        let c = agent_container(ds);
        let selects_pods = |selector: &Value| {
            let m = selector.as_object().expect("selector labels");
            !m.is_empty() && m.iter().all(|(k, v)| labels[k] == *v)
        };

        assert!(
            selects_pods(&ds["spec"]["selector"]["matchLabels"]),
            "{what}: DaemonSet selector"
        );
        assert_eq!(
            c["image"],
            format!("localhost/coroner:{}", env!("CARGO_PKG_VERSION")),
            "{what}: the image scripts/build-image.sh builds for this version"
        );
        let ns = kube::find(&objects, "Namespace", "coroner");
        assert_eq!(
            ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "privileged",
            "{what}: hostPID and hostPath need the privileged Pod Security level"
        );
        for o in &objects {
            if o["kind"] != "Namespace" {
                assert_eq!(
                    o["metadata"]["namespace"], "coroner",
                    "{what}: {} namespace",
                    o["kind"]
                );
            }
        }

        // The hardening the runtime test then finds on the process: a node agent's few needs,
        // nothing more (README.md, "Permissions, and why").
        let sc = &c["securityContext"];
        assert_eq!(template["spec"]["hostPID"], true, "{what}");
        assert_eq!(
            template["spec"]["hostNetwork"], false,
            "{what}: pod network"
        );
        assert_eq!(sc["privileged"], false, "{what}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{what}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{what}"
        );

        // The API on the pod's loopback, undeclared; one declared port, named `metrics`, which
        // the probes, Prometheus, the Service and the NetworkPolicy refer to.
        let listen: std::net::SocketAddr = kube::env_value(c, "CORONER_LISTEN")
            .expect("CORONER_LISTEN")
            .parse()
            .expect("CORONER_LISTEN is ADDR:PORT");
        assert!(
            listen.ip().is_loopback(),
            "{what}: the API is not open to other pods"
        );
        let metrics_listen: std::net::SocketAddr = kube::env_value(c, "CORONER_METRICS_LISTEN")
            .expect("CORONER_METRICS_LISTEN")
            .parse()
            .expect("CORONER_METRICS_LISTEN is ADDR:PORT");
        assert!(
            metrics_listen.ip().is_unspecified(),
            "{what}: kubelet and Prometheus reach the metrics port on the pod IP"
        );
        let metrics_port = kube::http_get_port(c, &serde_json::json!({"port": "metrics"}));
        assert_eq!(
            metrics_listen.port(),
            metrics_port,
            "{what}: the agent listens on the container port"
        );
        let declared: Vec<u64> = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["containerPort"].as_u64().unwrap())
            .collect();
        assert_eq!(
            declared,
            [u64::from(metrics_port)],
            "{what}: only the metrics port"
        );
        for probe in ["readinessProbe", "livenessProbe"] {
            assert_eq!(
                kube::http_get_port(c, &c[probe]["httpGet"]),
                metrics_port,
                "{what}: {probe}"
            );
        }
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        let annotations = &template["metadata"]["annotations"];
        assert_eq!(annotations["prometheus.io/scrape"], "true", "{what}");
        assert_eq!(
            annotations["prometheus.io/port"],
            metrics_port.to_string(),
            "{what}"
        );
        assert_eq!(annotations["prometheus.io/path"], "/metrics", "{what}");

        let svc = kube::find(&objects, "Service", "coroner");
        assert_eq!(svc["spec"]["clusterIP"], "None", "{what}: headless");
        assert!(
            selects_pods(&svc["spec"]["selector"]),
            "{what}: Service selector"
        );
        for p in svc["spec"]["ports"].as_array().unwrap() {
            assert_eq!(
                kube::http_get_port(c, &serde_json::json!({"port": p["targetPort"]})),
                metrics_port
            );
        }
        if let Some(pm) = objects.iter().find(|o| o["kind"] == "PodMonitor") {
            assert!(
                selects_pods(&pm["spec"]["selector"]["matchLabels"]),
                "{what}: PodMonitor selector"
            );
            for ep in pm["spec"]["podMetricsEndpoints"].as_array().unwrap() {
                assert_eq!(
                    kube::http_get_port(c, ep),
                    metrics_port,
                    "{what}: PodMonitor port"
                );
                assert_eq!(
                    ep["path"], annotations["prometheus.io/path"],
                    "{what}: PodMonitor path"
                );
            }
        }

        // The NetworkPolicy selects the agent pods and admits their metrics port alone.
        let np = kube::find(&objects, "NetworkPolicy", "coroner");
        assert!(
            selects_pods(&np["spec"]["podSelector"]["matchLabels"]),
            "{what}: NetworkPolicy selector"
        );
        assert_eq!(
            np["spec"]["policyTypes"],
            serde_json::json!(["Ingress"]),
            "{what}: an ingress policy (with it, what no rule admits is refused)"
        );
        let rules = np["spec"]["ingress"].as_array().expect("ingress rules");
        assert!(!rules.is_empty(), "{what}: the metrics port is admitted");
        for rule in rules {
            let ports = rule["ports"]
                .as_array()
                .expect("every rule names its ports");
            assert!(!ports.is_empty(), "{what}: a rule without ports admits all");
            for p in ports {
                assert_eq!(
                    kube::http_get_port(c, p),
                    metrics_port,
                    "{what}: NetworkPolicy admits only the metrics port, never {listen}"
                );
            }
        }

        // Every mount has its volume and every volume is mounted.
        let spec = &template["spec"];
        let mounts: Vec<&str> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        for v in spec["volumes"].as_array().unwrap() {
            assert!(
                mounts.contains(&v["name"].as_str().unwrap()),
                "{what}: volume {} unused",
                v["name"]
            );
        }
        for m in &mounts {
            kube::volume(spec, m);
        }

        // An overlay differs from the base in nothing but what it is for.
        let name = root.file_name().unwrap().to_str().unwrap();
        let socket = Path::new(kube::env_value(c, "CORONER_CONTAINERD_SOCKET").unwrap());
        let socket_dir = kube::volume_for_path(spec, c, socket.parent().unwrap())["hostPath"]
            ["path"]
            .as_str()
            .unwrap()
            .to_string();
        let node_socket = Path::new(&socket_dir).join(socket.file_name().unwrap());
        let expected_socket = match name {
            "k3s" | "rke2" => "/run/k3s/containerd/containerd.sock",
            "microk8s" => "/var/snap/microk8s/common/run/containerd.sock",
            "k0s" => "/run/k0s/containerd.sock",
            _ => "/run/containerd/containerd.sock",
        };
        assert_eq!(
            node_socket,
            Path::new(expected_socket),
            "{what}: containerd socket on the node"
        );
        let mut normalized = objects.clone();
        for o in normalized.iter_mut().filter(|o| o["kind"] == "DaemonSet") {
            for v in o["spec"]["template"]["spec"]["volumes"]
                .as_array_mut()
                .unwrap()
            {
                if v["hostPath"]["path"] == socket_dir.as_str() {
                    v["hostPath"]["path"] = Value::from("/run/containerd");
                }
            }
        }
        normalized.retain(|o| {
            !(name == "prometheus-operator"
                && (o["kind"] == "PodMonitor" || o["kind"] == "PrometheusRule"))
        });
        assert_eq!(
            normalized, base,
            "{what}: differs from the base in more than its purpose"
        );
    }
}

/// The proof: the DaemonSet's pod, run as kubelet would run it, with the image built from the
/// Containerfile, reports a crash of another pod with every figure (cgroup included) and no
/// collection error; the process really runs with the manifest's restrictions.
#[tokio::test(flavor = "multi_thread")]
async fn daemonset_pod_runs_its_image_under_containerd_and_reports_a_crash_with_cgroup_figures() {
    let objects = base();
    let ds = daemonset(&objects);
    let c = agent_container(ds);
    let sc = &c["securityContext"];

    let cd = Containerd::start().await;
    let cri = cd.cri().await;
    let agent = start_daemonset_pod(&cd, &cri, &objects, |k| k).await;

    // As kubelet's probes would see it.
    agent
        .wait_ok(c["readinessProbe"]["httpGet"]["path"].as_str().unwrap())
        .await;
    agent
        .wait_ok(c["livenessProbe"]["httpGet"]["path"].as_str().unwrap())
        .await;

    // What the manifest asks of the runtime took effect on the process, not just in the request.
    let pid = cri.container_pid(&agent.container_id).await;
    let spec = &ds["spec"]["template"]["spec"];
    let same_pid_ns = fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap()
        == fs::read_link("/proc/self/ns/pid").unwrap();
    assert_eq!(same_pid_ns, spec["hostPID"] == true, "hostPID");
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "capabilities are an allow-list (else the count below means nothing)"
    );
    let added = sc["capabilities"]["add"].as_array().map_or(0, Vec::len) as u32;
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        let bits = u64::from_str_radix(&proc_status(pid, set), 16).unwrap();
        assert_eq!(
            bits.count_ones(),
            added,
            "{set} {bits:#x}: the added capabilities"
        );
    }
    let no_new_privs = if sc["allowPrivilegeEscalation"] == false {
        "1"
    } else {
        "0"
    };
    assert_eq!(
        proc_status(pid, "NoNewPrivs"),
        no_new_privs,
        "allowPrivilegeEscalation"
    );
    let seccomp = if sc["seccompProfile"]["type"] == "RuntimeDefault" {
        "2"
    } else {
        "0"
    };
    assert_eq!(
        proc_status(pid, "Seccomp"),
        seccomp,
        "seccompProfile (2: filter)"
    );
    let uid = sc["runAsUser"].to_string();
    assert!(
        proc_status(pid, "Uid").split_whitespace().all(|u| u == uid),
        "runAsUser {uid}"
    );
    let mountinfo = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("a root mount");
    let root_ro = root
        .split(' ')
        .nth(5)
        .unwrap()
        .split(',')
        .any(|o| o == "ro");
    assert_eq!(root_ro, sc["readOnlyRootFilesystem"] == true, "{root}");

    let r = crash_report_with_figures(&cri, &agent).await;
    eprintln!("[deploy] report: {r}");
    assert_eq!(r["exit"]["code"], 3);
    assert_eq!(r["outcome"], "crashed");
    assert_eq!(r["kubernetes"]["namespace"], "shop");
    assert_eq!(r["kubernetes"]["pod"], "checkout");
    assert_eq!(r["kubernetes"]["container"], "api");
    assert_eq!(
        r["agent"]["node"], NODE_NAME,
        "NODE_NAME from the downward API"
    );
    assert!(r["container"]["image_digest"]
        .as_str()
        .is_some_and(|d| d.starts_with("sha256:")));
    assert_eq!(
        r["collection_errors"],
        serde_json::json!([]),
        "nothing failed to collect"
    );
    let limits = &r["cgroup"]["limits"];
    let usage = &r["cgroup"]["usage"];
    assert_eq!(
        limits["memory_limit_bytes"],
        64 << 20,
        "limits read at creation: {limits}"
    );
    assert!(
        usage["memory_peak_bytes"]
            .as_u64()
            .is_some_and(|b| b >= 20_000_000),
        "usage read at the exit: {usage}"
    );
    assert!(
        usage["cpu_usage_usec"].as_u64().is_some_and(|u| u > 0),
        "{usage}"
    );
    // The syscall recorder loaded with the manifest's capabilities and saw the container's
    // syscalls up to its exit.
    let rec = &r["recorder"];
    assert_eq!(rec["state"], "recorded", "recorder: {rec}");
    assert!(
        rec["summary"]
            .as_array()
            .is_some_and(|s| s.iter().any(|c| c["syscall"] == "read")),
        "syscall summary: {}",
        rec["summary"]
    );

    // The entrypoint was read at create, through the containerd mount's HostToContainer
    // propagation (the bundle's rootfs): exec failures can be explained in the DaemonSet.
    let ep = &r["entrypoint"];
    assert!(
        ep["unavailable"].is_null() && ep["read_from"] == "bundle_rootfs",
        "entrypoint: {ep}"
    );

    // Pinned in the node's bpffs through the manifest's volume, with the manifest's capabilities:
    // the recording outlives the pod.
    let pinned: Vec<String> = fs::read_dir(&agent.pin_dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", agent.pin_dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        pinned.len() == 1 && pinned[0].starts_with("layout-"),
        "one pinned layout: {pinned:?}; agent log:\n{}",
        agent.log()
    );
    assert!(
        agent
            .pin_dir
            .join(&pinned[0])
            .join("link-sys_exit")
            .exists(),
        "the links are pinned"
    );

    // Stored where the node keeps it (the hostPath), not in the read-only image.
    let id = r["id"].as_str().unwrap();
    assert!(
        walk(&agent.data_dir)
            .iter()
            .any(|f| fs::read_to_string(f).is_ok_and(|t| t.contains(id))),
        "report {id} is in the data dir {}",
        agent.data_dir.display()
    );
    let metrics = agent.wait_ok("/metrics").await;
    assert!(metrics.lines().any(|l| l == "coroner_ready 1"), "{metrics}");

    // The agent's footprint in its container, for the manifest's resources.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    eprintln!(
        "[deploy] agent in its container: VmRSS {}, VmHWM {}, cgroup memory {}, CPU {} ticks",
        proc_status(pid, "VmRSS"),
        proc_status(pid, "VmHWM"),
        cgroup_memory(pid),
        ticks
    );
}

/// The memory the kernel charges to the process's cgroup (RSS, page cache and kernel memory such
/// as BPF maps), for the manifest's memory request and limit.
fn cgroup_memory(pid: u32) -> String {
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let path_of = |pred: &dyn Fn(&str) -> bool| {
        cgroups.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            pred(controllers).then(|| path.to_string())
        })
    };
    let mib = |file: PathBuf| {
        fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .map_or("?".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
    };
    let (dir, now, peak) = if let Some(p) = path_of(&|c| c.split(',').any(|c| c == "memory")) {
        let dir = Path::new("/sys/fs/cgroup/memory").join(p.trim_start_matches('/'));
        (dir, "memory.usage_in_bytes", "memory.max_usage_in_bytes")
    } else if let Some(p) = path_of(&|c| c.is_empty()) {
        let dir = Path::new("/sys/fs/cgroup").join(p.trim_start_matches('/'));
        (dir, "memory.current", "memory.peak")
    } else {
        return "?".into();
    };
    format!("{} (peak {})", mib(dir.join(now)), mib(dir.join(peak)))
}

/// The capabilities are the recorder's alone: without them the agent still reports every exit
/// with its cgroup figures, and says why the syscall data is missing.
#[tokio::test(flavor = "multi_thread")]
async fn without_added_capabilities_exits_are_reported_and_the_recorder_says_it_is_unavailable() {
    let mut objects = base();
    for o in objects.iter_mut().filter(|o| o["kind"] == "DaemonSet") {
        let c = &mut o["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["name"], "coroner");
        c["securityContext"]["capabilities"]["add"] = serde_json::json!([]);
    }
    let cd = Containerd::start().await;
    let cri = cd.cri().await;
    let agent = start_daemonset_pod(&cd, &cri, &objects, |k| k).await;
    agent.wait_ok("/readyz").await;
    let pid = cri.container_pid(&agent.container_id).await;
    assert_eq!(proc_status(pid, "CapEff"), "0000000000000000");

    let r = crash_report_with_figures(&cri, &agent).await;
    assert_eq!(r["exit"]["code"], 3);
    assert_eq!(r["collection_errors"], serde_json::json!([]));
    assert!(r["cgroup"]["usage"]["memory_peak_bytes"]
        .as_u64()
        .is_some_and(|b| b >= 20_000_000));
    assert_eq!(r["recorder"]["state"], "unavailable", "{}", r["recorder"]);
    assert!(
        r["recorder"]["reason"]
            .as_str()
            .is_some_and(|m| m.contains("CAP_BPF")),
        "the reason names what is missing: {}",
        r["recorder"]["reason"]
    );
}

/// The cgroup mount is not decoration: without it the agent only sees its own cgroups (the
/// runtime's default `/sys/fs/cgroup`), and a crash's report says its cgroup could not be read:
/// no limits, and only the figures the kernel gives at the exit.
#[tokio::test(flavor = "multi_thread")]
async fn without_the_host_cgroup_mount_a_report_has_no_cgroup_figures() {
    let objects = base();
    let ds = daemonset(&objects);
    let spec = &ds["spec"]["template"]["spec"];
    let cgroup_volume =
        kube::volume_for_path(spec, agent_container(ds), Path::new("/sys/fs/cgroup"))["name"]
            .as_str()
            .unwrap()
            .to_string();

    let cd = Containerd::start().await;
    let cri = cd.cri().await;
    let agent =
        start_daemonset_pod(&cd, &cri, &objects, |k| k.without_volume(&cgroup_volume)).await;
    agent.wait_ok("/readyz").await;

    let crashed = crash_a_container(&cri).await;
    let r = agent
        .wait_report(|r| r["container"]["id"] == crashed.as_str())
        .await;
    eprintln!("[deploy] report without the cgroup mount: {r}");
    assert_eq!(r["exit"]["code"], 3, "the exit itself is still reported");
    assert_ne!(
        r["collection_errors"],
        serde_json::json!([]),
        "the loss is reported"
    );
    // Without the host's cgroup tree the limits are unknown; the usage comes from the kernel's
    // own figures at the exit (the recorder reads them), and says so.
    assert!(
        r["cgroup"]["limits"].is_null(),
        "no limits without the host's cgroup tree: {}",
        r["cgroup"]
    );
    assert_eq!(
        r["cgroup"]["usage_source"], "kernel_at_exit",
        "usage only from the kernel: {}",
        r["cgroup"]
    );
}
