//! What each process's fds refer to, learnt from the records seen so far, so that the flight
//! recorder can print fds like `strace -y`. It reads records; it does not print arguments.

use std::collections::{BTreeMap, HashMap};

use super::files::{AT_FDCWD, F_DUPFD, F_DUPFD_CLOEXEC, F_SETFD, O_CLOEXEC};
use super::paths::path_label;
use super::processes::CLONE_THREAD;
use super::sockets::{domain_name, sockaddr};
use super::{errno_of, int};
use crate::bpf::raw::{Arch, RawSyscall};
use crate::bpf::syscalls;

/// What each process's fds refer to, learnt from the records seen so far (opens, dups, sockets,
/// closes, forks, execs), so the flight recorder can print `flock(3</run/app.lock>, ...)` like
/// `strace -y`. Only what the records show is known: an fd opened before the oldest record, or
/// inherited from runc (stdio), stays a bare number.
#[derive(Debug, Default)]
pub(super) struct FdTracker {
    /// pid (thread group) -> fd -> (label, close-on-exec).
    tables: HashMap<u32, BTreeMap<i32, (String, bool)>>,
}

impl FdTracker {
    pub(super) fn label(&self, pid: u32, fd: i32) -> Option<&str> {
        self.tables
            .get(&pid)
            .and_then(|t| t.get(&fd))
            .map(|(l, _)| l.as_str())
    }

    fn set(&mut self, pid: u32, fd: i32, label: String, cloexec: bool) {
        if fd >= 0 {
            self.tables
                .entry(pid)
                .or_default()
                .insert(fd, (label, cloexec));
        }
    }

    fn dup(&mut self, pid: u32, from: i32, to: i32, cloexec: bool) {
        match self.label(pid, from).map(str::to_string) {
            Some(label) => self.set(pid, to, label, cloexec),
            None => self.close(pid, to),
        }
    }

    fn close(&mut self, pid: u32, fd: i32) {
        if let Some(t) = self.tables.get_mut(&pid) {
            t.remove(&fd);
        }
    }

