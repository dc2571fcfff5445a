//! The agent's side of the eBPF flight recorder: loads it at start-up (or says why it could not),
//! keeps the process events the kernel streams per cgroup, and turns what was recorded for one
//! container into the report's `recorder` section.
//!
//! The kernel records every non-host cgroup from its first syscall, before the agent knows which
//! container it belongs to; this file joins the two by the container's cgroup2 inode. It owns no
//! decoding (`bpf::decode`, `bpf::timeline`) and no libbpf (`bpf::loader`).
//!
//! With a pin directory the recording outlives this process: the next one adopts it. Whether a
//! container's recording is complete is decided here ([`gap_for`]): a container that started
//! before the recording did is `partial`, and so is one whose process events the kernel dropped
//! while no agent read them (docs/recorder-continuity.md).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

use crate::bpf::loader::{EventReader, Provenance, Recorder, RecorderConfig, RecorderError};
use crate::bpf::raw::{Arch, RawContainer, RawEvent, RawExitUsage};
use crate::bpf::{decode, timeline};
use crate::metrics::RecorderTotals;
use crate::model::{
    CgroupUsage, ExitStatus, GapCause, GapScope, RecorderReport, RecorderState, RecordingGap,
};

/// Process events kept per cgroup; beyond it new events are dropped (and counted).
const EVENTS_PER_CGROUP: usize = 4096;
/// Cgroups whose events are kept at once; the least recently active is forgotten first.
const EVENT_CGROUPS: usize = 4096;

#[derive(Default)]
struct EventStore {
    by_cgroup: HashMap<u64, (u64, VecDeque<RawEvent>)>,
    seq: u64,
    dropped: u64,
}

impl EventStore {
    fn push(&mut self, cgroup_id: u64, event: RawEvent) {
        self.seq += 1;
        let seq = self.seq;
        if !self.by_cgroup.contains_key(&cgroup_id) && self.by_cgroup.len() >= EVENT_CGROUPS {
            if let Some(oldest) = self
                .by_cgroup
                .iter()
                .min_by_key(|(_, (s, _))| *s)
                .map(|(k, _)| *k)
            {
                self.by_cgroup.remove(&oldest);
            }
        }
        let (last, events) = self.by_cgroup.entry(cgroup_id).or_default();
        *last = seq;
        if events.len() < EVENTS_PER_CGROUP {
            events.push_back(event);
        } else {
            self.dropped += 1;
        }
    }

    /// The cgroup whose recorded exits include process `pid`'s, the latest if pids were reused:
    /// a container's cgroup when its directory was gone before the agent could stat it.
    fn cgroup_of_exit(&self, pid: u32) -> Option<u64> {
        self.by_cgroup
            .iter()
            .filter(|(_, (_, events))| {
                events
                    .iter()
                    .any(|e| matches!(e, RawEvent::Exit { pid: p, .. } if *p == pid))
            })
            .max_by_key(|(_, (seq, _))| *seq)
            .map(|(cg, _)| *cg)
    }

    fn take(&mut self, cgroup_id: u64) -> Vec<RawEvent> {
        self.by_cgroup
            .remove(&cgroup_id)
            .map(|(_, e)| e.into())
            .unwrap_or_default()
    }
}

/// Since when this agent's recording runs, and what it missed before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuity {
    /// When the maps and programs in use were loaded (by this process or an earlier one).
    pub since: DateTime<Utc>,
    /// Why a container that started before `since` misses its start.
    pub late_cause: GapCause,
    /// Adopted after process events were lost while no agent read them: from the previous
    /// process's last sign of life (if known) to the adoption.
    pub events_lost_away: Option<(Option<DateTime<Utc>>, DateTime<Utc>)>,
}

/// The gap in a container's recording, if any: pure, from the container's start (its creation,
/// else its start; `None` when neither is known, then only the kernel's data can tell and the
/// recording counts as complete).
pub fn gap_for(start: Option<DateTime<Utc>>, c: &Continuity) -> Option<RecordingGap> {
    let start = start?;
    if start < c.since {
        return Some(RecordingGap {
            missing: GapScope::Everything,
            cause: c.late_cause,
            from: Some(start),
            until: c.since,
        });
    }
    match c.events_lost_away {
        Some((from, until)) if start < until => Some(RecordingGap {
            missing: GapScope::ProcessEvents,
            cause: GapCause::EventsLostWhileAway,
            from,
            until,
        }),
        _ => None,
    }
}

