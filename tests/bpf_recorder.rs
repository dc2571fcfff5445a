//! The eBPF recorder against the running kernel, without containerd: each test makes its own
//! cgroup2 directory, runs a shell that moves itself into it and execs busybox (that exec is the
//! "entrypoint"), and checks what the kernel recorded for the cgroup. Needs root; a recorder that
//! cannot load fails the test with the reason.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use coroner::bpf::decode;
use coroner::bpf::loader::{EventReader, Provenance, Recorder, RecorderConfig};
use coroner::bpf::raw::{Arch, RawContainer, RawEvent, RawSyscall};
use coroner::bpf::syscalls;
use coroner::cgroup::CgroupFs;

/// Every loaded recorder sees every test's cgroups: one test at a time keeps slot counts exact.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const ENOENT: i64 = 2;

fn arch() -> Arch {
    Arch::host().expect("the recorder supports x86_64 and aarch64 only")
}

fn nr(name: &str) -> u32 {
    syscalls::number(arch(), name).unwrap_or_else(|| panic!("no syscall {name} on {:?}", arch()))
}

fn load(max_containers: u32, ring_entries: u32) -> Recorder {
    let cfg = RecorderConfig {
        max_containers,
        ring_entries,
        specs: decode::spec_table(arch()),
    };
    Recorder::load(&cfg).unwrap_or_else(|e| panic!("recorder did not load ({}): {e}", e.label()))
}

/// A cgroup2 directory of its own, removed (its processes killed first) when dropped.
struct TestCgroup {
    path: PathBuf,
    id: u64,
}

impl TestCgroup {
    fn new(tag: &str) -> TestCgroup {
        let fs = CgroupFs::detect().expect("reading /proc/self/mountinfo");
        let unified = fs.unified_mount().expect("this host has no cgroup2 mount");
        let path = unified.join(format!("coroner-bpf-test-{}-{tag}", std::process::id()));
        if path.exists() {
            remove_cgroup(&path);
        }
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        let id = std::fs::metadata(&path).unwrap().ino();
        TestCgroup { path, id }
    }

    /// `sh` joins the cgroup, then execs `busybox sh -c script` (the entrypoint).
    fn command(&self, script: &str) -> Command {
        self.command_joining(&[], script)
    }

    /// Like [`TestCgroup::command`], joining the `also` cgroup directories first (v1 ones).
    fn command_joining(&self, also: &[&Path], script: &str) -> Command {
        let mut join = String::new();
        for dir in also.iter().copied().chain([self.path.as_path()]) {
            join.push_str(&format!("echo $$ > {}/cgroup.procs && ", dir.display()));
        }
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("{join}exec busybox sh -c \"$1\""))
            .arg("sh")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, script: &str) -> (u32, Output) {
        let child = self.command(script).spawn().expect("spawning /bin/sh");
        let pid = child.id();
        (
            pid,
            child
                .wait_with_output()
                .expect("waiting for the test shell"),
        )
    }

    fn spawn(&self, script: &str) -> Child {
        self.command(script).spawn().expect("spawning /bin/sh")
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        remove_cgroup(&self.path);
    }
}

