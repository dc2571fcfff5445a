//! What the postmortem says, section by section: a report in, a [`Block`] list out. Content and
//! order live here; Markdown and text syntax live in the writers, shared phrases in
//! [`super::words`], figures in [`crate::units`].
//!
//! [`processes`] and [`resources_table`] are also the content of the HTML report page's process
//! timeline and cgroup table.

use chrono::{DateTime, Utc};

use super::doc::{code, prose, strong, text, Block, Inline, Line};
use super::words::{
    captured_by, confidence, cpu_quota, cpu_throttling, errno_counts, fatal_signal,
    image_tag_statement, oom_victim, partial_note, recorder_gap, shell_join, statement_by,
    strace_lines, syscall_totals, ADVICE, NO_CGROUP_FIGURES, NO_DIAGNOSIS, RECOVERED,
};
use crate::model::{
    CapturedOutput, CrashReport, ImageContent, ProcessEvent, ProcessEventKind, StreamCapture,
    SyscallEvent, SyscallStat,
};
use crate::units::{bytes, duration_ms, duration_us, offset, percent, timestamp};

/// Rows of the syscall summary table.
const TOP_SYSCALLS: usize = 15;
/// Lines of the flight recorder's tail.
const LAST_SYSCALLS: usize = 30;
const FIRST_FAILURES: usize = 15;
/// Process timeline rows kept at each end when it is longer than twice this.
const PROCESS_ROWS_EACH_END: usize = 20;

pub fn postmortem(r: &CrashReport) -> Vec<Block> {
    let mut doc = vec![Block::Heading(1, title(r))];
    diagnosis(r, &mut doc);
    identity(r, &mut doc);
    if r.image_tag.is_some() {
        doc.push(Block::Heading(2, "Image tag".into()));
        doc.extend(image_tag(r));
    }
    timeline(r, &mut doc);
    exit(r, &mut doc);
    if let Some(stack) = r.recorder.as_ref().and_then(|rec| rec.crash_stack.as_ref()) {
        doc.push(Block::Heading(3, "Crash stack".into()));
        doc.extend(crash_stack(stack));
    }
    resources(r, &mut doc);
    syscalls(r, &mut doc);
    output(r, &mut doc);
    doc.extend(artifacts(r));
    collection_errors(r, &mut doc);
    footer(r, &mut doc);
    doc
}

/// `edge/gateway/beam` for a pod's container, `moby/3f2a...` for any other.
fn workload(r: &CrashReport) -> String {
    match &r.kubernetes {
        Some(k) => format!("{}/{}/{}", k.namespace, k.pod, k.container),
        None => format!("{}/{}", r.container.namespace, r.container.id),
    }
}

fn title(r: &CrashReport) -> String {
    let what = match r.outcome {
        crate::model::Outcome::Crashed => "Crash",
        crate::model::Outcome::Completed => "Exit",
    };
    format!(
        "{what} of {} at {}",
        workload(r),
        timestamp(r.lifecycle.exited_at)
    )
}

/// Where a kept post-mortem file is served.
pub fn artifact_url(r: &CrashReport, name: &str) -> String {
    format!("/api/v1/crashes/{}/artifacts/{name}", r.id)
}

/// The post-mortem files kept beside the report (a table, with each file's key lines and what
/// was not kept), or nothing when none were looked for. Also the report page's section.
pub fn artifacts(r: &CrashReport) -> Vec<Block> {
    let Some(a) = &r.artifacts else {
        return Vec::new();
    };
    let mut doc = vec![Block::Heading(2, "Crash artifacts".into())];
    if let Some(u) = &a.unavailable {
        doc.push(Block::Para(vec![text(format!(
            "The container's filesystem could not be read: {u}"
        ))]));
    }
    if !a.files.is_empty() {
        let rows = a
            .files
            .iter()
            .map(|f| {
                let mut notes = Vec::new();
                if f.truncated {
                    notes.push(format!("first {} kept", bytes(f.kept_bytes)));
                }
                if f.redacted {
                    notes.push("redacted".to_string());
                }
                vec![
                    vec![code(artifact_url(r, &f.name))],
                    vec![code(&f.path)],
                    vec![text(f.kind.as_str())],
                    vec![text(bytes(f.size_bytes))],
                    vec![text(notes.join(", "))],
                ]
            })
            .collect();
        doc.push(Block::Table {
            head: vec!["File", "Path in the container", "Kind", "Size", "Kept"],
            right: vec![false, false, false, true, false],
            rows,
        });
        let key: Vec<Line> = a
            .files
            .iter()
            .flat_map(|f| {
                f.key_lines.iter().map(move |k| {
                    vec![
                        code(&f.name),
                        text(format!(" {}: ", k.label)),
                        code(&k.text),
                    ]
                })
            })
            .collect();
        if !key.is_empty() {
            doc.push(Block::Para(vec![text("What they say:")]));
            doc.push(Block::Bullets(key));
        }
    }
    if !a.skipped.is_empty() {
        doc.push(Block::Para(vec![text("Found and not kept:")]));
        doc.push(Block::Bullets(
            a.skipped
                .iter()
                .map(|s| {
                    let size = s
                        .size_bytes
                        .map(|b| format!(" ({})", bytes(b)))
                        .unwrap_or_default();
                    vec![code(&s.path), text(format!("{size}: {}", s.reason))]
                })
                .collect(),
        ));
    }
    if a.files.is_empty() && a.skipped.is_empty() && a.unavailable.is_none() {
        doc.push(Block::Para(vec![text("None found.")]));
    }
    doc
}

