//! The push's file lists as both threads see them (upstream's flist chain
//! on the receiving side: `flist_new`, `flist_for_ndx`, `flist_free`).
//!
//! Without incremental recursion there is one list, indexes from 0. With
//! it (CF_INC_RECURSE) the client sends the top of the tree first and each
//! directory's contents later in a list of its own: the first starts at
//! index 1, each next one at the previous start + its length + 1, and the
//! gap index (`ndx_start - 1`) names the list's parent directory. A list
//! lives until the client has confirmed its release (the `NDX_DONE` the
//! generator sends when it is done with it comes back), so a push holds
//! the lists in flight, not the tree.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::transfer::flist::{FileEntry, SortedEntry};
use crate::transfer::limits::budget::Reservation;

/// One list as received: sorted, duplicates cleared, immutable from then
/// on but for the ledger of requested files.
pub(crate) struct RecvList {
    /// Index of its first entry.
    pub ndx_start: i32,
    /// The entries in sorted (index) order.
    pub files: Vec<SortedEntry>,
    /// Incremental recursion: the directory whose contents the list holds
    /// (index `ndx_start - 1`), which the generator handles in full just
    /// before them. None for the first list without a `.` entry and
    /// without incremental recursion.
    pub parent: Option<FileEntry>,
    /// `-H` with incremental recursion: each sorted entry's hard-link group
    /// (the index of the group's first entry, as the client numbers it).
    pub groups: Vec<Option<i32>>,
    /// The I/O error bits the client's sender reported at the list's end.
    pub io_error: i32,
    /// Which entries the generator asked for: the only data the receiver
    /// takes. Set before the request goes out, taken by the data that
    /// answers it, so one request admits one file's data.
    requested: Vec<AtomicBool>,
    /// The session budget held for the list's entries, given back when
    /// the list is freed.
    _held: Option<Reservation>,
}

impl std::fmt::Debug for RecvList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvList")
            .field("ndx_start", &self.ndx_start)
            .field("len", &self.files.len())
            .finish()
    }
}

impl RecvList {
    pub(crate) fn new(
        ndx_start: i32,
        files: Vec<SortedEntry>,
        parent: Option<FileEntry>,
        groups: Vec<Option<i32>>,
        io_error: i32,
        held: Option<Reservation>,
    ) -> RecvList {
        let requested = (0..files.len()).map(|_| AtomicBool::new(false)).collect();
        RecvList {
            ndx_start,
            files,
            parent,
            groups,
            io_error,
            requested,
            _held: held,
        }
    }

    /// One past its last index.
    pub(crate) fn end(&self) -> i32 {
        self.ndx_start + self.files.len() as i32
    }

    /// Position of index `ndx` in this list, if it is one of its entries.
    pub(crate) fn position(&self, ndx: usize) -> Option<usize> {
        let pos = ndx.checked_sub(usize::try_from(self.ndx_start).ok()?)?;
        (pos < self.files.len()).then_some(pos)
    }

    /// Entry `ndx`, or with incremental recursion the list's parent
    /// directory for its gap index (`ndx_start - 1`).
    pub(crate) fn entry_or_parent(&self, ndx: usize) -> Option<&FileEntry> {
        match self.get(ndx) {
            Some(f) => Some(&f.entry),
            None if ndx as i64 == i64::from(self.ndx_start) - 1 => self.parent.as_ref(),
            None => None,
        }
    }

    /// Entry `ndx` (a global index), if this list holds it.
    pub(crate) fn get(&self, ndx: usize) -> Option<&SortedEntry> {
        self.position(ndx).map(|pos| &self.files[pos])
    }

    /// `-H` with incremental recursion: entry `ndx`'s hard-link group.
    pub(crate) fn group_of(&self, ndx: usize) -> Option<i32> {
        self.position(ndx).and_then(|pos| self.groups.get(pos).copied().flatten())
    }

    /// The generator is about to ask for entry `ndx`.
    pub(crate) fn mark_requested(&self, ndx: usize) {
        if let Some(pos) = self.position(ndx) {
            self.requested[pos].store(true, Ordering::Release);
        }
    }

    /// Data (or the client's word that none will come) for `ndx` arrived:
    /// whether it was asked for (and is no longer).
    pub(crate) fn take_requested(&self, ndx: usize) -> bool {
        self.position(ndx)
            .is_some_and(|pos| self.requested[pos].swap(false, Ordering::AcqRel))
    }

    /// The names its active entries hold (what `--delete` keeps in the
    /// directory it lists).
    pub(crate) fn names(&self) -> HashSet<Vec<u8>> {
        self.files.iter().filter(|f| f.active).map(|f| f.entry.name.clone()).collect()
    }
}

