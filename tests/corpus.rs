//! A corpus of real deaths: Debian's runtimes and servers (the Erlang VM, Python, Go, the JVM,
//! Node.js, Rust, glibc, shells, nginx) made to die the ways production containers do (ports in
//! use, missing modules and files, permission problems, bad configuration, panics, uncaught
//! exceptions, their own out-of-memory, loader failures, glibc aborts), each as a CRI container
//! of the runtimes image (`tests/harness/runtimes_image.rs`). Each report's diagnosis must name
//! the cause AND say the key words of the root cause in its summary, the way an expert would.
//!
//! The commands are those of `tests/fixtures/statements/cases.txt`, whose stderr was captured
//! once for the recognisers' unit tests; here they run again under the real agent, so the whole
//! path (capture by the recorder, statement, rule, proving syscall, advice) is exercised. Cases
//! marked "hold" find 0.0.0.0:18080 taken by this test (pods are on the host network).

mod harness;

use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use harness::runtimes_image::{import_runtimes_image, runtimes_image, RUNTIMES_IMAGE};
use harness::{Agent, Containerd};
use serde_json::Value;

/// `(case, cause, words the summary holds)`; every case of cases.txt that the image can run.
const EXPECT: &[(&str, &str, &[&str])] = &[
    (
        "beam/eaddrinuse",
        "address_in_use",
        &["Erlang VM: init terminating in do_boot: {badmatch,{error,eaddrinuse}}"],
    ),
    (
        "beam/undef",
        "missing_dependency",
        &["Erlang VM", "undef {gateway_app,start,[],[]}"],
    ),
    (
        "beam/enoent",
        "missing_file",
        &["Erlang VM", "{error,enoent}"],
    ),
    (
        "beam/eacces",
        "permission_denied",
        &["Erlang VM", "{error,eacces}"],
    ),
    (
        "beam/exception",
        "config_error",
        &["Erlang VM", "{bad_config,port}"],
    ),
    (
        "beam/app_start",
        "runtime_error",
        &["Erlang VM: init terminating in do_boot: {badmatch,{error,"],
    ),
    (
        "beam/bad_config",
        "config_error",
        &["could not start kernel pid", "/etc/app/sys.config"],
    ),
    (
        "python/module_not_found",
        "missing_dependency",
        &["Python: ModuleNotFoundError: No module named 'requests'"],
    ),
    (
        "python/missing_stdlib",
        "missing_dependency",
        &["Python: ModuleNotFoundError: No module named 'json'"],
    ),
    (
        "python/file_not_found",
        "missing_file",
        &["Python: FileNotFoundError", "/etc/app/config.yaml"],
    ),
    (
        "python/eaddrinuse",
        "address_in_use",
        &[
            "Python: OSError: [Errno 98] Address already in use",
            "EADDRINUSE",
        ],
    ),
    (
        "python/keyerror",
        "runtime_error",
        &["Python: KeyError: 'DATABASE_URL'"],
    ),
    (
        "python/permission",
        "permission_denied",
        &["Python: PermissionError", "/etc/app.conf", "EACCES"],
    ),
    (
        "python/chained",
        "config_error",
        &["Python: ConfigError: invalid PORT"],
    ),
    ("python/memory", "out_of_memory", &["Python: MemoryError"]),
    (
        "python/cant_open",
        "missing_file",
        &["can't open file '/app/main.py'"],
    ),
    (
        "go/panic_index",
        "runtime_error",
        &["Go: panic: runtime error: index out of range [5] with length 3"],
    ),
    (
        "go/panic_nil",
        "runtime_error",
        &["Go: panic: runtime error: invalid memory address or nil pointer dereference"],
    ),
    (
        "go/panic_config",
        "runtime_error",
        &["Go: panic: config: DATABASE_URL is not set"],
    ),
    (
        "go/log_fatal_eaddrinuse",
        "address_in_use",
        &[
            "listen tcp :18080: bind: address already in use",
            "EADDRINUSE",
        ],
    ),
    (
        "go/deadlock",
        "runtime_error",
        &["Go: fatal error: all goroutines are asleep - deadlock!"],
    ),
    (
        "go/oom",
        "out_of_memory",
        &["Go: fatal error: out of memory"],
    ),
    (
        "jvm/exception",
        "runtime_error",
        &["JVM: Exception in thread \"main\" java.lang.NumberFormatException"],
    ),
    (
        "jvm/bind",
        "address_in_use",
        &["JVM", "java.net.BindException: Address already in use"],
    ),
    (
        "jvm/heap",
        "out_of_memory",
        &["JVM", "java.lang.OutOfMemoryError: Java heap space"],
    ),
    (
        "jvm/caused_by",
        "missing_file",
        &[
            "JVM",
            "caused by java.nio.file.NoSuchFileException: /etc/app/application.yml",
        ],
    ),
    (
        "jvm/main_class",
        "missing_dependency",
        &["JVM: Error: Could not find or load main class com.example.Gateway"],
    ),
    (
        "jvm/jarfile",
        "missing_file",
        &["JVM: Error: Unable to access jarfile /app/gateway.jar"],
    ),
    (
        "jvm/init_vm",
        "config_error",
        &[
            "JVM: Error occurred during initialization of VM",
            "Initial heap size",
        ],
    ),
    (
        "node/throw",
        "runtime_error",
        &["Node.js: SyntaxError: Unexpected token } in JSON"],
    ),
    (
        "node/eaddrinuse",
        "address_in_use",
        &["Node.js: Error: listen EADDRINUSE: address already in use :::18080"],
    ),
    (
        "node/module_not_found",
        "missing_dependency",
        &["Node.js: Error: Cannot find module 'express'"],
    ),
    (
        "node/heap",
        "out_of_memory",
        &[
            "Node.js: FATAL ERROR: Reached heap limit",
            "JavaScript heap out of memory",
            "it aborted (SIGABRT)",
        ],
    ),
    (
        "node/enoent",
        "missing_file",
        &["Node.js: Error: ENOENT", "/etc/app/config.json"],
    ),
    (
        "node/eacces",
        "permission_denied",
        &["Node.js: Error: EACCES: permission denied, open '/etc/app.conf'"],
    ),
    (
        "node/rejection",
        "runtime_error",
        &["Node.js: Error: connect ECONNREFUSED 127.0.0.1:5432"],
    ),
    (
        "rust/unwrap",
        "missing_file",
        &[
            "Rust: thread 'main' panicked at",
            "No such file or directory",
        ],
    ),
    (
        "rust/expect",
        "runtime_error",
        &["Rust", "PORT must be a number"],
    ),
    (
        "rust/alloc",
        "out_of_memory",
        &["Rust: memory allocation of 1099511627776 bytes failed; it aborted (SIGABRT)"],
    ),
    // The recorder copies 4 iovecs of a writev; ld.so writes its message in more, so the library's
    // name is not in the captured stderr (see WRITEV_IOVECS in src/bpf/coroner.bpf.c): the
    // entrypoint section, read from the container's root at create, names it.
    (
        "loader/missing_lib",
        "exec_failed",
        &[
            "the dynamic loader could not load /opt/cases/bin/needs-lib",
            "libgreet.so is not in the image",
        ],
    ),
    (
        "loader/double_free",
        "crashed",
        &[
            "free(): double free detected in tcache 2",
            "died of SIGABRT",
        ],
    ),
    (
        "loader/stack_smashing",
        "crashed",
        &["*** stack smashing detected ***", "died of SIGABRT"],
    ),
    (
        "shell/dash_not_found",
        "exec_failed",
        &["sh: 1: gateway: not found"],
    ),
    (
        "shell/bash_not_found",
        "exec_failed",
        &["bash: line 1: gateway: command not found"],
    ),
    (
        "shell/busybox_not_found",
        "exec_failed",
        &["sh: gateway: not found"],
    ),
    (
        "shell/permission",
        "exec_failed",
        &["/etc/passwd", "EACCES"],
    ),
    (
        "shell/cannot_create",
        "permission_denied",
        &[
            "sh: 1: cannot create /etc/app.conf: Permission denied",
            "EACCES",
        ],
    ),
    (
        "shell/cannot_open",
        "missing_file",
        &["sh: 0: cannot open /app/entrypoint.sh: No such file"],
    ),
    (
        "nginx/eaddrinuse",
        "address_in_use",
        &[
            "nginx: [emerg] ",
            "bind() to 0.0.0.0:18080 failed (98: Address already in use)",
        ],
    ),
    (
        "nginx/unknown_directive",
        "config_error",
        &["nginx: [emerg] ", "unknown directive \"proxy_passs\""],
    ),
    (
        "nginx/missing_include",
        "missing_file",
        &[
            "nginx: [emerg] ",
            "open() \"/etc/nginx/sites/app.conf\" failed",
            "ENOENT",
        ],
    ),
    (
        "nginx/missing_cert",
        "missing_file",
        &[
            "nginx: [emerg] ",
            "cannot load certificate \"/etc/ssl/app/tls.crt\"",
        ],
    ),
    (
        "nginx/missing_conf",
        "missing_file",
        &[
            "nginx: [emerg] ",
            "open() \"/etc/nginx/gateway.conf\" failed",
        ],
    ),
];

