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
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

/// Rows in the table: an upper bound on live worker processes, counting
/// draining generations.
pub const TABLE_ROWS: usize = 4096;

const TABLE_BYTES: usize = TABLE_ROWS * std::mem::size_of::<u32>();

/// A mapping of the shared counters.
pub struct SessionTable {
    /// The memfd, kept so the supervisor can pass it on to new workers.
    fd: OwnedFd,
    /// Start of the shared mapping of `TABLE_ROWS` counters.
    base: NonNull<AtomicU32>,
}

// SAFETY: the mapping is only accessed through atomics.
unsafe impl Send for SessionTable {}
unsafe impl Sync for SessionTable {}

impl SessionTable {
    /// Create a fresh, zeroed table (supervisor).
    pub fn create() -> io::Result<Self> {
        let fd = memfd_create(c"oxrsyncd-sessions", MemFdCreateFlag::MFD_CLOEXEC)?;
        nix::unistd::ftruncate(&fd, TABLE_BYTES as i64)?;
        Self::map(fd)
    }

    /// Map a table received from the supervisor (worker).
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        let len = nix::sys::stat::fstat(fd.as_raw_fd())?.st_size as usize;
        if len != TABLE_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "session table has the wrong size"));
        }
        Self::map(fd)
    }

    fn map(fd: OwnedFd) -> io::Result<Self> {
        // SAFETY: a fresh shared mapping of a memfd we own, sized above; it
        // is unmapped in Drop and only accessed as AtomicU32s.
        let ptr = unsafe {
            mmap(
                None,
                NonZeroUsize::new(TABLE_BYTES).expect("non-zero"),
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )?
        };
        Ok(SessionTable { fd, base: ptr.cast() })
    }

    /// The memfd, to pass to a worker.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn row(&self, index: usize) -> &AtomicU32 {
        assert!(index < TABLE_ROWS, "session table row out of range");
        // SAFETY: index is in bounds of the mapping, which lives as long as self.
        unsafe { &*self.base.as_ptr().add(index) }
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

impl Drop for SessionTable {
    fn drop(&mut self) {
        // SAFETY: unmapping the region mapped in `map`; no references outlive self.
        let _ = unsafe { munmap(self.base.cast(), TABLE_BYTES) };
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
