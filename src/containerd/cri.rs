//! What the CRI plugin (kubelet's side of containerd, on the same socket) still knows about
//! containers that have exited: the exit code, kubelet's reason word (`OOMKilled`, `Error`,
//! `Completed`, `StartError`), the time, a message, and the log file. The CRI plugin keeps an
//! exited container until kubelet removes it, long after containerd deleted its task (20-100 ms
//! after the exit), so this is how exits that happened while the agent was away are found.
//!
//! The CRI's protobuf types stay in this file; the rest of coroner sees [`CriExit`]. The log
//! parsing ([`parse_cri_log`]) is pure and tested with captured lines.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerFilter, ContainerState, ContainerStateValue, ContainerStatusRequest,
    ListContainersRequest,
};
use tonic::transport::Channel;
use tonic::Request;

use super::client::{ClientError, Containerd, CALL_TIMEOUT};
use crate::model::{CapturedOutput, StreamCapture};

/// The containerd namespace the CRI plugin creates its containers in.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// Bytes of a log file read from its end for a recovered report's output.
pub const LOG_TAIL_BYTES: u64 = 64 * 1024;
/// Bytes of each stream kept, as the recorder keeps them (head and tail of 4 KiB).
const STREAM_KEEP: usize = 4096;

/// An exited container, as the CRI reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct CriExit {
    pub container_id: String,
    pub exit_code: i32,
    /// kubelet's reason word: `OOMKilled`, `Error`, `Completed`, `StartError`, ...
    pub reason: Option<String>,
    pub message: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: DateTime<Utc>,
    pub log_path: Option<String>,
}

