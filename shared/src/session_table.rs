//! The daemon-wide session count, shared by every worker process.
//!
//! `max sessions` caps concurrent sessions across all workers, so the count
//! cannot live in one process. The supervisor creates a small memfd of
//! per-process counters and hands it to every worker it starts. A worker
//! only ever changes its own row, so when a worker dies (even by `kill -9`)
//! the supervisor zeroes that row and no session is leaked.
//!
//! Claiming is "increment my row, then sum all rows; undo if over the cap".
//! Two racing claims can both be refused near the cap, but the cap itself is
//! never exceeded.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::shm::SharedMemory;

/// Rows in the table: an upper bound on live worker processes, counting
/// draining generations.
pub const TABLE_ROWS: usize = 4096;

const TABLE_BYTES: usize = TABLE_ROWS * std::mem::size_of::<u32>();

/// A mapping of the shared counters.
pub struct SessionTable {
    /// `TABLE_ROWS` counters.
    memory: SharedMemory,
}

impl SessionTable {
    /// Create a fresh, zeroed table (supervisor).
    pub fn create() -> io::Result<Self> {
        Ok(SessionTable {
            memory: SharedMemory::create(c"oxrsyncd-sessions", TABLE_BYTES)?,
        })
    }

    /// Map a table received from the supervisor (worker).
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        Ok(SessionTable {
            memory: SharedMemory::from_fd(fd, TABLE_BYTES, "session table")?,
        })
    }

    /// The memfd, to pass to a worker.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.memory.fd()
    }

    fn row(&self, index: usize) -> &AtomicU32 {
        assert!(index < TABLE_ROWS, "session table row out of range");
        // SAFETY: index is in bounds of the mapping, which lives as long as
        // self and holds only AtomicU32s (any bit pattern is valid).
        unsafe { &*self.memory.base().as_ptr().cast::<AtomicU32>().add(index) }
    }

    /// Sessions open across all workers.
    pub fn total(&self) -> u32 {
        (0..TABLE_ROWS).map(|i| self.row(i).load(Ordering::Acquire)).sum()
    }

    /// Count one session on row `index` unless that would exceed `max_total`
    /// (0 = no cap). Returns whether the session may proceed.
    pub fn try_claim(&self, index: usize, max_total: u32) -> bool {
        self.row(index).fetch_add(1, Ordering::AcqRel);
        if max_total != 0 && self.total() > max_total {
            self.release(index);
            return false;
        }
        true
    }

    /// Uncount one session on row `index`.
    pub fn release(&self, index: usize) {
        let _ = self
            .row(index)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1));
    }

    /// Forget every session of a dead worker's row (supervisor).
    pub fn reset(&self, index: usize) {
        self.row(index).store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_respect_the_cap_across_rows() {
        let t = SessionTable::create().unwrap();
        assert!(t.try_claim(0, 2));
        assert!(t.try_claim(1, 2));
        assert!(!t.try_claim(2, 2), "third session over a cap of 2");
        assert_eq!(t.total(), 2);
        t.reset(1);
        assert!(t.try_claim(2, 2));
        t.release(0);
        t.release(0); // never underflows
        assert_eq!(t.total(), 1);
    }

    #[test]
    fn a_second_mapping_sees_the_same_counters() {
        let t = SessionTable::create().unwrap();
        let dup = t.fd().try_clone_to_owned().unwrap();
        let other = SessionTable::from_fd(dup).unwrap();
        assert!(t.try_claim(5, 0));
        assert_eq!(other.total(), 1);
    }
}
