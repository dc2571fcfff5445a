//! The page of one report: the diagnosis first, then the evidence a reader checks it against
//! (identity, memory, cgroup figures, what the flight recorder saw, captured output). Pure.

use chrono::{DateTime, Utc};

use super::html::Html;
use super::layout::page;
use super::list::{cause_badge, exit_cell, identity};
use super::units::{age, bytes, clock, micros, offset, percent, utc};
use crate::model::{
    CapturedOutput, CgroupLimits, CgroupUsage, Confidence, CrashReport, Diagnosis, Outcome,
    ProcessEvent, ProcessEventKind, RecorderReport, RecorderState, SignalOrigin, SyscallEvent,
    SyscallStat,
};

/// How many of the flight recorder's last syscalls the page shows.
pub const FLIGHT_RECORDER_TAIL: usize = 50;

pub fn render(r: &CrashReport, now: DateTime<Utc>) -> String {
    let who = identity(&r.summary());
    page(&who, |h| {
        h.el("h1", &[], &who);
        links(h, r);
        diagnosis(h, r);
        overview(h, r, now);
        memory(h, r);
        cgroup_table(h, r.cgroup.limits.as_ref(), r.cgroup.usage.as_ref());
        recorder(h, r);
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
        h.el(
            "div",
            &[("class", "notice")],
            "This report has no diagnosis.",
        );
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
            format_args!("{} confidence", confidence(d)),
        )
        .el("div", &[("class", "summary")], &d.summary);
    evidence(h, d);
    h.close("section");
}

fn confidence(d: &Diagnosis) -> &'static str {
    match d.confidence {
        Confidence::High => "high",
        Confidence::Medium => "medium",
        Confidence::Low => "low",
    }
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
    row(h, "command", shell_words(&c.command));
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
        format_args!("{} ({})", utc(exited), age(exited, now)),
    );
    if let Some(ms) = r.lifecycle.runtime_ms {
        row(h, "ran for", micros(ms.saturating_mul(1000)));
    }
    if r.recovered {
        row(
            h,
            "recovered",
            "found by reconciling after a disconnect; some figures may be missing",
        );
    }
    row(
        h,
        "report",
        format_args!("{} (coroner {})", r.id, r.agent.version),
    );
    h.raw("</tbody></table>");
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

/// argv as one line, words with spaces or quotes quoted, so where one ends is visible.
fn shell_words(argv: &[String]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|w| {
            if !w.is_empty() && !w.contains([' ', '\t', '\n', '"', '\'', '\\']) {
                w.clone()
            } else {
                format!("{w:?}")
            }
        })
        .collect();
    words.join(" ")
}

