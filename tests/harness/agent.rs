//! The agent binary under test, run as a child process against a private containerd:
//! `coroner agent --containerd-socket <sock> --listen 127.0.0.1:<port> --metrics-listen
//! 127.0.0.1:<metrics port> --data-dir <dir> --namespace k8s.io --namespace coroner-plain
//! --log-format json [extra args]`.
//!
//! [`Agent::get`] and [`Agent::get_text`] send `/metrics`, `/healthz` and `/readyz` to the metrics
//! listener (as Prometheus and kubelet reach them) and every other path to the API listener, with
//! the bearer token when the builder set one ([`AgentBuilder::api_token`]).
//!
//! Its stdout and stderr go to a file next to (not inside) the data dir, printed when a test
//! panics. The process is SIGKILLed on drop.
//!
//! The flight recorder is pinned in a bpffs directory of the agent's own,
//! `/sys/fs/bpf/coroner-test-<test pid>-<test start time>-<port>` (kept across
//! [`Agent::restart`], so a restarted agent adopts it; removed on drop, which detaches the
//! programs), unless the test passes `--bpf-pin-dir` or `--no-bpf-pin` itself.

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
    api_token: Option<String>,
    nofile: Option<u64>,
    own_netns: bool,
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

    /// Runs the agent with `--api-token-file` holding `token`; the harness's requests carry it.
    pub fn api_token(mut self, token: &str) -> Self {
        self.api_token = Some(token.to_string());
        self
    }

    /// Runs the agent with `RLIMIT_NOFILE` (soft and hard) set to `n`.
    pub fn nofile(mut self, n: u64) -> Self {
        self.nofile = Some(n);
        self
    }

    /// Runs the agent in a network namespace of its own (loopback up, nothing else) WITHOUT
    /// `--listen` and `--metrics-listen`, so it binds its defaults without colliding with anyone.
    /// Reach it with [`get_in_netns`]; [`Agent::get`] cannot.
    pub fn default_listen_in_own_netns(mut self) -> Self {
        self.own_netns = true;
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
        let metrics_port = free_port();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.api_token {
            fs::write(work.path().join("api-token"), format!("{token}\n")).unwrap();
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}")
                    .parse()
                    .expect("token is a header value"),
            );
        }
        let pinned_by_test = self
            .args
            .iter()
            .any(|a| a == "--no-bpf-pin" || a == "--bpf-pin-dir");
        let pin_dir = (!pinned_by_test).then(|| {
            host::ensure_bpffs();
            let stamp = host::owner_stamp();
            let stamp: Vec<&str> = stamp.split_whitespace().collect();
            PathBuf::from(format!(
                "{}/coroner-test-{}-{port}",
                host::BPFFS,
                stamp.join("-")
            ))
        });
        let mut agent = Agent {
            builder: self,
            work,
            data_dir,
            port,
            metrics_port,
            pin_dir,
            child: None,
            http: reqwest::Client::builder()
                .no_proxy()
                // http:// only; the VM nodes have no CA certificates to load.
                .tls_certs_only(Vec::<reqwest::Certificate>::new())
                .default_headers(headers)
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
    metrics_port: u16,
    /// The recorder's pin dir the harness chose (removed on drop); `None` when the test chose.
    pin_dir: Option<PathBuf>,
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
            api_token: None,
            nofile: None,
            own_netns: false,
        }
    }

    /// Default flags against the containerd at `socket` that the harness does not own (the test
    /// VM's node daemon), watching `k8s.io` only.
    pub fn builder_for_socket(socket: &Path) -> AgentBuilder {
        AgentBuilder {
            binary: agent_binary(),
            socket: socket.to_path_buf(),
            namespaces: vec![K8S_NAMESPACE.to_string()],
            args: Vec::new(),
            env: Vec::new(),
            api_token: None,
            nofile: None,
            own_netns: false,
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

    /// `http://127.0.0.1:<metrics port>`: `/metrics`, `/healthz`, `/readyz`, never a token.
    pub fn metrics_base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.metrics_port)
    }

    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// Where the harness sends `path`: the metrics listener for `/metrics` and the probes (as
    /// Prometheus and kubelet reach them), the API listener for everything else.
    pub fn url(&self, path: &str) -> String {
        let route = path.split('?').next().unwrap_or(path);
        if matches!(route, "/metrics" | "/healthz" | "/readyz") {
            format!("{}{path}", self.metrics_base_url())
        } else {
            format!("{}{path}", self.base_url())
        }
    }

    /// Where a Prometheus server scrapes the agent: (`host:port`, metrics path).
    pub fn metrics_target(&self) -> (String, &'static str) {
        (format!("127.0.0.1:{}", self.metrics_port), "/metrics")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The bpffs directory the harness pins this agent's recorder in (`None` when the test
    /// passed `--bpf-pin-dir` or `--no-bpf-pin`).
    pub fn pin_dir(&self) -> Option<&Path> {
        self.pin_dir.as_deref()
    }

    /// Like [`Agent::restart`], with `args` instead of the extra arguments given at first.
    pub async fn restart_with_args(&mut self, args: &[&str]) {
        self.kill9();
        self.builder.args = args.iter().map(OsString::from).collect();
        self.spawn_process();
        self.wait_ready().await;
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

    /// Polls `GET /readyz` (on the metrics listener, as kubelet does) until 200; panics after
    /// 20 s or as soon as the process exits.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = self.url("/readyz");
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
            let answer = if self.builder.own_netns {
                let pid = self.pid().expect("agent running");
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT));
                tokio::task::spawn_blocking(move || get_in_netns(pid, addr, "/readyz"))
                    .await
                    .expect("netns probe thread")
                    .map(|(code, body)| {
                        (
                            StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT),
                            body,
                        )
                    })
                    .map_err(|e| e.to_string())
            } else {
                match self.http.get(&url).send().await {
                    Ok(r) => {
                        let code = r.status();
                        Ok((code, r.text().await.unwrap_or_default()))
                    }
                    Err(e) => Err(e.to_string()),
                }
            };
            match answer {
                Ok((code, _)) if code == StatusCode::OK => return,
                Ok((code, body)) => last = format!("HTTP {code}: {body}"),
                Err(e) => last = e,
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
        let url = self.url(path);
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
        cmd.arg("agent").arg("--containerd-socket").arg(&b.socket);
        if !b.own_netns {
            cmd.arg("--listen")
                .arg(format!("127.0.0.1:{}", self.port))
                .arg("--metrics-listen")
                .arg(format!("127.0.0.1:{}", self.metrics_port));
        }
        if b.api_token.is_some() {
            cmd.arg("--api-token-file")
                .arg(self.work.path().join("api-token"));
        }
        let (nofile, own_netns) = (b.nofile, b.own_netns);
        // SAFETY: only async-signal-safe calls (setrlimit, unshare, socket, ioctl, close) run
        // between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                if let Some(n) = nofile {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if own_netns {
                    if libc::unshare(libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    loopback_up()?;
                }
                Ok(())
            });
        }
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--log-format")
            .arg("json");
        for ns in &b.namespaces {
            cmd.arg("--namespace").arg(ns);
        }
        if let Some(dir) = &self.pin_dir {
            cmd.arg("--bpf-pin-dir").arg(dir);
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
        if let Some(dir) = &self.pin_dir {
            // Unpinning detaches the programs: nothing of the test keeps tracing the host.
            if let Err(e) = host::remove_pins(dir) {
                eprintln!("[harness] removing the pin dir {}: {e}", dir.display());
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "[harness] agent output ({}):\n{}",
                self.log_path().display(),
                host::tail(&self.log_path(), 200)
            );
        }
    }
}

