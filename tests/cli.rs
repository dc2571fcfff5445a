//! The command line of the real binary: help and validation, before anything starts.

use std::process::Command;

fn coroner(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coroner"))
        .args(args)
        .env_clear()
        .output()
        .expect("running coroner")
}

#[test]
fn every_invalid_setting_is_reported_before_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = coroner(&[
        "agent",
        "--namespace",
        "k8s..io",
        "--max-reports",
        "0",
        "--max-store-bytes",
        "1Ki",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for flag in ["--namespace", "--max-reports", "--max-store-bytes"] {
        assert!(err.contains(flag), "{flag} not reported in:\n{err}");
    }
    assert!(
        !data.exists(),
        "nothing is created when the settings are invalid"
    );
}

#[test]
fn malformed_values_are_rejected_with_the_flag_named() {
    let out = coroner(&["agent", "--listen", "localhost"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
    let out = coroner(&["agent", "--max-store-bytes", "12Q"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit"));
}

#[test]
fn help_documents_every_flag_and_its_environment_variable() {
    let out = coroner(&["agent", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env) in [
        ("--containerd-socket", "CORONER_CONTAINERD_SOCKET"),
        ("--listen", "CORONER_LISTEN"),
        ("--metrics-listen", "CORONER_METRICS_LISTEN"),
        ("--api-token-file", "CORONER_API_TOKEN_FILE"),
        ("--max-connections", "CORONER_MAX_CONNECTIONS"),
        ("--max-sse-clients", "CORONER_MAX_SSE_CLIENTS"),
        ("--header-read-timeout", "CORONER_HEADER_READ_TIMEOUT"),
        ("--data-dir", "CORONER_DATA_DIR"),
        ("--namespace", "CORONER_NAMESPACES"),
        ("--max-reports", "CORONER_MAX_REPORTS"),
        ("--max-store-bytes", "CORONER_MAX_STORE_BYTES"),
        ("--env-allow", "CORONER_ENV_ALLOW"),
        ("--no-redact-args", "CORONER_NO_REDACT_ARGS"),
        ("--no-redact-labels", "CORONER_NO_REDACT_LABELS"),
        ("--no-redact-output", "CORONER_NO_REDACT_OUTPUT"),
        ("--no-redact-artifacts", "CORONER_NO_REDACT_ARTIFACTS"),
        ("--node-name", "CORONER_NODE_NAME"),
        ("--log-format", "CORONER_LOG_FORMAT"),
    ] {
        assert!(
            help.contains(flag) && help.contains(env),
            "{flag}/{env} missing from --help:\n{help}"
        );
    }
}

#[test]
fn settings_come_from_the_environment_too() {
    let out = Command::new(env!("CARGO_BIN_EXE_coroner"))
        .args(["agent"])
        .env_clear()
        .env("CORONER_MAX_REPORTS", "0")
        .env("CORONER_NAMESPACES", "good,bad..ns")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-reports") && err.contains("bad..ns"),
        "{err}"
    );
}

#[test]
fn client_help_documents_the_agent_url_and_every_exit_code() {
    let out = coroner(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["agent", "crashes", "show", "groups", "watch"] {
        assert!(help.contains(cmd), "{cmd} missing from:\n{help}");
    }
    for cmd in ["crashes", "show", "groups", "watch"] {
        let out = coroner(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help");
        let help = String::from_utf8_lossy(&out.stdout);
        for needle in [
            "--url",
            "CORONER_URL",
            "http://127.0.0.1:7464",
            "--timeout",
            "  2  usage error",
            "  3  cannot reach the agent",
            "  4  not found",
            "  5  the agent refused the request",
        ] {
            assert!(
                help.contains(needle),
                "{cmd} --help lacks {needle:?}:\n{help}"
            );
        }
    }
}

#[test]
fn client_usage_errors_exit_2_before_any_request() {
    let out = coroner(&["crashes", "--outcome", "dead"]);
    assert_eq!(out.status.code(), Some(2));
    let out = coroner(&["watch", "--count", "0", "--timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout"));
    // Checked by the client itself, every problem at once.
    let out = coroner(&["crashes", "--url", "https://agent:7464", "--limit", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--url") && err.contains("--limit"), "{err}");
}