fn or_unknown(v: Option<impl ToString>) -> Line {
    vec![text(
        v.map_or_else(|| "unknown".to_string(), |v| v.to_string()),
    )]
}

fn code_or_unknown(v: Option<&String>) -> Line {
    vec![v.map_or_else(|| text("unknown"), |v| code(v.as_str()))]
}

fn diagnosis(r: &CrashReport, doc: &mut Vec<Block>) {
    doc.push(Block::Heading(2, "Diagnosis".into()));
    let Some(d) = &r.diagnosis else {
        doc.push(Block::Para(vec![text(NO_DIAGNOSIS)]));
        return;
    };
    if !d.summary.trim().is_empty() {
        doc.push(Block::Para(prose(&d.summary)));
    }
    if let Some(s) = &d.statement {
        doc.push(Block::Para(vec![
            strong(statement_by(s)),
            text(" "),
            code(&s.text),
            text(" ("),
            code(&s.field),
            text(")"),
        ]));
    }
    if let Some(advice) = &d.advice {
        let mut line = vec![strong(ADVICE), text(" ")];
        line.extend(prose(advice));
        doc.push(Block::Para(line));
    }
    let mut line = vec![
        strong("Cause:"),
        text(" "),
        code(d.cause.as_str()),
        text(", "),
        strong("confidence:"),
        text(format!(" {}", confidence(d.confidence))),
    ];
    if let Some(key) = &d.key {
        line.extend([text(", "), strong("key evidence:"), text(" "), code(key)]);
    }
    doc.push(Block::Para(line));
    if d.evidence.is_empty() {
        doc.push(Block::Para(vec![text("No evidence was recorded for it.")]));
        return;
    }
    doc.push(Block::Para(vec![text("Evidence, most decisive first:")]));
    doc.push(Block::Bullets(
        d.evidence
            .iter()
            .map(|e| {
                let mut item = prose(&e.fact);
                item.extend([text(" ("), code(&e.field), text(")")]);
                item
            })
            .collect(),
    ));
}

fn identity(r: &CrashReport, doc: &mut Vec<Block>) {
    doc.push(Block::Heading(2, "Identity".into()));
    let c = &r.container;
    let mut f: Vec<(String, Line)> = vec![("Node".into(), or_unknown(r.agent.node.as_ref()))];
    if let Some(k) = &r.kubernetes {
        f.push(("Namespace".into(), vec![code(&k.namespace)]));
        f.push(("Pod".into(), vec![code(&k.pod)]));
        f.push(("Container".into(), vec![code(&k.container)]));
    }
    f.push((
        "Container ID".into(),
        vec![
            code(&c.id),
            text(" in containerd namespace "),
            code(&c.namespace),
        ],
    ));
    f.push(("Image".into(), code_or_unknown(c.image.as_ref())));
    f.push((
        "Image digest".into(),
        code_or_unknown(c.image_digest.as_ref()),
    ));
    f.push(("Image ID".into(), code_or_unknown(c.image_id.as_ref())));
    if let Some(k) = &r.kubernetes {
        f.push(("Attempt".into(), or_unknown(k.attempt)));
        f.push(("Pod UID".into(), code_or_unknown(k.pod_uid.as_ref())));
    }
    f.push((
        "Command".into(),
        if c.command.is_empty() {
            vec![text("unknown")]
        } else {
            vec![code(shell_join(&c.command))]
        },
    ));
    f.push(("Init PID".into(), vec![text(c.pid.to_string())]));
    doc.push(Block::Fields(f));
}

