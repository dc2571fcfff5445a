//! The agent's event loop: owns the registry of live containers, turns containerd's events into
//! tracking and exits, reconciles with the task list after each (re)connect, and sweeps host
//! cgroups out of the recorder. It never waits on the network: enrichment and finishing run in
//! their own tasks. The only work done inline at an exit is reading the cgroup's usage files,
//! because the kernel deletes them within 5-25 ms.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::artifacts;
use super::deathwatch;
use super::enrich::{self, Created};
use super::finish::{self, Pending, Seen};
use super::journal::Entry;
use super::registry::{EnrichedTx, Key, OomEpisodes, Registry, Tracked};
use super::startwatch;
use super::Shared;
use crate::containerd::cri::CRI_NAMESPACE;
use crate::containerd::watch::WatchMsg;
use crate::containerd::{Containerd, CriExit, Decoded, Event, TaskState};
use crate::model::report_id;
use crate::report::ExitEvent;

pub(super) struct EventLoop {
    shared: Arc<Shared>,
    /// Tracked containers gone from containerd and the CRI at the last (re)connect, waiting for
    /// the second look: reported from the recorder unless their exit turns up first.
    vanishing: HashMap<Key, (Option<Tracked>, Option<Entry>)>,
    /// The CRI's exited containers listed again shortly after a (re)connect.
    second_look: JoinSet<Vec<CriExit>>,
    /// Containers the previous agent process tracked, until the first reconcile says what
    /// became of them.
    journaled: HashMap<Key, Entry>,
    registry: Registry,
    client: Option<Containerd>,
    finishing: JoinSet<()>,
    /// Recorded cgroups no tracked container owns, with how many sweeps have seen them.
    unclaimed: HashMap<u64, u32>,
    /// CRI containers created and not yet seen as a task: whether they start, asked of the CRI
    /// ([`startwatch`]); a failed start comes back as the CRI's exit.
    starting: JoinSet<(Key, Option<startwatch::FailedStart>)>,
    awaiting_start: HashMap<Key, tokio::task::AbortHandle>,
}

