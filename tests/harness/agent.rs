//! The agent binary under test, run as a child process against a private containerd:
//! `coroner agent --containerd-socket <sock> --listen 127.0.0.1:<port> --data-dir <dir>
//! --namespace k8s.io --namespace coroner-plain --log-format json [extra args]`.
//!
//! Its stdout and stderr go to a file next to (not inside) the data dir, printed when a test
//! panics. The process is SIGKILLed on drop.

use std::ffi::OsString;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use super::containerd::{Containerd, K8S_NAMESPACE, PLAIN_NAMESPACE};
use super::host;

#[allow(dead_code)] // each test binary uses a different part of the harness
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Path of the agent binary: `CORONER_TEST_AGENT_BIN` if set; else the one cargo built for this test or bench
/// (`CARGO_BIN_EXE_coroner`); else, for examples (which cargo gives no such variable), `coroner`
/// next to the running executable's directory (`target/<profile>/coroner`).
/// How long the tests wait for a container's report: exits are reported within milliseconds,
/// this covers a loaded CI machine starting the container.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(20);

pub fn agent_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CORONER_TEST_AGENT_BIN") {
        return PathBuf::from(path);
    }
    if let Some(path) = option_env!("CARGO_BIN_EXE_coroner") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("executable in target/<profile>/<kind>/");
    let path = profile_dir.join("coroner");
    assert!(
        path.is_file(),
        "agent binary {} missing: run `cargo build --bin coroner` first",
        path.display()
    );
    path
}

/// How to start the agent; see [`Agent::builder`].
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct AgentBuilder {
    binary: PathBuf,
    socket: PathBuf,
    namespaces: Vec<String>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl AgentBuilder {
    /// One more command-line argument after the defaults.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Replaces the default `--namespace k8s.io --namespace coroner-plain`.
    pub fn namespaces(mut self, namespaces: &[&str]) -> Self {
        self.namespaces = namespaces.iter().map(|s| s.to_string()).collect();
        self
    }

    /// A different binary (default: this package's `coroner`).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = path.into();
        self
    }

    /// Spawns the agent without waiting for it to become ready.
    pub fn spawn(self) -> Agent {
        let work = tempfile::Builder::new()
            .prefix("coroner-agent-")
            .tempdir()
            .expect("creating agent temp dir");
        let data_dir = work.path().join("data");
        fs::create_dir(&data_dir).unwrap();
        fs::write(work.path().join("owner"), host::owner_stamp()).unwrap();
        let port = free_port();
        let mut agent = Agent {
            builder: self,
            work,
            data_dir,
            port,
            child: None,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("building HTTP client"),
        };
        agent.spawn_process();
        agent
    }

    /// Spawns the agent and waits until `GET /readyz` answers 200.
    pub async fn start(self) -> Agent {
        let mut agent = self.spawn();
        agent.wait_ready().await;
        agent
    }
}

