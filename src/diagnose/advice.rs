//! One line of advice per cause: what to change, grounded in the report's own figures (the
//! memory limit against the observed peak, the path that was missing or read-only, the module
//! the runtime could not find, the signal's sender). Pure, like the rules: the facts and the
//! finished diagnosis in, a sentence out. `None` only for a clean exit outside Kubernetes.

use super::evidence::fd_path;
use super::facts::Facts;
use super::rules::exec_failed::{why_for_advice, Why};
use crate::model::{Cause, Diagnosis, Runtime, SignalOrigin, Statement, StatementKind};
use crate::units::bytes;

pub(super) fn advise(f: &Facts, d: &Diagnosis) -> Option<String> {
    let r = f.r;
    let limit = r.cgroup.limits.as_ref().and_then(|l| l.memory_limit_bytes);
    let peak = r.cgroup.usage.as_ref().and_then(|u| u.memory_peak_bytes);
    let s = d.statement.as_ref();
    let (call, path, errno) = syscall_key(d.key.as_deref());
    Some(match d.cause {
        Cause::OomKilled => {
            let who = f
                .rec
                .and_then(|x| x.oom_victim.as_ref())
                .map(|v| format!("`{}`", v.comm))
                .unwrap_or_else(|| "the program".to_string());
            match (peak, limit) {
                (Some(p), Some(l)) if p >= l.saturating_sub(l / 20) => format!(
                    "Raise the memory limit above the {} it reached (memory peaked at {}, the limit), or make {who} use less: it needs more than {}",
                    bytes(l),
                    bytes(p),
                    bytes(l)
                ),
                (Some(p), Some(l)) => format!(
                    "Memory peaked at {} of its {} limit, so the pod's or the node's memory ran out: check the pod's limit and the node's other workloads",
                    bytes(p),
                    bytes(l)
                ),
                (Some(p), None) => format!(
                    "Set a memory request and limit: it had no limit and peaked at {} when the node's memory ran out",
                    bytes(p)
                ),
                (None, Some(l)) => format!(
                    "Raise the {} memory limit or make {who} use less",
                    bytes(l)
                ),
                (None, None) => format!("Give {who} a memory limit it fits in, or make it use less"),
            }
        }
        Cause::OutOfMemory => {
            let against = limit
                .map(|l| format!(" (the container's limit is {})", bytes(l)))
                .unwrap_or_default();
            match s.map(|s| s.runtime) {
                Some(Runtime::Jvm) => format!(
                    "Raise the Java heap (-Xmx, or -XX:MaxRAMPercentage){against}, or find what fills it with a heap dump (-XX:+HeapDumpOnOutOfMemoryError)"
                ),
                Some(Runtime::Node) => format!(
                    "Raise V8's heap (--max-old-space-size){against}, or find what fills it with a heap snapshot"
                ),
                Some(Runtime::Beam) => format!(
                    "Raise the memory limit{against} or bound the process that grew (erl_crash.dump names it)"
                ),
                _ => format!("Raise the memory limit{against} or make the program use less"),
            }
        }
        Cause::Crashed => {
            let sig = r.exit.signal_name.as_deref().unwrap_or_default();
            match (sig, s.map(|s| s.kind)) {
                (_, Some(StatementKind::MemoryCorruption)) => {
                    "glibc caught memory corruption: run the program under AddressSanitizer or valgrind to find the bad write".to_string()
                }
                ("SIGILL", _) => {
                    "Build the program for this node's CPU (its instruction set), or schedule it on nodes that have it".to_string()
                }
                ("SIGSYS", _) => {
                    "Allow the blocked system call in the pod's seccomp profile, or use a program that does not need it".to_string()
                }
                ("SIGABRT", _) => {
                    "The program aborted itself: its last words on stderr say why (a failed assertion, an unhandled C++ exception)".to_string()
                }
                _ => "Collect a core dump (the node's core_pattern) and read the faulting thread's backtrace".to_string(),
            }
        }
        Cause::Killed => {
            let fatal = f.rec.and_then(|x| x.fatal_signal.as_ref());
            let sender = fatal.and_then(|p| p.sender_comm.clone());
            let runtime = sender.as_deref().is_some_and(|c| {
                c.starts_with("containerd") || c.starts_with("runc") || c == "kubelet"
            });
            let sig = r.exit.signal_name.as_deref().unwrap_or("the signal");
            match (fatal.map(|p| p.origin), sender) {
                (Some(SignalOrigin::Host), Some(_)) if runtime && sig == "SIGKILL" => {
                    "The runtime stopped it with SIGKILL: if it ignored SIGTERM, give PID 1 a SIGTERM handler or run it under an init such as tini, and check the liveness probe and the grace period".to_string()
                }
                (Some(SignalOrigin::Host), Some(_)) if runtime => {
                    "The runtime stopped it: check the pod's events for a failed liveness probe, an eviction or a rollout".to_string()
                }
                (Some(SignalOrigin::Kernel), _) if sig == "SIGPIPE" => {
                    "Handle SIGPIPE (or EPIPE) in the program: the reader of its pipe or socket went away".to_string()
                }
                (_, Some(c)) => format!("Find out why `{c}` sent {sig} to this container"),
                _ => format!(
                    "Find who sent {sig}: if the container was being stopped and it ignored SIGTERM, give PID 1 a SIGTERM handler or run it under an init such as tini"
                ),
            }
        }
        Cause::ExecFailed => exec_failed(f, d, path, errno.as_deref()),
        Cause::StartFailed => start_failed(r.cri.as_ref().and_then(|c| c.message.as_deref())),
        Cause::LockHeld => format!(
            "Another process holds {}: run one instance per volume (Recreate strategy, or a StatefulSet) or let the previous one stop first",
            path.unwrap_or_else(|| "the lock".to_string())
        ),
        Cause::AddressInUse => {
            let addr = path.unwrap_or_else(|| "the address".to_string());
            format!(
                "Another process in this network namespace holds {addr}: with hostNetwork every pod on the node shares its ports, so change the port or stop the other holder (a previous instance still shutting down?)"
            )
        }
        Cause::PidsLimit => {
            let max = r.cgroup.limits.as_ref().and_then(|l| l.pids_max);
            let peak = r.cgroup.usage.as_ref().and_then(|u| u.pids_peak);
            match (max, peak) {
                (Some(m), Some(p)) => format!(
                    "Raise pids.max ({m}; {p} tasks at the peak) or find what keeps forking or spawning threads"
                ),
                (Some(m), None) => {
                    format!("Raise pids.max ({m}) or find what keeps forking or spawning threads")
                }
                _ => "Raise the pod's pids limit (or RLIMIT_NPROC) or find what keeps forking or spawning threads".to_string(),
            }
        }
        Cause::MissingDependency => missing_dependency(s),
        Cause::ConfigError => match s {
            Some(s) if s.runtime == Runtime::Nginx => format!(
                "Fix the configuration nginx rejected ({}) and test it before deploying with `nginx -t`",
                s.detail.as_deref().unwrap_or(&s.text)
            ),
            Some(s) => format!(
                "Fix the configuration the program rejected ({}) and validate it before deploying",
                s.detail.as_deref().unwrap_or(&s.text)
            ),
            None => "Fix the configuration the program rejected and validate it before deploying".to_string(),
        },
        Cause::MissingFile => format!(
            "Provide {} in the image or mount it (a ConfigMap, a Secret or a volume at that path)",
            path.or_else(|| s.and_then(missing_path))
                .unwrap_or_else(|| "the missing file".to_string())
        ),
        Cause::PermissionDenied => permission(path, errno.as_deref()),
        Cause::RuntimeError => match s {
            Some(s) if s.kind == StatementKind::Panic => format!(
                "Fix the panic in the program ({}); its stack is in the captured stderr ({})",
                s.detail.as_deref().unwrap_or(&s.text),
                s.field
            ),
            Some(s) => format!(
                "Fix or handle the error in the program ({}); its stack is in the captured output ({})",
                s.detail.as_deref().unwrap_or(&s.text),
                s.field
            ),
            None => "Fix the error the program reported; read its last output".to_string(),
        },
        Cause::ExitedError => match errno.as_deref() {
            Some("ENOENT") if call.as_deref() != Some("execve") => format!(
                "Provide {} in the image or mount it, if the program needs it",
                path.unwrap_or_else(|| "the missing file".to_string())
            ),
            Some("EACCES" | "EPERM" | "EROFS") => permission(path, errno.as_deref()),
            Some("ECONNREFUSED") => format!(
                "Nothing listened at {}: start it first (an init container that waits for it) or retry with a backoff",
                path.unwrap_or_else(|| "the address".to_string())
            ),
            Some("ENOSPC") => "The disk or volume is full: free space or give the volume more".to_string(),
            _ if f.rec.is_none() => {
                "Read the container's log (kubectl logs --previous); run the agent with the flight recorder for syscall evidence".to_string()
            }
            _ => format!(
                "Read its last output (kubectl logs --previous) for why it exited {}",
                r.exit.code
            ),
        },
        Cause::Completed => {
            r.kubernetes.as_ref()?;
            "It exited 0: if it should keep running, make sure its main process stays in the foreground (no daemonizing)".to_string()
        }
    })
}

