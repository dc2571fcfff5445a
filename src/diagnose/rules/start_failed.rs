//! `start_failed`: the container's process never started. runc failed while setting it up (the
//! entrypoint not found, a user or group the kernel refused, a mount whose source is gone), the
//! CRI recorded reason `StartError` with runc's message and code 128, and kubelet shows
//! `RunContainerError`. No program of the image ran, so nothing else in the report explains more
//! than runc's own words, and the exit code says nothing.

use super::Rule;
use crate::diagnose::evidence::{call, clip, diagnosis, ev};
use crate::diagnose::facts::{failed, Facts};
use crate::model::{Cause, Confidence, Diagnosis};

/// The CRI plugin's reason for a failed start (`crate::containerd::cri::START_ERROR`; the model
/// does not import the sources).
const START_ERROR: &str = "StartError";

pub(in crate::diagnose) struct StartFailed;

impl Rule for StartFailed {
    fn name(&self) -> &'static str {
        "start_failed"
    }

    fn diagnose(&self, f: &Facts) -> Option<Diagnosis> {
        let cri = f.r.cri.as_ref()?;
        if cri.reason.as_deref() != Some(START_ERROR) {
            return None;
        }
        let message = cri.message.as_deref().unwrap_or_default();
        let error = runtime_error(message);
        let mut evidence = vec![ev(
            "the CRI recorded StartError: runc could not start the container's process",
            "/cri/reason",
        )];
        if !message.is_empty() {
            evidence.push(ev(
                format!("the runtime said: {}", clip(message, 400)),
                "/cri/message",
            ));
        }
        // What the recorder saw of runc's attempt, when it recorded it: the exec of the
        // entrypoint, else runc init's last failing call.
        let runc_failure = f.entrypoint_exec_failure.clone().or_else(|| {
            let rec = f.rec?;
            let (i, e) = rec
                .flight_recorder
                .iter()
                .enumerate()
                .rev()
                .find(|(_, e)| e.comm.starts_with("runc:[2:INIT]") && failed(e))?;
            Some((format!("/recorder/flight_recorder/{i}"), e))
        });
        if let Some((field, e)) = &runc_failure {
            let errno = e.errno.as_deref().unwrap_or_default();
            evidence.push(ev(
                format!("the recorder saw runc's {} = {errno}", call(e)),
                field,
            ));
        }
        evidence.push(f.exit_evidence());
        let summary = match error.is_empty() {
            true => "Never started: runc could not start the process (StartError, no message)"
                .to_string(),
            false => format!(
                "Never started: runc could not start the process: {}",
                clip(&error, 240)
            ),
        };
        let key = (!error.is_empty()).then(|| stable(&error));
        Some(diagnosis(
            Cause::StartFailed,
            Confidence::High,
            summary,
            evidence,
            key,
        ))
    }
}

/// runc's own error out of the chain containerd wraps it in: `failed to create containerd task:
/// failed to create shim task: OCI runtime create failed: runc create failed: unable to start
/// container process: exec: "x": executable file not found in $PATH: unknown` says
/// `exec: "x": executable file not found in $PATH`.
fn runtime_error(message: &str) -> String {
    let inner = [
        "unable to start container process: ",
        "runc create failed: ",
        "OCI runtime create failed: ",
        "failed to create shim task: ",
    ]
    .iter()
    .find_map(|prefix| message.rfind(prefix).map(|i| &message[i + prefix.len()..]))
    .unwrap_or(message);
    // The gRPC code containerd appends.
    inner
        .trim()
        .strip_suffix(": unknown")
        .unwrap_or(inner.trim())
        .to_string()
}

/// The error without what differs between attempts of one workload: container ids (in the
/// bundle and rootfs paths of a mount error).
fn stable(error: &str) -> String {
    let mut out = String::with_capacity(error.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 32 {
            out.push_str("<id>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in error.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::testing::{check, fixture};
    use crate::model::CriStatus;

    // Runtime messages as the CRI plugin of containerd 1.6 (runc 1.1.5) recorded them for
    // CRI containers of the test harness.
    const NOT_IN_PATH: &str = "failed to create containerd task: failed to create shim task: OCI \
        runtime create failed: runc create failed: unable to start container process: exec: \
        \"nosuchcmd\": executable file not found in $PATH: unknown";
    const MOUNT: &str = "failed to create containerd task: failed to create shim task: OCI \
        runtime create failed: runc create failed: unable to start container process: error \
        during container init: error mounting \"/tmp/gone\" to rootfs at \"/data\": stat \
        /tmp/gone: no such file or directory: unknown";

    #[test]
    fn a_start_error_is_start_failed_with_runcs_words() {
        let mut r = fixture("exited_error_no_recorder");
        r.exit = crate::model::ExitStatus::from_containerd(128);
        r.cri = Some(CriStatus {
            reason: Some("StartError".into()),
            message: Some(NOT_IN_PATH.into()),
        });
        let d = check(&r);
        assert_eq!(d.cause, Cause::StartFailed);
        assert_eq!(d.confidence, Confidence::High);
        assert_eq!(
            d.summary,
            "Never started: runc could not start the process: exec: \"nosuchcmd\": executable \
             file not found in $PATH"
        );
        assert_eq!(
            d.key.as_deref(),
            Some("exec: \"nosuchcmd\": executable file not found in $PATH")
        );
        assert!(d.evidence.iter().any(|e| e.field == "/cri/message"));
    }

    #[test]
    fn other_cri_reasons_are_left_to_the_other_rules() {
        let mut r = fixture("exited_error_no_recorder");
        r.cri = Some(CriStatus {
            reason: Some("Error".into()),
            message: None,
        });
        assert_ne!(check(&r).cause, Cause::StartFailed);
    }

    #[test]
    fn the_key_is_the_same_for_every_attempt() {
        let a = MOUNT.replace(
            "/tmp/gone",
            &format!("/run/k8s.io/{}/rootfs", "ab12".repeat(16)),
        );
        let b = MOUNT.replace(
            "/tmp/gone",
            &format!("/run/k8s.io/{}/rootfs", "cd34".repeat(16)),
        );
        assert_eq!(stable(&runtime_error(&a)), stable(&runtime_error(&b)));
        assert!(stable(&runtime_error(&a)).starts_with(
            "error during container init: error mounting \"/run/k8s.io/<id>/rootfs\""
        ));
    }
}
