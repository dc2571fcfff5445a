//! Bench: what turning a report into an answer costs the agent. Times, per real report of
//! `tests/fixtures/reports/`, the diagnosis rules, the Markdown and text exports, the HTML page
//! and (for scale) the JSON the store writes; and the crash-loop grouping over as many summaries
//! as the default retention keeps (5000), which `/api/v1/groups` recomputes on every request.
//!
//! `cargo bench --bench diagnose_render` prints the median of many runs per operation. Without
//! `--bench` (`cargo test --all-targets`) it runs a few iterations: a smoke check that it works.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::Utc;
use coroner::model::{CrashReport, CrashSummary};

const FIXTURES: [&str; 10] = [
    "address_in_use",
    "completed",
    "exec_failed",
    "exited_error",
    "exited_error_no_recorder",
    "killed_by_host",
    "lock_held",
    "oom_killed",
    "pids_limit",
    "segfault",
];

fn load(name: &str) -> CrashReport {
    let path = format!(
        "{}/tests/fixtures/reports/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut r: CrashReport = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    r.diagnosis = Some(coroner::diagnose::diagnose(&r));
    r
}

/// Median time of `f` over `runs` runs.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

/// `n` summaries of `workloads` crash-looping workloads, spread over causes.
fn summaries(reports: &[CrashReport], n: usize, workloads: usize) -> Vec<CrashSummary> {
    (0..n)
        .map(|i| {
            let mut r = reports[i % reports.len()].clone();
            r.id = format!("{i:020x}");
            if let Some(k) = r.kubernetes.as_mut() {
                k.pod = format!("app{}-7d9f8b6c5d-x2x9q", i % workloads);
            }
            r.lifecycle.exited_at += chrono::Duration::seconds(i as i64);
            r.summary()
        })
        .collect()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runs = if full { 2000 } else { 5 };
    let reports: Vec<CrashReport> = FIXTURES.iter().map(|n| load(n)).collect();
    let now = Utc::now();

    println!(
        "{:<26} {:>9} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "report (median µs)", "diagnose", "markdown", "text", "html", "json", "json KiB"
    );
    for (name, r) in FIXTURES.iter().zip(&reports) {
        let diagnose = median(runs, || {
            black_box(coroner::diagnose::diagnose(black_box(r)));
        });
        let markdown = median(runs, || {
            black_box(coroner::render::markdown(black_box(r)));
        });
        let text = median(runs, || {
            black_box(coroner::render::text(black_box(r)));
        });
        let html = median(runs, || {
            black_box(coroner::http::pages::report_html(black_box(r), now));
        });
        let json = median(runs, || {
            black_box(serde_json::to_vec_pretty(black_box(r)).unwrap());
        });
        let size = serde_json::to_vec_pretty(r).unwrap().len();
        println!(
            "{name:<26} {:>9} {:>10} {:>10} {:>10} {:>10} {:>9.1}",
            us(diagnose),
            us(markdown),
            us(text),
            us(html),
            us(json),
            size as f64 / 1024.0
        );
    }

    let (n, workloads) = (5000, 200);
    let all = summaries(&reports, n, workloads);
    let group_runs = if full { 50 } else { 2 };
    let t = median(group_runs, || {
        black_box(coroner::groups::group(black_box(&all)));
    });
    let groups = coroner::groups::group(&all).len();
    // Every workload crashed with something (only some runs are the `completed` fixture).
    assert!(
        groups >= workloads * 8 / 10,
        "{groups} groups for {workloads} workloads"
    );
    println!(
        "grouping {n} summaries of {workloads} workloads into {groups} groups: {:.2} ms (median of {group_runs})",
        t.as_secs_f64() * 1e3
    );
}
