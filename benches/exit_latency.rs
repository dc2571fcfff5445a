//! Bench: exit-event to report-readable-over-HTTP latency for 50 crashing containers, and the
//! agent's resident memory while it tracks 100 live containers.
//!
//! `cargo bench --bench exit_latency` (root, same packages as the tests). Prints figures; asserts
//! nothing about speed. Latency is measured from containerd's `exited_at` to the moment a poller
//! (every 2 ms) first sees the report listed and then reads it in full over HTTP.

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use harness::{Agent, Containerd};
use serde_json::Value;

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it, as a
/// quick check that the bench still works, with small counts.
fn counts() -> (usize, usize) {
    if std::env::args().any(|a| a == "--bench") {
        (50, 100)
    } else {
        (3, 5)
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
    let (crashes, live) = counts();
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("bench", "bench").await;

    // Poll the list continuously and note when each report first becomes readable.
    let url = agent.base_url();
    let poller = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut seen: HashMap<String, DateTime<Utc>> = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(300);
        while seen.len() < crashes && Instant::now() < deadline {
            let list: Value = match http
                .get(format!("{url}/api/v1/crashes?pod=bench&limit=1000"))
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
    });

    let t0 = Instant::now();
    for i in 0..crashes {
        pod.container(&format!("crash{i}"))
            .command(["sh", "-c", "exit 1"])
            .start()
            .await;
    }
    let started_all = t0.elapsed();
    let seen = poller.await.expect("poller");
    let mut latencies = Vec::new();
    for (id, seen_at) in &seen {
        let (_, r) = agent.get(&format!("/api/v1/crashes/{id}")).await;
        let exited: DateTime<Utc> = r["lifecycle"]["exited_at"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("exited_at");
        latencies.push((*seen_at - exited).num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    assert_eq!(latencies.len(), crashes, "every crash must be reported");
    println!(
        "exit_to_http_readable: {} of {crashes} crashes reported (started in {started_all:?})",
        latencies.len()
    );
    if !latencies.is_empty() {
        println!(
            "exit_to_http_readable_ms: p50={:.1} p90={:.1} p99={:.1} max={:.1}",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.9),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1]
        );
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
