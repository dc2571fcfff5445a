//! Command line and environment configuration, parsed and validated in one place.
//!
//! Every agent flag is also an environment variable (`CORONER_*`); of the client's flags, the
//! connection ones are (`CORONER_URL`, `CORONER_TIMEOUT`, `CORONER_TOKEN_FILE`). [`AgentArgs::validate`] and
//! [`ClientCommand::validate`] report every invalid value at once, before anything starts.
//! Client filters the agent interprets (`--namespace`, `--cause`, ...) are passed through as
//! given, so the agent judges them and a client older than the agent accepts its new values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default HTTP port. The Prometheus exporter range 9100-9999 is fully allocated, so coroner sits
/// outside it, on a port no common exporter or Kubernetes component uses.
pub const DEFAULT_PORT: u16 = 7464;

/// Default port of /metrics and the probes (`--metrics-listen`), next to the API's.
pub const DEFAULT_METRICS_PORT: u16 = 7465;

/// Where the client looks for the agent by default: the local end of
/// `kubectl port-forward -n coroner ds/coroner 7464`.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7464";

/// The client's exit codes, shown by `--help`; `crate::client::ClientError::exit_code` maps to
/// them.
pub const EXIT_CODES: &str = "\
Exit status of the client commands (crashes, show, groups, watch):
  0  success
  1  unexpected error (the agent failed, or the answer is not coroner's API)
  2  usage error: unknown flag or invalid value
  3  cannot reach the agent (refused, timed out): check `kubectl port-forward` or --url
  4  not found: the agent has no report with that id
  5  the agent refused the request (HTTP 4xx, e.g. an invalid filter); its message is printed";

#[derive(Debug, Parser)]
#[command(
    name = "coroner",
    version,
    about = "Autopsies for containers: why did it die?",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node agent: watch containerd, record every container exit, serve the reports.
    Agent(AgentArgs),
    #[command(flatten)]
    Client(ClientCommand),
}

/// The commands that read an agent's reports over HTTP (for SREs behind `kubectl port-forward`).
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List crash reports, newest first, with their probable cause.
    #[command(after_help = EXIT_CODES)]
    Crashes(CrashesArgs),
    /// Print one report: `coroner show <ID>` with an id from `coroner crashes`.
    #[command(after_help = EXIT_CODES)]
    Show(ShowArgs),
    /// List crash loops: repeated crashes of one workload with the same cause.
    #[command(after_help = EXIT_CODES)]
    Groups(GroupsArgs),
    /// Print each crash as the agent reports it, until interrupted (or --count crashes).
    #[command(after_help = EXIT_CODES)]
    Watch(WatchArgs),
}

/// How the client reaches the agent; shared by every client command.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The agent's base URL: the local end of `kubectl port-forward -n coroner ds/coroner 7464`,
    /// or `http://<pod-ip>:7464` from inside the cluster. HTTP proxy variables are ignored.
    #[arg(long, env = "CORONER_URL", default_value = DEFAULT_URL)]
    pub url: String,

    /// How long to wait for the agent's answer (`500ms`, `10s`, `1m`). `watch` waits this long to
    /// connect; once connected it waits as long as the agent keeps the stream alive.
    #[arg(long, env = "CORONER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// File holding the agent's bearer token (its --api-token-file), sent as
    /// `Authorization: Bearer <token>`.
    #[arg(long, env = "CORONER_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// `table` for people, `json` for scripts (the agent's items as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutcomeFilter {
    /// Non-zero exits, signals, OOM kills.
    Crashed,
    /// Exit code 0.
    Completed,
    /// Every outcome.
    All,
}

impl OutcomeFilter {
    /// The value of the API's `outcome` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeFilter::Crashed => "crashed",
            OutcomeFilter::Completed => "completed",
            OutcomeFilter::All => "all",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CrashesArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Kubernetes namespace (the containerd namespace for other containers).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// Pod name.
    #[arg(long)]
    pub pod: Option<String>,

    /// Kubernetes container name, or containerd container id.
    #[arg(long)]
    pub container: Option<String>,

    #[arg(long, value_enum, default_value_t = OutcomeFilter::Crashed)]
    pub outcome: OutcomeFilter,