fn remove_cgroup(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let procs = std::fs::read_to_string(path.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if std::fs::remove_dir(path).is_ok() || !path.exists() || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Process events of every recorded cgroup, as the reader thread delivers them.
struct Events {
    seen: Arc<Mutex<Vec<RawEvent>>>,
    _reader: EventReader,
}

impl Events {
    fn start(recorder: &Recorder) -> Events {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let reader = recorder
            .spawn_event_reader(move |e| sink.lock().unwrap().push(e))
            .expect("starting the event reader");
        Events {
            seen,
            _reader: reader,
        }
    }

    fn of(&self, cgroup_id: u64) -> Vec<RawEvent> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.cgroup_id() == cgroup_id)
            .cloned()
            .collect()
    }

    /// Waits (up to 5 s) for an event of the cgroup matching `pred`.
    fn wait_for(&self, cgroup_id: u64, what: &str, pred: impl Fn(&RawEvent) -> bool) -> RawEvent {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(e) = self.of(cgroup_id).into_iter().find(|e| pred(e)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} event; got {:#?}",
                self.of(cgroup_id)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn is_exit_of(pid: u32) -> impl Fn(&RawEvent) -> bool {
    move |e| matches!(e, RawEvent::Exit { pid: p, .. } if *p == pid)
}

fn drained(recorder: &Recorder, cg: &TestCgroup) -> RawContainer {
    recorder
        .drain(cg.id)
        .expect("draining")
        .unwrap_or_else(|| panic!("nothing recorded for cgroup {}", cg.id))
}

fn failed_open_of<'a>(records: &'a [RawSyscall], path: &[u8]) -> Option<&'a RawSyscall> {
    records
        .iter()
        .find(|r| r.nr == nr("openat") && r.ret == -ENOENT && r.data == path)
}

fn summary(raw: &RawContainer, syscall: &str) -> u64 {
    raw.calls
        .iter()
        .find(|(n, _)| *n == nr(syscall))
        .map(|(_, c)| *c)
        .unwrap_or(0)
}

#[test]
fn failing_cat_leaves_its_enoent_path_output_and_exit_status() {
    let _serial = serial();
    let recorder = load(256, 256);
    let events = Events::start(&recorder);
    let cg = TestCgroup::new("cat");
    let script = "cat /nonexistent; echo out; echo err >&2; exit 3";

    let (pid, out) = cg.run(script);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let exit = events.wait_for(cg.id, "exit", is_exit_of(pid));
    assert!(
        matches!(exit, RawEvent::Exit { wait_status, .. } if wait_status == 3 << 8),
        "{exit:?}"
    );
    let raw = drained(&recorder, &cg);

    // The flight recorder, the first failures and the summary all have the failed open.
    let open = failed_open_of(&raw.ring, b"/nonexistent")
        .unwrap_or_else(|| panic!("no openat ENOENT /nonexistent in the ring: {:#?}", raw.ring));
    assert!(!open.comm.is_empty());
    assert!(
        failed_open_of(&raw.first_failures, b"/nonexistent").is_some(),
        "{:#?}",
        raw.first_failures
    );
    assert!(
        raw.errors
            .iter()
            .any(|&(n, errno, count)| n == nr("openat") && errno == ENOENT as u32 && count >= 1),
        "{:?}",
        raw.errors
    );
    assert!(summary(&raw, "openat") >= 1);

    // Output goes by where it was written, not by the fd number: the shell's `echo err >&2`
    // writes to fd 1 after dup2(2, 1), and is stderr, after cat's complaint.
    assert_eq!(raw.stdout.head, b"out\n");
    assert_eq!(raw.stdout.total, 4);
    assert!(raw.stdout.tail.is_empty());
    let stderr = String::from_utf8_lossy(&raw.stderr.head);
    assert!(
        stderr.contains("/nonexistent") && stderr.ends_with("err\n"),
        "stderr: {stderr:?}"
    );
    assert_eq!(
        raw.stderr.head, out.stderr,
        "the captured stderr is what the process wrote"
    );

    // Set-up is what the shell did between joining the cgroup and exec'ing busybox: at least
    // the completion of its `echo $$ > cgroup.procs` (a write, by the shell's pid).
    assert!(raw.setup_calls >= 1, "setup_calls {}", raw.setup_calls);
    let first = &raw.ring[0];
    assert_eq!(
        (first.nr, first.pid),
        (nr("write"), pid),
        "first record: {first:#?}"
    );
    let exec = raw
        .ring
        .iter()
        .position(|r| r.nr == nr("execve") && r.ret == 0 && r.pid == pid)
        .expect("the entrypoint's execve in the ring");
    assert!(
        raw.ring[exec].data.ends_with(b"/busybox"),
        "{:?}",
        String::from_utf8_lossy(&raw.ring[exec].data)
    );
    // Every syscall counted once: set-up or workload, and all of them in the ring.
    let workload: u64 = raw.calls.iter().map(|(_, c)| c).sum();
    assert_eq!(raw.setup_calls + workload, raw.ring_total);
    assert_eq!(raw.ring.len() as u64, raw.ring_total);
    assert_eq!(
        exec as u64, raw.setup_calls,
        "the exec is the first workload syscall"
    );

    // The timeline: busybox exec'd with its argv, the exit with its wait status.
    let execs: Vec<RawEvent> = events
        .of(cg.id)
        .into_iter()
        .filter(|e| matches!(e, RawEvent::Exec { .. }))
        .collect();
    assert!(
        execs.iter().any(|e| matches!(e, RawEvent::Exec { pid: p, filename, argv, .. }
            if *p == pid && filename.ends_with("busybox") && argv == &["busybox", "sh", "-c", script])),
        "{execs:#?}"
    );

    assert_eq!(
        recorder.drain(cg.id).unwrap(),
        None,
        "a drained slot is freed"
    );
}

#[test]
fn successful_lookups_leave_no_path_but_failing_ones_and_opens_do() {
    let _serial = serial();
    let recorder = load(256, 256);
    let cg = TestCgroup::new("stat");
    // `test -e` is the shell's builtin: a stat-family call by the shell itself.
    let script =
        "test -e /etc/passwd && ! test -e /nonexistent-stat && cat /etc/passwd > /dev/null";
    let (_, out) = cg.run(script);
    assert!(out.status.success(), "{out:?}");
    let raw = drained(&recorder, &cg);

    let lookup = |r: &&RawSyscall| {
        matches!(
            syscalls::name(arch(), r.nr),
            Some("stat" | "lstat" | "newfstatat" | "statx" | "access" | "faccessat" | "faccessat2")
        )
    };
    let failed: Vec<&RawSyscall> = raw
        .ring
        .iter()
        .filter(lookup)
        .filter(|r| r.ret < 0)
        .collect();
    assert!(
        failed
            .iter()
            .any(|r| r.ret == -ENOENT && r.data == b"/nonexistent-stat"),
        "no failing lookup of /nonexistent-stat with its path: {failed:#?}"
    );
    let succeeded: Vec<&RawSyscall> = raw
        .ring
        .iter()
        .filter(lookup)
        .filter(|r| r.ret == 0)
        .collect();
    assert!(
        !succeeded.is_empty(),
        "no successful lookup: {:#?}",
        raw.ring
    );
    assert!(
        succeeded.iter().all(|r| r.data.is_empty()),
        "a successful lookup's path was copied: {succeeded:#?}"
    );
    // An open's path is copied on success: it names the fd for the records after it.
    assert!(
        raw.ring
            .iter()
            .any(|r| r.nr == nr("openat") && r.ret >= 0 && r.data == b"/etc/passwd"),
        "no successful openat of /etc/passwd with its path: {:#?}",
        raw.ring
    );
}

#[test]
fn container_exiting_within_milliseconds_has_complete_data() {
    let _serial = serial();
    let recorder = load(256, 256);
    let events = Events::start(&recorder);
    let cg = TestCgroup::new("quick");

    let started = Instant::now();
    let (pid, out) = cg.run("echo quick; exit 7");
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(7));
    events.wait_for(cg.id, "exit", is_exit_of(pid));
    let raw = drained(&recorder, &cg);

    assert!(
        took < Duration::from_millis(200),
        "the process took {took:?}"
    );
    assert_eq!(raw.stdout.head, b"quick\n");
    assert!(summary(&raw, "execve") >= 1);
    let workload: u64 = raw.calls.iter().map(|(_, c)| c).sum();
    assert_eq!(
        raw.setup_calls + workload,
        raw.ring_total,
        "every syscall counted once"
    );
    assert!(raw
        .ring
        .iter()
        .any(|r| r.nr == nr("write") && r.ret == 6 && r.pid == pid));
    assert!(events
        .of(cg.id)
        .iter()
        .any(|e| matches!(e, RawEvent::Exec { pid: p, .. } if *p == pid)));
}