/// The agent's default metrics port (`--metrics-listen 0.0.0.0:7465`).
#[allow(dead_code)] // each test binary uses a different part of the harness
pub const DEFAULT_METRICS_PORT: u16 = 7465;

/// Sets `lo` up in the current (new) network namespace; called between fork and exec.
///
/// # Safety
/// Only raw syscalls on a stack-allocated `ifreq`.
unsafe fn loopback_up() -> std::io::Result<()> {
    let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
    if sock < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut req: libc::ifreq = std::mem::zeroed();
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    let mut rc = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
    if rc == 0 {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
    }
    let err = std::io::Error::last_os_error();
    libc::close(sock);
    if rc == 0 {
        Ok(())
    } else {
        Err(err)
    }
}

/// `GET path` (HTTP/1.0, no keep-alive) to `addr` inside the network namespace of process `pid`:
/// a thread of its own enters the namespace, so nothing else of the test moves. Returns the
/// status and the body.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn get_in_netns(
    pid: u32,
    addr: std::net::SocketAddr,
    path: &str,
) -> std::io::Result<(u16, String)> {
    let ns = fs::File::open(format!("/proc/{pid}/ns/net"))?;
    let path = path.to_string();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        // SAFETY: setns on this thread only, with a namespace fd we hold open.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let code = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((code, body))
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("netns thread panicked")))
}

/// A port free now, below Linux's ephemeral range (32768-60999 by default): a port the kernel
/// picked for `127.0.0.1:0` goes back to that range once released, and an outgoing connection
/// of anything on the node could take it before the agent binds it (seen once: the agent exited
/// with EADDRINUSE). Picked from 20000-32767, starting at a place that depends on the test
/// process, each one once per process.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_768;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(2_654_435_761)) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}-{}", FIRST + SPAN - 1)
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
