//! The local demo behind `scripts/demo.sh`: a private containerd with the CRI plugin, the agent,
//! a few containers that die in the ways production ones do (one of them in a crash loop), and
//! what coroner says about them: the `coroner crashes` and `coroner groups` tables, the OOM
//! report as JSON and as the text postmortem, the metrics. Needs root and the packages
//! `scripts/install-deps.sh` installs.
//!
//! `--keep` leaves everything running until Ctrl-C so the web page, the CLI and the API can be
//! explored.

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{Agent, Containerd};
use serde_json::Value;

fn section(title: &str) {
    println!("\n=== {title} ===");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let keep = std::env::args().any(|a| a == "--keep");
    section("starting a private containerd (CRI plugin, own socket and state)");
    let cd = Containerd::start().await;
    println!("containerd socket: {}", cd.socket().display());
    let agent = Agent::start(&cd).await;
    let url = agent.base_url();
    println!(
        "coroner agent:     {url}  (data dir {})",
        agent.data_dir().display()
    );

    section("running containers the way kubelet does, over CRI");
    let cri = cd.cri().await;
    let pod = cri.run_pod("gateway-7d9f", "shop").await;
    let scenarios: [(&str, &str, Option<i64>); 4] = [
        ("config-loader", "echo loading config >&2; exit 3", None),
        ("beam", "head -c 100000000 /dev/zero | tail", Some(20 << 20)),
        ("migrate", "echo migrated; exit 0", None),
        ("sidecar", "exec sleep 3600", None),
    ];
    let mut ids = Vec::new();
    for (name, script, limit) in scenarios {
        let mut c = pod
            .container(name)
            .command(["sh", "-c", script])
            .env("DB_PASSWORD", "hunter2");
        if let Some(l) = limit {
            c = c.memory_limit(l);
        }
        ids.push((name, c.start().await));
        println!(
            "started {name:<14} sh -c {script:?}{}",
            limit
                .map(|l| format!(" (memory limit {} MiB)", l >> 20))
                .unwrap_or_default()
        );
    }
    let sidecar = &ids[3].1;
    cri.wait_running(sidecar, Duration::from_secs(10)).await;
    println!("stopping sidecar through CRI (as kubelet does on a rollout)");
    cri.stop_container(sidecar, 1).await;
    let plain = cd
        .plain("batch-job")
        .command(["sh", "-c", "exit 42"])
        .run()
        .await;
    println!("started a plain containerd container (namespace coroner-plain) exiting 42");
    let looping = cri.run_pod("mongo-0", "db").await;
    for attempt in 0..3 {
        looping
            .container("mongod")
            .command(["sh", "-c", "cat /data/db/mongod.conf"])
            .attempt(attempt)
            .start()
            .await;
        let n = u64::from(attempt);
        agent
            .wait_for_report(
                move |r| {
                    r["kubernetes"]["container"] == "mongod" && r["kubernetes"]["attempt"] == n
                },
                Duration::from_secs(30),
            )
            .await;
    }
    println!("ran db/mongo-0/mongod three times, as kubelet restarts a crash-looping container");

    for (name, _) in &ids {
        let n = name.to_string();
        agent
            .wait_for_report(
                move |r| r["kubernetes"]["container"] == n.as_str(),
                Duration::from_secs(30),
            )
            .await;
    }
    agent
        .wait_for_report(
            |r| r["container"]["id"] == "batch-job",
            Duration::from_secs(30),
        )
        .await;

    section(&format!("coroner crashes --outcome all --url {url}"));
    cli(&url, &["crashes", "--outcome", "all"]);
    section(&format!("coroner groups --url {url}"));
    cli(&url, &["groups"]);

    let (_, list) = agent.get("/api/v1/crashes").await;
    let oom = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["oom_killed"] == true)
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(id) = oom["id"].as_str() {
        section(&format!(
            "GET {url}/api/v1/crashes/{id}  (the OOM-killed container)"
        ));
        let (_, mut report) = agent.get(&format!("/api/v1/crashes/{id}")).await;
        trim_for_screen(&mut report);
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        println!("(flight recorder and syscall summary trimmed for the screen; the API serves them whole)");
        section(&format!(
            "coroner show {id} --url {url}  (the text postmortem)"
        ));
        cli(&url, &["show", id]);
    }

    section(&format!(
        "GET {}/metrics  (excerpt)",
        agent.metrics_base_url()
    ));
    let (_, metrics) = agent.get_text("/metrics").await;
    for line in metrics.lines().filter(|l| {
        l.starts_with("coroner_container_exits_total")
            || l.starts_with("coroner_oom_kills_total")
            || l.starts_with("coroner_crash_causes_total")
            || l.starts_with("coroner_reports_stored")
    }) {
        println!("{line}");
    }

    if keep {
        println!("\nEverything keeps running. Open {url}/ in a browser, or try:");
        println!("  target/release/coroner crashes --url {url}");
        println!("  target/release/coroner watch --url {url}");
        println!("  curl -s '{url}/api/v1/crashes/<id>?format=markdown'");
        println!("Ctrl-C tears it all down.");
        let _ = tokio::signal::ctrl_c().await;
    }
    section("tearing down");
    plain.remove().await;
    pod.remove().await;
    looping.remove().await;
    drop(agent);
    drop(cd);
    println!("done");
}

/// Runs the CLI client (the agent's own binary) against the agent and prints what it prints.
fn cli(url: &str, args: &[&str]) {
    let out = Command::new(harness::agent::agent_binary())
        .args(args)
        .args(["--url", url])
        .env("COLUMNS", "160")
        .output()
        .expect("running the coroner CLI");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
}

/// Keeps the last few flight-recorder entries and the top of the syscall summary.
fn trim_for_screen(report: &mut Value) {
    let rec = &mut report["recorder"];
    for (field, keep_last, n) in [
        ("flight_recorder", true, 6),
        ("summary", false, 6),
        ("processes", false, 8),
    ] {
        if let Some(items) = rec[field].as_array_mut() {
            if items.len() > n {
                if keep_last {
                    items.drain(..items.len() - n);
                } else {
                    items.truncate(n);
                }
            }
        }
    }
}