/// A running agent process with its data dir and HTTP port (both kept across restarts).
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct Agent {
    builder: AgentBuilder,
    work: tempfile::TempDir,
    data_dir: PathBuf,
    port: u16,
    child: Option<Child>,
    http: reqwest::Client,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl Agent {
    /// Default flags against `containerd`, watching `k8s.io` and `coroner-plain`.
    pub fn builder(containerd: &Containerd) -> AgentBuilder {
        AgentBuilder {
            binary: agent_binary(),
            socket: containerd.socket().to_path_buf(),
            namespaces: vec![K8S_NAMESPACE.to_string(), PLAIN_NAMESPACE.to_string()],
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Starts the agent with default flags and waits until it is ready.
    pub async fn start(containerd: &Containerd) -> Agent {
        Agent::builder(containerd).start().await
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where a Prometheus server scrapes the agent: (`host:port`, metrics path).
    pub fn metrics_target(&self) -> (String, &'static str) {
        (format!("127.0.0.1:{}", self.port), "/metrics")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The agent's stdout and stderr so far (all restarts).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.work.path().join("agent.log")
    }

    /// Polls `GET /readyz` until 200; panics after 20 s or as soon as the process exits.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/readyz", self.base_url());
        let mut last;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "agent exited before becoming ready ({status}); its output follows the panic"
                );
            }
            match self.http.get(&url).send().await {
                Ok(r) if r.status() == StatusCode::OK => return,
                Ok(r) => {
                    last = format!(
                        "HTTP {}: {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    )
                }
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                panic!("agent not ready after {READY_TIMEOUT:?} (last: {last}); its output follows the panic");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILLs the agent (no graceful shutdown) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERMs the agent and waits up to `timeout` for it to exit; returns its exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        host::signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("agent did not exit within {timeout:?} of SIGTERM; its output follows the panic");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the agent if it runs, starts it again with the same flags, data dir and port, and
    /// waits until it is ready.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn_process();
        self.wait_ready().await;
    }

    /// `GET path`, body parsed as JSON (`Value::Null` when it is not JSON).
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, text) = self.get_text(path).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `GET path`, body as text.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let url = format!("{}{path}", self.base_url());
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status();
        (
            status,
            resp.text()
                .await
                .unwrap_or_else(|e| panic!("reading body of GET {url}: {e}")),
        )
    }

    /// The report of a Kubernetes container (any attempt), waiting up to [`REPORT_TIMEOUT`].
    pub async fn report_for(&self, pod: &str, container: &str) -> Value {
        let (pod, container) = (pod.to_string(), container.to_string());
        self.wait_for_report(
            move |r| {
                r["kubernetes"]["pod"] == pod.as_str()
                    && r["kubernetes"]["container"] == container.as_str()
            },
            REPORT_TIMEOUT,
        )
        .await
    }

    /// The report of one restart attempt of a Kubernetes container, as kubelet counts them.
    pub async fn report_for_attempt(&self, pod: &str, container: &str, attempt: u64) -> Value {
        let (pod, container) = (pod.to_string(), container.to_string());
        self.wait_for_report(
            move |r| {
                r["kubernetes"]["pod"] == pod.as_str()
                    && r["kubernetes"]["container"] == container.as_str()
                    && r["kubernetes"]["attempt"] == attempt
            },
            REPORT_TIMEOUT,
        )
        .await
    }

    /// Polls `GET /api/v1/crashes?outcome=all` (following `next_cursor`) and each new report's
    /// `GET /api/v1/crashes/{id}` until one satisfies `pred`; returns that report.
    pub async fn wait_for_report(&self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut seen: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
        loop {
            for id in self.list_report_ids().await {
                if seen.contains_key(&id) {
                    continue;
                }
                let (status, report) = self.get(&format!("/api/v1/crashes/{id}")).await;
                if status != StatusCode::OK {
                    continue; // listed but not readable yet: try again next round
                }
                if pred(&report) {
                    return report;
                }
                seen.insert(id, report);
            }
            if Instant::now() > deadline {
                let seen: Vec<&Value> = seen.values().collect();
                panic!(
                    "no matching report within {timeout:?} (agent output follows the panic); reports seen: {}",
                    serde_json::to_string_pretty(&seen).unwrap_or_default(),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn list_report_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        for _page in 0..100 {
            let path = match &cursor {
                None => "/api/v1/crashes?outcome=all".to_string(),
                Some(c) => format!("/api/v1/crashes?outcome=all&cursor={}", percent_encode(c)),
            };
            let (status, body) = self.get(&path).await;
            if status != StatusCode::OK {
                break;
            }
            for item in body
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(id) = item.get("id").and_then(Value::as_str) {
                    ids.push(id.to_string());
                }
            }
            match body.get("next_cursor").and_then(Value::as_str) {
                Some(next) if Some(next) != cursor.as_deref() => cursor = Some(next.to_string()),
                _ => break,
            }
        }
        ids
    }

    fn spawn_process(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("opening agent log");
        let b = &self.builder;
        let mut cmd = Command::new(&b.binary);
        cmd.arg("agent")
            .arg("--containerd-socket")
            .arg(&b.socket)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--log-format")
            .arg("json");
        for ns in &b.namespaces {
            cmd.arg("--namespace").arg(ns);
        }
        // Every flag is also a CORONER_* variable: keep the developer's environment out of the
        // test, only what the test asked for goes in.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CORONER_") {
                cmd.env_remove(key);
            }
        }
        cmd.args(&b.args)
            .envs(b.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("starting the agent {}: {e}", self.builder.binary.display())
        });
        self.child = Some(child);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "[harness] agent output ({}):\n{}",
                self.log_path().display(),
                host::tail(&self.log_path(), 200)
            );
        }
    }
}

/// A port that was free a moment ago (the kernel hands out ephemeral ports round-robin, so
/// reuse by someone else before the agent binds it is unlikely).
#[allow(dead_code)] // each test binary uses a different part of the harness
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for query values.
#[allow(dead_code)] // each test binary uses a different part of the harness
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the first sample of metric `name` (with or without labels) in an OpenMetrics
/// text, `None` when it is absent.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
