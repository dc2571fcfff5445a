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

/// CPU time (user + system, clock ticks) of the agent's sampler thread, and the agent's RSS.
fn sampler_ticks_and_rss(pid: u32) -> (u64, u64) {
    let mut ticks = None;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("agent tasks") {
        let dir = task.expect("task entry").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "coroner-sampler" {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).expect("sampler stat");
        // Fields after the `(comm)`: state is field 3; utime and stime are 14 and 15.
        let rest = &stat[stat.rfind(')').expect("stat comm") + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        ticks = Some(f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap());
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("agent status");
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS");
    (
        ticks.expect("the agent has no coroner-sampler thread"),
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
    let (idle_ticks, idle_rss) = sampler_ticks_and_rss(pid);
    tokio::time::sleep(WINDOW).await;
    let (idle_after, _) = sampler_ticks_and_rss(pid);

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
    let (before, rss_before) = sampler_ticks_and_rss(pid);
    let started = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let (after, rss_after) = sampler_ticks_and_rss(pid);
    let elapsed = started.elapsed();
    let hz = 100.0; // USER_HZ
    let busy = (after - before) as f64 / hz;
    let idle = (idle_after - idle_ticks) as f64 / hz;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "sampler with {CONTAINERS} containers: {busy:.2} s CPU in {:.1} s ({:.2}% of a core); \
         with none: {idle:.2} s in {:.1} s; agent RSS {:.1} MiB with none, {:.1} -> {:.1} MiB \
         with {CONTAINERS} (history bound {} KiB a container); load {}",
        elapsed.as_secs_f64(),
        busy / elapsed.as_secs_f64() * 100.0,
        WINDOW.as_secs_f64(),
        idle_rss as f64 / MIB as f64,
        rss_before as f64 / MIB as f64,
        rss_after as f64 / MIB as f64,
        (50 + 300) * 32 / 1024,
        load.trim()
    );
    // Generous: 50 containers a second is 150 small file reads; a core's 5% is 50 ms a second.
    assert!(
        busy / elapsed.as_secs_f64() < 0.05,
        "the sampler used {busy:.2} s of CPU in {elapsed:?}"
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
