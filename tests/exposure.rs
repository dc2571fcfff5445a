//! Not open to every pod, and never starved by its clients: the agent binary's listeners, token,
//! connection and live-feed caps, header timeout and descriptor reserve, measured on the real
//! process (its sockets in /proc, its RSS, its reports on disk) with the harness's containerd.

mod harness;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use harness::agent::{get_in_netns, DEFAULT_METRICS_PORT, REPORT_TIMEOUT};
use harness::{metric_value, Agent, Containerd, Cri};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Listening TCP sockets of the network namespace process `pid` is in (`/proc/<pid>/net/tcp`).
fn listening(pid: u32) -> Vec<SocketAddr> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).expect("net/tcp");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.get(3) != Some(&"0A") {
                return None; // not LISTEN
            }
            let (ip, port) = f[1].split_once(':')?;
            let ip = u32::from_str_radix(ip, 16).ok()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            // The address is in host byte order of a little-endian machine: 0100007F is 127.0.0.1.
            Some(SocketAddr::from((ip.to_le_bytes(), port)))
        })
        .collect()
}

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// `n` TCP connections to `port` that send nothing. The test process's own soft
/// `RLIMIT_NOFILE` is raised to its hard limit first: parallel tests hold thousands.
async fn idle_connections(port: u16, n: usize) -> Vec<TcpStream> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a stack struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => conns.push(s),
            Err(e) => panic!("connection {} to {port}: {e}", conns.len()),
        }
    }
    conns
}

/// What the server sent on `s` within `wait`, until it closed: `None` if nothing came.
async fn answer(s: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) if buf.is_empty() => return None,
            Err(_) => break,
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

async fn metric(agent: &Agent, name: &str) -> Option<f64> {
    let (_, text) = agent.get_text("/metrics").await;
    metric_value(&text, name)
}

