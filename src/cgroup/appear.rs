//! The id of a cgroup that lives for milliseconds: runc makes a container's cgroup, runs
//! `runc init` in it and removes it again when the start fails, before anyone says the start
//! failed. The flight recorder keys what it saw by the cgroup's id (the inode of its unified
//! directory), so that id must be read while the directory exists: an inotify watch on the
//! parent wakes this thread at the `mkdir`, and the `stat` follows within microseconds.
//!
//! Blocking (one `poll` with a deadline): run it on a blocking thread.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The inode of `dir` once it exists: at once when it is there already, else when it is made
/// within `timeout`. `Ok(None)` when it was not made in time (or was gone again before the
/// `stat`).
pub fn wait_for_dir_id(dir: &Path, timeout: Duration) -> io::Result<Option<u64>> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Ok(None);
    };
    // SAFETY: inotify_init1 takes flags only; a non-negative return is a new fd we own.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by inotify_init1 and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let parent_c = CString::new(parent.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a valid inotify fd and a NUL-terminated path that outlives the call.
    let wd = unsafe {
        libc::inotify_add_watch(
            fd.as_raw_fd(),
            parent_c.as_ptr(),
            libc::IN_CREATE | libc::IN_ONLYDIR,
        )
    };
    if wd < 0 {
        let e = io::Error::last_os_error();
        // No parent (the pod's cgroup is not there): nothing will appear below it.
        return match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => Ok(None),
            _ => Err(e),
        };
    }
    // After the watch is set, so a mkdir between the check and the watch is not missed.
    if let Ok(m) = std::fs::metadata(dir) {
        return Ok(Some(m.ino()));
    }
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(None);
        }
        // SAFETY: reading into a buffer we own, of the length we pass.
        let len = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if len < 0 {
            let e = io::Error::last_os_error();
            if matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            ) {
                continue;
            }
            return Err(e);
        }
        if created_names(&buf[..len as usize]).any(|n| n == name.as_bytes()) {
            // Gone again already: too late for its id.
            return Ok(std::fs::metadata(dir).ok().map(|m| m.ino()));
        }
    }
}

/// The names in a buffer of `struct inotify_event`s.
fn created_names(mut buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
    std::iter::from_fn(move || {
        if buf.len() < HEADER {
            return None;
        }
        // `len` (the name's padded length) is the header's last u32.
        let len_bytes: [u8; 4] = buf[HEADER - 4..HEADER].try_into().ok()?;
        let len = u32::from_ne_bytes(len_bytes) as usize;
        let name = buf.get(HEADER..HEADER + len)?;
        buf = &buf[HEADER + len..];
        let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
        Some(&name[..end])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_made_while_waiting_is_found_with_its_inode() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("c0ffee");
        let made = dir.clone();
        let maker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::create_dir(&made).unwrap();
            std::fs::metadata(&made).unwrap().ino()
        });
        let found = wait_for_dir_id(&dir, Duration::from_secs(5)).unwrap();
        assert_eq!(found, Some(maker.join().unwrap()));
    }

    #[test]
    fn nothing_made_in_time_is_none() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("never");
        let found = wait_for_dir_id(&dir, Duration::from_millis(100)).unwrap();
        assert_eq!(found, None);
        assert_eq!(
            wait_for_dir_id(&parent.path().join("no/parent"), Duration::from_millis(10)).unwrap(),
            None
        );
    }
}
