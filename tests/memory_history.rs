//! Memory history before death, with real containers under a real agent: a container that leaks
//! into its limit shows a rising history and the OOM diagnosis calls it steady growth; one that
//! allocates everything at once is called a jump; and the sampler's cost with 50 live
//! containers (CPU of its thread, the agent's memory) is measured and bounded.

mod harness;

use std::time::{Duration, Instant};

use harness::{Agent, Containerd};
use serde_json::Value;

const MIB: i64 = 1 << 20;
const REPORT_WAIT: Duration = Duration::from_secs(90);

/// busybox awk, holding a new 128 KiB string every ~20 ms (a busy loop between): memory
/// charged to the cgroup grows about 6 MiB/s, no forks, awk is the container's init.
const LEAK: &str = "BEGIN { s = \"x\"; for (i = 0; i < 17; i++) s = s s; \
                    while (1) { a[n++] = s n; for (i = 0; i < 100000; i++); } }";

/// Flat for 1.5 s, then doubling a string to 64 MiB in a few ms: one allocation after another,
/// each as large as all before it.
const BURST: &str = "sleep 1.5; exec awk 'BEGIN { s = \"x\"; for (i = 0; i < 26; i++) s = s s }'";

fn memory_samples(r: &Value) -> Vec<(u64, u64)> {
    r["usage_history"]["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["t_ms"].as_u64()?, s["memory_bytes"].as_u64()?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leak_into_an_oom_has_a_rising_history_called_steady_growth() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    let leak = cri.run_pod("leaky", "default").await;
    let burst = cri.run_pod("bursty", "default").await;
    leak.container("app")
        .command(["awk", LEAK])
        .memory_limit(24 * MIB)
        .start()
        .await;
    burst
        .container("app")
        .command(["sh", "-c", BURST])
        .memory_limit(24 * MIB)
        .start()
        .await;

    let r = agent
        .wait_for_report(|r| r["kubernetes"]["pod"] == "leaky", REPORT_WAIT)
        .await;
    let pretty = || serde_json::to_string_pretty(&r["usage_history"]).unwrap();
    assert_eq!(r["diagnosis"]["cause"], "oom_killed", "{}", r["diagnosis"]);
    let samples = memory_samples(&r);
    assert!(samples.len() >= 5, "{}", pretty());
    // Rising: the last sample well above the first, and most steps up.
    let (first, last) = (samples[0].1, samples[samples.len() - 1].1);
    assert!(last > first + 8 * MIB as u64, "{}", pretty());
    let ups = samples.windows(2).filter(|w| w[1].1 > w[0].1).count();
    assert!(ups * 3 >= (samples.len() - 1) * 2, "{}", pretty());
    // 100 ms apart at the start.
    assert!(samples[1].0 - samples[0].0 <= 250, "{}", pretty());
    let summary = r["diagnosis"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("memory grew steadily for")
            && summary.contains("a leak, or a workload too big for its limit"),
        "{summary}"
    );
    println!("leak: {} samples; {summary}", samples.len());

    let r = agent
        .wait_for_report(|r| r["kubernetes"]["pod"] == "bursty", REPORT_WAIT)
        .await;
    assert_eq!(r["diagnosis"]["cause"], "oom_killed", "{}", r["diagnosis"]);
    let samples = memory_samples(&r);
    assert!(samples.len() >= 10, "{:#}", r["usage_history"]);
    let summary = r["diagnosis"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("memory jumped from") && summary.contains("one large allocation"),
        "{summary}\n{:#}",
        r["usage_history"]
    );
    println!("burst: {} samples; {summary}", samples.len());
}

/// CPU time of the agent's sampler thread (ns on CPU, from `schedstat`), and the agent's RSS.
fn sampler_cpu_and_rss(pid: u32) -> (Duration, u64) {
    let mut cpu = None;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("agent tasks") {
        let dir = task.expect("task entry").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "coroner-sampler" {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("schedstat")).expect("sampler schedstat");
        let ns: u64 = stat
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("schedstat's first field");
        cpu = Some(Duration::from_nanos(ns));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("agent status");
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS");
    (
        cpu.expect("the agent has no coroner-sampler thread"),
        rss_kib * 1024,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sampler_cost_with_50_containers() {
    const CONTAINERS: usize = 50;
    const WINDOW: Duration = Duration::from_secs(10);
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let pid = agent.pid().expect("agent pid");
    let cri = cd.cri().await;
    let (idle_cpu, idle_rss) = sampler_cpu_and_rss(pid);
    tokio::time::sleep(WINDOW).await;
    let (idle_after, _) = sampler_cpu_and_rss(pid);
    let idle = idle_after - idle_cpu;

    // The start: containers created one after another (~8 s for 50), each sampled every
    // 100 ms for its first 5 s.
    let (start_cpu, _) = sampler_cpu_and_rss(pid);
    let start_began = Instant::now();
    let mut ids = Vec::new();
    for p in 0..5 {
        let pod = cri.run_pod(&format!("many-{p}"), "default").await;
        for c in 0..CONTAINERS / 5 {
            let id = pod
                .container(&format!("c{c}"))
                .command(["sleep", "3600"])
                .memory_limit(64 * MIB)
                .start()
                .await;
            ids.push(id);
        }
    }
    // Past every container's first 5 s at 100 ms: the steady state, one sample a second each.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (before, rss_before) = sampler_cpu_and_rss(pid);
    let start_phase = (before - start_cpu, start_began.elapsed());
    let started = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let (after, rss_after) = sampler_cpu_and_rss(pid);
    let elapsed = started.elapsed();
    let busy = after - before;
    let share = busy.as_secs_f64() / elapsed.as_secs_f64();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "sampler, {CONTAINERS} containers, steady (1 s each): {busy:?} CPU in {elapsed:.1?} \
         ({:.3}% of a core, {:.0} µs a sample); while they started (100 ms each for 5 s): \
         {:?} in {:.1?}; no containers: {idle:?} in {WINDOW:?}; agent RSS {:.1} MiB with none, \
         {:.1} -> {:.1} MiB with {CONTAINERS} (history bound ~11 KiB a container); loadavg {}",
        share * 100.0,
        busy.as_secs_f64() * 1e6 / (CONTAINERS as f64 * elapsed.as_secs_f64()),
        start_phase.0,
        start_phase.1,
        idle_rss as f64 / MIB as f64,
        rss_before as f64 / MIB as f64,
        rss_after as f64 / MIB as f64,
        load.trim()
    );
    // Generous: 50 containers a second is 150 small file reads; a core's 5% is 50 ms a second.
    assert!(
        share < 0.05,
        "the sampler used {busy:?} of CPU in {elapsed:?}"
    );

    for id in &ids[..5] {
        cri.stop_container(id, 0).await;
    }
    for id in &ids[..5] {
        let wanted = id.clone();
        let r = agent
            .wait_for_report(
                move |r| r["container"]["id"] == wanted.as_str(),
                REPORT_WAIT,
            )
            .await;
        let samples = memory_samples(&r);
        // ~5 s at 100 ms, then one a second for 10 s and more.
        assert!(samples.len() >= 40, "{id}: {:#}", r["usage_history"]);
    }
}