    /// Diagnosed cause (`oom_killed`, `crashed`, `killed`, `exec_failed`, ...; the agent checks it).
    #[arg(long)]
    pub cause: Option<String>,

    /// Crash-loop group id (from `coroner groups -o json` or a report's `group_id`).
    #[arg(long)]
    pub group: Option<String>,

    /// Only exits at or after this time: RFC 3339 (`2026-11-22T10:00:00Z`) or a duration before
    /// now (`30m`, `1h`, `2d`, `1h30m`).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<Since>,

    /// Print at most this many reports (pages are followed until then).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,

    /// `table` fits the terminal (`COLUMNS`, else its width, else 100); `json` prints the agent's
    /// items as they are.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// How `show` asks the agent to render a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Markdown,
    Json,
}

impl ReportFormat {
    /// The value of the API's `format` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Text => "text",
            ReportFormat::Markdown => "markdown",
            ReportFormat::Json => "json",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Report id (the ID column of `coroner crashes`).
    pub id: String,

    /// `text` for a terminal, `markdown` to paste into an issue or chat, `json` for scripts.
    #[arg(long, short = 'f', value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Args)]
pub struct GroupsArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Kubernetes namespace (the containerd namespace for other containers).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// A pod of the group, or the workload (the pod name without its generated suffixes).
    #[arg(long)]
    pub pod: Option<String>,

    /// Kubernetes container name.
    #[arg(long)]
    pub container: Option<String>,

    /// Probable cause: oom_killed, crashed, killed, exec_failed, lock_held, address_in_use,
    /// pids_limit, start_failed, exited_error (the agent may know more).
    #[arg(long)]
    pub cause: Option<String>,

    /// Only groups seen at or after this time (RFC 3339, or a duration before now like `1h`).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<Since>,

    /// Print at most this many groups (the agent's default is 100, its maximum 1000).
    #[arg(long)]
    pub limit: Option<usize>,

    /// `table` fits the terminal (`COLUMNS`, else its width, else 100); `json` prints the agent's
    /// items as they are.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Exit (0) after this many crashes.
    #[arg(long)]
    pub count: Option<u64>,
}

/// A `--since` value: a fixed time, or a duration before the moment the request is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    At(DateTime<Utc>),
    Ago(Duration),
}

impl Since {
    pub fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Since::At(t) => t,
            Since::Ago(d) => chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        }
    }
}

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

/// How reports reach the collector (`--otlp-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/HTTP with a protobuf body, `POST <endpoint>/v1/logs`.
    #[value(name = "http/protobuf")]
    HttpProtobuf,
    /// OTLP/gRPC, `opentelemetry.proto.collector.logs.v1.LogsService/Export`.
    #[value(name = "grpc")]
    Grpc,
}

/// A value that must not be shown: `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One `--otlp-header KEY=VALUE` as given; checked by [`AgentArgs::validate`], which never shows
/// the value.
#[derive(Clone)]
pub struct HeaderArg(Secret);

impl HeaderArg {
    /// (name, value), when there is a `=`.
    fn split(&self) -> Option<(&str, &str)> {
        self.0.expose().split_once('=')
    }
}

impl std::fmt::Debug for HeaderArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.split() {
            Some((name, _)) => write!(f, "{name}=<redacted>"),
            None => f.write_str("<redacted>"),
        }
    }
}

/// Never fails: a malformed header is reported by `validate` without its value (clap would
/// print the whole argument).
fn parse_header_arg(s: &str) -> Result<HeaderArg, String> {
    Ok(HeaderArg(Secret(s.to_string())))
}

/// The OTLP export as configured and checked.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// Where requests go: the full `.../v1/logs` URL for http/protobuf; `http://host:port` for
    /// gRPC.
    pub url: String,
    pub protocol: OtlpProtocol,
    pub headers: Vec<(String, Secret)>,
    pub timeout: Duration,
    /// Without a trailing `/`.
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