/// `(syscall, argument, errno)` of a key in the `openat /data/x ENOENT` form the syscall rules
/// write; `(None, None, None)` for other keys.
fn syscall_key(key: Option<&str>) -> (Option<String>, Option<String>, Option<String>) {
    let Some(key) = key else {
        return (None, None, None);
    };
    let parts: Vec<&str> = key.split(' ').collect();
    match parts.as_slice() {
        [call, arg @ .., errno]
            if !arg.is_empty()
                && errno.starts_with('E')
                && errno.chars().all(|c| c.is_ascii_uppercase()) =>
        {
            (
                Some(call.to_string()),
                Some(fd_path(&arg.join(" "))),
                Some(errno.to_string()),
            )
        }
        _ => (None, None, None),
    }
}

fn permission(path: Option<String>, errno: Option<&str>) -> String {
    match (path, errno) {
        (Some(p), Some("EROFS")) => {
            let dir = std::path::Path::new(&p)
                .parent()
                .map(|d| d.display().to_string())
                .filter(|d| !d.is_empty())
                .unwrap_or(p.clone());
            format!(
                "The root filesystem is read-only: mount an emptyDir at {dir} for what the program writes to {p}"
            )
        }
        (Some(p), _) => format!(
            "Run as a user that may use {p} (runAsUser, fsGroup) or fix its owner and mode in the image or volume"
        ),
        (None, _) => "Run as a user that may use the path it named (runAsUser, fsGroup), or give it a writable volume there (an emptyDir on a read-only root)".to_string(),
    }
}

