//! cgroup v1: one directory per controller hierarchy. Which file holds which figure, and the
//! v1-specific units (nanoseconds for CPU time).
//!
//! The memory controller's directory is the anchor: it is the first to disappear after an exit,
//! so its absence is [`Error::Gone`]; a missing directory in another controller only leaves that
//! controller's figures empty. Memory files are read first for the same reason.

use crate::model::{CgroupLimits, CgroupUsage, UsageSample};

use super::parse::{self, Keyed};
use super::read::{Dir, Reader};
use super::{CgroupFs, Error};

pub(super) fn limits(fs: &CgroupFs, path: &str, r: &mut Reader) -> Result<CgroupLimits, Error> {
    let memory = fs.v1_anchor(path)?;
    let memory = Some(&memory);
    let cpu = fs.v1_dir("cpu", path, r);
    let cpuset = fs.v1_dir("cpuset", path, r);
    let pids = fs.v1_dir("pids", path, r);

    let memory_limit = r.file(memory, "memory.limit_in_bytes", parse::v1_memory_limit);
    let memsw_limit = r.file(
        memory,
        "memory.memsw.limit_in_bytes",
        parse::v1_memory_limit,
    );
    let quota = r.file(cpu.as_ref(), "cpu.cfs_quota_us", parse::v1_cfs_quota);
    let period = r.file(cpu.as_ref(), "cpu.cfs_period_us", parse::u64_value);
    let shares = r.file(cpu.as_ref(), "cpu.shares", parse::u64_value);
    let cpus = r.file(cpuset.as_ref(), "cpuset.cpus", |t| {
        Ok(parse::cpuset_list(t).to_string())
    });
    let mems = r.file(cpuset.as_ref(), "cpuset.mems", |t| {
        Ok(parse::cpuset_list(t).to_string())
    });
    let pids_max = r.file(pids.as_ref(), "pids.max", parse::max_or_u64);

    Ok(CgroupLimits {
        memory_limit_bytes: memory_limit.flatten(),
        memory_swap_limit_bytes: memsw_limit.flatten(),
        cpu_quota_us: quota.flatten(),
        cpu_period_us: period,
        cpu_shares: shares,
        cpu_weight: None,
        cpuset_cpus: cpus,
        cpuset_mems: mems,
        pids_max: pids_max.flatten(),
    })
}

pub(super) fn usage(fs: &CgroupFs, path: &str, r: &mut Reader) -> Result<CgroupUsage, Error> {
    let memory = fs.v1_anchor(path)?;
    let memory = Some(&memory);
    let current = r.file(memory, "memory.usage_in_bytes", parse::u64_value);
    let peak = r.file(memory, "memory.max_usage_in_bytes", parse::u64_value);
    // On kernel 6.18 this stays 0 through an OOM kill when memory.memsw.limit_in_bytes equals the
    // memory limit (as runc sets it for Kubernetes): `oom_kill` is the figure to trust.
    let failcnt = r.file(memory, "memory.failcnt", parse::u64_value);
    let oom_kill = r.file(memory, "memory.oom_control", |t| Keyed(t).get("oom_kill"));

    let pids = fs.v1_dir("pids", path, r);
    let pids_current = r.file(pids.as_ref(), "pids.current", parse::u64_value);
    // v1 has pids.peak too on recent kernels (seen on 6.18).
    let pids_peak = r.file(pids.as_ref(), "pids.peak", parse::u64_value);
    let pids_max_events = r.file(pids.as_ref(), "pids.events", |t| Keyed(t).get("max"));

    let cpu = fs.v1_dir("cpu", path, r);
    let throttling = r.file(cpu.as_ref(), "cpu.stat", |t| {
        let k = Keyed(t);
        Ok((
            k.get("nr_periods")?,
            k.get("nr_throttled")?,
            k.get("throttled_time")?,
        ))
    });
    // cpu and cpuacct are often co-mounted (`cpu,cpuacct`): one directory, opened once.
    let cpuacct_own: Option<Dir>;
    let cpuacct = if fs.v1_same_mount("cpu", "cpuacct") {
        cpu.as_ref()
    } else {
        cpuacct_own = fs.v1_dir("cpuacct", path, r);
        cpuacct_own.as_ref()
    };
    let cpu_usage_ns = r.file(cpuacct, "cpuacct.usage", parse::u64_value);

    let (nr_periods, nr_throttled, throttled_ns) = throttling.unwrap_or_default();
    Ok(CgroupUsage {
        memory_current_bytes: current,
        memory_peak_bytes: peak,
        memory_failcnt: failcnt,
        oom_kill_count: oom_kill.flatten(),
        oom_count: None,
        pids_current,
        pids_peak,
        pids_max_events: pids_max_events.flatten(),
        cpu_usage_usec: cpu_usage_ns.map(parse::ns_to_us),
        cpu_nr_periods: nr_periods,
        cpu_nr_throttled: nr_throttled,
        cpu_throttled_usec: throttled_ns.map(parse::ns_to_us),
    })
}

pub(super) fn sample(fs: &CgroupFs, path: &str, r: &mut Reader) -> Result<UsageSample, Error> {
    let memory = fs.v1_anchor(path)?;
    let memory_bytes = r.file(Some(&memory), "memory.usage_in_bytes", parse::u64_value);
    let cpuacct = fs.v1_dir("cpuacct", path, r);
    let cpu_ns = r.file(cpuacct.as_ref(), "cpuacct.usage", parse::u64_value);
    let pids = fs.v1_dir("pids", path, r);
    let pids = r.file(pids.as_ref(), "pids.current", parse::u64_value);
    Ok(UsageSample {
        t_ms: 0,
        memory_bytes,
        cpu_usec: cpu_ns.map(parse::ns_to_us),
        pids,
    })
}
