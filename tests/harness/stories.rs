//! The four stories of the demo (`examples/demo.rs`, `scripts/demo.sh`), run for real and
//! returned as the agent's reports, so that `tests/demo.rs` asserts the causes the demo shows:
//!
//! 1. [`beam_gateway`]: Erlang VMs (Debian's `erlang-base` in the Erlang image of
//!    [`super::erlang_image`]) that die the ways a BEAM gateway dies in Kubernetes with no logs:
//!    OOM-killed at the memory limit, halted at boot on a missing `sys.config`, unable to listen
//!    on a port another replica holds; each a CRI pod restarted [`ATTEMPTS`] times, as kubelet
//!    restarts a crash loop.
//! 2. [`db_lock_on_redeploy`]: a database's new pod on the same volume as the old one, which
//!    still holds `mongod.lock` (util-linux `flock(1)`, a real `flock(2)`); the new one fails to
//!    take it and says what MongoDB says.
//! 3. [`nif_on_alpine`]: a glibc-linked binary in a static (busybox, no glibc) image: the
//!    kernel cannot find its ELF loader ([`super::exec_images`]).
//! 4. [`stale_image`]: one tag imported twice with different content; a container created from
//!    the old content crashes after the tag moved ([`super::stale_images`]).
//!
//! The pods are named as a Deployment names them (`<owner>-<template hash>-<suffix>`) so that
//! coroner groups their attempts by owner, as on a real node.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_cri::v1::Mount;
use serde_json::Value;

use super::erlang_image::{import_erlang_image, ERLANG_IMAGE};
use super::exec_images::{import_exec_images, EXEC_FAILURES_IMAGE};
use super::stale_images::{import_stale, StaleImage, StaleVariant};
use super::{Agent, Containerd};

/// Attempts of each crash loop (kubelet's restart count 0, 1, ...).
#[allow(dead_code)] // each test binary uses a different part of the harness
pub const ATTEMPTS: u32 = 3;
/// The memory limit of the gateway that leaks.
#[allow(dead_code)]
pub const BEAM_MEMORY_LIMIT: u64 = 128 << 20;
/// The tag of the stale-image story.
#[allow(dead_code)]
pub const CART_TAG: &str = "localhost/shop/cart:1";
/// MongoDB's words when the lock file is held (`DBException in initAndListen`), as mongod logs
/// them before exiting 100.
#[allow(dead_code)]
pub const MONGO_LOCK_MESSAGE: &str = "DBPathInUse: Unable to lock the lock file: /data/db/mongod.lock (Resource temporarily unavailable). Another mongod instance is already running on the /data/db directory";

const WAIT: Duration = Duration::from_secs(60);

/// Imports every image the stories use into `k8s.io` of `cd` (building the Erlang image first
/// if it is not in the cache: about a minute). Returns what the stale-image story imported
/// first (the old content of [`CART_TAG`]).
#[allow(dead_code)]
pub async fn import_images(cd: &Containerd) -> StaleImage {
    import_erlang_image(cd).await;
    import_exec_images(cd).await;
    import_stale(cd, StaleVariant::A, CART_TAG).await
}

/// Story 1: what coroner said about each attempt of the three gateways.
#[derive(Debug)]
#[allow(dead_code)]
pub struct BeamGateway {
    /// `edge/api-gateway-…/beam`: a leak up to [`BEAM_MEMORY_LIMIT`], OOM-killed.
    pub oom: Vec<Value>,
    /// `edge/auth-gateway-…/beam`: `erl -config /etc/gateway/sys`, no such file.
    pub missing_config: Vec<Value>,
    /// `edge/ws-gateway-…/beam`: `gen_tcp:listen` on the port the previous replica holds.
    pub port_taken: Vec<Value>,
    /// That port.
    pub port: u16,
}

#[allow(dead_code)]
pub const OOM_POD: &str = "api-gateway-7d9f8b6c5d-x2x9q";
#[allow(dead_code)]
pub const CONFIG_POD: &str = "auth-gateway-5c8d7f9b4-k7m2p";
#[allow(dead_code)]
pub const PORT_POD: &str = "ws-gateway-8f5d6c7b9-z9k2t";
const PORT_HOLDER_POD: &str = "ws-gateway-6b7c8d9f5-q4w8z";
#[allow(dead_code)]
pub const MONGO_POD: &str = "mongo-9b7c6d5f8-p8n4k";
const MONGO_OLD_POD: &str = "mongo-6d8f7c5b4-h2x7q";
#[allow(dead_code)]
pub const NIF_POD: &str = "payments-api-5f7d8c9b6-w2r4t";
#[allow(dead_code)]
pub const CART_POD: &str = "cart-7c9d8b6f5-m4n2x";

