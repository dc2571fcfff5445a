//! What one run of the syscall program costs, by the kernel's own accounting (`bpf_stats`):
//! loads coroner's recorder (as the agent does, with the syscall data-spec table and an event
//! reader) or the minimal per-CPU counter, runs a command in a cgroup2 directory of its own (a
//! recorded "container"), and prints the program's run count and mean run time over the
//! command. Steadier than the CPU figures of `benches/recorder_overhead.rs` on a shared machine,
//! and it attributes the cost to the program; the bench gives what the workload pays in all.
//!
//! `cargo run --release --example recorder_cost -- coroner|minimal COMMAND [ARG...]` (root).
//! The mean covers every syscall exit on the host meanwhile (others' work included), so use a
//! syscall-dense command (`dd if=/dev/zero of=/dev/null bs=1 count=1000000`).

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use coroner::bpf::decode;
use coroner::bpf::loader::{MinimalCounter, Recorder, RecorderConfig};
use coroner::bpf::raw::Arch;
use libbpf_rs::query::ProgInfoIter;

/// The ids of the loaded programs named `name`. The kernel keeps the first 15 bytes of a
/// program's name (`BPF_OBJ_NAME_LEN`).
fn prog_ids(name: &str) -> Vec<u32> {
    let name = OsStr::new(&name[..name.len().min(15)]);
    ProgInfoIter::default()
        .filter(|p| p.name.as_os_str() == name)
        .map(|p| p.id)
        .collect()
}

/// (run count, run time in ns) of the programs `ids`, summed.
fn prog_stats(ids: &[u32]) -> (u64, u64) {
    ProgInfoIter::default()
        .filter(|p| ids.contains(&p.id))
        .fold((0, 0), |(c, t), p| (c + p.run_cnt, t + p.run_time_ns))
}

/// The cgroup2 mount point (`/sys/fs/cgroup/unified` on a hybrid host).
fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("reading /proc/self/mounts");
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map(|f| PathBuf::from(f[1]))
        .expect("no cgroup2 mount")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, cmd) = args
        .split_first()
        .filter(|(_, c)| !c.is_empty())
        .expect("usage: recorder_cost coroner|minimal COMMAND [ARG...]");
    // SAFETY: bpf_enable_stats takes a plain enum value; the fd it returns keeps the kernel's
    // run-time accounting on while it is open, for this process's lifetime.
    let stats_fd = unsafe {
        libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME)
    };
    assert!(stats_fd >= 0, "bpf_enable_stats failed: {stats_fd}");

    let arch = Arch::host().expect("x86_64 or aarch64");
    // Another process's recorder or counter (a test's agent) may be loaded meanwhile: count ours.
    let prog_name = if mode == "minimal" {
        "minimal_sys_exit"
    } else {
        "coroner_sys_exit"
    };
    let foreign = prog_ids(prog_name);
    let (prog, _held): (&str, Box<dyn std::any::Any>) = match mode.as_str() {
        "coroner" => {
            let recorder = Recorder::load(&RecorderConfig {
                specs: decode::spec_table(arch),
                ..Default::default()
            })
            .expect("loading coroner's recorder");
            let reader = recorder
                .spawn_event_reader(|_| {})
                .expect("starting the event reader");
            ("coroner_sys_exit", Box::new((reader, recorder)))
        }
        "minimal" => (
            "minimal_sys_exit",
            Box::new(MinimalCounter::attach().expect("loading the minimal counter")),
        ),
        other => panic!("{other:?}: coroner or minimal"),
    };

    let cg = cgroup2_root().join(format!("coroner-cost-{}", std::process::id()));
    std::fs::create_dir(&cg).expect("creating the cgroup");
    let procs = std::ffi::CString::new(
        cg.join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .expect("a path without NUL");
    let ours: Vec<u32> = prog_ids(prog)
        .into_iter()
        .filter(|id| !foreign.contains(id))
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "{prog}: expected one program of ours, found {ours:?}"
    );
    let (c0, t0) = prog_stats(&ours);
    let start = Instant::now();
    let mut child = Command::new(&cmd[0]);
    child.args(&cmd[1..]);
    // SAFETY: between fork and exec only open(2), write(2) and close(2), no allocation (the
    // parent has other threads).
    unsafe {
        child.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        });
    }
    let status = child.status().expect("running the command");
    let wall = start.elapsed();
    let (c1, t1) = prog_stats(&ours);
    let _ = std::fs::remove_dir(&cg);
    let runs = c1 - c0;
    println!(
        "{prog}: {runs} runs, {:.1} ns/run mean, over {:.3} s ({status}); load {}",
        (t1 - t0) as f64 / runs.max(1) as f64,
        wall.as_secs_f64(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
