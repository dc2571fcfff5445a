//! The page of one report: the diagnosis first, then the evidence a reader checks it against
//! (identity, memory, cgroup figures, what the flight recorder saw, captured output). Pure.
//!
//! This file owns the page's layout only. Its wording comes from [`crate::render::words`], its
//! figures from [`crate::units`], and the cgroup table and process timeline are the postmortem's
//! own ([`crate::render::postmortem`]), so the page says what the Markdown and text say.

use chrono::{DateTime, Utc};

use super::doc;
use super::html::Html;
use super::layout::page;
use super::list::{cause_badge, exit_cell, identity};
use crate::model::{CapturedOutput, CrashReport, Diagnosis, Outcome, RecorderReport, SyscallEvent};
use crate::render::postmortem::{image_tag as image_tag_blocks, processes, resources_table};
use crate::render::words::{
    captured_by, confidence, errno_counts, fatal_signal, oom_victim, partial_note, recorder_gap,
    shell_join, statement_by, syscall_invocation, syscall_return, syscall_totals, ADVICE,
    NO_CGROUP_FIGURES, NO_DIAGNOSIS, RECOVERED,
};
use crate::units::{ago, bytes, duration_ms, exact, offset, percent, timestamp, whole_percent};

/// How many of the flight recorder's last syscalls the page shows.
pub const FLIGHT_RECORDER_TAIL: usize = 50;

pub fn render(r: &CrashReport, now: DateTime<Utc>) -> String {
    let who = identity(&r.summary());
    page(&who, |h| {
        h.el("h1", &[], &who);
        links(h, r);
        diagnosis(h, r);
        overview(h, r, now);
        image_tag(h, r);
        memory(h, r);
        cgroup_table(h, r);
        recorder(h, r);
        artifacts(h, r);
        collection_errors(h, r);
    })
}

fn links(h: &mut Html, r: &CrashReport) {
    let api = format!("/api/v1/crashes/{}", r.id);
    h.open("p", &[("class", "links small")])
        .link(&api, "JSON")
        .link(&format!("{api}?format=markdown"), "Markdown");
    if let Some(g) = r.summary().group_id {
        h.link(&format!("/groups/{g}"), "crash group");
    }
    h.link("/", "all crashes").close("p");
}

fn diagnosis(h: &mut Html, r: &CrashReport) {
    let Some(d) = &r.diagnosis else {
        h.el("div", &[("class", "notice")], NO_DIAGNOSIS);
        return;
    };
    let class = if r.outcome == Outcome::Completed {
        "diagnosis completed"
    } else {
        "diagnosis"
    };
    h.open("section", &[("class", class), ("id", "diagnosis")]);
    cause_badge(h, Some(d.cause));
    h.raw(" ")
        .el(
            "span",
            &[("class", "badge")],
            format_args!("{} confidence", confidence(d.confidence)),
        )
        .el("div", &[("class", "summary")], &d.summary);
    if let Some(st) = &d.statement {
        h.open("div", &[("class", "statement")])
            .el("strong", &[], statement_by(st))
            .raw(" ")
            .el("code", &[], &st.text)
            .raw(" ")
            .el("code", &[("class", "muted")], &st.field)
            .close("div");
    }
    if let Some(advice) = &d.advice {
        h.open("div", &[("class", "advice")])
            .el("strong", &[], ADVICE)
            .raw(" ")
            .text(advice)
            .close("div");
    }
    evidence(h, d);
    h.close("section");
}

fn evidence(h: &mut Html, d: &Diagnosis) {
    if d.evidence.is_empty() {
        return;
    }
    h.raw("<ul>");
    for e in &d.evidence {
        h.open("li", &[])
            .text(&e.fact)
            .raw(" ")
            .el("code", &[("class", "muted")], &e.field)
            .close("li");
    }
    h.raw("</ul>");
}

