//! Loads and attaches coroner's BPF programs (`coroner.bpf.c`) and reads what they recorded:
//! the per-cgroup slots and rings (drained at a container's exit) and the process-event ring
//! buffer (streamed on a thread). The only module besides [`super::wire`] that touches libbpf;
//! record layouts are converted by `wire`, decoding belongs to `decode`.
//!
//! Load happens once, at start-up: a failure (no BTF, no CAP_BPF/CAP_PERFMON, a verifier
//! rejection) is an error carrying the reason and, for the verifier, the tail of its log.
//!
//! [`Recorder::load_pinned`] pins the maps and links in bpffs ([`super::pin`]), so recording goes
//! on while no agent process runs, and the next process adopts them: same layout version
//! ([`layout_version`]), same maps, programs never detached. The process events an agent has
//! consumed from the ring buffer are kept in the kernel too (`saved_events`) until the
//! container's report is written.

use std::collections::HashMap;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, RingBufferBuilder};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};

pub use super::load_error::RecorderError;
use super::load_error::{classify_load_error, handle, map_err, with_libbpf_log, KERNEL_BTF};
pub use super::minimal::MinimalCounter;
use super::pin::{self, PinDir};
use super::raw::{DataSpec, RawContainer, RawEvent, RawSyscall};
use super::saved::SavedEvents;
use super::wire::{self, skel, types};

/// How long the event thread sleeps when nothing wakes it: the kernel wakes it for new events (at
/// once for exit events, `BPF_RB_FORCE_WAKEUP`), and `EventReader::catch_up` and the reader's
/// drop through an eventfd, so this only paces the heartbeat.
const EVENT_WAIT_MS: u16 = 250;
/// Longest `EventReader::catch_up` waits.
const CATCH_UP_MAX: Duration = Duration::from_millis(200);
/// How long a new agent process waits for the previous one to let go of the pin directory.
const PIN_LOCK_WAIT: Duration = Duration::from_secs(15);
/// How often the event reader leaves a sign of life in `agent_state` (the start of the interval
/// a successor reports as unattended).
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The maps pinned, by the names their pins have (each map's own name).
const PINNED_MAPS: &[&str] = &[
    "slots",
    "ring",
    "cg_slots",
    "host_cgroups",
    "syscall_spec",
    "cpu_cache",
    "zeroes",
    "exec_paths",
    "events",
    "agent_state",
    "saved_events",
    "fatal_stacks",
    "stack_scratch",
    "rodata",
    "bss",
];
/// The links pinned (`link-<program>`; the OOM hook's is `link-oom`, whichever program it is).
const PINNED_LINKS: &[&str] = &[
    "sys_exit",
    "fork",
    "exec",
    "exit",
    "signal",
    "signal_deliver",
    "oom",
];

/// Sizes of the kernel-side recorder, set before load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderConfig {
    /// Containers (cgroups) recorded at once; beyond it the oldest slot is reused.
    pub max_containers: u32,
    /// Flight-recorder entries per container (a power of two).
    pub ring_entries: u32,
    /// What user memory to copy per syscall number (`decode::spec_table`); others copy nothing.
    pub specs: Vec<(u32, DataSpec)>,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            max_containers: 256,
            ring_entries: 256,
            specs: Vec::new(),
        }
    }
}

/// Counters the kernel side keeps about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Process events dropped because the ring buffer was full.
    pub events_lost: u64,
    /// Live slots taken over by a new cgroup (more than `max_containers` at once).
    pub slot_evictions: u64,
    /// Syscalls not recorded because no slot could be taken (lost races).
    pub alloc_failures: u64,
}

/// What [`Recorder::load_pinned`] found in the pin directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Loaded by this process, not pinned: it ends with the process.
    Unpinned,
    /// Loaded by this process and pinned. `replaced` names what was in the pin directory before
    /// and was removed (another layout version, an incomplete pin), if anything.
    Pinned {
        dir: PathBuf,
        replaced: Option<String>,
    },
    /// Adopted from the pin directory: the kernel went on recording while no agent ran.
    Adopted {
        dir: PathBuf,
        /// What the previous agent process left in `agent_state`.
        previous: AgentState,
        /// `events_lost` at adoption: above `previous.events_lost_seen`, the ring buffer
        /// overflowed while nobody read it.
        events_lost_now: u64,
    },
}