/// The URL requests go to, and the protocol, from `--otlp-endpoint` and `--otlp-protocol`.
fn otlp_url(
    endpoint: &str,
    protocol: Option<OtlpProtocol>,
) -> Result<(String, OtlpProtocol), String> {
    let u = reqwest::Url::parse(endpoint)
        .map_err(|e| format!("{endpoint:?} is not a URL like http://otel-collector:4318 ({e})"))?;
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{endpoint:?} names no host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("credentials in the URL would be logged; use --otlp-header".into());
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    let protocol = match (u.scheme(), protocol) {
        ("grpc", None | Some(OtlpProtocol::Grpc)) => OtlpProtocol::Grpc,
        ("grpc", Some(OtlpProtocol::HttpProtobuf)) => {
            return Err("a grpc:// URL with --otlp-protocol http/protobuf".into())
        }
        ("http", p) => p.unwrap_or(OtlpProtocol::HttpProtobuf),
        ("https", _) => {
            return Err(
                "https is not supported (this build has no TLS): send to a collector on the node or in the cluster over http://, and let it forward with TLS"
                    .into(),
            )
        }
        (other, _) => return Err(format!("scheme {other:?}: use http:// or grpc://")),
    };
    let host = u.host_str().unwrap_or_default();
    let port = u
        .port()
        .unwrap_or(if u.scheme() == "grpc" { 4317 } else { 80 });
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match protocol {
        OtlpProtocol::Grpc => {
            if u.path() != "/" && !u.path().is_empty() {
                return Err("a gRPC endpoint has no path (the service path is fixed)".into());
            }
            Ok((format!("http://{authority}"), protocol))
        }
        OtlpProtocol::HttpProtobuf => {
            let path = u.path().trim_end_matches('/');
            let path = if path.ends_with("/v1/logs") {
                path.to_string()
            } else {
                format!("{path}/v1/logs")
            };
            Ok((format!("http://{authority}{path}"), protocol))
        }
    }
}

impl ClientArgs {
    fn check(&self, bad: &mut Vec<Invalid>) {
        match reqwest::Url::parse(&self.url) {
            Err(e) => bad.push(Invalid {
                flag: "url",
                reason: format!("{:?} is not a URL like {DEFAULT_URL} ({e})", self.url),
            }),
            Ok(u) if u.scheme() == "https" => bad.push(Invalid {
                flag: "url",
                reason: "https is not supported (this build has no TLS); the agent serves plain \
                         HTTP, reach it with `kubectl port-forward`"
                    .into(),
            }),
            Ok(u) if u.scheme() != "http" || u.host_str().is_none_or(str::is_empty) => {
                bad.push(Invalid {
                    flag: "url",
                    reason: format!("{:?} is not an http:// URL like {DEFAULT_URL}", self.url),
                })
            }
            Ok(u) if u.query().is_some() || u.fragment().is_some() => bad.push(Invalid {
                flag: "url",
                reason: "must not have a query or fragment: give the agent's base URL".into(),
            }),
            Ok(_) => {}
        }
        if self.timeout.is_zero() {
            bad.push(Invalid {
                flag: "timeout",
                reason: "must be more than 0".into(),
            });
        }
        if let Some(path) = &self.token_file {
            if let Err(e) = crate::http::auth::read_token(path) {
                bad.push(Invalid {
                    flag: "token-file",
                    reason: e.to_string(),
                });
            }
        }
    }
}

impl ClientCommand {
    pub fn client(&self) -> &ClientArgs {
        match self {
            ClientCommand::Crashes(a) => &a.client,
            ClientCommand::Show(a) => &a.client,
            ClientCommand::Groups(a) => &a.client,
            ClientCommand::Watch(a) => &a.client,
        }
    }

    /// Checks every setting the client interprets itself and returns all problems together.
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut bad = Vec::new();
        self.client().check(&mut bad);
        match self {
            ClientCommand::Crashes(a) if a.limit == 0 => bad.push(Invalid {
                flag: "limit",
                reason: "must be at least 1".into(),
            }),
            ClientCommand::Groups(a) if a.limit == Some(0) => bad.push(Invalid {
                flag: "limit",
                reason: "must be at least 1".into(),
            }),
            ClientCommand::Watch(a) if a.count == Some(0) => bad.push(Invalid {
                flag: "count",
                reason: "must be at least 1".into(),
            }),
            ClientCommand::Show(a) if a.id.trim().is_empty() => bad.push(Invalid {
                flag: "id",
                reason: "must not be empty; take one from `coroner crashes`".into(),
            }),
            _ => {}
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad)
        }
    }
}