/// Whether the image reference still names what ran: the statement, then what ran and what the
/// reference resolves to now, side by side. Empty without an `image_tag` section. The report
/// page shows these blocks too.
pub fn image_tag(r: &CrashReport) -> Vec<Block> {
    let Some(t) = &r.image_tag else {
        return Vec::new();
    };
    let started = r.lifecycle.created_at.or(r.lifecycle.started_at);
    let mut blocks = vec![Block::Para(prose(&image_tag_statement(t, started)))];
    let digest = |d: &Option<String>| vec![d.as_deref().map_or_else(|| text("unknown"), code)];
    let row = |name: &str, c: &ImageContent| {
        vec![
            vec![text(name)],
            digest(&c.digest),
            digest(&c.config_digest),
            or_unknown(c.imported_at.map(timestamp)),
        ]
    };
    let mut rows = vec![row("ran", &t.ran)];
    if let Some(now) = &t.now {
        rows.push(row(&format!("now ({})", timestamp(t.checked_at)), now));
    }
    blocks.push(Block::Table {
        head: vec!["", "digest", "config digest (image id)", "imported at"],
        right: vec![false; 4],
        rows,
    });
    blocks
}

/// The moment other times are measured from: creation, else start, else the exit.
fn origin(r: &CrashReport) -> DateTime<Utc> {
    let l = &r.lifecycle;
    l.created_at.or(l.started_at).unwrap_or(l.exited_at)
}

fn timeline(r: &CrashReport, doc: &mut Vec<Block>) {
    doc.push(Block::Heading(2, "Timeline".into()));
    let l = &r.lifecycle;
    let base = origin(r);
    let events = [
        ("Created", l.created_at),
        ("Started", l.started_at),
        ("Exited", Some(l.exited_at)),
        ("Reported", Some(l.reported_at)),
    ];
    doc.push(Block::Table {
        head: vec!["Event", "Time", "Since creation"],
        right: vec![false, false, true],
        rows: events
            .iter()
            .filter_map(|(name, t)| {
                t.map(|t| {
                    vec![
                        vec![text(*name)],
                        vec![text(timestamp(t))],
                        vec![text(offset(base, t))],
                    ]
                })
            })
            .collect(),
    });
    doc.push(Block::Para(match l.runtime_ms {
        Some(ms) => vec![
            strong("Runtime:"),
            text(format!(" {} from start to exit.", duration_ms(ms))),
        ],
        None => vec![strong("Runtime:"), text(" unknown (start not seen).")],
    }));

    doc.push(Block::Heading(3, "Processes".into()));
    doc.extend(processes(r));
}

/// The process timeline: a sentence saying what it shows, then one row per step (a fork that
/// only led to an exec is part of the exec's row; repeats are one row), times since creation.
pub fn processes(r: &CrashReport) -> Vec<Block> {
    let processes = r
        .recorder
        .as_ref()
        .map_or(&[][..], |rec| &rec.processes[..]);
    if processes.is_empty() {
        return vec![Block::Para(vec![text(
            if recorder_gap(r.recorder.as_ref()).is_some() {
                "No process events: the flight recorder did not record this container (see Syscalls)."
            } else {
                "The flight recorder saw no process events."
            },
        )])];
    }
    let base = origin(r);
    let mut doc = vec![Block::Para(vec![text(format!(
        "Fork, exec and exit of every process the flight recorder saw, runc's set-up included; \
         times since creation ({}).",
        timestamp(base)
    ))])];
    let steps = steps(processes);
    let runs = runs(&steps);
    let mut rows: Vec<Vec<Line>> = Vec::new();
    let omitted = runs.len().saturating_sub(2 * PROCESS_ROWS_EACH_END);
    for (i, run) in runs.iter().enumerate() {
        if omitted > 0 && i == PROCESS_ROWS_EACH_END {
            let events: usize = runs[i..i + omitted].iter().map(|r| r.len()).sum();
            rows.push(vec![
                vec![text("…")],
                vec![text("")],
                vec![text("")],
                vec![text(format!("{events} events omitted"))],
            ]);
        }
        if omitted > 0 && (PROCESS_ROWS_EACH_END..PROCESS_ROWS_EACH_END + omitted).contains(&i) {
            continue;
        }
        rows.push(process_row(base, run));
    }
    doc.push(Block::Table {
        head: vec!["Time", "PID", "Event", "Details"],
        right: vec![true, true, false, false],
        rows,
    });
    doc
}

