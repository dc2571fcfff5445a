//! End-to-end test of redaction: a Kubernetes container handed credentials every way people hand
//! them (flags, `mysql -p`, an `Authorization` header, `sh -c` assignments, URLs, labels, an
//! environment variable) that prints credentials on stderr, then every view of its report read
//! through the agent's HTTP API and the log record a real OpenTelemetry collector (rotel)
//! received from the agent's OTLP export: none may show a secret, and each must say `<redacted>`.

mod harness;

use std::time::{Duration, Instant};

use harness::agent::REPORT_TIMEOUT;
use harness::{Agent, Collector, Containerd};
use reqwest::StatusCode;
use serde_json::Value;

/// Each value appears once in the container's command, labels, environment or output, and
/// nowhere else: finding one in a view is a leak.
const SECRETS: [&str; 24] = [
    "PASSPHRASE-VAL",
    "BEARER-ARG-VAL",
    "PASSWORD-ARG-VAL",
    "TOKEN-ARG-VAL",
    "APIKEY-ARG-VAL",
    "SECRET-ARG-VAL",
    "URL-ARG-VAL",
    "ASSIGN-VAL",
    "MYSQL-VAL",
    "MYSQL-SEP-VAL",
    "SSHPASS-VAL",
    "CURL-VAL",
    "STDERR-URL-VAL",
    "STDERR-BEARER-VAL",
    "AKIAABCDEFGHIJKLMNOP",
    "STDERR-AWS-VAL",
    "PEMBODYVAL",
    "SLACKVAL",
    "GHVAL",
    "LASTLINE-VAL",
    "EXEC-VAL",
    "LABEL-PW-VAL",
    "LABEL-URL-VAL",
    "LABEL-BEARER-VAL",
];

const ENV_SECRET: &str = "ENV-VAL";