/// What to change when the program never ran: from why the entrypoint section says it could
/// not (`exec_failed::Why`), else from the loader's or the shell's words, else the errno.
fn exec_failed(f: &Facts, d: &Diagnosis, path: Option<String>, errno: Option<&str>) -> String {
    if let Some((name, why)) = why_for_advice(f, d) {
        return exec_why(&name, &why);
    }
    let s = d.statement.as_ref();
    if let Some(s) = s.filter(|s| s.kind == StatementKind::LoaderError) {
        return loader(s.detail.as_deref());
    }
    let what = path
        .or_else(|| s.and_then(|s| s.detail.clone()))
        .map_or_else(|| "the program".to_string(), |p| format!("`{p}`"));
    match errno {
        Some("EACCES") => format!(
            "Make {what} executable in the image (chmod +x) and check that its volume is not mounted noexec"
        ),
        Some("ENOEXEC") => format!(
            "{what} is not a program for this machine: build the image for the node's architecture, or give a script its #! line"
        ),
        _ => format!(
            "Check that {what} exists in the image and is spelled as in the pod's command; if it exists, its interpreter (the #! line or the ELF loader) is missing from the image"
        ),
    }
}

fn exec_why(name: &str, why: &Why) -> String {
    match why {
        Why::Directory => format!("`{name}` is a directory: point the pod's command at the program in it"),
        Why::NoExecuteBit { mode } => format!(
            "Make `{name}` executable in the image (chmod +x; its mode is {mode}), or run it through its interpreter"
        ),
        Why::NoexecMount => format!(
            "`{name}` is on a volume mounted noexec: run it from the image, or mount the volume without noexec"
        ),
        Why::ForeignMachine { machine } => format!(
            "`{name}` is built for {machine}: build the image for this node's architecture (a multi-arch image), or schedule the pod on {machine} nodes (nodeSelector kubernetes.io/arch)"
        ),
        Why::NotAProgram => format!(
            "`{name}` is not a program: give the script a #! line, or point the pod's command at the program"
        ),
        Why::MissingLoader { loader } if loader.contains("ld-linux") => format!(
            "`{name}` is linked against glibc and the image has no {loader}: use a glibc-based image (Debian, distroless/base), or build the program statically or against musl"
        ),
        Why::MissingLoader { loader } => format!(
            "The image has no {loader}, which `{name}` needs to start: use an image with its C library, or build the program statically"
        ),
        Why::MissingInterpreter { interpreter } => format!(
            "Install {interpreter} in the image, or change the #! line of `{name}` to an interpreter the image has"
        ),
        Why::Interpreter { interpreter, why } => exec_why(interpreter, why),
        Why::MissingLibraries { libraries } => format!(
            "Install {} in the image (the distribution package that ships it), or link `{name}` statically",
            libraries
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The dynamic loader said it: a missing shared library, or a glibc older than the program's.
fn loader(detail: Option<&str>) -> String {
    match detail {
        Some(v) if v.starts_with("GLIBC_") => format!(
            "The program needs glibc with {v}, newer than the image's: build it on the image's distribution release, or use a newer base image"
        ),
        Some(lib) => format!(
            "Install `{lib}` in the image (the distribution package that ships it), or link the program statically"
        ),
        None => "Install the shared library the loader named in the image, or link the program statically".to_string(),
    }
}

fn missing_dependency(s: Option<&Statement>) -> String {
    let Some(s) = s else {
        return "Install what the program needs in the image".to_string();
    };
    let quoted = |t: &str| t.split('\'').nth(1).map(str::to_string);
    match s.runtime {
        Runtime::Python => format!(
            "Install the Python module {} in the image (pip install in its build) or fix PYTHONPATH",
            quoted(&s.text).map_or("it imports".to_string(), |m| format!("`{m}`"))
        ),
        Runtime::Node => format!(
            "Install {} in the image (npm ci in its build, and copy node_modules) or fix the require path",
            quoted(&s.text).map_or("the module".to_string(), |m| format!("`{m}`"))
        ),
        Runtime::Jvm => format!(
            "Put {} on the classpath (-cp, the jar's Main-Class) or fix its name",
            // `java.lang.ClassNotFoundException: com.example.Gateway` -> the class.
            s.detail
                .as_deref()
                .and_then(|c| c.rsplit([' ', ':']).next())
                .filter(|c| !c.is_empty())
                .map_or("the class".to_string(), |c| format!("`{c}`"))
        ),
        Runtime::Beam => format!(
            "Put {} on the code path (the release's ebin directories) or fix the call",
            // `undef {gateway_app,start,[],[]}` -> the module.
            s.text
                .split("undef {")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .map_or("the module".to_string(), |m| format!("the module `{m}`"))
        ),
        _ => format!(
            "Install what the program needs in the image ({})",
            s.detail.as_deref().unwrap_or(&s.text)
        ),
    }
}

/// The path a missing-file statement names: `'/etc/app.conf'` or `"/etc/app.conf"`.
fn missing_path(s: &Statement) -> Option<String> {
    s.text
        .split(['\'', '"'])
        .find(|p| p.starts_with('/'))
        .map(str::to_string)
}

/// runc's message names what stopped the start; the fix follows from which step failed.
fn start_failed(message: Option<&str>) -> String {
    let m = message.unwrap_or_default().to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("exec:") && m.contains("no such file")
    {
        "Fix the container's command: the image has no such program (check `command` against the image's PATH and files)".to_string()
    } else if m.contains("unable to find user")
        || m.contains("no users found")
        || m.contains("no matching entries in passwd")
    {
        "Create the user in the image or give the pod a numeric runAsUser: the image's /etc/passwd does not have it".to_string()
    } else if m.contains("mount") {
        "Check the pod's volumes: runc could not mount one (a hostPath or subPath source that is missing, or a file mounted over a directory)".to_string()
    } else if m.contains("permission denied") {
        "Make the entrypoint executable and readable by the container's user, or run it through its interpreter".to_string()
    } else {
        "No program of the image ran: runc's message above names the step that failed (command, user, mount or device)".to_string()
    }
}
