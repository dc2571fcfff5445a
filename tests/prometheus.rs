//! Prometheus for real: Debian's `prometheus` server scrapes the agent under the harness's real
//! containerd and CRI, PromQL returns the crash counters, and the shipped alert rules fire on the
//! agent's real output; `promtool` lints the agent's /metrics and runs the rules' unit tests.
//! Needs root and the `prometheus` package (scripts/install-deps.sh).

mod harness;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::kube::{render, repo_root, yaml_to_json};
use harness::{Agent, Containerd};
use serde_json::Value;

const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(60);

fn rules_file() -> PathBuf {
    repo_root().join("deploy/prometheus/coroner.rules.yaml")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// A Prometheus server scraping one target every second, with coroner's rules loaded.
struct Prometheus {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Prometheus {
    fn start(target: &str, metrics_path: &str) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("coroner-prometheus-")
            .tempdir()
            .unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n  - job_name: coroner\n    metrics_path: {metrics_path}\n    \
                 static_configs:\n      - targets: ['{target}']\n        labels:\n          node: node-a\n",
                rules = rules_file().display()
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting prometheus (apt-get install prometheus): {e}"));
        Prometheus { dir, port, child }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Option<Value> {
        let url = reqwest::Url::parse_with_params(
            &format!("http://127.0.0.1:{}{path}", self.port),
            params,
        )
        .unwrap();
        let resp = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(url)
            .send()
            .await
            .ok()?;
        resp.json::<Value>().await.ok()
    }

    /// Polls an instant query until `accept` takes its result; panics with the server's log.
    async fn wait_query(&self, query: &str, accept: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + PROMETHEUS_TIMEOUT;
        let mut last = Value::Null;
        loop {
            if let Some(v) = self.api("/api/v1/query", &[("query", query)]).await {
                if let Some(result) = v["data"]["result"].as_array() {
                    if accept(result) {
                        return result.clone();
                    }
                }
                last = v;
            }
            assert!(
                Instant::now() < deadline,
                "query {query} never gave the expected result (last: {last}); prometheus log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn value_of(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_agent_and_the_rules_fire_on_its_crash_counters() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let (target, path) = agent.metrics_target();
    let prom = Prometheus::start(&target, path);
    prom.wait_query("up{job=\"coroner\"}", |r| {
        r.len() == 1 && value_of(&r[0]) == 1.0
    })
    .await;

    let cri = cd.cri().await;
    let gateway = cri.run_pod("gateway", "edge").await;
    gateway
        .container("beam")
        .command(["tail", "/dev/zero"])
        .memory_limit(20 << 20)
        .start()
        .await;
    agent.report_for("gateway", "beam").await;
    let api = cri.run_pod("api", "shop").await;
    for attempt in 0..3 {
        api.container("server")
            .command(["sh", "-c", "exit 3"])
            .attempt(attempt)
            .start()
            .await;
        agent
            .report_for_attempt("api", "server", attempt.into())
            .await;
    }

    let exits = prom
        .wait_query(
            "coroner_container_exits_total{namespace=\"shop\",pod=\"api\",container=\"server\"}",
            |r| r.len() == 1 && value_of(&r[0]) == 3.0,
        )
        .await;
    assert_eq!(exits[0]["metric"]["reason"], "error");
    assert_eq!(exits[0]["metric"]["node"], "node-a");
    prom.wait_query(
        "coroner_oom_kills_total{namespace=\"edge\",pod=\"gateway\",container=\"beam\"}",
        |r| r.len() == 1 && value_of(&r[0]) == 1.0,
    )
    .await;
    let causes = prom
        .wait_query("sum by (cause) (coroner_crash_causes_total)", |r| {
            r.len() == 2
        })
        .await;
    let mut causes: Vec<(String, f64)> = causes
        .iter()
        .map(|s| {
            (
                s["metric"]["cause"].as_str().unwrap().to_string(),
                value_of(s),
            )
        })
        .collect();
    causes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        causes,
        [
            ("exited_error".to_string(), 3.0),
            ("oom_killed".to_string(), 1.0)
        ]
    );

    // The shipped rules on the real series: one OOM kill and a crash loop of three exits, each
    // counter created by its first event.
    let deadline = Instant::now() + PROMETHEUS_TIMEOUT;
    loop {
        let alerts = prom.api("/api/v1/alerts", &[]).await.unwrap_or_default();
        let firing: Vec<(String, String)> = alerts["data"]["alerts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|a| a["state"] == "firing")
                    .map(|a| {
                        (
                            a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                            a["labels"]["pod"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let want = [
            ("CoronerOOMKilled".to_string(), "gateway".to_string()),
            ("CoronerCrashLoop".to_string(), "api".to_string()),
        ];
        if want.iter().all(|w| firing.contains(w)) {
            assert!(
                !firing.iter().any(|(name, _)| name == "CoronerNotReady"
                    || name == "CoronerStoreFailing"
                    || name.starts_with("CoronerExport")),
                "{firing:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alerts firing: {firing:?}, expected {want:?}; prometheus log:\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs promtool with `stdin` (if any); returns (success, stdout + stderr).
fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running promtool (apt-get install prometheus): {e}"));
    {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn promtool_check_metrics_is_clean_on_the_agents_metrics() {
    let cd = Containerd::start().await;
    // An endpoint nobody listens on: the export's error counters carry values too.
    let agent = Agent::builder(&cd)
        .args([
            "--otlp-endpoint",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .start()
        .await;
    let pod = cd.cri().await.run_pod("gateway", "edge").await;
    pod.container("beam")
        .command(["tail", "/dev/zero"])
        .memory_limit(20 << 20)
        .start()
        .await;
    agent.report_for("gateway", "beam").await;
    let (status, text) = agent.get_text("/metrics").await;
    assert_eq!(status, 200);
    for family in [
        "coroner_container_exits_total{",
        "coroner_oom_kills_total{",
        "coroner_crash_causes_total{",
        "coroner_otlp_pending_reports ",
        "coroner_otlp_export_errors_total{",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    let (ok, out) = promtool(&["check", "metrics"], Some(&text));
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics:\n{out}\non:\n{text}"
    );
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let rules = rules_file();
    let (ok, out) = promtool(&["check", "rules", rules.to_str().unwrap()], None);
    assert!(ok, "promtool check rules:\n{out}");
    let tests = repo_root().join("deploy/prometheus/coroner.rules.test.yaml");
    let (ok, out) = promtool(&["test", "rules", tests.to_str().unwrap()], None);
    assert!(ok, "promtool test rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every alert has a unit test that sees it fire.
#[test]
fn every_alert_rule_has_a_firing_unit_test() {
    let read = |p: &Path| yaml_to_json(&std::fs::read_to_string(p).unwrap());
    let rules = read(&rules_file());
    let tests = read(&repo_root().join("deploy/prometheus/coroner.rules.test.yaml"));
    let alerts: Vec<&str> = rules[0]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter_map(|r| r["alert"].as_str())
        .collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    for alert in alerts {
        let fires = tests[0]["tests"].as_array().unwrap().iter().any(|t| {
            t["alert_rule_test"].as_array().is_some_and(|cases| {
                cases.iter().any(|c| {
                    c["alertname"] == alert
                        && c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty())
                })
            })
        });
        assert!(fires, "{alert} has no unit test in which it fires");
    }
}

#[test]
fn the_prometheus_rule_carries_the_plain_rules_files_groups() {
    let objects = render(&repo_root().join("deploy/overlays/prometheus-operator"));
    let rule = objects
        .iter()
        .find(|o| o["kind"] == "PrometheusRule")
        .expect("the prometheus-operator overlay ships a PrometheusRule");
    assert_eq!(rule["metadata"]["namespace"], "coroner");
    let plain = yaml_to_json(&std::fs::read_to_string(rules_file()).unwrap());
    assert_eq!(rule["spec"]["groups"], plain[0]["groups"]);
}