fn memory(h: &mut Html, r: &CrashReport) {
    h.el("h2", &[], "Memory");
    let limit = r.cgroup.limits.as_ref().and_then(|l| l.memory_limit_bytes);
    let peak = r.cgroup.usage.as_ref().and_then(|u| u.memory_peak_bytes);
    if let Some(pct) = peak.zip(limit).and_then(|(p, l)| percent(p, l)) {
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
}

/// `peak 20.0 MiB of 20.0 MiB (100%)`, `peak 3.1 MiB, no limit`.
pub fn memory_text(peak: Option<u64>, limit: Option<u64>) -> String {
    match (peak, limit) {
        (Some(p), Some(l)) => match percent(p, l) {
            Some(pct) => format!("peak {} of {} ({pct}%)", bytes(p), bytes(l)),
            None => format!("peak {}, limit {}", bytes(p), bytes(l)),
        },
        (Some(p), None) => format!("peak {}, no limit", bytes(p)),
        (None, Some(l)) => format!("peak not recorded, limit {}", bytes(l)),
        (None, None) => "peak not recorded, no limit".to_string(),
    }
}

fn cgroup_table(h: &mut Html, limits: Option<&CgroupLimits>, usage: Option<&CgroupUsage>) {
    h.el("h2", &[], "cgroup limits and usage");
    if limits.is_none() && usage.is_none() {
        h.el(
            "p",
            &[("class", "muted")],
            "No cgroup figures were collected (see collection errors).",
        );
        return;
    }
    let l = limits.cloned().unwrap_or_default();
    let u = usage.cloned().unwrap_or_default();
    let b = |v: Option<u64>| v.map(bytes);
    let n = |v: Option<u64>| v.map(|v| v.to_string());
    let us = |v: Option<u64>| v.map(micros);
    // A limit the cgroup can have reads "none" when unset; other rows have no limit column.
    let limit = |v: Option<String>| v.unwrap_or_else(|| "none".to_string());
    let cpu = l.cpu_quota_us.zip(l.cpu_period_us).filter(|(_, p)| *p > 0);
    let cpu_limit = cpu
        .map(|(q, p)| format!("{:.2} CPUs ({q} µs per {p} µs)", q as f64 / p as f64))
        .or_else(|| l.cpu_weight.map(|w| format!("no quota, weight {w}")))
        .or_else(|| l.cpu_shares.map(|s| format!("no quota, {s} shares")));
    let rows: [(&str, String, Option<String>); 11] = [
        (
            "memory",
            limit(b(l.memory_limit_bytes)),
            b(u.memory_current_bytes).map(|c| format!("{c} at exit")),
        ),
        ("memory peak", String::new(), b(u.memory_peak_bytes)),
        ("memory + swap", limit(b(l.memory_swap_limit_bytes)), None),
        (
            "times at the memory limit",
            String::new(),
            n(u.memory_failcnt),
        ),
        ("OOM kills", String::new(), n(u.oom_kill_count)),
        ("OOM events", String::new(), n(u.oom_count)),
        (
            "cpu",
            limit(cpu_limit),
            us(u.cpu_usage_usec).map(|c| format!("{c} used")),
        ),
        ("cpu throttling", String::new(), throttling(&u)),
        ("cpuset", l.cpuset_cpus.clone().unwrap_or_default(), None),
        ("pids", limit(n(l.pids_max)), pids(&u)),
        (
            "forks refused at pids.max",
            String::new(),
            n(u.pids_max_events),
        ),
    ];
    h.raw("<table><thead><tr><th>resource</th><th>limit</th><th>usage</th></tr></thead><tbody>");
    for (name, limit, used) in rows {
        if limit.is_empty() && used.is_none() {
            continue;
        }
        h.raw("<tr>")
            .el("td", &[], name)
            .el("td", &[], limit)
            .el("td", &[], used.as_deref().unwrap_or(""))
            .raw("</tr>");
    }
    h.raw("</tbody></table>");
}

fn throttling(u: &CgroupUsage) -> Option<String> {
    let (periods, throttled) = (u.cpu_nr_periods?, u.cpu_nr_throttled?);
    let time = u
        .cpu_throttled_usec
        .map_or(String::new(), |t| format!(", {}", micros(t)));
    Some(format!("{throttled} of {periods} periods{time}"))
}

fn pids(u: &CgroupUsage) -> Option<String> {
    match (u.pids_current, u.pids_peak) {
        (c, Some(p)) => Some(format!(
            "peak {p}{}",
            c.map_or(String::new(), |c| format!(", {c} at exit"))
        )),
        (Some(c), None) => Some(format!("{c} at exit")),
        (None, None) => None,
    }
}

fn recorder(h: &mut Html, r: &CrashReport) {
    h.el("h2", &[], "Flight recorder");
    let Some(rec) = &r.recorder else {
        h.el(
            "p",
            &[("class", "notice")],
            "No flight recorder data: this report was written before the recorder existed.",
        );
        return;
    };
    if rec.state == RecorderState::Partial {
        let reason = rec.reason.as_deref().unwrap_or("no reason given");
        h.el(
            "p",
            &[("class", "notice"), ("id", "recorder-state")],
            format_args!("Partial recording: {reason}"),
        );
    } else if rec.state != RecorderState::Recorded {
        let reason = rec.reason.as_deref().unwrap_or("no reason given");
        h.el(
            "p",
            &[("class", "notice"), ("id", "recorder-state")],
            format_args!("No syscall data ({}): {reason}", state(rec.state)),
        );
    }
    // What killed it and what it said come first; the syscall detail follows.
    fatal_signal(h, rec);
    oom_victim(h, rec);
    output(h, rec.output.as_ref());
    failures(
        h,
        "First failures",
        &rec.first_failures,
        r.lifecycle.exited_at,
    );
    flight_tail(h, rec, r.lifecycle.exited_at);
    timeline(h, rec);
    syscall_summary(h, rec);
}

fn state(s: RecorderState) -> &'static str {
    match s {
        RecorderState::Recorded => "recorded",
        RecorderState::Partial => "partial",
        RecorderState::NoData => "no data",
        RecorderState::Unavailable => "recorder unavailable",
        RecorderState::Disabled => "recorder disabled",
    }
}

fn fatal_signal(h: &mut Html, rec: &RecorderReport) {
    let Some(f) = &rec.fatal_signal else { return };
    let origin = match f.origin {
        SignalOrigin::Container => "a process in the container",
        SignalOrigin::Host => "a process on the host",
        SignalOrigin::KernelOom => "the kernel's OOM killer",
        SignalOrigin::KernelFault => "the kernel, for a fault of the process",
        SignalOrigin::Kernel => "the kernel",
    };
    let sender = match (f.sender_pid, &f.sender_comm) {
        (Some(pid), Some(comm)) => format!(" ({comm}, pid {pid})"),
        (Some(pid), None) => format!(" (pid {pid})"),
        _ => String::new(),
    };
    h.el("h3", &[], "Fatal signal").el(
        "p",
        &[("id", "fatal-signal")],
        format_args!("{} from {origin}{sender} at {}", f.signal, clock(f.time)),
    );
}

