//! The scoreboard: what every worker of every generation is doing, in one
//! shared memory region the supervisor creates and every worker maps.
//!
//! It serves three readers without any message passing:
//! - `/metrics` (the supervisor's metrics thread) sums the counters of the
//!   live workers' rows and of the retired row ([`stats`]);
//! - `oxrsyncd --status` lists the live connections ([`slots`]);
//! - per-client limits count connections by client address across all
//!   workers ([`hosts`]).
//!
//! Like the session table, a worker only writes its own row and the slots
//! it claimed; when it dies the supervisor folds its counters into the
//! retired row and frees what it held ([`Scoreboard::retire_row`]), so a
//! `kill -9` neither loses a counter nor leaks a slot or a host count.
//!
//! Layout (all `repr(C)` atomics, offsets computed once in [`Layout`]):
//! a [`Header`], [`MODULES`] module names, [`ROWS`] + 1 worker rows (the
//! last one retired totals), [`SLOTS`] connection slots, [`HOST_ENTRIES`]
//! host counters. The memfd is sized for all of it but is sparse: a page is
//! only backed once written or read.

pub mod hosts;
pub mod modules;
pub mod slots;
pub mod stats;
mod text;

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::shm::SharedMemory;

pub use self::hosts::{HostKey, HostLimitExceeded};
pub use self::modules::{ModuleIndex, MODULES};
pub use self::slots::{Phase, Slot, SlotView, SLOTS};
pub use self::stats::{Direction, Histogram, Refusal, RowCounters, RowGauges, WorkerRow};

/// Worker rows: one per session-table row, so the same index serves both.
pub const ROWS: usize = crate::session_table::TABLE_ROWS;
/// Host counters (open addressing, see [`hosts`]).
pub const HOST_ENTRIES: usize = 1 << 16;

/// Identifies a mapping as ours and of this layout (bumped on any change).
const MAGIC: u64 = 0x6f78_7273_7962_0005;
/// The name the memfd shows in `/proc/PID/fd`, which `--status` looks for.
pub const MEMFD_NAME: &str = "oxrsyncd-scoreboard";

/// Daemon-wide values only the supervisor writes.
#[repr(C)]
pub struct Header {
    magic: AtomicU64,
    /// Random per daemon: keys the host hash so a client cannot choose
    /// addresses that collide.
    pub host_seed: AtomicU64,
    /// One past the highest slot ever claimed: readers scan no further.
    pub slot_high_water: AtomicU32,
    /// The supervisor's process id, for `--status`.
    pub supervisor_pid: AtomicU32,
    /// The generation now serving.
    pub generation: AtomicU64,
    /// Reloads that started a new generation / that were refused or abandoned.
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// Workers of the serving generation that died and were replaced, by
    /// cause ([`RestartCause`]).
    pub worker_restarts: [AtomicU64; RestartCause::COUNT],
    /// When the supervisor started (Unix seconds).
    pub started_unix: AtomicU64,
    /// One bit per row owned by a live worker, so readers find the live
    /// rows without touching the page of every row (each row spans pages).
    live: [AtomicU64; ROWS / 64],
}

/// Why a worker had to be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartCause {
    /// Killed by a signal (a crash, the OOM killer, `kill -9`).
    Signal,
    /// Exited with a non-zero status.
    ErrorExit,
    /// Exited with status 0 without being asked to.
    CleanExit,
}

impl RestartCause {
    pub const COUNT: usize = 3;
    pub const ALL: [RestartCause; 3] = [RestartCause::Signal, RestartCause::ErrorExit, RestartCause::CleanExit];

    /// The `cause` label value.
    pub fn label(self) -> &'static str {
        match self {
            RestartCause::Signal => "signal",
            RestartCause::ErrorExit => "error_exit",
            RestartCause::CleanExit => "clean_exit",
        }
    }
}

/// Byte offsets of the regions.
#[derive(Debug, Clone, Copy)]
struct Layout {
    modules: usize,
    rows: usize,
    slots: usize,
    hosts: usize,
    total: usize,
}

const fn align(n: usize) -> usize {
    (n + 63) & !63
}

const LAYOUT: Layout = {
    let modules = align(std::mem::size_of::<Header>());
    let rows = align(modules + MODULES * std::mem::size_of::<modules::ModuleName>());
    let slots = align(rows + (ROWS + 1) * std::mem::size_of::<WorkerRow>());
    let hosts = align(slots + SLOTS * std::mem::size_of::<Slot>());
    let total = align(hosts + HOST_ENTRIES * std::mem::size_of::<AtomicU64>());
    Layout {
        modules,
        rows,
        slots,
        hosts,
        total,
    }
};

/// A mapping of the scoreboard.
pub struct Scoreboard {
    /// `LAYOUT.total` bytes of shared memory.
    memory: SharedMemory,
    /// This process's idea of where a free slot is (the lowest it freed
    /// or past the last it claimed): where a claim starts looking.
    free_hint: AtomicUsize,
}

