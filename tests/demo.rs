//! The demo's four stories (`scripts/demo.sh`, `examples/demo.rs`), run as the demo runs them
//! (`tests/harness/stories.rs`): each report must carry the cause the demo tells. Uses the Erlang
//! image (Debian's `erlang-base`, built once by mmdebstrap and cached under `target/`).

mod harness;

use harness::stories::{
    cause, run_all, summary, ATTEMPTS, BEAM_MEMORY_LIMIT, CART_TAG, CONFIG_POD, MONGO_LOCK_MESSAGE,
    MONGO_POD, NIF_POD, OOM_POD, PORT_POD,
};
use harness::{metric_value, Agent, Containerd};
use serde_json::Value;

fn all_attempts(reports: &[Value], want: &str) {
    assert_eq!(reports.len(), ATTEMPTS as usize);
    for r in reports {
        assert_eq!(cause(r), want, "{}", r["diagnosis"]);
    }
}

/// The stories' futures are deep (four stories, each through the harness's CRI and agent
/// calls): in a debug build they overflow a test thread's 2 MiB stack, so they run on a thread
/// and runtime workers with 32 MiB.
#[test]
fn the_demo_tells_four_stories_with_their_causes() {
    const STACK: usize = 32 << 20;
    let run = std::thread::Builder::new()
        .name("demo".into())
        .stack_size(STACK)
        .spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(STACK)
                .build()
                .expect("tokio runtime")
                .block_on(Box::pin(tell_four_stories()))
        })
        .expect("spawning the demo thread");
    if let Err(panic) = run.join() {
        std::panic::resume_unwind(panic);
    }
}

async fn tell_four_stories() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let s = run_all(&cd, &agent).await;

    // 1. The BEAM gateway: OOM-killed at its limit, beam.smp the victim, peak = limit.
    all_attempts(&s.beam.oom, "oom_killed");
    for r in &s.beam.oom {
        assert_eq!(r["exit"]["code"], 137, "{}", r["exit"]);
        assert_eq!(
            r["recorder"]["oom_victim"]["comm"], "beam.smp",
            "{}",
            r["recorder"]["oom_victim"]
        );
        assert_eq!(
            r["cgroup"]["limits"]["memory_limit_bytes"],
            BEAM_MEMORY_LIMIT
        );
        let peak = r["cgroup"]["usage"]["memory_peak_bytes"]
            .as_u64()
            .expect("peak read at the exit");
        assert!(
            (BEAM_MEMORY_LIMIT * 95 / 100..=BEAM_MEMORY_LIMIT).contains(&peak),
            "peak {peak} vs limit {BEAM_MEMORY_LIMIT}"
        );
        assert!(summary(r).contains("`beam.smp`"), "{}", summary(r));
        assert!(summary(r).contains("128.0 MiB"), "{}", summary(r));
    }
    // ... halted at boot on a missing sys.config ...
    all_attempts(&s.beam.missing_config, "config_error");
    for r in &s.beam.missing_config {
        assert!(
            summary(r).contains("/etc/gateway/sys.config"),
            "{}",
            summary(r)
        );
    }
    // ... and unable to listen on the port the previous replica holds.
    all_attempts(&s.beam.port_taken, "address_in_use");
    for r in &s.beam.port_taken {
        assert!(
            summary(r).contains("{badmatch,{error,eaddrinuse}}"),
            "{}",
            summary(r)
        );
    }

    // 2. The database on redeploy: the old pod's lock, MongoDB's words on stderr.
    all_attempts(&s.db.reports, "lock_held");
    for r in &s.db.reports {
        assert_eq!(r["exit"]["code"], 100, "{}", r["exit"]);
        assert!(
            summary(r).contains("could not lock /data/db/mongod.lock: flock = EAGAIN"),
            "{}",
            summary(r)
        );
        let stderr = r["recorder"]["output"]["stderr"]["head"]
            .as_str()
            .unwrap_or_default();
        assert!(stderr.contains(MONGO_LOCK_MESSAGE), "{stderr}");
    }

    // 3. The glibc build in an image without glibc: the ELF loader is missing.
    all_attempts(&s.nif, "exec_failed");
    for r in &s.nif {
        assert!(
            summary(r)
                .contains("its ELF interpreter /lib64/ld-linux-x86-64.so.2 is not in the image"),
            "{}",
            summary(r)
        );
    }

    // 4. The stale image: the attempt created from the old content ran it after the tag moved.
    let [before, after] = &s.stale.reports[..] else {
        panic!("two attempts: {:?}", s.stale.reports)
    };
    assert_eq!(before["image_tag"]["status"], "current", "{before:#}");
    let tag = &after["image_tag"];
    assert_eq!(tag["reference"], CART_TAG, "{after:#}");
    assert_eq!(tag["status"], "moved", "{after:#}");
    assert_eq!(
        tag["ran"]["config_digest"],
        s.stale.old.config_digest.as_str()
    );
    assert_eq!(
        tag["now"]["config_digest"],
        s.stale.new.config_digest.as_str()
    );
    // The moved tag explains no death: the cause stays the program's own exit, and the wait for
    // the re-import leaves nothing the diagnosis would quote.
    assert_eq!(cause(after), cause(before), "{}", summary(after));
    assert_eq!(cause(after), "exited_error", "{}", summary(after));
    assert!(
        summary(after)
            .contains("last line on stderr: cart v1: no PAYMENTS_URL. The image tag has moved"),
        "{}",
        summary(after)
    );
    assert!(
        summary(after).contains(&format!("`{CART_TAG}` now resolves to")),
        "{}",
        summary(after)
    );

    // The crash loops are groups of the workloads, one per cause, with every attempt.
    let (_, groups) = agent.get("/api/v1/groups").await;
    let groups = groups["items"].as_array().expect("groups");
    for (owner, want) in [
        (OOM_POD, "oom_killed"),
        (CONFIG_POD, "config_error"),
        (PORT_POD, "address_in_use"),
        (MONGO_POD, "lock_held"),
        (NIF_POD, "exec_failed"),
    ] {
        let owner = owner.rsplitn(3, '-').nth(2).unwrap();
        let g = groups
            .iter()
            .find(|g| g["workload"]["owner"] == owner)
            .unwrap_or_else(|| panic!("no group of {owner}: {groups:#?}"));
        assert_eq!(g["cause"], want, "{g}");
        assert_eq!(g["count"], u64::from(ATTEMPTS), "{g}");
    }

    let (_, metrics) = agent.get_text("/metrics").await;
    assert_eq!(
        metric_value(
            &metrics,
            r#"coroner_stale_image_exits_total{namespace="shop",pod="cart-7c9d8b6f5-m4n2x",container="cart",status="moved"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
}