#[test]
fn ignored_cgroup_is_never_recorded() {
    let _serial = serial();
    let recorder = load(256, 256);
    let events = Events::start(&recorder);

    let host = TestCgroup::new("host");
    recorder.ignore_cgroup(host.id).unwrap();
    let (_, out) = host.run("cat /nonexistent; echo hidden");
    assert!(out.status.success() || out.status.code() == Some(0) || out.status.code().is_some());
    assert_eq!(recorder.peek(host.id).unwrap(), None);
    assert!(!recorder.recorded_cgroups().contains(&host.id));

    // Ignoring a cgroup that already has a slot drops the slot.
    let late = TestCgroup::new("late");
    let (pid, _) = late.run("echo seen");
    assert!(recorder.peek(late.id).unwrap().is_some());
    assert!(recorder.recorded_cgroups().contains(&late.id));
    recorder.ignore_cgroup(late.id).unwrap();
    assert_eq!(recorder.peek(late.id).unwrap(), None);
    assert!(!recorder.recorded_cgroups().contains(&late.id));

    // Events of the recorded one arrived; none of the ignored one.
    events.wait_for(late.id, "exit", is_exit_of(pid));
    assert!(events.of(host.id).is_empty(), "{:#?}", events.of(host.id));
}

#[test]
fn drain_frees_the_slot_for_the_next_container() {
    let _serial = serial();
    let recorder = load(256, 256);
    let cg = TestCgroup::new("drain");
    cg.run("echo once");
    assert!(recorder.recorded_cgroups().contains(&cg.id));
    assert!(
        recorder.peek(cg.id).unwrap().is_some(),
        "peek leaves the slot"
    );
    assert_eq!(drained(&recorder, &cg).stdout.head, b"once\n");
    assert_eq!(recorder.drain(cg.id).unwrap(), None);
    assert!(!recorder.recorded_cgroups().contains(&cg.id));
}

#[test]
fn slots_reused_beyond_max_containers_keep_containers_apart() {
    let _serial = serial();
    // Two slots are taken by whatever else runs on the host too (other cgroups' syscalls, e.g.
    // containers of a concurrent test run): an attempt that saw another cgroup is retried.
    for attempt in 1..=5 {
        match slot_reuse_scenario() {
            Ok(()) => return,
            Err(other) => {
                eprintln!("attempt {attempt}: another cgroup took a slot ({other}); again")
            }
        }
    }
    panic!("other cgroups kept taking the recorder's two slots");
}

