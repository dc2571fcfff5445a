use super::*;
use crate::model::{Cause, CollectionError, Confidence, Evidence, StreamCapture};

fn fixture(name: &str) -> CrashReport {
    let path = format!(
        "{}/tests/fixtures/reports/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut r: CrashReport = serde_json::from_str(&text).unwrap();
    // The fixtures are stored without a diagnosis; the page's layout does not depend on which.
    r.diagnosis = Some(Diagnosis {
        cause: Cause::OomKilled,
        confidence: Confidence::High,
        summary: "OOM-killed after 96 ms: memory peaked at 20.0 MiB against a 20.0 MiB limit"
            .into(),
        evidence: vec![Evidence {
            fact: "the OOM killer chose `tail`".into(),
            field: "/recorder/oom_victim".into(),
        }],
        key: None,
        statement: None,
        advice: None,
    });
    r
}

fn now() -> DateTime<Utc> {
    "2026-11-23T01:14:00Z".parse().unwrap()
}

fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    &html[at..]
}

#[test]
fn oom_report_shows_the_diagnosis_before_everything_else() {
    let html = render(&fixture("oom_killed"), now());
    let diag = html.find("id=\"diagnosis\"").unwrap();
    assert!(diag < html.find("Identity and exit").unwrap());
    assert!(html.contains("OOM-killed after 96 ms"), "{html}");
    assert!(html.contains("high confidence"));
    assert!(html
        .contains("the OOM killer chose `tail` <code class=\"muted\">/recorder/oom_victim</code>"));
    assert!(html.contains("<title>edge/gateway/beam — coroner</title>"));
}

#[test]
fn oom_report_shows_a_full_memory_bar_with_the_figures() {
    let html = render(&fixture("oom_killed"), now());
    assert!(
        html.contains("<div class=\"fill full\" style=\"width: 100%\">"),
        "{html}"
    );
    assert!(
        html.contains("peak 20.0 MiB of 20.0 MiB (100.0%)"),
        "{html}"
    );
}

#[test]
fn memory_text_says_when_there_is_no_limit() {
    assert_eq!(memory_text(Some(3 << 20), None), "peak 3.0 MiB, no limit");
    assert_eq!(
        memory_text(Some(5 << 20), Some(20 << 20)),
        "peak 5.0 MiB of 20.0 MiB (25.0%)"
    );
    assert_eq!(memory_text(None, None), "peak not recorded, no limit");
    let mut r = fixture("oom_killed");
    r.cgroup.limits.as_mut().unwrap().memory_limit_bytes = None;
    let html = render(&r, now());
    assert!(html.contains("peak 20.0 MiB, no limit"), "{html}");
    assert!(!html.contains("class=\"bar\""));
}

#[test]
fn oom_report_shows_identity_signal_victim_and_cgroup_figures() {
    let html = render(&fixture("oom_killed"), now());
    for want in [
        "<th>attempt</th><td class=\"wrap\">0</td>",
        "localhost/coroner-test/busybox:1",
        "sha256:58f344f7fa2d2c04534c6a6a91601c976c563fba75753aae8f3812061ba94575",
        "tail /dev/zero",
        "<code>SIGKILL</code> from the kernel&#39;s OOM killer at 01:03:44.218702",
        "pid 23494 <code>tail</code> (the container&#39;s init), resident 21.0 MiB",
        "<td>OOM kills in cgroup</td><td class=\"num\">1</td>",
        "<td>Memory at exit</td><td class=\"num\">224.0 KiB</td><td class=\"num\">20.0 MiB</td>",
        "<td>PIDs at exit</td><td class=\"num\">0</td><td class=\"num\">unlimited</td>",
        "2026-11-23 01:03:44.236 UTC (10 min ago)",
    ] {
        assert!(html.contains(want), "{want} missing from {html}");
    }
}

#[test]
fn timeline_lists_forks_execs_and_exits() {
    let html = render(&fixture("oom_killed"), now());
    let timeline = section(&html, "timeline");
    assert!(timeline.contains("<td>exec</td>"), "{timeline}");
    assert!(
        timeline.contains("<code>tail /dev/zero</code>, forked by 23493"),
        "{timeline}"
    );
    assert!(timeline.contains("killed by SIGKILL"), "{timeline}");
    assert!(timeline.contains("forked by 23484"), "{timeline}");
}

#[test]
fn syscall_table_has_calls_errors_and_errnos() {
    let html = render(&fixture("address_in_use"), now());
    let table = section(&html, "syscalls");
    assert!(table.contains("<td class=\"mono\">bind</td>"), "{table}");
    assert!(table.contains(">EADDRINUSE 1<"), "{table}");
    assert!(
        table.contains(">EBADF 47, EPERM 15<"),
        "most frequent first: {table}"
    );
    assert!(table.contains("<tr class=\"failed\">"), "{table}");
}

