//! The session's memory budget: what a client can make the daemon hold
//! (its pushed file list, its `--files-from` names, its filter rules, the
//! block sums it sends) is charged here before it is allocated, and the
//! session ends with upstream's out-of-memory error (exit 22) when the
//! module's `max session memory` would be passed. One hostile session thus
//! cannot grow the worker that also serves every other session on it.
//!
//! The budget travels with the session thread (a thread-local, installed
//! when the session starts and shared with the threads it starts, as its
//! file-system identity is), so decoders deep in the engine charge it
//! without every signature carrying it. A thread with no budget installed
//! (unit tests, the fuzz targets) charges nothing.
//!
//! What is bounded by other means and not charged: decompressed data
//! (decoded in pieces of at most 128 KiB), a pull's own file list (built
//! from the module's tree, which the operator controls; with incremental
//! recursion only a window of it is held).

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One session's limit and what it holds now.
#[derive(Debug)]
pub(crate) struct Budget {
    /// The most bytes the session may hold in charged structures.
    limit: usize,
    /// Bytes charged and not yet released, by every thread of the session.
    used: AtomicUsize,
}

/// A charge that would pass the limit; `Display` is the client's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ERROR: out of memory: {what} would pass this session's memory limit ({limit_mib} MiB, the module's `max session memory`)")]
pub struct OverBudget {
    /// What was being charged (`"the file list"`, `"block sums"`...).
    pub what: &'static str,
    /// The limit, for the message.
    pub limit_mib: usize,
}

thread_local! {
    /// The budget of the session this thread works for, if any.
    static CURRENT: RefCell<Option<Arc<Budget>>> = const { RefCell::new(None) };
}

impl Budget {
    /// A budget of `limit` bytes, nothing charged yet.
    pub(crate) fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes charged now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_charge(&self, bytes: usize, what: &'static str) -> Result<(), OverBudget> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.checked_add(bytes).filter(|&n| n <= self.limit).ok_or(OverBudget {
                what,
                limit_mib: self.limit >> 20,
            })?;
            match self.used.compare_exchange_weak(used, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    fn release(&self, bytes: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| Some(u.saturating_sub(bytes)));
    }
}

/// Make `budget` this thread's (a session thread at its start, and every
/// thread it starts with [`current`]'s value). Returns the one it replaces.
pub(crate) fn install(budget: Option<Arc<Budget>>) -> Option<Arc<Budget>> {
    CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), budget))
}

/// Charge one kept MSG_SUCCESS index (the demultiplexer's hook, see
/// `DemuxReader::keeping_successes`).
pub(crate) fn charge_success(bytes: usize) -> std::io::Result<()> {
    charge(bytes, "the client's MSG_SUCCESS list").map_err(std::io::Error::other)
}

/// This thread's budget, to hand to a thread it starts.
pub(crate) fn current() -> Option<Arc<Budget>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Charge `bytes` for good (for what lives as long as the session).
pub(crate) fn charge(bytes: usize, what: &'static str) -> Result<(), OverBudget> {
    CURRENT.with(|c| match &*c.borrow() {
        Some(b) => b.try_charge(bytes, what),
        None => Ok(()),
    })
}

/// Charge `bytes` until the returned reservation is dropped (for what is
/// freed before the session ends: one file's block sums).
pub(crate) fn reserve(bytes: usize, what: &'static str) -> Result<Reservation, OverBudget> {
    let budget = current();
    if let Some(b) = &budget {
        b.try_charge(bytes, what)?;
    }
    Ok(Reservation { budget, bytes })
}

/// The budget error inside an I/O error, where one travelled as such
/// (through a reader, or a list sender's `io::Result`).
pub(crate) fn in_io_error(e: &std::io::Error) -> Option<&OverBudget> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<OverBudget>())
}

/// Bytes held against a budget until dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    /// The budget charged (none: nothing to give back).
    budget: Option<Arc<Budget>>,
    /// How much to give back.
    bytes: usize,
}

impl Reservation {
    /// Hold `bytes` more under this reservation (a list charged entry by
    /// entry as it arrives and given back whole when it is freed).
    pub(crate) fn grow(&mut self, bytes: usize, what: &'static str) -> Result<(), OverBudget> {
        if let Some(b) = &self.budget {
            b.try_charge(bytes, what)?;
        }
        self.bytes += bytes;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.release(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stop_at_the_limit_and_reservations_give_back() {
        let previous = install(Some(Budget::new(1000)));
        charge(600, "the file list").unwrap();
        let err = charge(500, "block sums").unwrap_err();
        assert_eq!(err.what, "block sums");
        {
            let _r = reserve(400, "block sums").unwrap();
            assert!(reserve(1, "block sums").is_err());
        }
        assert_eq!(current().unwrap().used(), 600);
        assert!(charge(usize::MAX, "overflow").is_err(), "no wrap-around");
        install(previous);
        // Without a budget nothing is counted.
        charge(usize::MAX, "anything").unwrap();
    }

    #[test]
    fn threads_started_with_the_budget_share_it() {
        let budget = Budget::new(100);
        let shared = budget.clone();
        std::thread::spawn(move || {
            install(Some(shared));
            charge(70, "the file list").unwrap();
        })
        .join()
        .unwrap();
        assert_eq!(budget.used(), 70);
        assert!(budget.try_charge(31, "x").is_err());
    }
}