/// One row of the process timeline before folding: an event, and for an exec the parent that
/// forked the process just for it (the fork is then not a row of its own).
#[derive(Clone, Copy)]
struct Step<'a> {
    event: &'a ProcessEvent,
    forked_by: Option<u32>,
}

/// A fork whose child's next event is an exec reads as one step, `sleep 5 (forked by 22797)`, so
/// a shell starting the same command over and over becomes a run of identical execs.
fn steps(events: &[ProcessEvent]) -> Vec<Step<'_>> {
    use std::collections::HashMap;
    // For each fork, whether the child's next event is an exec (and which).
    let mut next_of_child: HashMap<u32, usize> = HashMap::new();
    let mut fork_of_exec: HashMap<usize, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if let Some(fork) = next_of_child.remove(&e.pid) {
            if e.kind == ProcessEventKind::Exec {
                fork_of_exec.insert(i, fork);
            }
        }
        if e.kind == ProcessEventKind::Fork {
            next_of_child.insert(e.pid, i);
        }
    }
    let folded: std::collections::HashSet<usize> = fork_of_exec.values().copied().collect();
    events
        .iter()
        .enumerate()
        .filter(|(i, _)| !folded.contains(i))
        .map(|(i, event)| Step {
            event,
            forked_by: fork_of_exec.get(&i).and_then(|f| events[*f].ppid),
        })
        .collect()
}