/// Runs in a busybox `sh`. The programs busybox lacks are never run (a failed PATH lookup would
/// become the diagnosis): what matters is the script text, part of the command, and what
/// reaches stderr. The last command `exec`s a new shell
/// whose argv holds a token and whose last stderr line, quoted by the diagnosis, a password.
fn script() -> String {
    let ghp = format!("ghp_GHVAL{}", "x".repeat(31));
    [
        "DB_PASSWORD=ASSIGN-VAL true",
        "if false; then",
        "  mysql -uroot -pMYSQL-VAL shop",
        "  mysql -p MYSQL-SEP-VAL",
        "  sshpass -p SSHPASS-VAL ssh db",
        r#"  curl -H "Authorization: Bearer CURL-VAL" https://api.example"#,
        "fi",
        r#"echo "connecting to postgres://app:STDERR-URL-VAL@db/prod" >&2"#,
        r#"echo "Authorization: Bearer STDERR-BEARER-VAL" >&2"#,
        r#"echo "aws_access_key_id=AKIAABCDEFGHIJKLMNOP" >&2"#,
        r#"echo "aws_secret_access_key = STDERR-AWS-VAL" >&2"#,
        r#"printf '%s\n' '-----BEGIN RSA PRIVATE KEY-----' PEMBODYVAL '-----END RSA PRIVATE KEY-----' >&2"#,
        r#"echo "slack token xoxb-1234567890-SLACKVAL" >&2"#,
        &format!(r#"echo "github {ghp}" >&2"#),
        r#"exec /bin/sh -c 'echo "fatal: login refused, password=LASTLINE-VAL" >&2; exit 3' coroner --token EXEC-VAL"#,
    ]
    .join("\n")
}

fn command() -> Vec<String> {
    [
        "sh",
        "-c",
        &script(),
        "sh",
        "--passphrase",
        "PASSPHRASE-VAL",
        "-H",
        "Authorization: Bearer BEARER-ARG-VAL",
        "--password=PASSWORD-ARG-VAL",
        "--token",
        "TOKEN-ARG-VAL",
        "--api-key",
        "APIKEY-ARG-VAL",
        "--secret",
        "SECRET-ARG-VAL",
        "https://app:URL-ARG-VAL@db.example/prod",
    ]
    .into_iter()
    .map(str::to_string)
    .collect()
}

fn assert_no_secret(view: &str, body: &str) {
    for secret in SECRETS.iter().chain([&ENV_SECRET]) {
        assert!(!body.contains(secret), "{secret} leaks in {view}:\n{body}");
    }
}

/// `GET path`: 200 and its body.
async fn view(agent: &Agent, path: &str) -> String {
    let (status, body) = agent.get_text(path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// The raw SSE frames up to and including the first `crash` event.
async fn first_crash_frames(resp: &mut reqwest::Response) -> String {
    let deadline = Instant::now() + REPORT_TIMEOUT;
    let mut buf = String::new();
    let complete = |buf: &str| {
        buf.find("event: crash")
            .is_some_and(|at| buf[at..].contains("\n\n"))
    };
    while !complete(&buf) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no crash event within {REPORT_TIMEOUT:?}; got {buf:?}"))
            .expect("reading the event stream")
            .expect("the stream ended");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
    buf
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_is_served_in_any_view_of_a_report() {
    let collector = Collector::start().await;
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd)
        .args(["--otlp-endpoint", &collector.http_endpoint()])
        .start()
        .await;
    let mut feed = reqwest::Client::new()
        .get(format!("{}/api/v1/events", agent.base_url()))
        .send()
        .await
        .expect("GET /api/v1/events");
    assert_eq!(feed.status(), StatusCode::OK);

    let pod = cd
        .cri()
        .await
        .run_pod("vault-7f9c8b6c5d-q2x9z", "payments")
        .await;
    pod.container("login")
        .command(command())
        .env("DB_PASSWORD", ENV_SECRET)
        .label("db-password", "LABEL-PW-VAL")
        .label("backup-url", "postgres://app:LABEL-URL-VAL@db/prod")
        .label("note", "Bearer LABEL-BEARER-VAL")
        .label("team", "payments-core")
        .start()
        .await;
    let report = agent.report_for("vault-7f9c8b6c5d-q2x9z", "login").await;
    let id = report["id"].as_str().unwrap();

    // The report really carries every kind of input: the test would pass vacuously otherwise.
    assert_eq!(report["exit"]["code"], 3, "{report}");
    assert_eq!(report["recorder"]["state"], "recorded", "{report}");
    let stderr = report["recorder"]["output"]["stderr"]["head"]
        .as_str()
        .unwrap_or_else(|| panic!("no captured stderr: {report}"));
    for shown in [
        "postgres://app:<redacted>@db/prod",
        "Authorization: Bearer <redacted>",
        "aws_secret_access_key = <redacted>",
        "-----BEGIN RSA PRIVATE KEY-----<redacted>-----END RSA PRIVATE KEY-----",
        "password=<redacted>",
    ] {
        assert!(stderr.contains(shown), "{shown:?} not in stderr:\n{stderr}");
    }
    let labels = &report["container"]["labels"];
    assert_eq!(labels["db-password"], "<redacted>", "{labels}");
    assert_eq!(labels["backup-url"], "postgres://app:<redacted>@db/prod");
    assert_eq!(labels["note"], "Bearer <redacted>");
    assert_eq!(labels["team"], "payments-core", "ordinary labels are kept");
    let command = report["container"]["command"].to_string();
    for shown in [
        "-p<redacted>",
        "mysql -p <redacted>",
        "sshpass -p <redacted>",
        "--passphrase\",\"<redacted>",
        "--token\",\"<redacted>",
    ] {
        assert!(command.contains(shown), "{shown:?} not in {command}");
    }
    let exec = report["recorder"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "exec")
        .map(|p| p["argv"].to_string())
        .find(|argv| argv.contains("coroner"))
        .unwrap_or_else(|| panic!("the exec of the last shell is not in {report}"));
    assert!(exec.contains("\"--token\",\"<redacted>\""), "{exec}");
    // The one-line diagnosis (the crash list, the feed, groups) quotes the last stderr line.
    let summary = report["diagnosis"]["summary"].as_str().unwrap();
    assert!(summary.contains("password=<redacted>"), "{summary}");

    let json = view(&agent, &format!("/api/v1/crashes/{id}")).await;
    let markdown = view(&agent, &format!("/api/v1/crashes/{id}?format=markdown")).await;
    let text = view(&agent, &format!("/api/v1/crashes/{id}?format=text")).await;
    let page = view(&agent, &format!("/crashes/{id}")).await;
    for (name, body, redacted) in [
        ("the JSON report", &json, "<redacted>"),
        ("the Markdown export", &markdown, "<redacted>"),
        ("the text export", &text, "<redacted>"),
        ("the HTML page", &page, "&lt;redacted&gt;"),
    ] {
        assert_no_secret(name, body);
        assert!(
            body.contains(redacted),
            "{name} does not say {redacted}:\n{body}"
        );
    }
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words(&text).contains(&words(summary)),
        "the text export shows the summary {summary:?}:\n{text}"
    );

    let frames = first_crash_frames(&mut feed).await;
    assert!(frames.contains(id), "{frames}");
    assert_no_secret("the live feed", &frames);
    assert!(frames.contains("password=<redacted>"), "{frames}");

    let list = view(&agent, "/api/v1/crashes?outcome=all").await;
    assert!(list.contains(id), "{list}");
    assert_no_secret("the crash list", &list);
    assert_no_secret("the HTML crash list", &view(&agent, "/").await);
    let groups = view(&agent, "/api/v1/groups").await;
    assert_no_secret("the groups", &groups);
    let groups: Value = serde_json::from_str(&groups).unwrap();
    let group = groups["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["latest_report_id"] == id)
        .unwrap_or_else(|| panic!("no group of {id} in {groups}"));
    let gid = group["id"].as_str().unwrap();
    assert_no_secret(
        "one group",
        &view(&agent, &format!("/api/v1/groups/{gid}")).await,
    );
    assert_no_secret(
        "the HTML group page",
        &view(&agent, &format!("/groups/{gid}")).await,
    );
    assert_no_secret("the metrics", &view(&agent, "/metrics").await);

    // The OTLP export, as the collector decoded it: the body quotes the redacted summary, and
    // nothing the collector printed (every attribute of every record) holds a secret.
    let record = collector.wait_for_report(id, Duration::from_secs(45)).await;
    assert_eq!(record.body, summary, "{record:?}");
    assert!(record.body.contains("password=<redacted>"), "{record:?}");
    assert_eq!(
        record.str("k8s.pod.name"),
        Some("vault-7f9c8b6c5d-q2x9z"),
        "{record:?}"
    );
    assert_no_secret("the OTLP log record", &collector.output());

    // Nor is it written to the node's disk.
    let mut dirs = vec![agent.data_dir().to_path_buf()];
    let mut files = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let body = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                assert_no_secret(&path.display().to_string(), &body);
                files += 1;
            }
        }
    }
    assert!(
        files > 0,
        "no report file in {}",
        agent.data_dir().display()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_redaction_can_be_turned_off_by_its_flag() {
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd)
        .args([
            "--no-redact-args",
            "--no-redact-labels",
            "--no-redact-output",
        ])
        .start()
        .await;
    let pod = cd.cri().await.run_pod("debug", "default").await;
    pod.container("raw")
        .command([
            "sh",
            "-c",
            "echo password=STDERR-VAL >&2; exit 4",
            "sh",
            "--token",
            "TOKEN-VAL",
        ])
        .label("db-password", "LABEL-VAL")
        .start()
        .await;
    let report = agent.report_for("debug", "raw").await;
    let json = report.to_string();
    for kept in ["STDERR-VAL", "TOKEN-VAL", "LABEL-VAL"] {
        assert!(
            json.contains(kept),
            "{kept} redacted despite the flags: {json}"
        );
    }
}
