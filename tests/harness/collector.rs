//! A real OpenTelemetry collector for the export tests: rotel (PyPI `rotel`, pinned), a
//! collector written in Rust whose debug exporter prints every log record it decoded, with its
//! resource and attributes, on stdout. Installed once into a venv under
//! `target/coroner-test-tools/` (or taken from `CORONER_TEST_ROTEL`). Stopped and started again
//! on the same ports, each run's output kept, so a test can count every record ever received.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The rotel release the tests run (a pre-release: `pip index versions rotel --pre`).
#[allow(dead_code)] // each test binary uses a different part of the harness
pub const ROTEL_VERSION: &str = "0.0.1a15";

/// `target/coroner-test-tools`, found like the image cache from the running executable.
#[allow(dead_code)] // each test binary uses a different part of the harness
fn tools_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "deps"))
        .and_then(|deps| deps.parent()?.parent())
        .map(|target| target.join("coroner-test-tools"))
        .unwrap_or_else(|| std::env::temp_dir().join("coroner-test-tools"))
}

#[allow(dead_code)] // each test binary uses a different part of the harness
fn find_agent_binary(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    fs::read_dir(&lib).ok()?.flatten().find_map(|e| {
        let p = e.path().join("site-packages/rotel/rotel-agent");
        p.is_file().then_some(p)
    })
}

/// The `rotel-agent` binary: `CORONER_TEST_ROTEL`, else the pinned release, installed with pip
/// into a venv on first use (in a temporary dir, renamed into place, so concurrent tests race
/// safely).
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn rotel_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CORONER_TEST_ROTEL") {
        return PathBuf::from(p);
    }
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let venv = tools_dir().join(format!("rotel-{ROTEL_VERSION}"));
    if let Some(bin) = find_agent_binary(&venv) {
        return bin;
    }
    fs::create_dir_all(tools_dir()).expect("creating the test tools dir");
    let tmp = tools_dir().join(format!(".rotel-{ROTEL_VERSION}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let run = |cmd: &mut Command| {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&tmp));
    run(Command::new(tmp.join("bin/pip")).args([
        "install",
        "--quiet",
        &format!("rotel=={ROTEL_VERSION}"),
    ]));
    // venvs hard-code their path in scripts, but the collector binary needs none of them.
    if fs::rename(&tmp, &venv).is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    find_agent_binary(&venv).unwrap_or_else(|| {
        panic!(
            "pip installed rotel but {} has no rotel-agent",
            venv.display()
        )
    })
}

/// One log record as the collector decoded and printed it.
#[allow(dead_code)] // each test binary uses a different part of the harness
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Resource attributes: key -> (type, value), e.g. `("Str", "coroner")`.
    pub resource: BTreeMap<String, (String, String)>,
    pub attributes: BTreeMap<String, (String, String)>,
    pub body: String,
    pub severity_text: String,
    /// As printed: `SEVERITY_NUMBER_ERROR(17)`.
    pub severity_number: String,
    pub event_name: String,
    pub timestamp: u64,
    pub observed_timestamp: u64,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl Record {
    /// A string attribute's value (`None` when absent or not a string).
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.attributes.get(key) {
            Some((t, v)) if t == "Str" => Some(v),
            _ => None,
        }
    }

    /// An attribute as `Type(value)`, the way the collector shows it.
    pub fn typed(&self, key: &str) -> Option<String> {
        self.attributes.get(key).map(|(t, v)| format!("{t}({v})"))
    }
}

/// `Str(x)` -> ("Str", "x").
#[allow(dead_code)] // each test binary uses a different part of the harness
fn typed_value(s: &str) -> (String, String) {
    match s.split_once('(') {
        Some((t, rest)) if rest.ends_with(')') => {
            (t.to_string(), rest[..rest.len() - 1].to_string())
        }
        _ => (String::new(), s.to_string()),
    }
}