/// Consecutive steps that say the same thing (ten `sleep` children killed by SIGKILL) become one
/// row.
fn runs<'a>(steps: &'a [Step<'a>]) -> Vec<&'a [Step<'a>]> {
    let same = |a: &Step, b: &Step| {
        let (a, b, fa, fb) = (a.event, b.event, a.forked_by, b.forked_by);
        a.kind == b.kind
            && a.comm == b.comm
            && match a.kind {
                ProcessEventKind::Fork => a.ppid == b.ppid,
                ProcessEventKind::Exec => a.argv == b.argv && a.filename == b.filename && fa == fb,
                ProcessEventKind::Exit => {
                    (a.exit_code, &a.signal, a.core_dumped)
                        == (b.exit_code, &b.signal, b.core_dumped)
                }
            }
    };
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=steps.len() {
        if i == steps.len() || !same(&steps[start], &steps[i]) {
            out.push(&steps[start..i]);
            start = i;
        }
    }
    out
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn process_row(base: DateTime<Utc>, run: &[Step]) -> Vec<Line> {
    let first = run[0].event;
    let pids = match run {
        [one] => one.event.pid.to_string(),
        [.., last] => format!("{}…{}", first.pid, last.event.pid),
        [] => String::new(),
    };
    let (event, mut details) = match first.kind {
        ProcessEventKind::Fork => {
            let mut d = vec![code(&first.comm)];
            if let Some(ppid) = first.ppid {
                d.push(text(format!(" forked by {ppid}")));
            }
            ("fork", d)
        }
        ProcessEventKind::Exec => {
            let mut d = if first.argv.is_empty() {
                vec![]
            } else {
                vec![code(shell_join(&first.argv))]
            };
            // The file only when the argv does not already name it (busybox applets run
            // `/proc/self/exe`; runc runs itself from a memfd).
            if let Some(f) = &first.filename {
                let argv0 = first.argv.first().map(|a| file_name(a));
                if argv0 != Some(file_name(f)) {
                    if !d.is_empty() {
                        d.push(text(" "));
                    }
                    d.extend([text("(file "), code(f), text(")")]);
                }
            }
            if let Some(ppid) = run[0].forked_by {
                d.push(text(format!(", forked by {ppid}")));
            }
            ("exec", d)
        }
        ProcessEventKind::Exit => {
            let how = match (&first.signal, first.exit_code) {
                (Some(sig), _) => {
                    let core = if first.core_dumped == Some(true) {
                        ", core dumped"
                    } else {
                        ""
                    };
                    format!(" killed by {sig}{core}")
                }
                (None, Some(code)) => format!(" exited {code}"),
                (None, None) => " exited".to_string(),
            };
            ("exit", vec![code(&first.comm), text(how)])
        }
    };
    if run.len() > 1 {
        details.push(text(format!(" ({} processes)", run.len())));
    }
    vec![
        vec![text(offset(base, first.time))],
        vec![text(pids)],
        vec![text(event)],
        details,
    ]
}

fn exit(r: &CrashReport, doc: &mut Vec<Block>) {
    doc.push(Block::Heading(2, "Exit".into()));
    let e = &r.exit;
    let mut f: Vec<(String, Line)> = Vec::new();
    let code_line = match (&e.signal_name, e.signal) {
        (Some(name), Some(n)) => format!("{} (128 + {n}, {name})", e.code),
        _ => e.code.to_string(),
    };
    f.push(("Exit code".into(), vec![text(code_line)]));
    f.push((
        "Signal".into(),
        vec![text(match (&e.signal_name, e.signal) {
            (Some(name), Some(n)) => format!("{name} ({n})"),
            (Some(name), None) => name.clone(),
            _ => "none".to_string(),
        })],
    ));
    f.push((
        "Core dumped".into(),
        vec![text(match e.core_dumped {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        })],
    ));
    let rec = r.recorder.as_ref();
    if let Some(s) = rec.and_then(|rec| rec.fatal_signal.as_ref()) {
        f.push(("Signal sent by".into(), fatal_signal(s)));
    }
    let oom = &r.oom;
    let plural = if oom.events == 1 { "" } else { "s" };
    let mut oom_line = vec![text(format!(
        "{} ({} OOM event{plural} from containerd",
        if oom.killed { "yes" } else { "no" },
        oom.events
    ))];
    if let Some(k) = oom.kills {
        oom_line.extend([
            text(", cgroup "),
            code("oom_kill"),
            text(format!(" counter {k}")),
        ]);
    }
    oom_line.push(text(")"));
    f.push(("OOM killed".into(), oom_line));
    if let Some(v) = rec.and_then(|rec| rec.oom_victim.as_ref()) {
        f.push(("OOM victim".into(), oom_victim(v)));
    }
    if r.recovered {
        f.push(("Recovered".into(), vec![text(RECOVERED)]));
    }
    doc.push(Block::Fields(f));
}

/// The crashing thread's stack, as the kernel took it at the signal: what and where, the frames
/// (innermost first), and why frames have no names. Shared with the HTML page.
pub fn crash_stack(s: &crate::model::CrashStack) -> Vec<Block> {
    let mut blocks = vec![Block::Para(crash_stack_line(s))];
    let rows = s
        .frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let function = match (&f.function, f.function_offset) {
                (Some(n), Some(o)) if o > 0 => vec![code(format!("{n}+{o:#x}"))],
                (Some(n), _) => vec![code(n)],
                (None, _) => vec![text("?")],
            };
            let object = match (&f.object, &f.build_id, &f.file_offset) {
                (Some(o), _, Some(off)) => vec![code(o), text(format!(" +{off}"))],
                (None, Some(id), Some(off)) => vec![text(format!("build id {id} +{off}"))],
                _ => vec![text("")],
            };
            vec![
                vec![text(format!("#{i}"))],
                vec![code(&f.address)],
                function,
                vec![text(f.source_location().unwrap_or_default())],
                object,
            ]
        })
        .collect();
    blocks.push(Block::Table {
        head: vec!["Frame", "Address", "Function", "Source", "File"],
        right: vec![true, false, false, false, false],
        rows,
    });
    if let Some(id) = s
        .frames
        .iter()
        .find(|f| f.function.is_none())
        .and_then(|f| f.build_id.as_ref())
    {
        blocks.push(Block::Para(vec![
            text("Build id of the first unnamed frame's file: "),
            code(id),
            text(" (symbolize it against a debug build of that id)."),
        ]));
    }
    if !s.symbolization_errors.is_empty() {
        blocks.push(Block::Bullets(
            s.symbolization_errors
                .iter()
                .map(|e| vec![text(format!("Not symbolized: {e}"))])
                .collect(),
        ));
    }
    blocks
}

/// `` Thread 7 (`crash`) got `SIGSEGV` (SEGV_MAPERR) at 01:03:44.206902, accessing 0x0: no mapping
/// there (a null or wild pointer). ``
fn crash_stack_line(s: &crate::model::CrashStack) -> Line {
    let mut line = vec![
        text(format!("Thread {} (", s.tid)),
        code(&s.comm),
        text(format!(") of pid {} got ", s.pid)),
        code(&s.signal),
        text(format!(
            " ({}) at {}",
            s.code,
            crate::units::time_of_day(s.time)
        )),
    ];
    if let Some(addr) = &s.fault_address {
        line.push(text(", accessing "));
        line.push(code(addr));
        match &s.fault_mapping {
            Some(m) if !m.mapped => {
                line.push(text(": no mapping there (a null or wild pointer)"));
            }
            Some(m) => {
                line.push(text(format!(
                    ": in {} {}-{} {}",
                    m.file.as_deref().unwrap_or("anonymous memory"),
                    m.start.as_deref().unwrap_or("?"),
                    m.end.as_deref().unwrap_or("?"),
                    m.permissions.as_deref().unwrap_or("")
                )));
            }
            None => line.push(text(" (its mapping was not looked up)")),
        }
    }
    line.push(text("."));
    line
}

