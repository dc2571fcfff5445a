//! The agent's flags, and [`AgentArgs::validate`], which checks them all at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::otlp::{otlp_url, parse_header_arg};
use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// containerd's gRPC socket.
    #[arg(
        long,
        env = "CORONER_CONTAINERD_SOCKET",
        default_value = "/run/containerd/containerd.sock"
    )]
    pub containerd_socket: PathBuf,

    /// Address and port of the report API, web pages and live feed (which also serve /metrics and
    /// the probes). Loopback by default: `kubectl port-forward` reaches it inside the pod, other
    /// pods do not. Expose it only with --api-token-file.
    #[arg(long, env = "CORONER_LISTEN", default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    pub listen: SocketAddr,

    /// Address and port of /metrics, /healthz and /readyz alone, for Prometheus and kubelet's
    /// probes (never a report).
    #[arg(long, env = "CORONER_METRICS_LISTEN", default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_METRICS_PORT)))]
    pub metrics_listen: SocketAddr,

    /// File holding a bearer token: every request to --listen then needs
    /// `Authorization: Bearer <token>`. Re-read when the file changes (a mounted Secret).
    #[arg(long, env = "CORONER_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,

    /// Open connections each listener serves at once; more are answered 503 and closed. Lowered
    /// at start when RLIMIT_NOFILE cannot hold them beside the store's reserve.
    #[arg(long, env = "CORONER_MAX_CONNECTIONS", default_value_t = 256)]
    pub max_connections: usize,

    /// Live feed (`/api/v1/events`) clients at once; more get 503 with Retry-After.
    #[arg(long, env = "CORONER_MAX_SSE_CLIENTS", default_value_t = 64)]
    pub max_sse_clients: usize,

    /// How long a client has to send a request's headers (also between requests on a kept-alive
    /// connection) before the connection is closed.
    #[arg(long, env = "CORONER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Directory the reports are stored in (one JSON file per report); created if missing.
    #[arg(long, env = "CORONER_DATA_DIR", default_value = "/var/lib/coroner")]
    pub data_dir: PathBuf,

    /// containerd namespace to watch (`k8s.io` for Kubernetes, `moby` for Docker). Repeat the flag,
    /// or comma-separate in the environment variable. Default: every namespace.
    #[arg(long = "namespace", env = "CORONER_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// Keep at most this many reports; the oldest are deleted first.
    #[arg(long, env = "CORONER_MAX_REPORTS", default_value_t = 5000)]
    pub max_reports: usize,

    /// Keep at most this many bytes of reports on disk (suffixes K, M, G, Ki, Mi, Gi accepted).
    #[arg(long, env = "CORONER_MAX_STORE_BYTES", default_value = "256Mi", value_parser = parse_bytes)]
    pub max_store_bytes: u64,

    /// Reports whose write fails (disk full, read-only) wait in memory, up to this many bytes of
    /// report JSON, and are written when the data dir takes writes again; beyond it they are
    /// dropped and counted. 0: no queue.
    #[arg(long, env = "CORONER_STORE_RETRY_QUEUE_BYTES", default_value = "32Mi", value_parser = parse_bytes)]
    pub store_retry_queue_bytes: u64,

    /// Environment variable whose VALUE may be stored in reports. By default only names are kept,
    /// because values often hold credentials. Repeat the flag or comma-separate.
    #[arg(long = "env-allow", env = "CORONER_ENV_ALLOW", value_delimiter = ',')]
    pub env_allow: Vec<String>,

    /// Store command-line arguments as they are (the command, exec argv, syscall arguments). By
    /// default, values of arguments that look like credentials (`--password x`, `--token=x`,
    /// `mysql -px`, `-H 'Authorization: Bearer x'`, `PASSWORD=x` in `sh -c` scripts,
    /// `https://user:pass@host`) are replaced by `<redacted>`.
    #[arg(long, env = "CORONER_NO_REDACT_ARGS")]
    pub no_redact_args: bool,

    /// Store container label values as they are. By default, the value of a label whose key names
    /// a credential (`db-password`, `api-token`) and credential-shaped values (bearer tokens,
    /// `user:pass@host`, `password=x`, cloud access keys) are replaced by `<redacted>`.
    #[arg(long, env = "CORONER_NO_REDACT_LABELS")]
    pub no_redact_labels: bool,

    /// Store the stdout and stderr the flight recorder captured as they are. By default,
    /// credential-shaped text in them (bearer tokens, `password=x`, private key blocks, AWS access
    /// keys, GitHub and Slack tokens, JWTs) is replaced by `<redacted>`.
    #[arg(long, env = "CORONER_NO_REDACT_OUTPUT")]
    pub no_redact_output: bool,

    /// Keep post-mortem files from the container (`erl_crash.dump`, `hs_err_pid*.log`, cores,
    /// heap dumps) as they were. By default text files are redacted like captured output and
    /// binary ones (memory images, which cannot be redacted) are listed but not kept.
    #[arg(long, env = "CORONER_NO_REDACT_ARTIFACTS")]
    pub no_redact_artifacts: bool,

    /// Node name written into each report (in Kubernetes, set from the downward API).
    #[arg(long, env = "CORONER_NODE_NAME")]
    pub node_name: Option<String>,

    /// Do not load the eBPF flight recorder: reports then have exit, OOM and cgroup data but no
    /// syscalls, processes, signal senders or captured output.
    #[arg(long, env = "CORONER_NO_RECORDER")]
    pub no_recorder: bool,

    /// Containers the flight recorder holds data for at once (kernel memory grows with it).
    #[arg(long, env = "CORONER_RECORDER_CONTAINERS", default_value_t = 256)]
    pub recorder_containers: u32,

    /// Last syscalls kept per container by the flight recorder (a power of two, 16 to 4096).
    #[arg(long, env = "CORONER_RECORDER_RING", default_value_t = 256)]
    pub recorder_ring: u32,

    /// bpffs directory the flight recorder's maps and programs are pinned in, so recording goes on
    /// while the agent restarts and the next agent process adopts it. Empty: not pinned.
    #[arg(
        long,
        env = "CORONER_BPF_PIN_DIR",
        default_value = "/sys/fs/bpf/coroner",
        value_parser = parse_path_or_empty
    )]
    pub bpf_pin_dir: PathBuf,

    /// Do not pin the flight recorder: it stops with the agent process, and containers running
    /// across a restart get a partial recording.
    #[arg(long, env = "CORONER_NO_BPF_PIN")]
    pub no_bpf_pin: bool,

    /// Fault injection for tests: wait this long before reading a cgroup's usage at an exit, as
    /// an agent behind on its work would (the cgroup directory is gone by then).
    #[arg(
        long,
        env = "CORONER_TEST_USAGE_DELAY_MS",
        default_value_t = 0,
        hide = true
    )]
    pub test_usage_delay_ms: u64,

    /// Log format on stderr. The level is set with RUST_LOG (default `info`).
    #[arg(long, env = "CORONER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Send every stored report, as an OpenTelemetry log record, to this collector: its OTLP
    /// base URL (`http://otel-collector:4318`, `/v1/logs` is appended) or, for gRPC, its
    /// endpoint (`grpc://otel-collector:4317`, or `http://...` with `--otlp-protocol grpc`).
    /// Unset: no export.
    #[arg(long, env = "CORONER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// OTLP transport: `http/protobuf` (the default) or `grpc`.
    #[arg(long, env = "CORONER_OTLP_PROTOCOL", value_enum)]
    pub otlp_protocol: Option<OtlpProtocol>,

    /// A header sent with every export request, `KEY=VALUE` (`authorization=Bearer ...`). Repeat
    /// the flag, or comma-separate in the environment variable. Values are never logged.
    #[arg(
        long = "otlp-header",
        env = "CORONER_OTLP_HEADERS",
        value_delimiter = ',',
        value_parser = parse_header_arg
    )]
    pub otlp_headers: Vec<HeaderArg>,

    /// How long one export request may take (`10s`, OTLP's default).
    #[arg(long, env = "CORONER_OTLP_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub otlp_timeout: Duration,

    /// The agent's web pages as users reach them (`https://coroner.example.com/node-a`): each
    /// exported record then links its report (`<base>/crashes/<id>`).
    #[arg(long, env = "CORONER_REPORT_BASE_URL")]
    pub report_base_url: Option<String>,
}

