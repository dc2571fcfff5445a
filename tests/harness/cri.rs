//! Kubelet's side of the CRI, reduced to what tests need: pods and containers created with the
//! metadata, labels, annotations, log paths and cgroup parents kubelet would give them.
//!
//! ```ignore
//! let cri = containerd.cri().await;
//! let pod = cri.run_pod("web", "default").await;
//! let id = pod.container("app").command(["sh", "-c", "exit 3"]).memory_limit(20 << 20).start().await;
//! let status = cri.wait_exited(&id, Duration::from_secs(10)).await;
//! ```

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Status};
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    Capability, ContainerConfig, ContainerMetadata, ContainerState, ContainerStatus,
    ContainerStatusRequest, CreateContainerRequest, ImageSpec, ImageStatusRequest, Int64Value,
    KeyValue, LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, RemoveContainerRequest, RemovePodSandboxRequest,
    RunPodSandboxRequest, SecurityProfile, StartContainerRequest, StopContainerRequest,
    StopPodSandboxRequest,
};
use sha2::{Digest, Sha256};

use super::host;
use super::images::BUSYBOX_IMAGE;

/// A CRI client bound to one private containerd. Cheap to clone.
#[derive(Clone)]
pub struct Cri {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    cgroup_parent: String,
    pod_logs: PathBuf,
    driver: CgroupDriver,
}

/// How pods' cgroup parents are named, as kubelet's `--cgroup-driver` decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // each test binary uses a different part of the harness
pub enum CgroupDriver {
    /// `<parent>/pod<uid>` (the private containerds of the harness).
    Cgroupfs,
    /// `kubepods-besteffort-pod<uid with _ for ->.slice`, which runc (SystemdCgroup = true)
    /// expands to `/kubepods.slice/kubepods-besteffort.slice/...` and puts each container in
    /// `cri-containerd-<id>.scope` below it (the test VM's node).
    Systemd,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl Cri {
    /// Connects to the CRI services on `socket`. Pods get cgroup parents under `cgroup_parent` and
    /// log directories under `pod_logs`, as kubelet's `/kubepods/...` and `/var/log/pods`.
    pub async fn connect(socket: &Path, cgroup_parent: &str, pod_logs: &Path) -> Cri {
        let channel = containerd_client::connect(socket)
            .await
            .unwrap_or_else(|e| panic!("connecting to CRI at {}: {e}", socket.display()));
        Cri {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            cgroup_parent: cgroup_parent.to_string(),
            pod_logs: pod_logs.to_path_buf(),
            driver: CgroupDriver::Cgroupfs,
        }
    }

    /// Connects to the CRI services on `socket` of a node whose kubelet and containerd use the
    /// systemd cgroup driver: pods get `kubepods-besteffort-pod<uid>.slice` parents.
    pub async fn connect_systemd(socket: &Path, pod_logs: &Path) -> Cri {
        let mut cri = Cri::connect(socket, "", pod_logs).await;
        cri.driver = CgroupDriver::Systemd;
        cri
    }

    /// The raw CRI runtime client, for calls the helpers do not cover.
    pub fn runtime(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone()
    }

    /// The raw CRI image client.
    pub fn image_service(&self) -> ImageServiceClient<Channel> {
        self.images.clone()
    }

    /// Describes a pod to run; see [`PodBuilder`].
    pub fn pod(&self, name: &str, namespace: &str) -> PodBuilder {
        PodBuilder {
            cri: self.clone(),
            name: name.to_string(),
            namespace: namespace.to_string(),
            uid: None,
            attempt: 0,
            labels: HashMap::new(),
            annotations: HashMap::new(),
            pids_limit: None,
            pid_mode: NamespaceMode::Container,
        }
    }

    /// Runs a pod with defaults: fresh uid, attempt 0, host network.
    pub async fn run_pod(&self, name: &str, namespace: &str) -> Pod {
        self.pod(name, namespace).run().await
    }

    /// ContainerStatus of `id`.
    pub async fn container_status(&self, id: &str) -> ContainerStatus {
        self.try_container_status(id)
            .await
            .unwrap_or_else(|e| panic!("ContainerStatus {id}: {e}"))
    }

    /// ContainerStatus of `id`, or the gRPC error (e.g. `NotFound` after removal).
    pub async fn try_container_status(&self, id: &str) -> Result<ContainerStatus, Status> {
        let req = ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        };
        let resp = self
            .runtime
            .clone()
            .container_status(req)
            .await?
            .into_inner();
        resp.status
            .ok_or_else(|| Status::new(Code::Internal, "ContainerStatus reply without status"))
    }