/// Err when a cgroup other than the test's own took a slot meanwhile.
fn slot_reuse_scenario() -> Result<(), String> {
    let recorder = load(2, 16);
    let cgs: Vec<TestCgroup> = (0..4)
        .map(|i| TestCgroup::new(&format!("reuse{i}")))
        .collect();
    let ours: HashSet<u64> = cgs.iter().map(|c| c.id).collect();
    let quiet = |recorder: &Recorder, evictions: u64| -> Result<(), String> {
        let stats = recorder.kernel_stats().unwrap();
        match recorder
            .recorded_cgroups()
            .into_iter()
            .find(|id| !ours.contains(id))
        {
            Some(id) => Err(format!("cgroup {id}")),
            None if stats.slot_evictions != evictions => {
                Err(format!("{} evictions", stats.slot_evictions))
            }
            None => Ok(()),
        }
    };
    for id in recorder.recorded_cgroups() {
        recorder.ignore_cgroup(id).unwrap();
    }
    let before = recorder.kernel_stats().unwrap().slot_evictions;
    let mut pids = Vec::new();
    for (i, cg) in cgs.iter().take(3).enumerate() {
        pids.push(cg.run(&format!("echo container{i}")).0);
    }
    quiet(&recorder, before + 1)?;

    // Two slots, three cgroups: the first one's slot went to the third.
    assert_eq!(recorder.peek(cgs[0].id).unwrap(), None);
    for i in 1..3 {
        let raw = recorder
            .peek(cgs[i].id)
            .unwrap()
            .unwrap_or_else(|| panic!("container{i} lost"));
        assert_eq!(raw.stdout.head, format!("container{i}\n").as_bytes());
        assert!(
            raw.ring.iter().all(|r| r.pid == pids[i]),
            "container{i}'s ring has others' records"
        );
        assert_eq!(raw.ring.len(), 16.min(raw.ring_total as usize));
    }

    // A drained slot is taken before a live one is evicted.
    drained(&recorder, &cgs[1]);
    cgs[3].run("echo container3");
    quiet(&recorder, before + 1)?;
    let third = recorder
        .peek(cgs[2].id)
        .unwrap()
        .expect("container2 evicted although a slot was free");
    assert_eq!(third.stdout.head, b"container2\n");
    assert_eq!(drained(&recorder, &cgs[3]).stdout.head, b"container3\n");
    let live: HashSet<u64> = recorder.recorded_cgroups().into_iter().collect();
    assert!(
        live.contains(&cgs[2].id) && !live.contains(&cgs[3].id),
        "{live:?}"
    );
    Ok(())
}