fn overview(h: &mut Html, r: &CrashReport, now: DateTime<Utc>) {
    let s = r.summary();
    let c = &r.container;
    let k = r.kubernetes.as_ref();
    h.el("h2", &[], "Identity and exit");
    h.raw("<table class=\"kv\"><tbody>");
    row(h, "namespace", &s.namespace);
    if let Some(k) = k {
        row(h, "pod", &k.pod);
        row(h, "container", &k.container);
        row(h, "attempt", opt(k.attempt));
    }
    row(h, "node", r.agent.node.as_deref().unwrap_or("unknown"));
    row(h, "image", c.image.as_deref().unwrap_or("unknown"));
    row(
        h,
        "image digest",
        c.image_digest.as_deref().unwrap_or("unknown"),
    );
    row(h, "container id", &c.id);
    row(h, "command", shell_join(&c.command));
    h.raw("<tr><th>exit</th><td>");
    exit_cell(h, r.exit.code, r.exit.signal_name.as_deref(), r.oom.killed);
    if r.exit.core_dumped == Some(true) {
        h.raw(" ")
            .el("span", &[("class", "badge warn")], "core dumped");
    }
    h.raw("</td></tr>");
    let exited = r.lifecycle.exited_at;
    row(
        h,
        "exited",
        format_args!("{} ({})", timestamp(exited), ago(exited, now)),
    );
    if let Some(ms) = r.lifecycle.runtime_ms {
        row(h, "ran for", duration_ms(ms));
    }
    if r.recovered {
        row(h, "recovered", RECOVERED);
    }
    row(
        h,
        "report",
        format_args!("{} (coroner {})", r.id, r.agent.version),
    );
    h.raw("</tbody></table>");
}

/// Whether the image reference still names what ran, as the postmortem says it.
fn image_tag(h: &mut Html, r: &CrashReport) {
    let Some(t) = &r.image_tag else {
        return;
    };
    h.open("section", &[("id", "image-tag")]);
    h.el("h2", &[], "Image tag");
    if t.is_stale() {
        h.el(
            "span",
            &[("class", "badge warn")],
            format_args!("tag {}", t.status.as_str()),
        );
    }
    doc::blocks(h, "image-tag-table", &image_tag_blocks(r));
    h.close("section");
}

fn row(h: &mut Html, name: &'static str, value: impl std::fmt::Display) {
    h.raw("<tr>")
        .el("th", &[], name)
        .el("td", &[("class", "wrap")], value)
        .raw("</tr>");
}

fn opt(v: Option<impl std::fmt::Display>) -> String {
    v.map_or_else(|| "unknown".to_string(), |v| v.to_string())
}

fn memory(h: &mut Html, r: &CrashReport) {
    h.el("h2", &[], "Memory");
    let limit = r.cgroup.limits.as_ref().and_then(|l| l.memory_limit_bytes);
    let peak = r.cgroup.usage.as_ref().and_then(|u| u.memory_peak_bytes);
    if let Some(pct) = peak.zip(limit).and_then(|(p, l)| whole_percent(p, l)) {
        let fill = match pct {
            100.. => "fill full",
            85..=99 => "fill high",
            _ => "fill",
        };
        let width = format!("width: {}%", pct.min(100));
        h.open(
            "div",
            &[("class", "bar"), ("title", "peak memory against the limit")],
        )
        .open("div", &[("class", fill), ("style", &width)])
        .close("div")
        .close("div");
    }
    h.el("p", &[("id", "memory")], memory_text(peak, limit));
    super::plot::memory_history(h, r);
}

/// `peak 20.0 MiB of 20.0 MiB (100.0%)`, `peak 3.1 MiB, no limit`.
pub fn memory_text(peak: Option<u64>, limit: Option<u64>) -> String {
    match (peak, limit) {
        (Some(p), Some(l)) => match percent(p, l) {
            Some(pct) => format!("peak {} of {} ({pct})", bytes(p), bytes(l)),
            None => format!("peak {}, limit {}", bytes(p), bytes(l)),
        },
        (Some(p), None) => format!("peak {}, no limit", bytes(p)),
        (None, Some(l)) => format!("peak not recorded, limit {}", bytes(l)),
        (None, None) => "peak not recorded, no limit".to_string(),
    }
}

/// The postmortem's Resources table.
fn cgroup_table(h: &mut Html, r: &CrashReport) {
    h.el("h2", &[], "cgroup limits and usage");
    match resources_table(r) {
        Some(table) => doc::blocks(h, "cgroup", &[table]),
        None => {
            h.el("p", &[("class", "muted")], NO_CGROUP_FIGURES);
        }
    }
}

