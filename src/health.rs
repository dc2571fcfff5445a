//! What the agent says of its own health: readiness, the containerd connection and the flight
//! recorder's state. The agent writes it; `/readyz` reads it. No I/O.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::model::RecorderState;

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

    pub fn last_disconnect(&self) -> Option<String> {
        self.last_disconnect
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