#[test]
fn sigterm_from_the_host_names_its_sender() {
    let _serial = serial();
    let recorder = load(256, 256);
    let events = Events::start(&recorder);
    let cg = TestCgroup::new("sigterm");

    let mut child = cg.spawn("sleep 30");
    let pid = child.id();
    events.wait_for(
        cg.id,
        "exec",
        |e| matches!(e, RawEvent::Exec { pid: p, .. } if *p == pid),
    );
    std::thread::sleep(Duration::from_millis(50));
    let kill = Command::new("/bin/kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .spawn()
        .expect("spawning kill");
    let killer = kill.id();
    let mut kill = kill;
    assert!(kill.wait().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");

    let sig = events.wait_for(
        cg.id,
        "signal",
        |e| matches!(e, RawEvent::Signal { target_pid, .. } if *target_pid == pid),
    );
    let RawEvent::Signal {
        sig,
        code,
        sender_pid,
        sender_comm,
        sender_cgroup_id,
        ..
    } = sig
    else {
        unreachable!()
    };
    assert_eq!(sig, libc::SIGTERM);
    assert_eq!(code, 0, "SI_USER: sent by kill(2)");
    assert_eq!(sender_pid, killer);
    assert_eq!(sender_comm, "kill");
    assert_ne!(
        sender_cgroup_id, cg.id,
        "the sender lives outside the container"
    );
    let exit = events.wait_for(cg.id, "exit", is_exit_of(pid));
    assert!(
        matches!(exit, RawEvent::Exit { wait_status, .. } if wait_status == libc::SIGTERM),
        "{exit:?}"
    );
}

#[test]
fn map_memory_at_the_defaults_is_bounded() {
    let _serial = serial();
    let recorder = load(256, 256);
    let bytes = recorder.map_memory_bytes();
    eprintln!(
        "recorder maps at 256 containers x 256 entries: {bytes} bytes ({:.1} MiB)",
        bytes as f64 / (1 << 20) as f64
    );
    assert!(
        bytes > 16 << 20,
        "{bytes}: the ring alone is 256 x 256 x 256 bytes"
    );
    assert!(bytes < 40 << 20, "{bytes}");
}

/// A memory-limited cgroup: v1 `memory` where the host mounts it (hybrid hosts: the recorder's
/// cgroup2 directory has no memory controller there), else the test's own cgroup2 directory.
struct MemoryLimit {
    v1: Option<PathBuf>,
}

impl MemoryLimit {
    fn new(cg: &TestCgroup, bytes: u64) -> MemoryLimit {
        let fs = CgroupFs::detect().expect("reading /proc/self/mountinfo");
        match fs.v1_mount("memory") {
            Some(mount) => {
                let dir = mount.join(cg.path.file_name().unwrap());
                if dir.exists() {
                    remove_cgroup(&dir);
                }
                std::fs::create_dir(&dir)
                    .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
                let limit = MemoryLimit {
                    v1: Some(dir.clone()),
                };
                std::fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string()).unwrap();
                // Without swap accounting the file is absent; with it, swap must not absorb the overflow.
                let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
                limit
            }
            None => {
                std::fs::write(cg.path.join("memory.max"), bytes.to_string()).unwrap();
                let _ = std::fs::write(cg.path.join("memory.swap.max"), "0");
                MemoryLimit { v1: None }
            }
        }
    }
}

impl Drop for MemoryLimit {
    fn drop(&mut self) {
        if let Some(dir) = &self.v1 {
            remove_cgroup(dir);
        }
    }
}

#[test]
fn oom_kill_names_the_victim_and_its_rss() {
    let _serial = serial();
    let recorder = load(256, 256);
    let events = Events::start(&recorder);
    let cg = TestCgroup::new("oom");
    let limit = MemoryLimit::new(&cg, 20 << 20);

    let also: Vec<&Path> = limit.v1.iter().map(|p| p.as_path()).collect();
    let out = cg
        .command_joining(&also, "head -c 100000000 /dev/zero | tail")
        .output()
        .expect("running the memory hog");
    assert!(!out.status.success(), "{out:?}");

    let victim = events.wait_for(cg.id, "OOM victim", |e| {
        matches!(e, RawEvent::OomVictim { .. })
    });
    let RawEvent::OomVictim {
        pid,
        comm,
        rss_bytes,
        ..
    } = victim
    else {
        unreachable!()
    };
    assert_eq!(comm, "tail", "the process holding the memory");
    assert!(
        rss_bytes > 8 << 20 && rss_bytes < 64 << 20,
        "rss {rss_bytes}"
    );
    let kill = events.wait_for(
        cg.id,
        "SIGKILL",
        |e| matches!(e, RawEvent::Signal { target_pid, sig: 9, .. } if *target_pid == pid),
    );
    assert!(
        matches!(kill, RawEvent::Signal { code: 0x80, .. }),
        "sent by the kernel (SI_KERNEL): {kill:?}"
    );
    let exit = events.wait_for(cg.id, "exit", is_exit_of(pid));
    assert!(
        matches!(exit, RawEvent::Exit { wait_status: 9, .. }),
        "{exit:?}"
    );
}

/// One v1 `memory.*` figure (or v2 `memory.peak` / `memory.events` field) of the hog's cgroup.
fn memory_figure(
    limit: &MemoryLimit,
    cg: &TestCgroup,
    v1: (&str, Option<&str>),
    v2: (&str, Option<&str>),
) -> u64 {
    let (dir, (file, key)) = match &limit.v1 {
        Some(dir) => (dir.clone(), v1),
        None => (cg.path.clone(), v2),
    };
    let text = std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("reading {}/{file}: {e}", dir.display()));
    let value = match key {
        None => text.trim(),
        Some(k) => text
            .lines()
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {k} in {file}: {text}")),
    };
    value
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{file}: {value:?}: {e}"))
}