/// The pinned `agent_state` element (`coroner.h`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentState {
    /// `CLOCK_BOOTTIME` when the maps and programs were loaded: recording since then.
    pub loaded_boot_ns: u64,
    /// The last agent process's last sign of life (0: none).
    pub heartbeat_boot_ns: u64,
    /// `events_lost` as that process last saw it.
    pub events_lost_seen: u64,
    /// Events that process consumed but could not save in the kernel.
    pub events_unsaved: u64,
}

/// The attached recorder. Dropping it detaches every program and frees the maps, unless they are
/// pinned ([`Recorder::load_pinned`]).
pub struct Recorder {
    slots: MapHandle,
    ring: MapHandle,
    cg_slots: MapHandle,
    host_cgroups: MapHandle,
    events: MapHandle,
    bss: MapHandle,
    agent_state: MapHandle,
    fatal_stacks: MapHandle,
    saved: Arc<SavedEvents>,
    /// Every map, for [`Recorder::map_memory_bytes`] and pinning.
    all_maps: Vec<(&'static str, MapHandle)>,
    ring_entries: u32,
    links: Vec<(&'static str, Link)>,
    /// Held while the recorder lives: the lock on the pin directory.
    _pin: Option<PinDir>,
}

fn validate(cfg: &RecorderConfig) -> Result<(), RecorderError> {
    let bad = |setting, reason: &str| {
        Err(RecorderError::Config {
            setting,
            reason: reason.to_string(),
        })
    };
    if cfg.max_containers == 0 || cfg.max_containers > 1 << 16 {
        return bad("max_containers", "must be between 1 and 65536");
    }
    if !cfg.ring_entries.is_power_of_two() || cfg.ring_entries > 1 << 16 {
        return bad("ring_entries", "must be a power of two between 1 and 65536");
    }
    if u64::from(cfg.max_containers) * u64::from(cfg.ring_entries) > 1 << 24 {
        return bad(
            "ring_entries",
            "max_containers x ring_entries must not exceed 16777216",
        );
    }
    if let Some((nr, _)) = cfg
        .specs
        .iter()
        .find(|(nr, _)| *nr as usize >= wire::NR_MAX)
    {
        return Err(RecorderError::Config {
            setting: "specs",
            reason: format!(
                "syscall number {nr} is beyond the recorder's table ({})",
                wire::NR_MAX
            ),
        });
    }
    Ok(())
}

/// Where the OOM victim is caught: the mark_victim tracepoint (Linux >= 6.8 passes the task)
/// or, before, a kprobe on oom_kill_process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OomHook {
    Tracepoint,
    Kprobe,
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

/// The version of the pinned layout this build and `cfg` make: a hash of the BPF sources and
/// headers (which define every map, value layout and program) and of every setting baked into
/// the maps at load (sizes, the syscall data-spec table, the page size). Two agents with the same
/// version can share pinned maps; any difference means the maps must be replaced.
pub fn layout_version(cfg: &RecorderConfig) -> String {
    let source = u64::from_str_radix(env!("CORONER_BPF_SOURCE_HASH"), 16).unwrap_or(0);
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&cfg.max_containers.to_le_bytes());
    bytes.extend_from_slice(&cfg.ring_entries.to_le_bytes());
    bytes.extend_from_slice(&page_size().to_le_bytes());
    for (nr, spec) in &cfg.specs {
        bytes.extend_from_slice(&nr.to_le_bytes());
        bytes.push(spec.encode());
    }
    format!("{:016x}", fnv1a(source, &bytes))
}

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl Recorder {
    /// Opens the BPF object, sizes its maps from `cfg`, loads it, fills the syscall data-spec
    /// table and attaches every program. Recording starts when this returns; it ends when the
    /// recorder is dropped.
    pub fn load(cfg: &RecorderConfig) -> Result<Recorder, RecorderError> {
        validate(cfg)?;
        if !Path::new(KERNEL_BTF).exists() {
            return Err(RecorderError::NoBtf);
        }
        let recorder = Self::load_fresh(cfg)?;
        recorder.write_agent_state(&AgentState {
            loaded_boot_ns: boot_ns(),
            ..Default::default()
        })?;
        Ok(recorder)
    }

    /// Like [`Recorder::load`], with the maps and links pinned under `root` (bpffs), so that
    /// recording outlives this process. If `root` holds the same layout version, it is adopted
    /// (nothing is loaded; the programs never stopped); any other layout found there is removed
    /// first, and [`Provenance::Pinned::replaced`] says what it was.
    pub fn load_pinned(
        cfg: &RecorderConfig,
        root: &Path,
    ) -> Result<(Recorder, Provenance), RecorderError> {
        validate(cfg)?;
        if !Path::new(KERNEL_BTF).exists() {
            return Err(RecorderError::NoBtf);
        }
        let dir = PinDir::open(root, PIN_LOCK_WAIT)?;
        let version = layout_version(cfg);
        let mut replaced = Vec::new();
        for other in dir.others(&version)? {
            match pin::layout_version_of(&other) {
                Some(v) => replaced.push(format!("layout {v} (this agent's is {version})")),
                None => replaced.push(format!(
                    "{} (left by an agent that stopped while pinning)",
                    other.display()
                )),
            }
            pin::remove_tree(&other)?;
        }
        let ours = dir.layout(&version);
        if ours.exists() {
            match Self::adopt(cfg, &ours) {
                Ok(mut recorder) => {
                    let previous = recorder.agent_state()?;
                    let events_lost_now = recorder.kernel_stats()?.events_lost;
                    // This process's baseline: what it loses from now on is its own.
                    recorder.write_agent_state(&AgentState {
                        heartbeat_boot_ns: boot_ns(),
                        events_lost_seen: events_lost_now,
                        events_unsaved: 0,
                        ..previous
                    })?;
                    recorder._pin = Some(dir);
                    let provenance = Provenance::Adopted {
                        dir: ours,
                        previous,
                        events_lost_now,
                    };
                    return Ok((recorder, provenance));
                }
                Err(e) => {
                    replaced.push(format!("layout {version}, pinned but not usable ({e})"));
                    pin::remove_tree(&ours)?;
                }
            }
        }
        let mut recorder = Self::load_fresh(cfg)?;
        recorder.write_agent_state(&AgentState {
            loaded_boot_ns: boot_ns(),
            heartbeat_boot_ns: boot_ns(),
            ..Default::default()
        })?;
        let staging = dir.staging()?;
        // A half-pinned staging dir would keep programs attached after this recorder is gone.
        let published = match recorder
            .pin_into(&staging)
            .and_then(|()| dir.publish(&staging, &version).map_err(RecorderError::from))
        {
            Ok(p) => p,
            Err(e) => {
                let _ = pin::remove_tree(&staging);
                return Err(e);
            }
        };
        recorder._pin = Some(dir);
        let replaced = (!replaced.is_empty()).then(|| replaced.join("; "));
        Ok((
            recorder,
            Provenance::Pinned {
                dir: published,
                replaced,
            },
        ))
    }

    /// The pinned maps and links of one layout, opened. Fails if any is missing.
    fn adopt(cfg: &RecorderConfig, dir: &Path) -> Result<Recorder, RecorderError> {
        let mut maps = HashMap::new();
        for &name in PINNED_MAPS {
            let path = dir.join(name);
            let map =
                MapHandle::from_pinned_path(&path).map_err(|source| RecorderError::Pinning {
                    what: "opening a pinned map",
                    path: path.clone(),
                    source,
                })?;
            maps.insert(name, map);
        }
        let mut links = Vec::new();
        for &name in PINNED_LINKS {
            let path = dir.join(format!("link-{name}"));
            let link = Link::open(&path).map_err(|source| RecorderError::Pinning {
                what: "opening a pinned link",
                path: path.clone(),
                source,
            })?;
            links.push((name, link));
        }
        let ring_len = maps.get("ring").map_or(0, |m| m.max_entries());
        if ring_len != cfg.max_containers * cfg.ring_entries {
            return Err(RecorderError::Config {
                setting: "ring_entries",
                reason: format!(
                    "the pinned ring has {ring_len} entries, not {}",
                    cfg.max_containers * cfg.ring_entries
                ),
            });
        }
        let take = |name: &'static str| -> Result<MapHandle, RecorderError> {
            let map = maps.get(name).ok_or(RecorderError::Map {
                op: "adopting",
                map: name,
                source: libbpf_rs::Error::from_raw_os_error(libc::ENOENT),
            })?;
            MapHandle::try_from(map).map_err(map_err("duplicating the fd of", name))
        };
        let recorder = Recorder {
            slots: take("slots")?,
            ring: take("ring")?,
            cg_slots: take("cg_slots")?,
            host_cgroups: take("host_cgroups")?,
            events: take("events")?,
            bss: take("bss")?,
            agent_state: take("agent_state")?,
            fatal_stacks: take("fatal_stacks")?,
            saved: Arc::new(SavedEvents::new(take("saved_events")?)),
            all_maps: PINNED_MAPS
                .iter()
                .filter_map(|&n| maps.remove(n).map(|m| (n, m)))
                .collect(),
            ring_entries: cfg.ring_entries,
            links,
            _pin: None,
        };
        Ok(recorder)
    }

