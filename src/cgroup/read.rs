//! The only file here that touches the filesystem for cgroup figures: open a cgroup directory once,
//! then `openat` + `read` each file into one stack buffer. Per file that is four syscalls (openat,
//! read, the read that returns 0, close) and no heap allocation, which matters in the 5-25 ms
//! between a container's exit and the deletion of its cgroup.
//!
//! Error policy: a missing file is an absent figure (`None`, nothing recorded), because which files
//! exist depends on the kernel version and on the controllers enabled. Any other failure to read
//! or parse one file is recorded as a problem and that figure is `None`; the other figures are
//! still read.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::Mode;

use super::parse::ParseError;
use super::Error;

/// Larger than every file the readers use (v2 `cpu.stat` is about 200 bytes on 6.18).
const BUF_LEN: usize = 4096;

/// The cgroup is being removed: a file that was there a moment ago, or whose directory went away
/// between `openat` and `read` (kernfs answers ENODEV then).
fn vanished(errno: Errno) -> bool {
    matches!(errno, Errno::ENOENT | Errno::ENODEV)
}

/// An open cgroup directory.
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens `path` as a directory handle; `Err(path)` inside when it does not exist.
    pub fn open(path: PathBuf) -> Result<Result<Dir, PathBuf>, Error> {
        match open(
            path.as_path(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Ok(Dir { fd, path })),
            Err(e) if vanished(e) || e == Errno::ENOTDIR => Ok(Err(path)),
            Err(e) => Err(Error::Read {
                path,
                source: io::Error::from(e),
            }),
        }
    }
}

/// Reads files of cgroup directories, collecting per-file problems.
pub struct Reader {
    buf: [u8; BUF_LEN],
    pub problems: Vec<Error>,
}

impl Reader {
    pub fn new() -> Self {
        Reader {
            buf: [0; BUF_LEN],
            problems: Vec::new(),
        }
    }

    /// Reads `dir/name` and hands its text to `parse`. `None` when the directory or file is
    /// missing, or on a problem (recorded).
    pub fn file<T>(
        &mut self,
        dir: Option<&Dir>,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Option<T> {
        let dir = dir?;
        let text = match read_into(dir, name, &mut self.buf) {
            Ok(Some(text)) => text,
            Ok(None) => return None,
            Err(e) => {
                self.problems.push(e);
                return None;
            }
        };
        match parse(text) {
            Ok(value) => Some(value),
            Err(source) => {
                self.problems.push(Error::Parse {
                    path: dir.path.join(name),
                    source,
                });
                None
            }
        }
    }
}

fn read_into<'b>(dir: &Dir, name: &str, buf: &'b mut [u8]) -> Result<Option<&'b str>, Error> {
    let read_error = |source: io::Error| Error::Read {
        path: dir.path.join(name),
        source,
    };
    let fd = match openat(
        &dir.fd,
        name,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) if vanished(e) => return Ok(None),
        Err(e) => return Err(read_error(io::Error::from(e))),
    };
    let mut file = File::from(fd);
    let mut len = 0;
    loop {
        if len == buf.len() {
            let source = ParseError::TooLarge { max: buf.len() };
            return Err(Error::Parse {
                path: dir.path.join(name),
                source,
            });
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if e.raw_os_error()
                    .is_some_and(|c| vanished(Errno::from_raw(c))) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(read_error(e)),
        }
    }
    match std::str::from_utf8(&buf[..len]) {
        Ok(text) => Ok(Some(text)),
        Err(_) => Err(Error::Parse {
            path: dir.path.join(name),
            source: ParseError::NotUtf8,
        }),
    }
}
