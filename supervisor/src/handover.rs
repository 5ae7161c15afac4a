//! The mechanics of a binary upgrade (SIGUSR2), both sides of it:
//! starting the new binary with the listening sockets it inherits, and the
//! status pipe through which the new supervisor tells the old one how its
//! start went. What the supervisors *do* about it lives in
//! `lifecycle::upgrade`.
//!
//! The status pipe carries at most one line, new -> old:
//! - `ready PID\n`: every worker of the new supervisor's first generation
//!   accepts; the old one may drain.
//! - `failed REASON\n`: the new one could not start (and exits).
//!
//! End of file without `ready` means the new supervisor failed, whatever it
//! wrote; its exit status (from the old one's reap) says the rest.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use nix::fcntl::OFlag;
use nix::unistd::Pid;

use crate::inherited::{self, INHERITED_FDS_ENV, UPGRADE_FD_ENV};

/// Longest status line read; longer reasons are cut.
const MAX_STATUS: usize = 4096;

/// How to start "the binary now at our path, with our command line":
/// captured at start-up, because after the file is replaced
/// `/proc/self/exe` names the old, deleted inode.
#[derive(Debug, Clone)]
pub struct ExecPlan {
    /// The path we were started from, as resolved at start-up.
    pub exe: Option<PathBuf>,
    /// Why `exe` is unknown, for the log of a later SIGUSR2.
    pub exe_error: Option<String>,
    /// Our argv[0], kept so `ps` and scripts see the same name.
    pub arg0: OsString,
    /// Our arguments after argv[0], replayed unchanged.
    pub args: Vec<OsString>,
}

impl ExecPlan {
    /// Capture the current process's path and command line.
    pub fn capture() -> ExecPlan {
        let mut argv = std::env::args_os();
        let arg0 = argv.next().unwrap_or_else(|| "oxrsyncd".into());
        let (exe, exe_error) = match std::env::current_exe() {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e.to_string())),
        };
        ExecPlan {
            exe,
            exe_error,
            arg0,
            args: argv.collect(),
        }
    }
}

/// The new binary could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the path this supervisor was started from is unknown ({0})")]
    NoPath(String),
    #[error("cannot create the status pipe: {0}")]
    Pipe(#[source] nix::Error),
    #[error("cannot execute {path}: {source}")]
    Exec { path: PathBuf, source: io::Error },
}

/// A new supervisor just started, as its parent (the old one) holds it.
pub struct Started {
    pub pid: Pid,
    /// Read end of the status pipe (non-blocking, close-on-exec).
    pub status: OwnedFd,
}

