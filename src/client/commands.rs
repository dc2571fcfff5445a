//! The four client commands: ask the agent, shape the answer, write it to stdout. Warnings and
//! reconnection notices go to stderr so stdout stays parseable.

use std::io::Write;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{sse, table, term, view, Api, ClientError, Lookup};
use crate::config::{CrashesArgs, GroupsArgs, OutputFormat, ShowArgs, WatchArgs};

/// The agent's largest page (`limit` of `/api/v1/crashes`).
const MAX_PAGE: usize = crate::store::MAX_LIMIT;

/// The agent sends a keep-alive every 15 s; three missed ones mean the stream is dead even if
/// the TCP connection (a port-forward) has not noticed.
const STREAM_IDLE: Duration = Duration::from_secs(45);

#[derive(Deserialize)]
struct Page {
    items: Vec<Value>,
    #[serde(default)]
    next_cursor: Option<String>,
}

fn write(out: &mut dyn Write, text: &str) -> Result<(), ClientError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(ClientError::Output)
}

fn push(query: &mut Vec<(&'static str, String)>, key: &'static str, value: &Option<String>) {
    if let Some(v) = value {
        query.push((key, v.clone()));
    }
}

fn json_list(items: &[Value]) -> String {
    // Serializing a `Value` cannot fail.
    serde_json::to_string_pretty(items).unwrap_or_default() + "\n"
}

/// Reads each item as `T`, or says which one the client cannot read.
fn read_items<T: serde::de::DeserializeOwned>(
    api: &Api,
    items: &[Value],
) -> Result<Vec<T>, ClientError> {
    items
        .iter()
        .map(|v| {
            serde_json::from_value(v.clone())
                .map_err(|e| api.protocol(format!("an item the client cannot read ({e}): {v}")))
        })
        .collect()
}

pub(super) async fn crashes(
    api: &Api,
    a: &CrashesArgs,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    let mut query = vec![("outcome", a.outcome.as_str().to_string())];
    push(&mut query, "namespace", &a.namespace);
    push(&mut query, "pod", &a.pod);
    push(&mut query, "container", &a.container);
    push(&mut query, "cause", &a.cause);
    push(&mut query, "group", &a.group);
    if let Some(since) = a.since {
        let t = since.resolve(Utc::now());
        query.push(("since", t.to_rfc3339_opts(SecondsFormat::AutoSi, true)));
    }
    let mut items: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    while items.len() < a.limit {
        let mut q = query.clone();
        q.push(("limit", (a.limit - items.len()).min(MAX_PAGE).to_string()));
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let page: Page = api.get_json(&["api", "v1", "crashes"], &q).await?;
        let got = page.items.len();
        items.extend(page.items);
        match page.next_cursor {
            Some(next) if got > 0 && cursor.as_ref() != Some(&next) => cursor = Some(next),
            _ => break,
        }
    }
    items.truncate(a.limit);
    match a.output {
        OutputFormat::Json => write(out, &json_list(&items)),
        OutputFormat::Table if items.is_empty() => {
            eprintln!(
                "coroner: no {} reports match at {} (try --outcome all, or a longer --since)",
                a.outcome.as_str(),
                api.shown
            );
            Ok(())
        }
        OutputFormat::Table => {
            let now = Utc::now();
            let rows: Vec<Vec<String>> = read_items::<view::Crash>(api, &items)?
                .iter()
                .map(|c| view::crash_row(c, now))
                .collect();
            write(
                out,
                &table::render(&view::CRASH_COLUMNS, &rows, term::width()),
            )
        }
    }
}

pub(super) async fn show(api: &Api, a: &ShowArgs, out: &mut dyn Write) -> Result<(), ClientError> {
    let lookup = Lookup {
        kind: "report",
        id: &a.id,
        hint: "take an id from `coroner crashes --outcome all`; reports past the agent's \
               retention are deleted",
    };
    let mut body = api
        .get_text(
            &["api", "v1", "crashes", &a.id],
            &[("format", a.format.as_str().to_string())],
            Some(lookup),
        )
        .await?;
    if !body.ends_with('\n') {
        body.push('\n');
    }
    write(out, &body)
}

pub(super) async fn groups(
    api: &Api,
    a: &GroupsArgs,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    let mut query = Vec::new();
    push(&mut query, "namespace", &a.namespace);
    push(&mut query, "pod", &a.pod);
    push(&mut query, "container", &a.container);
    push(&mut query, "cause", &a.cause);
    if let Some(since) = a.since {
        let t = since.resolve(Utc::now());
        query.push(("since", t.to_rfc3339_opts(SecondsFormat::AutoSi, true)));
    }
    if let Some(limit) = a.limit {
        query.push(("limit", limit.to_string()));
    }
    let page: Page = api.get_json(&["api", "v1", "groups"], &query).await?;
    match a.output {
        OutputFormat::Json => write(out, &json_list(&page.items)),
        OutputFormat::Table if page.items.is_empty() => {
            eprintln!("coroner: no crash groups match at {}", api.shown);
            Ok(())
        }
        OutputFormat::Table => {
            let now = Utc::now();
            let rows: Vec<Vec<String>> = read_items::<view::Group>(api, &page.items)?
                .iter()
                .map(|g| view::group_row(g, now))
                .collect();
            write(
                out,
                &table::render(&view::GROUP_COLUMNS, &rows, term::width()),
            )
        }
    }
}

/// Reconnection delays: 1 s doubling to 30 s, back to 1 s after a successful connection.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(Self::MAX);
        d
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

pub(super) async fn watch(
    api: &Api,
    a: &WatchArgs,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    let mut last_id: Option<String> = None;
    let mut printed: u64 = 0;
    let mut backoff = Backoff::new();
    let mut connected_before = false;
    loop {
        let mut resp = match api.events(last_id.as_deref()).await {
            Ok(r) => r,
            // The first connection fails fast (a wrong --url); later ones are a dropped
            // port-forward or a restarting agent, worth waiting for.
            Err(e @ ClientError::Unreachable { .. }) if connected_before => {
                let d = backoff.next_delay();
                eprintln!("coroner: {e}; retrying in {d:?}");
                tokio::time::sleep(d).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        match (&last_id, connected_before) {
            (_, false) => eprintln!(
                "coroner: watching {} for crashes (Ctrl-C to stop)",
                api.shown
            ),
            (Some(id), true) => eprintln!(
                "coroner: reconnected to {}; resuming after report {id}",
                api.shown
            ),
            (None, true) => eprintln!("coroner: reconnected to {}", api.shown),
        }
        connected_before = true;
        backoff.reset();
        let mut parser = sse::Parser::resuming(last_id.clone());
        let reason = loop {
            let chunk = match tokio::time::timeout(STREAM_IDLE, resp.chunk()).await {
                Err(_) => break format!("nothing received for {STREAM_IDLE:?}"),
                Ok(Err(e)) => break super::describe(&e, api.timeout),
                Ok(Ok(None)) => break "the agent ended the stream".to_string(),
                Ok(Ok(Some(chunk))) => chunk,
            };
            for event in parser.feed(&chunk) {
                match event.event.as_str() {
                    "crash" => match serde_json::from_str::<view::Crash>(&event.data) {
                        Ok(c) => {
                            write(out, &(view::watch_line(&c) + "\n"))?;
                            printed += 1;
                            if a.count == Some(printed) {
                                return Ok(());
                            }
                        }
                        Err(e) => eprintln!(
                            "coroner: skipped a crash event the client cannot read ({e}): {}",
                            table::sanitize(&event.data)
                        ),
                    },
                    "lagged" => {
                        let missed = serde_json::from_str::<Value>(&event.data)
                            .ok()
                            .and_then(|v| v["missed"].as_u64());
                        eprintln!(
                            "coroner: this client fell behind and the agent skipped {} crash(es); \
                             `coroner crashes` lists them",
                            missed.map_or("some".to_string(), |n| n.to_string())
                        );
                    }
                    "error" => eprintln!(
                        "coroner: the agent sent an error event: {}",
                        table::sanitize(&event.data)
                    ),
                    _ => {} // event types added later
                }
            }
            last_id = parser.last_event_id().map(str::to_string);
        };
        let d = backoff.next_delay();
        eprintln!(
            "coroner: lost the event stream from {} ({reason}); reconnecting in {d:?}",
            api.shown
        );
        tokio::time::sleep(d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_to_thirty_seconds_and_reset() {
        let mut b = Backoff::new();
        let delays: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