#[test]
fn flight_recorder_shows_only_the_tail_and_highlights_failures() {
    let r = fixture("address_in_use");
    let html = render(&r, now());
    let tail = section(&html, "flight-recorder");
    let rows = tail[..tail.find("</table>").unwrap()]
        .matches("<tr class=")
        .count();
    let kept = r.recorder.as_ref().unwrap().flight_recorder.len();
    assert_eq!(rows, kept.min(FLIGHT_RECORDER_TAIL));
    let oom = render(&fixture("oom_killed"), now());
    assert!(oom.contains("The last 50 of 256 kept"), "{oom}");
    let ff = section(&html, "first-failures");
    assert!(ff.contains("<tr class=\"failed\">"), "{ff}");
    assert!(ff.contains("EADDRINUSE"), "{ff}");
}

#[test]
fn captured_stderr_is_shown_as_text_marked_as_captured_by_coroner() {
    let mut r = fixture("exited_error");
    let out = r.recorder.as_mut().unwrap().output.as_mut().unwrap();
    out.stderr = StreamCapture {
        total_bytes: 10_000,
        head: "<script>document.title='pwned'</script>\n".into(),
        tail: "last words\n".into(),
    };
    let html = render(&r, now());
    assert!(html.contains("Captured by coroner"), "{html}");
    assert!(
        html.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("last words"));
    assert!(html.contains("not kept"));
}

#[test]
fn missing_recorder_data_says_why() {
    let html = render(&fixture("exited_error_no_recorder"), now());
    let notice = section(&html, "recorder-state");
    assert!(
        notice.starts_with("id=\"recorder-state\">No syscall data (flight recorder state: disabled): the flight recorder is disabled (--no-recorder)."),
        "{notice}"
    );
}

#[test]
fn collection_errors_are_listed() {
    let mut r = fixture("oom_killed");
    r.collection_errors.push(CollectionError {
        stage: "cgroup_usage".into(),
        message: "reading memory.peak: <gone>".into(),
    });
    let html = render(&r, now());
    assert!(
        html.contains("<code>cgroup_usage</code>: reading memory.peak: &lt;gone&gt;"),
        "{html}"
    );
}

#[test]
fn links_point_at_the_api_and_markdown_and_nothing_external() {
    let html = render(&fixture("oom_killed"), now());
    assert!(html.contains("href=\"/api/v1/crashes/3b26e83de66231393e30\""));
    assert!(html.contains("href=\"/api/v1/crashes/3b26e83de66231393e30?format=markdown\""));
    for attr in html.split("href=\"").skip(1) {
        assert!(
            attr.starts_with('/') || attr.starts_with('?'),
            "external link: {attr:.40}"
        );
    }
    assert!(!html.contains("src="));
}

#[test]
fn the_page_quotes_a_command_and_words_confidence_as_the_markdown_does() {
    let mut r = fixture("oom_killed");
    r.container.command = vec!["sh".into(), "-c".into(), "echo 'hi'".into(), String::new()];
    let html = render(&r, now());
    let md = crate::render::markdown(&r);
    assert!(md.contains(r"sh -c 'echo '\''hi'\''' ''"), "{md}");
    assert!(
        html.contains("sh -c &#39;echo &#39;\\&#39;&#39;hi&#39;\\&#39;&#39;&#39; &#39;&#39;"),
        "{html}"
    );
    assert!(md.contains("**confidence:** high") && html.contains("high confidence"));
}

#[test]
fn the_page_shows_the_runtime_statement_and_the_advice_beside_the_summary() {
    let mut r = fixture("exited_error");
    let out = r.recorder.as_mut().unwrap().output.as_mut().unwrap();
    out.stderr = StreamCapture {
        total_bytes: 212,
        head: include_str!("../../../../tests/fixtures/statements/beam/eaddrinuse.txt").into(),
        tail: String::new(),
    };
    r.diagnosis = Some(crate::diagnose::diagnose(&r));
    let html = render(&r, now());
    let diag = section(&html, "diagnosis");
    let diag = &diag[..diag.find("</section>").unwrap()];
    assert!(
        diag.contains(
            "<div class=\"statement\"><strong>Erlang VM said:</strong> <code>init terminating in \
             do_boot: {badmatch,{error,eaddrinuse}}</code>"
        ),
        "{diag}"
    );
    assert!(
        diag.contains("<div class=\"advice\"><strong>Advice:</strong> Another process"),
        "{diag}"
    );
    // The summary before them, the evidence after.
    let summary = diag.find("class=\"summary\"").unwrap();
    let statement = diag.find("class=\"statement\"").unwrap();
    let advice = diag.find("class=\"advice\"").unwrap();
    let evidence = diag.find("<ul>").unwrap();
    assert!(
        summary < statement && statement < advice && advice < evidence,
        "{diag}"
    );
}