fn gap_reason(g: &RecordingGap) -> String {
    let when =
        |t: Option<DateTime<Utc>>| t.map_or("an unknown time".to_string(), |t| t.to_rfc3339());
    match (g.missing, g.cause) {
        (GapScope::Everything, GapCause::LayoutReplaced) => format!(
            "recorded only from {}: the pinned recorder of another layout was replaced then, and what it held is gone; the container started at {}",
            g.until.to_rfc3339(),
            when(g.from)
        ),
        (GapScope::Everything, _) => format!(
            "recorded only from {}, when the recorder was loaded; the container started at {}, so its first syscalls and its entrypoint's exec are missing",
            g.until.to_rfc3339(),
            when(g.from)
        ),
        (GapScope::ProcessEvents, _) => format!(
            "syscalls complete; process events between {} and {} may be missing: the kernel's event buffer overflowed while no agent process read it",
            when(g.from),
            g.until.to_rfc3339()
        ),
    }
}

/// What a drain returns besides the report section.
#[derive(Debug, Clone, Default)]
pub struct Drained {
    /// Init's wait status, when the kernel saw it exit.
    pub init_wait_status: Option<i32>,
    /// The cgroup's figures the kernel kept at the container's last process exit.
    pub exit_usage: Option<CgroupUsage>,
}

/// The kernel's exit figures as the report's usage: memory, CPU time and the pids peak (current
/// tasks, throttling and pids events are not kept there).
pub fn kernel_usage(u: &RawExitUsage) -> CgroupUsage {
    CgroupUsage {
        memory_current_bytes: u.current_bytes,
        memory_peak_bytes: u.peak_bytes,
        memory_failcnt: u.failcnt,
        oom_kill_count: u.oom_kill,
        oom_count: u.oom,
        cpu_usage_usec: u.cpu_ns.map(|ns| ns / 1000),
        pids_peak: u.pids_peak,
        ..Default::default()
    }
}

struct Active {
    recorder: Recorder,
    continuity: Continuity,
    /// Fixed at load; read once from the maps' fdinfo.
    kernel_memory_bytes: u64,
    events: Arc<Mutex<EventStore>>,
    reader: EventReader,
    arch: Arch,
}

/// The recorder as the agent sees it: running, or off with a reason.
pub struct FlightRecorder {
    active: Option<Active>,
    state: RecorderState,
    reason: Option<String>,
}

impl FlightRecorder {
    pub fn disabled() -> FlightRecorder {
        FlightRecorder {
            active: None,
            state: RecorderState::Disabled,
            reason: Some("the flight recorder is disabled (--no-recorder)".into()),
        }
    }