fn recorder(h: &mut Html, r: &CrashReport) {
    h.el("h2", &[], "Flight recorder");
    if let Some(note) = partial_note(r.recorder.as_ref()) {
        h.el("p", &[("class", "notice"), ("id", "recorder-state")], note);
    }
    if let Some(gap) = recorder_gap(r.recorder.as_ref()) {
        h.el("p", &[("class", "notice"), ("id", "recorder-state")], gap);
    }
    let Some(rec) = &r.recorder else { return };
    // What killed it and what it said come first; the syscall detail follows.
    signal(h, rec);
    if let Some(stack) = &rec.crash_stack {
        h.el("h3", &[], "Crash stack");
        doc::blocks(
            h,
            "crash-stack",
            &crate::render::postmortem::crash_stack(stack),
        );
    }
    victim(h, rec);
    output(h, rec.output.as_ref());
    failures(
        h,
        "First failures",
        &rec.first_failures,
        r.lifecycle.exited_at,
    );
    flight_tail(h, rec, r.lifecycle.exited_at);
    timeline(h, r);
    syscall_summary(h, rec);
}

fn signal(h: &mut Html, rec: &RecorderReport) {
    let Some(f) = &rec.fatal_signal else { return };
    h.el("h3", &[], "Fatal signal")
        .open("p", &[("id", "fatal-signal")]);
    doc::line(h, &fatal_signal(f));
    h.close("p");
}

fn victim(h: &mut Html, rec: &RecorderReport) {
    let Some(v) = &rec.oom_victim else { return };
    h.el("h3", &[], "OOM victim")
        .open("p", &[("id", "oom-victim")]);
    doc::line(h, &oom_victim(v));
    h.close("p");
}

/// The postmortem's process timeline, when the recorder saw processes.
fn timeline(h: &mut Html, r: &CrashReport) {
    if r.recorder
        .as_ref()
        .is_none_or(|rec| rec.processes.is_empty())
    {
        return;
    }
    h.el("h3", &[], "Process timeline");
    doc::blocks(h, "timeline", &processes(r));
}

fn syscall_summary(h: &mut Html, rec: &RecorderReport) {
    if rec.summary.is_empty() {
        return;
    }
    h.el("h3", &[], "Syscalls")
        .open("p", &[("class", "muted small")]);
    doc::line(h, &syscall_totals(rec));
    h.close("p");
    h.raw("<table id=\"syscalls\"><thead><tr><th>syscall</th><th class=\"num\">calls</th>")
        .raw("<th class=\"num\">errors</th><th>errnos</th></tr></thead><tbody>");
    for s in &rec.summary {
        let class = if s.errors > 0 { "failed" } else { "" };
        h.open("tr", &[("class", class)])
            .el("td", &[("class", "mono")], &s.syscall)
            .el("td", &[("class", "num")], s.calls)
            .el("td", &[("class", "num")], s.errors)
            .el("td", &[("class", "mono")], errnos(s))
            .raw("</tr>");
    }
    h.raw("</tbody></table>");
}

/// `ENOENT 3, EAGAIN 2`, most frequent first, as in the postmortem.
fn errnos(s: &crate::model::SyscallStat) -> String {
    let parts: Vec<String> = errno_counts(s)
        .into_iter()
        .map(|(e, n)| format!("{e} {n}"))
        .collect();
    parts.join(", ")
}

fn failures(h: &mut Html, title: &'static str, events: &[SyscallEvent], exited: DateTime<Utc>) {
    if events.is_empty() {
        return;
    }
    h.el("h3", &[], title);
    syscall_table(h, "first-failures", events, exited);
}

fn flight_tail(h: &mut Html, rec: &RecorderReport, exited: DateTime<Utc>) {
    let all = &rec.flight_recorder;
    if all.is_empty() {
        return;
    }
    let tail = &all[all.len().saturating_sub(FLIGHT_RECORDER_TAIL)..];
    h.el("h3", &[], "Last syscalls before the exit").el(
        "p",
        &[("class", "muted small")],
        format_args!(
            "The last {} of {} kept ({} older ones overwritten); times relative to the exit; failed calls highlighted.",
            tail.len(),
            all.len(),
            rec.flight_recorder_overwritten
        ),
    );
    syscall_table(h, "flight-recorder", tail, exited);
}

