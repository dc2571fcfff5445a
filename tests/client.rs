//! The command-line client (`coroner crashes | show | groups | watch`) run as a subprocess
//! against a real agent watching real containers that crash, asserting on what an SRE would see:
//! stdout, stderr and the exit code.

mod harness;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use harness::agent::agent_binary;
use harness::{Agent, Containerd};
use serde_json::Value;

use harness::agent::REPORT_TIMEOUT;
const WIDE: &str = "400";

/// One finished run of the client.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `coroner <args>` with a clean environment (no CORONER_* of the developer's) plus `env`.
async fn coroner_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(agent_binary())
            .args(&args)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running coroner {args:?}: {e}"));
        Run {
            code: out
                .status
                .code()
                .expect("coroner exited, not killed by a signal"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// `coroner <args>` in a terminal 400 columns wide, so nothing is cut.
async fn coroner(args: &[&str]) -> Run {
    coroner_env(args, &[("COLUMNS", WIDE)]).await
}

fn id_of(report: &Value) -> String {
    report["id"].as_str().expect("report id").to_string()
}

/// The table line that mentions `needle`.
fn line_with<'a>(table: &'a str, needle: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{table}"))
}

/// The cells of a table line (columns are separated by at least two spaces; cells here have no
/// double spaces).
fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oom_kill_is_listed_with_its_cause_and_shown_in_every_format() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let url = agent.base_url();
    let report = harness::scenarios::oom_of_init(&cd, &agent).await;
    let id = id_of(&report);
    let summary = report["diagnosis"]["summary"]
        .as_str()
        .expect("a diagnosis");

    let list = coroner(&["crashes", "--url", &url]).await;
    assert_eq!(list.code, 0, "{list:?}");
    let header = list.stdout.lines().next().unwrap();
    assert_eq!(
        cells(header),
        [
            "AGE",
            "NAMESPACE",
            "POD",
            "CONTAINER",
            "EXIT",
            "CAUSE",
            "ID",
            "DIAGNOSIS"
        ]
    );
    let row = cells(line_with(&list.stdout, &id));
    assert_eq!(
        row[1..7],
        [
            "edge",
            "gateway",
            "beam",
            "137/SIGKILL OOM",
            "oom_killed",
            id.as_str()
        ],
        "{}",
        list.stdout
    );
    // The cause filter reaches the agent: the OOM kill is all there is of it, and no crash is
    // `completed`.
    let ooms = coroner(&["crashes", "--cause", "oom_killed", "--url", &url]).await;
    assert_eq!(ooms.code, 0, "{ooms:?}");
    assert!(ooms.stdout.contains(&id), "{}", ooms.stdout);
    let none = coroner(&["crashes", "--cause", "completed", "--url", &url]).await;
    assert_eq!(none.code, 0, "{none:?}");
    assert!(!none.stdout.contains(&id), "{}", none.stdout);
    assert!(
        row[0].ends_with('s') || row[0].ends_with('m'),
        "age {}",
        row[0]
    );
    assert_eq!(
        row[7..].join("  "),
        summary,
        "the whole diagnosis fits 400 columns"
    );

    // A narrow terminal cuts the diagnosis, never the id.
    let narrow = coroner_env(&["crashes", "--url", &url], &[("COLUMNS", "80")]).await;
    assert_eq!(narrow.code, 0, "{narrow:?}");
    for line in narrow.stdout.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} chars: {line}",
            line.chars().count()
        );
    }
    let row = line_with(&narrow.stdout, &id);
    assert!(row.ends_with('…'), "{row}");

    let json = coroner(&[
        "crashes",
        "--url",
        &url,
        "--namespace",
        "edge",
        "-o",
        "json",
    ])
    .await;
    assert_eq!(json.code, 0, "{json:?}");
    let items: Value = serde_json::from_str(&json.stdout).expect("--output json is JSON");
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["cause"], "oom_killed");
    assert_eq!(items[0]["oom_killed"], true);

    let none = coroner(&["crashes", "--url", &url, "--namespace", "elsewhere"]).await;
    assert_eq!(none.code, 0, "{none:?}");
    assert_eq!(none.stdout, "", "nothing on stdout when nothing matches");
    assert!(none.stderr.contains("no crashed reports match"), "{none:?}");

    for format in ["text", "markdown"] {
        let shown = coroner(&["show", &id, "--url", &url, "--format", format]).await;
        assert_eq!(shown.code, 0, "{shown:?}");
        let (status, body) = agent
            .get_text(&format!("/api/v1/crashes/{id}?format={format}"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(shown.stdout.trim_end(), body.trim_end(), "{format}");
        assert!(
            shown.stdout.contains("gateway"),
            "{format}: {}",
            shown.stdout
        );
    }
    let default = coroner(&["show", &id, "--url", &url]).await;
    let (_, text) = agent
        .get_text(&format!("/api/v1/crashes/{id}?format=text"))
        .await;
    assert_eq!(
        default.stdout.trim_end(),
        text.trim_end(),
        "text is the default"
    );
    let shown = coroner(&["show", &id, "--url", &url, "-f", "json"]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    let full: Value = serde_json::from_str(&shown.stdout).expect("show -f json is JSON");
    assert_eq!(full["id"], id.as_str());
    assert_eq!(full["diagnosis"]["cause"], "oom_killed");
    assert_eq!(full["oom"]["killed"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn show_of_an_unknown_id_exits_4_and_says_where_ids_come_from() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let url = agent.base_url();
    for id in ["0123456789abcdef0123", "not-an-id"] {
        let run = coroner(&["show", id, "--url", &url]).await;
        assert_eq!(run.code, 4, "{run:?}");
        assert_eq!(run.stdout, "");
        assert!(
            run.stderr
                .contains(&format!("has no report with id \"{id}\""))
                && run.stderr.contains("coroner crashes"),
            "{}",
            run.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_agent_exits_3_with_the_port_forward_hint() {
    // A port nobody listens on: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = coroner(&["crashes", "--url", &url]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "coroner: cannot reach the agent at {url} (connection refused): is `kubectl \
             port-forward -n coroner ds/coroner {port}:7464` running? (or pass --url)"
        )
    );
    // CORONER_URL is the same setting.
    let run = coroner_env(&["groups"], &[("CORONER_URL", &url)]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains(&url), "{}", run.stderr);
    // So is a first `watch` connection: it does not retry a wrong URL forever.
    let run = coroner(&["watch", "--url", &url, "--count", "1"]).await;
    assert_eq!(run.code, 3, "{run:?}");

    // A port that accepts connections but never answers: a timeout, also exit 3.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let run = coroner(&["show", "0123", "--url", &url, "--timeout", "500ms"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("no answer within 500ms"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_filter_exits_5_with_the_agents_message() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let url = agent.base_url();
    let run = coroner(&["groups", "--url", &url, "--cause", "oom"]).await;
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.stderr
            .starts_with("coroner: the agent refused the request (HTTP 400): ")
            && run
                .stderr
                .contains("query parameter `cause`: \"oom\" is not one of oom_killed"),
        "{}",
        run.stderr
    );
    let run = coroner(&["crashes", "--url", &url, "--pod", ""]).await;
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.stderr
            .contains("query parameter `pod`: must not be empty"),
        "{}",
        run.stderr
    );
    // What the client parses itself is a usage error, before any request.
    let run = coroner(&["crashes", "--url", &url, "--since", "yesterday"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--since"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_attempts_of_the_same_crash_are_one_group_of_count_2() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let url = agent.base_url();
    let pod = cd.cri().await.run_pod("loop", "default").await;
    pod.container("app")
        .command(["sh", "-c", "exit 3"])
        .start()
        .await;
    let first = agent.report_for_attempt("loop", "app", 0).await;
    pod.container("app")
        .command(["sh", "-c", "exit 3"])
        .attempt(1)
        .start()
        .await;
    let second = agent.report_for_attempt("loop", "app", 1).await;
    let cause = second["diagnosis"]["cause"].as_str().unwrap().to_string();
    assert_eq!(first["diagnosis"]["cause"], cause.as_str());

    let run = coroner(&["groups", "--url", &url]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        cells(run.stdout.lines().next().unwrap()),
        [
            "LAST",
            "FIRST",
            "COUNT",
            "NAMESPACE",
            "WORKLOAD",
            "CONTAINER",
            "CAUSE",
            "STATUS",
            "LATEST REPORT",
            "SUMMARY"
        ]
    );
    assert_eq!(run.stdout.lines().count(), 2, "one group:\n{}", run.stdout);
    let row = cells(line_with(&run.stdout, &id_of(&second)));
    assert_eq!(
        row[2..9],
        [
            "2",
            "default",
            "loop",
            "app",
            cause.as_str(),
            "current",
            id_of(&second).as_str()
        ],
        "{}",
        run.stdout
    );

    let run = coroner(&["groups", "--url", &url, "--pod", "loop", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let groups: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
    assert_eq!(groups[0]["count"], 2);
    assert_eq!(groups[0]["latest_report_id"], id_of(&second).as_str());
    assert_eq!(groups[0]["report_ids"][1], id_of(&first).as_str());

    let other = if cause == "oom_killed" {
        "killed"
    } else {
        "oom_killed"
    };
    let run = coroner(&["groups", "--url", &url, "--cause", other, "-o", "json"]).await;
    assert_eq!((run.code, run.stdout.trim()), (0, "[]"), "{run:?}");
}

/// A running `coroner watch`, killed on drop; its output lines arrive on channels.
struct Watch {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

impl Watch {
    fn start(args: &[&str]) -> Watch {
        let mut child = Command::new(agent_binary())
            .arg("watch")
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting coroner watch");
        let lines = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().unwrap()));
        let stderr = lines(Box::new(child.stderr.take().unwrap()));
        Watch {
            child,
            stdout,
            stderr,
            stderr_seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle`.
    async fn expect_stderr(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            while let Ok(line) = self.stderr.try_recv() {
                let found = line.contains(needle);
                self.stderr_seen.push(line);
                if found {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no stderr line with {needle:?} within {timeout:?}; stderr so far: {:#?}",
                self.stderr_seen
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn next_line(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(line) = self.stdout.try_recv() {
                return line;
            }
            while let Ok(line) = self.stderr.try_recv() {
                self.stderr_seen.push(line);
            }
            assert!(
                Instant::now() < deadline,
                "no line on stdout within {timeout:?}; stderr: {:#?}",
                self.stderr_seen
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("exited, not killed");
            }
            assert!(
                Instant::now() < deadline,
                "watch still running after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_prints_a_crash_that_happens_after_it_started() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let url = agent.base_url();
    let mut watch = Watch::start(&["--url", &url, "--count", "1"]);
    // Connected (and so subscribed) before the crash happens.
    watch
        .expect_stderr(&format!("watching {url}"), Duration::from_secs(10))
        .await;
    let pod = cd.cri().await.run_pod("checkout", "shop").await;
    pod.container("cart")
        .command(["sh", "-c", "sleep 1; exit 42"])
        .start()
        .await;
    let line = watch.next_line(REPORT_TIMEOUT).await;
    assert_eq!(
        watch.wait_exit(Duration::from_secs(5)).await,
        0,
        "--count 1 exits 0"
    );
    let report = agent.report_for_attempt("checkout", "cart", 0).await;
    let cause = report["diagnosis"]["cause"].as_str().unwrap();
    let fields = cells(&line);
    assert_eq!(
        fields[1..7],
        [
            "shop",
            "checkout",
            "cart",
            "42",
            cause,
            id_of(&report).as_str()
        ],
        "{line}"
    );
    assert!(fields[0].ends_with('Z'), "exit time first: {line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_reconnects_after_the_agent_restarts_and_loses_no_crash() {
    let cd = Containerd::start().await;
    let mut agent = Agent::start(&cd).await;
    let url = agent.base_url();
    let mut watch = Watch::start(&["--url", &url, "--count", "2"]);
    watch
        .expect_stderr(&format!("watching {url}"), Duration::from_secs(10))
        .await;
    let pod = cd.cri().await.run_pod("relay", "default").await;
    pod.container("before")
        .command(["sh", "-c", "exit 5"])
        .start()
        .await;
    let first = watch.next_line(REPORT_TIMEOUT).await;
    assert!(first.contains("  before  "), "{first}");

    // The agent goes away; a container exits while nobody watches (its stopped task stays in
    // containerd, so the restarted agent recovers it); the agent comes back on the same port.
    let plain = cd
        .plain("during")
        .command(["sh", "-c", "sleep 1; exit 6"])
        .run()
        .await;
    agent.kill9();
    watch
        .expect_stderr("lost the event stream", Duration::from_secs(10))
        .await;
    plain.wait_exited(Duration::from_secs(10)).await;
    agent.restart().await;

    watch
        .expect_stderr("reconnected", Duration::from_secs(40))
        .await;
    let second = watch.next_line(REPORT_TIMEOUT).await;
    assert!(
        second.contains("  during  ") && second.contains("  6  "),
        "{second}"
    );
    assert_eq!(watch.wait_exit(Duration::from_secs(5)).await, 0);
    plain.remove().await;
    assert!(
        watch
            .stderr_seen
            .iter()
            .any(|l| l.contains("reconnecting in")),
        "says so on stderr: {:#?}",
        watch.stderr_seen
    );
}