/// Words the advice of some cases must hold: the figure or name it is grounded in.
const ADVICE: &[(&str, &str)] = &[
    ("beam/undef", "the module `gateway_app`"),
    ("python/module_not_found", "`requests`"),
    ("python/eaddrinuse", "0.0.0.0:18080"),
    ("node/module_not_found", "`express`"),
    ("node/heap", "--max-old-space-size"),
    ("jvm/heap", "-Xmx"),
    ("jvm/main_class", "`com.example.Gateway`"),
    ("nginx/unknown_directive", "nginx -t"),
    ("nginx/missing_conf", "/etc/nginx/gateway.conf"),
    ("shell/dash_not_found", "`gateway`"),
    ("loader/missing_lib", "Install `libgreet.so` in the image"),
    ("loader/double_free", "AddressSanitizer"),
    ("readonly/python", "emptyDir at /var/lib"),
    ("readonly/node", "emptyDir at /var/lib"),
];

/// Cases of cases.txt the image cannot run, and why.
const NOT_IN_THE_IMAGE: &[(&str, &str)] = &[
    (
        "generic/gcc_fatal",
        "gcc is purged from the image with the other toolchains",
    ),
    (
        "rust/expect_rust_1_95",
        "built by the host's rustc when the fixture was captured",
    ),
];