    /// Pins every map and link into `dir` (a staging directory, published by the caller).
    fn pin_into(&mut self, dir: &Path) -> Result<(), RecorderError> {
        for (name, map) in &mut self.all_maps {
            let path = dir.join(&**name);
            map.pin(&path).map_err(|source| RecorderError::Pinning {
                what: "a map",
                path,
                source,
            })?;
        }
        for (name, link) in &mut self.links {
            let path = dir.join(format!("link-{name}"));
            link.pin(&path).map_err(|source| RecorderError::Pinning {
                what: "a link",
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// What the agent processes keep in `agent_state`.
    pub fn agent_state(&self) -> Result<AgentState, RecorderError> {
        read_agent_state(&self.agent_state)
    }

    fn write_agent_state(&self, s: &AgentState) -> Result<(), RecorderError> {
        write_agent_state(&self.agent_state, s)
    }

    /// The process events the previous agent processes consumed and saved, oldest first, for the
    /// cgroups that still hold a slot; saved events of any other cgroup are deleted. Call once,
    /// before [`Recorder::spawn_event_reader`]: this process continues their numbering.
    pub fn saved_events(&self) -> Result<Vec<RawEvent>, RecorderError> {
        let live = self.recorded_cgroups().into_iter().collect();
        self.saved.restore(&live)
    }

    fn load_fresh(cfg: &RecorderConfig) -> Result<Recorder, RecorderError> {
        match Self::load_with(cfg, OomHook::Tracepoint) {
            // Before Linux 6.8 mark_victim carries only a pid: watch oom_kill_process instead.
            Err(RecorderError::Verifier { log_tail, .. })
                if log_tail.contains("coroner_oom_victim") =>
            {
                Self::load_with(cfg, OomHook::Kprobe)
            }
            other => other,
        }
    }

    fn load_with(cfg: &RecorderConfig, oom: OomHook) -> Result<Recorder, RecorderError> {
        let mut storage = MaybeUninit::uninit();
        let mut open = skel::CoronerSkelBuilder::default()
            .open(&mut storage)
            .map_err(RecorderError::Open)?;
        open.progs
            .coroner_oom_victim
            .set_autoload(oom == OomHook::Tracepoint);
        open.progs
            .coroner_oom_kill_process
            .set_autoload(oom == OomHook::Kprobe);

        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| RecorderError::Map {
                op: "mapping",
                map: "rodata",
                source: libbpf_rs::Error::from_raw_os_error(libc::ENOENT),
            })?;
        rodata.max_containers = cfg.max_containers;
        rodata.ring_entries = cfg.ring_entries;
        rodata.page_size = page_size();
        let sizes: [(&mut libbpf_rs::OpenMapMut<'_>, &'static str, u32); 4] = [
            (&mut open.maps.slots, "slots", cfg.max_containers),
            (
                &mut open.maps.ring,
                "ring",
                cfg.max_containers * cfg.ring_entries,
            ),
            (&mut open.maps.cg_slots, "cg_slots", cfg.max_containers * 2),
            (
                &mut open.maps.fatal_stacks,
                "fatal_stacks",
                cfg.max_containers,
            ),
        ];
        for (map, name, n) in sizes {
            map.set_max_entries(n).map_err(map_err("sizing", name))?;
        }

        let (loaded, log) = with_libbpf_log(|| open.load());
        let skel = loaded.map_err(|e| classify_load_error(e, &log))?;

        let spec_map = &skel.maps.syscall_spec;
        for (nr, spec) in &cfg.specs {
            spec_map
                .update(&nr.to_ne_bytes(), &[spec.encode()], MapFlags::ANY)
                .map_err(map_err("filling", "syscall_spec"))?;
        }

        let maps = &skel.maps;
        let all_maps = [
            (&maps.slots, "slots"),
            (&maps.ring, "ring"),
            (&maps.cg_slots, "cg_slots"),
            (&maps.host_cgroups, "host_cgroups"),
            (&maps.syscall_spec, "syscall_spec"),
            (&maps.cpu_cache, "cpu_cache"),
            (&maps.zeroes, "zeroes"),
            (&maps.exec_paths, "exec_paths"),
            (&maps.events, "events"),
            (&maps.agent_state, "agent_state"),
            (&maps.saved_events, "saved_events"),
            (&maps.fatal_stacks, "fatal_stacks"),
            (&maps.stack_scratch, "stack_scratch"),
            (&maps.rodata, "rodata"),
            (&maps.bss, "bss"),
        ]
        .into_iter()
        .map(|(m, name)| handle(m, name).map(|h| (name, h)))
        .collect::<Result<Vec<_>, _>>()?;

        let progs = &skel.progs;
        let oom_prog = match oom {
            OomHook::Tracepoint => (&progs.coroner_oom_victim, "coroner_oom_victim", "oom"),
            OomHook::Kprobe => (
                &progs.coroner_oom_kill_process,
                "coroner_oom_kill_process",
                "oom",
            ),
        };
        let programs = [
            (&progs.coroner_sys_exit, "coroner_sys_exit", "sys_exit"),
            (&progs.coroner_fork, "coroner_fork", "fork"),
            (&progs.coroner_exec, "coroner_exec", "exec"),
            (&progs.coroner_exit, "coroner_exit", "exit"),
            (&progs.coroner_signal, "coroner_signal", "signal"),
            (
                &progs.coroner_signal_deliver,
                "coroner_signal_deliver",
                "signal_deliver",
            ),
            oom_prog,
        ];
        let mut links = Vec::with_capacity(programs.len());
        for (prog, program, pin_name) in programs {
            links.push((
                pin_name,
                prog.attach()
                    .map_err(|source| RecorderError::Attach { program, source })?,
            ));
        }

        Ok(Recorder {
            slots: handle(&maps.slots, "slots")?,
            ring: handle(&maps.ring, "ring")?,
            cg_slots: handle(&maps.cg_slots, "cg_slots")?,
            host_cgroups: handle(&maps.host_cgroups, "host_cgroups")?,
            events: handle(&maps.events, "events")?,
            bss: handle(&maps.bss, "bss")?,
            agent_state: handle(&maps.agent_state, "agent_state")?,
            fatal_stacks: handle(&maps.fatal_stacks, "fatal_stacks")?,
            saved: Arc::new(SavedEvents::new(handle(
                &maps.saved_events,
                "saved_events",
            )?)),
            all_maps,
            ring_entries: cfg.ring_entries,
            links,
            _pin: None,
        })
        // The skeleton and its object close here: the links keep the programs attached and the
        // handles keep the maps.
    }

    /// Never record `cgroup_id` (a host service, the agent itself), and drop its slot.
    pub fn ignore_cgroup(&self, cgroup_id: u64) -> Result<(), RecorderError> {
        self.host_cgroups
            .update(&cgroup_id.to_ne_bytes(), &[1], MapFlags::ANY)
            .map_err(map_err("inserting into", "host_cgroups"))?;
        if let Some((idx, slot)) = self.owned_slot(cgroup_id)? {
            self.free(cgroup_id, idx, slot)?;
        }
        self.saved.forget(cgroup_id);
        Ok(())
    }

    /// What was recorded for `cgroup_id`, then its slot is freed for the next container.
    /// `None` if nothing was recorded (or the slot went to another cgroup since).
    pub fn drain(&self, cgroup_id: u64) -> Result<Option<RawContainer>, RecorderError> {
        // The caller has the cgroup's events by now (its report is being made).
        self.saved.forget(cgroup_id);
        let stack = self.take_fatal_stack(cgroup_id, true)?;
        let Some((idx, slot)) = self.owned_slot(cgroup_id)? else {
            return Ok(None);
        };
        let ring = self.read_ring(idx, &slot)?;
        let mut out = wire::container(&slot, ring);
        out.fatal_stack = stack;
        self.free(cgroup_id, idx, slot)?;
        Ok(Some(out))
    }

    /// The stack the kernel took at the cgroup's last crash signal, deleted when `remove`.
    fn take_fatal_stack(
        &self,
        cgroup_id: u64,
        remove: bool,
    ) -> Result<Option<crate::bpf::raw::RawFatalStack>, RecorderError> {
        let key = cgroup_id.to_ne_bytes();
        let found = self
            .fatal_stacks
            .lookup(&key, MapFlags::ANY)
            .map_err(map_err("reading", "fatal_stacks"))?
            .and_then(|b| wire::read::<types::fatal_stack>(&b))
            .map(|s| wire::fatal_stack(&s, page_size()));
        if remove && found.is_some() {
            match self.fatal_stacks.delete(&key) {
                Ok(()) => {}
                Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => {}
                Err(e) => return Err(map_err("deleting from", "fatal_stacks")(e)),
            }
        }
        Ok(found)
    }

    /// Like [`Recorder::drain`], leaving the slot in place.
    pub fn peek(&self, cgroup_id: u64) -> Result<Option<RawContainer>, RecorderError> {
        let Some((idx, slot)) = self.owned_slot(cgroup_id)? else {
            return Ok(None);
        };
        let ring = self.read_ring(idx, &slot)?;
        let mut out = wire::container(&slot, ring);
        out.fatal_stack = self.take_fatal_stack(cgroup_id, false)?;
        Ok(Some(out))
    }

    /// The cgroups that currently own a slot.
    pub fn recorded_cgroups(&self) -> Vec<u64> {
        self.cg_slots
            .keys()
            .filter_map(|k| {
                k.get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_ne_bytes)
            })
            .collect()
    }

    /// Streams process events to `sink` from a thread until the returned reader is dropped.
    /// A record that cannot be converted is skipped and counted ([`EventReader::skipped`]).
    pub fn spawn_event_reader(
        &self,
        mut sink: impl FnMut(RawEvent) + Send + 'static,
    ) -> Result<EventReader, RecorderError> {
        let skipped = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&skipped);
        let saved = Arc::clone(&self.saved);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&self.events, move |bytes: &[u8]| {
                match wire::event(bytes) {
                    Ok(ev) => {
                        // Kept in the kernel first: a kill -9 after this loses nothing.
                        saved.save(ev.cgroup_id(), bytes);
                        sink(ev)
                    }
                    Err(_) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
                0
            })
            .map_err(RecorderError::RingBuffer)?;
        let heartbeat = Heartbeat {
            agent_state: MapHandle::try_from(&self.agent_state)
                .map_err(map_err("duplicating the fd of", "agent_state"))?,
            bss: MapHandle::try_from(&self.bss).map_err(map_err("duplicating the fd of", "bss"))?,
            saved: Arc::clone(&self.saved),
        };
        let rb = builder.build().map_err(RecorderError::RingBuffer)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_thread = Arc::clone(&stop);
        let polled_through = Arc::new(AtomicU64::new(0));
        let polled = Arc::clone(&polled_through);
        // The thread sleeps on the ring buffer's own epoll fd (readable when the kernel wakes the
        // reader) and on an eventfd that `catch_up` and the drop write to.
        let os_err = |e: nix::Error| RecorderError::Thread(std::io::Error::from(e));
        let wake = Arc::new(
            EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).map_err(os_err)?,
        );
        let wake_thread = Arc::clone(&wake);
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(os_err)?;
        // SAFETY: the ring buffer's epoll fd lives as long as `rb`, which outlives this borrow
        // (the registration is copied into `epoll` by the kernel).
        let rb_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(rb.epoll_fd()) };
        epoll
            .add(rb_fd, EpollEvent::new(EpollFlags::EPOLLIN, 0))
            .map_err(os_err)?;
        epoll
            .add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 1))
            .map_err(os_err)?;
        let thread = std::thread::Builder::new()
            .name("coroner-bpf-events".into())
            .spawn(move || {
                let mut last_beat = Instant::now();
                let mut ready = [EpollEvent::empty(); 2];
                heartbeat.beat();
                while !stop_thread.load(Ordering::Relaxed) {
                    // Errors are EINTR from a signal: consume and wait again.
                    let _ = epoll.wait(&mut ready, EVENT_WAIT_MS);
                    let _ = wake_thread.read();
                    // Every record committed before `started` is consumed once consume returns.
                    let started = boot_ns();
                    let _ = rb.consume();
                    polled.store(started, Ordering::Release);
                    if last_beat.elapsed() >= HEARTBEAT {
                        heartbeat.beat();
                        last_beat = Instant::now();
                    }
                }
                // What arrived before the drop still reaches the sink.
                let _ = rb.consume();
                heartbeat.beat();
            })
            .map_err(RecorderError::Thread)?;
        Ok(EventReader {
            stop,
            wake,
            thread: Some(thread),
            skipped,
            polled_through,
        })
    }

    /// Kernel memory the maps take, as the kernel accounts it (`memlock` in each map's fdinfo),
    /// or from their sizes where fdinfo says nothing.
    pub fn map_memory_bytes(&self) -> u64 {
        self.all_maps.iter().map(|(_, m)| map_memory(m)).sum()
    }

    /// Counters the kernel side keeps about itself.
    pub fn kernel_stats(&self) -> Result<KernelStats, RecorderError> {
        let bytes = self
            .bss
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("reading", "bss"))?
            .unwrap_or_default();
        let bss: Option<types::bss> = wire::read(&bytes);
        Ok(bss
            .map(|b| KernelStats {
                events_lost: b.events_lost,
                slot_evictions: b.slot_evictions,
                alloc_failures: b.alloc_failures,
            })
            .unwrap_or_default())
    }

    /// The slot `cgroup_id` owns, with its contents.
    fn owned_slot(&self, cgroup_id: u64) -> Result<Option<(u32, types::slot)>, RecorderError> {
        let Some(idx) = self
            .cg_slots
            .lookup(&cgroup_id.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("looking up", "cg_slots"))?
        else {
            return Ok(None);
        };
        let Some(idx) = idx
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
        else {
            return Ok(None);
        };
        let Some(bytes) = self
            .slots
            .lookup(&idx.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("reading", "slots"))?
        else {
            return Ok(None);
        };
        match wire::read::<types::slot>(&bytes) {
            Some(slot) if slot.cgroup_id == cgroup_id => Ok(Some((idx, slot))),
            _ => Ok(None),
        }
    }

    /// The slot's ring, oldest first, without records overwritten or half-written meanwhile.
    fn read_ring(&self, idx: u32, slot: &types::slot) -> Result<Vec<RawSyscall>, RecorderError> {
        let n = u64::from(self.ring_entries);
        let total = slot.ring_head;
        let first = total.saturating_sub(n);
        let mut out = Vec::with_capacity((total - first) as usize);
        let mut buf = vec![0u8; size_of::<types::sys_record>()];
        for pos in first..total {
            let key = idx * self.ring_entries + (pos % n) as u32;
            let found = self
                .ring
                .lookup_into(&key.to_ne_bytes(), &mut buf, MapFlags::ANY)
                .map_err(map_err("reading", "ring"))?;
            if !found {
                continue;
            }
            if let Some(r) = wire::read::<types::sys_record>(&buf) {
                if wire::ring_record_valid(&r, slot.r#gen, pos) {
                    out.push(wire::syscall(&r));
                }
            }
        }
        Ok(out)
    }

    /// Gives the slot back: its cgroup mapping goes, and the slot is marked free so the next
    /// new cgroup takes it before evicting a live one.
    fn free(&self, cgroup_id: u64, idx: u32, mut slot: types::slot) -> Result<(), RecorderError> {
        match self.cg_slots.delete(&cgroup_id.to_ne_bytes()) {
            Ok(()) => {}
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => {}
            Err(e) => return Err(map_err("deleting from", "cg_slots")(e)),
        }
        // Userspace cannot compare-and-swap a map value: re-read just before writing back, so
        // only a slot the kernel gave to another cgroup in the last microseconds is clobbered.
        let current = self
            .slots
            .lookup(&idx.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("reading", "slots"))?
            .and_then(|b| wire::read::<types::slot>(&b));
        match current {
            Some(now) if now.cgroup_id == cgroup_id && now.r#gen == slot.r#gen => slot = now,
            _ => return Ok(()),
        }
        slot.cgroup_id = 0;
        self.slots
            .update(&idx.to_ne_bytes(), wire::bytes_of(&slot), MapFlags::ANY)
            .map_err(map_err("freeing a slot in", "slots"))
    }
}

