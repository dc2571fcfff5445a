//! Bench: the cost of the OTLP export. (1) 1000 stored reports exported at start to a real
//! collector (rotel): wall time, the agent's CPU time and peak memory, against the same agent
//! and data dir without export. (2) Live crashes: the export latency from the report being
//! written to the collector acknowledging it (`coroner_otlp_export_latency_seconds`).
//!
//! `cargo bench --bench otlp_export` (root, same packages as the tests). Prints figures; asserts
//! only that every report arrived.

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use coroner::model::CrashReport;
use harness::{metric_value, Agent, Collector, Containerd};

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it, as a
/// quick check, with small counts.
fn counts() -> (usize, usize) {
    if std::env::args().any(|a| a == "--bench") {
        (1000, 20)
    } else {
        (20, 2)
    }
}

/// `n` distinct reports made from a real one, written the way the store writes them.
fn fill(dir: &Path, n: usize) {
    let mut r: CrashReport =
        serde_json::from_str(include_str!("../tests/fixtures/reports/oom_killed.json")).unwrap();
    r.diagnosis = Some(coroner::diagnose::diagnose(&r));
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for i in 0..n {
        r.id = format!("{:020x}", i + 1);
        r.container.id = format!("{:064x}", i + 1);
        r.lifecycle.exited_at = t0 + chrono::Duration::milliseconds(i as i64);
        r.lifecycle.reported_at = r.lifecycle.exited_at;
        std::fs::write(
            dir.join(format!("{}.json", r.id)),
            serde_json::to_vec_pretty(&r).unwrap(),
        )
        .unwrap();
    }
}

/// (CPU seconds, peak RSS KiB) of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of stat(5); 1-based, after the comm.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    (ticks as f64 / hz, hwm)
}

async fn metric(agent: &Agent, name: &str) -> f64 {
    metric_value(&agent.get_text("/metrics").await.1, name).unwrap_or(f64::NAN)
}

/// Restarts `agent` on a data dir holding `n` reports; returns (seconds until `done`, CPU s,
/// peak RSS KiB) measured from the start of the process.
async fn run_on_stored(agent: &mut Agent, n: usize, wait_exported: bool) -> (f64, f64, u64) {
    agent.kill9();
    fill(agent.data_dir(), n);
    let t0 = Instant::now();
    agent.restart().await;
    if wait_exported {
        let deadline = Instant::now() + Duration::from_secs(300);
        while metric(agent, "coroner_otlp_exported_reports_total").await != n as f64 {
            assert!(Instant::now() < deadline, "export of {n} reports not done");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    } else {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu, hwm) = usage(agent.pid().unwrap());
    (secs, cpu, hwm)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (stored, live) = counts();
    let collector = Collector::start().await;
    let cd = Containerd::start().await;

    let mut plain = Agent::builder(&cd).spawn();
    let (_, base_cpu, base_hwm) = run_on_stored(&mut plain, stored, false).await;
    drop(plain);

    let mut agent = Agent::builder(&cd)
        .args(["--otlp-endpoint", &collector.http_endpoint()])
        .spawn();
    let (secs, cpu, hwm) = run_on_stored(&mut agent, stored, true).await;
    let received = collector.records().len();
    assert_eq!(received, stored, "the collector received every report once");
    println!(
        "export of {stored} stored reports at start: done {secs:.2} s after the agent started; \
         agent CPU {cpu:.2} s (without export {base_cpu:.2} s: +{:.2} s, {:.2} ms a report); \
         peak RSS {} KiB (without export {} KiB: +{} KiB)",
        cpu - base_cpu,
        (cpu - base_cpu) * 1000.0 / stored as f64,
        hwm,
        base_hwm,
        hwm as i64 - base_hwm as i64
    );

    // Live: crashes exported one by one as they are stored.
    let before = metric(&agent, "coroner_otlp_export_latency_seconds_count").await;
    let before_sum = metric(&agent, "coroner_otlp_export_latency_seconds_sum").await;
    let pod = cd.cri().await.run_pod("bench", "bench").await;
    for attempt in 0..live {
        pod.container("app")
            .command(["sh", "-c", "exit 3"])
            .attempt(attempt as u32)
            .start()
            .await;
        agent
            .report_for_attempt("bench", "app", attempt as u64)
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&agent, "coroner_otlp_exported_reports_total").await != (stored + live) as f64 {
        assert!(Instant::now() < deadline, "live reports not exported");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let count = metric(&agent, "coroner_otlp_export_latency_seconds_count").await - before;
    let sum = metric(&agent, "coroner_otlp_export_latency_seconds_sum").await - before_sum;
    let text = agent.get_text("/metrics").await.1;
    let buckets: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("coroner_otlp_export_latency_seconds_bucket"))
        .collect();
    println!(
        "live export latency (report written -> collector acknowledged) over {count} crashes: \
         mean {:.1} ms; cumulative buckets since start (incl. the {stored} stored ones):\n  {}",
        sum / count * 1000.0,
        buckets.join("\n  ")
    );
}