    /// Host pid of a running container's init process, from the runtime's verbose
    /// ContainerStatus (`info.pid`), to look at it in `/proc`.
    pub async fn container_pid(&self, id: &str) -> u32 {
        let req = ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: true,
        };
        let resp = self
            .runtime
            .clone()
            .container_status(req)
            .await
            .unwrap_or_else(|e| panic!("ContainerStatus {id} (verbose): {e}"))
            .into_inner();
        let info = resp
            .info
            .get("info")
            .unwrap_or_else(|| panic!("ContainerStatus {id}: no verbose `info`: {:?}", resp.info));
        let info: serde_json::Value = serde_json::from_str(info)
            .unwrap_or_else(|e| panic!("ContainerStatus {id}: verbose info is not JSON: {e}"));
        match info["pid"].as_u64() {
            Some(pid) if pid > 0 => pid as u32,
            _ => panic!("ContainerStatus {id}: no pid in verbose info (not running?): {info}"),
        }
    }

    /// Polls ContainerStatus until the container is `CONTAINER_EXITED`; panics after `timeout`.
    pub async fn wait_exited(&self, id: &str, timeout: Duration) -> ContainerStatus {
        self.wait_state(id, ContainerState::ContainerExited, timeout)
            .await
    }

    /// Polls ContainerStatus until the container is `CONTAINER_RUNNING`; panics after `timeout`.
    pub async fn wait_running(&self, id: &str, timeout: Duration) -> ContainerStatus {
        self.wait_state(id, ContainerState::ContainerRunning, timeout)
            .await
    }

    async fn wait_state(
        &self,
        id: &str,
        want: ContainerState,
        timeout: Duration,
    ) -> ContainerStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.container_status(id).await;
            if status.state == want as i32 {
                return status;
            }
            if Instant::now() > deadline {
                panic!("container {id} not {want:?} after {timeout:?}; last status: {status:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// StopContainer: the image's stop signal (SIGTERM), then SIGKILL after `timeout_secs`.
    pub async fn stop_container(&self, id: &str, timeout_secs: i64) {
        let req = StopContainerRequest {
            container_id: id.to_string(),
            timeout: timeout_secs,
        };
        self.runtime
            .clone()
            .stop_container(req)
            .await
            .unwrap_or_else(|e| panic!("StopContainer {id}: {e}"));
    }

    /// RemoveContainer (stops it first if needed).
    pub async fn remove_container(&self, id: &str) {
        let req = RemoveContainerRequest {
            container_id: id.to_string(),
        };
        self.runtime
            .clone()
            .remove_container(req)
            .await
            .unwrap_or_else(|e| panic!("RemoveContainer {id}: {e}"));
    }

    /// StopPodSandbox: kills every container of the pod and the sandbox.
    pub async fn stop_pod(&self, pod_id: &str) {
        let req = StopPodSandboxRequest {
            pod_sandbox_id: pod_id.to_string(),
        };
        self.runtime
            .clone()
            .stop_pod_sandbox(req)
            .await
            .unwrap_or_else(|e| panic!("StopPodSandbox {pod_id}: {e}"));
    }

    /// RemovePodSandbox: removes the sandbox and its containers.
    pub async fn remove_pod(&self, pod_id: &str) {
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: pod_id.to_string(),
        };
        self.runtime
            .clone()
            .remove_pod_sandbox(req)
            .await
            .unwrap_or_else(|e| panic!("RemovePodSandbox {pod_id}: {e}"));
    }

    /// Polls ImageStatus until CRI knows `image` (it learns of imports through events).
    /// The image id (config digest) CRI resolves `image` to now, if it knows it.
    #[allow(dead_code)]
    pub async fn image_id(&self, image: &str) -> Option<String> {
        let req = ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            verbose: false,
        };
        let resp = self.images.clone().image_status(req).await.ok()?;
        resp.into_inner().image.map(|i| i.id)
    }

    pub async fn wait_image(&self, image: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let req = ImageStatusRequest {
                image: Some(ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                verbose: false,
            };
            match self.images.clone().image_status(req).await {
                Ok(r) if r.get_ref().image.is_some() => return,
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                other => panic!("CRI does not know image {image} after {timeout:?}: {other:?}"),
            }
        }
    }
}

