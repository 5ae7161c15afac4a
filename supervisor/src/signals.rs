//! Signal intake for the single-threaded supervisor: each signal sets a
//! flag and writes to a self-pipe the event loop polls. No handler does
//! more than that (signal-hook's async-signal-safe primitives).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::fcntl::OFlag;
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR2};

/// Flags for the signals the supervisor acts on.
pub struct Signals {
    pub child: Arc<AtomicBool>,
    pub hangup: Arc<AtomicBool>,
    pub terminate: Arc<AtomicBool>,
    /// SIGUSR2: start the binary now at our path as the next supervisor.
    pub upgrade: Arc<AtomicBool>,
    /// Read end of the self-pipe; readable after any of the signals.
    wake_read: OwnedFd,
    /// Kept so the registered handlers' pipe stays open.
    _wake_write: OwnedFd,
}

impl Signals {
    /// Register handlers for SIGCHLD, SIGHUP, SIGTERM, SIGINT and SIGUSR2.
    pub fn register() -> io::Result<Signals> {
        let (wake_read, wake_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let child = Arc::new(AtomicBool::new(false));
        let hangup = Arc::new(AtomicBool::new(false));
        let terminate = Arc::new(AtomicBool::new(false));
        let upgrade = Arc::new(AtomicBool::new(false));
        for (signal, flag) in [
            (SIGCHLD, &child),
            (SIGHUP, &hangup),
            (SIGTERM, &terminate),
            (SIGINT, &terminate),
            (SIGUSR2, &upgrade),
        ] {
            signal_hook::flag::register(signal, flag.clone())?;
            signal_hook::low_level::pipe::register_raw(signal, std::os::fd::AsRawFd::as_raw_fd(&wake_write))?;
        }
        Ok(Signals {
            child,
            hangup,
            terminate,
            upgrade,
            wake_read,
            _wake_write: wake_write,
        })
    }

    /// The descriptor to poll.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake_read.as_fd()
    }

    /// Empty the self-pipe after a wake-up.
    pub fn drain_wakeups(&self) {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&self.wake_read), &mut buf), Ok(n) if n > 0) {}
    }

    /// Take (and clear) a flag.
    pub fn take(flag: &AtomicBool) -> bool {
        flag.swap(false, Ordering::AcqRel)
    }
}
