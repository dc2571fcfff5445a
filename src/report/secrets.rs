//! What a report withholds for secrecy, applied once to the assembled report before diagnosis:
//! every view (JSON, Markdown, text, HTML, the live feed, the crash list, groups, the summary
//! line) derives from the stored report, so none of them can show what was withheld here.
//!
//! Every string field that holds data the workload chose is covered: the command line, label
//! values, exec argv, decoded syscall arguments (paths, addresses) and captured stdout/stderr.
//! Environment values never get this far (only allow-listed ones are copied into the report).
//! What counts as a secret is `crate::redact`'s business.

use super::Redaction;
use crate::model::{CrashReport, StreamCapture, SyscallEvent};
use crate::redact::{redact_args, redact_labels, redact_text};

pub(super) fn withhold(report: &mut CrashReport, redaction: &Redaction) {
    if !redaction.keep_args {
        report.container.command = redact_args(&report.container.command);
    }
    if !redaction.keep_labels {
        report.container.labels = redact_labels(&report.container.labels);
    }
    let Some(rec) = report.recorder.as_mut() else {
        return;
    };
    if !redaction.keep_args {
        for p in &mut rec.processes {
            if !p.argv.is_empty() {
                p.argv = redact_args(&p.argv);
            }
        }
        for e in rec
            .flight_recorder
            .iter_mut()
            .chain(rec.first_failures.iter_mut())
            .chain(rec.telling_failures.iter_mut())
        {
            redact_syscall(e);
        }
    }
    if !redaction.keep_output {
        if let Some(out) = rec.output.as_mut() {
            redact_stream(&mut out.stdout);
            redact_stream(&mut out.stderr);
        }
    }
}

fn redact_syscall(e: &mut SyscallEvent) {
    for a in &mut e.args {
        if let std::borrow::Cow::Owned(s) = redact_text(a) {
            *a = s;
        }
    }
}

fn redact_stream(s: &mut StreamCapture) {
    for text in [&mut s.head, &mut s.tail] {
        if let std::borrow::Cow::Owned(r) = redact_text(text) {
            *text = r;
        }
    }
}
