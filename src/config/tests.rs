use std::net::SocketAddr;

use super::*;

fn parse(args: &[&str]) -> AgentArgs {
    let mut full = vec!["coroner", "agent"];
    full.extend_from_slice(args);
    match Cli::try_parse_from(full).expect("parses").command {
        Command::Agent(a) => a,
        Command::Client(c) => panic!("parsed as a client command: {c:?}"),
    }
}

#[test]
fn defaults_are_valid_and_listen_outside_exporter_range() {
    let a = parse(&[]);
    assert_eq!(a.listen.port(), DEFAULT_PORT);
    assert!(!(9100..=9999).contains(&a.listen.port()));
    assert_eq!(a.max_store_bytes, 256 << 20);
    assert!(a.namespaces.is_empty());
    a.validate().expect("defaults valid");
}

#[test]
fn every_invalid_value_is_reported_at_once() {
    let a = parse(&[
        "--namespace",
        "k8s..io",
        "--max-reports",
        "0",
        "--max-store-bytes",
        "10",
        "--env-allow",
        "A=B",
        "--recorder-containers",
        "1",
        "--recorder-ring",
        "100",
        "--bpf-pin-dir",
        "relative/dir",
    ]);
    let errs = a.validate().unwrap_err();
    let flags: Vec<_> = errs.iter().map(|e| e.flag).collect();
    assert_eq!(
        flags,
        [
            "namespace",
            "max-reports",
            "max-store-bytes",
            "env-allow",
            "recorder-containers",
            "recorder-ring",
            "bpf-pin-dir"
        ]
    );
}

#[test]
fn store_retry_queue_is_32mi_by_default_and_bounded_by_memory() {
    assert_eq!(parse(&[]).store_retry_queue_bytes, 32 << 20);
    assert_eq!(
        parse(&["--store-retry-queue-bytes", "0"]).store_retry_queue_bytes,
        0
    );
    let errs = parse(&["--store-retry-queue-bytes", "2Gi"])
        .validate()
        .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].flag, "store-retry-queue-bytes");
}

#[test]
fn otlp_is_off_without_an_endpoint() {
    assert!(parse(&[]).otlp().unwrap().is_none());
    let errs = parse(&["--otlp-header", "a=b"]).validate().unwrap_err();
    assert_eq!(errs[0].flag, "otlp-endpoint");
}

#[test]
fn otlp_http_endpoint_gets_the_logs_path_and_grpc_urls_pick_grpc() {
    for (args, url, protocol) in [
        (
            &["--otlp-endpoint", "http://collector:4318"][..],
            "http://collector:4318/v1/logs",
            OtlpProtocol::HttpProtobuf,
        ),
        (
            &["--otlp-endpoint", "http://collector:4318/otlp/"],
            "http://collector:4318/otlp/v1/logs",
            OtlpProtocol::HttpProtobuf,
        ),
        (
            &["--otlp-endpoint", "http://collector:4318/v1/logs"],
            "http://collector:4318/v1/logs",
            OtlpProtocol::HttpProtobuf,
        ),
        (
            &["--otlp-endpoint", "grpc://collector"],
            "http://collector:4317",
            OtlpProtocol::Grpc,
        ),
        (
            &[
                "--otlp-endpoint",
                "http://10.0.0.1:4317",
                "--otlp-protocol",
                "grpc",
            ],
            "http://10.0.0.1:4317",
            OtlpProtocol::Grpc,
        ),
    ] {
        let s = parse(args).otlp().unwrap().expect("configured");
        assert_eq!((s.url.as_str(), s.protocol), (url, protocol), "{args:?}");
    }
}

#[test]
fn otlp_problems_are_reported_together_without_header_values() {
    let a = parse(&[
        "--otlp-endpoint",
        "https://collector:4318",
        "--otlp-header",
        "authorization=Bearer hunter2",
        "--otlp-header",
        "no-equals-sign-s3cret",
        "--otlp-header",
        "x-token=bad\u{7f}hunter3",
        "--report-base-url",
        "ftp://x",
    ]);
    let errs = a.validate().unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let flags: Vec<_> = errs.iter().map(|e| e.flag).collect();
    assert_eq!(
        flags,
        [
            "otlp-header",
            "otlp-header",
            "report-base-url",
            "otlp-endpoint"
        ],
        "{text:?}"
    );
    assert!(text[3].contains("no TLS"), "{text:?}");
    let all = format!("{text:?} {a:?}");
    for secret in ["hunter2", "s3cret", "hunter3"] {
        assert!(!all.contains(secret), "{secret} shown in {all}");
    }
}

#[test]
fn otlp_headers_and_base_url_are_kept() {
    let s = parse(&[
        "--otlp-endpoint",
        "http://c:4318",
        "--otlp-header",
        "Authorization=Basic eDp5",
        "--report-base-url",
        "https://coroner.example.com/n1/",
    ])
    .otlp()
    .unwrap()
    .unwrap();
    assert_eq!(s.headers.len(), 1);
    assert_eq!(s.headers[0].0, "Authorization");
    assert_eq!(s.headers[0].1.expose(), "Basic eDp5");
    assert_eq!(format!("{:?}", s.headers[0].1), "<redacted>");
    assert_eq!(
        s.report_base_url.as_deref(),
        Some("https://coroner.example.com/n1")
    );
}

#[test]
fn the_api_is_on_loopback_and_metrics_on_every_address_by_default() {
    let a = parse(&[]);
    assert_eq!(a.listen, SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)));
    assert_eq!(
        a.metrics_listen,
        SocketAddr::from(([0, 0, 0, 0], DEFAULT_METRICS_PORT))
    );
    assert_eq!(a.api_token_file, None);
    assert_eq!((a.max_connections, a.max_sse_clients), (256, 64));
    assert_eq!(a.header_read_timeout, Duration::from_secs(10));
}

