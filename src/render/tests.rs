//! The renderings of real reports (captured by `tests/diagnosis.rs` from real containers), and of
//! those reports made hostile: output and names that try to break out of tables and fences.

use super::markdown::testing::{code_in_cell, code_in_para, text_in_cell};
use super::text::wrap;
use super::words::{shell_join, strace_lines, visible};
use super::{markdown, text};
use crate::model::{
    CapturedOutput, CollectionError, Confidence, CrashReport, Diagnosis, Evidence, RecorderState,
    StreamCapture,
};
use crate::units::{bytes, duration_us, offset};

const FIXTURES: [(&str, &str); 10] = [
    (
        "address_in_use",
        include_str!("../../tests/fixtures/reports/address_in_use.json"),
    ),
    (
        "completed",
        include_str!("../../tests/fixtures/reports/completed.json"),
    ),
    (
        "exec_failed",
        include_str!("../../tests/fixtures/reports/exec_failed.json"),
    ),
    (
        "exited_error",
        include_str!("../../tests/fixtures/reports/exited_error.json"),
    ),
    (
        "exited_error_no_recorder",
        include_str!("../../tests/fixtures/reports/exited_error_no_recorder.json"),
    ),
    (
        "killed_by_host",
        include_str!("../../tests/fixtures/reports/killed_by_host.json"),
    ),
    (
        "lock_held",
        include_str!("../../tests/fixtures/reports/lock_held.json"),
    ),
    (
        "oom_killed",
        include_str!("../../tests/fixtures/reports/oom_killed.json"),
    ),
    (
        "pids_limit",
        include_str!("../../tests/fixtures/reports/pids_limit.json"),
    ),
    (
        "segfault",
        include_str!("../../tests/fixtures/reports/segfault.json"),
    ),
];

/// A fixture as the store serves it: with the diagnosis filled in.
fn fixture(name: &str) -> CrashReport {
    let (_, json) = FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    let mut r: CrashReport = serde_json::from_str(json).expect("fixture parses");
    r.diagnosis = Some(crate::diagnose::diagnose(&r));
    r
}

/// A diagnosis with known words, for the tests about how a diagnosis is laid out (the rules'
/// own wording changes under us).
fn known_diagnosis() -> Diagnosis {
    Diagnosis {
        cause: crate::model::Cause::OomKilled,
        confidence: Confidence::High,
        summary: "OOM-killed after 96 ms: `tail` grew to the 20.0 MiB limit.".into(),
        evidence: vec![
            Evidence {
                fact: "memory peaked at 20.0 MiB against a 20.0 MiB limit".into(),
                field: "/cgroup/usage/memory_peak_bytes".into(),
            },
            Evidence {
                fact: "the kernel chose `tail` | pid 23494".into(),
                field: "/recorder/oom_victim".into(),
            },
        ],
        key: Some("oom tail".into()),
        statement: None,
        advice: None,
    }
}

const MD_SECTIONS: [&str; 13] = [
    "## ",
    "### Diagnosis",
    "### Identity",
    "### Timeline",
    "#### Processes",
    "### Exit",
    "### Resources",
    "### Syscalls",
    "#### Last syscalls",
    "#### First failures",
    "### Output",
    "### Collection errors",
    "Report `",
];

const TEXT_SECTIONS: [&str; 13] = [
    " of ",
    "DIAGNOSIS",
    "IDENTITY",
    "TIMELINE",
    "  Processes:",
    "EXIT",
    "RESOURCES",
    "SYSCALLS",
    "  Last syscalls:",
    "  First failures:",
    "OUTPUT",
    "COLLECTION ERRORS",
    "Report ",
];

fn assert_in_order(doc: &str, needles: &[&str]) {
    let mut from = 0;
    for n in needles {
        let at = doc[from..].find(n).unwrap_or_else(|| {
            panic!("{n:?} missing (or out of order) after byte {from} in:\n{doc}")
        });
        from += at + n.len();
    }
}

/// Cells of a GFM table row: `|` not escaped by a backslash, minus the outer two.
fn cells(row: &str) -> usize {
    let mut n = 0;
    let mut escaped = false;
    for c in row.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => n += 1,
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    n - 1
}