    /// Loads and attaches the BPF programs, pinned under `pin_dir` when given (adopting what an
    /// earlier agent process pinned there). Failure is not fatal: the agent reports exits without
    /// syscall data and says why in every report, in `/readyz` and in `coroner_recorder_loaded`.
    /// A pin directory that cannot be used (not bpffs, held by another agent) leaves the recorder
    /// loaded unpinned, with a warning.
    pub fn start(max_containers: u32, ring_entries: u32, pin_dir: Option<&Path>) -> FlightRecorder {
        let Some(arch) = Arch::host() else {
            return FlightRecorder::unavailable(format!(
                "no syscall table for {}",
                std::env::consts::ARCH
            ));
        };
        let cfg = RecorderConfig {
            max_containers,
            ring_entries,
            specs: decode::spec_table(arch),
        };
        let loaded = match pin_dir {
            Some(dir) => Recorder::load_pinned(&cfg, dir).or_else(|e| {
                if matches!(e, RecorderError::Pin(_) | RecorderError::Pinning { .. }) {
                    warn!(dir = %dir.display(), error = %e, "recorder not pinned: it will not outlive this process");
                    Recorder::load(&cfg).map(|r| (r, Provenance::Unpinned))
                } else {
                    Err(e)
                }
            }),
            None => Recorder::load(&cfg).map(|r| (r, Provenance::Unpinned)),
        };
        let (recorder, provenance) = match loaded {
            Ok(r) => r,
            Err(e) => return FlightRecorder::unavailable(e.to_string()),
        };
        let wall = boot_to_wall();
        let state = match recorder.agent_state() {
            Ok(s) => s,
            Err(e) => return FlightRecorder::unavailable(e.to_string()),
        };
        let continuity = continuity(&provenance, &state, &wall, Utc::now());
        match &provenance {
            Provenance::Unpinned => info!(
                "flight recorder not pinned: it stops with this process, and containers running across a restart get partial recordings"
            ),
            Provenance::Pinned { dir, replaced } => {
                info!(dir = %dir.display(), "flight recorder pinned: it outlives this process");
                if let Some(what) = replaced {
                    warn!(dir = %dir.display(), replaced = %what, since = %continuity.since, "pinned flight recorder replaced: containers started before now get partial recordings");
                }
            }
            Provenance::Adopted { dir, previous, .. } => info!(
                dir = %dir.display(),
                recording_since = %continuity.since,
                previous_agent_seen = %wall(previous.heartbeat_boot_ns),
                events_lost_while_away = continuity.events_lost_away.is_some(),
                "pinned flight recorder adopted: recording went on while no agent ran"
            ),
        }
        let mut store = EventStore::default();
        if matches!(provenance, Provenance::Adopted { .. }) {
            match recorder.saved_events() {
                Ok(saved) => {
                    info!(
                        events = saved.len(),
                        "process events saved by the previous agent process restored"
                    );
                    for e in saved {
                        store.push(e.cgroup_id(), e);
                    }
                }
                Err(e) => warn!(error = %e, "reading the saved process events"),
            }
        }
        let events = Arc::new(Mutex::new(store));
        let sink = events.clone();
        let reader = match recorder.spawn_event_reader(move |e| {
            let cg = e.cgroup_id();
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(cg, e);
        }) {
            Ok(r) => r,
            Err(e) => return FlightRecorder::unavailable(e.to_string()),
        };
        let kernel_memory_bytes = recorder.map_memory_bytes();
        info!(
            max_containers,
            ring_entries, kernel_memory_bytes, "flight recorder attached"
        );
        FlightRecorder {
            active: Some(Active {
                recorder,
                continuity,
                kernel_memory_bytes,
                events,
                reader,
                arch,
            }),
            state: RecorderState::Recorded,
            reason: None,
        }
    }