fn oom_victim(h: &mut Html, rec: &RecorderReport) {
    let Some(v) = &rec.oom_victim else { return };
    let which = if v.was_init {
        "the container's init process"
    } else {
        "not the init process"
    };
    h.el("h3", &[], "OOM victim").el(
        "p",
        &[("id", "oom-victim")],
        format_args!(
            "{} (pid {}, {which}), {} resident, chosen at {}",
            v.comm,
            v.pid,
            bytes(v.rss_bytes),
            clock(v.time)
        ),
    );
}

fn timeline(h: &mut Html, rec: &RecorderReport) {
    let Some(first) = rec.processes.first() else {
        return;
    };
    h.el("h3", &[], "Process timeline");
    h.raw(
        "<table id=\"timeline\"><thead><tr><th>time</th><th>event</th><th class=\"num\">pid</th>",
    )
    .raw("<th>comm</th><th>detail</th></tr></thead><tbody>");
    for p in &rec.processes {
        h.raw("<tr>")
            .el(
                "td",
                &[("class", "nowrap mono"), ("title", &precise(p.time))],
                offset(first.time, p.time),
            )
            .el("td", &[], kind(p.kind))
            .el("td", &[("class", "num")], p.pid)
            .el("td", &[("class", "mono")], &p.comm)
            .el("td", &[("class", "mono wrap")], process_detail(p))
            .raw("</tr>");
    }
    h.raw("</tbody></table>");
}

/// The full timestamp, for a tooltip.
fn precise(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn kind(k: ProcessEventKind) -> &'static str {
    match k {
        ProcessEventKind::Fork => "fork",
        ProcessEventKind::Exec => "exec",
        ProcessEventKind::Exit => "exit",
    }
}

/// `forked by 23484`, `/bin/tail tail /dev/zero`, `killed by SIGKILL (core dumped)`.
fn process_detail(p: &ProcessEvent) -> String {
    match p.kind {
        ProcessEventKind::Fork => p
            .ppid
            .map_or_else(String::new, |pp| format!("forked by {pp}")),
        ProcessEventKind::Exec => {
            let file = p.filename.as_deref().unwrap_or("?");
            format!("{} ({file})", shell_words(&p.argv))
        }
        ProcessEventKind::Exit => {
            let core = if p.core_dumped == Some(true) {
                " (core dumped)"
            } else {
                ""
            };
            match (&p.signal, p.exit_code) {
                (Some(sig), _) => format!("killed by {sig}{core}"),
                (None, Some(code)) => format!("exit {code}"),
                (None, None) => String::new(),
            }
        }
    }
}

fn syscall_summary(h: &mut Html, rec: &RecorderReport) {
    if rec.summary.is_empty() {
        return;
    }
    h.el("h3", &[], "Syscalls").el(
        "p",
        &[("class", "muted small")],
        format_args!(
            "From the entrypoint's exec on, like strace -c -f; runc's set-up made {} more.",
            rec.setup_syscalls
        ),
    );
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

/// `EAGAIN×2 ENOENT×3`.
fn errnos(s: &SyscallStat) -> String {
    let parts: Vec<String> = s.errnos.iter().map(|(e, n)| format!("{e}×{n}")).collect();
    parts.join(" ")
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
                &[("class", "nowrap mono"), ("title", &precise(e.time))],
                offset(exited, e.time),
            )
            .el(
                "td",
                &[("class", "nowrap mono")],
                format_args!("{}[{}]", e.comm, e.tid),
            )
            .el(
                "td",
                &[("class", "mono wrap")],
                format_args!("{}({})", e.syscall, e.args.join(", ")),
            )
            .el("td", &[("class", "nowrap mono")], result(e))
            .raw("</tr>");
    }
    h.raw("</tbody></table>");
}

/// `= 3`, `= -98 EADDRINUSE`.
fn result(e: &SyscallEvent) -> String {
    match &e.errno {
        Some(errno) => format!("= {} {errno}", e.ret),
        None => format!("= {}", e.ret),
    }
}

fn output(h: &mut Html, out: Option<&CapturedOutput>) {
    let Some(out) = out else { return };
    h.el("h3", &[], "Output").el(
        "p",
        &[("class", "muted small")],
        format_args!(
            "Captured by {} in the kernel, not read from the log pipeline.",
            out.captured_by
        ),
    );
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
