//! The command-line client: `coroner crashes | show | groups | watch` read an agent's reports
//! over its HTTP API, typically through `kubectl port-forward`.
//!
//! This file owns the HTTP side (URLs, timeouts, mapping statuses and transport failures to
//! [`ClientError`] and its exit code); `commands` runs each command; `view`, `table` and `sse`
//! are pure (JSON to rows, rows to fitted text, bytes to events) and unit-tested; `term` reads
//! the terminal width. The client never decides what a filter means: the agent validates them and
//! its message is shown as it is.

mod commands;
pub mod sse;
pub mod table;
mod term;
pub mod view;

use std::error::Error as _;
use std::io::{self, Write};
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::config::{ClientArgs, ClientCommand, Invalid, DEFAULT_PORT};

/// What went wrong, each with the exit code scripts can branch on (listed in `--help`).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{}", invalid_list(.0))]
    Invalid(Vec<Invalid>),

    #[error("cannot reach the agent at {url} ({reason}): {hint}")]
    Unreachable {
        url: String,
        reason: String,
        hint: String,
    },

    #[error("the agent at {url} has no {kind} with id {id:?}: {hint}")]
    NotFound {
        url: String,
        kind: &'static str,
        id: String,
        hint: &'static str,
    },

    #[error("the agent refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },

    #[error("the agent at {url} failed (HTTP {status}): {message}")]
    AgentFailed {
        url: String,
        status: u16,
        message: String,
    },

    #[error("unexpected answer from {url}: {reason}; is --url the address of a coroner agent?")]
    Protocol { url: String, reason: String },

    #[error("cannot set up the HTTP client: {0}")]
    Setup(#[source] reqwest::Error),

    #[error("writing the output: {0}")]
    Output(#[source] io::Error),
}

fn invalid_list(invalid: &[Invalid]) -> String {
    let list: Vec<String> = invalid
        .iter()
        .map(|i| format!("invalid setting {i}"))
        .collect();
    format!("{}; see --help", list.join("; "))
}

impl ClientError {
    /// The process exit code (`crate::config::EXIT_CODES` documents them).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Invalid(_) => 2,
            ClientError::Unreachable { .. } => 3,
            ClientError::NotFound { .. } => 4,
            ClientError::Refused { .. } => 5,
            ClientError::AgentFailed { .. }
            | ClientError::Protocol { .. }
            | ClientError::Setup(_)
            | ClientError::Output(_) => 1,
        }
    }

    /// The reader of stdout went away (`coroner crashes | head`): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ClientError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Validates the settings, then runs the command, writing its result to `out` (progress and
/// warnings go to stderr).
pub async fn run(cmd: ClientCommand, out: &mut dyn Write) -> Result<(), ClientError> {
    cmd.validate().map_err(ClientError::Invalid)?;
    let api = Api::new(cmd.client())?;
    match &cmd {
        ClientCommand::Crashes(a) => commands::crashes(&api, a, out).await,
        ClientCommand::Show(a) => commands::show(&api, a, out).await,
        ClientCommand::Groups(a) => commands::groups(&api, a, out).await,
        ClientCommand::Watch(a) => commands::watch(&api, a, out).await,
    }
}

/// A resource the request names, so a 404 means "no such report" rather than "no such API".
#[derive(Debug, Clone, Copy)]
struct Lookup<'a> {
    kind: &'static str,
    id: &'a str,
    hint: &'static str,
}

