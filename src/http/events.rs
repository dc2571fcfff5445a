//! `GET /api/v1/events`: a Server-Sent Events stream of reports as they are stored.
//!
//! Each stored report is one `crash` event whose data is its summary (the items of
//! `/api/v1/crashes`) and whose id is the report id. A client that reconnects with
//! `Last-Event-ID` first gets the reports stored after that one, so a dropped connection loses
//! nothing the store still holds. A subscriber too slow for the live buffer gets a `lagged` event
//! saying how many it missed (they are in `/api/v1/crashes`). Comments keep idle connections
//! open through proxies and `kubectl port-forward`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast;

use super::AppState;
use crate::model::CrashSummary;
use crate::store::Query;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn crash_event(s: &CrashSummary) -> Event {
    Event::default()
        .event("crash")
        .id(s.id.clone())
        .json_data(s)
        .unwrap_or_else(|_| {
            Event::default()
                .event("error")
                .data("summary did not serialize")
        })
}

/// Reports stored after `last_id` (oldest first), when the store still knows it.
fn missed_since(shared: &AppState, last_id: &str) -> Vec<CrashSummary> {
    let mut missed = Vec::new();
    let mut q = Query {
        outcome: None,
        limit: crate::store::MAX_LIMIT,
        ..Query::default()
    };
    // Newest first, until the last one the client saw.
    loop {
        let page = shared.store.list(&q);
        let mut found = false;
        for s in page.items {
            if s.id == last_id {
                found = true;
                break;
            }
            missed.push(s);
        }
        match page.next_cursor {
            Some(c) if !found => q.cursor = Some(c),
            _ => {
                if !found {
                    // Unknown (expired) id: replaying everything would flood the client.
                    missed.clear();
                }
                break;
            }
        }
    }
    missed.reverse();
    missed
}

pub async fn stream(State(shared): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    // Held by the stream: the slot is free again when the client goes.
    let Ok(slot) = shared.sse_slots.clone().try_acquire_owned() else {
        shared.metrics.http.reject(
            super::serve::ListenerKind::Api.label(),
            crate::metrics::HttpRejectReason::sse_clients,
        );
        return super::ApiError::Overloaded("live feed clients").into_response();
    };
    // Subscribe before reading the backlog, so nothing falls between the two.
    let rx = shared.store.subscribe();
    let backlog = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|id| missed_since(&shared, id))
        .unwrap_or_default();
    let replayed: std::collections::HashSet<String> =
        backlog.iter().map(|s| s.id.clone()).collect();
    let backlog = stream::iter(
        backlog
            .into_iter()
            .map(|s| Ok::<_, Infallible>(crash_event(&s))),
    );
    Sse::new(backlog.chain(live(rx, replayed, slot)))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response()
}

fn live(
    rx: broadcast::Receiver<CrashSummary>,
    replayed: std::collections::HashSet<String>,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(
        (rx, replayed, slot),
        |(mut rx, replayed, slot)| async move {
            loop {
                match rx.recv().await {
                    Ok(s) if replayed.contains(&s.id) => continue,
                    Ok(s) => return Some((Ok(crash_event(&s)), (rx, replayed, slot))),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let ev = Event::default()
                            .event("lagged")
                            .data(format!("{{\"missed\":{n}}}"));
                        return Some((Ok(ev), (rx, replayed, slot)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
}