/// The event reader's sign of life in `agent_state`: when it last read, what it had seen lost.
struct Heartbeat {
    agent_state: MapHandle,
    bss: MapHandle,
    saved: Arc<SavedEvents>,
}

impl Heartbeat {
    fn beat(&self) {
        let now = boot_ns();
        let events_lost = self
            .bss
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|b| wire::read::<types::bss>(&b))
            .map_or(0, |b| b.events_lost);
        let Ok(current) = read_agent_state(&self.agent_state) else {
            return;
        };
        let _ = write_agent_state(
            &self.agent_state,
            &AgentState {
                heartbeat_boot_ns: now,
                events_lost_seen: events_lost,
                events_unsaved: self.saved.unsaved(),
                ..current
            },
        );
    }
}

fn read_agent_state(map: &MapHandle) -> Result<AgentState, RecorderError> {
    let bytes = map
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(map_err("reading", "agent_state"))?
        .unwrap_or_default();
    Ok(wire::read::<types::agent_state>(&bytes)
        .map(|s| AgentState {
            loaded_boot_ns: s.loaded_boot_ns,
            heartbeat_boot_ns: s.heartbeat_boot_ns,
            events_lost_seen: s.events_lost_seen,
            events_unsaved: s.events_unsaved,
        })
        .unwrap_or_default())
}