/// Every table row of `md` has as many cells as its table's header, and no fenced block is left
/// open: the structure a renderer will see.
fn assert_well_formed(md: &str) {
    let mut fence: Option<String> = None;
    let mut columns: Option<usize> = None;
    for line in md.lines() {
        if let Some(f) = &fence {
            if line == f {
                fence = None;
            }
            continue;
        }
        if line.starts_with("```") {
            fence = Some(line.chars().take_while(|c| *c == '`').collect());
            continue;
        }
        if line.starts_with('|') {
            assert!(line.ends_with('|'), "table row cut short: {line:?}");
            match columns {
                None => columns = Some(cells(line)),
                Some(n) => assert_eq!(cells(line), n, "row {line:?} in:\n{md}"),
            }
        } else {
            columns = None;
        }
    }
    assert!(fence.is_none(), "fenced block left open in:\n{md}");
}

#[test]
fn every_fixture_renders_every_section_in_order() {
    for (name, _) in FIXTURES {
        let r = fixture(name);
        // Without syscall data there is nothing to put under the syscall subsections.
        let recorded = r.recorder.as_ref().unwrap().state == RecorderState::Recorded;
        let wanted = |s: &&&str| recorded || !s.contains("syscalls") && !s.contains("failures");
        let md = markdown(&r);
        let sections: Vec<&str> = MD_SECTIONS.iter().filter(wanted).copied().collect();
        assert_in_order(&md, &sections);
        assert_well_formed(&md);
        assert!(md.contains(&r.id), "{name}: the footer names the report");
        assert!(
            md.contains(&r.agent.version),
            "{name}: and the agent version"
        );
        let txt = text(&r);
        let sections: Vec<&str> = TEXT_SECTIONS.iter().filter(wanted).copied().collect();
        assert_in_order(&txt, &sections);
    }
}

#[test]
fn reports_without_a_diagnosis_or_recorder_still_render() {
    for (name, _) in FIXTURES {
        let mut r = fixture(name);
        r.diagnosis = None;
        r.recorder = None;
        r.kubernetes = None;
        r.cgroup = Default::default();
        let md = markdown(&r);
        assert!(md.contains("no diagnosis"), "{md}");
        assert!(md.contains("written before the recorder existed"), "{md}");
        assert!(
            md.contains(&format!("## Crash of {}/", r.container.namespace))
                || md.contains("## Exit of ")
        );
        assert_well_formed(&md);
        let txt = text(&r);
        assert!(txt.contains("written before the recorder existed"), "{txt}");
    }
}

#[test]
fn oom_kill_postmortem_shows_the_memory_the_victim_and_the_last_syscalls() {
    let r = fixture("oom_killed");
    let md = markdown(&r);
    assert!(
        md.contains("## Crash of edge/gateway/beam at 2026-11-23 01:03:44.236 UTC"),
        "{md}"
    );
    assert!(
        md.contains("| Memory peak | 20.0 MiB | 20.0 MiB | 100.0% |"),
        "{md}"
    );
    assert!(
        md.contains("`SIGKILL` from the kernel's OOM killer"),
        "{md}"
    );
    assert!(
        md.contains("pid 23494 `tail` (the container's init), resident 21.0 MiB"),
        "{md}"
    );
    assert!(md.contains("| `read` | 2509 | 0 |  |"), "{md}");
    assert!(md.contains("| `tail /dev/zero` |"), "the command: {md}");
    assert!(md.contains("6100 earlier ones were overwritten"), "{md}");
    // The flight recorder's last line, strace-like, in a fenced block.
    let last = r.recorder.as_ref().unwrap().flight_recorder.last().unwrap();
    let line = strace_lines(std::slice::from_ref(last)).remove(0);
    let block = md.split("#### Last syscalls").nth(1).unwrap();
    let block = block.split("#### First failures").next().unwrap();
    assert!(block.contains("```text\n"), "{block}");
    assert!(block.contains(&line), "{line:?} in {block}");
    assert_eq!(block.matches(" tail ").count(), 30, "{block}");
    assert!(md.contains("No syscall failed."), "{md}");
}

#[test]
fn diagnosis_leads_with_the_summary_then_cause_and_evidence_with_fields() {
    let mut r = fixture("oom_killed");
    r.diagnosis = Some(known_diagnosis());
    let md = markdown(&r);
    assert!(
        md.contains(
            "### Diagnosis\n\nOOM-killed after 96 ms: `tail` grew to the 20.0 MiB limit.\n\n\
             **Cause:** `oom_killed`, **confidence:** high, **key evidence:** `oom tail`\n"
        ),
        "{md}"
    );
    assert!(
        md.contains(
            "- memory peaked at 20.0 MiB against a 20.0 MiB limit (`/cgroup/usage/memory_peak_bytes`)\n\
             - the kernel chose `tail` \\| pid 23494 (`/recorder/oom_victim`)\n"
        ),
        "{md}"
    );
    let txt = text(&r);
    assert!(
        txt.contains("DIAGNOSIS\n  OOM-killed after 96 ms: tail grew to the 20.0 MiB limit.\n"),
        "{txt}"
    );
    assert!(
        txt.contains("  - memory peaked at 20.0 MiB against a 20.0 MiB limit (/cgroup/usage/memory_peak_bytes)\n"),
        "{txt}"
    );
}

