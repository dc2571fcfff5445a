//! Plain (non-Kubernetes) containerd containers, run with `ctr run -d` in their own namespace
//! (`coroner-plain` by default) under the instance's runc root and cgroup parent.
//!
//! `ctr` is fine for the harness; the agent itself never shells out. The container and its task
//! are deleted on drop; the owning [`super::Containerd`] removes anything left after that.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::GetRequest;
use containerd_client::tonic::Request;
use containerd_client::types::v1::{Process, Status as TaskStatus};
use containerd_client::with_namespace;

use super::containerd::{ctr, Containerd, PLAIN_NAMESPACE};
use super::images::BUSYBOX_IMAGE;

/// A plain container to run; see [`Containerd::plain`].
pub struct PlainBuilder {
    socket: PathBuf,
    runc_root: PathBuf,
    fifo_dir: PathBuf,
    log_dir: PathBuf,
    cgroup_parent: String,
    namespace: String,
    id: String,
    image: String,
    command: Vec<String>,
    env: Vec<String>,
    labels: Vec<String>,
    memory_limit: Option<u64>,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl PlainBuilder {
    pub(super) fn new(cd: &Containerd, id: &str) -> PlainBuilder {
        PlainBuilder {
            socket: cd.socket().to_path_buf(),
            runc_root: cd.runc_root(),
            fifo_dir: cd.dir().join("fifo"),
            log_dir: cd.dir().join("logs"),
            cgroup_parent: cd.cgroup_parent(),
            namespace: PLAIN_NAMESPACE.to_string(),
            id: id.to_string(),
            image: BUSYBOX_IMAGE.to_string(),
            command: Vec::new(),
            env: Vec::new(),
            labels: Vec::new(),
            memory_limit: None,
        }
    }

    /// Command and arguments (default: the image's `sh`).
    pub fn command<I, S>(mut self, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command = command.into_iter().map(Into::into).collect();
        self
    }

    /// containerd namespace (the test images must be imported there: [`Containerd::import_images`]).
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_string();
        self
    }

    pub fn image(mut self, image: &str) -> Self {
        self.image = image.to_string();
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push(format!("{key}={value}"));
        self
    }

    /// A containerd label on the container record.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push(format!("{key}={value}"));
        self
    }

    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// `ctr run -d`: creates the container and starts its task; returns once it was started.
    pub async fn run(self) -> PlainContainer {
        let cgroup = format!("{}/plain-{}", self.cgroup_parent, self.id);
        let log_path = self.log_dir.join(format!("{}.log", self.id));
        let mut args: Vec<String> = vec![
            "run".into(),
            "--detach".into(),
            "--runc-root".into(),
            self.runc_root.to_string_lossy().into_owned(),
            "--cgroup".into(),
            cgroup.clone(),
            "--fifo-dir".into(),
            self.fifo_dir.to_string_lossy().into_owned(),
            // Output goes to a file: with --detach and plain FIFOs nobody would drain the pipe.
            "--log-uri".into(),
            format!("file://{}", log_path.display()),
        ];
        for e in &self.env {
            args.extend(["--env".to_string(), e.clone()]);
        }
        for l in &self.labels {
            args.extend(["--label".to_string(), l.clone()]);
        }
        if let Some(bytes) = self.memory_limit {
            args.extend(["--memory-limit".to_string(), bytes.to_string()]);
        }
        args.push(self.image.clone());
        args.push(self.id.clone());
        args.extend(self.command.iter().cloned());

        let socket = self.socket.clone();
        let namespace = self.namespace.clone();
        let out = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ctr(&socket, &namespace, &args)
        })
        .await
        .unwrap();
        let container = PlainContainer {
            socket: self.socket,
            namespace: self.namespace,
            id: self.id,
            cgroup,
            log_path,
            removed: false,
        };
        assert!(
            out.status.success(),
            "ctr run {} in {} failed ({}): {}",
            container.id,
            container.namespace,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        container
    }
}

/// A plain container whose task was started. Deleted (task and container) on drop.
pub struct PlainContainer {
    socket: PathBuf,
    namespace: String,
    id: String,
    cgroup: String,
    log_path: PathBuf,
    removed: bool,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl PlainContainer {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The cgroup path given to runc, e.g. `/coroner-test-XXXXXX/plain-<id>`.
    pub fn cgroup_path(&self) -> &str {
        &self.cgroup
    }

    /// Where the container's stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// What the container wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The task's init process as containerd's Tasks.Get reports it.
    pub async fn task(&self) -> Process {
        let channel = containerd_client::connect(&self.socket)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.socket.display()));
        let req = with_namespace!(
            GetRequest {
                container_id: self.id.clone(),
                exec_id: String::new()
            },
            self.namespace
        );
        TasksClient::new(channel)
            .get(req)
            .await
            .unwrap_or_else(|e| panic!("Tasks.Get {}/{}: {e}", self.namespace, self.id))
            .into_inner()
            .process
            .unwrap_or_else(|| panic!("Tasks.Get {}/{}: no process", self.namespace, self.id))
    }

    /// Polls the task until it is stopped; returns it (with `exit_status` and `exited_at`).
    pub async fn wait_exited(&self, timeout: Duration) -> Process {
        let deadline = Instant::now() + timeout;
        loop {
            let task = self.task().await;
            if task.status == TaskStatus::Stopped as i32 {
                return task;
            }
            if Instant::now() > deadline {
                panic!(
                    "plain container {}/{} still not stopped after {timeout:?}: {task:?}",
                    self.namespace, self.id
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends `signal` (e.g. `"SIGKILL"`) to the task's init process.
    pub fn kill(&self, signal: &str) {
        let out = ctr(
            &self.socket,
            &self.namespace,
            &["tasks", "kill", "--signal", signal, &self.id],
        );
        assert!(
            out.status.success(),
            "ctr tasks kill {}: {}",
            self.id,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Deletes the task (killing it if needed) and the container now.
    pub async fn remove(mut self) {
        let (socket, namespace, id) =
            (self.socket.clone(), self.namespace.clone(), self.id.clone());
        self.removed = true;
        tokio::task::spawn_blocking(move || delete(&socket, &namespace, &id))
            .await
            .unwrap();
    }
}

impl Drop for PlainContainer {
    fn drop(&mut self) {
        if !self.removed {
            delete(&self.socket, &self.namespace, &self.id);
        }
    }
}

/// Best effort: the daemon may be down (a test killed it); Containerd's teardown then cleans up.
fn delete(socket: &Path, namespace: &str, id: &str) {
    if !socket.exists() {
        return;
    }
    let _ = ctr(socket, namespace, &["tasks", "delete", "--force", id]);
    let _ = ctr(socket, namespace, &["containers", "delete", id]);
}