/// Cases only the corpus has: a read-only root file system, which a chroot cannot give.
/// `(case, command, cause, words)`.
const READ_ONLY_ROOT: &[(&str, &str, &str, &[&str])] = &[
    (
        "readonly/python",
        "python3 -c 'open(\"/var/lib/app-state.db\", \"w\")'",
        "permission_denied",
        &[
            "Python: OSError: [Errno 30] Read-only file system: '/var/lib/app-state.db'",
            "EROFS",
        ],
    ),
    (
        "readonly/node",
        "node -e 'require(\"fs\").writeFileSync(\"/var/lib/app-state.json\", \"{}\")'",
        "permission_denied",
        &["Node.js: Error: EROFS: read-only file system, open '/var/lib/app-state.json'"],
    ),
];

struct Case {
    name: String,
    command: String,
    read_only: bool,
    cause: &'static str,
    words: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/statements/cases.txt"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut cases = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut parts = line.splitn(3, '|');
        // The second field says whether 0.0.0.0:18080 must be held: the test holds it throughout.
        let (name, _hold, command) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts
                .next()
                .unwrap_or_else(|| panic!("{path}: no command in {line:?}")),
        );
        if NOT_IN_THE_IMAGE.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let (_, cause, words) = EXPECT
            .iter()
            .find(|(n, ..)| *n == name)
            .unwrap_or_else(|| panic!("{name} of cases.txt has no expectation in the corpus"));
        cases.push(Case {
            name: name.to_string(),
            command: command.to_string(),
            read_only: false,
            cause,
            words,
        });
    }
    assert_eq!(
        cases.len(),
        EXPECT.len(),
        "an expectation without a case in cases.txt"
    );
    for (name, command, cause, words) in READ_ONLY_ROOT {
        cases.push(Case {
            name: name.to_string(),
            command: command.to_string(),
            read_only: true,
            cause,
            words,
        });
    }
    cases
}

