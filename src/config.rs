//! Command line and environment configuration, parsed and validated in one place.
//!
//! Every flag is also an environment variable (`CORONER_*`). [`AgentArgs::validate`] reports every
//! invalid value at once, before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default HTTP port. The Prometheus exporter range 9100-9999 is fully allocated, so coroner sits
/// outside it, on a port no common exporter or Kubernetes component uses.
pub const DEFAULT_PORT: u16 = 7464;

#[derive(Debug, Parser)]
#[command(
    name = "coroner",
    version,
    about = "Autopsies for containers: why did it die?"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node agent: watch containerd, record every container exit, serve the reports.
    Agent(AgentArgs),
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

    /// Address and port of the HTTP API, web page and /metrics.
    #[arg(long, env = "CORONER_LISTEN", default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)))]
    pub listen: SocketAddr,

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

    /// Environment variable whose VALUE may be stored in reports. By default only names are kept,
    /// because values often hold credentials. Repeat the flag or comma-separate.
    #[arg(long = "env-allow", env = "CORONER_ENV_ALLOW", value_delimiter = ',')]
    pub env_allow: Vec<String>,

    /// Store command-line arguments as they are. By default, values of arguments that look like
    /// credentials (`--password=...`, `token=...`, `https://user:pass@host`) are replaced by
    /// `<redacted>`.
    #[arg(long, env = "CORONER_NO_REDACT_ARGS")]
    pub no_redact_args: bool,

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

    /// Log format on stderr. The level is set with RUST_LOG (default `info`).
    #[arg(long, env = "CORONER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> AgentArgs {
        let mut full = vec!["coroner", "agent"];
        full.extend_from_slice(args);
        match Cli::try_parse_from(full).expect("parses").command {
            Command::Agent(a) => a,
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
                "recorder-ring"
            ]
        );
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
}