/// The lists alive, by first index: the receiver adds each as it arrives
/// and frees the oldest as the client confirms its release; both threads
/// find an index's list here.
pub(crate) struct FileLists {
    /// Whether the lists come incrementally (CF_INC_RECURSE).
    pub inc_recurse: bool,
    live: Mutex<BTreeMap<i32, Arc<RecvList>>>,
    /// Sum of the files' and symlinks' lengths over every list received
    /// (upstream's `total_size`), kept when the lists are freed.
    total_size: AtomicU64,
}

impl FileLists {
    pub(crate) fn new(inc_recurse: bool) -> FileLists {
        FileLists {
            inc_recurse,
            live: Mutex::new(BTreeMap::new()),
            total_size: AtomicU64::new(0),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, Arc<RecvList>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A list arrived.
    pub(crate) fn add(&self, list: Arc<RecvList>) {
        let size: u64 = list
            .files
            .iter()
            .filter(|f| f.entry.is_reg() || f.entry.is_symlink())
            .map(|f| f.entry.size)
            .sum();
        self.total_size.fetch_add(size, Ordering::Relaxed);
        self.live().insert(list.ndx_start, list);
    }

    /// The list holding index `ndx` (with incremental recursion a list's
    /// gap index, its parent directory, counts as its own).
    pub(crate) fn find(&self, ndx: i32) -> Option<Arc<RecvList>> {
        let gap = i32::from(self.inc_recurse);
        let live = self.live();
        let (_, list) = live.range(..=ndx.saturating_add(gap)).next_back()?;
        (ndx >= list.ndx_start - gap && ndx < list.end()).then(|| Arc::clone(list))
    }

    /// The oldest list alive.
    pub(crate) fn first(&self) -> Option<Arc<RecvList>> {
        self.live().values().next().cloned()
    }

    /// The client confirmed the oldest list's release: free it. Returns
    /// how many lists are left.
    pub(crate) fn release_first(&self) -> usize {
        let mut live = self.live();
        if let Some((&first, _)) = live.iter().next() {
            live.remove(&first);
        }
        live.len()
    }

    /// Whether every list has been freed.
    pub(crate) fn is_empty(&self) -> bool {
        self.live().is_empty()
    }

    /// The highest index alive (-1: none), for messages.
    pub(crate) fn last_ndx(&self) -> i64 {
        self.live().values().next_back().map_or(-1, |l| i64::from(l.end()) - 1)
    }

    /// Upstream's `total_size`.
    pub(crate) fn total_size(&self) -> u64 {
        self.total_size.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ndx_start: i32, names: &[&str]) -> Arc<RecvList> {
        let files = names
            .iter()
            .enumerate()
            .map(|(i, n)| SortedEntry {
                entry: FileEntry::new(*n, 0o100644),
                orig_index: i,
                active: true,
            })
            .collect();
        Arc::new(RecvList::new(ndx_start, files, None, Vec::new(), 0, None))
    }

    #[test]
    fn indexes_find_their_list_and_the_gap_names_the_parent() {
        let lists = FileLists::new(true);
        lists.add(list(1, &["a", "b"]));
        lists.add(list(4, &["c"]));
        assert_eq!(lists.find(0).map(|l| l.ndx_start), Some(1), "the first list's gap");
        assert_eq!(lists.find(2).map(|l| l.ndx_start), Some(1));
        assert_eq!(lists.find(3).map(|l| l.ndx_start), Some(4), "the second list's gap");
        assert_eq!(lists.find(4).map(|l| l.ndx_start), Some(4));
        assert!(lists.find(5).is_none());
        assert!(lists.find(-7).is_none());
        assert_eq!(lists.release_first(), 1);
        assert!(lists.find(2).is_none(), "a freed list's indexes are gone");
        assert_eq!(lists.last_ndx(), 4);
        assert_eq!(lists.release_first(), 0);
        assert!(lists.is_empty());
    }

    #[test]
    fn one_request_admits_one_file() {
        let l = list(4, &["a", "b"]);
        assert!(!l.take_requested(5), "nothing was asked for");
        l.mark_requested(5);
        assert!(l.take_requested(5));
        assert!(!l.take_requested(5), "a second copy of the same data is not asked for");
        l.mark_requested(5);
        assert!(l.take_requested(5), "a redo asks again");
        l.mark_requested(3);
        assert!(!l.take_requested(3), "the gap is no file");
        assert!(!l.take_requested(9), "out of range");
    }
}
