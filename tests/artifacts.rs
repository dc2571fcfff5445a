//! Post-mortem files from dead containers, for real: an Erlang VM that halts with a slogan
//! (Debian's `erlang-base`, through CRI), a JVM out of heap (its hs_err log, its heap dump) and a container whose files are found only in its
//! writable layer after the task is gone; read back through the agent's HTTP API, with the
//! token, as JSON, Markdown, text and the page. Also the measured windows in which a dead
//! container's filesystem can be read (`docs/artifacts.md`).

mod harness;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::erlang_image::{import_erlang_image, ERLANG_IMAGE};
use harness::runtimes_image::{import_runtimes_image, runtimes_image, RUNTIMES_IMAGE};
use harness::{Agent, Containerd};
use reqwest::StatusCode;
use serde_json::Value;

const TOKEN: &str = "artifact-test-token";

fn files(r: &Value) -> &Vec<Value> {
    r["artifacts"]["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no artifacts.files in the report: {r:#}"))
}

fn file<'a>(r: &'a Value, name: &str) -> &'a Value {
    files(r)
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no artifact {name} in {:#}", r["artifacts"]))
}

fn key_line<'a>(f: &'a Value, label: &str) -> &'a str {
    f["key_lines"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["label"] == label)
        .and_then(|k| k["text"].as_str())
        .unwrap_or_else(|| panic!("no key line {label} in {f:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn erlang_halt_keeps_the_crash_dump_and_quotes_its_slogan() {
    let cd = Containerd::start().await;
    import_erlang_image(&cd).await;
    let agent = Agent::builder(&cd).api_token(TOKEN).start().await;
    let pod = cd.cri().await.run_pod("beam", "default").await;
    pod.container("gateway")
        .image(ERLANG_IMAGE)
        .env("HOME", "/tmp")
        .command([
            "/usr/bin/erl",
            "-noshell",
            "-eval",
            "erlang:halt(\"my slogan\").",
        ])
        .start()
        .await;
    let r = agent.report_for("beam", "gateway").await;
    let id = r["id"].as_str().unwrap().to_string();

    // The VM said where it wrote the dump; the agent kept it and quotes what it says.
    let dump = file(&r, "erl_crash.dump");
    assert_eq!(dump["path"], "/erl_crash.dump", "{dump:#}");
    assert_eq!(dump["kind"], "erlang_crash_dump");
    assert_eq!(dump["content_type"], "text/plain; charset=utf-8");
    assert_eq!(dump["redacted"], true, "text is redacted by default");
    assert_eq!(key_line(dump, "slogan"), "my slogan");
    assert!(
        key_line(dump, "system_version").starts_with("Erlang/OTP"),
        "{dump:#}"
    );
    assert!(key_line(dump, "memory_total").contains("bytes"), "{dump:#}");
    let evidence = r["diagnosis"]["evidence"].to_string();
    assert!(
        evidence.contains("my slogan"),
        "diagnosis does not quote the slogan: {evidence}"
    );
    for e in r["diagnosis"]["evidence"].as_array().unwrap() {
        let field = e["field"].as_str().unwrap();
        assert!(
            r.pointer(field).is_some(),
            "evidence points at missing {field}"
        );
    }
    let stderr = r["recorder"]["output"]["stderr"]["head"]
        .as_str()
        .unwrap_or_default();
    println!(
        "read_from={} size={} stored={} stderr={stderr:?}",
        r["artifacts"]["read_from"], dump["size_bytes"], dump["stored_bytes"]
    );

    // Served with the report's content type, behind the token.
    let url = format!("/api/v1/crashes/{id}/artifacts/erl_crash.dump");
    let (status, body) = agent.get_text(&url).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.starts_with("=erl_crash_dump"),
        "{}",
        &body[..body.len().min(200)]
    );
    assert!(body.contains("Slogan: my slogan"));
    assert_eq!(body.len() as u64, dump["kept_bytes"].as_u64().unwrap());
    let raw = reqwest::Client::new();
    let resp = raw.get(agent.url(&url)).send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "no token, no artifact"
    );
    let resp = raw
        .get(agent.url(&url))
        .bearer_auth(TOKEN)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let gz = resp.bytes().await.unwrap();
    assert_eq!(gz.len() as u64, dump["stored_bytes"].as_u64().unwrap());
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, body);

    // Unknown names and paths that try to leave the report's directory are 404s.
    for bad in [
        "nope.dump",
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2E%2E",
        "erl_crash.dump.gz",
        "..",
    ] {
        let (status, body) = agent
            .get(&format!("/api/v1/crashes/{id}/artifacts/{bad}"))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{bad}: {body}");
    }
    let (status, _) = agent
        .get("/api/v1/crashes/0123456789abcdef/artifacts/erl_crash.dump")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every rendering lists it.
    for (path, needle) in [
        (format!("/api/v1/crashes/{id}?format=markdown"), url.clone()),
        (format!("/api/v1/crashes/{id}?format=text"), url.clone()),
        (format!("/crashes/{id}"), format!("href=\"{url}\"")),
    ] {
        let (status, text) = agent.get_text(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            text.contains(&needle),
            "{path} does not list the artifact:\n{text}"
        );
        assert!(
            text.contains("my slogan"),
            "{path} does not quote the slogan"
        );
    }

    // Retention removes it with the report: the file is beside the report in the data dir.
    let stored = agent
        .data_dir()
        .join("artifacts")
        .join(&id)
        .join("erl_crash.dump.gz");
    assert!(stored.is_file(), "{} missing", stored.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn files_a_dead_container_wrote_are_found_in_its_writable_layer_after_the_task_is_gone() {
    let cd = Containerd::start().await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("jvm-like", "default").await;
    let script = "mkdir -p /data && \
        printf 'user=app\\napi_token=s3cr3t-value\\n' > /data/state.txt && \
        printf '#\\n#  SIGSEGV (0xb) at pc=0x0000000000401136, pid=1, tid=1\\n# Problematic frame:\\n# C  [app+0x1136]  crash_here+0x6\\n' > /tmp/hs_err_pid1.log && \
        printf '\\177ELF\\002\\001\\001\\000core' > /core && \
        echo 'state dumped to /data/state.txt' >&2; exit 3";
    let id = pod
        .container("app")
        .command(["sh", "-c", script])
        .start()
        .await;
    cri.wait_exited(&id, Duration::from_secs(30)).await;
    // The agent starts after the exit: the CRI deletes the task (and unmounts its root) within
    // 100 ms, so only the snapshot's upper directory still has the files.
    let bundle_rootfs = cd
        .dir()
        .join("state/io.containerd.runtime.v2.task/k8s.io")
        .join(&id)
        .join("rootfs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while bundle_rootfs.join("data").exists() {
        assert!(
            Instant::now() < deadline,
            "task root still mounted after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let agent = Agent::builder(&cd).api_token(TOKEN).start().await;
    let r = agent.report_for("jvm-like", "app").await;
    assert_eq!(r["recovered"], true);
    assert_eq!(
        r["artifacts"]["read_from"], "snapshot_upper",
        "{:#}",
        r["artifacts"]
    );

    let hs_err = file(&r, "hs_err_pid1.log");
    assert_eq!(hs_err["path"], "/tmp/hs_err_pid1.log");
    assert_eq!(hs_err["kind"], "jvm_error_log");
    assert!(key_line(hs_err, "signal").starts_with("SIGSEGV (0xb) at pc=0x0000000000401136"));
    assert_eq!(
        key_line(hs_err, "problematic_frame"),
        "C  [app+0x1136]  crash_here+0x6"
    );

    // Named in the output, and redacted: the token never leaves the node.
    let state = file(&r, "state.txt");
    assert_eq!(state["kind"], "named_in_output");
    assert_eq!(state["redacted"], true);
    let id = r["id"].as_str().unwrap();
    let (status, body) = agent
        .get_text(&format!("/api/v1/crashes/{id}/artifacts/state.txt"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("user=app"), "{body}");
    assert!(!body.contains("s3cr3t-value"), "secret served: {body}");

    // A core is a memory image: listed, not kept, unless the agent is told to keep raw files.
    let skipped = r["artifacts"]["skipped"].to_string();
    assert!(
        skipped.contains("\"/core\"") && skipped.contains("--no-redact-artifacts"),
        "{skipped}"
    );
    assert!(files(&r).iter().all(|f| f["path"] != "/core"));
}

/// Runs the runtimes image's `Heap` (which fills a 32 MiB heap) with `flag` in pod `pod`,
/// working directory `/srv`, and returns its report. The password on the command line is in the
/// hs_err log's "Command Line:" and "jvm_args:".
async fn run_jvm(cri: &harness::Cri, agent: &Agent, pod: &str, flag: &str) -> Value {
    let command =
        format!("exec java -Xmx32m {flag} -Dapp.password=s3cr3t-value -cp /opt/cases/java Heap");
    let p = cri.run_pod(pod, "default").await;
    p.container("app")
        .image(RUNTIMES_IMAGE)
        .env("HOME", "/root")
        .working_dir("/srv")
        .command(["/bin/sh", "-c", &command])
        .start()
        .await;
    agent.report_for(pod, "app").await
}

/// A real JVM (Debian's openjdk-17-jre-headless in the runtimes image) that runs out of heap,
/// twice: once told to crash (`-XX:+CrashOnOutOfMemoryError`, which writes an hs_err log) and
/// once told to dump its heap (`-XX:+HeapDumpOnOutOfMemoryError`). The hs_err log is kept,
/// redacted and quoted; the heap dump is a memory image: listed with its size, not kept, by
/// default, and kept only up to the per-file bound with `--no-redact-artifacts`.
#[tokio::test(flavor = "multi_thread")]
async fn a_jvm_out_of_heap_leaves_its_hs_err_log_and_a_bounded_heap_dump() {
    let _image = tokio::task::spawn_blocking(runtimes_image).await.unwrap();
    let cd = Containerd::start().await;
    import_runtimes_image(&cd).await;
    let cri = cd.cri().await;

    let agent = Agent::builder(&cd).api_token(TOKEN).start().await;
    let r = run_jvm(&cri, &agent, "jvm-crash", "-XX:+CrashOnOutOfMemoryError").await;
    let hs_err = files(&r)
        .iter()
        .find(|f| f["kind"] == "jvm_error_log")
        .unwrap_or_else(|| panic!("no hs_err log in {:#}", r["artifacts"]));
    let path = hs_err["path"].as_str().unwrap();
    assert!(
        path.starts_with("/srv/hs_err_pid") && path.ends_with(".log"),
        "the JVM writes it in its working directory: {path}"
    );
    assert_eq!(hs_err["redacted"], true);
    assert_eq!(
        key_line(hs_err, "fatal_error"),
        "OutOfMemory encountered: Java heap space"
    );
    assert!(
        key_line(hs_err, "jre_version").contains("OpenJDK Runtime Environment (17."),
        "{hs_err:#}"
    );
    assert!(
        key_line(hs_err, "heap").contains("total 32768K"),
        "-Xmx32m: {hs_err:#}"
    );
    let evidence = r["diagnosis"]["evidence"].to_string();
    assert!(
        evidence.contains("OutOfMemory encountered: Java heap space"),
        "the diagnosis quotes the log: {evidence}"
    );
    let id = r["id"].as_str().unwrap();
    let name = hs_err["name"].as_str().unwrap();
    let (status, body) = agent
        .get_text(&format!("/api/v1/crashes/{id}/artifacts/{name}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("A fatal error has been detected by the Java Runtime Environment"));
    assert!(body.contains("Heap.main"), "the Java frames are in the log");
    assert!(
        !body.contains("s3cr3t-value"),
        "the command line is redacted: {body}"
    );

    let r = run_jvm(&cri, &agent, "jvm-dump", "-XX:+HeapDumpOnOutOfMemoryError").await;
    let skipped = r["artifacts"]["skipped"].to_string();
    assert!(
        skipped.contains("/srv/java_pid")
            && skipped.contains(".hprof")
            && skipped.contains("--no-redact-artifacts"),
        "a heap dump is listed, not kept: {skipped}"
    );
    assert!(files(&r).iter().all(|f| f["kind"] != "jvm_heap_dump"));
    drop(agent);

    let agent = Agent::builder(&cd)
        .api_token(TOKEN)
        .arg("--no-redact-artifacts")
        .start()
        .await;
    let r = run_jvm(
        &cri,
        &agent,
        "jvm-dump-raw",
        "-XX:+HeapDumpOnOutOfMemoryError",
    )
    .await;
    let dump = files(&r)
        .iter()
        .find(|f| f["kind"] == "jvm_heap_dump")
        .unwrap_or_else(|| panic!("no heap dump in {:#}", r["artifacts"]));
    let (size, kept) = (
        dump["size_bytes"].as_u64().unwrap(),
        dump["kept_bytes"].as_u64().unwrap(),
    );
    println!(
        "heap dump: {size} bytes, kept {kept}, stored {}",
        dump["stored_bytes"]
    );
    assert_eq!(dump["truncated"], true, "{dump:#}");
    assert_eq!(kept, 8 << 20, "kept up to the per-file bound");
    assert!(size > kept, "a 32 MiB heap dumps more than 8 MiB: {size}");
    let id = r["id"].as_str().unwrap();
    let name = dump["name"].as_str().unwrap();
    let resp = reqwest::Client::new()
        .get(agent.url(&format!("/api/v1/crashes/{id}/artifacts/{name}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len() as u64, kept);
    assert!(body.starts_with(b"JAVA PROFILE 1.0.2"), "an hprof file");
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_artifacts_are_kept_with_the_opt_out() {
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd)
        .api_token(TOKEN)
        .arg("--no-redact-artifacts")
        .start()
        .await;
    let pod = cd.cri().await.run_pod("raw", "default").await;
    let script = "printf 'api_token=s3cr3t-value\\n' > /erl_crash.dump; \
        printf '\\177ELF\\002\\001\\001\\000core' > /core; exit 1";
    pod.container("app")
        .command(["sh", "-c", script])
        .start()
        .await;
    let r = agent.report_for("raw", "app").await;
    let dump = file(&r, "erl_crash.dump");
    assert_eq!(dump["redacted"], false);
    let core = file(&r, "core");
    assert_eq!(core["content_type"], "application/octet-stream");
    let id = r["id"].as_str().unwrap();
    let (_, body) = agent
        .get_text(&format!("/api/v1/crashes/{id}/artifacts/erl_crash.dump"))
        .await;
    assert!(body.contains("s3cr3t-value"), "kept raw: {body}");
}

// ---- The windows: how long after the exit a dead container's files can be read. ----

fn pidfd_open(pid: u32) -> OwnedFd {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    assert!(
        fd >= 0,
        "pidfd_open({pid}): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Blocks until the process behind `fd` exits.
fn wait_pidfd(fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for at most 30 s.
    let n = unsafe { libc::poll(&mut p, 1, 30_000) };
    assert_eq!(n, 1, "init did not exit within 30 s");
}

/// The overlay upper directory of the mount at `mount_point`, from mountinfo.
fn upperdir_of(mount_point: &Path) -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mp = mount_point.to_str().unwrap();
    info.lines()
        .filter(|l| l.split(' ').nth(4) == Some(mp))
        .find_map(|l| {
            l.split(" - ")
                .nth(1)?
                .split(' ')
                .nth(2)?
                .split(',')
                .find_map(|o| o.strip_prefix("upperdir=").map(PathBuf::from))
        })
        .unwrap_or_else(|| panic!("no overlay mounted at {mp}"))
}

/// From the init's death: when the marker was first read in the task's root (`None`: the root
/// was gone before this thread got to run, which a loaded node can make longer than the CRI's
/// window), how long it stays readable, and whether the snapshot's upper directory still has it.
fn measure(rootfs: &Path, upper: &Path, fd: OwnedFd) -> (Option<Duration>, Duration, bool) {
    wait_pidfd(&fd);
    let died = Instant::now();
    let mut first_read = None;
    loop {
        let ok = std::fs::read(rootfs.join("marker")).is_ok();
        if ok && first_read.is_none() {
            first_read = Some(died.elapsed());
        }
        if !ok || died.elapsed() > Duration::from_secs(5) {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let rootfs_window = died.elapsed();
    (first_read, rootfs_window, upper.join("marker").is_file())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_containers_files_stay_readable_in_its_writable_layer_until_removal() {
    let cd = Containerd::start().await;
    let task_dir = cd.dir().join("state/io.containerd.runtime.v2.task");

    // CRI: the plugin deletes the task (unmounting its root) right after the exit.
    let cri = cd.cri().await;
    let mut cri_windows = Vec::new();
    for i in 0..3 {
        let pod = cri.run_pod(&format!("window-{i}"), "default").await;
        let id = pod
            .container("app")
            .command(["sh", "-c", "echo x > /marker; sleep 0.5; exit 1"])
            .start()
            .await;
        let pid = cri.container_pid(&id).await;
        let fd = pidfd_open(pid);
        let rootfs = task_dir.join("k8s.io").join(&id).join("rootfs");
        let upper = upperdir_of(&rootfs);
        let (first, window, upper_after) =
            tokio::task::spawn_blocking(move || measure(&rootfs, &upper, fd))
                .await
                .unwrap();
        assert!(
            upper_after,
            "CRI: the upper dir lost the file with the task"
        );
        assert!(
            window < Duration::from_secs(5),
            "CRI: the task root stayed mounted 5 s"
        );
        let upper = upperdir_of_snapshot_after_exit(&cd, &id).await;
        assert!(
            upper.join("marker").is_file(),
            "CRI: upper dir gone before removal"
        );
        cri.wait_exited(&id, Duration::from_secs(30)).await;
        cri.remove_container(&id).await;
        let after_removal = gone_within(&upper, Duration::from_secs(30)).await;
        cri_windows.push((first, window, after_removal));
    }
    assert!(
        cri_windows.iter().any(|(first, _, _)| first.is_some()),
        "CRI: the marker was never readable in the task's root after the death: {cri_windows:?}"
    );

    // A plain container (`ctr run -d`): nobody deletes the task; its root stays mounted.
    let c = cd
        .plain("window-plain")
        .command(["sh", "-c", "echo x > /marker; sleep 0.5; exit 1"])
        .run()
        .await;
    let pid = c.task().await.pid;
    let fd = pidfd_open(pid);
    let rootfs = task_dir.join(c.namespace()).join(c.id()).join("rootfs");
    let upper = upperdir_of(&rootfs);
    let (first, window, upper_after) = tokio::task::spawn_blocking({
        let (rootfs, upper) = (rootfs.clone(), upper.clone());
        move || measure(&rootfs, &upper, fd)
    })
    .await
    .unwrap();
    assert!(upper_after);
    let first = first.expect("plain: the task root is mounted until the task is deleted");
    assert!(
        window >= Duration::from_secs(5),
        "plain: the task root went after {window:?} with nobody deleting the task"
    );
    c.remove().await;
    let plain_after_removal = gone_within(&upper, Duration::from_secs(30)).await;
    println!(
        "windows after the init's death (load {}): CRI task root {:?}; plain task root > {:?} \
         (until the task is deleted); first read after the death: CRI {:?}, plain {:?}; upper \
         dir until removal, then gone after: CRI {:?}, plain {:?}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim(),
        cri_windows.iter().map(|w| w.1).collect::<Vec<_>>(),
        window,
        cri_windows.iter().map(|w| w.0).collect::<Vec<_>>(),
        first,
        cri_windows.iter().map(|w| w.2).collect::<Vec<_>>(),
        plain_after_removal,
    );
}

/// Waits for `path` to disappear (containerd removes a snapshot's directory in its garbage
/// collection, after the container's removal); returns how long it took.
async fn gone_within(path: &Path, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    while path.exists() {
        assert!(
            t0.elapsed() < timeout,
            "{} still there {timeout:?} after the container's removal",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t0.elapsed()
}

/// The container's snapshot upper directory, after its task is gone (from containerd's
/// snapshot API, as the agent finds it).
async fn upperdir_of_snapshot_after_exit(cd: &Containerd, id: &str) -> PathBuf {
    let out = cd.ctr(
        "k8s.io",
        &[
            "snapshots",
            "--snapshotter",
            "overlayfs",
            "mounts",
            "/m",
            id,
        ],
    );
    out.split_whitespace()
        .flat_map(|w| w.split(','))
        .find_map(|o| o.strip_prefix("upperdir=").map(PathBuf::from))
        .unwrap_or_else(|| panic!("no upperdir in `ctr snapshots mounts`: {out}"))
}