#[test]
fn the_diagnosis_of_every_fixture_is_rendered() {
    for (name, _) in FIXTURES {
        let r = fixture(name);
        let d = r.diagnosis.as_ref().unwrap();
        let md = markdown(&r);
        assert!(
            md.contains(&format!("**Cause:** `{}`", d.cause)),
            "{name}: {md}"
        );
        let txt = text(&r);
        assert!(
            txt.contains(&format!("Cause: {}", d.cause)),
            "{name}: {txt}"
        );
        // The summary's words, however the rules put them, whitespace aside.
        let words = |s: &str| {
            s.replace('`', "")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(words(&txt).contains(&words(&d.summary)), "{name}: {txt}");
        for e in &d.evidence {
            assert!(md.contains(&format!("(`{}`)", e.field)), "{name}: {md}");
        }
    }
}

#[test]
fn hostile_names_stay_inside_their_table_cells() {
    let mut r = fixture("address_in_use");
    let k = r.kubernetes.as_mut().unwrap();
    k.pod = "a|b\nc".into();
    k.container = "x`y``z".into();
    r.container.image = Some("evil|image\n| injected | row |".into());
    r.container.command = vec![
        "sh".into(),
        "-c".into(),
        "echo `id` | tee /x\nrm -rf /".into(),
    ];
    r.agent.node = Some("<script>alert(1)</script>".into());
    r.collection_errors.push(CollectionError {
        stage: "cgroup_usage".into(),
        message: "reading /sys/fs/cgroup/x|y: *boom*\nsecond line".into(),
    });
    let md = markdown(&r);
    assert_well_formed(&md);
    assert!(
        md.contains("| Command | ``sh -c $'echo `id` \\| tee /x\\nrm -rf /'`` |"),
        "{md}"
    );
    assert!(
        md.contains("| Image | `evil\\|image\\x0a\\| injected \\| row \\|` |"),
        "{md}"
    );
    assert!(md.contains("| Container | ```x`y``z``` |"), "{md}");
    assert!(md.contains("\\<script\\>"), "{md}");
    assert!(
        md.contains("| Node | \\<script\\>alert(1)\\</script\\> |"),
        "{md}"
    );
    assert!(
        md.contains("- `cgroup_usage`: reading /sys/fs/cgroup/x\\|y: \\*boom\\* second line\n"),
        "{md}"
    );
}

#[test]
fn inline_code_uses_a_longer_backtick_run_than_its_content() {
    assert_eq!(code_in_para("plain"), "`plain`");
    assert_eq!(code_in_para("a`b"), "``a`b``");
    assert_eq!(code_in_para("`x"), "`` `x ``");
    assert_eq!(code_in_para("a``b`"), "``` a``b` ```");
    assert_eq!(code_in_cell("a|b"), "`a\\|b`");
    assert_eq!(text_in_cell("one\ntwo | three"), "one<br>two \\| three");
}

#[test]
fn captured_output_with_fences_cannot_close_its_block() {
    let mut r = fixture("exec_failed");
    let hostile = "```\n## Not a heading\n````\n| not | a | table |\n\x1b[31mred\x1b[0m\r\n";
    r.recorder.as_mut().unwrap().output = Some(CapturedOutput {
        captured_by: "coroner".into(),
        stdout: StreamCapture {
            total_bytes: 10_000,
            head: hostile.into(),
            tail: "last ````` words".into(),
        },
        stderr: StreamCapture::default(),
    });
    let md = markdown(&r);
    assert_well_formed(&md);
    let out = md.split("### Output").nth(1).unwrap();
    // The head: a five-backtick fence (the content has a run of four), the content verbatim but
    // for the escape sequences made visible.
    assert!(
        out.contains(
            "`````text\n```\n## Not a heading\n````\n| not | a | table |\n\\x1b[31mred\\x1b[0m\\x0d\n`````\n"
        ),
        "{out}"
    );
    // The tail has a run of five: six.
    assert!(
        out.contains("``````text\nlast ````` words\n``````\n"),
        "{out}"
    );
    assert!(out.contains("Captured by coroner"), "{out}");
    assert!(out.contains("9.8 KiB (10000 bytes) written"), "{out}");
    assert!(out.contains("`stderr`: nothing written."), "{out}");
    assert!(!md.contains('\x1b'), "no raw escape reaches the document");
    let txt = text(&r);
    assert!(
        !txt.contains('\x1b') && !txt.contains('\r'),
        "nor the terminal: {txt}"
    );
    assert!(txt.contains("    \\x1b[31mred\\x1b[0m\\x0d\n"), "{txt}");
}

#[test]
fn a_disabled_recorder_is_named_with_its_reason_instead_of_syscalls() {
    let r = fixture("exited_error_no_recorder");
    assert_eq!(r.recorder.as_ref().unwrap().state, RecorderState::Disabled);
    let md = markdown(&r);
    assert!(
        md.contains(
            "### Syscalls\n\nNo syscall data (flight recorder state: disabled): \
             the flight recorder is disabled (--no-recorder).\n"
        ),
        "{md}"
    );
    assert!(
        md.contains("Not captured: the flight recorder did not record"),
        "{md}"
    );
    assert!(!md.contains("#### Last syscalls"), "{md}");
    assert!(
        md.contains("| Memory peak | 2.6 MiB | unlimited |  |"),
        "{md}"
    );
    let txt = text(&r);
    assert!(
        txt.contains("No syscall data (flight recorder state: disabled): the flight recorder is"),
        "{txt}"
    );
}

#[test]
fn text_has_the_same_facts_without_markup() {
    for (name, _) in FIXTURES {
        let r = fixture(name);
        let txt = text(&r);
        for markup in ["```", "## ", "**", "| --- |", "<br>", "\\|"] {
            assert!(!txt.contains(markup), "{name}: {markup:?} in:\n{txt}");
        }
        assert!(!txt.contains('`'), "{name}: backticks in:\n{txt}");
        for line in txt.lines() {
            // Prose is wrapped; tables and verbatim syscalls may run longer.
            let verbatim = line.starts_with("    ") || line.contains("  ");
            assert!(line.chars().count() <= 100 || verbatim, "{name}: {line:?}");
        }
    }
    let r = fixture("oom_killed");
    let txt = text(&r);
    let row = |label: &str| -> Vec<String> {
        let line = txt
            .lines()
            .find(|l| l.starts_with(&format!("  {label}  ")))
            .unwrap_or_else(|| panic!("no {label:?} row in:\n{txt}"));
        line.split_whitespace().map(String::from).collect()
    };
    assert_eq!(
        row("Memory peak"),
        ["Memory", "peak", "20.0", "MiB", "20.0", "MiB", "100.0%"]
    );
    assert_eq!(row("read"), ["read", "2509", "0"]);
    assert_eq!(row("Command"), ["Command", "tail", "/dev/zero"]);
}

#[test]
fn process_timeline_folds_repeated_events() {
    let r = fixture("pids_limit");
    let md = markdown(&r);
    // Ten `sleep` children killed together are one row.
    assert!(
        md.contains("| 22858…22863 | exit | `sleep` killed by SIGKILL (10 processes) |"),
        "{md}"
    );
    // A shell starting the same command: fork and exec are one step, the ten steps one row.
    assert!(
        md.contains(
            "| 22854…22863 | exec | `sleep 5` (file `/proc/self/exe`), forked by 22797 (10 processes) |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| exec | `runc init` (file `/dev/fd/6`) |"),
        "{md}"
    );
}

#[test]
fn long_process_timelines_keep_both_ends() {
    let mut r = fixture("pids_limit");
    let rec = r.recorder.as_mut().unwrap();
    let template = rec.processes[6].clone(); // a fork by sh
    let many: Vec<_> = (0..200)
        .flat_map(|i| {
            let mut fork = template.clone();
            fork.pid = 30_000 + i;
            let mut exit = rec.processes.last().unwrap().clone();
            exit.pid = 30_000 + i;
            [fork, exit]
        })
        .collect();
    rec.processes.splice(7..7, many);
    let md = markdown(&r);
    assert!(md.contains("events omitted |"), "{md}");
    let processes = md
        .split("#### Processes")
        .nth(1)
        .unwrap()
        .split("### Exit")
        .next()
        .unwrap();
    assert!(
        processes.lines().filter(|l| l.starts_with('|')).count() <= 43,
        "{processes}"
    );
    assert!(
        processes.contains("`runc init` (file `/dev/fd/6`)"),
        "the start is kept: {processes}"
    );
    assert!(
        processes.contains("exited 2"),
        "the end is kept: {processes}"
    );
}

#[test]
fn strace_lines_align_and_show_errnos_and_addresses() {
    let r = fixture("address_in_use");
    let fr = &r.recorder.as_ref().unwrap().flight_recorder;
    let bind = fr.iter().rfind(|e| e.syscall == "bind").unwrap();
    let brk = fr.iter().rev().find(|e| e.syscall == "brk").unwrap();
    let lines = strace_lines(&[brk.clone(), bind.clone()]);
    assert_eq!(
        lines,
        [
            "01:03:40.448869 22804 exe   brk(0x6759000) = 0x6759000",
            "01:03:40.448869 22804 httpd bind(3<socket:AF_INET>, 127.0.0.1:22321, 16) = EADDRINUSE",
        ]
    );
    let mut thread = bind.clone();
    thread.tid = 22805;
    assert!(strace_lines(&[thread])[0].contains(" 22804/22805 httpd bind("));
}

#[test]
fn figures_read_like_a_human_wrote_them() {
    assert_eq!(bytes(512), "512 B");
    assert_eq!(bytes(229_376), "224.0 KiB");
    assert_eq!(bytes(20 << 20), "20.0 MiB");
    assert_eq!(bytes(3 << 30), "3.0 GiB");
    assert_eq!(duration_us(850), "850 µs");
    assert_eq!(duration_us(96_000), "96 ms");
    assert_eq!(duration_us(74_462), "74.5 ms");
    assert_eq!(duration_us(1_250_000), "1.25 s");
    assert_eq!(duration_us(12_500_000), "12.5 s");
    assert_eq!(duration_us(123_000_000), "2m 03s");
    assert_eq!(duration_us(3_720_000_000), "1h 02m");
    assert_eq!(duration_us(100 * 3_600_000_000), "4d 04h");
    let t = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert_eq!(
        offset(t("2026-11-23T01:03:44.109Z"), t("2026-11-23T01:03:44.078Z")),
        "-31 ms"
    );
    assert_eq!(
        shell_join(&["sh".into(), "-c".into(), "echo it's".into(), "".into()]),
        r"sh -c 'echo it'\''s' ''"
    );
    assert_eq!(visible("a\x1b[2Jb\u{202e}c", false), "a\\x1b[2Jb\\u{202e}c");
    assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
    assert_eq!(
        wrap("averyveryverylongword x", 5),
        ["averyveryverylongword", "x"]
    );
}

/// `exited_error` with an `image_tag` section of the given status (digests `a…` ran, `b…` now).
fn with_image_tag(status: crate::model::ImageTagStatus) -> CrashReport {
    use crate::model::{ImageCompared, ImageContent, ImageTagReport, ImageTagStatus};
    let mut r = fixture("exited_error");
    let imported: chrono::DateTime<chrono::Utc> = "2026-11-01T08:00:00Z".parse().unwrap();
    let ran = format!("sha256:{}", "a".repeat(64));
    let now = if status == ImageTagStatus::Moved {
        format!("sha256:{}", "b".repeat(64))
    } else {
        ran.clone()
    };
    r.image_tag = Some(ImageTagReport {
        reference: "localhost/gw:1".into(),
        status,
        compared: ImageCompared::Config,
        ran: ImageContent {
            config_digest: Some(ran),
            imported_at: Some(imported),
            ..Default::default()
        },
        now: (status != ImageTagStatus::Removed).then(|| ImageContent {
            digest: Some(format!("sha256:{}", "c".repeat(64))),
            config_digest: Some(now),
            imported_at: Some(imported + chrono::Duration::days(30)),
            ..Default::default()
        }),
        checked_at: r.lifecycle.exited_at,
    });
    r
}

/// A Python import failure as the rules diagnose it: the runtime's words and the advice.
fn python_import_failure() -> CrashReport {
    let mut r = fixture("exited_error");
    let out = r.recorder.as_mut().unwrap().output.as_mut().unwrap();
    out.stderr = StreamCapture {
        total_bytes: 162,
        head: include_str!("../../tests/fixtures/statements/python/module_not_found.txt").into(),
        tail: String::new(),
    };
    r.diagnosis = Some(crate::diagnose::diagnose(&r));
    r
}

#[test]
fn moved_image_tag_is_said_in_markdown_and_text_with_both_digests_and_the_import_time() {
    let r = with_image_tag(crate::model::ImageTagStatus::Moved);
    let md = markdown(&r);
    assert!(md.contains("## Image tag"), "{md}");
    let said = format!(
        "This container ran `sha256:{}`; `localhost/gw:1` now resolves to `sha256:{}`, \
         imported at 2026-12-01 08:00:00 UTC.",
        "a".repeat(64),
        "b".repeat(64)
    );
    assert!(md.contains(&said), "{md}");
    let txt = text(&r);
    let flowed = txt.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flowed.contains("localhost/gw:1 now resolves to sha256:"),
        "{txt}"
    );
    assert!(txt.contains(&"b".repeat(64)), "{txt}");
    assert!(txt.contains("2026-12-01 08:00:00"), "{txt}");
}