/// The agent's HTTP API.
struct Api {
    base: Url,
    /// The base URL as the user gave it, for messages.
    shown: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl Api {
    fn new(args: &ClientArgs) -> Result<Api, ClientError> {
        let shown = args.url.trim_end_matches('/').to_string();
        let base = Url::parse(&args.url).map_err(|e| ClientError::Protocol {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(path) = &args.token_file {
            let token = crate::http::auth::read_token(path).map_err(|e| {
                ClientError::Invalid(vec![Invalid {
                    flag: "token-file",
                    reason: e.to_string(),
                }])
            })?;
            let mut value = reqwest::header::HeaderValue::try_from(format!("Bearer {token}"))
                .map_err(|_| {
                    ClientError::Invalid(vec![Invalid {
                        flag: "token-file",
                        reason: format!("{}: not a valid header value", path.display()),
                    }])
                })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            // The agent is reached through a port-forward or the pod network; a proxy from the
            // environment would only get in the way of 127.0.0.1.
            .no_proxy()
            // http:// only (the agent serves no TLS): no roots, so a machine without CA
            // certificates can run the client.
            .tls_certs_only(Vec::<reqwest::Certificate>::new())
            .connect_timeout(args.timeout)
            .user_agent(concat!("coroner/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Setup)?;
        Ok(Api {
            base,
            shown,
            http,
            timeout: args.timeout,
        })
    }

    /// `base` + `/segments...` + `?query`; segments are percent-encoded, a base path (an API
    /// server proxy URL) is kept.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut u = self.base.clone();
        if let Ok(mut path) = u.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            u.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        u
    }

    fn unreachable(&self, reason: String) -> ClientError {
        ClientError::Unreachable {
            url: self.shown.clone(),
            reason,
            hint: reach_hint(&self.base),
        }
    }

    fn protocol(&self, reason: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            url: self.shown.clone(),
            reason: reason.into(),
        }
    }

    /// Sends a GET; any transport failure means the agent cannot be reached.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        lookup: Option<Lookup<'_>>,
    ) -> Result<reqwest::Response, ClientError> {
        let resp = match tokio::time::timeout(self.timeout, req.send()).await {
            Err(_) => return Err(self.unreachable(format!("no answer within {:?}", self.timeout))),
            Ok(Err(e)) => return Err(self.unreachable(describe(&e, self.timeout))),
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let message = api_error_message(&body);
        Err(match (status, lookup) {
            (StatusCode::NOT_FOUND, Some(l)) => ClientError::NotFound {
                url: self.shown.clone(),
                kind: l.kind,
                id: l.id.to_string(),
                hint: l.hint,
            },
            (StatusCode::NOT_FOUND, None) => ClientError::Refused {
                status: status.as_u16(),
                message: format!(
                    "{message} (is --url the agent's base URL, and the agent as new as this client?)"
                ),
            },
            (s, _) if s.is_client_error() => ClientError::Refused {
                status: s.as_u16(),
                message,
            },
            (s, _) if s.is_server_error() => ClientError::AgentFailed {
                url: self.shown.clone(),
                status: s.as_u16(),
                message,
            },
            (s, _) => self.protocol(format!("HTTP {s}")),
        })
    }

    /// The whole body of a GET, within the timeout.
    async fn get_text(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        lookup: Option<Lookup<'_>>,
    ) -> Result<String, ClientError> {
        let req = self
            .http
            .get(self.url(segments, query))
            .timeout(self.timeout);
        let resp = self.send(req, lookup).await?;
        resp.text()
            .await
            .map_err(|e| self.unreachable(describe(&e, self.timeout)))
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let text = self.get_text(segments, query, None).await?;
        serde_json::from_str(&text)
            .map_err(|e| self.protocol(format!("not the JSON expected ({e})")))
    }

    /// Opens `GET /api/v1/events`; only the wait for the response head is timed, the stream
    /// itself lasts as long as the agent keeps it open.
    async fn events(&self, last_id: Option<&str>) -> Result<reqwest::Response, ClientError> {
        let mut req = self
            .http
            .get(self.url(&["api", "v1", "events"], &[]))
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id);
        }
        self.send(req, None).await
    }
}

/// What to check when the agent cannot be reached: the port-forward for a local URL.
fn reach_hint(url: &Url) -> String {
    let local = matches!(
        url.host_str(),
        Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
    );
    if local {
        let port = url.port_or_known_default().unwrap_or(DEFAULT_PORT);
        let ports = if port == DEFAULT_PORT {
            port.to_string()
        } else {
            format!("{port}:{DEFAULT_PORT}")
        };
        format!("is `kubectl port-forward -n coroner ds/coroner {ports}` running? (or pass --url)")
    } else {
        "is the agent running there, and the address right? (pass --url or set CORONER_URL)".into()
    }
}

/// A transport failure in a few words: `connection refused`, `no answer within 10s`.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {timeout:?}");
    }
    let mut innermost = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::ConnectionRefused => "connection refused".into(),
                io::ErrorKind::ConnectionReset => "connection reset".into(),
                io::ErrorKind::TimedOut => format!("no answer within {timeout:?}"),
                _ => io.to_string(),
            };
        }
        innermost = s.to_string();
        source = s.source();
    }
    innermost
}