/// What is wrong with a case's report, if anything.
fn verdict(case: &Case, report: &Value) -> Option<String> {
    let d = &report["diagnosis"];
    let summary = d["summary"].as_str().unwrap_or_default();
    let mut wrong = Vec::new();
    if d["cause"] != case.cause {
        wrong.push(format!("cause {} (want {})", d["cause"], case.cause));
    }
    for w in case.words {
        if !summary.contains(w) {
            wrong.push(format!("no {w:?}"));
        }
    }
    let advice = d["advice"].as_str().unwrap_or_default();
    if advice.is_empty() {
        wrong.push("no advice".to_string());
    }
    for (_, w) in ADVICE.iter().filter(|(n, _)| *n == case.name) {
        if !advice.contains(w) {
            wrong.push(format!("advice without {w:?}: {advice}"));
        }
    }
    (!wrong.is_empty()).then(|| {
        format!(
            "{}: {}\n    summary: {summary}\n    statement: {}\n    stderr: {:?}",
            case.name,
            wrong.join(", "),
            d["statement"],
            report["recorder"]["output"]["stderr"]["head"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect::<String>()
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_real_death_is_named_by_its_root_cause() {
    let t0 = Instant::now();
    let image = tokio::task::spawn_blocking(runtimes_image).await.unwrap();
    eprintln!(
        "runtimes image: {} MiB layer, {}",
        image.layer_bytes >> 20,
        match image.built_in {
            Some(t) => format!("built in {:.0} s", t.as_secs_f64()),
            None => "from the cache".to_string(),
        }
    );
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let t_import = Instant::now();
    import_runtimes_image(&cd).await;
    eprintln!("imported in {:.1} s", t_import.elapsed().as_secs_f64());
    // Held for the whole run: the "hold" cases bind it too. If something else on the node holds
    // it already, those cases still meet EADDRINUSE.
    let _holder = std::net::TcpListener::bind("0.0.0.0:18080");
    let cases = cases();
    let cri = cd.cri().await;
    let t_run = Instant::now();
    let wrong: Vec<String> = stream::iter(cases.iter())
        .map(|case| {
            let (cri, agent) = (&cri, &agent);
            async move {
                let pod_name = case.name.replace(['/', '_'], "-");
                let pod = cri.run_pod(&pod_name, "corpus").await;
                pod.container("app")
                    .image(RUNTIMES_IMAGE)
                    .env("HOME", "/root")
                    .working_dir("/tmp")
                    .readonly_rootfs(case.read_only)
                    .command(["/bin/sh", "-c", &case.command])
                    .start()
                    .await;
                let report = agent.report_for(&pod_name, "app").await;
                let d = &report["diagnosis"];
                eprintln!(
                    "{:28} {:18} {}\n{:47} advice: {}",
                    case.name,
                    d["cause"].as_str().unwrap_or_default(),
                    d["summary"].as_str().unwrap_or_default(),
                    "",
                    d["advice"].as_str().unwrap_or_default()
                );
                verdict(case, &report)
            }
        })
        .buffer_unordered(4)
        .filter_map(|v| async move { v })
        .collect()
        .await;
    eprintln!(
        "{} cases in {:.1} s (total {:.1} s)",
        cases.len(),
        t_run.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