#[test]
fn exposure_settings_are_checked_together() {
    let a = parse(&[
        "--listen",
        "0.0.0.0:7464",
        "--metrics-listen",
        "127.0.0.1:7464",
        "--api-token-file",
        "/nonexistent/token",
        "--max-connections",
        "0",
        "--max-sse-clients",
        "0",
        "--header-read-timeout",
        "10ms",
    ]);
    let errs = a.validate().unwrap_err();
    let flags: Vec<_> = errs.iter().map(|e| e.flag).collect();
    assert_eq!(
        flags,
        [
            "metrics-listen",
            "api-token-file",
            "max-connections",
            "max-sse-clients",
            "header-read-timeout"
        ]
    );
    assert!(errs[1].reason.contains("/nonexistent/token"), "{errs:?}");
    // Same port on different specific addresses does not overlap.
    let ok = parse(&[
        "--listen",
        "127.0.0.1:9000",
        "--metrics-listen",
        "127.0.0.2:9000",
    ]);
    ok.validate().expect("distinct addresses");
}

#[test]
fn recorder_is_pinned_by_default_and_either_flag_turns_it_off() {
    assert_eq!(
        parse(&[]).bpf_pin_dir(),
        Some(std::path::Path::new("/sys/fs/bpf/coroner"))
    );
    assert_eq!(parse(&["--no-bpf-pin"]).bpf_pin_dir(), None);
    assert_eq!(parse(&["--bpf-pin-dir", ""]).bpf_pin_dir(), None);
    let own = parse(&["--bpf-pin-dir", "/sys/fs/bpf/x"]);
    assert_eq!(
        own.bpf_pin_dir(),
        Some(std::path::Path::new("/sys/fs/bpf/x"))
    );
    own.validate().expect("valid");
}

#[test]
fn byte_sizes_accept_binary_and_decimal_suffixes() {
    assert_eq!(parse_bytes("64Ki"), Ok(65536));
    assert_eq!(parse_bytes("2G"), Ok(2_000_000_000));
    assert_eq!(parse_bytes("123"), Ok(123));
    assert!(parse_bytes("12Q").unwrap_err().contains("unknown unit"));
    assert!(parse_bytes("lots").is_err());
    assert!(parse_bytes("99999999999999Gi")
        .unwrap_err()
        .contains("too large"));
}

#[test]
fn namespaces_follow_containerd_rules() {
    for ok in ["k8s.io", "moby", "a-b_c.d"] {
        assert!(valid_namespace(ok), "{ok}");
    }
    for bad in ["", ".x", "x.", "a b", "k8s..io"] {
        assert!(!valid_namespace(bad), "{bad}");
    }
}

fn client(args: &[&str]) -> ClientCommand {
    let mut full = vec!["coroner"];
    full.extend_from_slice(args);
    match Cli::try_parse_from(full).expect("parses").command {
        Command::Client(c) => c,
        Command::Agent(a) => panic!("parsed as the agent: {a:?}"),
    }
}

#[test]
fn default_url_is_the_agents_default_port_on_localhost() {
    let c = client(&["crashes"]);
    assert_eq!(c.client().url, format!("http://127.0.0.1:{DEFAULT_PORT}"));
    assert_eq!(c.client().timeout, Duration::from_secs(10));
    c.validate().expect("defaults valid");
}

#[test]
fn every_invalid_client_setting_is_reported_at_once() {
    let c = client(&[
        "crashes",
        "--url",
        "ftp://x",
        "--timeout",
        "0s",
        "--limit",
        "0",
    ]);
    let flags: Vec<_> = c.validate().unwrap_err().iter().map(|e| e.flag).collect();
    assert_eq!(flags, ["url", "timeout", "limit"]);
    let https = client(&["watch", "--url", "https://agent:7464", "--count", "0"]);
    let errs = https.validate().unwrap_err();
    assert!(errs[0].reason.contains("port-forward"), "{errs:?}");
    assert_eq!(errs[1].flag, "count");
    assert!(client(&["show", " "]).validate().is_err());
    assert!(client(&["crashes", "--url", "http://127.0.0.1:7464/?x=1"])
        .validate()
        .is_err());
}

#[test]
fn filters_the_agent_judges_are_passed_through_unchecked() {
    let c = client(&["groups", "--cause", "not_a_cause_yet", "--namespace", ""]);
    c.validate().expect("left to the agent");
    match c {
        ClientCommand::Groups(g) => assert_eq!(g.cause.as_deref(), Some("not_a_cause_yet")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn durations_combine_units_and_refuse_bare_numbers() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
    assert!(parse_duration("10").unwrap_err().contains("no unit"));
    assert!(parse_duration("10y").unwrap_err().contains("unknown unit"));
    assert!(parse_duration("h").is_err());
    assert!(parse_duration("").is_err());
    assert!(parse_duration("999999999d")
        .unwrap_err()
        .contains("too long"));
}

#[test]
fn since_is_a_time_or_a_duration_before_now() {
    let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let at = parse_since("2026-11-22T10:00:00+01:00").unwrap();
    assert_eq!(at.resolve(now).to_rfc3339(), "2026-11-22T09:00:00+00:00");
    let ago = parse_since("1h30m").unwrap();
    assert_eq!(ago.resolve(now).to_rfc3339(), "2026-11-22T08:30:00+00:00");
    let err = parse_since("yesterday").unwrap_err();
    assert!(err.contains("RFC 3339") && err.contains("30m"), "{err}");
}