fn write_agent_state(map: &MapHandle, s: &AgentState) -> Result<(), RecorderError> {
    let value = types::agent_state {
        loaded_boot_ns: s.loaded_boot_ns,
        heartbeat_boot_ns: s.heartbeat_boot_ns,
        events_lost_seen: s.events_lost_seen,
        events_unsaved: s.events_unsaved,
    };
    map.update(&0u32.to_ne_bytes(), wire::bytes_of(&value), MapFlags::ANY)
        .map_err(map_err("writing", "agent_state"))
}

/// `memlock:` from the map's fdinfo, else key + value size times entries.
fn map_memory(map: &MapHandle) -> u64 {
    let fdinfo = format!("/proc/self/fdinfo/{}", map.as_fd().as_raw_fd());
    let memlock = std::fs::read_to_string(fdinfo).ok().and_then(|s| {
        s.lines().find_map(|l| {
            l.strip_prefix("memlock:")
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
    });
    memlock.unwrap_or_else(|| {
        u64::from(map.key_size() + map.value_size()) * u64::from(map.max_entries())
    })
}

/// The thread reading process events; dropping it stops and joins the thread.
pub struct EventReader {
    stop: Arc<AtomicBool>,
    /// Written to wake the thread at once.
    wake: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
    skipped: Arc<AtomicU64>,
    /// CLOCK_BOOTTIME before the last completed consume of the ring buffer.
    polled_through: Arc<AtomicU64>,
}

/// `CLOCK_BOOTTIME` in nanoseconds, the clock of `bpf_ktime_get_boot_ns()`.
fn boot_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

impl EventReader {
    /// Waits until every event the kernel committed before this call has reached the sink (one
    /// consume of the ring buffer that started after now, which this call wakes the thread for),
    /// at most `CATCH_UP_MAX`.
    pub fn catch_up(&self) {
        let now = boot_ns();
        if self.polled_through.load(Ordering::Acquire) >= now {
            return;
        }
        let _ = self.wake.write(1);
        let deadline = std::time::Instant::now() + CATCH_UP_MAX;
        let mut spins = 0u32;
        while self.polled_through.load(Ordering::Acquire) < now
            && std::time::Instant::now() < deadline
        {
            // The thread usually answers within microseconds: yield before sleeping.
            if spins < 50 {
                spins += 1;
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    /// Records skipped because they were shorter than their struct or of an unknown type.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

impl Drop for EventReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.wake.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rejects_ring_sizes_that_are_not_powers_of_two() {
        let cfg = RecorderConfig {
            ring_entries: 100,
            ..Default::default()
        };
        let err = validate(&cfg).unwrap_err();
        assert_eq!(err.label(), "config");
        assert!(err.to_string().contains("ring_entries"), "{err}");
        assert!(validate(&RecorderConfig {
            max_containers: 0,
            ..Default::default()
        })
        .is_err());
        assert!(validate(&RecorderConfig {
            specs: vec![(
                600,
                DataSpec::Str {
                    ptr_arg: 0,
                    on_success: true,
                },
            )],
            ..Default::default()
        })
        .is_err());
        assert!(validate(&RecorderConfig::default()).is_ok());
    }
}