    /// Updates the tables with the outcome of one syscall.
    pub(super) fn observe(&mut self, arch: Arch, raw: &RawSyscall) {
        let Some(name) = syscalls::name(arch, raw.nr) else {
            return;
        };
        let a = &raw.args;
        let pid = raw.pid;
        let ok = raw.ret >= 0;
        let ret = i32::try_from(raw.ret).unwrap_or(-1);
        match name {
            "open" | "openat" | "openat2" | "creat" if ok => {
                let (dirfd, flags) = match name {
                    "open" => (AT_FDCWD, a[1] as u32),
                    "openat" => (int(a[0]), a[2] as u32),
                    "openat2" => (int(a[0]), 0),
                    _ => (AT_FDCWD, 0),
                };
                let path = path_label(raw);
                let label = match self.label(pid, dirfd) {
                    Some(dir) if !path.starts_with('/') && dir.starts_with('/') => {
                        format!("{}/{path}", dir.trim_end_matches('/'))
                    }
                    _ => path,
                };
                self.set(pid, ret, label, flags & O_CLOEXEC != 0);
            }
            // Linux releases the fd whatever close returns (EINTR and EIO included).
            "close" => self.close(pid, int(a[0])),
            "close_range" if ok => {
                let (first, last) = (a[0] as u32, a[1] as u32);
                if let Some(t) = self.tables.get_mut(&pid) {
                    let in_range =
                        |fd: &i32| u32::try_from(*fd).is_ok_and(|f| (first..=last).contains(&f));
                    if a[2] & 4 != 0 {
                        // CLOSE_RANGE_CLOEXEC marks instead of closing.
                        t.iter_mut()
                            .filter(|(fd, _)| in_range(fd))
                            .for_each(|(_, e)| e.1 = true);
                    } else {
                        t.retain(|fd, _| !in_range(fd));
                    }
                }
            }
            "dup" if ok => self.dup(pid, int(a[0]), ret, false),
            "dup2" if ok => self.dup(pid, int(a[0]), ret, false),
            "dup3" if ok => self.dup(pid, int(a[0]), ret, a[2] as u32 & O_CLOEXEC != 0),
            "fcntl" if ok => match int(a[1]) {
                F_DUPFD => self.dup(pid, int(a[0]), ret, false),
                F_DUPFD_CLOEXEC => self.dup(pid, int(a[0]), ret, true),
                F_SETFD => {
                    if let Some(e) = self
                        .tables
                        .get_mut(&pid)
                        .and_then(|t| t.get_mut(&int(a[0])))
                    {
                        e.1 = a[2] & 1 != 0;
                    }
                }
                _ => {}
            },
            "socket" if ok => {
                let domain = domain_name(int(a[0])).unwrap_or("?");
                self.set(
                    pid,
                    ret,
                    format!("socket:{domain}"),
                    a[1] as u32 & O_CLOEXEC != 0,
                );
            }
            "accept" | "accept4" if ok => {
                let cloexec = name == "accept4" && a[3] as u32 & O_CLOEXEC != 0;
                self.set(pid, ret, "socket:accepted".to_string(), cloexec);
            }
            // A bound or connected socket reads best by its address; a non-blocking connect in
            // progress (EINPROGRESS) counts.
            "bind" | "connect"
                if (ok || errno_of(raw.ret) == Some(115)) && !raw.data.is_empty() =>
            {
                let fd = int(a[0]);
                if let Some(e) = self.tables.get_mut(&pid).and_then(|t| t.get_mut(&fd)) {
                    e.0 = format!("socket:{}", sockaddr(&raw.data));
                }
            }
            "epoll_create" | "epoll_create1" if ok => {
                let cloexec = name == "epoll_create1" && a[0] as u32 & O_CLOEXEC != 0;
                self.set(pid, ret, "anon_inode:[eventpoll]".to_string(), cloexec);
            }
            "eventfd" | "eventfd2" if ok => {
                let cloexec = name == "eventfd2" && a[1] as u32 & O_CLOEXEC != 0;
                self.set(pid, ret, "anon_inode:[eventfd]".to_string(), cloexec);
            }
            "timerfd_create" if ok => {
                let cloexec = a[1] as u32 & O_CLOEXEC != 0;
                self.set(pid, ret, "anon_inode:[timerfd]".to_string(), cloexec);
            }
            "signalfd4" if ok && int(a[0]) == -1 => {
                let cloexec = a[3] as u32 & O_CLOEXEC != 0;
                self.set(pid, ret, "anon_inode:[signalfd]".to_string(), cloexec);
            }
            "inotify_init" | "inotify_init1" if ok => {
                let cloexec = name == "inotify_init1" && a[0] as u32 & O_CLOEXEC != 0;
                self.set(pid, ret, "anon_inode:inotify".to_string(), cloexec);
            }
            "memfd_create" if ok => {
                self.set(pid, ret, "memfd".to_string(), a[1] & 1 != 0);
            }
            "pidfd_open" if ok => self.set(pid, ret, "anon_inode:[pidfd]".to_string(), true),
            "execve" | "execveat" if raw.ret == 0 => {
                if let Some(t) = self.tables.get_mut(&pid) {
                    t.retain(|_, (_, cloexec)| !*cloexec);
                }
            }
            // A new process starts with a copy of its parent's fds (threads share the table,
            // and a thread's tid is never looked up as a pid).
            "clone" | "clone3" | "fork" | "vfork" if raw.ret > 0 => {
                if name == "clone" && a[0] & CLONE_THREAD != 0 {
                    return;
                }
                let child = u32::try_from(raw.ret).unwrap_or(0);
                if let Some(t) = self.tables.get(&pid).cloned() {
                    self.tables.insert(child, t);
                }
            }
            _ => {}
        }
    }
}
#[cfg(test)]
mod tests {
    use crate::bpf::decode::test_support::*;
    use crate::bpf::decode::{first_failures, flight_recorder};

    // --- fd annotations ------------------------------------------------------------------------------

    #[test]
    fn first_failures_see_the_fds_opened_before_them_in_ring_order() {
        let mut raw = ring(vec![
            rec(X86, "openat", &[FDCWD, 1, 0o100, 0o666], 3, b"/data/lock"),
            rec(X86, "flock", &[3, 2 | 4], errno_ret("EAGAIN"), b""),
        ]);
        // The open ran on a CPU whose tick clock was read later: by time it would come second.
        raw.ring[0].boot_ns = 5_000;
        raw.first_failures = vec![raw.ring[1].clone()];
        let evs = first_failures(X86, &raw, wall);
        assert_eq!(evs[0].args, ["3</data/lock>", "LOCK_EX|LOCK_NB"]);
    }