impl Scoreboard {
    /// Create a fresh, zeroed scoreboard (supervisor).
    pub fn create() -> io::Result<Scoreboard> {
        let name = std::ffi::CString::new(MEMFD_NAME).expect("no NUL");
        let board = Scoreboard {
            memory: SharedMemory::create(&name, LAYOUT.total)?,
            free_hint: AtomicUsize::new(0),
        };
        let h = board.header();
        h.magic.store(MAGIC, Ordering::Release);
        h.host_seed.store(random_seed(), Ordering::Release);
        h.supervisor_pid.store(std::process::id(), Ordering::Release);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        h.started_unix.store(now, Ordering::Release);
        Ok(board)
    }

    /// Map a scoreboard created by a supervisor (a worker's inherited
    /// descriptor, or one `--status` opened through `/proc`).
    pub fn from_fd(fd: OwnedFd) -> io::Result<Scoreboard> {
        let board = Scoreboard {
            memory: SharedMemory::from_fd(fd, LAYOUT.total, "scoreboard")?,
            free_hint: AtomicUsize::new(0),
        };
        if board.header().magic.load(Ordering::Acquire) != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not an oxrsyncd scoreboard of this version",
            ));
        }
        Ok(board)
    }

    /// The memfd, to pass to a worker.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.memory.fd()
    }

    /// The daemon-wide values.
    pub fn header(&self) -> &Header {
        // SAFETY: offset 0 holds a Header (all atomics, zero is valid).
        unsafe { &*self.memory.base().as_ptr().cast::<Header>() }
    }

    /// SAFETY contract of the region accessors: `offset` plus `index` items
    /// of `T` lie inside the mapping (checked by the callers' asserts), `T`
    /// is made only of atomics (any bit pattern, including zero, is valid),
    /// and the mapping lives as long as `self`.
    unsafe fn item<T>(&self, offset: usize, index: usize) -> &T {
        &*self
            .memory
            .base()
            .as_ptr()
            .add(offset + index * std::mem::size_of::<T>())
            .cast::<T>()
    }

    pub(crate) fn module_name(&self, index: usize) -> &modules::ModuleName {
        assert!(index < MODULES);
        // SAFETY: see `item`; index < MODULES.
        unsafe { self.item(LAYOUT.modules, index) }
    }

    /// A worker's row (`index < ROWS`), or the retired totals (`ROWS`).
    pub fn row(&self, index: usize) -> &WorkerRow {
        assert!(index <= ROWS, "scoreboard row out of range");
        // SAFETY: see `item`; index <= ROWS.
        unsafe { self.item(LAYOUT.rows, index) }
    }

    /// The row dead workers' counters are folded into.
    pub fn retired(&self) -> &WorkerRow {
        self.row(ROWS)
    }

    /// A connection slot.
    pub fn slot(&self, index: usize) -> &Slot {
        assert!(index < SLOTS, "scoreboard slot out of range");
        // SAFETY: see `item`; index < SLOTS.
        unsafe { self.item(LAYOUT.slots, index) }
    }

    pub(crate) fn host_entry(&self, index: usize) -> &AtomicU64 {
        assert!(index < HOST_ENTRIES);
        // SAFETY: see `item`; index < HOST_ENTRIES.
        unsafe { self.item(LAYOUT.hosts, index) }
    }

    /// Mark `row` as a live worker's (supervisor, at spawn): its counters
    /// start from zero and count in every sum from now on.
    pub fn open_row(&self, row: usize) {
        let r = self.row(row);
        r.counters.zero();
        r.gauges.zero();
        self.header().live[row / 64].fetch_or(1 << (row % 64), Ordering::AcqRel);
    }

    /// A worker is gone (supervisor, after reaping it): fold its counters
    /// into the retired row, forget its gauges, give back every slot and
    /// host count it held.
    pub fn retire_row(&self, row: usize) {
        let r = self.row(row);
        self.header().live[row / 64].fetch_and(!(1 << (row % 64)), Ordering::AcqRel);
        self.retired().counters.add(&r.counters);
        r.counters.zero();
        r.gauges.zero();
        let owner = slots::owner_of_row(row);
        let high = (self.header().slot_high_water.load(Ordering::Acquire) as usize).min(SLOTS);
        for i in 0..high {
            let slot = self.slot(i);
            if slot.owner.load(Ordering::Acquire) == owner {
                self.release_slot_hosts(slot);
                slot.owner.store(0, Ordering::Release);
            }
        }
    }

    /// Rows of live workers.
    pub fn live_rows(&self) -> impl Iterator<Item = &WorkerRow> {
        let live = &self.header().live;
        (0..ROWS)
            .filter(move |&i| live[i / 64].load(Ordering::Acquire) & (1 << (i % 64)) != 0)
            .map(|i| self.row(i))
    }
}

impl std::fmt::Debug for Scoreboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoreboard").field("memory", &self.memory).finish()
    }
}

/// A seed for the host hash from the kernel's random pool (falls back to
/// the clock: the hash still spreads addresses, it is only easier to aim at).
fn random_seed() -> u64 {
    let mut buf = [0u8; 8];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf));
    match ok {
        Ok(()) => u64::from_ne_bytes(buf),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64),
    }
}

#[cfg(test)]
mod tests;