/// The most `--store-retry-queue-bytes` may hold: it is the agent's memory.
const MAX_RETRY_QUEUE_BYTES: u64 = 1 << 30;

/// One invalid setting, with the flag it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub flag: &'static str,
    pub reason: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--{}: {}", self.flag, self.reason)
    }
}

impl AgentArgs {
    /// Where to pin the flight recorder; `None` when pinning is off (`--no-bpf-pin`, or an
    /// empty `--bpf-pin-dir`).
    pub fn bpf_pin_dir(&self) -> Option<&std::path::Path> {
        (!self.no_bpf_pin && !self.bpf_pin_dir.as_os_str().is_empty())
            .then_some(self.bpf_pin_dir.as_path())
    }

    /// Checks every setting and returns all problems together.
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut bad = Vec::new();
        for ns in &self.namespaces {
            if !valid_namespace(ns) {
                bad.push(Invalid {
                    flag: "namespace",
                    reason: format!(
                        "{ns:?} is not a containerd namespace (letters and digits, separated by single '.', '_' or '-')"
                    ),
                });
            }
        }
        if self.max_reports == 0 {
            bad.push(Invalid {
                flag: "max-reports",
                reason: "must be at least 1".into(),
            });
        }
        if self.max_store_bytes < 64 * 1024 {
            bad.push(Invalid {
                flag: "max-store-bytes",
                reason: format!(
                    "{} bytes is too small to hold a report; use at least 64Ki",
                    self.max_store_bytes
                ),
            });
        }
        if self.store_retry_queue_bytes > MAX_RETRY_QUEUE_BYTES {
            bad.push(Invalid {
                flag: "store-retry-queue-bytes",
                reason: format!(
                    "{} bytes is more than 1Gi; the queue is held in the agent's memory",
                    self.store_retry_queue_bytes
                ),
            });
        }
        for key in &self.env_allow {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                bad.push(Invalid {
                    flag: "env-allow",
                    reason: format!("{key:?} is not an environment variable name"),
                });
            }
        }
        if !(16..=65536).contains(&self.recorder_containers) {
            bad.push(Invalid {
                flag: "recorder-containers",
                reason: format!("{} is outside 16..=65536", self.recorder_containers),
            });
        }
        if !(16..=4096).contains(&self.recorder_ring) || !self.recorder_ring.is_power_of_two() {
            bad.push(Invalid {
                flag: "recorder-ring",
                reason: format!(
                    "{} is not a power of two from 16 to 4096",
                    self.recorder_ring
                ),
            });
        }
        if self.listen.port() != 0
            && self.listen.port() == self.metrics_listen.port()
            && (self.listen.ip() == self.metrics_listen.ip()
                || self.listen.ip().is_unspecified()
                || self.metrics_listen.ip().is_unspecified())
        {
            bad.push(Invalid {
                flag: "metrics-listen",
                reason: format!(
                    "{} overlaps --listen {}: give the metrics listener a port of its own",
                    self.metrics_listen, self.listen
                ),
            });
        }
        if let Some(path) = &self.api_token_file {
            if let Err(e) = crate::http::auth::read_token(path) {
                bad.push(Invalid {
                    flag: "api-token-file",
                    reason: e.to_string(),
                });
            }
        }
        if !(1..=65536).contains(&self.max_connections) {
            bad.push(Invalid {
                flag: "max-connections",
                reason: format!("{} is outside 1..=65536", self.max_connections),
            });
        }
        if !(1..=65536).contains(&self.max_sse_clients) {
            bad.push(Invalid {
                flag: "max-sse-clients",
                reason: format!("{} is outside 1..=65536", self.max_sse_clients),
            });
        }
        if self.header_read_timeout < Duration::from_millis(100) {
            bad.push(Invalid {
                flag: "header-read-timeout",
                reason: "must be at least 100ms".into(),
            });
        }
        if !self.no_bpf_pin
            && !self.bpf_pin_dir.as_os_str().is_empty()
            && !self.bpf_pin_dir.is_absolute()
        {
            bad.push(Invalid {
                flag: "bpf-pin-dir",
                reason: format!(
                    "{} is not an absolute path (a directory on bpffs, e.g. /sys/fs/bpf/coroner)",
                    self.bpf_pin_dir.display()
                ),
            });
        }
        if self.test_usage_delay_ms > 60_000 {
            bad.push(Invalid {
                flag: "test-usage-delay-ms",
                reason: format!("{} is more than 60000", self.test_usage_delay_ms),
            });
        }
        if self.containerd_socket.as_os_str().is_empty() {
            bad.push(Invalid {
                flag: "containerd-socket",
                reason: "must not be empty".into(),
            });
        }
        if self.data_dir.as_os_str().is_empty() {
            bad.push(Invalid {
                flag: "data-dir",
                reason: "must not be empty".into(),
            });
        } else if self.data_dir.exists() && !self.data_dir.is_dir() {
            bad.push(Invalid {
                flag: "data-dir",
                reason: format!("{} exists and is not a directory", self.data_dir.display()),
            });
        }
        if let Err(mut otlp) = self.otlp() {
            bad.append(&mut otlp);
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad)
        }
    }

    /// The OTLP export, when `--otlp-endpoint` is set; every problem of its flags otherwise.
    pub fn otlp(&self) -> Result<Option<OtlpSettings>, Vec<Invalid>> {
        let mut bad = Vec::new();
        let mut headers = Vec::new();
        for h in &self.otlp_headers {
            match h.split() {
                None => bad.push(Invalid {
                    flag: "otlp-header",
                    reason: "expected KEY=VALUE (the value is not shown)".into(),
                }),
                Some((name, value)) => {
                    let name = name.trim();
                    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        bad.push(Invalid {
                            flag: "otlp-header",
                            reason: format!("{name:?} is not an HTTP header name"),
                        });
                    } else if name.to_ascii_lowercase().ends_with("-bin")
                        || name.eq_ignore_ascii_case("content-type")
                    {
                        bad.push(Invalid {
                            flag: "otlp-header",
                            reason: format!("{name:?} is set by the exporter itself"),
                        });
                    } else if reqwest::header::HeaderValue::from_str(value).is_err() {
                        bad.push(Invalid {
                            flag: "otlp-header",
                            reason: format!(
                                "the value of {name:?} has characters a header cannot carry (not shown)"
                            ),
                        });
                    } else {
                        headers.push((name.to_string(), Secret(value.to_string())));
                    }
                }
            }
        }
        let report_base_url = match &self.report_base_url {
            None => None,
            Some(base) => match reqwest::Url::parse(base) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some_and(|h| !h.is_empty())
                        && u.query().is_none()
                        && u.fragment().is_none() =>
                {
                    Some(base.trim_end_matches('/').to_string())
                }
                _ => {
                    bad.push(Invalid {
                        flag: "report-base-url",
                        reason: format!(
                            "{base:?} is not an http(s) URL without query or fragment, like https://coroner.example.com/node-a"
                        ),
                    });
                    None
                }
            },
        };
        if self.otlp_timeout.is_zero() {
            bad.push(Invalid {
                flag: "otlp-timeout",
                reason: "must be more than 0".into(),
            });
        }
        let endpoint = self.otlp_endpoint.as_deref().map(str::trim);
        let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) else {
            if self.otlp_protocol.is_some() || !self.otlp_headers.is_empty() {
                bad.push(Invalid {
                    flag: "otlp-endpoint",
                    reason: "OTLP options are given but no endpoint to send to".into(),
                });
            }
            return if bad.is_empty() { Ok(None) } else { Err(bad) };
        };
        let settings = match otlp_url(endpoint, self.otlp_protocol) {
            Ok((url, protocol)) => Some(OtlpSettings {
                url,
                protocol,
                headers,
                timeout: self.otlp_timeout,
                report_base_url,
            }),
            Err(reason) => {
                bad.push(Invalid {
                    flag: "otlp-endpoint",
                    reason,
                });
                None
            }
        };
        if bad.is_empty() {
            Ok(settings)
        } else {
            Err(bad)
        }
    }
}