#[test]
fn kernel_keeps_memory_peak_and_oom_kills_after_the_cgroup_is_removed() {
    let _serial = serial();
    let recorder = load(256, 256);
    let cg = TestCgroup::new("usage");
    let limit = MemoryLimit::new(&cg, 20 << 20);
    let also: Vec<&Path> = limit.v1.iter().map(|p| p.as_path()).collect();
    let out = cg
        .command_joining(&also, "head -c 100000000 /dev/zero | tail")
        .output()
        .expect("running the memory hog");
    assert!(!out.status.success(), "{out:?}");

    // What the agent would read from the files at the exit, while they are still there.
    let peak = memory_figure(
        &limit,
        &cg,
        ("memory.max_usage_in_bytes", None),
        ("memory.peak", None),
    );
    let oom_kill = memory_figure(
        &limit,
        &cg,
        ("memory.oom_control", Some("oom_kill")),
        ("memory.events", Some("oom_kill")),
    );
    assert!(oom_kill >= 1, "the hog was OOM-killed");
    // cgroup v2 keeps `cpu.stat` with or without the cpu controller enabled.
    let stat = std::fs::read_to_string(cg.path.join("cpu.stat")).expect("reading cpu.stat");
    let cpu_usec: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no usage_usec in cpu.stat: {stat}"));
    // The memory cgroup goes, as it does 5-25 ms after a container's exit.
    drop(limit);

    let raw = drained(&recorder, &cg);
    let usage = raw
        .exit_usage
        .expect("the kernel kept the figures at the last exit");
    assert_eq!(
        usage.peak_bytes,
        Some(peak),
        "the kernel's peak is the file's"
    );
    assert_eq!(usage.oom_kill, Some(oom_kill), "{usage:?}");
    assert!(
        usage.failcnt.is_some() && usage.current_bytes.is_some(),
        "{usage:?}"
    );
    assert!(usage.boot_ns > 0 && usage.pid > 0, "{usage:?}");
    // The exited threads' CPU time, summed at their exits, is the cgroup's within a little:
    // the files also count the exit path after the tracepoint, the sum the joining shell's time
    // before it joined (99.5% measured).
    let kernel_usec = usage.cpu_ns.expect("CPU time kept") / 1000;
    eprintln!("cpu.stat usage_usec {cpu_usec}, kernel's sum {kernel_usec}");
    assert!(
        kernel_usec * 10 >= cpu_usec * 9 && kernel_usec * 10 <= cpu_usec * 11,
        "kernel {kernel_usec} us against cpu.stat {cpu_usec} us"
    );
}

/// A bpffs pin directory of this test process, named as scripts/cleanup-test-leftovers.sh
/// expects (`coroner-test-<pid>-<starttime>-<tag>`), removed when dropped.
struct PinRoot(PathBuf);

impl PinRoot {
    fn new(tag: &str) -> PinRoot {
        if !coroner::bpf::pin::on_bpffs(Path::new("/sys/fs/bpf")) {
            let out = Command::new("mount")
                .args(["-t", "bpf", "bpf", "/sys/fs/bpf"])
                .output()
                .expect("running mount");
            assert!(out.status.success(), "mounting bpffs: {out:?}");
        }
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let start = stat[stat.rfind(')').unwrap() + 2..]
            .split(' ')
            .nth(19)
            .unwrap()
            .to_string();
        let path = PathBuf::from(format!(
            "/sys/fs/bpf/coroner-test-{}-{start}-{tag}",
            std::process::id()
        ));
        if path.exists() {
            coroner::bpf::pin::remove_tree(&path).unwrap();
        }
        PinRoot(path)
    }
}

impl Drop for PinRoot {
    fn drop(&mut self) {
        if self.0.exists() {
            if let Err(e) = coroner::bpf::pin::remove_tree(&self.0) {
                eprintln!("removing {}: {e}", self.0.display());
            }
        }
    }
}

fn config(ring_entries: u32) -> RecorderConfig {
    RecorderConfig {
        max_containers: 256,
        ring_entries,
        specs: decode::spec_table(arch()),
    }
}

#[test]
fn pinned_recorder_is_adopted_with_its_ring_and_saved_events_and_replaced_on_another_layout() {
    let _serial = serial();
    let root = PinRoot::new("adopt");
    let cg = TestCgroup::new("adopt");
    let (recorder, provenance) =
        Recorder::load_pinned(&config(256), &root.0).expect("loading pinned");
    assert!(
        matches!(&provenance, Provenance::Pinned { replaced: None, .. }),
        "{provenance:?}"
    );
    let events = Events::start(&recorder);
    let (pid, _) = cg.run("cat /nonexistent-before-adoption");
    let exec = events.wait_for(cg.id, "exec", |e| matches!(e, RawEvent::Exec { .. }));
    events.wait_for(cg.id, "exit", is_exit_of(pid));
    let loaded = recorder.agent_state().unwrap().loaded_boot_ns;
    drop(events);
    drop(recorder); // the process's fds close; the pins keep maps and programs

    // Recorded while no recorder object exists: the programs stayed attached.
    let (_, out) = cg.run("cat /nonexistent-while-away");
    assert!(!out.status.success());

    let (recorder, provenance) = Recorder::load_pinned(&config(256), &root.0).expect("adopting");
    let Provenance::Adopted { previous, .. } = &provenance else {
        panic!("not adopted: {provenance:?}");
    };
    assert_eq!(previous.loaded_boot_ns, loaded, "the same recording");
    assert!(previous.heartbeat_boot_ns >= loaded, "{previous:?}");
    let saved = recorder.saved_events().expect("reading saved events");
    assert!(
        saved.contains(&exec),
        "the exec the first reader consumed was saved in the kernel: {saved:#?}"
    );
    let raw = drained(&recorder, &cg);
    assert!(failed_open_of(&raw.ring, b"/nonexistent-before-adoption").is_some());
    assert!(failed_open_of(&raw.ring, b"/nonexistent-while-away").is_some());
    assert!(
        recorder
            .saved_events()
            .unwrap()
            .iter()
            .all(|e| e.cgroup_id() != cg.id),
        "a drained cgroup's saved events are deleted"
    );
    drop(recorder);

    // Another ring size is another layout: replaced, and said so.
    let (recorder, provenance) = Recorder::load_pinned(&config(64), &root.0).expect("replacing");
    match &provenance {
        Provenance::Pinned {
            replaced: Some(what),
            dir,
        } => {
            assert!(what.contains("layout"), "{what}");
            let names: Vec<_> = std::fs::read_dir(&root.0)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert_eq!(names, vec![dir.clone()], "only the new layout is left");
        }
        other => panic!("not replaced: {other:?}"),
    }
    drop(recorder);
}

