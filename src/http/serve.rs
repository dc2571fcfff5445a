//! The accept loop of each listener: a cap on open connections, a header read timeout, and the
//! file-descriptor budget that keeps HTTP clients from taking what report writes need.
//!
//! `axum::serve` has no setting for any of these, so connections are served here with hyper's
//! HTTP/1 builder directly:
//! - at most `max_connections` connections are served at once per listener (a semaphore around
//!   accept); one more is accepted, answered `503` with `Retry-After` (after its request head, or
//!   half a second of silence) and closed; a flood of them holds at most [`REJECT_SLOTS`] more
//!   descriptors, for at most a second each (beyond that they are closed unanswered);
//! - a client gets `header_read_timeout` to send a request's head, on a new connection and between
//!   requests of a kept-alive one (slowloris connections are closed);
//! - a request head may be at most [`MAX_HEAD_BYTES`], which bounds a connection's buffers;
//! - at shutdown the listener closes, connections get [`SHUTDOWN_GRACE`] to finish their
//!   response, and live feeds (which never finish) are then dropped.
//!
//! The descriptor budget ([`connection_budget`]): the agent raises its soft `RLIMIT_NOFILE` to the
//! hard limit at start ([`raise_nofile_limit`]); what is open then plus [`STORE_RESERVE`] is kept
//! for the store, containerd and the recorder, and the rest is shared by the two listeners at two
//! descriptors per connection (its socket, and a report file a request may be reading).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::metrics::{HttpRejectReason, ListenerLabels, Metrics};

/// `Retry-After` of every 503 the HTTP layer answers for lack of room, in seconds.
pub const RETRY_AFTER_SECS: u64 = 5;

/// Rejected connections being answered at once, per listener; beyond, they are closed at once.
pub const REJECT_SLOTS: usize = 16;

/// Descriptors kept free for everything but HTTP, beyond those open when the budget is made:
/// report writes (one per report being stored), containerd reconnects, CRI and `/proc` reads.
pub const STORE_RESERVE: u64 = 64;

/// Largest request head (request line and headers) a client may send.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long connections may finish their response once shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How long a rejected connection is given to read its 503 before it is closed.
const REJECT_WAIT: Duration = Duration::from_millis(500);

/// How much of a rejected connection's request is read before answering.
const MAX_REJECT_HEAD: usize = 8 * 1024;

/// Descriptors each served connection may hold: its socket and one report file being read.
const FDS_PER_CONNECTION: u64 = 2;

/// Which listener, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Api,
    Metrics,
}

impl ListenerKind {
    pub fn label(self) -> &'static str {
        match self {
            ListenerKind::Api => "api",
            ListenerKind::Metrics => "metrics",
        }
    }
}

/// What a listener enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit now in force.
pub fn raise_nofile_limit() -> nix::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(getrlimit(Resource::RLIMIT_NOFILE)?.0)
}

/// Descriptors this process has open now (`/proc/self/fd`).
pub fn open_fds() -> std::io::Result<u64> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count() as u64)
}

/// The connections each of `listeners` listeners may serve at once: `configured`, lowered so
/// that `listeners * (REJECT_SLOTS + FDS_PER_CONNECTION * n)` fits in what `nofile` leaves after
/// the `open` descriptors and [`STORE_RESERVE`]. `None` when not even one connection fits.
pub fn connection_budget(
    nofile: u64,
    open: u64,
    listeners: u64,
    configured: usize,
) -> Option<usize> {
    let for_http = nofile.checked_sub(open + STORE_RESERVE)?;
    let per_listener = (for_http / listeners.max(1)).checked_sub(REJECT_SLOTS as u64)?;
    let fit = per_listener / FDS_PER_CONNECTION;
    let n = usize::try_from(fit).unwrap_or(usize::MAX).min(configured);
    (n >= 1).then_some(n)
}