/// Fork and exec `plan` with `sockets` (role, fd) inherited under their own
/// numbers, named in the environment, plus the status pipe's write end.
pub fn start_new(plan: &ExecPlan, sockets: &[(&str, BorrowedFd<'_>)]) -> Result<Started, StartError> {
    let exe = plan
        .exe
        .clone()
        .ok_or_else(|| StartError::NoPath(plan.exe_error.clone().unwrap_or_default()))?;
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(StartError::Pipe)?;
    // The child writes one line and exits or keeps it open: blocking is fine there.
    nix::fcntl::fcntl(write_end.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::empty())).map_err(StartError::Pipe)?;

    let named: Vec<(&str, RawFd)> = sockets.iter().map(|(name, fd)| (*name, fd.as_raw_fd())).collect();
    let mut keep: Vec<RawFd> = named.iter().map(|(_, fd)| *fd).collect();
    keep.push(write_end.as_raw_fd());

    let mut command = Command::new(&exe);
    command
        .arg0(&plan.arg0)
        .args(&plan.args)
        .env(INHERITED_FDS_ENV, inherited::format(&named))
        .env(UPGRADE_FD_ENV, write_end.as_raw_fd().to_string());
    // SAFETY: the closure runs in the forked child before exec and only
    // calls fcntl (async-signal-safe) on descriptors the parent keeps open
    // across the spawn. Clearing FD_CLOEXEC keeps their numbers, so the
    // environment computed above stays true.
    unsafe {
        command.pre_exec(move || {
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    // An exec failure (missing, not executable, bad format) is reported by
    // spawn itself, and std reaps that child.
    let child = command.spawn().map_err(|source| StartError::Exec { path: exe, source })?;
    drop(write_end);
    Ok(Started {
        pid: Pid::from_raw(child.id() as i32),
        status: read_end,
    })
}

/// What the status pipe said so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Nothing complete yet.
    Pending,
    /// `ready PID`.
    Ready(Pid),
    /// `failed REASON`, or a line that is neither.
    Failed(String),
    /// End of file before a complete line.
    Closed,
}

/// The old side's reader: accumulates until a line or end of file.
#[derive(Debug, Default)]
pub struct StatusReader {
    /// Bytes read so far (one line is all the protocol sends).
    buf: Vec<u8>,
}

impl StatusReader {
    /// Read what is available from the non-blocking `fd`.
    pub fn poll(&mut self, fd: BorrowedFd<'_>) -> Status {
        let mut chunk = [0u8; 512];
        loop {
            match nix::unistd::read(fd.as_raw_fd(), &mut chunk) {
                Ok(0) => return self.parse().unwrap_or(Status::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if let Some(status) = self.parse() {
                        return status;
                    }
                    if self.buf.len() > MAX_STATUS {
                        return Status::Failed("status line too long".into());
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Status::Pending,
            }
        }
    }

    fn parse(&self) -> Option<Status> {
        let end = self.buf.iter().position(|b| *b == b'\n')?;
        Some(parse_line(&String::from_utf8_lossy(&self.buf[..end])))
    }
}

fn parse_line(line: &str) -> Status {
    if let Some(pid) = line.strip_prefix("ready ").and_then(|p| p.trim().parse::<i32>().ok()) {
        return Status::Ready(Pid::from_raw(pid));
    }
    match line.strip_prefix("failed ") {
        Some(reason) => Status::Failed(reason.to_string()),
        None => Status::Failed(format!("unexpected status line {line:?}")),
    }
}

/// The new side: the write end of the status pipe, used once.
pub struct Reporter {
    /// Write end inherited from the old supervisor (close-on-exec here).
    pipe: std::fs::File,
}

impl Reporter {
    pub fn new(pipe: OwnedFd) -> Reporter {
        Reporter { pipe: pipe.into() }
    }

    /// Every worker of the first generation accepts: the old may drain.
    pub fn ready(mut self) -> io::Result<()> {
        writeln!(self.pipe, "ready {}", std::process::id())
    }

    /// Start-up failed; the caller exits next.
    pub fn failed(mut self, why: &str) {
        let one_line = why.replace('\n', " ");
        let _ = writeln!(self.pipe, "failed {one_line}");
    }
}

/// Read a whole stream (tests).
#[cfg(test)]
fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).unwrap();
    s
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_line("ready 42"), Status::Ready(Pid::from_raw(42)));
        assert_eq!(parse_line("failed bad config"), Status::Failed("bad config".into()));
        assert!(matches!(parse_line("hello"), Status::Failed(_)));
    }

    #[test]
    fn reader_waits_for_a_whole_line_and_reports_eof() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).unwrap();
        let mut reader = StatusReader::default();
        assert_eq!(reader.poll(r.as_fd()), Status::Pending);
        let mut w = std::fs::File::from(w);
        w.write_all(b"rea").unwrap();
        assert_eq!(reader.poll(r.as_fd()), Status::Pending);
        w.write_all(b"dy 7\n").unwrap();
        assert_eq!(reader.poll(r.as_fd()), Status::Ready(Pid::from_raw(7)));

        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).unwrap();
        drop(w);
        assert_eq!(StatusReader::default().poll(r.as_fd()), Status::Closed);
    }

    #[test]
    fn reporter_writes_one_line() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        Reporter::new(w).failed("cannot bind\nport");
        assert_eq!(read_all(r), "failed cannot bind port\n");
    }

    #[test]
    fn a_missing_binary_is_an_exec_error() {
        let plan = ExecPlan {
            exe: Some(PathBuf::from("/nonexistent/oxrsyncd")),
            exe_error: None,
            arg0: "oxrsyncd".into(),
            args: Vec::new(),
        };
        assert!(matches!(start_new(&plan, &[]), Err(StartError::Exec { .. })));
    }
}
