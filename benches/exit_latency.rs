//! Bench: exit-event to report-readable-over-HTTP latency for 50 crashing containers started one
//! after another, then under a storm of 12 concurrent crash loops (each starting 10 crashing
//! containers back to back), and the agent's resident memory while it tracks 100 live containers.
//!
//! `cargo bench --bench exit_latency` (root, same packages as the tests). Prints figures; asserts
//! nothing about speed. Latency is measured from containerd's `exited_at` to the moment a poller
//! (every 2 ms) first sees the report listed and then reads it in full over HTTP.
//! `CORONER_BENCH_STORM=N` sets the number of concurrent crash loops (0: no storm).

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use harness::{Agent, Containerd};
use serde_json::Value;

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it, as a
/// quick check that the bench still works, with small counts.
/// (crashes one after another, live containers, crash loops of the storm, crashes per loop).
fn counts() -> (usize, usize, usize, usize) {
    if std::env::args().any(|a| a == "--bench") {
        let storm = std::env::var("CORONER_BENCH_STORM").map_or(12, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("CORONER_BENCH_STORM={v:?}: a whole number"))
        });
        (50, 100, storm, 10)
    } else {
        (3, 5, 2, 2)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("agent status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (crashes, live, storm_loops, per_loop) = counts();
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("bench", "bench").await;
    println!("load: {}", load());

    let t0 = Instant::now();
    let seen = poll_reports(agent.base_url(), "bench", crashes);
    for i in 0..crashes {
        pod.container(&format!("crash{i}"))
            .command(["sh", "-c", "exit 1"])
            .start()
            .await;
    }
    let started_all = t0.elapsed();
    let latencies = read_latencies(&agent, &seen.await.expect("poller")).await;
    assert_eq!(latencies.len(), crashes, "every crash must be reported");
    print_latencies("exit_to_http_readable", &latencies, started_all);

    if storm_loops > 0 {
        // Crash loops: each starts its next crashing container as soon as the last one started.
        let storm_pod = cri.run_pod("storm", "bench").await;
        let total = storm_loops * per_loop;
        let t0 = Instant::now();
        let seen = poll_reports(agent.base_url(), "storm", total);
        let loops: Vec<_> = (0..storm_loops)
            .map(|l| {
                let pod = storm_pod.clone();
                tokio::spawn(async move {
                    for i in 0..per_loop {
                        pod.container(&format!("loop{l}-{i}"))
                            .command(["sh", "-c", "exit 1"])
                            .start()
                            .await;
                    }
                })
            })
            .collect();
        for l in loops {
            l.await.expect("crash loop");
        }
        let started_all = t0.elapsed();
        let latencies = read_latencies(&agent, &seen.await.expect("poller")).await;
        assert_eq!(
            latencies.len(),
            total,
            "every crash of the storm must be reported"
        );
        print_latencies(
            &format!("storm_{storm_loops}_crash_loops_exit_to_http_readable"),
            &latencies,
            started_all,
        );
        storm_pod.stop().await;
    }

    let pid = agent.pid().expect("agent pid");
    let rss_idle = rss_kib(pid);
    let t1 = Instant::now();
    let live_pod = cri.run_pod("bench-live", "bench").await;
    for i in 0..live {
        live_pod
            .container(&format!("live{i}"))
            .command(["sleep", "3600"])
            .start()
            .await;
    }
    // Let enrichment of the last ones finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, metrics) = agent.get_text("/metrics").await;
    let tracked = metrics
        .lines()
        .find(|l| l.starts_with("coroner_tracked_containers "))
        .unwrap_or("coroner_tracked_containers ?")
        .to_string();
    let rss_live = rss_kib(pid);
    println!(
        "live_containers_started: {live} in {:?}; {tracked}",
        t1.elapsed()
    );
    println!(
        "agent_rss_kib: after {crashes} reports={rss_idle} with {live} live containers={rss_live} ({:.1} MiB)",
        rss_live as f64 / 1024.0
    );
    live_pod.stop().await;
}

/// Polls the pod's reports continuously and notes when each first becomes readable in full.
fn poll_reports(
    url: String,
    pod: &'static str,
    expected: usize,
) -> tokio::task::JoinHandle<HashMap<String, DateTime<Utc>>> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut seen: HashMap<String, DateTime<Utc>> = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(300);
        while seen.len() < expected && Instant::now() < deadline {
            let list: Value = match http
                .get(format!("{url}/api/v1/crashes?pod={pod}&limit=1000"))
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            for item in list["items"].as_array().into_iter().flatten() {
                let id = item["id"].as_str().unwrap_or_default().to_string();
                if seen.contains_key(&id) {
                    continue;
                }
                let full = http.get(format!("{url}/api/v1/crashes/{id}")).send().await;
                if full.is_ok_and(|r| r.status().is_success()) {
                    seen.insert(id, Utc::now());
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        seen
    })
}

/// Milliseconds from each report's `exited_at` to when the poller first read it, sorted.
async fn read_latencies(agent: &Agent, seen: &HashMap<String, DateTime<Utc>>) -> Vec<f64> {
    let mut out = Vec::new();
    for (id, seen_at) in seen {
        let (_, r) = agent.get(&format!("/api/v1/crashes/{id}")).await;
        let exited: DateTime<Utc> = r["lifecycle"]["exited_at"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("exited_at");
        out.push((*seen_at - exited).num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    out.sort_by(f64::total_cmp);
    out
}

fn print_latencies(name: &str, latencies: &[f64], started_all: Duration) {
    println!(
        "{name}: {} crashes reported (started in {started_all:?}; load {})",
        latencies.len(),
        load()
    );
    if !latencies.is_empty() {
        println!(
            "{name}_ms: p50={:.1} p90={:.1} p99={:.1} max={:.1}",
            percentile(latencies, 0.5),
            percentile(latencies, 0.9),
            percentile(latencies, 0.99),
            latencies[latencies.len() - 1]
        );
    }
}

/// The 1-, 5- and 15-minute load averages.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