#[test]
fn pin_dir_outside_bpffs_is_a_pin_error() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let err = match Recorder::load_pinned(&config(256), &dir.path().join("coroner")) {
        Ok(_) => panic!("pinned outside bpffs"),
        Err(e) => e,
    };
    assert_eq!(err.label(), "pin", "{err}");
    assert!(err.to_string().contains("not on a bpf filesystem"), "{err}");
}

#[test]
fn a_pin_dir_held_by_another_agent_is_busy_until_released() {
    use coroner::bpf::pin::PinDir;
    let root = PinRoot::new("lock");
    let first = PinDir::open(&root.0, Duration::ZERO).expect("first holder");
    let err = PinDir::open(&root.0, Duration::from_millis(100)).expect_err("held");
    assert_eq!(err.label(), "busy", "{err}");
    drop(first);
    PinDir::open(&root.0, Duration::ZERO).expect("free again once the holder is gone");
}

/// A C program that dereferences NULL two calls below `main`, with debug info and frame
/// pointers (the kernel walks user stacks by frame pointer).
const CRASH_SOURCE: &str = "#include <stdio.h>
__attribute__((noinline)) void crash_here(volatile int *p) {
\t*p = 42;
}
__attribute__((noinline)) void start_work(void) {
\tcrash_here(0);
\tputs(\"unreachable\");
}
int main(void) {
\tstart_work();
\treturn 0;
}
";

/// `crash` (static, `-g`) and `crash-stripped` (the same, `strip`ped) in `dir`.
fn build_crash_programs(dir: &Path) -> (PathBuf, PathBuf) {
    let src = dir.join("crash.c");
    std::fs::write(&src, CRASH_SOURCE).unwrap();
    let bin = dir.join("crash");
    let out = Command::new("gcc")
        .args(["-g", "-O0", "-fno-omit-frame-pointer", "-static", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("running gcc (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stripped = dir.join("crash-stripped");
    let out = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&bin)
        .output()
        .expect("running strip");
    assert!(
        out.status.success(),
        "strip: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (bin, stripped)
}

fn build_id_hex(path: &Path) -> String {
    let out = Command::new("readelf")
        .arg("-n")
        .arg(path)
        .output()
        .expect("readelf");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: ").map(str::to_string))
        .unwrap_or_else(|| panic!("no build id in {}: {text}", path.display()))
}

/// Runs `program` as the cgroup's entrypoint, expects SIGSEGV, and returns the kernel's stack.
fn crash_in_cgroup(
    recorder: &Recorder,
    tag: &str,
    program: &Path,
) -> coroner::bpf::raw::RawFatalStack {
    let cg = TestCgroup::new(tag);
    let (_, out) = cg.run(&format!("exec {}", program.display()));
    assert_eq!(out.status.signal(), Some(11), "{out:?}");
    let raw = drained(recorder, &cg);
    raw.fatal_stack
        .unwrap_or_else(|| panic!("no stack kept for the SIGSEGV of {}", program.display()))
}

#[test]
fn segfault_keeps_the_user_stack_with_build_ids_and_it_symbolizes_to_the_functions() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (bin, stripped) = build_crash_programs(dir.path());
    let id = build_id_hex(&bin);
    let recorder = load(256, 256);

    let raw = crash_in_cgroup(&recorder, "stack", &bin);
    assert_eq!(
        (raw.signal, raw.code),
        (11, 1),
        "SIGSEGV, SEGV_MAPERR: {raw:?}"
    );
    assert_eq!(raw.fault_addr, Some(0), "{raw:?}");
    assert_eq!(
        raw.fault_mapping,
        coroner::bpf::raw::RawFaultMapping::Unmapped,
        "NULL is in no mapping: {raw:?}"
    );
    assert!(
        raw.ips.len() >= 3,
        "crash_here, start_work, main at least: {raw:?}"
    );
    match &raw.frames[0] {
        coroner::bpf::raw::RawFrame::BuildId { build_id, .. } => {
            assert_eq!(decode::hex_bytes(build_id), id)
        }
        other => panic!("the first frame has no build id: {other:?}"),
    }

    let wall = |_| chrono::DateTime::from_timestamp(0, 0).unwrap();
    let mut stack = decode::crash_stack(&raw, &wall);
    let layers = coroner::stacks::Layers::open(&[PathBuf::from("/")]);
    let program = bin.display().to_string();
    coroner::stacks::symbolize(&mut stack, std::slice::from_ref(&program), &layers);
    let names: Vec<Option<&str>> = stack.frames.iter().map(|f| f.function.as_deref()).collect();
    assert_eq!(
        &names[..3],
        &[Some("crash_here"), Some("start_work"), Some("main")],
        "{stack:#?}"
    );
    assert_eq!(
        stack.frames[0].source_file.as_deref(),
        Some("crash.c"),
        "{stack:#?}"
    );
    assert_eq!(stack.frames[0].line, Some(3), "{stack:#?}");
    assert_eq!(
        stack.frames[1].line,
        Some(6),
        "the call in start_work: {stack:#?}"
    );
    assert_eq!(stack.frames[0].object.as_deref(), Some(program.as_str()));
    assert_eq!(
        stack.crash_site().as_deref(),
        Some("`crash_here()` at crash.c:3, called from `start_work()`")
    );

    // Stripped: the same build id (strip keeps the note), no names, and a reason.
    let raw = crash_in_cgroup(&recorder, "stripped", &stripped);
    let mut stack = decode::crash_stack(&raw, &wall);
    let program = stripped.display().to_string();
    coroner::stacks::symbolize(&mut stack, std::slice::from_ref(&program), &layers);
    assert!(stack.frames.len() >= 3, "{stack:#?}");
    assert_eq!(stack.frames[0].build_id.as_deref(), Some(id.as_str()));
    assert!(stack.frames[0].file_offset.is_some());
    assert_eq!(stack.frames[0].object.as_deref(), Some(program.as_str()));
    assert!(
        stack.frames.iter().take(3).all(|f| f.function.is_none()),
        "{stack:#?}"
    );
    assert!(
        stack
            .symbolization_errors
            .iter()
            .any(|e| e.contains(&program) && e.contains("symbols")),
        "{:?}",
        stack.symbolization_errors
    );
}

#[test]
fn abort_keeps_the_stack_of_the_thread_that_raised_sigabrt() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("abort.c");
    std::fs::write(
        &src,
        "#include <stdlib.h>\n__attribute__((noinline)) void give_up(void) { abort(); }\nint main(void) { give_up(); return 0; }\n",
    )
    .unwrap();
    let bin = dir.path().join("abort");
    let out = Command::new("gcc")
        .args(["-g", "-O0", "-fno-omit-frame-pointer", "-static", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("running gcc");
    assert!(
        out.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recorder = load(256, 256);
    let cg = TestCgroup::new("abort");
    let (_, out) = cg.run(&format!("exec {}", bin.display()));
    assert_eq!(out.status.signal(), Some(6), "{out:?}");
    let raw = drained(&recorder, &cg)
        .fatal_stack
        .expect("a stack for SIGABRT");
    assert_eq!(
        (raw.signal, raw.code),
        (6, -6),
        "SIGABRT by tgkill (SI_TKILL): {raw:?}"
    );
    assert_eq!(raw.fault_addr, None, "abort has no fault address");
    assert!(!raw.ips.is_empty(), "{raw:?}");

    let mut stack = decode::crash_stack(&raw, &|_| chrono::DateTime::from_timestamp(0, 0).unwrap());
    let program = bin.display().to_string();
    coroner::stacks::symbolize(
        &mut stack,
        std::slice::from_ref(&program),
        &coroner::stacks::Layers::open(&[PathBuf::from("/")]),
    );
    assert_eq!(stack.code, "SI_TKILL");
    assert_eq!(
        stack.frames[0].build_id.as_deref(),
        Some(build_id_hex(&bin).as_str())
    );
    // The thread was in libc's tgkill wrapper: a function of the (static) binary, named.
    assert!(stack.frames[0].function.is_some(), "{stack:#?}");
}

#[test]
fn a_signal_from_another_process_leaves_no_stack() {
    let _serial = serial();
    let recorder = load(256, 256);
    let cg = TestCgroup::new("killed");
    let mut child = cg.spawn("sleep 30");
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-SEGV", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(11), "{status:?}");
    let raw = drained(&recorder, &cg);
    assert_eq!(raw.fatal_stack, None, "a SIGSEGV sent by kill is no crash");
}
