//! Programs that exist but cannot be executed, run for real through CRI: the report's
//! `entrypoint` section (read from the container's filesystem at create time) and the
//! diagnosis that explains the failed exec with it, read through the agent's HTTP API.
//!
//! `CORONER_CAPTURE_FIXTURES=1` also writes each report to `tests/fixtures/reports/<case>.json`,
//! the real reports the unit tests of `src/diagnose/rules/exec_failed.rs` are built from.

mod harness;

use harness::exec_images::{import_exec_images, EXEC_FAILURES_IMAGE, NO_LIBC_IMAGE};
use harness::{Agent, Containerd};
use serde_json::Value;

async fn setup() -> (Containerd, Agent) {
    let cd = Containerd::start().await;
    import_exec_images(&cd).await;
    let agent = Agent::start(&cd).await;
    (cd, agent)
}

/// Runs `command` from `image` in its own pod; returns the report of its exit, saved as a
/// fixture when asked to, after checking that every piece of evidence points at a field the
/// report has.
async fn run(cd: &Containerd, agent: &Agent, case: &str, image: &str, command: &[&str]) -> Value {
    let pod = case.replace('_', "-");
    let p = cd.cri().await.run_pod(&pod, "default").await;
    p.container("app")
        .image(image)
        .command(command.to_vec())
        .start()
        .await;
    let r = agent.report_for(&pod, "app").await;
    if std::env::var_os("CORONER_CAPTURE_FIXTURES").is_some() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports");
        let mut bare = r.clone();
        bare.as_object_mut().unwrap().remove("diagnosis");
        std::fs::write(
            dir.join(format!("{case}.json")),
            serde_json::to_string_pretty(&bare).unwrap() + "\n",
        )
        .unwrap();
    }
    let d = &r["diagnosis"];
    for e in d["evidence"].as_array().expect("evidence list") {
        let field = e["field"].as_str().unwrap();
        assert!(
            r.pointer(field).is_some_and(|v| !v.is_null()),
            "evidence {e} points at {field}, which the report lacks"
        );
    }
    r
}

fn summary(r: &Value) -> &str {
    r["diagnosis"]["summary"]
        .as_str()
        .unwrap_or_else(|| panic!("no diagnosis: {r}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_elf_loader_and_missing_script_interpreter_are_named() {
    let (cd, agent) = setup().await;

    // The Alpine-vs-Debian mistake: a glibc binary, no glibc. runc's exec of it fails.
    let r = run(
        &cd,
        &agent,
        "exec_glibc_without_loader",
        EXEC_FAILURES_IMAGE,
        &["/app/gateway"],
    )
    .await;
    let e = &r["entrypoint"]["executables"][0];
    // Through the live `runc init` as a rule; through the bundle when it already exited.
    let read_from = r["entrypoint"]["read_from"].as_str();
    assert!(
        matches!(read_from, Some("process_root" | "bundle_rootfs")),
        "{}",
        r["entrypoint"]
    );
    assert!(r["entrypoint"]["unavailable"].is_null(), "{r}");
    assert_eq!(r["collection_errors"], serde_json::json!([]));
    assert_eq!(e["path"], "/app/gateway", "{r}");
    assert_eq!(e["kind"], "elf");
    assert_eq!(e["interpreter"], "/lib64/ld-linux-x86-64.so.2");
    assert_eq!(e["interpreter_present"], false);
    let d = &r["diagnosis"];
    assert_eq!(d["cause"], "exec_failed", "{d}");
    assert_eq!(d["confidence"], "high", "{d}");
    assert_eq!(
        summary(&r),
        "exec of /app/gateway failed: ENOENT: its ELF interpreter /lib64/ld-linux-x86-64.so.2 \
         is not in the image (a glibc binary in a musl or static image)"
    );

    // A Python script in an image without Python.
    let r = run(
        &cd,
        &agent,
        "exec_script_without_interpreter",
        EXEC_FAILURES_IMAGE,
        &["/app/run.py"],
    )
    .await;
    assert_eq!(r["entrypoint"]["executables"][0]["kind"], "script", "{r}");
    assert_eq!(r["diagnosis"]["cause"], "exec_failed", "{}", r["diagnosis"]);
    assert_eq!(
        summary(&r),
        "exec of /app/run.py failed: ENOENT: its #! interpreter /usr/bin/python3 is not in the image"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_machine_and_missing_execute_bit_are_named() {
    let (cd, agent) = setup().await;

    let r = run(
        &cd,
        &agent,
        "exec_foreign_machine",
        EXEC_FAILURES_IMAGE,
        &["/app/arm64"],
    )
    .await;
    assert_eq!(
        r["entrypoint"]["executables"][0]["machine"], "aarch64",
        "{r}"
    );
    assert_eq!(r["diagnosis"]["cause"], "exec_failed", "{}", r["diagnosis"]);
    let s = summary(&r);
    assert!(
        s.starts_with("exec of /app/arm64 failed: ENOEXEC: it is an ELF binary for aarch64"),
        "{s}"
    );
    assert!(s.contains("exec format error"), "{s}");

    // runc refuses a file without an execute bit before the container starts (StartContainer
    // fails); behind a shell, the shell's exec fails with EACCES and it exits 126.
    let r = run(
        &cd,
        &agent,
        "exec_without_execute_bit",
        EXEC_FAILURES_IMAGE,
        &["sh", "-c", "/app/notexec.sh"],
    )
    .await;
    let wrapped = &r["entrypoint"]["executables"][1];
    assert_eq!(wrapped["path"], "/app/notexec.sh", "{r}");
    assert_eq!(wrapped["executable"], false);
    assert_eq!(r["exit"]["code"], 126);
    assert_eq!(r["diagnosis"]["cause"], "exec_failed", "{}", r["diagnosis"]);
    assert_eq!(
        summary(&r),
        "exec of /app/notexec.sh failed: EACCES: it has no execute bit (mode 0644)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_shared_library_is_named() {
    let (cd, agent) = setup().await;
    // glibc's loader is there, libc.so.6 is not: the exec succeeds, the loader exits 127.
    let r = run(
        &cd,
        &agent,
        "exec_missing_library",
        NO_LIBC_IMAGE,
        &["/app/gateway"],
    )
    .await;
    let e = &r["entrypoint"]["executables"][0];
    assert_eq!(e["interpreter_present"], true, "{r}");
    assert_eq!(e["missing_libraries"], serde_json::json!(["libc.so.6"]));
    assert_eq!(r["exit"]["code"], 127);
    assert_eq!(r["diagnosis"]["cause"], "exec_failed", "{}", r["diagnosis"]);
    let s = summary(&r);
    assert!(
        s.ends_with(
            "the dynamic loader could not load /app/gateway: libc.so.6 is not in the image"
        ),
        "{s}"
    );
}