fn syscall_table(h: &mut Html, id: &'static str, events: &[SyscallEvent], exited: DateTime<Utc>) {
    h.open("table", &[("id", id)]).raw(
        "<thead><tr><th>time</th><th>process</th><th>call</th><th>result</th></tr></thead><tbody>",
    );
    for e in events {
        let class = if e.errno.is_some() { "failed" } else { "" };
        h.open("tr", &[("class", class)])
            .el(
                "td",
                &[("class", "nowrap mono"), ("title", &exact(e.time))],
                offset(exited, e.time),
            )
            .el(
                "td",
                &[("class", "nowrap mono")],
                format_args!("{}[{}]", e.comm, e.tid),
            )
            .el("td", &[("class", "mono wrap")], syscall_invocation(e))
            .el(
                "td",
                &[("class", "nowrap mono")],
                format_args!("= {}", syscall_return(e)),
            )
            .raw("</tr>");
    }
    h.raw("</tbody></table>");
}

fn output(h: &mut Html, out: Option<&CapturedOutput>) {
    let Some(out) = out else { return };
    h.el("h3", &[], "Output")
        .el("p", &[("class", "muted small")], captured_by(out));
    for (name, s) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        h.open("h3", &[]).text(name).raw(" ");
        h.el(
            "span",
            &[("class", "muted small")],
            format_args!("{} written", bytes(s.total_bytes)),
        )
        .close("h3");
        if s.total_bytes == 0 {
            h.el("p", &[("class", "muted")], "nothing written");
            continue;
        }
        h.el("pre", &[("id", name)], &s.head);
        if !s.tail.is_empty() {
            let skipped = s
                .total_bytes
                .saturating_sub((s.head.len() + s.tail.len()) as u64);
            h.el(
                "p",
                &[("class", "muted small")],
                format_args!("… {} not kept …", bytes(skipped)),
            );
            h.el("pre", &[], &s.tail);
        }
    }
}

/// The kept post-mortem files, each a link to its bytes, with their key lines.
fn artifacts(h: &mut Html, r: &CrashReport) {
    let Some(a) = &r.artifacts else { return };
    h.el("h2", &[], "Crash artifacts");
    if let Some(u) = &a.unavailable {
        h.el(
            "p",
            &[("class", "muted")],
            format_args!("The container's filesystem could not be read: {u}"),
        );
    }
    if !a.files.is_empty() {
        h.raw("<ul id=\"artifacts\">");
        for f in &a.files {
            let url = crate::render::postmortem::artifact_url(r, &f.name);
            h.open("li", &[]).link(&url, &f.name).text(" ");
            h.el(
                "span",
                &[("class", "muted small")],
                format_args!(
                    "{} · {} · {}{}{}",
                    f.path,
                    f.kind.as_str(),
                    bytes(f.size_bytes),
                    if f.truncated {
                        format!(" (first {} kept)", bytes(f.kept_bytes))
                    } else {
                        String::new()
                    },
                    if f.redacted { " · redacted" } else { "" },
                ),
            );
            if !f.key_lines.is_empty() {
                h.raw("<ul>");
                for k in &f.key_lines {
                    h.open("li", &[])
                        .text(&k.label)
                        .text(": ")
                        .el("code", &[], &k.text)
                        .close("li");
                }
                h.raw("</ul>");
            }
            h.close("li");
        }
        h.raw("</ul>");
    }
    if !a.skipped.is_empty() {
        h.el("p", &[("class", "muted small")], "Found and not kept:");
        h.raw("<ul>");
        for s in &a.skipped {
            h.open("li", &[])
                .el("code", &[], &s.path)
                .text(": ")
                .text(&s.reason)
                .close("li");
        }
        h.raw("</ul>");
    }
    if a.files.is_empty() && a.skipped.is_empty() && a.unavailable.is_none() {
        h.el("p", &[("class", "muted")], "None found.");
    }
}

fn collection_errors(h: &mut Html, r: &CrashReport) {
    if r.collection_errors.is_empty() {
        return;
    }
    h.el("h2", &[], "Collection errors");
    h.raw("<ul id=\"collection-errors\">");
    for e in &r.collection_errors {
        h.open("li", &[])
            .el("code", &[], &e.stage)
            .text(": ")
            .text(&e.message)
            .close("li");
    }
    h.raw("</ul>");
}

#[cfg(test)]
mod tests;
