//! Which files the generator has asked the client for, so the receiver
//! takes data only for those: a client may send data for any index of its
//! list at any time, and without this ledger such data would be written
//! whatever the generator decided (an entry the module's filters exclude,
//! one that is up to date, a cleared duplicate).
//!
//! The generator marks an index before its request goes out; the receiver
//! takes the mark when the data arrives, so one request admits one file's
//! data, and a redo is a new request.

use std::sync::atomic::{AtomicBool, Ordering};

/// One flag per entry of the sorted list.
pub(crate) struct Requested {
    /// Set by the generator's request, cleared by the data that answers it.
    slots: Vec<AtomicBool>,
}

impl Requested {
    /// Nothing requested yet, for a list of `len` entries.
    pub(crate) fn new(len: usize) -> Requested {
        Requested {
            slots: (0..len).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// The generator is about to ask for entry `ndx`.
    pub(crate) fn mark(&self, ndx: usize) {
        if let Some(slot) = self.slots.get(ndx) {
            slot.store(true, Ordering::Release);
        }
    }

    /// Data for `ndx` arrived: whether it was asked for (and is no longer).
    pub(crate) fn take(&self, ndx: usize) -> bool {
        self.slots.get(ndx).is_some_and(|slot| slot.swap(false, Ordering::AcqRel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_admits_one_file() {
        let r = Requested::new(3);
        assert!(!r.take(1), "nothing was asked for");
        r.mark(1);
        assert!(r.take(1));
        assert!(!r.take(1), "a second copy of the same data is not asked for");
        r.mark(1);
        assert!(r.take(1), "a redo asks again");
        assert!(!r.take(7), "out of range");
        r.mark(7);
    }
}