/// Polls `/metrics` until the sample `line_prefix ...` reaches `want`.
async fn wait_metric_line(agent: &Agent, line_prefix: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while Instant::now() < deadline {
        let (_, text) = agent.get_text("/metrics").await;
        last = text
            .lines()
            .find(|l| l.starts_with(line_prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
        if last == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{line_prefix} is {last:?}, expected {want}");
}

/// Crashes `n` containers (`exit 3`), each in a pod of its own; returns their container ids.
async fn crash_containers(cri: &Cri, tag: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let pod = cri.pod(&format!("{tag}-{i}"), "flood").run().await;
        let id = pod
            .container("app")
            .command(["sh", "-c", "exit 3"])
            .start()
            .await;
        ids.push(id);
        std::mem::forget(pod); // torn down with the containerd instance
    }
    ids
}

/// Report files in the data dir naming `id` (read from disk: the API may be flooded).
fn stored_reports_naming(agent: &Agent, ids: &[String]) -> usize {
    let files: Vec<String> = std::fs::read_dir(agent.data_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    ids.iter()
        .filter(|id| files.iter().any(|f| f.contains(id.as_str())))
        .count()
}

async fn wait_stored(agent: &Agent, ids: &[String], timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let n = stored_reports_naming(agent, ids);
        if n == ids.len() || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_the_api_listens_on_loopback_and_only_metrics_and_probes_on_every_address() {
    let cd = Containerd::start().await;
    // Its own network namespace: the defaults (127.0.0.1:7464, 0.0.0.0:7465) collide with nobody.
    let agent = Agent::builder(&cd)
        .default_listen_in_own_netns()
        .start()
        .await;
    let pid = agent.pid().unwrap();
    let mut sockets = listening(pid);
    sockets.sort();
    assert_eq!(
        sockets,
        [
            SocketAddr::from(([0, 0, 0, 0], DEFAULT_METRICS_PORT)),
            SocketAddr::from(([127, 0, 0, 1], 7464)),
        ],
        "the API on loopback only, /metrics and the probes on every address"
    );

    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT));
    let api_addr = SocketAddr::from(([127, 0, 0, 1], 7464));
    let get = |addr, path: &'static str| {
        tokio::task::spawn_blocking(move || get_in_netns(pid, addr, path).expect(path))
    };
    for path in ["/metrics", "/readyz", "/healthz"] {
        let (code, body) = get(metrics_addr, path).await.unwrap();
        assert_eq!(code, 200, "{path} on the metrics listener: {body}");
    }
    let (_, metrics) = get(metrics_addr, "/metrics").await.unwrap();
    assert_eq!(metric_value(&metrics, "coroner_ready"), Some(1.0));
    for path in ["/api/v1/crashes", "/api/v1/events", "/"] {
        let (code, _) = get(metrics_addr, path).await.unwrap();
        assert_eq!(code, 404, "{path}: the metrics listener serves no report");
    }
    let (code, body) = get(api_addr, "/api/v1/crashes").await.unwrap();
    assert_eq!(code, 200, "{body}");
    // The API listener keeps /metrics and the probes for port-forward users.
    let (code, _) = get(api_addr, "/readyz").await.unwrap();
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_token_every_api_request_needs_it_and_metrics_and_probes_stay_open() {
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd).api_token("s3cret-t0ken").start().await;
    let http = client();
    let api = agent.base_url();

    for path in [
        "/api/v1/crashes",
        "/api/v1/events",
        "/",
        "/metrics",
        "/readyz",
        "/nope",
    ] {
        let r = http.get(format!("{api}{path}")).send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{path} without a token"
        );
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"coroner\"");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        let r = http
            .get(format!("{api}{path}"))
            .bearer_auth("s3cret-t0kem")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}, wrong token");
    }
    let r = http
        .get(format!("{api}/api/v1/crashes"))
        .bearer_auth("s3cret-t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for path in ["/metrics", "/readyz", "/healthz"] {
        let r = http
            .get(format!("{}{path}", agent.metrics_base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path} on the metrics listener");
    }
    let (_, metrics) = agent.get_text("/metrics").await;
    assert!(
        metrics.contains(r#"coroner_http_rejected_total{listener="api",reason="unauthorized"} 12"#),
        "{metrics}"
    );

    // The CLI sends the token from --token-file (or CORONER_TOKEN_FILE).
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-t0ken\n").unwrap();
    let bin = harness::agent::agent_binary();
    let with = std::process::Command::new(&bin)
        .args(["crashes", "--url", &api, "-o", "json", "--token-file"])
        .arg(&token_file)
        .env_remove("CORONER_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let without = std::process::Command::new(&bin)
        .args(["crashes", "--url", &api])
        .env_remove("CORONER_TOKEN_FILE")
        .output()
        .unwrap();
    assert_eq!(without.status.code(), Some(5), "refused: exit 5");
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("--token-file"),
        "{stderr}"
    );

    // A rotated Secret: the new token works without a restart, the old one no longer does.
    let agent_token = agent.log_path().with_file_name("api-token");
    let next = agent_token.with_file_name("api-token.next");
    std::fs::write(&next, "r0tated\n").unwrap();
    std::fs::rename(&next, &agent_token).unwrap();
    let status = |token: &'static str| {
        let (http, url) = (http.clone(), format!("{api}/api/v1/crashes"));
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status("r0tated").await, StatusCode::OK);
    assert_eq!(status("s3cret-t0ken").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_cap_get_503_while_readiness_and_crash_reports_go_on() {
    const CAP: usize = 20;
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd)
        .args(["--max-connections", &CAP.to_string()])
        .args(["--header-read-timeout", "60s"])
        .start()
        .await;
    let cri = cd.cri().await;

    let mut conns = idle_connections(agent.port(), CAP + 10).await;
    wait_metric_line(
        &agent,
        r#"coroner_http_connections{listener="api"}"#,
        CAP as f64,
    )
    .await;
    // Served connections wait for a request; the others are answered within a second.
    let answers = futures_util::future::join_all(
        conns
            .iter_mut()
            .map(|c| answer(c, Duration::from_millis(1500))),
    )
    .await;
    let mut rejected = 0;
    for text in answers.into_iter().flatten() {
        assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
        assert!(text.contains("retry-after: 5"), "{text}");
        rejected += 1;
    }
    assert_eq!(rejected, 10, "exactly the connections beyond {CAP}");

    // A real client meanwhile: a clear 503 with Retry-After, not a hang.
    let r = client()
        .get(format!("{}/api/v1/crashes", agent.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "5");

    // kubelet and Prometheus have a listener of their own.
    let (code, _) = agent.get("/readyz").await;
    assert_eq!(code, StatusCode::OK);

    // A crash during the flood is stored.
    let ids = crash_containers(&cri, "cap", 1).await;
    assert_eq!(wait_stored(&agent, &ids, REPORT_TIMEOUT).await, 1);
    assert!(metric(
        &agent,
        r#"coroner_http_rejected_total{listener="api",reason="connections"}"#
    )
    .await
    .is_some_and(|n| n >= 11.0));

    // The flood leaves; the API answers again and shows the report.
    drop(conns);
    wait_metric_line(&agent, r#"coroner_http_connections{listener="api"}"#, 0.0).await;
    let id = ids[0].clone();
    let r = agent
        .wait_for_report(move |r| r["container"]["id"] == id.as_str(), REPORT_TIMEOUT)
        .await;
    assert_eq!(r["exit"]["code"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn live_feed_clients_beyond_the_cap_get_503_with_retry_after() {
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd)
        .args(["--max-sse-clients", "3"])
        .start()
        .await;
    let http = client();
    let url = format!("{}/api/v1/events", agent.base_url());
    let mut feeds = Vec::new();
    for _ in 0..3 {
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        feeds.push(r);
    }
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    // Other requests are not affected.
    let (code, _) = agent.get("/api/v1/crashes").await;
    assert_eq!(code, StatusCode::OK);

    // A client leaves: its slot is free again (once the agent notices the closed connection).
    drop(feeds.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = http.get(&url).send().await.unwrap();
        if r.status() == StatusCode::OK {
            eprintln!("[exposure] slot free again after the client left");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the departed client's slot was not freed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slowloris_connection_is_closed_after_the_header_read_timeout() {
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd)
        .args(["--header-read-timeout", "1s"])
        .start()
        .await;

    // A head sent a byte every 200 ms never completes in time.
    let mut slow = TcpStream::connect(("127.0.0.1", agent.port()))
        .await
        .unwrap();
    let mut silent = TcpStream::connect(("127.0.0.1", agent.port()))
        .await
        .unwrap();
    let t0 = Instant::now();
    slow.write_all(b"GET /api/v1/crashes HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut closed_after = None;
    for b in b"X-Slow: ".iter().cycle().take(100) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if slow.write_all(&[*b]).await.is_err() {
            closed_after = Some(t0.elapsed());
            break;
        }
        let mut probe = [0u8; 512];
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
        {
            closed_after = Some(t0.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("the slow connection was never closed");
    eprintln!("[exposure] slowloris connection closed after {closed_after:?}");
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(4),
        "{closed_after:?}"
    );
    // A connection that sends nothing at all is closed too.
    let t = answer(&mut silent, Duration::from_secs(4)).await;
    assert!(
        t.is_some(),
        "the silent connection was still open after 4 s"
    );
}

/// The issue's fault: idle connections up to `nofile` made report writes fail with EMFILE. Here
/// the agent runs with `nofile` 256 (soft and hard, so nothing can be raised), both listeners are
/// flooded with more connections than it has descriptors, and 3 crashes are all stored.
#[tokio::test(flavor = "multi_thread")]
async fn with_nofile_256_a_flood_of_idle_connections_does_not_stop_reports() {
    const NOFILE: u64 = 256;
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd)
        .nofile(NOFILE)
        .args(["--header-read-timeout", "60s"])
        .start()
        .await;
    let pid = agent.pid().unwrap();
    let cri = cd.cri().await;
    let limit = metric(&agent, r#"coroner_http_connection_limit{listener="api"}"#)
        .await
        .expect("connection limit metric");
    eprintln!("[exposure] nofile {NOFILE}: {limit} connections per listener");
    assert!((8.0..128.0).contains(&limit), "{limit}");

    let api = idle_connections(agent.port(), 300).await;
    let metrics = idle_connections(agent.metrics_port(), 300).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds = open_fds(pid);
    eprintln!("[exposure] agent fds with 600 idle connections: {fds}");
    assert!(fds < NOFILE as usize, "{fds}");

    let ids = crash_containers(&cri, "fd", 3).await;
    let stored = wait_stored(&agent, &ids, REPORT_TIMEOUT).await;
    eprintln!("[exposure] reports stored during the flood: {stored} of 3");
    assert_eq!(stored, 3);
    drop((api, metrics));
    let (code, _) = agent.get("/readyz").await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        !agent.log().contains("Too many open files"),
        "EMFILE in the log:\n{}",
        agent.log()
    );
}

/// One flood: 100 would-be live feeds (64 served) and 1000 connections, 600 of them with a
/// half-sent request head; returns (feeds served, connections served, RSS during in KiB), after
/// every client left.
async fn flood(agent: &Agent, pid: u32) -> (usize, f64, u64) {
    let http = client();
    let mut feeds = Vec::new();
    for _ in 0..100 {
        let r = http
            .get(format!("{}/api/v1/events", agent.base_url()))
            .send()
            .await
            .unwrap();
        feeds.push(r);
    }
    let served = feeds
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    let mut conns = idle_connections(agent.port(), 1000).await;
    for c in conns.iter_mut().take(600) {
        let _ = c
            .write_all(b"GET /api/v1/crashes HTTP/1.1\r\nHost: x\r\nX-Partial: ")
            .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = vm_rss_kib(pid);
    let open = metric(agent, r#"coroner_http_connections{listener="api"}"#)
        .await
        .unwrap();
    drop(conns);
    drop(feeds);
    drop(http); // and its pooled keep-alive connections
    wait_metric_line(agent, r#"coroner_http_connections{listener="api"}"#, 0.0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    (served, open, during)
}

/// RSS before, during and after 1000 connections, twice: bounded during, and what the first
/// flood left behind is reused by the second, not added to.
#[tokio::test(flavor = "multi_thread")]
async fn memory_is_bounded_during_a_thousand_connections_and_returned_after() {
    let cd = Containerd::start().await;
    let agent = Agent::builder(&cd)
        .args(["--header-read-timeout", "60s"])
        .start()
        .await;
    let pid = agent.pid().unwrap();
    // Warm up: one of each request, so lazily built state is not counted.
    let http = client();
    let _ = http
        .get(format!("{}/api/v1/crashes", agent.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await;
    drop(http);
    let _ = agent.get("/metrics").await;
    let before = vm_rss_kib(pid);
    let (served, open, during) = flood(&agent, pid).await;
    let after = vm_rss_kib(pid);
    let (_, _, during2) = flood(&agent, pid).await;
    let after2 = vm_rss_kib(pid);
    eprintln!(
        "[exposure] live feeds served {served} of 100; connections served {open} of 1000; \
         RSS before {before} KiB, during {during} KiB, after {after} KiB; \
         second flood: during {during2} KiB, after {after2} KiB"
    );
    assert_eq!(served, 64, "--max-sse-clients default");
    assert!(open <= 256.0, "{open}");
    assert!(during < before + 40 * 1024, "bounded: {during} KiB");
    assert!(
        after < before + 4 * 1024,
        "returned: {after} KiB after, {before} KiB before"
    );
    assert!(
        after2 < after + 2 * 1024,
        "no growth flood after flood: {after2} KiB after the second, {after} KiB after the first"
    );
}
