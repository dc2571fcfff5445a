//! The recognisers over real output captured from Debian's runtimes
//! (`tests/fixtures/statements/`, produced by `capture.sh` there from `cases.txt`).

use super::{recognise, Found};
use crate::model::{Runtime, StatementKind as K};

fn captured(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/statements/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `(file, runtime, kind, words the text holds, words the detail holds)`.
const CASES: &[(&str, Runtime, K, &str, &str)] = &[
    ("beam/eaddrinuse.txt", Runtime::Beam, K::AddressInUse, "init terminating in do_boot: {badmatch,{error,eaddrinuse}}", "eaddrinuse"),
    ("beam/undef.txt", Runtime::Beam, K::MissingModule, "do_boot: undef {gateway_app,start,[],[]}", "undef"),
    ("beam/enoent.txt", Runtime::Beam, K::MissingFile, "{badmatch,{error,enoent}}", "enoent"),
    ("beam/eacces.txt", Runtime::Beam, K::PermissionDenied, "{badmatch,{error,eacces}}", "eacces"),
    ("beam/exception.txt", Runtime::Beam, K::ConfigError, "{bad_config,port}", "{bad_config,port}"),
    ("beam/app_start.txt", Runtime::Beam, K::UncaughtException, "do_boot: {badmatch,{error,", "badmatch"),
    ("beam/bad_config.txt", Runtime::Beam, K::ConfigError, "could not start kernel pid: error in config file \"/etc/app/sys.config\"", "configuration file not found"),
    ("python/module_not_found.txt", Runtime::Python, K::MissingModule, "ModuleNotFoundError: No module named 'requests'", "ModuleNotFoundError"),
    ("python/missing_stdlib.txt", Runtime::Python, K::MissingModule, "No module named 'json'", "json"),
    ("python/file_not_found.txt", Runtime::Python, K::MissingFile, "FileNotFoundError: [Errno 2] No such file or directory: '/etc/app/config.yaml'", "FileNotFoundError"),
    ("python/eaddrinuse.txt", Runtime::Python, K::AddressInUse, "OSError: [Errno 98] Address already in use", "OSError"),
    ("python/keyerror.txt", Runtime::Python, K::UncaughtException, "KeyError: 'DATABASE_URL'", "DATABASE_URL"),
    ("python/permission.txt", Runtime::Python, K::PermissionDenied, "PermissionError: [Errno 13] Permission denied: '/etc/app.conf'", "PermissionError"),
    ("python/chained.txt", Runtime::Python, K::ConfigError, "ConfigError: invalid PORT", "ConfigError"),
    ("python/memory.txt", Runtime::Python, K::OutOfMemory, "MemoryError", "MemoryError"),
    ("python/cant_open.txt", Runtime::Python, K::MissingFile, "python3: can't open file '/app/main.py'", ""),
    ("go/panic_index.txt", Runtime::Go, K::Panic, "panic: runtime error: index out of range [5] with length 3", "index out of range"),
    ("go/panic_nil.txt", Runtime::Go, K::Panic, "nil pointer dereference", "invalid memory address"),
    ("go/panic_config.txt", Runtime::Go, K::Panic, "panic: config: DATABASE_URL is not set", "DATABASE_URL"),
    ("go/deadlock.txt", Runtime::Go, K::Panic, "fatal error: all goroutines are asleep - deadlock!", "deadlock"),
    ("go/oom.txt", Runtime::Go, K::OutOfMemory, "fatal error: out of memory", "out of memory"),
    ("go/log_fatal_eaddrinuse.txt", Runtime::Generic, K::AddressInUse, "listen tcp :18080: bind: address already in use", ""),
    ("jvm/exception.txt", Runtime::Jvm, K::UncaughtException, "Exception in thread \"main\" java.lang.NumberFormatException: For input string: \"eighty\"", "NumberFormatException"),
    ("jvm/bind.txt", Runtime::Jvm, K::AddressInUse, "java.net.BindException: Address already in use", "BindException"),
    ("jvm/heap.txt", Runtime::Jvm, K::OutOfMemory, "java.lang.OutOfMemoryError: Java heap space", "Java heap space"),
    ("jvm/caused_by.txt", Runtime::Jvm, K::MissingFile, "caused by java.nio.file.NoSuchFileException: /etc/app/application.yml", "/etc/app/application.yml"),
    ("jvm/main_class.txt", Runtime::Jvm, K::MissingModule, "Could not find or load main class com.example.Gateway", "java.lang.ClassNotFoundException: com.example.Gateway"),
    ("jvm/jarfile.txt", Runtime::Jvm, K::MissingFile, "Error: Unable to access jarfile /app/gateway.jar", "/app/gateway.jar"),
    ("jvm/init_vm.stdout.txt", Runtime::Jvm, K::ConfigError, "Error occurred during initialization of VM: Initial heap size set to a larger value than the maximum heap size", "Initial heap size"),
    ("node/throw.txt", Runtime::Node, K::UncaughtException, "SyntaxError: Unexpected token } in JSON at position 9", "SyntaxError"),
    ("node/eaddrinuse.txt", Runtime::Node, K::AddressInUse, "Error: listen EADDRINUSE: address already in use :::18080", "EADDRINUSE"),
    ("node/module_not_found.txt", Runtime::Node, K::MissingModule, "Error: Cannot find module 'express'", "express"),
    ("node/heap.txt", Runtime::Node, K::OutOfMemory, "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory", "heap out of memory"),
    ("node/enoent.txt", Runtime::Node, K::MissingFile, "Error: ENOENT: no such file or directory, open '/etc/app/config.json'", "ENOENT"),
    ("node/eacces.txt", Runtime::Node, K::PermissionDenied, "Error: EACCES: permission denied, open '/etc/app.conf'", "EACCES"),
    ("node/rejection.txt", Runtime::Node, K::UncaughtException, "Error: connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED"),
    ("rust/unwrap.txt", Runtime::Rust, K::MissingFile, "thread 'main' panicked at 'called `Result::unwrap()` on an `Err` value", "No such file or directory"),
    ("rust/expect.txt", Runtime::Rust, K::Panic, "panicked at 'PORT must be a number", "PORT must be a number: ParseIntError"),
    ("rust/expect_rust_1_95.txt", Runtime::Rust, K::Panic, "panicked at programs/panic.rs:2:38: PORT must be a number", "PORT must be a number: ParseIntError"),
    ("rust/alloc.txt", Runtime::Rust, K::OutOfMemory, "memory allocation of 1099511627776 bytes failed", ""),
    ("loader/missing_lib.txt", Runtime::Loader, K::LoaderError, "error while loading shared libraries: libgreet.so: cannot open shared object file", "libgreet.so"),
    ("loader/double_free.txt", Runtime::Loader, K::MemoryCorruption, "free(): double free detected in tcache 2", ""),
    ("loader/stack_smashing.txt", Runtime::Loader, K::MemoryCorruption, "*** stack smashing detected ***: terminated", ""),
    ("shell/dash_not_found.txt", Runtime::Shell, K::CommandNotFound, "sh: 1: gateway: not found", "gateway"),
    ("shell/bash_not_found.txt", Runtime::Shell, K::CommandNotFound, "bash: line 1: gateway: command not found", "gateway"),
    ("shell/busybox_not_found.txt", Runtime::Shell, K::CommandNotFound, "sh: gateway: not found", "gateway"),
    ("shell/permission.txt", Runtime::Shell, K::PermissionDenied, "sh: 1: /etc/passwd: Permission denied", "/etc/passwd"),
    ("shell/cannot_create.txt", Runtime::Shell, K::PermissionDenied, "sh: 1: cannot create /etc/app.conf: Permission denied", "cannot create /etc/app.conf"),
    ("shell/cannot_open.txt", Runtime::Shell, K::MissingFile, "sh: 0: cannot open /app/entrypoint.sh: No such file", "cannot open /app/entrypoint.sh"),
    ("nginx/eaddrinuse.txt", Runtime::Nginx, K::AddressInUse, "bind() to 0.0.0.0:18080 failed (98: Address already in use)", "bind() to 0.0.0.0:18080 failed"),
    ("nginx/unknown_directive.txt", Runtime::Nginx, K::ConfigError, "unknown directive \"proxy_passs\"", "unknown directive \"proxy_passs\" in /opt/cases/nginx/unknown_directive.conf:9"),
    ("nginx/missing_include.txt", Runtime::Nginx, K::MissingFile, "open() \"/etc/nginx/sites/app.conf\" failed (2: No such file or directory)", "/etc/nginx/sites/app.conf"),
    ("nginx/missing_cert.txt", Runtime::Nginx, K::MissingFile, "cannot load certificate \"/etc/ssl/app/tls.crt\"", "cannot load certificate"),
    ("nginx/missing_conf.txt", Runtime::Nginx, K::MissingFile, "open() \"/etc/nginx/gateway.conf\" failed", "/etc/nginx/gateway.conf"),
    ("generic/gcc_fatal.txt", Runtime::Generic, K::MissingFile, "cc1: fatal error: /app/main.c: No such file or directory", ""),
];

#[test]
fn every_captured_death_is_recognised_with_its_runtime_kind_and_words() {
    let mut wrong = Vec::new();
    for (file, runtime, kind, text, detail) in CASES {
        let got = recognise(&captured(file));
        let ok = got.as_ref().is_some_and(|(r, f): &(Runtime, Found)| {
            r == runtime
                && f.kind == *kind
                && f.text.contains(text)
                && f.detail.as_deref().unwrap_or_default().contains(detail)
        });
        if !ok {
            wrong.push(format!(
                "{file}: want {runtime:?} {kind:?} {text:?} / {detail:?}, got {got:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_captured_case_has_an_expectation() {
    let dir = format!("{}/tests/fixtures/statements", env!("CARGO_MANIFEST_DIR"));
    let cases = std::fs::read_to_string(format!("{dir}/cases.txt")).unwrap();
    for line in cases
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split('|').next().unwrap();
        assert!(
            CASES
                .iter()
                .any(|(f, ..)| f.starts_with(&format!("{name}."))),
            "{name} is captured but has no expectation"
        );
    }
}

#[test]
fn a_crash_dump_progress_line_is_never_the_statement() {
    let text = "Crash dump is being written to: erl_crash.dump...done\n";
    assert_eq!(recognise(text), None);
    // The BEAM's own halt line wins over the progress line that follows it.
    let (runtime, found) = recognise(&captured("beam/eaddrinuse.txt")).unwrap();
    assert_eq!(runtime, Runtime::Beam);
    assert!(!found.text.contains("Crash dump"), "{found:?}");
}

#[test]
fn routine_complaints_and_logs_are_not_statements() {
    for text in [
        "cat: can't open '/nonexistent': No such file or directory\n",
        "2024/01/01 12:00:00 listening on :8080\nserving requests\n",
        "INFO starting worker\nWARN retrying connection\n",
    ] {
        assert_eq!(recognise(text), None, "{text}");
    }
}

#[test]
fn timestamps_and_pids_of_log_lines_are_not_part_of_the_words() {
    // They would make each crash's summary, and its crash-loop key, differ.
    let (_, go) = recognise(&captured("go/log_fatal_eaddrinuse.txt")).unwrap();
    assert_eq!(go.text, "listen tcp :18080: bind: address already in use");
    let (_, nginx) = recognise(&captured("nginx/unknown_directive.txt")).unwrap();
    assert_eq!(
        nginx.text,
        "nginx: [emerg] unknown directive \"proxy_passs\" in /opt/cases/nginx/unknown_directive.conf:9"
    );
}
