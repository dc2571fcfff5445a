//! What the agent says of its own health: readiness, the containerd connection, the flight
//! recorder's state and whether reports are being written. The agent writes it; `/readyz` reads
//! it. No I/O.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::model::RecorderState;
use crate::store::StoreStatus;

pub struct Health {
    /// The first subscription and reconcile succeeded.
    ready: AtomicBool,
    /// The event stream is up right now.
    connected: AtomicBool,
    last_disconnect: Mutex<Option<String>>,
    /// containerd's socket, as configured.
    pub socket: PathBuf,
    /// Fixed at start-up: the recorder loads before serving, or says why not.
    pub recorder_state: RecorderState,
    pub recorder_reason: Option<String>,
    /// The report store as last seen after a write or a retry.
    store: Mutex<StoreStatus>,
}

impl Health {
    pub fn new(socket: PathBuf, recorder: (RecorderState, Option<&str>)) -> Health {
        Health {
            ready: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            last_disconnect: Mutex::new(None),
            socket,
            recorder_state: recorder.0,
            recorder_reason: recorder.1.map(str::to_string),
            store: Mutex::new(StoreStatus::default()),
        }
    }

    /// Subscribed and reconciled: ready from now on.
    pub fn connected(&self) {
        self.connected.store(true, Ordering::Relaxed);
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn disconnected(&self, reason: String) {
        self.connected.store(false, Ordering::Relaxed);
        *self
            .last_disconnect
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(reason);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn set_store(&self, status: StoreStatus) {
        *self.store.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }

    /// Failing while writes fail, until every queued report is written: not ready then.
    pub fn store(&self) -> StoreStatus {
        self.store.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn last_disconnect(&self) -> Option<String> {
        self.last_disconnect
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