/// Serves `router` on `tcp` until `stop` turns true.
pub async fn serve(
    tcp: TcpListener,
    router: Router,
    kind: ListenerKind,
    limits: Limits,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let labels = ListenerLabels {
        listener: kind.label(),
    };
    metrics
        .http
        .connection_limit
        .get_or_create(&labels)
        .set(i64::try_from(limits.max_connections).unwrap_or(i64::MAX));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let reject_slots = Arc::new(Semaphore::new(REJECT_SLOTS));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = tcp.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        // EMFILE/ENFILE (or a connection reset before accept): the pending
                        // connection stays in the backlog; try again shortly instead of spinning.
                        metrics.http.reject(kind.label(), HttpRejectReason::accept_error);
                        debug!(listener = kind.label(), error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                match slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let conn = Connection {
                            builder: builder.clone(),
                            router: router.clone(),
                            metrics: metrics.clone(),
                            labels: labels.clone(),
                            _permit: permit,
                        };
                        conns.spawn(conn.run(stream, stop.clone()));
                    }
                    Err(_) => {
                        metrics.http.reject(kind.label(), HttpRejectReason::connections);
                        if let Ok(permit) = reject_slots.clone().try_acquire_owned() {
                            conns.spawn(reject(stream, permit));
                        }
                        // else: dropped here, closed at once; the descriptor is back.
                    }
                }
            }
        }
    }
    drop(tcp);
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        debug!(
            listener = kind.label(),
            open = conns.len(),
            "closing connections still open at shutdown"
        );
        conns.abort_all();
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One served connection; its permit (and the gauge) is released when it ends.
struct Connection {
    builder: http1::Builder,
    router: Router,
    metrics: Arc<Metrics>,
    labels: ListenerLabels,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(self, stream: TcpStream, mut stop: watch::Receiver<bool>) {
        let gauge = self
            .metrics
            .http
            .connections
            .get_or_create(&self.labels)
            .clone();
        gauge.inc();
        let service = TowerToHyperService::new(self.router.clone());
        let conn = self.builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            // Timeouts, resets and malformed requests: the client's problem, not the agent's.
            debug!(listener = self.labels.listener, error = %e, "connection ended");
        }
        if gauge.dec() == 1 {
            release_memory();
        }
    }
}

/// Hands the heap pages freed by departed clients back to the kernel, once the last connection of
/// a listener closed. glibc's malloc (the static build's) keeps freed memory in its per-thread
/// arenas otherwise, and after a flood the RSS would stay near the flood's level. A trim costs
/// well under a millisecond at this heap size; a listener rarely drops to no connection more
/// often than Prometheus scrapes.
fn release_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The answer to a connection beyond the cap.
fn overloaded_response() -> Vec<u8> {
    let body = format!(
        r#"{{"error":{{"code":"overloaded","message":"too many open connections; retry in {RETRY_AFTER_SECS} s"}}}}"#
    );
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: {RETRY_AFTER_SECS}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers 503 and closes. The request head is awaited first (for at most [`REJECT_WAIT`]): a
/// client such as hyper refuses an answer that comes before its request. After the answer, what
/// the client still sends is drained, so the close is not a reset that could discard the answer
/// before the client reads it.
async fn reject(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    let deadline = tokio::time::Instant::now() + REJECT_WAIT;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REJECT_HEAD {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    let answered = tokio::time::timeout(REJECT_WAIT, async {
        stream.write_all(&overloaded_response()).await?;
        stream.shutdown().await?;
        while stream.read(&mut chunk).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
    if let Ok(Err(e)) = answered {
        debug!(error = %e, "answering a rejected connection");
    }
}

/// Logs once what the descriptor budget allows.
pub fn log_budget(nofile: u64, open: u64, configured: usize, effective: usize) {
    if effective < configured {
        warn!(
            nofile,
            open,
            configured,
            effective,
            "RLIMIT_NOFILE cannot hold --max-connections beside the store's reserve; serving fewer connections per listener"
        );
    } else {
        tracing::info!(nofile, open, max_connections = effective, "connection cap");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_the_store_reserve_and_splits_the_rest_between_listeners() {
        // A generous limit: the configured cap stands.
        assert_eq!(connection_budget(1 << 20, 40, 2, 256), Some(256));
        // nofile 256 with 40 open: (256 - 40 - 64) / 2 = 76 per listener, 16 of them for
        // rejections, 2 per connection.
        assert_eq!(connection_budget(256, 40, 2, 256), Some(30));
        let n = connection_budget(1024, 50, 2, 10_000).unwrap() as u64;
        assert!(50 + STORE_RESERVE + 2 * (REJECT_SLOTS as u64 + 2 * n) <= 1024);
        // Nothing left for HTTP.
        assert_eq!(connection_budget(100, 40, 2, 256), None);
        assert_eq!(connection_budget(30, 40, 2, 256), None);
    }

    #[test]
    fn the_overloaded_answer_is_a_complete_503_with_retry_after() {
        let text = String::from_utf8(overloaded_response()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("retry-after: {RETRY_AFTER_SECS}")));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "overloaded");
    }
}