/// containerd's namespace rule (`namespaces.Validate`): alphanumeric labels joined by `.`, `_`, `-`.
fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 76
        && ns
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Parses `1048576`, `64Ki`, `256Mi`, `1G`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a byte count like 268435456 or 256Mi"))?;
    let mult: u64 = match unit {
        "" => 1,
        "K" | "k" => 1000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => return Err(format!("unknown unit {other:?}: use K, M, G, Ki, Mi or Gi")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a duration as a number and a unit, repeated: `500ms`, `10s`, `30m`, `1h30m`, `2d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let usage = || format!("{s:?} is not a duration like 500ms, 10s, 30m, 1h30m or 2d");
    if t.is_empty() {
        return Err(usage());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(usage());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| usage())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86400),
            "" => return Err(format!("{s:?} has no unit: write e.g. {n}s, {n}m or {n}h")),
            other => {
                return Err(format!(
                    "unknown unit {other:?} in {s:?}: use ms, s, m, h or d"
                ))
            }
        };
        rest = &rest[unit_len..];
        total = u32::try_from(n)
            .ok()
            .and_then(|n| unit.checked_mul(n))
            .and_then(|d| total.checked_add(d))
            .filter(|d| *d <= Duration::from_secs(100 * 365 * 86400))
            .ok_or_else(|| format!("{s:?} is too long"))?;
    }
    Ok(total)
}

/// A path where an empty value is meaningful (clap's own path parser refuses it).
fn parse_path_or_empty(s: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(s))
}

/// Parses `--since`: an RFC 3339 time, or a duration before now.
pub fn parse_since(s: &str) -> Result<Since, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(Since::At(t.with_timezone(&Utc)));
    }
    parse_duration(s).map(Since::Ago).map_err(|e| {
        format!("{s:?} is neither an RFC 3339 time like 2026-11-22T10:00:00Z nor a duration before now like 30m, 1h or 2d ({e})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> AgentArgs {
        let mut full = vec!["coroner", "agent"];
        full.extend_from_slice(args);
        match Cli::try_parse_from(full).expect("parses").command {
            Command::Agent(a) => a,
            Command::Client(c) => panic!("parsed as a client command: {c:?}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_listen_outside_exporter_range() {
        let a = parse(&[]);
        assert_eq!(a.listen.port(), DEFAULT_PORT);
        assert!(!(9100..=9999).contains(&a.listen.port()));
        assert_eq!(a.max_store_bytes, 256 << 20);
        assert!(a.namespaces.is_empty());
        a.validate().expect("defaults valid");
    }

    #[test]
    fn every_invalid_value_is_reported_at_once() {
        let a = parse(&[
            "--namespace",
            "k8s..io",
            "--max-reports",
            "0",
            "--max-store-bytes",
            "10",
            "--env-allow",
            "A=B",
            "--recorder-containers",
            "1",
            "--recorder-ring",
            "100",
            "--bpf-pin-dir",
            "relative/dir",
        ]);
        let errs = a.validate().unwrap_err();
        let flags: Vec<_> = errs.iter().map(|e| e.flag).collect();
        assert_eq!(
            flags,
            [
                "namespace",
                "max-reports",
                "max-store-bytes",
                "env-allow",
                "recorder-containers",
                "recorder-ring",
                "bpf-pin-dir"
            ]
        );
    }

    #[test]
    fn store_retry_queue_is_32mi_by_default_and_bounded_by_memory() {
        assert_eq!(parse(&[]).store_retry_queue_bytes, 32 << 20);
        assert_eq!(
            parse(&["--store-retry-queue-bytes", "0"]).store_retry_queue_bytes,
            0
        );
        let errs = parse(&["--store-retry-queue-bytes", "2Gi"])
            .validate()
            .unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].flag, "store-retry-queue-bytes");
    }

    #[test]
    fn otlp_is_off_without_an_endpoint() {
        assert!(parse(&[]).otlp().unwrap().is_none());
        let errs = parse(&["--otlp-header", "a=b"]).validate().unwrap_err();
        assert_eq!(errs[0].flag, "otlp-endpoint");
    }

    #[test]
    fn otlp_http_endpoint_gets_the_logs_path_and_grpc_urls_pick_grpc() {
        for (args, url, protocol) in [
            (
                &["--otlp-endpoint", "http://collector:4318"][..],
                "http://collector:4318/v1/logs",
                OtlpProtocol::HttpProtobuf,
            ),
            (
                &["--otlp-endpoint", "http://collector:4318/otlp/"],
                "http://collector:4318/otlp/v1/logs",
                OtlpProtocol::HttpProtobuf,
            ),
            (
                &["--otlp-endpoint", "http://collector:4318/v1/logs"],
                "http://collector:4318/v1/logs",
                OtlpProtocol::HttpProtobuf,
            ),
            (
                &["--otlp-endpoint", "grpc://collector"],
                "http://collector:4317",
                OtlpProtocol::Grpc,
            ),
            (
                &[
                    "--otlp-endpoint",
                    "http://10.0.0.1:4317",
                    "--otlp-protocol",
                    "grpc",
                ],
                "http://10.0.0.1:4317",
                OtlpProtocol::Grpc,
            ),
        ] {
            let s = parse(args).otlp().unwrap().expect("configured");
            assert_eq!((s.url.as_str(), s.protocol), (url, protocol), "{args:?}");
        }
    }

    #[test]
    fn otlp_problems_are_reported_together_without_header_values() {
        let a = parse(&[
            "--otlp-endpoint",
            "https://collector:4318",
            "--otlp-header",
            "authorization=Bearer hunter2",
            "--otlp-header",
            "no-equals-sign-s3cret",
            "--otlp-header",
            "x-token=bad\u{7f}hunter3",
            "--report-base-url",
            "ftp://x",
        ]);
        let errs = a.validate().unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        let flags: Vec<_> = errs.iter().map(|e| e.flag).collect();
        assert_eq!(
            flags,
            [
                "otlp-header",
                "otlp-header",
                "report-base-url",
                "otlp-endpoint"
            ],
            "{text:?}"
        );
        assert!(text[3].contains("no TLS"), "{text:?}");
        let all = format!("{text:?} {a:?}");
        for secret in ["hunter2", "s3cret", "hunter3"] {
            assert!(!all.contains(secret), "{secret} shown in {all}");
        }
    }

    #[test]
    fn otlp_headers_and_base_url_are_kept() {
        let s = parse(&[
            "--otlp-endpoint",
            "http://c:4318",
            "--otlp-header",
            "Authorization=Basic eDp5",
            "--report-base-url",
            "https://coroner.example.com/n1/",
        ])
        .otlp()
        .unwrap()
        .unwrap();
        assert_eq!(s.headers.len(), 1);
        assert_eq!(s.headers[0].0, "Authorization");
        assert_eq!(s.headers[0].1.expose(), "Basic eDp5");
        assert_eq!(format!("{:?}", s.headers[0].1), "<redacted>");
        assert_eq!(
            s.report_base_url.as_deref(),
            Some("https://coroner.example.com/n1")
        );
    }

    #[test]
    fn the_api_is_on_loopback_and_metrics_on_every_address_by_default() {
        let a = parse(&[]);
        assert_eq!(a.listen, SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)));
        assert_eq!(
            a.metrics_listen,
            SocketAddr::from(([0, 0, 0, 0], DEFAULT_METRICS_PORT))
        );
        assert_eq!(a.api_token_file, None);
        assert_eq!((a.max_connections, a.max_sse_clients), (256, 64));
        assert_eq!(a.header_read_timeout, Duration::from_secs(10));
    }

    #[test]
    fn exposure_settings_are_checked_together() {
        let a = parse(&[
            "--listen",
            "0.0.0.0:7464",
            "--metrics-listen",
            "127.0.0.1:7464",
            "--api-token-file",
            "/nonexistent/token",
            "--max-connections",
            "0",
            "--max-sse-clients",
            "0",
            "--header-read-timeout",
            "10ms",
        ]);
        let errs = a.validate().unwrap_err();
        let flags: Vec<_> = errs.iter().map(|e| e.flag).collect();
        assert_eq!(
            flags,
            [
                "metrics-listen",
                "api-token-file",
                "max-connections",
                "max-sse-clients",
                "header-read-timeout"
            ]
        );
        assert!(errs[1].reason.contains("/nonexistent/token"), "{errs:?}");
        // Same port on different specific addresses does not overlap.
        let ok = parse(&[
            "--listen",
            "127.0.0.1:9000",
            "--metrics-listen",
            "127.0.0.2:9000",
        ]);
        ok.validate().expect("distinct addresses");
    }

    #[test]
    fn recorder_is_pinned_by_default_and_either_flag_turns_it_off() {
        assert_eq!(
            parse(&[]).bpf_pin_dir(),
            Some(std::path::Path::new("/sys/fs/bpf/coroner"))
        );
        assert_eq!(parse(&["--no-bpf-pin"]).bpf_pin_dir(), None);
        assert_eq!(parse(&["--bpf-pin-dir", ""]).bpf_pin_dir(), None);
        let own = parse(&["--bpf-pin-dir", "/sys/fs/bpf/x"]);
        assert_eq!(
            own.bpf_pin_dir(),
            Some(std::path::Path::new("/sys/fs/bpf/x"))
        );
        own.validate().expect("valid");
    }

    #[test]
    fn byte_sizes_accept_binary_and_decimal_suffixes() {
        assert_eq!(parse_bytes("64Ki"), Ok(65536));
        assert_eq!(parse_bytes("2G"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("123"), Ok(123));
        assert!(parse_bytes("12Q").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("99999999999999Gi")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn namespaces_follow_containerd_rules() {
        for ok in ["k8s.io", "moby", "a-b_c.d"] {
            assert!(valid_namespace(ok), "{ok}");
        }
        for bad in ["", ".x", "x.", "a b", "k8s..io"] {
            assert!(!valid_namespace(bad), "{bad}");
        }
    }

    fn client(args: &[&str]) -> ClientCommand {
        let mut full = vec!["coroner"];
        full.extend_from_slice(args);
        match Cli::try_parse_from(full).expect("parses").command {
            Command::Client(c) => c,
            Command::Agent(a) => panic!("parsed as the agent: {a:?}"),
        }
    }

    #[test]
    fn default_url_is_the_agents_default_port_on_localhost() {
        let c = client(&["crashes"]);
        assert_eq!(c.client().url, format!("http://127.0.0.1:{DEFAULT_PORT}"));
        assert_eq!(c.client().timeout, Duration::from_secs(10));
        c.validate().expect("defaults valid");
    }

    #[test]
    fn every_invalid_client_setting_is_reported_at_once() {
        let c = client(&[
            "crashes",
            "--url",
            "ftp://x",
            "--timeout",
            "0s",
            "--limit",
            "0",
        ]);
        let flags: Vec<_> = c.validate().unwrap_err().iter().map(|e| e.flag).collect();
        assert_eq!(flags, ["url", "timeout", "limit"]);
        let https = client(&["watch", "--url", "https://agent:7464", "--count", "0"]);
        let errs = https.validate().unwrap_err();
        assert!(errs[0].reason.contains("port-forward"), "{errs:?}");
        assert_eq!(errs[1].flag, "count");
        assert!(client(&["show", " "]).validate().is_err());
        assert!(client(&["crashes", "--url", "http://127.0.0.1:7464/?x=1"])
            .validate()
            .is_err());
    }

    #[test]
    fn filters_the_agent_judges_are_passed_through_unchecked() {
        let c = client(&["groups", "--cause", "not_a_cause_yet", "--namespace", ""]);
        c.validate().expect("left to the agent");
        match c {
            ClientCommand::Groups(g) => assert_eq!(g.cause.as_deref(), Some("not_a_cause_yet")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn durations_combine_units_and_refuse_bare_numbers() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("10y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("999999999d")
            .unwrap_err()
            .contains("too long"));
    }

    #[test]
    fn since_is_a_time_or_a_duration_before_now() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = parse_since("2026-11-22T10:00:00+01:00").unwrap();
        assert_eq!(at.resolve(now).to_rfc3339(), "2026-11-22T09:00:00+00:00");
        let ago = parse_since("1h30m").unwrap();
        assert_eq!(ago.resolve(now).to_rfc3339(), "2026-11-22T08:30:00+00:00");
        let err = parse_since("yesterday").unwrap_err();
        assert!(err.contains("RFC 3339") && err.contains("30m"), "{err}");
    }
}