/// Parses rotel's `--debug-log logs --debug-log-verbosity detailed` output.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub fn parse(out: &str) -> Vec<Record> {
    enum In {
        Nothing,
        Resource,
        Record,
    }
    let mut records = Vec::new();
    let mut resource = BTreeMap::new();
    let mut cur: Option<Record> = None;
    let mut section = In::Nothing;
    for line in out.lines() {
        let t = line.trim();
        if let Some(kv) = t.strip_prefix("-> ") {
            let Some((k, v)) = kv.split_once(": ") else {
                continue;
            };
            match section {
                In::Resource => {
                    resource.insert(k.to_string(), typed_value(v));
                }
                In::Record => {
                    if let Some(r) = cur.as_mut() {
                        r.attributes.insert(k.to_string(), typed_value(v));
                    }
                }
                In::Nothing => {}
            }
            continue;
        }
        if t.starts_with("ResourceLog #") {
            records.extend(cur.take());
            resource = BTreeMap::new();
            section = In::Nothing;
        } else if t == "Resource attributes:" {
            section = In::Resource;
        } else if t.starts_with("LogRecord #") {
            records.extend(cur.take());
            cur = Some(Record {
                resource: resource.clone(),
                ..Default::default()
            });
            section = In::Nothing;
        } else if t == "Attributes:" {
            section = In::Record;
        } else if let Some(r) = cur.as_mut() {
            section = In::Nothing;
            if let Some(v) = t.strip_prefix("Timestamp: ") {
                r.timestamp = v.parse().unwrap_or(0);
            } else if let Some(v) = t.strip_prefix("ObservedTimestamp: ") {
                r.observed_timestamp = v.parse().unwrap_or(0);
            } else if let Some(v) = t.strip_prefix("SeverityText:") {
                r.severity_text = v.trim().to_string();
            } else if let Some(v) = t.strip_prefix("SeverityNumber: ") {
                r.severity_number = v.to_string();
            } else if let Some(v) = t.strip_prefix("EventName: ") {
                r.event_name = v.to_string();
            } else if let Some(v) = t.strip_prefix("Body: ") {
                r.body = typed_value(v).1;
            }
        } else {
            section = In::Nothing;
        }
    }
    records.extend(cur);
    records
}

#[allow(dead_code)] // each test binary uses a different part of the harness
fn free_port() -> u16 {
    super::agent::free_port()
}

/// A rotel collector on two fixed local ports (OTLP/HTTP and OTLP/gRPC); killed on drop.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct Collector {
    binary: PathBuf,
    dir: tempfile::TempDir,
    http_port: u16,
    grpc_port: u16,
    child: Option<Child>,
    runs: u32,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl Collector {
    /// Picks the ports; does not start (a test may want the collector down at first).
    pub fn new() -> Collector {
        Collector {
            binary: rotel_binary(),
            dir: tempfile::Builder::new()
                .prefix("coroner-collector-")
                .tempdir()
                .expect("creating collector dir"),
            http_port: free_port(),
            grpc_port: free_port(),
            child: None,
            runs: 0,
        }
    }

    /// A running collector.
    pub async fn start() -> Collector {
        let mut c = Collector::new();
        c.resume().await;
        c
    }

    /// `http://127.0.0.1:<port>`, for `--otlp-endpoint` with http/protobuf.
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `grpc://127.0.0.1:<port>`.
    pub fn grpc_endpoint(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.grpc_port)
    }

    /// The OTLP/HTTP receiver's port (for a TLS front, [`super::tls::TlsFront`]).
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The OTLP/gRPC receiver's port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// Starts the collector (again) on the same ports and waits until both accept connections.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "collector already running");
        self.runs += 1;
        let out = fs::File::create(self.dir.path().join(format!("run-{}.log", self.runs)))
            .expect("creating collector log");
        let err = out.try_clone().expect("cloning log handle");
        let child = Command::new(&self.binary)
            .args([
                "start",
                "--exporter",
                "blackhole",
                "--debug-log",
                "logs",
                "--debug-log-verbosity",
                "detailed",
                "--otlp-http-endpoint",
                &format!("127.0.0.1:{}", self.http_port),
                "--otlp-grpc-endpoint",
                &format!("127.0.0.1:{}", self.grpc_port),
            ])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in [self.http_port, self.grpc_port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    panic!("rotel exited at start ({status}):\n{}", self.output());
                }
                assert!(
                    Instant::now() < deadline,
                    "rotel not listening on {port} after 20 s:\n{}",
                    self.output()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Kills the collector (what a crash or an eviction does); its output so far is kept.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The output of every run, oldest first.
    pub fn output(&self) -> String {
        (1..=self.runs)
            .map(|n| {
                fs::read_to_string(self.dir.path().join(format!("run-{n}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every log record received, by any run.
    pub fn records(&self) -> Vec<Record> {
        parse(&self.output())
    }

    /// Records carrying `coroner.report.id` = `id`.
    pub fn records_of(&self, id: &str) -> Vec<Record> {
        self.records()
            .into_iter()
            .filter(|r| r.str("coroner.report.id") == Some(id))
            .collect()
    }

    /// Polls until the report's record arrives; panics with the output after `timeout`.
    pub async fn wait_for_report(&self, id: &str, timeout: Duration) -> Record {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.records_of(id).into_iter().next() {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no record of report {id} after {timeout:?}; collector output:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}
