//! A worker's row of the scoreboard: the counters and gauges `/metrics`
//! sums. Bounded by construction: per module (at most [`MODULE_BUCKETS`]),
//! per direction, per exit code bucket, never per client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::modules::MODULE_BUCKETS;

/// Why a connection was turned away before (or instead of) a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max sessions`, `max sessions per worker` or a module's `max connections`.
    MaxConnections,
    /// A module's `hosts allow` / `hosts deny`.
    HostsDeny,
    /// A wrong password, an unknown user, a refused digest.
    AuthFailed,
    /// A malformed greeting, command, argument block or PROXY header; an
    /// unknown module.
    BadHandshake,
    /// The client did not finish the handshake within `handshake timeout`.
    HandshakeTimeout,
    /// `max sessions per host` or a module's `max connections per host`.
    PerHostLimit,
    /// `max handshakes per host`: too many unfinished handshakes from one client.
    HandshakeBudget,
    /// `proxy protocol` is on and the peer is not in `proxy protocol hosts`.
    UntrustedProxy,
}

impl Refusal {
    pub const COUNT: usize = 8;
    pub const ALL: [Refusal; Refusal::COUNT] = [
        Refusal::MaxConnections,
        Refusal::HostsDeny,
        Refusal::AuthFailed,
        Refusal::BadHandshake,
        Refusal::HandshakeTimeout,
        Refusal::PerHostLimit,
        Refusal::HandshakeBudget,
        Refusal::UntrustedProxy,
    ];

    /// The `reason` label value (stable: dashboards use them).
    pub fn label(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::HostsDeny => "hosts_deny",
            Refusal::AuthFailed => "auth_failed",
            Refusal::BadHandshake => "bad_handshake",
            Refusal::HandshakeTimeout => "handshake_timeout",
            Refusal::PerHostLimit => "per_host_limit",
            Refusal::HandshakeBudget => "handshake_budget",
            Refusal::UntrustedProxy => "untrusted_proxy",
        }
    }
}

/// Which way a session's files travel, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The client downloads: the daemon sends.
    Pull,
    /// The client uploads: the daemon receives.
    Push,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Pull, Direction::Push];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The `direction` label value.
    pub fn label(self) -> &'static str {
        match self {
            Direction::Pull => "pull",
            Direction::Push => "push",
        }
    }
}

/// Exit codes with a bucket of their own (upstream's `errcode.h`); any
/// other lands in the last bucket, labelled `other`.
pub const EXIT_CODES: [i32; 20] = [0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24, 25, 30, 35];
const EXIT_BUCKETS: usize = EXIT_CODES.len() + 1;

/// The bucket of an exit code.
pub fn exit_bucket(code: i32) -> usize {
    EXIT_CODES.iter().position(|&c| c == code).unwrap_or(EXIT_CODES.len())
}

/// Upper bounds (seconds) of the handshake latency buckets.
pub const HANDSHAKE_BOUNDS: [f64; 13] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];
/// Upper bounds (seconds) of the session duration buckets.
pub const SESSION_BOUNDS: [f64; 13] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0];
/// Buckets per histogram: the bounds above plus +Inf.
pub const HISTOGRAM_BUCKETS: usize = 14;

/// A fixed-bucket histogram of durations (non-cumulative counts; the
/// reader accumulates).
#[repr(C)]
pub struct Histogram {
    pub buckets: [AtomicU64; HISTOGRAM_BUCKETS],
    pub sum_micros: AtomicU64,
    pub count: AtomicU64,
}

impl Histogram {
    /// Count one observation against `bounds`.
    pub fn observe(&self, bounds: &[f64], value: Duration) {
        let secs = value.as_secs_f64();
        let bucket = bounds.iter().position(|&b| secs <= b).unwrap_or(bounds.len());
        self.buckets[bucket.min(HISTOGRAM_BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(u64::try_from(value.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// One module's counters in one row.
#[repr(C)]
pub struct ModuleCounters {
    /// Sessions admitted, by [`Direction`].
    pub sessions: [AtomicU64; 2],
    /// Bytes written to / read from the clients' connections.
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Files whose data travelled (either way).
    pub files: AtomicU64,
    /// Sessions ended, by [`exit_bucket`] of their exit code.
    pub exit_codes: [AtomicU64; EXIT_BUCKETS],
}

/// Monotonic counters: folded into the retired row when a worker dies.
/// Made only of `AtomicU64`s, so it can be walked as a slice of them.
#[repr(C)]
pub struct RowCounters {
    /// Connections taken off the listening socket.
    pub accepted: AtomicU64,
    /// Connections turned away, by [`Refusal`].
    pub refused: [AtomicU64; Refusal::COUNT],
    /// From accept to admission (`@RSYNCD: OK` and the arguments read).
    pub handshake: Histogram,
    /// From admission to the end of the session.
    pub session: Histogram,
    /// Per module (the last bucket: modules past the name table's size).
    pub modules: [ModuleCounters; MODULE_BUCKETS],
}

impl RowCounters {
    fn words(&self) -> &[AtomicU64] {
        const WORDS: usize = std::mem::size_of::<RowCounters>() / std::mem::size_of::<AtomicU64>();
        // SAFETY: RowCounters is repr(C) and made only of AtomicU64 (and
        // arrays and structs of them), so it is WORDS contiguous AtomicU64s.
        unsafe { std::slice::from_raw_parts((self as *const RowCounters).cast::<AtomicU64>(), WORDS) }
    }

    /// Add every counter of `other` into this one.
    pub fn add(&self, other: &RowCounters) {
        for (mine, theirs) in self.words().iter().zip(other.words()) {
            let v = theirs.load(Ordering::Acquire);
            if v != 0 {
                mine.fetch_add(v, Ordering::AcqRel);
            }
        }
    }

    pub(crate) fn zero(&self) {
        for w in self.words() {
            w.store(0, Ordering::Release);
        }
    }

    /// Count a refusal.
    pub fn refuse(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Values that describe the present: they vanish with their worker.
#[repr(C)]
pub struct RowGauges {
    /// Sessions running now, by module bucket and [`Direction`].
    pub active: [[AtomicU64; 2]; MODULE_BUCKETS],
    /// Connections still in their handshake.
    pub handshakes: AtomicU64,
}

impl RowGauges {
    pub(crate) fn zero(&self) {
        for pair in &self.active {
            for g in pair {
                g.store(0, Ordering::Release);
            }
        }
        self.handshakes.store(0, Ordering::Release);
    }
}

/// One worker process's row.
#[repr(C)]
pub struct WorkerRow {
    pub gauges: RowGauges,
    pub counters: RowCounters,
}

/// A gauge that never goes below zero when decremented.
pub fn decrement(g: &AtomicU64) {
    let _ = g.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1));
}
