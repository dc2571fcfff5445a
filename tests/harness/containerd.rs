//! A private containerd per test: its own root, state, sockets, opt dir, runc root and cgroup
//! parent, with the CRI plugin configured for host-network pods without CNI (see FACTS.md).
//!
//! Owns the daemon process and everything it or its shims create. `Drop` tears all of it down
//! (containers, shims, mounts, cgroups, files) even while the test panics; it never uses the
//! system containerd or `/run/containerd/containerd.sock`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::services::v1::{Container, GetContainerRequest};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::Request;
use containerd_client::with_namespace;
use serde_json::Value;

use super::cri::Cri;
use super::host::{self, Footprint};
use super::images::{self, TestImages, BUSYBOX_IMAGE, PAUSE_IMAGE};
use super::plain::PlainBuilder;

/// The namespace the CRI plugin (and so Kubernetes) uses.
pub const K8S_NAMESPACE: &str = "k8s.io";
/// The namespace plain (non-Kubernetes) test containers live in.
pub const PLAIN_NAMESPACE: &str = "coroner-plain";

const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// One private containerd daemon and everything it owns. See the module docs.
pub struct Containerd {
    /// `coroner-test-XXXXXX`: the directory name and the cgroup parent name.
    name: String,
    dir: PathBuf,
    socket: PathBuf,
    child: Option<Child>,
    images: &'static TestImages,
    torn_down: bool,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl Containerd {
    /// Starts a fresh daemon, waits until its gRPC and CRI services answer, and imports the test
    /// images into `k8s.io` and `coroner-plain`.
    pub async fn start() -> Containerd {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the containerd test harness must run as root"
        );
        let images = tokio::task::spawn_blocking(images::test_images)
            .await
            .expect("building test images");
        let base = std::env::var_os("CORONER_TEST_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("coroner-test-")
            .rand_bytes(6)
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("creating a temp dir in {}: {e}", base.display()))
            .keep();
        // First thing in the dir: lets scripts/cleanup-test-leftovers.sh tell a live run's instance
        // from an aborted one's.
        fs::write(dir.join("owner"), host::owner_stamp()).unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let socket = dir.join("containerd.sock");
        let mut cd = Containerd {
            name,
            dir,
            socket,
            child: None,
            images,
            torn_down: false,
        };
        // Unix socket paths are limited to 108 bytes; fail clearly rather than with EINVAL later.
        assert!(
            cd.socket().with_extension("sock.ttrpc").as_os_str().len() < 100,
            "socket path {} too long: set CORONER_TEST_TMPDIR to a shorter directory",
            cd.socket().display()
        );
        for sub in [
            "root",
            "state",
            "opt",
            "runc",
            "fifo",
            "logs",
            "pods",
            "cni/bin",
            "cni/net.d",
        ] {
            fs::create_dir_all(cd.dir.join(sub)).unwrap();
        }
        fs::write(cd.config_path(), cd.config_toml()).unwrap();
        let t0 = Instant::now();
        cd.spawn_daemon();
        cd.wait_ready().await;
        let started = t0.elapsed();

        let socket = cd.socket().to_path_buf();
        tokio::task::spawn_blocking(move || {
            std::thread::scope(|s| {
                s.spawn(|| images::import(&socket, K8S_NAMESPACE));
                s.spawn(|| images::import(&socket, PLAIN_NAMESPACE));
            })
        })
        .await
        .expect("importing test images");
        // CRI learns about imported images from containerd events, asynchronously.
        let cri = cd.cri().await;
        for image in [BUSYBOX_IMAGE, PAUSE_IMAGE] {
            cri.wait_image(image, Duration::from_secs(10)).await;
        }
        if std::env::var_os("CORONER_TEST_TIMINGS").is_some() {
            eprintln!(
                "[harness] {}: containerd ready in {started:?}, images ready in {:?}",
                cd.name,
                t0.elapsed()
            );
        }
        cd
    }

    /// The instance's gRPC socket (never the system one).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The instance's private directory (root, state, runc root, logs...).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `coroner-test-XXXXXX`, unique per instance.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Cgroup parent of everything this instance runs, e.g. `/coroner-test-XXXXXX`.
    pub fn cgroup_parent(&self) -> String {
        format!("/{}", self.name)
    }

