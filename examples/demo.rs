//! The local demo behind `scripts/demo.sh`: a private containerd with the CRI plugin, the agent,
//! and the four stories coroner was built for, with real programs (Debian's Erlang VM and
//! util-linux in a root built by mmdebstrap, cached under `target/`): a BEAM gateway that dies
//! three ways in crash loops, a database whose new pod cannot take the old pod's lock, a glibc
//! binary in an image without glibc, a tag that moved while an old container kept running. Then
//! what coroner says about them: each story in the diagnosis' words, the `coroner crashes` and
//! `coroner groups` tables, the text postmortem of the OOM kill, the metrics.
//!
//! The stories themselves live in `tests/harness/stories.rs`, which `tests/demo.rs` runs and
//! checks. Needs root and the packages `scripts/install-deps.sh` installs; the first run builds
//! the Erlang image (about a minute, needs a Debian mirror). `--keep` leaves everything running
//! until Ctrl-C so the web page, the CLI and the API can be explored.

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::process::Command;
use std::time::Instant;

use harness::erlang_image::erlang_image;
use harness::stories::{self, cause, summary, BEAM_MEMORY_LIMIT, CART_TAG};
use harness::{Agent, Containerd};
use serde_json::Value;

fn section(title: &str) {
    println!("\n=== {title} ===");
}

/// One line per attempt: where it ran, the cause, coroner's summary; then the latest advice.
fn tell(reports: &[Value]) {
    for r in reports {
        let k = &r["kubernetes"];
        println!(
            "  {}/{}/{} attempt {}  exit {}  {}",
            k["namespace"].as_str().unwrap_or_default(),
            k["pod"].as_str().unwrap_or_default(),
            k["container"].as_str().unwrap_or_default(),
            k["attempt"],
            r["exit"]["code"],
            cause(r)
        );
        println!("      {}", summary(r));
    }
    if let Some(advice) = reports
        .last()
        .and_then(|r| r["diagnosis"]["advice"].as_str())
    {
        println!("  advice: {advice}");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let keep = std::env::args().any(|a| a == "--keep");
    let t0 = Instant::now();
    section("the Erlang image: Debian bookworm's erlang-base and util-linux, built by mmdebstrap");
    let image = tokio::task::spawn_blocking(erlang_image)
        .await
        .expect("building the Erlang image");
    println!(
        "{} ({} MiB layer), {}; packages in {}",
        image.versions.join(", "),
        image.layer_bytes >> 20,
        match image.built_in {
            Some(t) => format!("built in {:.0} s", t.as_secs_f64()),
            None => "from the cache".to_string(),
        },
        image.dir.join("packages.txt").display()
    );

    section("starting a private containerd (CRI plugin, own socket and state) and the agent");
    let cd = Containerd::start().await;
    println!("containerd socket: {}", cd.socket().display());
    let agent = Agent::start(&cd).await;
    let url = agent.base_url();
    println!(
        "coroner agent:     {url}  (data dir {})",
        agent.data_dir().display()
    );

    section("running the four stories over CRI, the way kubelet runs pods (side by side)");
    let t_stories = Instant::now();
    let s = stories::run_all(&cd, &agent).await;
    println!(
        "{} crashes recorded in {:.1} s",
        s.beam.oom.len()
            + s.beam.missing_config.len()
            + s.beam.port_taken.len()
            + s.db.reports.len()
            + s.nif.len()
            + s.stale.reports.len(),
        t_stories.elapsed().as_secs_f64()
    );

    section("1. The BEAM gateway that dies in Kubernetes with no logs");
    println!(
        "An Erlang VM whose session cache never evicts, under a {} MiB limit:",
        BEAM_MEMORY_LIMIT >> 20
    );
    tell(&s.beam.oom);
    println!("One started with `erl -config /etc/gateway/sys`, a file the image lacks:");
    tell(&s.beam.missing_config);
    println!(
        "One listening on port {}, which the previous replica still holds (host network):",
        s.beam.port
    );
    tell(&s.beam.port_taken);

    section("2. The database that fails on redeploy: the old pod still holds mongod.lock");
    println!("The new pod's mongod on the same volume (/data/db) cannot flock the lock file:");
    tell(&s.db.reports);
    if let Some(stderr) = s.db.reports.last().and_then(|r| {
        r["recorder"]["output"]["stderr"]["head"]
            .as_str()
            .map(str::to_string)
    }) {
        println!(
            "  its stderr, as the recorder kept it:\n    {}",
            stderr.trim()
        );
    }

    section("3. The Alpine-vs-Debian NIF: a glibc build in an image without glibc");
    tell(&s.nif);

    section("4. The stale image: the tag moved, the old container kept crashing");
    println!(
        "{CART_TAG} was {} when attempt 1 was created, then re-imported as {}:",
        short(&s.stale.old.config_digest),
        short(&s.stale.new.config_digest)
    );
    tell(&s.stale.reports);

    section(&format!("coroner crashes --url {url}"));
    cli(&url, &["crashes"]);
    section(&format!("coroner groups --url {url}"));
    cli(&url, &["groups"]);

    if let Some(id) = s.beam.oom.last().and_then(|r| r["id"].as_str()) {
        section(&format!(
            "coroner show {id} --url {url}  (the OOM-killed gateway's text postmortem)"
        ));
        cli(&url, &["show", id]);
    }

    section(&format!(
        "GET {}/metrics  (excerpt)",
        agent.metrics_base_url()
    ));
    let (_, metrics) = agent.get_text("/metrics").await;
    for line in metrics.lines().filter(|l| {
        l.starts_with("coroner_crash_causes_total")
            || l.starts_with("coroner_oom_kills_total")
            || l.starts_with("coroner_stale_image_exits_total")
            || l.starts_with("coroner_reports_stored")
    }) {
        println!("{line}");
    }
    println!("\ndemo finished in {:.0} s", t0.elapsed().as_secs_f64());

    if keep {
        println!("\nEverything keeps running. The web page: {url}/");
        println!("Or try:");
        println!("  target/release/coroner crashes --url {url}");
        println!("  target/release/coroner watch --url {url}");
        println!("  curl -s '{url}/api/v1/crashes/<id>?format=markdown'");
        println!("Ctrl-C tears it all down.");
        let _ = tokio::signal::ctrl_c().await;
    }
    section("tearing down");
    drop(s);
    drop(agent);
    drop(cd);
    println!("done");
}

/// `sha256:` and the first 12 hex digits.
fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
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