/// What the journal needs from tracking: the init pid, the create and start times.
type JournalTimes = (u32, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// When, after a (re)connect, the CRI's exited containers are listed once more.
const CRI_SECOND_LOOK: Duration = Duration::from_secs(1);
/// How often the loop looks for recorded cgroups that belong to the host.
const HOST_SWEEP: Duration = Duration::from_secs(5);
/// Sweeps a cgroup must stay unclaimed by any container before it is taken for the host's.
const HOST_SWEEPS: u32 = 3;

impl EventLoop {
    /// `journaled`: the containers the previous agent process was tracking.
    pub(super) fn new(shared: Arc<Shared>, journaled: Vec<Entry>) -> EventLoop {
        let journaled = journaled
            .into_iter()
            .map(|e| {
                let key = Key {
                    namespace: e.namespace.clone(),
                    id: e.container_id.clone(),
                };
                (key, e)
            })
            .collect();
        EventLoop {
            shared,
            second_look: JoinSet::new(),
            vanishing: HashMap::new(),
            journaled,
            registry: Registry::default(),
            client: None,
            finishing: JoinSet::new(),
            unclaimed: HashMap::new(),
            starting: JoinSet::new(),
            awaiting_start: HashMap::new(),
        }
    }

    /// Waits for the reports being written to be stored.
    pub(super) async fn drain(&mut self) {
        while self.finishing.join_next().await.is_some() {}
    }

    pub(super) async fn run(&mut self, mut rx: mpsc::Receiver<WatchMsg>) {
        let mut sweep = tokio::time::interval(HOST_SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => m,
                    None => break,
                },
                _ = sweep.tick() => {
                    self.sweep_host_cgroups();
                    self.publish_recorder_totals();
                    continue;
                }
                Some(Ok(exits)) = self.second_look.join_next(), if !self.second_look.is_empty() => {
                    let now = Instant::now();
                    let mut listed = HashSet::new();
                    self.recover_cri(exits, &mut listed, now);
                    self.report_vanished(&listed, now);
                    continue;
                }
                Some(watched) = self.starting.join_next(), if !self.starting.is_empty() => {
                    // An aborted watch (its task appeared, or the container went) is an error.
                    if let Ok((key, failed)) = watched {
                        self.awaiting_start.remove(&key);
                        if let Some((cri, cgroup_id)) = failed {
                            self.start_failed(key, cri, cgroup_id);
                        }
                    }
                    continue;
                }
            };
            match msg {
                WatchMsg::Connected {
                    client,
                    tasks,
                    cri_exits,
                    reconnect,
                } => {
                    self.client = Some(client.clone());
                    self.reconcile(tasks, cri_exits, reconnect);
                    // The CRI deletes an exited task before it marks the container exited: an
                    // exit in that window is in neither list. A second look finds it.
                    let store = self.shared.store.clone();
                    self.second_look.spawn(async move {
                        tokio::time::sleep(CRI_SECOND_LOOK).await;
                        let reported = move |id: &str| store.has_container(id);
                        client.cri_exits(&reported).await.unwrap_or_default()
                    });
                    self.shared.health.connected();
                    self.shared.metrics.ready.set(1);
                }
                WatchMsg::Event { decoded, received } => self.handle(decoded, received),
                WatchMsg::Disconnected { reason } => self.shared.health.disconnected(reason),
            }
            self.shared
                .metrics
                .tracked_containers
                .set(self.registry.len() as i64);
            // Reap finished report tasks so the set does not grow.
            while self.finishing.try_join_next().is_some() {}
        }
    }

    /// The kernel records every new cgroup from its first syscall, before anyone knows whose it
    /// is. A cgroup no container has claimed for a few sweeps belongs to the host (a service, a
    /// session): stop recording it.
    fn sweep_host_cgroups(&mut self) {
        if !self.shared.recorder.is_loaded() {
            return;
        }
        let claimed: HashSet<u64> = self
            .registry
            .tracked()
            .filter_map(|t| t.ready().and_then(|e| e.cgroup_id))
            .collect();
        let recorded = self.shared.recorder.recorded_cgroups();
        let recorded_set: HashSet<u64> = recorded.iter().copied().collect();
        self.unclaimed
            .retain(|cg, _| recorded_set.contains(cg) && !claimed.contains(cg));
        for cg in recorded {
            if claimed.contains(&cg) {
                continue;
            }
            let seen = self.unclaimed.entry(cg).or_insert(0);
            *seen += 1;
            if *seen >= HOST_SWEEPS {
                debug!(
                    cgroup_id = cg,
                    "recorded cgroup claimed by no container: treated as host"
                );
                self.shared.recorder.ignore_cgroup(cg);
                self.unclaimed.remove(&cg);
            }
        }
    }

    fn publish_recorder_totals(&self) {
        match self.shared.recorder.totals() {
            Some(Ok(t)) => self.shared.metrics.recorder_totals(&t),
            Some(Err(e)) => warn!(error = %e, "reading the recorder's kernel counters"),
            None => {}
        }
    }

    fn handle(&mut self, d: Decoded, received: Instant) {
        if let Some(ts) = d.timestamp {
            debug!(
                lag_ms = (Utc::now() - ts).num_microseconds().unwrap_or(0) as f64 / 1000.0,
                queued_ms = received.elapsed().as_secs_f64() * 1000.0,
                event = ?d.event,
                "event"
            );
        }
        let ns = d.namespace;
        match d.event {
            Event::TaskCreate {
                container_id,
                pid,
                bundle,
            } => {
                let key = Key {
                    namespace: ns,
                    id: container_id,
                };
                self.vanishing.remove(&key);
                self.started(&key);
                let created = Created::read(&self.shared.containerd_dir, pid, &bundle);
                self.track(key, pid, d.timestamp, None, created);
            }
            Event::TaskStart { container_id, pid } => {
                let key = Key {
                    namespace: ns,
                    id: container_id,
                };
                match self.registry.get_mut(&key) {
                    Some(t) => {
                        t.started_at = d.timestamp;
                        t.pid = pid;
                    }
                    None => self.track(key, pid, None, d.timestamp, None),
                }
            }
            Event::TaskOom { container_id } => {
                if let Some(t) = self.registry.get_mut(&Key {
                    namespace: ns,
                    id: container_id,
                }) {
                    t.oom.note(received);
                }
            }
            Event::TaskExit {
                container_id,
                exec_id,
                pid,
                exit_status,
                exited_at,
            } => {
                if !exec_id.is_empty() && exec_id != container_id {
                    return; // an exec'd process, not the container's init
                }
                let key = Key {
                    namespace: ns,
                    id: container_id,
                };
                let exit = ExitEvent {
                    namespace: key.namespace.clone(),
                    container_id: key.id.clone(),
                    pid,
                    exit_status,
                    exited_at: exited_at.or(d.timestamp).unwrap_or_else(Utc::now),
                };
                // An exit the last reconcile could not find yet: reported live after all.
                let tracked = self
                    .registry
                    .remove(&key)
                    .or_else(|| self.vanishing.remove(&key).and_then(|(t, _)| t));
                self.exit(exit, tracked, Seen::Live, received);
            }
            Event::TaskDelete { container_id, pid } => {
                let key = Key {
                    namespace: ns,
                    id: container_id,
                };
                if self
                    .registry
                    .get(&key)
                    .is_some_and(|t| t.pid == pid || pid == 0)
                {
                    self.registry.remove(&key);
                    self.shared.sampler.remove(&key);
                }
            }
            Event::ContainerCreate { container_id } => {
                let key = Key {
                    namespace: ns,
                    id: container_id,
                };
                self.watch_start(key);
            }
            Event::ContainerDelete { container_id } => {
                let key = Key {
                    namespace: ns,
                    id: container_id,
                };
                self.started(&key);
                self.registry.remove(&key);
                self.shared.sampler.remove(&key);
            }
            Event::Other => {}
        }
    }

    /// Watches a CRI container just created until its task appears or the CRI says its start
    /// failed (no task event ever comes then).
    fn watch_start(&mut self, key: Key) {
        let Some(client) = self.client.clone() else {
            return;
        };
        if key.namespace != CRI_NAMESPACE || self.awaiting_start.contains_key(&key) {
            return;
        }
        let watched = key.clone();
        let cgroups = self.shared.cgroups.clone();
        let handle = self.starting.spawn(async move {
            let failed = startwatch::watch(client, cgroups, watched.id.clone()).await;
            (watched, failed)
        });
        self.awaiting_start.insert(key, handle);
    }

    /// The container's task exists (or the container is gone): its start did not fail.
    fn started(&mut self, key: &Key) {
        if let Some(watch) = self.awaiting_start.remove(key) {
            watch.abort();
        }
    }

    /// A CRI container whose process runc could not start: reported at once, as the CRI
    /// recorded it (the report id is the one a later reconcile would compute, so never twice).
    fn start_failed(&mut self, key: Key, cri: CriExit, cgroup_id: Option<u64>) {
        let exit = ExitEvent {
            namespace: key.namespace.clone(),
            container_id: key.id.clone(),
            pid: 0,
            exit_status: cri.exit_code as u32,
            exited_at: cri.finished_at,
        };
        let tracked = self.registry.remove(&key);
        self.exit(
            exit,
            tracked,
            Seen::StartFailed(Box::new(cri), cgroup_id),
            Instant::now(),
        );
    }

    /// Starts tracking a container and its enrichment (with its entrypoint when it was seen
    /// created: its root filesystem is readable now, and the program has not run yet).
    fn track(
        &mut self,
        key: Key,
        pid: u32,
        created_at: Option<DateTime<Utc>>,
        started_at: Option<DateTime<Utc>>,
        created: Option<Created>,
    ) {
        let (tx, rx) = watch::channel(None);
        let cgroup_path = created.as_ref().and_then(Created::cgroup_path);
        if let Some(path) = &cgroup_path {
            self.shared.sampler.add(key.clone(), path.clone());
        }
        let at_death = deathwatch::watch(&self.shared, pid, cgroup_path.clone(), rx.clone());
        let artifacts = created
            .as_ref()
            .and_then(Created::rootfs_and_plan)
            .and_then(|(rootfs, plan)| artifacts::grab_at_death(&self.shared, pid, rootfs, plan));
        self.spawn_enrichment(
            key.clone(),
            created,
            tx,
            Some((pid, created_at, started_at)),
        );
        self.registry.insert(
            key,
            Tracked {
                pid,
                created_at,
                started_at,
                oom: OomEpisodes::default(),
                enriched: rx,
                cgroup_path,
                at_death,
                artifacts,
            },
        );
    }

    /// Looks a container up beside the loop; with `journal` (its init pid, create and start
    /// times), a live container is also written to the journal once its enrichment is known.
    fn spawn_enrichment(
        &self,
        key: Key,
        created: Option<Created>,
        tx: EnrichedTx,
        journal: Option<JournalTimes>,
    ) {
        let shared = self.shared.clone();
        let client = self.client.clone();
        tokio::spawn(async move {
            let enriched = Arc::new(enrich::enrich(&shared, client.as_ref(), &key, created).await);
            let _ = tx.send(Some(enriched.clone()));
            let Some((pid, created, started)) = journal else {
                return;
            };
            // A container found running (no spec read at create) is sampled from here on; a
            // sandbox's pause process is not worth a history.
            match enriched.cgroup_path.clone() {
                _ if enriched.is_sandbox() => shared.sampler.remove(&key),
                Some(path) => shared.sampler.add(key.clone(), path),
                None => {}
            }
            if enriched.is_sandbox() || enriched.meta.is_none() {
                return;
            }
            let entry = Entry::new(
                &key.namespace,
                &key.id,
                pid,
                (created, started),
                &enriched,
                &shared.redaction,
            );
            let writer = shared.clone();
            let written = tokio::task::spawn_blocking(move || writer.journal.record(&entry)).await;
            if let Ok(Err(e)) = written {
                shared.metrics.collection_error("journal_write");
                warn!(error = %e, "could not journal a tracked container: an exit while the agent is away may go unreported");
            }
        });
    }

    /// Turns an exit into a report, reading the cgroup's usage now if its path is known.
    fn exit(&mut self, exit: ExitEvent, tracked: Option<Tracked>, seen: Seen, received: Instant) {
        let id = report_id(&exit.namespace, &exit.container_id, exit.exited_at);
        let container_id = exit.container_id.clone();
        // A CRI container runs once; a vanished container's exit time is the kernel's, not
        // containerd's: both are the container's one report, whatever its id.
        let once = matches!(
            seen,
            Seen::Cri(_) | Seen::Vanished(_) | Seen::StartFailed(..)
        );
        debug!(id, container = %container_id, seen = seen.label(), "exit");
        if !self.shared.claim(&id, &container_id, once) {
            debug!(id, container = %container_id, "exit already reported");
            self.shared.forget_tracked(&exit.namespace, &container_id);
            return;
        }
        let history = self.shared.sampler.take(&Key {
            namespace: exit.namespace.clone(),
            id: exit.container_id.clone(),
        });
        let ready = tracked.as_ref().and_then(Tracked::ready);
        if let Some(sandbox) = ready.as_ref().filter(|e| e.is_sandbox()) {
            if let Some(cg) = sandbox.cgroup_id {
                self.shared.recorder.discard(cg);
            }
            self.shared.release(&id, &container_id);
            return;
        }
        // The path from the enrichment, else from the spec read at create (an exit before the
        // look-up finished).
        let usage = ready
            .as_ref()
            .and_then(|e| e.cgroup_path.as_deref())
            .or(tracked.as_ref().and_then(|t| t.cgroup_path.as_deref()))
            .filter(|_| self.shared.usage_delay.is_zero())
            .map(|path| finish::read_usage(&self.shared, path));
        let journaled = match &seen {
            Seen::Vanished(entry) => entry.as_deref(),
            _ => None,
        };
        let enriched = match (tracked.as_ref(), journaled) {
            (Some(t), _) => Some(t.enriched.clone()),
            // What the previous agent process learned while the container lived.
            (None, Some(entry)) => Some(watch::channel(Some(Arc::new(entry.enriched()))).1),
            (None, None) if matches!(seen, Seen::StartFailed(..)) => {
                let cgroup_id = match &seen {
                    Seen::StartFailed(_, id) => *id,
                    _ => None,
                };
                let (tx, rx) = watch::channel(None);
                let (shared, client) = (self.shared.clone(), self.client.clone());
                let key = Key {
                    namespace: exit.namespace.clone(),
                    id: exit.container_id.clone(),
                };
                tokio::spawn(async move {
                    let mut enriched = enrich::never_started(&shared, client.as_ref(), &key).await;
                    // What the recorder saw of runc's attempt is kept under this id.
                    enriched.cgroup_id = cgroup_id;
                    let _ = tx.send(Some(Arc::new(enriched)));
                });
                Some(rx)
            }
            (None, None) => {
                // Not tracked (created before a namespace was watched, or a missed create): look
                // it up now; the cgroup is most likely gone, which the report will say.
                let (tx, rx) = watch::channel(None);
                self.spawn_enrichment(
                    Key {
                        namespace: exit.namespace.clone(),
                        id: exit.container_id.clone(),
                    },
                    None,
                    tx,
                    None,
                );
                Some(rx)
            }
        };
        let pending = Pending {
            exit,
            created_at: tracked
                .as_ref()
                .and_then(|t| t.created_at)
                .or(journaled.and_then(|e| e.created_at)),
            started_at: tracked
                .as_ref()
                .and_then(|t| t.started_at)
                .or(journaled.and_then(|e| e.started_at)),
            oom_events: tracked.as_ref().map_or(0, |t| t.oom.count),
            enriched,
            usage,
            at_death: tracked.as_ref().and_then(|t| t.at_death.clone()),
            artifacts: tracked.as_ref().and_then(|t| t.artifacts.clone()),
            seen,
            received,
            history,
            client: self.client.clone(),
        };
        let shared = self.shared.clone();
        self.finishing.spawn(async move {
            finish::finish(shared.clone(), pending).await;
            shared.release(&id, &container_id);
        });
    }

    /// Containers that vanished unseen and that nobody else has reported since the (re)connect:
    /// their exits come from the pinned flight recorder.
    fn report_vanished(&mut self, listed: &HashSet<Key>, now: Instant) {
        for (key, (tracked, entry)) in std::mem::take(&mut self.vanishing) {
            if listed.contains(&key) {
                continue; // the CRI had it after all
            }
            let pid = tracked
                .as_ref()
                .map(|t| t.pid)
                .or(entry.as_ref().map(|e| e.pid))
                .unwrap_or_default();
            // Placeholders: the exit's status and time come from the recorder's drain.
            let exit = ExitEvent {
                namespace: key.namespace,
                container_id: key.id,
                pid,
                exit_status: 0,
                exited_at: Utc::now(),
            };
            self.exit(exit, tracked, Seen::Vanished(entry.map(Box::new)), now);
        }
    }

    /// Reports the CRI's exited containers that have no report yet, and adds them to `listed`.
    fn recover_cri(&mut self, exits: Vec<CriExit>, listed: &mut HashSet<Key>, now: Instant) {
        for cri in exits {
            let key = Key {
                namespace: CRI_NAMESPACE.to_string(),
                id: cri.container_id.clone(),
            };
            listed.insert(key.clone());
            let exit = ExitEvent {
                namespace: key.namespace.clone(),
                container_id: key.id.clone(),
                pid: 0,
                // The CRI's exit code is containerd's exit status (128+N for a signal).
                exit_status: cri.exit_code as u32,
                exited_at: cri.finished_at,
            };
            let tracked = self.registry.remove(&key);
            self.exit(exit, tracked, Seen::Cri(Box::new(cri)), now);
        }
    }

    /// Brings the registry in line with what the node knows after a (re)connect: containerd's task
    /// list (running tasks to track, stopped ones not yet deleted) and the CRI plugin's exited
    /// containers (kept until kubelet removes them). An exit found either way that has no report
    /// yet gets one, marked recovered; one already reported has the same id and is skipped.
    fn reconcile(
        &mut self,
        tasks: Vec<(String, TaskState)>,
        cri_exits: Vec<CriExit>,
        reconnect: bool,
    ) {
        let mut listed = HashSet::new();
        let now = Instant::now();
        for (namespace, task) in tasks {
            let key = Key {
                namespace,
                id: task.container_id,
            };
            listed.insert(key.clone());
            match task.exited {
                Some((exit_status, exited_at)) => {
                    let tracked = self.registry.remove(&key);
                    let exit = ExitEvent {
                        namespace: key.namespace,
                        container_id: key.id,
                        pid: task.pid,
                        exit_status,
                        exited_at,
                    };
                    self.exit(exit, tracked, Seen::TaskList, now);
                }
                None => {
                    if self.registry.get(&key).is_none_or(|t| t.pid != task.pid) {
                        let started = process_start_time(task.pid);
                        self.track(key, task.pid, None, started, None);
                    }
                }
            }
        }
        self.recover_cri(cri_exits, &mut listed, now);
        // Tracked before (by this process, or by the previous one: the journal) and now gone from
        // containerd and the CRI alike: it exited unseen and was deleted. Its exit is in the
        // pinned flight recorder, which kept recording.
        let vanished: Vec<Key> = self
            .journaled
            .keys()
            .filter(|k| !listed.contains(*k))
            .cloned()
            .collect();
        if reconnect {
            // Across a containerd restart, containerd itself restores its tasks and their exits
            // (the task list and the events above); a tracked container it no longer knows was
            // deleted before it ever ran (runc's created task), or its exit is lost with
            // containerd's state. Say so; the recorder cannot tell a real exit from a killed
            // set-up here.
            let lost: Vec<Key> = self
                .registry
                .keys()
                .filter(|k| !listed.contains(*k))
                .cloned()
                .collect();
            for key in lost {
                warn!(namespace = %key.namespace, container = %key.id, "container gone from containerd while disconnected; its exit status is lost");
                self.shared.metrics.collection_error("exit_lost");
                self.registry.remove(&key);
            }
        }
        // Not reported yet: containerd may still publish the exit (a restarted containerd
        // restores its tasks and their exits), or the CRI mark it exited. The second look decides.
        for key in vanished {
            let tracked = self.registry.remove(&key);
            let entry = self.journaled.remove(&key);
            self.vanishing.insert(key, (tracked, entry));
        }
        // Still running: tracked again from the task list, so the journal entry has done its job
        // (the new tracking writes a fresh one).
        self.journaled.clear();
    }
}

/// When a process started, from `/proc/<pid>/stat` (for tasks found running at start-up). The
/// start is in clock ticks since boot; converted with the boot clock's offset to the wall clock
/// (not `btime`, which is whole seconds), so it compares with the recorder's load time exactly.
fn process_start_time(pid: u32) -> Option<DateTime<Utc>> {
    let stat = procfs::process::Process::new(pid as i32)
        .ok()?
        .stat()
        .ok()?;
    let ticks = procfs::ticks_per_second();
    let boot_ns = u64::try_from(stat.starttime as u128 * 1_000_000_000 / ticks as u128).ok()?;
    Some(crate::recorder::boot_to_wall()(boot_ns))
}