    /// The test images imported into this instance.
    pub fn images(&self) -> &'static TestImages {
        self.images
    }

    /// The runc state root shared by CRI and plain containers of this instance.
    pub fn runc_root(&self) -> PathBuf {
        self.dir.join("runc")
    }

    /// Pid of the running daemon, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The daemon's log (stdout and stderr, all restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// A fresh gRPC channel to the daemon.
    pub async fn channel(&self) -> Channel {
        containerd_client::connect(self.socket())
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.socket().display()))
    }

    /// A containerd API client for this instance.
    pub async fn client(&self) -> containerd_client::Client {
        containerd_client::Client::from(self.channel().await)
    }

    /// A CRI client for this instance (kubelet's view).
    pub async fn cri(&self) -> Cri {
        Cri::connect(self.socket(), &self.cgroup_parent(), &self.dir.join("pods")).await
    }

    /// Starts describing a plain containerd container `id` in `coroner-plain`.
    pub fn plain(&self, id: &str) -> PlainBuilder {
        PlainBuilder::new(self, id)
    }

    /// The containerd record of a container (labels, image, runtime, spec, extensions).
    pub async fn container(&self, namespace: &str, id: &str) -> Container {
        let mut client = ContainersClient::new(self.channel().await);
        let req = with_namespace!(GetContainerRequest { id: id.to_string() }, namespace);
        client
            .get(req)
            .await
            .unwrap_or_else(|e| panic!("Containers.Get {namespace}/{id}: {e}"))
            .into_inner()
            .container
            .unwrap_or_else(|| panic!("Containers.Get {namespace}/{id}: no container in reply"))
    }

    /// The OCI runtime spec containerd stored for a container, as JSON.
    pub async fn spec(&self, namespace: &str, id: &str) -> Value {
        let c = self.container(namespace, id).await;
        let spec = c
            .spec
            .unwrap_or_else(|| panic!("container {namespace}/{id} has no spec"));
        serde_json::from_slice(&spec.value)
            .unwrap_or_else(|e| panic!("spec of {namespace}/{id} is not JSON: {e}"))
    }

    /// Runs `ctr --address <socket> --namespace <namespace> <args>` and returns its output.
    pub fn try_ctr(&self, namespace: &str, args: &[&str]) -> Output {
        ctr(self.socket(), namespace, args)
    }

    /// Like [`Self::try_ctr`], but panics unless ctr succeeds; returns stdout.
    pub fn ctr(&self, namespace: &str, args: &[&str]) -> String {
        let out = self.try_ctr(namespace, args);
        assert!(
            out.status.success(),
            "ctr -n {namespace} {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Imports the test images into one more namespace.
    pub async fn import_images(&self, namespace: &str) {
        let socket = self.socket().to_path_buf();
        let namespace = namespace.to_string();
        tokio::task::spawn_blocking(move || images::import(&socket, &namespace))
            .await
            .unwrap();
    }

    /// Pids of the shims serving this instance (they outlive a daemon restart).
    pub fn shim_pids(&self) -> Vec<u32> {
        host::shims_of(self.socket())
            .into_iter()
            .map(|p| p.pid)
            .collect()
    }

    /// SIGKILLs the daemon, as a crash would. Shims and containers keep running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the daemon with SIGTERM (SIGKILL after 10 s). Shims and containers keep running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            host::signal(child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.wait();
        }
    }

    /// Starts the daemon again on the same directories after [`Self::kill`] or [`Self::stop`] and
    /// waits until it answers; the CRI plugin then recovers the running containers.
    pub async fn resume(&mut self) {
        assert!(
            self.child.is_none(),
            "resume() while containerd {} still runs",
            self.name
        );
        for s in ["containerd.sock", "containerd.sock.ttrpc"] {
            let _ = fs::remove_file(self.dir.join(s));
        }
        self.spawn_daemon();
        self.wait_ready().await;
    }

    /// Kills the daemon (not the shims) and starts it again on the same directories.
    pub async fn restart(&mut self) {
        self.kill();
        self.resume().await;
    }

    /// What this instance has put on the host right now, to check for leaks after teardown.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            dir: self.dir.clone(),
            socket: self.socket().to_path_buf(),
            cgroup_parent: self.cgroup_parent(),
            shim_sockets: self.shim_sockets(),
        }
    }

    /// Tears everything down now and returns what could not be cleaned (empty when all went).
    pub fn teardown(mut self) -> Vec<String> {
        self.teardown_now()
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    fn config_toml(&self) -> String {
        let d = self.dir.display();
        // Port 0: the CRI stream server binds a free port, so parallel instances never collide.
        format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = "{d}/runc-v1"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{d}/runc"
        SystemdCgroup = false
"#
        )
    }

    fn spawn_daemon(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.log_path().display()));
        let child = Command::new("containerd")
            .arg("--config")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting containerd (install it with scripts/install-deps.sh): {e}")
            });
        self.child = Some(child);
    }

    /// Polls until both the containerd API and the CRI runtime service answer.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_error;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "containerd {} exited during start-up ({status}); its log follows the panic",
                    self.name
                );
            }
            match self.probe().await {
                Ok(()) => return,
                Err(e) => last_error = e,
            }
            if Instant::now() > deadline {
                panic!(
                    "containerd {} not ready after {READY_TIMEOUT:?}: {last_error}; its log follows the panic",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn probe(&self) -> Result<(), String> {
        let channel = containerd_client::connect(self.socket())
            .await
            .map_err(|e| format!("connect: {e}"))?;
        VersionClient::new(channel.clone())
            .version(())
            .await
            .map_err(|e| format!("Version: {e}"))?;
        let mut cri = k8s_cri::v1::runtime_service_client::RuntimeServiceClient::new(channel);
        cri.version(k8s_cri::v1::VersionRequest::default())
            .await
            .map_err(|e| format!("CRI Version: {e}"))?;
        Ok(())
    }

    /// `/run/containerd/s/<hash>` sockets of this instance's shims, from the `address` file
    /// containerd keeps in every task bundle.
    fn shim_sockets(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let tasks = self.dir.join("state/io.containerd.runtime.v2.task");
        for ns in fs::read_dir(&tasks).into_iter().flatten().flatten() {
            for bundle in fs::read_dir(ns.path()).into_iter().flatten().flatten() {
                if let Ok(addr) = fs::read_to_string(bundle.path().join("address")) {
                    let addr = addr.trim();
                    let path = addr.strip_prefix("unix://").unwrap_or(addr);
                    if path.starts_with('/') {
                        out.push(PathBuf::from(path));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Brute-force teardown that needs no working daemon: kill it, force-delete every runc
    /// container in the instance's runc root, kill its shims, unmount, remove cgroups and files.
    fn teardown_now(&mut self) -> Vec<String> {
        if self.torn_down {
            return Vec::new();
        }
        self.torn_down = true;
        let mut problems = Vec::new();
        self.kill();
        // A daemon from an earlier `Containerd` value on this dir cannot exist, but a leftover
        // of a crashed resume() could: match by config path.
        let strays: Vec<u32> = host::daemons_under(&self.dir)
            .into_iter()
            .map(|p| p.pid)
            .collect();
        problems.extend(host::kill_and_wait(&strays));

        // Shims first: with them gone nothing reaps the containers or publishes their exits
        // (each publish would exec `containerd publish` against the dead socket).
        let shim_sockets = self.shim_sockets();
        let shims: Vec<u32> = self.shim_pids();
        problems.extend(host::kill_and_wait(&shims));
        problems.extend(self.force_delete_runc_containers());
        for s in &shim_sockets {
            match fs::remove_file(s) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => problems.push(format!("removing shim socket {}: {e}", s.display())),
            }
        }
        problems.extend(host::unmount_all_under(&self.dir));
        problems.extend(host::remove_cgroup_tree(&self.cgroup_parent()));
        if host::mounts_under(&self.dir).is_empty() {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                problems.push(format!("removing {}: {e}", self.dir.display()));
            }
        } else {
            problems.push(format!(
                "left {} in place: mounts remain under it",
                self.dir.display()
            ));
        }
        problems
    }

    /// `runc delete --force` for every container state dir under `<dir>/runc/<namespace>/`: kills
    /// the container's processes and removes its cgroups, whatever state containerd was in.
    fn force_delete_runc_containers(&self) -> Vec<String> {
        let mut containers = Vec::new();
        for ns in fs::read_dir(self.runc_root())
            .into_iter()
            .flatten()
            .flatten()
        {
            for container in fs::read_dir(ns.path()).into_iter().flatten().flatten() {
                containers.push((ns.path(), container.file_name()));
            }
        }
        // In parallel: each runc call freezes, kills and waits, ~50-100 ms apiece.
        std::thread::scope(|s| {
            let handles: Vec<_> = containers
                .iter()
                .map(|(root, id)| {
                    s.spawn(move || {
                        let out = Command::new("runc")
                            .arg("--root")
                            .arg(root)
                            .args(["delete", "--force"])
                            .arg(id)
                            .output();
                        match out {
                            Ok(o) if o.status.success() => None,
                            Ok(o) => Some(format!(
                                "runc delete --force {id:?}: {}",
                                String::from_utf8_lossy(&o.stderr).trim()
                            )),
                            Err(e) => Some(format!("running runc: {e}")),
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok().flatten())
                .collect()
        })
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.torn_down {
            return;
        }
        let panicking = std::thread::panicking();
        if panicking {
            eprintln!(
                "[harness] containerd {} log tail ({}):\n{}",
                self.name,
                self.log_path().display(),
                host::tail(&self.log_path(), 60)
            );
        }
        let problems = self.teardown_now();
        if !problems.is_empty() {
            eprintln!(
                "[harness] teardown of containerd {} left problems:\n  {}",
                self.name,
                problems.join("\n  ")
            );
        }
    }
}

/// `ctr --address <socket> --namespace <namespace> <args>`.
pub(super) fn ctr(socket: &Path, namespace: &str, args: &[&str]) -> Output {
    Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args(["--namespace", namespace])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running ctr: {e}"))
}