/// Runs `attempts` attempts of one container, each after the previous one's report, the way
/// kubelet restarts a crash loop; returns the reports in order.
async fn crash_loop(
    cd: &Containerd,
    agent: &Agent,
    (namespace, pod, container): (&str, &str, &str),
    image: &str,
    command: &[String],
    memory_limit: Option<u64>,
    mounts: &[Mount],
) -> Vec<Value> {
    let p = cd.cri().await.run_pod(pod, namespace).await;
    let mut reports = Vec::new();
    for attempt in 0..ATTEMPTS {
        let mut c = p
            .container(container)
            .image(image)
            .attempt(attempt)
            .env("HOME", "/root")
            .working_dir("/tmp")
            .command(command.to_vec());
        if let Some(limit) = memory_limit {
            c = c.memory_limit(limit as i64);
        }
        for m in mounts {
            c = c.mount(m.clone());
        }
        c.start().await;
        reports.push(
            agent
                .report_for_attempt(pod, container, u64::from(attempt))
                .await,
        );
    }
    reports
}

fn erl(eval: &str) -> Vec<String> {
    ["erl", "-noshell", "-eval", eval]
        .map(String::from)
        .to_vec()
}

/// Story 1 (see the module's doc). The three gateways run side by side.
#[allow(dead_code)]
pub async fn beam_gateway(cd: &Containerd, agent: &Agent) -> BeamGateway {
    // A session cache that never evicts: 1 MiB binaries, 200 a second, until the kernel's OOM
    // killer ends the VM. The VM boots for about a second first, so the shim's OOM watch on
    // the cgroup is in place before the OOM.
    let leak = erl("Cache = fun Grow(Sessions) -> timer:sleep(5), \
         Grow([binary:copy(<<\"session\">>, 149797) | Sessions]) end, Cache([])");
    let missing_config: Vec<String> = ["erl", "-noshell", "-config", "/etc/gateway/sys"]
        .map(String::from)
        .to_vec();
    let port = free_port();
    let listen = erl(&format!(
        "{{ok, _}} = gen_tcp:listen({port}, [{{reuseaddr, true}}]), \
         io:format(\"listening on ~p~n\", [{port}]), timer:sleep(infinity)"
    ));

    // The previous replica of the websocket gateway still runs and holds the port (host
    // network, as many gateways run).
    let holder = cd.cri().await.run_pod(PORT_HOLDER_POD, "edge").await;
    holder
        .container("beam")
        .image(ERLANG_IMAGE)
        .env("HOME", "/root")
        .working_dir("/tmp")
        .command(listen)
        .start()
        .await;
    wait_listening(port).await;

    let taken = erl(&format!("{{ok, _}} = gen_tcp:listen({port}, [])"));
    let (oom, missing_config, port_taken) = tokio::join!(
        crash_loop(
            cd,
            agent,
            ("edge", OOM_POD, "beam"),
            ERLANG_IMAGE,
            &leak,
            Some(BEAM_MEMORY_LIMIT),
            &[],
        ),
        crash_loop(
            cd,
            agent,
            ("edge", CONFIG_POD, "beam"),
            ERLANG_IMAGE,
            &missing_config,
            None,
            &[],
        ),
        crash_loop(
            cd,
            agent,
            ("edge", PORT_POD, "beam"),
            ERLANG_IMAGE,
            &taken,
            None,
            &[],
        ),
    );
    BeamGateway {
        oom,
        missing_config,
        port_taken,
        port,
    }
}

/// A port nobody on the host listens on now.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

