//! The drain signal: set once when the supervisor (or SIGTERM) asks this
//! worker to stop accepting. Both accept front ends watch it: the tokio one
//! through a watch channel, the blocking one through a self-pipe it polls.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Shared, cloneable drain state.
#[derive(Clone)]
pub(crate) struct DrainSignal {
    inner: Arc<DrainInner>,
}

struct DrainInner {
    /// Whether draining has begun.
    draining: AtomicBool,
    /// How long in-flight sessions get before the worker exits anyway.
    timeout_ms: AtomicU64,
    /// Read end polled by the blocking accept loop; readable once draining.
    wake_read: OwnedFd,
    /// Written once when draining starts.
    wake_write: OwnedFd,
    #[cfg(feature = "async")]
    /// Wakes the tokio accept loop.
    watch: tokio::sync::watch::Sender<bool>,
}

impl DrainSignal {
    pub(crate) fn new() -> std::io::Result<Self> {
        let (wake_read, wake_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        Ok(DrainSignal {
            inner: Arc::new(DrainInner {
                draining: AtomicBool::new(false),
                timeout_ms: AtomicU64::new(0),
                wake_read,
                wake_write,
                #[cfg(feature = "async")]
                watch: tokio::sync::watch::channel(false).0,
            }),
        })
    }

    /// Begin draining (idempotent): in-flight sessions get `timeout`.
    pub(crate) fn start(&self, timeout: Duration) {
        self.inner.timeout_ms.store(timeout.as_millis() as u64, Ordering::Release);
        if !self.inner.draining.swap(true, Ordering::AcqRel) {
            let _ = nix::unistd::write(&self.inner.wake_write, b"d");
            #[cfg(feature = "async")]
            self.inner.watch.send_replace(true);
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }

    /// The grace period given with the drain request.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.timeout_ms.load(Ordering::Acquire))
    }

    /// The descriptor the blocking loop polls.
    pub(crate) fn wake_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.wake_read.as_fd()
    }

    /// A receiver for the tokio loop.
    #[cfg(feature = "async")]
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.watch.subscribe()
    }
}