    fn unavailable(reason: String) -> FlightRecorder {
        warn!(%reason, "flight recorder unavailable: reports will have no syscall data");
        FlightRecorder {
            active: None,
            state: RecorderState::Unavailable,
            reason: Some(reason),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.active.is_some()
    }

    /// `recorded` when loaded; otherwise why not.
    pub fn status(&self) -> (RecorderState, Option<&str>) {
        (self.state, self.reason.as_deref())
    }

    /// Stops recording a cgroup that belongs to the host, not a container.
    pub fn ignore_cgroup(&self, cgroup_id: u64) {
        if let Some(a) = &self.active {
            if let Err(e) = a.recorder.ignore_cgroup(cgroup_id) {
                warn!(cgroup_id, error = %e, "could not mark a host cgroup");
            }
            a.events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(cgroup_id);
        }
    }

    /// The recorder's own totals since load; `None` when it is not loaded.
    pub fn totals(&self) -> Option<Result<RecorderTotals, RecorderError>> {
        let a = self.active.as_ref()?;
        Some(a.recorder.kernel_stats().map(|k| RecorderTotals {
            events_lost: k.events_lost,
            slot_evictions: k.slot_evictions,
            alloc_failures: k.alloc_failures,
            events_skipped: a.reader.skipped(),
        }))
    }

    /// Kernel memory the recorder's maps take (0 when not loaded).
    pub fn kernel_memory_bytes(&self) -> u64 {
        self.active.as_ref().map_or(0, |a| a.kernel_memory_bytes)
    }

    pub fn recorded_cgroups(&self) -> Vec<u64> {
        self.active
            .as_ref()
            .map(|a| a.recorder.recorded_cgroups())
            .unwrap_or_default()
    }

    /// Frees what was recorded for a cgroup whose exit needs no report (a pod sandbox).
    pub fn discard(&self, cgroup_id: u64) {
        if let Some(a) = &self.active {
            let _ = a.recorder.drain(cgroup_id);
            a.events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(cgroup_id);
        }
    }

    /// Since when the recording runs and what it missed; `None` when not loaded.
    pub fn continuity(&self) -> Option<&Continuity> {
        self.active.as_ref().map(|a| &a.continuity)
    }

    /// Drains what the kernel holds for a container that exited and assembles the report section,
    /// plus the init process's wait status and the memory figures the kernel kept at its last
    /// process exit. `start` is when the container was created (else started), to tell a complete
    /// recording from a partial one. Blocking (BPF syscalls).
    pub fn drain(
        &self,
        cgroup_id: Option<u64>,
        init_pid: u32,
        exit: &ExitStatus,
        start: Option<DateTime<Utc>>,
    ) -> (RecorderReport, Drained) {
        let Some(a) = &self.active else {
            return (self.off_report(), Drained::default());
        };
        // Events the kernel produced before this exit reached us must be read first.
        a.reader.catch_up();
        // The cgroup directory gone before the agent saw it (a container shorter than the
        // agent's reaction, e.g. under systemd, which removes an empty scope at once): the
        // kernel's exit event of the init process names its cgroup.
        let cgroup_id = cgroup_id.or_else(|| {
            let found = a
                .events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cgroup_of_exit(init_pid);
            if let Some(cg) = found {
                debug!(
                    init_pid,
                    cgroup_id = cg,
                    "cgroup found by the init's exit event"
                );
            }
            found
        });
        let Some(cgroup_id) = cgroup_id else {
            return (no_data("the container's cgroup2 directory was not found, so its recording cannot be identified"), Drained::default());
        };
        let raw = match a.recorder.drain(cgroup_id) {
            Ok(raw) => raw,
            Err(e) => {
                warn!(cgroup_id, error = %e, "draining the flight recorder failed");
                None
            }
        };
        let events = a
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(cgroup_id);
        let wall = boot_to_wall();
        let (mut report, init_wait_status) = assemble(
            a.arch,
            raw.as_ref(),
            &events,
            init_pid,
            cgroup_id,
            exit,
            &wall,
        );
        if report.state.has_data() {
            if let Some(gap) = gap_for(start, &a.continuity) {
                report.state = RecorderState::Partial;
                report.reason = Some(gap_reason(&gap));
                report.gap = Some(gap);
            }
        }
        let exit_usage = raw
            .as_ref()
            .and_then(|r| r.exit_usage.as_ref())
            .map(kernel_usage);
        (
            report,
            Drained {
                init_wait_status,
                exit_usage,
            },
        )
    }

    fn off_report(&self) -> RecorderReport {
        RecorderReport {
            reason: self.reason.clone(),
            ..empty(self.state)
        }
    }
}

fn empty(state: RecorderState) -> RecorderReport {
    RecorderReport {
        state,
        reason: None,
        gap: None,
        summary: Vec::new(),
        setup_syscalls: 0,
        flight_recorder: Vec::new(),
        flight_recorder_overwritten: 0,
        first_failures: Vec::new(),
        telling_failures: Vec::new(),
        processes: Vec::new(),
        fatal_signal: None,
        oom_victim: None,
        output: None,
        crash_stack: None,
    }
}

/// A report section for a drain that could not run at all.
pub fn failed_report(reason: &str) -> RecorderReport {
    no_data(reason)
}

fn no_data(reason: &str) -> RecorderReport {
    RecorderReport {
        reason: Some(reason.to_string()),
        ..empty(RecorderState::NoData)
    }
}

/// This process's view of the recording's continuity, from how the recorder was obtained. Pure.
pub fn continuity(
    provenance: &Provenance,
    state: &crate::bpf::loader::AgentState,
    wall: &dyn Fn(u64) -> DateTime<Utc>,
    now: DateTime<Utc>,
) -> Continuity {
    let since = if state.loaded_boot_ns == 0 {
        now
    } else {
        wall(state.loaded_boot_ns)
    };
    match provenance {
        Provenance::Unpinned => Continuity {
            since,
            late_cause: GapCause::LoadedAfterStart,
            events_lost_away: None,
        },
        Provenance::Pinned { replaced, .. } => Continuity {
            since,
            late_cause: if replaced.is_some() {
                GapCause::LayoutReplaced
            } else {
                GapCause::LoadedAfterStart
            },
            events_lost_away: None,
        },
        Provenance::Adopted {
            previous,
            events_lost_now,
            ..
        } => {
            let lost = *events_lost_now > previous.events_lost_seen || previous.events_unsaved > 0;
            let from = (previous.heartbeat_boot_ns != 0).then(|| wall(previous.heartbeat_boot_ns));
            Continuity {
                since,
                late_cause: GapCause::LoadedAfterStart,
                events_lost_away: lost.then_some((from, now)),
            }
        }
    }
}

/// Converts `bpf_ktime_get_boot_ns()` values to wall-clock time, using the offset between the
/// real-time and boot-time clocks now.
pub fn boot_to_wall() -> impl Fn(u64) -> DateTime<Utc> {
    use nix::time::{clock_gettime, ClockId};
    let ns = |c| {
        clock_gettime(c)
            .map(|t| t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128)
            .unwrap_or(0)
    };
    let offset = ns(ClockId::CLOCK_REALTIME) - ns(ClockId::CLOCK_BOOTTIME);
    move |boot_ns| {
        DateTime::from_timestamp_nanos((offset + boot_ns as i128).clamp(0, i64::MAX as i128) as i64)
    }
}

/// Pure: the report section from what was drained and streamed for one container.
pub fn assemble(
    arch: Arch,
    raw: Option<&RawContainer>,
    events: &[RawEvent],
    init_pid: u32,
    cgroup_id: u64,
    exit: &ExitStatus,
    wall: &dyn Fn(u64) -> DateTime<Utc>,
) -> (RecorderReport, Option<i32>) {
    if raw.is_none() && events.is_empty() {
        return (
            no_data("nothing was recorded for this container: it started before the agent, or the recorder evicted it (see --recorder-containers)"),
            None,
        );
    }
    let mut report = empty(RecorderState::Recorded);
    if let Some(raw) = raw {
        report.summary = decode::summary(arch, raw);
        report.setup_syscalls = raw.setup_calls;
        report.flight_recorder = decode::flight_recorder(arch, raw, wall);
        report.flight_recorder_overwritten = raw.ring_total.saturating_sub(raw.ring.len() as u64);
        report.first_failures = decode::first_failures(arch, raw, wall);
        report.telling_failures = decode::telling_failures(arch, raw, wall);
        report.output = decode::captured_output(raw);
        report.crash_stack = raw
            .fatal_stack
            .as_ref()
            .map(|s| decode::crash_stack(s, wall));
    } else {
        report.reason =
            Some("no syscall data for this container (evicted from the recorder)".into());
    }
    report.processes = timeline::processes(events, wall);
    report.fatal_signal = timeline::fatal_signal(events, init_pid, cgroup_id, exit, wall);
    report.oom_victim = timeline::oom_victim(events, init_pid, wall);
    let init_wait = events.iter().rev().find_map(|e| match e {
        RawEvent::Exit {
            pid, wait_status, ..
        } if *pid == init_pid => Some(*wait_status),
        _ => None,
    });
    (report, init_wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::loader::AgentState;

    #[test]
    fn nothing_recorded_is_no_data_with_a_reason() {
        let wall = |_| DateTime::from_timestamp(0, 0).unwrap();
        let (r, wait) = assemble(
            Arch::X86_64,
            None,
            &[],
            1,
            42,
            &ExitStatus::from_containerd(1),
            &wall,
        );
        assert_eq!(r.state, RecorderState::NoData);
        assert!(r.reason.unwrap().contains("--recorder-containers"));
        assert_eq!(wait, None);
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn state(loaded: u64, heartbeat: u64, lost_seen: u64, unsaved: u64) -> AgentState {
        AgentState {
            loaded_boot_ns: loaded,
            heartbeat_boot_ns: heartbeat,
            events_lost_seen: lost_seen,
            events_unsaved: unsaved,
        }
    }

    /// Boot time t seconds = wall time 1000 + t.
    fn wall(ns: u64) -> DateTime<Utc> {
        at(1000 + (ns / 1_000_000_000) as i64)
    }

    #[test]
    fn container_started_before_the_load_is_partial_from_its_start_to_the_load() {
        let c = continuity(
            &Provenance::Unpinned,
            &state(50_000_000_000, 0, 0, 0),
            &wall,
            at(2000),
        );
        assert_eq!(c.since, at(1050));
        let gap = gap_for(Some(at(1040)), &c).expect("started before the load");
        assert_eq!(gap.missing, GapScope::Everything);
        assert_eq!(gap.cause, GapCause::LoadedAfterStart);
        assert_eq!((gap.from, gap.until), (Some(at(1040)), at(1050)));
        assert!(gap_reason(&gap).contains("recorded only from"));
        assert_eq!(gap_for(Some(at(1051)), &c), None, "started after: complete");
        assert_eq!(
            gap_for(None, &c),
            None,
            "start unknown: the kernel's data stands"
        );
    }

    #[test]
    fn replaced_layout_names_the_replacement_as_the_cause() {
        let c = continuity(
            &Provenance::Pinned {
                dir: "/sys/fs/bpf/coroner/layout-x".into(),
                replaced: Some("layout y".into()),
            },
            &state(50_000_000_000, 0, 0, 0),
            &wall,
            at(2000),
        );
        let gap = gap_for(Some(at(1000)), &c).unwrap();
        assert_eq!(gap.cause, GapCause::LayoutReplaced);
        assert!(gap_reason(&gap).contains("replaced"));
    }

    #[test]
    fn adoption_is_complete_unless_events_were_lost_while_no_agent_read() {
        let adopted = |lost_now, unsaved| {
            continuity(
                &Provenance::Adopted {
                    dir: "/sys/fs/bpf/coroner/layout-x".into(),
                    previous: state(10_000_000_000, 60_000_000_000, 5, unsaved),
                    events_lost_now: lost_now,
                },
                &state(10_000_000_000, 60_000_000_000, 5, unsaved),
                &wall,
                at(1070),
            )
        };
        let clean = adopted(5, 0);
        assert_eq!(clean.since, at(1010), "recording since the first load");
        assert_eq!(gap_for(Some(at(1020)), &clean), None);

        let lost = adopted(9, 0);
        let gap = gap_for(Some(at(1020)), &lost).expect("events lost while away");
        assert_eq!(gap.missing, GapScope::ProcessEvents);
        assert_eq!(gap.cause, GapCause::EventsLostWhileAway);
        assert_eq!((gap.from, gap.until), (Some(at(1060)), at(1070)));
        assert_eq!(
            gap_for(Some(at(1071)), &lost),
            None,
            "started after adoption"
        );
        assert!(
            gap_for(Some(at(1020)), &adopted(5, 3)).is_some(),
            "unsaved events count too"
        );
    }

    #[test]
    fn kernel_usage_fills_memory_cpu_and_pids_peak_only() {
        let u = kernel_usage(&RawExitUsage {
            boot_ns: 1,
            pid: 7,
            current_bytes: Some(1),
            peak_bytes: Some(20 << 20),
            failcnt: None,
            oom: Some(1),
            oom_kill: Some(1),
            cpu_ns: Some(2_345_678),
            pids_peak: Some(3),
        });
        assert_eq!(u.memory_peak_bytes, Some(20 << 20));
        assert_eq!(u.oom_kill_count, Some(1));
        assert_eq!(u.memory_failcnt, None);
        assert_eq!(u.cpu_usage_usec, Some(2_345), "ns to usec, as cpu.stat");
        assert_eq!(u.pids_peak, Some(3));
        assert_eq!(u.pids_current, None, "not kept in the kernel");
        assert_eq!(u.cpu_nr_throttled, None);
    }

    fn exit(cgroup_id: u64, pid: u32) -> RawEvent {
        RawEvent::Exit {
            boot_ns: 1,
            cgroup_id,
            pid,
            comm: String::new(),
            wait_status: 0,
        }
    }

    #[test]
    fn cgroup_of_a_vanished_container_is_found_by_its_inits_exit() {
        let mut s = EventStore::default();
        s.push(10, exit(10, 500));
        s.push(11, exit(11, 501));
        assert_eq!(s.cgroup_of_exit(501), Some(11));
        assert_eq!(s.cgroup_of_exit(777), None);
        // pid 500 reused by a later container: the latest exit wins.
        s.push(12, exit(12, 500));
        assert_eq!(s.cgroup_of_exit(500), Some(12));
        s.take(12);
        assert_eq!(s.cgroup_of_exit(500), Some(10));
    }

    #[test]
    fn event_store_is_bounded_per_cgroup() {
        let mut s = EventStore::default();
        for i in 0..(EVENTS_PER_CGROUP + 10) {
            s.push(
                1,
                RawEvent::Exit {
                    boot_ns: i as u64,
                    cgroup_id: 1,
                    pid: 1,
                    comm: String::new(),
                    wait_status: 0,
                },
            );
        }
        assert_eq!(s.take(1).len(), EVENTS_PER_CGROUP);
        assert_eq!(s.dropped, 10);
        assert!(s.take(1).is_empty());
    }
}