fn resources(r: &CrashReport, doc: &mut Vec<Block>) {
    doc.push(Block::Heading(2, "Resources".into()));
    let cg = &r.cgroup;
    let version = match cg.version {
        Some(crate::model::CgroupVersion::V1) => "cgroup v1",
        Some(crate::model::CgroupVersion::V2) => "cgroup v2",
        None => "cgroup version unknown",
    };
    let mut line = vec![text(format!(
        "Limits as set at start, usage read at exit ({version}"
    ))];
    if let Some(p) = &cg.path {
        line.extend([text(", "), code(p)]);
    }
    line.push(text(")."));
    doc.push(Block::Para(line));
    doc.push(resources_table(r).unwrap_or_else(|| Block::Para(vec![text(NO_CGROUP_FIGURES)])));
}

/// The cgroup's limits and usage as a table (resource, used, limit, share of the limit); `None`
/// when no figures were collected. Rows the cgroup version does not have (OOM events on v1, a
/// pids count at exit) are left out rather than shown as `n/a`.
pub fn resources_table(r: &CrashReport) -> Option<Block> {
    let cg = &r.cgroup;
    if cg.limits.is_none() && cg.usage.is_none() {
        return None;
    }
    let na = || "n/a".to_string();
    let lim = cg.limits.clone().unwrap_or_default();
    let use_ = cg.usage.clone().unwrap_or_default();
    // A limit is "unlimited" only when the limits were read; otherwise it is unknown.
    let limit = |v: Option<u64>, fmt: &dyn Fn(u64) -> String| match (&cg.limits, v) {
        (_, Some(v)) => fmt(v),
        (Some(_), None) => "unlimited".to_string(),
        (None, None) => "unknown".to_string(),
    };
    let used = |v: Option<u64>, fmt: &dyn Fn(u64) -> String| v.map_or_else(na, fmt);
    let share = |u: Option<u64>, l: Option<u64>| match (u, l) {
        (Some(u), Some(l)) => percent(u, l).unwrap_or_default(),
        _ => String::new(),
    };
    let count = |v: u64| v.to_string();
    let mut rows: Vec<[String; 4]> = vec![
        [
            "Memory peak".into(),
            used(use_.memory_peak_bytes, &bytes),
            limit(lim.memory_limit_bytes, &bytes),
            share(use_.memory_peak_bytes, lim.memory_limit_bytes),
        ],
        [
            "Memory at exit".into(),
            used(use_.memory_current_bytes, &bytes),
            limit(lim.memory_limit_bytes, &bytes),
            share(use_.memory_current_bytes, lim.memory_limit_bytes),
        ],
    ];
    if lim.memory_swap_limit_bytes.is_some() {
        rows.push([
            "Memory + swap".into(),
            String::new(),
            limit(lim.memory_swap_limit_bytes, &bytes),
            String::new(),
        ]);
    }
    rows.push([
        "Memory limit hits".into(),
        used(use_.memory_failcnt, &count),
        String::new(),
        String::new(),
    ]);
    rows.push([
        "OOM kills in cgroup".into(),
        used(use_.oom_kill_count, &count),
        String::new(),
        String::new(),
    ]);
    if let Some(n) = use_.oom_count {
        rows.push([
            "OOM events in cgroup".into(),
            n.to_string(),
            String::new(),
            String::new(),
        ]);
    }
    rows.push([
        "PIDs peak".into(),
        used(use_.pids_peak, &count),
        limit(lim.pids_max, &count),
        share(use_.pids_peak, lim.pids_max),
    ]);
    if let Some(n) = use_.pids_current {
        rows.push([
            "PIDs at exit".into(),
            n.to_string(),
            limit(lim.pids_max, &count),
            share(Some(n), lim.pids_max),
        ]);
    }
    rows.push([
        "Forks refused by pids.max".into(),
        used(use_.pids_max_events, &count),
        String::new(),
        String::new(),
    ]);
    // Without a quota, the CPU the cgroup may use is its weight (v2) or shares (v1).
    let quota = lim
        .cpu_quota_us
        .zip(lim.cpu_period_us)
        .and_then(|(q, p)| cpu_quota(q, p))
        .or_else(|| lim.cpu_weight.map(|w| format!("no quota, weight {w}")))
        .or_else(|| lim.cpu_shares.map(|s| format!("no quota, {s} shares")))
        .unwrap_or_else(|| limit(None, &count));
    rows.push([
        "CPU time".into(),
        used(use_.cpu_usage_usec, &duration_us),
        quota,
        String::new(),
    ]);
    let throttled = match (use_.cpu_nr_throttled, use_.cpu_nr_periods) {
        (Some(t), Some(p)) => cpu_throttling(t, p, use_.cpu_throttled_usec),
        _ => na(),
    };
    rows.push([
        "CPU throttled".into(),
        throttled,
        String::new(),
        share(use_.cpu_nr_throttled, use_.cpu_nr_periods),
    ]);
    if let Some(cpus) = lim.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
        rows.push([
            "CPUs (cpuset)".into(),
            String::new(),
            cpus.clone(),
            String::new(),
        ]);
    }
    Some(Block::Table {
        head: vec!["Resource", "Used", "Limit", "Of limit"],
        right: vec![false, true, true, true],
        rows: rows
            .into_iter()
            .map(|row| row.into_iter().map(|c| vec![text(c)]).collect())
            .collect(),
    })
}