/// A pod to run. Defaults mirror kubelet for a pod with `hostNetwork: true`.
pub struct PodBuilder {
    cri: Cri,
    name: String,
    namespace: String,
    uid: Option<String>,
    attempt: u32,
    labels: HashMap<String, String>,
    annotations: HashMap<String, String>,
    pids_limit: Option<u64>,
    pid_mode: NamespaceMode,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl PodBuilder {
    /// Pod uid (default: a fresh random UUID).
    pub fn uid(mut self, uid: &str) -> Self {
        self.uid = Some(uid.to_string());
        self
    }

    /// Sandbox attempt (kubelet increments it when it recreates the sandbox).
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }

    /// `pids.max` of the pod cgroup, as kubelet's `podPidsLimit` sets it (v1 `pids` hierarchy).
    pub fn pids_limit(mut self, max: u64) -> Self {
        self.pids_limit = Some(max);
        self
    }

    /// `hostPID: true`: the sandbox and its containers use the host's pid namespace.
    pub fn host_pid(mut self) -> Self {
        self.pid_mode = NamespaceMode::Node;
        self
    }

    /// `shareProcessNamespace: true`: the containers join the sandbox's pid namespace, where the
    /// pause process is pid 1. Without it each container's command is pid 1 of its own namespace,
    /// and the kernel drops signals a pid 1 sends itself (`sh -c 'kill -SEGV $$'` just exits 0).
    pub fn share_process_namespace(mut self) -> Self {
        self.pid_mode = NamespaceMode::Pod;
        self
    }

    /// RunPodSandbox; panics with the CRI error on failure.
    pub async fn run(self) -> Pod {
        let uid = self.uid.clone().unwrap_or_else(random_uuid);
        let cgroup_parent = match self.cri.driver {
            CgroupDriver::Cgroupfs => format!("{}/pod{uid}", self.cri.cgroup_parent),
            // kubelet's pod slice name: systemd unit names cannot hold the uid's dashes.
            CgroupDriver::Systemd => {
                format!("kubepods-besteffort-pod{}.slice", uid.replace('-', "_"))
            }
        };
        let log_directory = self
            .cri
            .pod_logs
            .join(format!("{}_{}_{uid}", self.namespace, self.name));
        fs::create_dir_all(&log_directory)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log_directory.display()));
        if let (Some(max), CgroupDriver::Cgroupfs) = (self.pids_limit, self.cri.driver) {
            let root = host::cgroup_v1_root("pids")
                .expect("pids_limit needs a v1 pids hierarchy on this host");
            let dir = root.join(cgroup_parent.trim_start_matches('/'));
            fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            fs::write(dir.join("pids.max"), max.to_string())
                .unwrap_or_else(|e| panic!("writing {}/pids.max: {e}", dir.display()));
        }

        let mut labels = self.labels;
        labels.insert("io.kubernetes.pod.name".into(), self.name.clone());
        labels.insert("io.kubernetes.pod.namespace".into(), self.namespace.clone());
        labels.insert("io.kubernetes.pod.uid".into(), uid.clone());
        let mut annotations = self.annotations;
        annotations
            .entry("kubernetes.io/config.source".into())
            .or_insert_with(|| "api".into());
        annotations
            .entry("kubernetes.io/config.seen".into())
            .or_insert_with(|| {
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            });

        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: self.name.clone(),
                uid: uid.clone(),
                namespace: self.namespace.clone(),
                attempt: self.attempt,
            }),
            // kubelet leaves the hostname empty for host-network pods: there is no private UTS
            // namespace to set it in (runc refuses: "unable to set hostname").
            hostname: String::new(),
            log_directory: log_directory.to_string_lossy().into_owned(),
            labels,
            annotations,
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: cgroup_parent.clone(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(pod_namespaces(self.pid_mode)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        };
        let id = self
            .cri
            .runtime
            .clone()
            .run_pod_sandbox(req)
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox {}/{}: {e}", self.namespace, self.name))
            .into_inner()
            .pod_sandbox_id;
        if let (Some(max), CgroupDriver::Systemd) = (self.pids_limit, self.cri.driver) {
            set_slice_tasks_max(&cgroup_parent, max);
        }
        Pod {
            cri: self.cri,
            id,
            name: self.name,
            namespace: self.namespace,
            uid,
            cgroup_parent,
            log_directory,
            config,
            pid_mode: self.pid_mode,
        }
    }
}

