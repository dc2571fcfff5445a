//! The store's retry task: while the store is failing, writes the reports it queued, oldest
//! first, every 100 ms doubling to 5 s; each one written is counted and logged like any stored
//! report. Idle (waiting on a wake-up) while the store is healthy.

use std::sync::Arc;
use std::time::Duration;

use tracing::error;

use super::{finish, Shared};
use crate::store::Retried;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The wait after a retry that left reports queued.
fn next_backoff(d: Duration) -> Duration {
    (d * 2).min(BACKOFF_MAX)
}

pub(super) async fn run(shared: Arc<Shared>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        // Also failing with nothing queued: a fault seen at open, which a probe clears.
        if shared.store.status().failing.is_none() {
            backoff = BACKOFF_MIN;
            shared.store_retry.notified().await;
            continue;
        }
        tokio::time::sleep(backoff).await;
        let retried = retry_once(&shared).await;
        backoff = if retried.remaining == 0 {
            BACKOFF_MIN
        } else {
            next_backoff(backoff)
        };
    }
}

async fn retry_once(shared: &Arc<Shared>) -> Retried {
    let store = shared.store.clone();
    let retried = tokio::task::spawn_blocking(move || store.retry_pending())
        .await
        .unwrap_or_else(|e| {
            error!(error = %e, "report retry task failed");
            Retried::default()
        });
    for (report, evicted) in &retried.written {
        finish::stored(shared, report, *evicted, None);
    }
    shared.update_store_gauges();
    retried
}

/// One last attempt at shutdown; what is still queued then is lost, and said so.
pub(super) async fn at_shutdown(shared: &Arc<Shared>) {
    if shared.store.status().pending == 0 {
        return;
    }
    let retried = retry_once(shared).await;
    if retried.remaining > 0 {
        let status = shared.store.status();
        error!(
            pending = retried.remaining,
            reason = status.failing.as_ref().map(|f| f.reason),
            error = status.failing.as_ref().map(|f| f.error.as_str()),
            "reports still queued at shutdown are lost: the data dir did not take writes"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_to_5s_and_stays() {
        let mut d = BACKOFF_MIN;
        let mut seen = vec![d];
        for _ in 0..8 {
            d = next_backoff(d);
            seen.push(d);
        }
        let ms: Vec<u128> = seen.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }
}
