//! End-to-end tests of the postmortem export: a real container OOM-killed under a real containerd,
//! its report fetched from the agent as Markdown (`?format=markdown`, pasted into incident
//! documents) and as text (`?format=text`, what `coroner show` prints).
//!
//! The diagnosis' wording belongs to `src/diagnose.rs` and changes; these tests check that the
//! summary is rendered, not what it says.

mod harness;

use harness::{Agent, Containerd};
use reqwest::StatusCode;
use serde_json::Value;

use harness::agent::REPORT_TIMEOUT;

/// `GET path` with its status, content type and body.
async fn fetch(agent: &Agent, path: &str) -> (StatusCode, String, String) {
    let url = format!("{}{path}", agent.base_url());
    let resp = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp.text().await.expect("body");
    (status, content_type, body)
}

/// The part of `doc` from `start` up to the next `end` (or the end of `doc`).
fn section<'a>(doc: &'a str, start: &str, end: &str) -> &'a str {
    let from = doc
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} missing in:\n{doc}"));
    let rest = &doc[from + start.len()..];
    rest.find(end).map_or(rest, |to| &rest[..to])
}

/// Words of `s` without Markdown's backticks and backslash escapes, so a summary can be found in
/// either rendering whatever the rules wrote.
fn words(s: &str) -> String {
    s.replace(['`', '\\'], "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread")]