fn nanos(n: i64) -> Option<DateTime<Utc>> {
    (n > 0).then(|| DateTime::from_timestamp_nanos(n))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl Containerd {
    /// Every exited container the CRI plugin still lists, with its status, except those
    /// `reported` already knows (one `ContainerStatus` call each is saved: kubelet keeps a few
    /// exited containers per pod).
    pub async fn cri_exits(
        &self,
        reported: &(dyn Fn(&str) -> bool + Send + Sync),
    ) -> Result<Vec<CriExit>, ClientError> {
        exited(self.channel.clone(), reported).await
    }
}

async fn exited(
    channel: Channel,
    reported: &(dyn Fn(&str) -> bool + Send + Sync),
) -> Result<Vec<CriExit>, ClientError> {
    let mut client = RuntimeServiceClient::new(channel);
    let mut req = Request::new(ListContainersRequest {
        filter: Some(ContainerFilter {
            state: Some(ContainerStateValue {
                state: ContainerState::ContainerExited as i32,
            }),
            ..Default::default()
        }),
    });
    req.set_timeout(CALL_TIMEOUT);
    let listed = client
        .list_containers(req)
        .await
        .map_err(|status| ClientError::Call {
            call: "RuntimeService.ListContainers",
            status,
        })?
        .into_inner()
        .containers;
    let mut out = Vec::with_capacity(listed.len());
    for c in listed.into_iter().filter(|c| !reported(&c.id)) {
        let mut req = Request::new(ContainerStatusRequest {
            container_id: c.id.clone(),
            verbose: false,
        });
        req.set_timeout(CALL_TIMEOUT);
        let status = match client.container_status(req).await {
            Ok(r) => r.into_inner().status,
            // Removed between the list and the status: nothing left to report from.
            Err(s) if s.code() == tonic::Code::NotFound => continue,
            Err(status) => {
                return Err(ClientError::Call {
                    call: "RuntimeService.ContainerStatus",
                    status,
                })
            }
        };
        // No finish time: never ran (a create that failed), no exit to report.
        if let Some(exit) = status.and_then(cri_exit) {
            out.push(exit);
        }
    }
    Ok(out)
}

fn cri_exit(s: k8s_cri::v1::ContainerStatus) -> Option<CriExit> {
    let finished_at = nanos(s.finished_at)?;
    Some(CriExit {
        container_id: s.id,
        exit_code: s.exit_code,
        reason: non_empty(s.reason),
        message: non_empty(s.message),
        created_at: nanos(s.created_at),
        started_at: nanos(s.started_at),
        finished_at,
        log_path: non_empty(s.log_path),
    })
}

/// kubelet's reason word (and the CRI plugin's) for a container whose process runc could not
/// start: the exit code is 128 and the message is the runtime's error.
pub const START_ERROR: &str = "StartError";

/// What the CRI says of a container it created and has not seen start.
#[derive(Debug, Clone, PartialEq)]
pub enum CriStart {
    /// Still `CREATED`: StartContainer has not been called, or is under way.
    Pending,
    /// Its process ran (running, or exited after a start): its task events tell the rest.
    Started,
    /// runc could not start it (`StartError`): no task event will ever come.
    Failed(CriExit),
    /// Not a CRI container (a sandbox), or already removed.
    Unknown,
}

impl Containerd {
    /// Whether a created CRI container started, for containers that have had no task event.
    pub async fn cri_start(&self, container_id: &str) -> Result<CriStart, ClientError> {
        let mut client = RuntimeServiceClient::new(self.channel.clone());
        let mut req = Request::new(ContainerStatusRequest {
            container_id: container_id.to_string(),
            verbose: false,
        });
        req.set_timeout(CALL_TIMEOUT);
        let status = match client.container_status(req).await {
            Ok(r) => r.into_inner().status,
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(CriStart::Unknown),
            Err(status) => {
                return Err(ClientError::Call {
                    call: "RuntimeService.ContainerStatus",
                    status,
                })
            }
        };
        Ok(match status {
            None => CriStart::Unknown,
            Some(s) => start_outcome(s),
        })
    }
}

fn start_outcome(s: k8s_cri::v1::ContainerStatus) -> CriStart {
    let never_started = s.started_at == 0;
    if s.state == ContainerState::ContainerCreated as i32 {
        return CriStart::Pending;
    }
    if s.state == ContainerState::ContainerExited as i32 && never_started {
        // The CRI plugin marks a failed start exited, reason StartError, code 128.
        return match cri_exit(s) {
            Some(exit) => CriStart::Failed(exit),
            None => CriStart::Unknown,
        };
    }
    CriStart::Started
}

/// The last [`LOG_TAIL_BYTES`] of a log file, and whether the file was longer than that.
pub fn read_log_tail(path: &std::path::Path) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    f.take(LOG_TAIL_BYTES).read_to_end(&mut buf)?;
    Ok((buf, start > 0))
}