/// The `message` of the agent's `{"error": {"code", "message"}}` body, else the body itself
/// (shortened), so a proxy's or another server's answer is still shown.
fn api_error_message(body: &str) -> String {
    let parsed: Option<String> = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string));
    match parsed {
        Some(m) => m,
        None if body.trim().is_empty() => "(empty body)".into(),
        None => {
            let t = table::sanitize(body.trim());
            match t.char_indices().nth(200) {
                Some((i, _)) => format!("{}…", &t[..i]),
                None => t,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(url: &str) -> Api {
        Api::new(&ClientArgs {
            url: url.into(),
            timeout: Duration::from_secs(10),
            token_file: None,
        })
        .unwrap()
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_ids_and_queries() {
        let a = api("http://127.0.0.1:7464");
        assert_eq!(
            a.url(
                &["api", "v1", "crashes"],
                &[("since", "2026-11-22T10:00:00+00:00".into())]
            )
            .as_str(),
            "http://127.0.0.1:7464/api/v1/crashes?since=2026-11-22T10%3A00%3A00%2B00%3A00"
        );
        assert_eq!(
            a.url(&["api", "v1", "crashes", "../x?y"], &[]).as_str(),
            "http://127.0.0.1:7464/api/v1/crashes/..%2Fx%3Fy"
        );
        let proxied =
            api("http://127.0.0.1:8001/api/v1/namespaces/coroner/pods/coroner-x:7464/proxy/");
        assert_eq!(
            proxied.url(&["api", "v1", "groups"], &[]).path(),
            "/api/v1/namespaces/coroner/pods/coroner-x:7464/proxy/api/v1/groups"
        );
    }

    #[test]
    fn the_hint_names_the_port_forward_for_the_local_port() {
        let h = |u: &str| reach_hint(&Url::parse(u).unwrap());
        assert_eq!(
            h("http://127.0.0.1:7464"),
            "is `kubectl port-forward -n coroner ds/coroner 7464` running? (or pass --url)"
        );
        assert!(h("http://localhost:9000").contains("ds/coroner 9000:7464"));
        assert!(h("http://10.0.3.7:7464").contains("--url"));
        assert!(!h("http://10.0.3.7:7464").contains("port-forward"));
    }

    #[test]
    fn the_agents_error_message_is_shown_as_it_is() {
        let body = r#"{"error":{"code":"bad_request","param":"cause","message":"query parameter `cause`: \"oom\" is not one of oom_killed"}}"#;
        assert_eq!(
            api_error_message(body),
            "query parameter `cause`: \"oom\" is not one of oom_killed"
        );
        assert_eq!(
            api_error_message("<h1>Bad Gateway</h1>\n"),
            "<h1>Bad Gateway</h1>"
        );
        assert_eq!(api_error_message(""), "(empty body)");
        assert!(api_error_message(&"x".repeat(500)).ends_with('…'));
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        let codes = [
            (ClientError::Invalid(vec![]), 2),
            (
                ClientError::Unreachable {
                    url: String::new(),
                    reason: String::new(),
                    hint: String::new(),
                },
                3,
            ),
            (
                ClientError::NotFound {
                    url: String::new(),
                    kind: "report",
                    id: String::new(),
                    hint: "",
                },
                4,
            ),
            (
                ClientError::Refused {
                    status: 400,
                    message: String::new(),
                },
                5,
            ),
            (ClientError::Output(io::ErrorKind::Other.into()), 1),
        ];
        for (e, code) in codes {
            assert_eq!(e.exit_code(), code, "{e:?}");
            let line = format!("  {code}  ");
            assert!(
                crate::config::EXIT_CODES.contains(&line),
                "{code} undocumented"
            );
        }
        assert!(ClientError::Output(io::ErrorKind::BrokenPipe.into()).is_broken_pipe());
    }
}