async fn oom_kill_exports_a_postmortem_in_markdown_and_text() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let report = harness::scenarios::oom_of_init(&cd, &agent).await;
    let id = report["id"].as_str().unwrap();
    assert_eq!(report["diagnosis"]["cause"], "oom_killed", "{report}");
    let summary = report["diagnosis"]["summary"].as_str().unwrap();

    let (status, content_type, md) =
        fetch(&agent, &format!("/api/v1/crashes/{id}?format=markdown")).await;
    assert_eq!(status, StatusCode::OK, "{md}");
    assert_eq!(content_type, "text/markdown; charset=utf-8");
    std::fs::write("/tmp/readme-export.md", &md).expect("saving the export for the README");

    assert!(md.starts_with("## Crash of edge/gateway/beam at "), "{md}");
    let mut from = 0;
    for heading in [
        "\n### Diagnosis\n",
        "\n### Identity\n",
        "\n### Timeline\n",
        "\n#### Processes\n",
        "\n### Exit\n",
        "\n### Resources\n",
        "\n### Syscalls\n",
        "\n#### Last syscalls\n",
        "\n#### First failures\n",
        "\n### Output\n",
        "\n### Collection errors\n",
        "\n---\n",
    ] {
        let at = md[from..]
            .find(heading)
            .unwrap_or_else(|| panic!("{heading:?} missing or out of order in:\n{md}"));
        from += at + heading.len();
    }

    let diagnosis = section(&md, "### Diagnosis\n", "\n### ");
    assert!(
        diagnosis.contains("**Cause:** `oom_killed`, **confidence:** high"),
        "{diagnosis}"
    );
    assert!(
        words(diagnosis).contains(&words(summary)),
        "the summary {summary:?} leads the diagnosis:\n{diagnosis}"
    );

    let identity = section(&md, "### Identity\n", "\n### ");
    assert!(
        identity.contains("| Command | `tail /dev/zero` |"),
        "{identity}"
    );
    assert!(
        identity.contains(&format!(
            "| Pod UID | `{}` |",
            report["kubernetes"]["pod_uid"].as_str().unwrap()
        )),
        "{identity}"
    );

    let exit = section(&md, "### Exit\n", "\n### ");
    assert!(
        exit.contains("| Exit code | 137 (128 + 9, SIGKILL) |"),
        "{exit}"
    );
    assert!(
        exit.contains("| Signal sent by | `SIGKILL` from the kernel's OOM killer at "),
        "{exit}"
    );
    assert!(exit.contains("| OOM victim | pid "), "{exit}");
    assert!(exit.contains(" `tail` (the container's init)"), "{exit}");

    // The memory figures: the peak against the 20 MiB limit, as a share of it.
    let resources = section(&md, "### Resources\n", "\n### ");
    let peak_row = resources
        .lines()
        .find(|l| l.starts_with("| Memory peak |"))
        .unwrap_or_else(|| panic!("no memory peak row:\n{resources}"));
    let cells: Vec<&str> = peak_row
        .trim_matches('|')
        .split(" | ")
        .map(str::trim)
        .collect();
    assert_eq!(cells[2], "20.0 MiB", "the limit: {peak_row}");
    assert!(cells[1].ends_with(" MiB"), "the peak: {peak_row}");
    assert!(cells[3].ends_with('%'), "the share: {peak_row}");
    let peak = report["cgroup"]["usage"]["memory_peak_bytes"]
        .as_u64()
        .unwrap();
    assert!(peak >= 19 << 20, "a peak near the limit: {peak}");

    let syscalls = section(&md, "### Syscalls\n", "\n#### ");
    assert!(
        syscalls.contains("| Syscall | Calls | Errors | Errnos |"),
        "{syscalls}"
    );
    assert!(
        syscalls.contains("| `read` | "),
        "tail reads /dev/zero:\n{syscalls}"
    );

    // The flight recorder's tail: strace-like lines of tail reading, in one fenced block.
    let last = section(&md, "#### Last syscalls\n", "\n#### ");
    let block = section(last, "```text\n", "\n```\n");
    let lines: Vec<&str> = block.lines().collect();
    assert_eq!(lines.len(), 30, "{last}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" tail ") && l.contains(" read(3, ")),
        "{block}"
    );
    assert!(md.contains(&format!(
        "Report `{id}` by coroner {}",
        report["agent"]["version"].as_str().unwrap()
    )));

    // The same facts as text, without Markdown.
    let (status, content_type, txt) =
        fetch(&agent, &format!("/api/v1/crashes/{id}?format=text")).await;
    assert_eq!(status, StatusCode::OK, "{txt}");
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert!(txt.starts_with("Crash of edge/gateway/beam at "), "{txt}");
    for fact in [
        "\nDIAGNOSIS\n",
        "Cause: oom_killed, confidence: high",
        "\nRESOURCES\n",
        "\nSYSCALLS\n",
        "  Last syscalls:\n",
        "  Command       tail /dev/zero\n",
        "SIGKILL from the kernel's OOM killer",
        &format!("Report {id} by coroner "),
    ] {
        assert!(txt.contains(fact), "{fact:?} missing in:\n{txt}");
    }
    assert!(
        words(&txt).contains(&words(summary)),
        "the summary in:\n{txt}"
    );
    let peak_row: Vec<&str> = txt
        .lines()
        .find(|l| l.starts_with("  Memory peak "))
        .unwrap_or_else(|| panic!("no memory peak row:\n{txt}"))
        .split_whitespace()
        .collect();
    assert_eq!(&peak_row[4..6], ["20.0", "MiB"], "{peak_row:?}");
    assert!(
        txt.lines()
            .any(|l| l.starts_with("    ") && l.contains(" tail ") && l.contains(" read(3, ")),
        "{txt}"
    );
    for markup in ["```", "## ", "**", "| --- |", "`", "<br>"] {
        assert!(
            !txt.contains(markup),
            "{markup:?} in the text rendering:\n{txt}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_format_is_a_400_naming_format_and_unknown_id_a_404() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let pod = cd.cri().await.run_pod("job", "batch").await;
    pod.container("exit3")
        .command(["sh", "-c", "exit 3"])
        .start()
        .await;
    let report = agent
        .wait_for_report(|r| r["kubernetes"]["container"] == "exit3", REPORT_TIMEOUT)
        .await;
    let id = report["id"].as_str().unwrap();

    let (status, content_type, body) =
        fetch(&agent, &format!("/api/v1/crashes/{id}?format=bogus")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let err: Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(err["error"]["code"], "bad_request", "{err}");
    assert_eq!(err["error"]["param"], "format", "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("bogus"),
        "{err}"
    );

    for format in ["", "?format=markdown", "?format=text"] {
        let (status, _, body) = fetch(
            &agent,
            &format!("/api/v1/crashes/0000000000deadbeef00{format}"),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{format}: {body}");
        let err: Value = serde_json::from_str(&body).expect("a JSON error");
        assert_eq!(err["error"]["code"], "not_found", "{err}");
    }
    // The report itself still renders in either format.
    for format in ["markdown", "text"] {
        let (status, _, body) =
            fetch(&agent, &format!("/api/v1/crashes/{id}?format={format}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("batch/job/exit3"), "{body}");
    }
}