async fn wait_listening(port: u16) {
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the holding gateway did not listen on {port} within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Story 2: the new pod's attempts, and the volume's host directory (kept for the holder).
#[derive(Debug)]
#[allow(dead_code)]
pub struct DbLock {
    pub reports: Vec<Value>,
    pub volume: tempfile::TempDir,
}

/// Story 2 (see the module's doc). The old pod keeps running, holding the lock, until the
/// containerd instance is torn down.
#[allow(dead_code)]
pub async fn db_lock_on_redeploy(cd: &Containerd, agent: &Agent) -> DbLock {
    let volume = tempfile::tempdir().expect("the volume's host directory");
    let data = Mount {
        container_path: "/data/db".into(),
        host_path: volume.path().to_string_lossy().into_owned(),
        ..Default::default()
    };
    let old = cd.cri().await.run_pod(MONGO_OLD_POD, "db").await;
    old.container("mongod")
        .image(ERLANG_IMAGE)
        .mount(data.clone())
        .command([
            "/usr/bin/flock",
            "-x",
            "/data/db/mongod.lock",
            "/bin/sh",
            "-c",
            "echo 'Waiting for connections on port 27017'; exec sleep 3600",
        ])
        .start()
        .await;
    wait_locked(&volume.path().join("mongod.lock")).await;

    // What mongod does at start: flock(LOCK_EX | LOCK_NB) on the lock file; when that fails, it
    // logs the DBException and exits 100.
    let script = format!(
        "/usr/bin/flock -n -x /data/db/mongod.lock /bin/true || {{ \
         echo '{{\"t\":{{\"$date\":\"'\"$(/usr/bin/date -u +%Y-%m-%dT%H:%M:%S.%3N+00:00)\"'\"}},\
         \"s\":\"E\",\"c\":\"STORAGE\",\"id\":20557,\"ctx\":\"initandlisten\",\
         \"msg\":\"DBException in initAndListen, terminating\",\
         \"attr\":{{\"error\":\"{MONGO_LOCK_MESSAGE}\"}}}}' >&2; exit 100; }}"
    );
    let reports = crash_loop(
        cd,
        agent,
        ("db", MONGO_POD, "mongod"),
        ERLANG_IMAGE,
        &["/bin/sh".to_string(), "-c".to_string(), script],
        None,
        &[data],
    )
    .await;
    DbLock { reports, volume }
}

/// Waits until another process holds an exclusive lock on `path` (the old pod's `flock`).
async fn wait_locked(path: &Path) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(f) = std::fs::File::open(path) {
            // SAFETY: flock(2) on a descriptor this function owns for the call's duration.
            let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                return; // EWOULDBLOCK: held by the old pod
            }
            // Not held yet: let go at once (the holder's blocking flock then takes it).
            // SAFETY: as above.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
        }
        assert!(
            Instant::now() < deadline,
            "nobody locked {} within {WAIT:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Story 3 (see the module's doc): the gateway's glibc build in an image with no glibc.
#[allow(dead_code)]
pub async fn nif_on_alpine(cd: &Containerd, agent: &Agent) -> Vec<Value> {
    crash_loop(
        cd,
        agent,
        ("payments", NIF_POD, "api"),
        EXEC_FAILURES_IMAGE,
        &["/app/gateway".to_string()],
        None,
        &[],
    )
    .await
}

/// Story 4: the attempts' reports (the last one ran the old content after the tag moved) and
/// both contents.
#[derive(Debug)]
#[allow(dead_code)]
pub struct StaleTag {
    pub reports: Vec<Value>,
    pub old: StaleImage,
    pub new: StaleImage,
}

/// Story 4 (see the module's doc). `old` is what [`import_images`] imported under [`CART_TAG`].
#[allow(dead_code)]
pub async fn stale_image(cd: &Containerd, agent: &Agent, old: StaleImage) -> StaleTag {
    let cri = cd.cri().await;
    let pod = cri.run_pod(CART_POD, "shop").await;
    // Attempt 0 runs the old content and crashes with the bug the new content fixes.
    pod.container("cart")
        .image(CART_TAG)
        .attempt(0)
        .command(["sh", "-c", "echo 'cart v1: no PAYMENTS_URL' >&2; exit 2"])
        .start()
        .await;
    let r0 = agent.report_for_attempt(CART_POD, "cart", 0).await;
    // Attempt 1 is created from the old content too; while it starts up, the fixed image is
    // loaded into the node under the same tag (`kind load docker-image` after a rebuild). It
    // waits on a FIFO (opening it blocks until this process opens the other end), so the wait
    // leaves no failing syscall for the diagnosis to quote.
    let gate = tempfile::tempdir().expect("gate dir");
    let fifo = gate.path().join("go");
    let c_fifo = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path this function owns.
    assert_eq!(
        unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) },
        0,
        "mkfifo {}",
        fifo.display()
    );
    let id1 = pod
        .container("cart")
        .image(CART_TAG)
        .attempt(1)
        .mount(Mount {
            container_path: "/gate".into(),
            host_path: gate.path().to_string_lossy().into_owned(),
            ..Default::default()
        })
        .command([
            "sh",
            "-c",
            "read go < /gate/go; echo 'cart v1: no PAYMENTS_URL' >&2; exit 2",
        ])
        .start()
        .await;
    cri.wait_running(&id1, WAIT).await;
    let new = import_stale(cd, StaleVariant::B, CART_TAG).await;
    tokio::task::spawn_blocking(move || {
        std::fs::write(&fifo, b"go\n").unwrap_or_else(|e| panic!("opening {}: {e}", fifo.display()))
    })
    .await
    .expect("opening the gate");
    cri.wait_exited(&id1, WAIT).await;
    let r1 = agent.report_for_attempt(CART_POD, "cart", 1).await;
    StaleTag {
        reports: vec![r0, r1],
        old,
        new,
    }
}

/// The four stories' reports.
#[derive(Debug)]
#[allow(dead_code)]
pub struct Stories {
    pub beam: BeamGateway,
    pub db: DbLock,
    pub nif: Vec<Value>,
    pub stale: StaleTag,
}

/// Imports the images, then runs the four stories side by side.
#[allow(dead_code)]
pub async fn run_all(cd: &Containerd, agent: &Agent) -> Stories {
    let old = import_images(cd).await;
    let (beam, db, nif, stale) = tokio::join!(
        beam_gateway(cd, agent),
        db_lock_on_redeploy(cd, agent),
        nif_on_alpine(cd, agent),
        stale_image(cd, agent, old),
    );
    Stories {
        beam,
        db,
        nif,
        stale,
    }
}

/// The diagnosis' cause of a report (empty when it has none).
#[allow(dead_code)]
pub fn cause(r: &Value) -> &str {
    r["diagnosis"]["cause"].as_str().unwrap_or_default()
}

/// The diagnosis' summary of a report (empty when it has none).
#[allow(dead_code)]
pub fn summary(r: &Value) -> &str {
    r["diagnosis"]["summary"].as_str().unwrap_or_default()
}
