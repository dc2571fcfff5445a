//! Crash stacks end to end: a real container whose program faults in a named function, run over
//! CRI on the harness's containerd, with the agent's report read through its API. The kernel
//! takes the stack at the signal; the agent names the frames from the container's own files.

mod harness;

use harness::crash_images::{import_crash_image, CRASH, CRASH_IMAGE, CRASH_STRIPPED};
use harness::{Agent, Containerd};
use serde_json::Value;

/// Runs `program` from [`CRASH_IMAGE`] in a pod named `pod` and returns its report, Markdown and
/// page.
async fn crash_report(
    cd: &Containerd,
    agent: &Agent,
    pod: &str,
    program: &str,
) -> (Value, String, String) {
    let p = cd.cri().await.run_pod(pod, "default").await;
    p.container("worker")
        .image(CRASH_IMAGE)
        .command([program])
        .start()
        .await;
    let r = agent.report_for(pod, "worker").await;
    let id = r["id"].as_str().expect("the report has an id").to_string();
    let (_, md) = agent
        .get_text(&format!("/api/v1/crashes/{id}?format=markdown"))
        .await;
    let (_, page) = agent.get_text(&format!("/crashes/{id}")).await;
    (r, md, page)
}

fn frames(stack: &Value) -> &Vec<Value> {
    stack["frames"].as_array().expect("frames")
}

/// One agent for both programs, one crash at a time: every loaded recorder takes the stack of
/// every crash, and when two take a build-id stack at the same instant on one CPU the second
/// gets addresses only (docs/stacks.md, Limits), which is a test artifact, not what a node with
/// one agent sees.
#[tokio::test(flavor = "multi_thread")]
async fn segfaults_report_their_stack_named_or_by_build_id() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    import_crash_image(&cd).await;
    segfault_in_a_named_function_reports_the_function_its_caller_and_line(&cd, &agent).await;
    segfault_in_a_stripped_binary_reports_addresses_and_build_id(&cd, &agent).await;
}

async fn segfault_in_a_named_function_reports_the_function_its_caller_and_line(
    cd: &Containerd,
    agent: &Agent,
) {
    let (r, md, page) = crash_report(cd, agent, "named", CRASH).await;
    assert_eq!(r["exit"]["signal_name"], "SIGSEGV", "{}", r["exit"]);
    let stack = &r["recorder"]["crash_stack"];
    assert_eq!(stack["signal"], "SIGSEGV", "{stack}");
    assert_eq!(stack["code"], "SEGV_MAPERR", "{stack}");
    assert_eq!(stack["fault_address"], "0x0", "{stack}");
    assert_eq!(stack["fault_mapping"]["mapped"], false, "{stack}");
    let f = frames(stack);
    assert!(f.len() >= 3, "{stack}");
    assert_eq!(f[0]["function"], "crash_here", "{stack}");
    assert_eq!(f[0]["source_file"], "crash.c", "{stack}");
    assert_eq!(f[0]["line"], 3, "{stack}");
    assert_eq!(f[0]["object"], CRASH, "{stack}");
    assert!(
        f[0]["build_id"].as_str().is_some_and(|b| b.len() == 40),
        "{stack}"
    );
    assert_eq!(f[1]["function"], "start_work", "{stack}");
    assert_eq!(f[1]["line"], 6, "{stack}");
    assert_eq!(f[2]["function"], "main", "{stack}");
    // Past main the walk is in glibc's start code (no frame pointers): whatever it finds there
    // may be unnamed, but nothing of the program itself.
    let errors = stack["symbolization_errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !errors
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.contains(CRASH))),
        "{stack}"
    );

    let summary = r["diagnosis"]["summary"].as_str().unwrap_or_default();
    assert_eq!(r["diagnosis"]["cause"], "crashed", "{}", r["diagnosis"]);
    assert!(
        summary.contains("in `crash_here()` at crash.c:3, called from `start_work()`"),
        "{summary}"
    );
    assert!(
        summary.contains("accessing 0x0 (no mapping there)"),
        "{summary}"
    );
    assert!(
        md.contains("Crash stack") && md.contains("`crash_here+0x"),
        "{md}"
    );
    assert!(
        page.contains("id=\"crash-stack\""),
        "the page has the stack table"
    );
    assert!(
        page.contains("crash_here") && page.contains("crash.c:3"),
        "{page}"
    );
}

async fn segfault_in_a_stripped_binary_reports_addresses_and_build_id(
    cd: &Containerd,
    agent: &Agent,
) {
    let (r, md, _) = crash_report(cd, agent, "stripped", CRASH_STRIPPED).await;
    let stack = &r["recorder"]["crash_stack"];
    let f = frames(stack);
    assert!(f.len() >= 3, "{stack}");
    for frame in f.iter().take(3) {
        assert!(frame.get("function").is_none(), "stripped: {stack}");
        assert!(
            frame["address"]
                .as_str()
                .is_some_and(|a| a.starts_with("0x")),
            "{stack}"
        );
        assert!(
            frame["build_id"].as_str().is_some_and(|b| b.len() == 40),
            "{stack}"
        );
        assert!(frame["file_offset"].as_str().is_some(), "{stack}");
        assert_eq!(
            frame["object"], CRASH_STRIPPED,
            "found by build id: {stack}"
        );
    }
    let errors = stack["symbolization_errors"].as_array().expect("a reason");
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.contains(CRASH_STRIPPED))),
        "{stack}"
    );
    let summary = r["diagnosis"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(&format!("in {CRASH_STRIPPED} (not symbolized)")),
        "{summary}"
    );
    assert!(md.contains("Not symbolized"), "{md}");
}