/// A container's output from the tail of its CRI log file (`<RFC3339Nano> <stdout|stderr>
/// <F|P> <text>` per line, `P` for a partial line continued on the next). Lines that do not parse
/// are kept as stdout text: the file is the container's words either way.
pub fn parse_cri_log(tail: &[u8], truncated_front: bool) -> CapturedOutput {
    let text = String::from_utf8_lossy(tail);
    let mut lines = text.split_inclusive('\n');
    if truncated_front {
        lines.next(); // the cut-off first line
    }
    let mut streams: HashMap<&str, String> = HashMap::new();
    for line in lines {
        let mut parts = line.splitn(4, ' ');
        let (Some(_time), Some(stream), Some(tag), Some(rest)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            streams.entry("stdout").or_default().push_str(line);
            continue;
        };
        let stream = if stream == "stderr" {
            "stderr"
        } else {
            "stdout"
        };
        let body = rest.strip_suffix('\n').unwrap_or(rest);
        let out = streams.entry(stream).or_default();
        out.push_str(body);
        if tag != "P" {
            out.push('\n');
        }
    }
    let capture = |s: Option<&String>| -> StreamCapture {
        let s = s.map(String::as_str).unwrap_or("");
        let total_bytes = s.len() as u64;
        if s.len() <= STREAM_KEEP {
            return StreamCapture {
                total_bytes,
                head: s.to_string(),
                tail: String::new(),
            };
        }
        let head_end = floor_char_boundary(s, STREAM_KEEP);
        let tail_start = ceil_char_boundary(s, s.len() - STREAM_KEEP);
        StreamCapture {
            total_bytes,
            head: s[..head_end].to_string(),
            tail: s[tail_start..].to_string(),
        }
    };
    CapturedOutput {
        captured_by: "cri-log".into(),
        stdout: capture(streams.get("stdout")),
        stderr: capture(streams.get("stderr")),
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from a CRI pod of the test harness (containerd 1.6, `sh -c 'echo out; echo err >&2;
    // exit 3'`).
    const LOG: &str = "2026-12-04T18:40:01.123456789Z stdout F out\n\
                       2026-12-04T18:40:01.123501234Z stderr F err\n";

    #[test]
    fn cri_log_lines_split_into_stdout_and_stderr() {
        let out = parse_cri_log(LOG.as_bytes(), false);
        assert_eq!(out.captured_by, "cri-log");
        assert_eq!(out.stdout.head, "out\n");
        assert_eq!(out.stderr.head, "err\n");
        assert_eq!(out.stderr.total_bytes, 4);
    }

    #[test]
    fn partial_lines_are_joined_and_a_cut_first_line_is_dropped() {
        let log = "ut of a cut line\n\
                   2026-12-04T18:40:01Z stderr P Error: first half, \n\
                   2026-12-04T18:40:01Z stderr F second half\n";
        let out = parse_cri_log(log.as_bytes(), true);
        assert_eq!(out.stderr.head, "Error: first half, second half\n");
        assert_eq!(out.stdout.head, "");
    }

    /// As the CRI plugin of containerd 1.6 answered ContainerStatus for a container whose
    /// entrypoint is not in the image (the harness, `command: ["/no/such/binary"]`).
    fn start_error_status() -> k8s_cri::v1::ContainerStatus {
        k8s_cri::v1::ContainerStatus {
            id: "a637c366".into(),
            state: ContainerState::ContainerExited as i32,
            created_at: 1_796_419_029_813_911_922,
            started_at: 0,
            finished_at: 1_796_419_030_329_489_940,
            exit_code: 128,
            reason: START_ERROR.into(),
            message:
                "failed to create containerd task: failed to create shim task: OCI runtime \
                      create failed: runc create failed: unable to start container process: exec: \
                      \"/no/such/binary\": stat /no/such/binary: no such file or directory: unknown"
                    .into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_start_error_is_a_failed_start_with_the_runtime_message() {
        let CriStart::Failed(exit) = start_outcome(start_error_status()) else {
            panic!("not a failed start");
        };
        assert_eq!(exit.exit_code, 128);
        assert_eq!(exit.reason.as_deref(), Some(START_ERROR));
        assert!(exit.message.unwrap().contains("stat /no/such/binary"));
        assert_eq!(exit.started_at, None);
    }

    #[test]
    fn created_and_started_containers_are_not_failed_starts() {
        let mut s = start_error_status();
        s.state = ContainerState::ContainerCreated as i32;
        s.finished_at = 0;
        assert_eq!(start_outcome(s.clone()), CriStart::Pending);
        s.state = ContainerState::ContainerRunning as i32;
        s.started_at = 1_796_419_030_000_000_000;
        assert_eq!(start_outcome(s.clone()), CriStart::Started);
        s.state = ContainerState::ContainerExited as i32;
        s.finished_at = 1_796_419_031_000_000_000;
        assert_eq!(start_outcome(s), CriStart::Started);
    }

    #[test]
    fn long_streams_keep_head_and_tail() {
        let mut log = String::new();
        for i in 0..2000 {
            log.push_str(&format!("2026-12-04T18:40:01Z stdout F line {i}\n"));
        }
        let out = parse_cri_log(log.as_bytes(), false);
        assert!(out.stdout.head.starts_with("line 0\n"));
        let tail = out.stdout.tail;
        assert!(tail.ends_with("line 1999\n"), "{tail}");
        assert!(out.stdout.total_bytes > 8192);
    }
}