/// The pod-level pids limit as kubelet's systemd cgroup manager sets it: `TasksMax` on the pod's
/// slice (which the sandbox's scope made exist), so systemd enables the pids controller down to
/// it. Checks the kernel file afterwards.
fn set_slice_tasks_max(slice: &str, max: u64) {
    let out = std::process::Command::new("systemctl")
        .args([
            "set-property",
            "--runtime",
            slice,
            &format!("TasksMax={max}"),
        ])
        .output()
        .unwrap_or_else(|e| panic!("running systemctl set-property {slice}: {e}"));
    assert!(
        out.status.success(),
        "systemctl set-property {slice} TasksMax={max}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stem = slice.trim_end_matches(".slice");
    let mut dir = PathBuf::from("/sys/fs/cgroup");
    let mut end = 0;
    for part in stem.split('-') {
        end += part.len();
        dir.push(format!("{}.slice", &stem[..end]));
        end += 1;
    }
    let file = dir.join("pids.max");
    let got =
        fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    assert_eq!(
        got.trim(),
        max.to_string(),
        "{} after TasksMax={max}",
        file.display()
    );
}

/// Host network, pod IPC, and a pid namespace per container (or per pod when shared): what kubelet
/// sends for `hostNetwork: true`.
fn pod_namespaces(pid: NamespaceMode) -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: pid as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// A running pod sandbox.
#[derive(Clone)]
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct Pod {
    cri: Cri,
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// e.g. `/coroner-test-XXXXXX/pod<uid>`; containers get `<cgroup_parent>/<container id>`.
    pub cgroup_parent: String,
    pub log_directory: PathBuf,
    config: PodSandboxConfig,
    pid_mode: NamespaceMode,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl Pod {
    /// Describes a container of this pod; see [`ContainerBuilder`].
    pub fn container(&self, name: &str) -> ContainerBuilder {
        ContainerBuilder {
            pod: self.clone(),
            name: name.to_string(),
            attempt: 0,
            image: BUSYBOX_IMAGE.to_string(),
            command: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            working_dir: String::new(),
            labels: HashMap::new(),
            annotations: HashMap::new(),
            resources: LinuxContainerResources::default(),
            termination_message_path: "/dev/termination-log".to_string(),
            mounts: Vec::new(),
            security: LinuxContainerSecurityContext::default(),
        }
    }

    /// StopPodSandbox.
    pub async fn stop(&self) {
        self.cri.stop_pod(&self.id).await;
    }

    /// StopPodSandbox then RemovePodSandbox.
    pub async fn remove(self) {
        self.cri.stop_pod(&self.id).await;
        self.cri.remove_pod(&self.id).await;
    }
}

/// A container to create in a pod, with kubelet's labels and annotations.
pub struct ContainerBuilder {
    pod: Pod,
    name: String,
    attempt: u32,
    image: String,
    command: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    working_dir: String,
    labels: HashMap<String, String>,
    annotations: HashMap<String, String>,
    resources: LinuxContainerResources,
    termination_message_path: String,
    mounts: Vec<Mount>,
    /// Everything but `namespace_options`, which always come from the pod.
    security: LinuxContainerSecurityContext,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl ContainerBuilder {
    /// The entrypoint (Kubernetes `command`), replacing the image's.
    pub fn command<I, S>(mut self, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command = command.into_iter().map(Into::into).collect();
        self
    }

    /// Kubernetes `args`.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn working_dir(mut self, dir: &str) -> Self {
        self.working_dir = dir.to_string();
        self
    }

    /// Image reference (default [`BUSYBOX_IMAGE`]).
    pub fn image(mut self, image: &str) -> Self {
        self.image = image.to_string();
        self
    }

    /// ContainerMetadata.attempt, which kubelet also writes as `io.kubernetes.container.restartCount`.
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }

    /// `memory.limit_in_bytes` of the container cgroup.
    pub fn memory_limit(mut self, bytes: i64) -> Self {
        self.resources.memory_limit_in_bytes = bytes;
        self
    }

    /// CFS quota and period in microseconds (`cpu: 500m` is quota 50000, period 100000).
    pub fn cpu_quota(mut self, quota_us: i64, period_us: i64) -> Self {
        self.resources.cpu_quota = quota_us;
        self.resources.cpu_period = period_us;
        self
    }

    pub fn cpu_shares(mut self, shares: i64) -> Self {
        self.resources.cpu_shares = shares;
        self
    }

    /// Requested oom_score_adj (containerd clamps it to its own, `restrict_oom_score_adj`).
    pub fn oom_score_adj(mut self, adj: i64) -> Self {
        self.resources.oom_score_adj = adj;
        self
    }

    pub fn termination_message_path(mut self, path: &str) -> Self {
        self.termination_message_path = path.to_string();
        self
    }

    /// A bind mount, as kubelet sends a `hostPath` volume mount (`rbind`; `readonly`; propagation
    /// from `mountPropagation`, private by default).
    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// `securityContext.capabilities`: names without `CAP_` (`"ALL"`, `"BPF"`), as kubelet
    /// passes them on.
    pub fn capabilities<A, D, S>(mut self, add: A, drop: D) -> Self
    where
        A: IntoIterator<Item = S>,
        D: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.security.capabilities = Some(Capability {
            add_capabilities: add.into_iter().map(Into::into).collect(),
            drop_capabilities: drop.into_iter().map(Into::into).collect(),
            ..Default::default()
        });
        self
    }

    /// `securityContext.privileged`.
    pub fn privileged(mut self, privileged: bool) -> Self {
        self.security.privileged = privileged;
        self
    }

    /// `securityContext.readOnlyRootFilesystem`.
    pub fn readonly_rootfs(mut self, readonly: bool) -> Self {
        self.security.readonly_rootfs = readonly;
        self
    }

    /// `securityContext.runAsUser`.
    pub fn run_as_user(mut self, uid: i64) -> Self {
        self.security.run_as_user = Some(Int64Value { value: uid });
        self
    }

    /// `securityContext.runAsGroup`.
    pub fn run_as_group(mut self, gid: i64) -> Self {
        self.security.run_as_group = Some(Int64Value { value: gid });
        self
    }

    /// `no_new_privs`, which kubelet sets for `allowPrivilegeEscalation: false`.
    pub fn no_new_privs(mut self, no_new_privs: bool) -> Self {
        self.security.no_new_privs = no_new_privs;
        self
    }

    /// `securityContext.seccompProfile` as its CRI form (e.g. `RuntimeDefault`).
    pub fn seccomp(mut self, profile: SecurityProfile) -> Self {
        self.security.seccomp = Some(profile);
        self
    }

    /// `masked_paths` and `readonly_paths` of `/proc` and `/sys`: kubelet sends its defaults for
    /// `procMount: Default` with every unprivileged container.
    pub fn masked_paths(mut self, masked: Vec<String>, readonly: Vec<String>) -> Self {
        self.security.masked_paths = masked;
        self.security.readonly_paths = readonly;
        self
    }

    /// CreateContainer; returns the container id.
    pub async fn create(self) -> String {
        let what = format!("{}/{}/{}", self.pod.namespace, self.pod.name, self.name);
        self.try_create()
            .await
            .unwrap_or_else(|e| panic!("CreateContainer {what}: {e}"))
    }

    /// CreateContainer then StartContainer; returns the container id.
    pub async fn start(self) -> String {
        let what = format!("{}/{}/{}", self.pod.namespace, self.pod.name, self.name);
        self.try_start()
            .await
            .unwrap_or_else(|e| panic!("creating and starting {what}: {e}"))
    }

    /// Like [`Self::start`], returning the CRI error instead of panicking.
    pub async fn try_start(self) -> Result<String, Status> {
        let cri = self.pod.cri.clone();
        let id = self.try_create().await?;
        cri.runtime
            .clone()
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await?;
        Ok(id)
    }

    /// Like [`Self::create`], returning the CRI error instead of panicking.
    pub async fn try_create(self) -> Result<String, Status> {
        let pod = &self.pod;
        // kubelet's log layout: <pod log dir>/<container name>/<restart count>.log
        let log_path = format!("{}/{}.log", self.name, self.attempt);
        let _ = fs::create_dir_all(pod.log_directory.join(&self.name));

        let mut labels = self.labels;
        labels.insert("io.kubernetes.container.name".into(), self.name.clone());
        labels.insert("io.kubernetes.pod.name".into(), pod.name.clone());
        labels.insert("io.kubernetes.pod.namespace".into(), pod.namespace.clone());
        labels.insert("io.kubernetes.pod.uid".into(), pod.uid.clone());
        let mut annotations = self.annotations;
        let hash = spec_hash(&self.name, &self.image, &self.command, &self.args);
        for (k, v) in [
            ("io.kubernetes.container.hash", hash),
            (
                "io.kubernetes.container.restartCount",
                self.attempt.to_string(),
            ),
            (
                "io.kubernetes.container.terminationMessagePath",
                self.termination_message_path.clone(),
            ),
            (
                "io.kubernetes.container.terminationMessagePolicy",
                "File".to_string(),
            ),
            ("io.kubernetes.pod.terminationGracePeriod", "30".to_string()),
        ] {
            annotations.entry(k.to_string()).or_insert(v);
        }

        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: self.name.clone(),
                attempt: self.attempt,
            }),
            image: Some(ImageSpec {
                image: self.image.clone(),
                ..Default::default()
            }),
            command: self.command,
            args: self.args,
            working_dir: self.working_dir,
            envs: self
                .env
                .into_iter()
                .map(|(key, value)| KeyValue { key, value })
                .collect(),
            labels,
            annotations,
            log_path,
            mounts: self.mounts,
            linux: Some(LinuxContainerConfig {
                resources: Some(self.resources),
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(pod_namespaces(pod.pid_mode)),
                    ..self.security
                }),
            }),
            ..Default::default()
        };
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        };
        Ok(pod
            .cri
            .runtime
            .clone()
            .create_container(req)
            .await?
            .into_inner()
            .container_id)
    }
}

/// A stand-in for kubelet's container hash: hex of a 64-bit hash of the spec fields.
fn spec_hash(name: &str, image: &str, command: &[String], args: &[String]) -> String {
    let mut h = Sha256::new();
    for part in [name, image]
        .into_iter()
        .chain(command.iter().map(String::as_str))
        .chain(args.iter().map(String::as_str))
    {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    format!("{:x}", u64::from_be_bytes(d[..8].try_into().unwrap()))
}

fn random_uuid() -> String {
    fs::read_to_string("/proc/sys/kernel/random/uuid")
        .expect("reading /proc/sys/kernel/random/uuid")
        .trim()
        .to_string()
}
