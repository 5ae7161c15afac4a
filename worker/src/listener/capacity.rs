//! Counting what a worker has in flight: the daemon-wide session table
//! claim of each connection, and the per-worker count draining waits on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use oxrsyncd_shared::session_table::SessionTable;

/// Connections (handshakes and sessions) in flight in this worker.
#[derive(Clone, Default)]
pub(crate) struct ActiveSessions {
    inner: Arc<ActiveInner>,
}

#[derive(Default)]
struct ActiveInner {
    count: AtomicUsize,
    /// Woken when the count drops, for drain and the blocking capacity wait.
    lock: Mutex<()>,
    changed: Condvar,
}

impl ActiveSessions {
    /// Count one connection until the returned guard drops.
    pub(crate) fn enter(&self) -> ActiveGuard {
        self.inner.count.fetch_add(1, Ordering::AcqRel);
        ActiveGuard { inner: self.inner.clone() }
    }

    /// Connections in flight now.
    pub(crate) fn count(&self) -> usize {
        self.inner.count.load(Ordering::Acquire)
    }

    /// Block until fewer than `limit` are in flight, or `timeout` passes.
    pub(crate) fn wait_below(&self, limit: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        while self.count() >= limit {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = self
                .inner
                .changed
                .wait_timeout(guard, left.min(Duration::from_millis(100)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

/// One counted connection.
pub(crate) struct ActiveGuard {
    inner: Arc<ActiveInner>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.inner.count.fetch_sub(1, Ordering::AcqRel);
        let _g = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.changed.notify_all();
    }
}

/// A connection's claim on the daemon-wide `max sessions`.
pub(crate) struct TableClaim {
    table: Arc<SessionTable>,
    row: usize,
}

impl TableClaim {
    /// Claim, unless `max` (0 = unlimited) sessions are already open daemon-wide.
    pub(crate) fn try_new(table: &Arc<SessionTable>, row: usize, max: u32) -> Option<TableClaim> {
        table.try_claim(row, max).then(|| TableClaim { table: table.clone(), row })
    }
}

impl Drop for TableClaim {
    fn drop(&mut self) {
        self.table.release(self.row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_and_wake_waiters() {
        let a = ActiveSessions::default();
        let g1 = a.enter();
        let g2 = a.enter();
        assert_eq!(a.count(), 2);
        assert!(!a.wait_below(2, Duration::from_millis(20)));
        let a2 = a.clone();
        let t = std::thread::spawn(move || a2.wait_below(2, Duration::from_secs(5)));
        drop(g1);
        assert!(t.join().unwrap());
        drop(g2);
        assert_eq!(a.count(), 0);
    }

    #[test]
    fn table_claims_release_on_drop() {
        let table = Arc::new(SessionTable::create().unwrap());
        let c = TableClaim::try_new(&table, 3, 1).unwrap();
        assert!(TableClaim::try_new(&table, 4, 1).is_none());
        drop(c);
        assert!(TableClaim::try_new(&table, 4, 1).is_some());
    }
}
