//! cgroup v2: one directory holds every controller's files. Which file holds which figure.
//!
//! The directory missing is [`Error::Gone`]. Files of a controller the parent does not enable
//! (e.g. no `memory.max` without `+memory` in the parent's `cgroup.subtree_control`), or that the
//! kernel is too old for (`memory.peak` needs 5.19), are simply absent figures.

use crate::model::{CgroupLimits, CgroupUsage, UsageSample};

use super::parse::{self, Keyed};
use super::read::Reader;
use super::{CgroupFs, Error};

pub(super) fn limits(fs: &CgroupFs, path: &str, r: &mut Reader) -> Result<CgroupLimits, Error> {
    let dir = fs.v2_anchor(path)?;
    let dir = Some(&dir);
    let memory_max = r.file(dir, "memory.max", parse::max_or_u64);
    let swap_max = r.file(dir, "memory.swap.max", parse::max_or_u64);
    let cpu_max = r.file(dir, "cpu.max", parse::cpu_max);
    let weight = r.file(dir, "cpu.weight", parse::u64_value);
    // The configured sets, not `cpuset.*.effective`: empty means "whatever the parent has", and
    // the report says so rather than guessing what the parent had at the time.
    let cpus = r.file(
        dir,
        "cpuset.cpus",
        |t| Ok(parse::cpuset_list(t).to_string()),
    );
    let mems = r.file(
        dir,
        "cpuset.mems",
        |t| Ok(parse::cpuset_list(t).to_string()),
    );
    let pids_max = r.file(dir, "pids.max", parse::max_or_u64);

    let memory_limit = memory_max.flatten();
    // v2 limits swap on its own; the report's figure is memory plus swap, as v1's memsw is.
    // Unknown (no swap accounting) or unlimited swap gives no combined limit.
    let memory_swap_limit = match (memory_limit, swap_max.flatten()) {
        (Some(memory), Some(swap)) => Some(memory.saturating_add(swap)),
        _ => None,
    };
    let (quota, period) = cpu_max.unwrap_or_default();
    Ok(CgroupLimits {
        memory_limit_bytes: memory_limit,
        memory_swap_limit_bytes: memory_swap_limit,
        cpu_quota_us: quota,
        cpu_period_us: period,
        cpu_shares: None,
        cpu_weight: weight,
        cpuset_cpus: cpus,
        cpuset_mems: mems,
        pids_max: pids_max.flatten(),
    })
}

pub(super) fn usage(fs: &CgroupFs, path: &str, r: &mut Reader) -> Result<CgroupUsage, Error> {
    let dir = fs.v2_anchor(path)?;
    let dir = Some(&dir);
    let current = r.file(dir, "memory.current", parse::u64_value);
    let peak = r.file(dir, "memory.peak", parse::u64_value);
    // `max`: times usage hit memory.max (v1's failcnt); `oom`: OOM killer invocations;
    // `oom_kill`: processes killed, several per invocation with memory.oom.group=1.
    let events = r.file(dir, "memory.events", |t| {
        let k = Keyed(t);
        Ok((k.get("max")?, k.get("oom")?, k.get("oom_kill")?))
    });
    let pids_current = r.file(dir, "pids.current", parse::u64_value);
    let pids_peak = r.file(dir, "pids.peak", parse::u64_value);
    let pids_max_events = r.file(dir, "pids.events", |t| Keyed(t).get("max"));
    let cpu = r.file(dir, "cpu.stat", |t| {
        let k = Keyed(t);
        Ok((
            k.get("usage_usec")?,
            k.get("nr_periods")?,
            k.get("nr_throttled")?,
            k.get("throttled_usec")?,
        ))
    });

    let (failcnt, oom, oom_kill) = events.unwrap_or_default();
    let (usage_usec, nr_periods, nr_throttled, throttled_usec) = cpu.unwrap_or_default();
    Ok(CgroupUsage {
        memory_current_bytes: current,
        memory_peak_bytes: peak,
        memory_failcnt: failcnt,
        oom_kill_count: oom_kill,
        oom_count: oom,
        pids_current,
        pids_peak,
        pids_max_events: pids_max_events.flatten(),
        cpu_usage_usec: usage_usec,
        cpu_nr_periods: nr_periods,
        cpu_nr_throttled: nr_throttled,
        cpu_throttled_usec: throttled_usec,
    })
}

pub(super) fn sample(fs: &CgroupFs, path: &str, r: &mut Reader) -> Result<UsageSample, Error> {
    let dir = fs.v2_anchor(path)?;
    let dir = Some(&dir);
    let memory_bytes = r.file(dir, "memory.current", parse::u64_value);
    let cpu_usec = r
        .file(dir, "cpu.stat", |t| Keyed(t).get("usage_usec"))
        .flatten();
    let pids = r.file(dir, "pids.current", parse::u64_value);
    Ok(UsageSample {
        t_ms: 0,
        memory_bytes,
        cpu_usec,
        pids,
    })
}
