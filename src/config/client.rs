//! The client commands' flags (`crashes`, `show`, `groups`, `watch`, ...), checked before a request.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};

use super::*;

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
