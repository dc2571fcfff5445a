//! The event subscription that outlives containerd restarts.
//!
//! Connects, subscribes, lists the tasks of every watched namespace (so that whatever happened
//! while disconnected can be reconciled), then forwards decoded events. When the stream ends it
//! backs off and starts over; containerd does not replay missed events, so the task list sent with
//! every [`WatchMsg::Connected`] is the only record of what happened in between.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::client::{ClientError, Containerd};
use super::cri::{CriExit, CRI_NAMESPACE};
use super::decode::{decode_envelope, topic_label, Decoded, TaskState};
use crate::metrics::{Metrics, TopicLabels};

/// Retries come fast and stay fast: containerd accepts again within a second of its restart, and
/// every moment the agent is away is exits it must recover instead of seeing. A failed connect
/// to a local socket costs microseconds, so a 100 ms ceiling costs nothing.
const BACKOFF_START: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(100);

/// What the watcher tells the agent.
#[derive(Debug)]
pub enum WatchMsg {
    /// A subscription is live; `tasks` is what each watched namespace lists right after it began,
    /// `cri_exits` the exited containers the CRI plugin still knows (when `k8s.io` is watched).
    Connected {
        client: Containerd,
        tasks: Vec<(String, TaskState)>,
        cri_exits: Vec<CriExit>,
        reconnect: bool,
    },
    Event {
        decoded: Decoded,
        received: Instant,
    },
    Disconnected {
        reason: String,
    },
}

pub struct Watcher {
    pub socket: PathBuf,
    /// Empty: every namespace.
    pub namespaces: Vec<String>,
    pub metrics: Arc<Metrics>,
    /// Containers that already have a report: their CRI status is not looked up again.
    pub reported: Reported,
}

/// Whether a container id already has a report.
pub type Reported = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl Watcher {
    /// Runs until the receiver is dropped.
    pub async fn run(self, tx: mpsc::Sender<WatchMsg>) {
        let mut backoff = BACKOFF_START;
        let mut connected_before = false;
        // Failed attempts since the stream was last up: the first is a warning, the rest debug.
        let mut failures = 0u32;
        loop {
            let started = Instant::now();
            let reason = match self.session(&tx, connected_before).await {
                Ok(SessionEnd::ReceiverGone) => return,
                Ok(SessionEnd::StreamEnded(reason)) => {
                    connected_before = true;
                    failures = 0;
                    reason
                }
                Err(e) => e.to_string(),
            };
            failures += 1;
            if tx
                .send(WatchMsg::Disconnected {
                    reason: reason.clone(),
                })
                .await
                .is_err()
            {
                return;
            }
            // A session that lived a while resets the backoff: this is a fresh failure.
            if started.elapsed() > BACKOFF_MAX * 2 {
                backoff = BACKOFF_START;
            }
            if failures == 1 {
                warn!(socket = %self.socket.display(), %reason, retry_in_ms = backoff.as_millis() as u64, "containerd event stream lost");
            } else {
                debug!(socket = %self.socket.display(), %reason, failures, "containerd still unreachable");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn session(
        &self,
        tx: &mpsc::Sender<WatchMsg>,
        reconnect: bool,
    ) -> Result<SessionEnd, ClientError> {
        let client = Containerd::connect(&self.socket).await?;
        let filters: Vec<String> = self
            .namespaces
            .iter()
            .map(|ns| format!("namespace=={ns}"))
            .collect();
        // containerd answers Subscribe with headers only when the first event arrives, so the call
        // runs in its own task. A unary round trip on the same connection afterwards means
        // containerd has read the Subscribe request (HTTP/2 frames are read in order) before the
        // task list below is taken, so nothing falls between the list and the stream.
        let subscribe = {
            let client = client.clone();
            AbortOnDrop(tokio::spawn(async move { client.subscribe(filters).await }))
        };
        client.version().await?;
        let namespaces = if self.namespaces.is_empty() {
            client.namespaces().await?
        } else {
            self.namespaces.clone()
        };
        let mut tasks = Vec::new();
        for ns in &namespaces {
            for t in client.tasks(ns).await? {
                tasks.push((ns.clone(), t));
            }
        }
        let cri_exits = if namespaces.iter().any(|ns| ns == CRI_NAMESPACE) {
            match client.cri_exits(self.reported.as_ref()).await {
                Ok(exits) => exits,
                Err(e) => {
                    // A containerd without the CRI plugin (or with it disabled): there is nothing
                    // beyond the task list to recover from.
                    self.metrics.collection_error("cri_list");
                    warn!(error = %e, "listing the CRI's exited containers failed; exits while the agent was away may be missed");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        if reconnect {
            self.metrics.reconnects.inc();
        }
        info!(namespaces = ?namespaces, tasks = tasks.len(), cri_exited = cri_exits.len(), reconnect, "subscribed to containerd events");
        if tx
            .send(WatchMsg::Connected {
                client,
                tasks,
                cri_exits,
                reconnect,
            })
            .await
            .is_err()
        {
            return Ok(SessionEnd::ReceiverGone);
        }
        let mut stream = match subscribe.join().await {
            Some(result) => result?,
            None => return Ok(SessionEnd::StreamEnded("subscription task failed".into())),
        };
        loop {
            match stream.message().await {
                Ok(Some(envelope)) => {
                    let received = Instant::now();
                    self.metrics
                        .events_received
                        .get_or_create(&TopicLabels {
                            topic: topic_label(&envelope.topic),
                        })
                        .inc();
                    match decode_envelope(&envelope) {
                        Ok(decoded) => {
                            debug!(topic = %decoded.topic, namespace = %decoded.namespace, "event");
                            if tx
                                .send(WatchMsg::Event { decoded, received })
                                .await
                                .is_err()
                            {
                                return Ok(SessionEnd::ReceiverGone);
                            }
                        }
                        Err(e) => {
                            self.metrics.collection_error(e.label());
                            warn!(error = %e, "undecodable containerd event skipped");
                        }
                    }
                }
                Ok(None) => {
                    return Ok(SessionEnd::StreamEnded(
                        "stream closed by containerd".into(),
                    ))
                }
                Err(status) => return Ok(SessionEnd::StreamEnded(status.to_string())),
            }
        }
    }
}

enum SessionEnd {
    ReceiverGone,
    StreamEnded(String),
}

/// Aborts the subscription task when a session ends early.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Option<T> {
        (&mut self.0).await.ok()
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