fn syscalls(r: &CrashReport, doc: &mut Vec<Block>) {
    doc.push(Block::Heading(2, "Syscalls".into()));
    let rec = match (r.recorder.as_ref(), recorder_gap(r.recorder.as_ref())) {
        (Some(rec), None) => rec,
        (_, Some(gap)) => {
            doc.push(Block::Para(vec![text(gap)]));
            return;
        }
        (None, None) => return,
    };
    if let Some(note) = partial_note(Some(rec)) {
        doc.push(Block::Para(vec![text(note)]));
    }
    doc.push(Block::Para(syscall_totals(rec)));
    if !rec.summary.is_empty() {
        doc.push(Block::Table {
            head: vec!["Syscall", "Calls", "Errors", "Errnos"],
            right: vec![false, true, true, false],
            rows: rec
                .summary
                .iter()
                .take(TOP_SYSCALLS)
                .map(syscall_row)
                .collect(),
        });
        if rec.summary.len() > TOP_SYSCALLS {
            let rest = &rec.summary[TOP_SYSCALLS..];
            doc.push(Block::Para(vec![text(format!(
                "… and {} more syscalls with {} calls.",
                rest.len(),
                rest.iter().map(|s| s.calls).sum::<u64>()
            ))]));
        }
    }

    doc.push(Block::Heading(3, "Last syscalls".into()));
    let fr = &rec.flight_recorder;
    if fr.is_empty() {
        doc.push(Block::Para(vec![text(
            "The flight recorder kept no syscalls.",
        )]));
    } else {
        let tail = &fr[fr.len().saturating_sub(LAST_SYSCALLS)..];
        let mut note = format!(
            "The last {} of the {} syscalls the flight recorder kept, oldest first, across all \
             the container's processes",
            tail.len(),
            fr.len()
        );
        if rec.flight_recorder_overwritten > 0 {
            note += &format!(
                " ({} earlier ones were overwritten)",
                rec.flight_recorder_overwritten
            );
        }
        note.push(':');
        doc.push(Block::Para(vec![text(note)]));
        doc.push(Block::Code(strace_lines(tail).join("\n")));
    }

    doc.push(Block::Heading(3, "First failures".into()));
    if rec.first_failures.is_empty() {
        doc.push(Block::Para(vec![text("No syscall failed.")]));
    } else {
        let shown = &rec.first_failures[..rec.first_failures.len().min(FIRST_FAILURES)];
        doc.push(Block::Para(vec![text(
            "The first failing syscalls (the first failure is often the cause):",
        )]));
        doc.push(Block::Code(strace_lines(shown).join("\n")));
    }
    // The distinct failures the first ones do not show (a boot's routine lookups fill those).
    let telling: Vec<SyscallEvent> = rec
        .telling_failures
        .iter()
        .filter(|e| !rec.first_failures.contains(e))
        .cloned()
        .collect();
    if !telling.is_empty() {
        doc.push(Block::Heading(3, "Telling failures".into()));
        doc.push(Block::Para(vec![text(
            "The first call of each other distinct failure, most telling first:",
        )]));
        doc.push(Block::Code(strace_lines(&telling).join("\n")));
    }
}