#[test]
fn current_image_tag_states_only_what_the_node_knows() {
    let r = with_image_tag(crate::model::ImageTagStatus::Current);
    let md = markdown(&r);
    assert!(
        md.contains("`localhost/gw:1` still resolves to what ran"),
        "{md}"
    );
    assert!(md.contains("not known on the node"), "{md}");
    assert!(!md.contains("now resolves to"), "{md}");
    // A report without the section has no such heading.
    assert!(!markdown(&fixture("exited_error")).contains("Image tag"));
}

#[test]
fn markdown_and_text_show_the_runtime_statement_and_the_advice_under_the_summary() {
    let r = python_import_failure();
    let md = markdown(&r);
    assert!(
        md.contains(
            "### Diagnosis\n\nPython: ModuleNotFoundError: No module named 'requests'; exited 1 after \\<1 ms\n\n\
             **Python said:** `ModuleNotFoundError: No module named 'requests'` (`/recorder/output/stderr/head`)\n\n\
             **Advice:** Install the Python module `requests` in the image"
        ),
        "{md}"
    );
    assert!(md.contains("**Cause:** `missing_dependency`"), "{md}");
    let txt = text(&r);
    assert!(
        txt.contains("Python said: ModuleNotFoundError: No module named 'requests'"),
        "{txt}"
    );
    assert!(
        txt.contains("Advice: Install the Python module requests in the image"),
        "{txt}"
    );
}