    #[test]
    fn flock_on_an_opened_file_is_annotated_with_its_path() {
        for arch in [X86, ARM] {
            let raw = ring(vec![
                rec(
                    arch,
                    "openat",
                    &[FDCWD, 1, 0o100 | 0o2000000, 0o666],
                    3,
                    b"/dev/shm/mongod.lock",
                ),
                rec(arch, "flock", &[3, 2 | 4], errno_ret("EAGAIN"), b""),
                rec(arch, "close", &[3], 0, b""),
                rec(arch, "flock", &[3, 8], errno_ret("EBADF"), b""),
            ]);
            let evs = flight_recorder(arch, &raw, wall);
            assert_eq!(
                evs[1].args,
                ["3</dev/shm/mongod.lock>", "LOCK_EX|LOCK_NB"],
                "{arch:?}"
            );
            assert_eq!(evs[1].errno.as_deref(), Some("EAGAIN"));
            assert_eq!(evs[2].args, ["3</dev/shm/mongod.lock>"]);
            assert_eq!(evs[3].args[0], "3", "closed fds lose their path");
        }
    }

    #[test]
    fn fd_annotations_follow_dup_fork_exec_and_sockets() {
        let mut parent = vec![
            rec(X86, "openat", &[FDCWD, 1, 0o200000, 0], 4, b"/srv"),
            rec(X86, "openat", &[4, 1, 0, 0], 5, b"data/db.sqlite"),
            rec(X86, "dup2", &[5, 9], 9, b""),
            rec(X86, "openat", &[FDCWD, 1, 0o2000000, 0], 6, b"/etc/secret"),
            rec(X86, "socket", &[2, 1, 0], 7, b""),
            rec(
                X86,
                "connect",
                &[7, 0x1000, 16],
                0,
                &sockaddr_in([10, 1, 2, 3], 5432),
            ),
            rec(X86, "clone", &[0x1200011, 0, 0, 0, 0], 5000, b""),
        ];
        let mut child = vec![
            rec(X86, "write", &[9, 0x1000, 1], 1, b""),
            rec(X86, "execve", &[1, 2, 3], 0, b"/bin/sh"),
            rec(X86, "read", &[6, 0x1000, 1], errno_ret("EBADF"), b""),
            rec(X86, "write", &[7, 0x1000, 1], errno_ret("EPIPE"), b""),
        ];
        for r in &mut child {
            r.pid = 5000;
            r.tid = 5000;
        }
        parent.append(&mut child);
        let evs = flight_recorder(X86, &ring(parent), wall);
        assert_eq!(evs[1].args[0], "4</srv>");
        assert_eq!(
            evs[7].args[0], "9</srv/data/db.sqlite>",
            "fork copies, dup2 copies, dirfd joins"
        );
        assert_eq!(evs[9].args[0], "6", "O_CLOEXEC fds are gone after exec");
        assert_eq!(evs[10].args[0], "7<socket:10.1.2.3:5432>");
    }

    #[test]
    fn flight_recorder_is_in_time_order_and_first_failures_are_annotated() {
        let mut raw = ring(vec![
            rec(ARM, "openat", &[FDCWD, 1, 0, 0], 3, b"/var/lib/app/lock"),
            rec(ARM, "fcntl", &[3, 6, 0x7ffc], errno_ret("EAGAIN"), b""),
        ]);
        raw.first_failures = vec![raw.ring[1].clone()];
        raw.ring.swap(0, 1);
        let evs = flight_recorder(ARM, &raw, wall);
        assert_eq!(evs[0].syscall, "openat");
        assert_eq!(evs[1].args[0], "3</var/lib/app/lock>");
        let first = first_failures(ARM, &raw, wall);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].args, ["3</var/lib/app/lock>", "F_SETLK", "0x7ffc"]);
        // Without the ring, the failure still decodes, without a path.
        raw.ring.clear();
        assert_eq!(first_failures(ARM, &raw, wall)[0].args[0], "3");
    }
}