fn syscall_row(s: &SyscallStat) -> Vec<Line> {
    let mut errno_line: Line = Vec::new();
    for (i, (name, n)) in errno_counts(s).into_iter().enumerate() {
        if i > 0 {
            errno_line.push(text(", "));
        }
        errno_line.extend([code(name), text(format!(" {n}"))]);
    }
    vec![
        vec![code(&s.syscall)],
        vec![text(s.calls.to_string())],
        vec![text(s.errors.to_string())],
        errno_line,
    ]
}

fn output(r: &CrashReport, doc: &mut Vec<Block>) {
    doc.push(Block::Heading(2, "Output".into()));
    let log_path = r.kubernetes.as_ref().and_then(|k| k.log_path.as_ref());
    let log_note = |doc: &mut Vec<Block>| {
        if let Some(p) = log_path {
            doc.push(Block::Para(vec![
                text("The container's full log, if kubelet kept it, is "),
                code(p),
                text(" on the node."),
            ]));
        }
    };
    let captured: Option<&CapturedOutput> = match r.recorder.as_ref() {
        Some(rec) if rec.state.has_data() => rec.output.as_ref(),
        _ => {
            doc.push(Block::Para(vec![text(
                "Not captured: the flight recorder did not record this container.",
            )]));
            log_note(doc);
            return;
        }
    };
    let Some(out) = captured else {
        doc.push(Block::Para(vec![text("No output was captured.")]));
        log_note(doc);
        return;
    };
    doc.push(Block::Para(vec![text(captured_by(out))]));
    stream("stdout", &out.stdout, doc);
    stream("stderr", &out.stderr, doc);
    log_note(doc);
}

fn stream(name: &str, s: &StreamCapture, doc: &mut Vec<Block>) {
    if s.total_bytes == 0 {
        doc.push(Block::Para(vec![code(name), text(": nothing written.")]));
        return;
    }
    if s.tail.is_empty() {
        doc.push(Block::Para(vec![
            code(name),
            text(format!(
                ": {} written, all of it captured:",
                bytes_count(s.total_bytes)
            )),
        ]));
        doc.push(Block::Code(s.head.clone()));
        return;
    }
    doc.push(Block::Para(vec![
        code(name),
        text(format!(
            ": {} written; the first {} captured:",
            bytes_count(s.total_bytes),
            bytes_count(s.head.len() as u64)
        )),
    ]));
    doc.push(Block::Code(s.head.clone()));
    let between = s
        .total_bytes
        .saturating_sub(s.head.len() as u64 + s.tail.len() as u64);
    let gap = if between > 0 {
        format!("{} not kept, then ", bytes_count(between))
    } else {
        String::new()
    };
    doc.push(Block::Para(vec![
        code(name),
        text(format!(
            ": {gap}the last {} captured:",
            bytes_count(s.tail.len() as u64)
        )),
    ]));
    doc.push(Block::Code(s.tail.clone()));
}

fn bytes_count(n: u64) -> String {
    if n < 1024 {
        format!("{n} bytes")
    } else {
        format!("{} ({n} bytes)", bytes(n))
    }
}

fn collection_errors(r: &CrashReport, doc: &mut Vec<Block>) {
    doc.push(Block::Heading(2, "Collection errors".into()));
    if r.collection_errors.is_empty() {
        doc.push(Block::Para(vec![text(
            "None: every figure above was collected.",
        )]));
        return;
    }
    doc.push(Block::Bullets(
        r.collection_errors
            .iter()
            .map(|e| vec![code(&e.stage), text(format!(": {}", e.message))])
            .collect(),
    ));
}

fn footer(r: &CrashReport, doc: &mut Vec<Block>) {
    doc.push(Block::Rule);
    let mut line: Vec<Inline> = vec![text("Report "), code(&r.id), text(" by coroner ")];
    line.push(text(r.agent.version.clone()));
    if let Some(node) = &r.agent.node {
        line.extend([text(" on node "), code(node)]);
    }
    line.push(text(format!(", schema {}; JSON at ", r.schema_version)));
    line.push(code(format!("/api/v1/crashes/{}", r.id)));
    line.push(text("."));
    doc.push(Block::Para(line));
}