#[test]
fn a_crash_stack_shows_its_frames_the_fault_and_why_frames_are_unnamed() {
    use crate::model::{CrashStack, FaultMapping, StackFrame};
    let mut r = fixture("segfault");
    let rec = r.recorder.as_mut().unwrap();
    let frame = |addr: &str, name: Option<&str>, line: Option<u32>| StackFrame {
        address: addr.into(),
        build_id: Some("031aa5f4c64bee51".into()),
        file_offset: Some("0x1736".into()),
        object: Some("/usr/local/bin/crash".into()),
        function: name.map(str::to_string),
        function_offset: name.map(|_| 0xe),
        source_file: line.map(|_| "crash.c".to_string()),
        line,
    };
    rec.crash_stack = Some(CrashStack {
        time: rec.fatal_signal.as_ref().unwrap().time,
        pid: 7,
        tid: 7,
        comm: "crash".into(),
        signal: "SIGSEGV".into(),
        code: "SEGV_MAPERR".into(),
        fault_address: Some("0x0".into()),
        fault_mapping: Some(FaultMapping {
            mapped: false,
            start: None,
            end: None,
            permissions: None,
            file: None,
        }),
        frames: vec![
            frame("0x401736", Some("crash_here"), Some(3)),
            frame("0x401750", Some("main"), Some(10)),
            frame("0x7f0012", None, None),
        ],
        symbolization_errors: vec!["/lib/libc.so.6 (build id 99): no symbols".into()],
    });
    let md = markdown(&r);
    assert_well_formed(&md);
    assert_in_order(
        &md,
        &[
            "## Crash stack",
            "Thread 7 (`crash`) of pid 7 got `SIGSEGV` (SEGV\\_MAPERR)",
            "accessing `0x0`: no mapping there",
            "| `crash_here+0xe` | crash.c:3 | `/usr/local/bin/crash` +0x1736 |",
            "`main+0xe`",
            "| `0x7f0012` | ? |",
            "Not symbolized: /lib/libc.so.6",
        ],
    );
    let txt = text(&r);
    assert!(txt.contains("crash_here+0xe"), "{txt}");
}
