//! Command line and environment configuration, parsed and validated in one place.
//!
//! Every agent flag is also an environment variable (`CORONER_*`); of the client's flags, the
//! connection ones are (`CORONER_URL`, `CORONER_TIMEOUT`, `CORONER_TOKEN_FILE`). [`AgentArgs::validate`] and
//! [`ClientCommand::validate`] report every invalid value at once, before anything starts.
//! Client filters the agent interprets (`--namespace`, `--cause`, ...) are passed through as
//! given, so the agent judges them and a client older than the agent accepts its new values.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

mod agent;
mod client;
mod otlp;
#[cfg(test)]
mod tests;

pub use agent::*;
pub use client::*;
pub use otlp::*;

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

/// containerd's namespace rule (`namespaces.Validate`): alphanumeric labels joined by `.`, `_`, `-`.
pub(crate) fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 76
        && ns
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}
