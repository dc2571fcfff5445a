//! What can go wrong loading, adopting or reading the flight recorder, with the tail of
//! libbpf's log (the verifier's, for a rejected program) captured during a load.

use std::path::PathBuf;
use std::sync::Mutex;

use libbpf_rs::{MapHandle, PrintLevel};

use super::pin::PinError;

/// Where the kernel publishes its own BTF; CO-RE relocations need it.
pub(super) const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Verifier log lines kept in a load error.
const LOG_TAIL_LINES: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("invalid recorder setting {setting}: {reason}")]
    Config {
        setting: &'static str,
        reason: String,
    },
    #[error(
        "the kernel has no BTF ({KERNEL_BTF} is missing): the recorder needs CONFIG_DEBUG_INFO_BTF"
    )]
    NoBtf,
    #[error("opening the BPF object: {0}")]
    Open(#[source] libbpf_rs::Error),
    #[error(
        "loading the BPF programs was refused (needs root, or CAP_BPF with CAP_PERFMON): {source}"
    )]
    Permission {
        #[source]
        source: libbpf_rs::Error,
    },
    #[error(
        "the kernel's verifier rejected a BPF program: {source}; verifier log tail:\n{log_tail}"
    )]
    Verifier {
        #[source]
        source: libbpf_rs::Error,
        log_tail: String,
    },
    #[error("loading the BPF programs: {source}{}", log_suffix(.log_tail))]
    Load {
        #[source]
        source: libbpf_rs::Error,
        log_tail: String,
    },
    #[error("attaching BPF program {program}: {source}")]
    Attach {
        program: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("{op} on BPF map {map}: {source}")]
    Map {
        op: &'static str,
        map: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("setting up the event ring buffer: {0}")]
    RingBuffer(#[source] libbpf_rs::Error),
    #[error("starting the event reader thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the pin directory: {0}")]
    Pin(#[from] PinError),
    #[error("pinning {what} at {path}: {source}")]
    Pinning {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: libbpf_rs::Error,
    },
}

fn log_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; libbpf log tail:\n{tail}")
    }
}

impl RecorderError {
    /// A stable name for metrics and reports.
    pub fn label(&self) -> &'static str {
        match self {
            RecorderError::Config { .. } => "config",
            RecorderError::NoBtf => "no_btf",
            RecorderError::Open(_) => "open",
            RecorderError::Permission { .. } => "permission",
            RecorderError::Verifier { .. } => "verifier",
            RecorderError::Load { .. } => "load",
            RecorderError::Attach { .. } => "attach",
            RecorderError::Map { .. } => "map",
            RecorderError::RingBuffer(_) => "ring_buffer",
            RecorderError::Thread(_) => "thread",
            RecorderError::Pin(_) => "pin",
            RecorderError::Pinning { .. } => "pinning",
        }
    }
}

pub(super) fn map_err(
    op: &'static str,
    map: &'static str,
) -> impl FnOnce(libbpf_rs::Error) -> RecorderError {
    move |source| RecorderError::Map { op, map, source }
}

/// libbpf's messages during one load, for the error. Loads are serialised by [`LOAD_LOCK`].
static LOAD_LOG: Mutex<String> = Mutex::new(String::new());
static LOAD_LOCK: Mutex<()> = Mutex::new(());

fn capture_print(_level: PrintLevel, msg: String) {
    if let Ok(mut log) = LOAD_LOG.lock() {
        // The verifier log of a big program can run to megabytes; the tail is what matters.
        if log.len() > 1 << 20 {
            let cut = log.len() - (1 << 19);
            let cut = (cut..log.len())
                .find(|&i| log.is_char_boundary(i))
                .unwrap_or(log.len());
            log.drain(..cut);
        }
        log.push_str(&msg);
    }
}

fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// Runs `f` with libbpf's messages captured; returns them with `f`'s result.
pub(super) fn with_libbpf_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    let _serial = LOAD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Ok(mut log) = LOAD_LOG.lock() {
        log.clear();
    }
    let previous = libbpf_rs::set_print(Some((PrintLevel::Info, capture_print)));
    let out = f();
    libbpf_rs::set_print(previous);
    let log = LOAD_LOG
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default();
    (out, log)
}

pub(super) fn classify_load_error(source: libbpf_rs::Error, log: &str) -> RecorderError {
    let log_tail = log_tail(log);
    if log.contains("BEGIN PROG LOAD LOG") {
        RecorderError::Verifier { source, log_tail }
    } else if source.kind() == libbpf_rs::ErrorKind::PermissionDenied {
        RecorderError::Permission { source }
    } else {
        RecorderError::Load { source, log_tail }
    }
}

/// A map's own fd, duplicated, so it outlives the skeleton.
pub(super) fn handle(
    map: &libbpf_rs::MapMut<'_>,
    name: &'static str,
) -> Result<MapHandle, RecorderError> {
    MapHandle::try_from(map).map_err(map_err("duplicating the fd of", name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let log: String = (0..100).map(|i| format!("line {i}\n\n")).collect();
        let tail = log_tail(&log);
        assert_eq!(tail.lines().count(), LOG_TAIL_LINES);
        assert!(tail.ends_with("line 99"));
    }
}
