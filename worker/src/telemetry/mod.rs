//! What a worker publishes about its connections: counters for
//! `/metrics`, a slot for `oxrsyncd --status`, and the per-client counts
//! behind the per-host limits, all in the supervisor's scoreboard
//! (`oxrsyncd_shared::scoreboard`).
//!
//! - [`Telemetry`]: the worker's row and its modules' buckets;
//! - [`ConnectionRecord`]: one connection from accept to close, kept by
//!   the accept path, the handshake and the session thread (shared, so
//!   whoever drops it last gives back its slot and host counts);
//! - [`meter`]: the session thread's record, for the transfer engine's
//!   per-file count;
//! - [`counting`]: the socket reader and writer that count bytes.

pub(crate) mod counting;
pub(crate) mod meter;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use oxrsyncd_shared::config::Config;
use oxrsyncd_shared::scoreboard::slots::HeldHost;
use oxrsyncd_shared::scoreboard::stats::{decrement, exit_bucket, HANDSHAKE_BOUNDS, SESSION_BOUNDS};
use oxrsyncd_shared::scoreboard::{Direction, HostLimitExceeded, ModuleIndex, Phase, Refusal, Scoreboard, WorkerRow};

/// Upstream's exit code for an internal failure (`RERR_IPC`): what a
/// session that ended without reporting its code is counted as.
const RERR_IPC: i32 = 14;

/// One worker's view of the scoreboard.
pub(crate) struct Telemetry {
    /// The supervisor's shared region.
    board: Arc<Scoreboard>,
    /// This worker's row (the same index as its session-table row).
    row: usize,
    /// The generation the worker serves, shown by `--status`.
    generation: u64,
    /// The scoreboard bucket of each module of the config, by config index.
    modules: Vec<ModuleIndex>,
}

/// Why a client was refused by a per-host limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostRefusal {
    /// `max sessions per host`.
    Sessions(u32),
    /// `max handshakes per host`.
    Handshakes(u32),
}

impl Telemetry {
    /// The worker in `row` of generation `generation`, serving `config`.
    pub(crate) fn new(board: Arc<Scoreboard>, row: usize, generation: u64, config: &Config) -> Telemetry {
        let modules = config.modules.iter().map(|m| board.module_index(&m.name)).collect();
        Telemetry {
            board,
            row,
            generation,
            modules,
        }
    }

    fn row(&self) -> &WorkerRow {
        self.board.row(self.row)
    }

    /// A connection was taken off the listening socket. `None` when the
    /// scoreboard has no free slot (the connection must be refused: its
    /// per-host counts could not be given back if the worker died).
    pub(crate) fn accept(self: &Arc<Self>, peer: SocketAddr) -> Option<Arc<ConnectionRecord>> {
        let row = self.row();
        row.counters.accepted.fetch_add(1, Ordering::Relaxed);
        let slot = self.board.claim_slot(self.row, self.generation, peer)?;
        row.gauges.handshakes.fetch_add(1, Ordering::Relaxed);
        Some(Arc::new(ConnectionRecord {
            telemetry: self.clone(),
            slot,
            accepted: Instant::now(),
            in_handshake: AtomicBool::new(true),
            module: OnceLock::new(),
            session: OnceLock::new(),
            ended: AtomicBool::new(false),
        }))
    }

    /// Count a refusal that happened before a record existed.
    pub(crate) fn refuse(&self, why: Refusal) {
        self.row().counters.refuse(why);
    }
}

/// One connection's entry in the scoreboard.
pub(crate) struct ConnectionRecord {
    telemetry: Arc<Telemetry>,
    /// Its slot (freed on drop, with the host counts it holds).
    slot: usize,
    /// For the handshake latency.
    accepted: Instant,
    /// Still counted in the worker's handshake gauge.
    in_handshake: AtomicBool,
    /// The module bucket, once chosen.
    module: OnceLock<ModuleIndex>,
    /// Direction and start of the admitted session.
    session: OnceLock<(Direction, Instant)>,
    /// The session's end was counted.
    ended: AtomicBool,
}

impl std::fmt::Debug for ConnectionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRecord").field("slot", &self.slot).finish()
    }
}

impl ConnectionRecord {
    fn board(&self) -> &Scoreboard {
        &self.telemetry.board
    }

    fn row(&self) -> &WorkerRow {
        self.telemetry.row()
    }

    fn bucket(&self) -> usize {
        self.module.get().copied().unwrap_or(ModuleIndex::OTHER).bucket()
    }

    /// The client's real address (after a PROXY header).
    pub(crate) fn set_client(&self, client: IpAddr, port: u16) {
        self.board().slot(self.slot).set_client(SocketAddr::new(client, port));
    }

    /// Count the connection against `max sessions per host` and `max
    /// handshakes per host` (0: no limit).
    pub(crate) fn limit_host(&self, client: IpAddr, sessions: u32, handshakes: u32) -> Result<(), HostRefusal> {
        let board = self.board();
        let slot = board.slot(self.slot);
        match board.host_claim(board.connections_key(client), sessions) {
            Ok(Some(entry)) => slot.hold_host(HeldHost::Connections, entry),
            Ok(None) => {}
            Err(HostLimitExceeded { limit }) => {
                self.refuse(Refusal::PerHostLimit);
                return Err(HostRefusal::Sessions(limit));
            }
        }
        match board.host_claim(board.handshakes_key(client), handshakes) {
            Ok(Some(entry)) => slot.hold_host(HeldHost::Handshakes, entry),
            Ok(None) => {}
            Err(HostLimitExceeded { limit }) => {
                self.refuse(Refusal::HandshakeBudget);
                return Err(HostRefusal::Handshakes(limit));
            }
        }
        Ok(())
    }

    /// The client chose module `index` of the config; count it against
    /// the module's `max connections per host` (0: no limit).
    pub(crate) fn choose_module(&self, index: usize, name: &str, client: IpAddr, per_host: u32) -> Result<(), HostLimitExceeded> {
        let bucket = self.telemetry.modules.get(index).copied().unwrap_or(ModuleIndex::OTHER);
        let _ = self.module.set(bucket);
        let board = self.board();
        board.slot(self.slot).set_module(bucket);
        if per_host == 0 {
            return Ok(());
        }
        match board.host_claim(board.module_key(name, client), per_host) {
            Ok(Some(entry)) => board.slot(self.slot).hold_host(HeldHost::Module, entry),
            Ok(None) => {}
            Err(e) => {
                self.refuse(Refusal::PerHostLimit);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Count a refusal of this connection.
    pub(crate) fn refuse(&self, why: Refusal) {
        self.row().counters.refuse(why);
    }

    /// The user the client authenticated as.
    pub(crate) fn set_user(&self, user: &str) {
        self.board().slot(self.slot).set_user(user);
    }

    fn leave_handshake(&self) {
        if self.in_handshake.swap(false, Ordering::AcqRel) {
            decrement(&self.row().gauges.handshakes);
            if let Some(entry) = self.board().slot(self.slot).take_host(HeldHost::Handshakes) {
                self.board().host_release(entry);
            }
        }
    }

    /// The handshake admitted the client: its latency is counted and it
    /// no longer counts against `max handshakes per host`.
    pub(crate) fn admitted(&self) {
        self.row().counters.handshake.observe(&HANDSHAKE_BOUNDS, self.accepted.elapsed());
        self.leave_handshake();
    }

    /// The transfer starts.
    pub(crate) fn session_started(&self, direction: Direction) {
        if self.session.set((direction, Instant::now())).is_err() {
            return;
        }
        let bucket = self.bucket();
        let row = self.row();
        row.counters.modules[bucket].sessions[direction.index()].fetch_add(1, Ordering::Relaxed);
        row.gauges.active[bucket][direction.index()].fetch_add(1, Ordering::Relaxed);
        let phase = match direction {
            Direction::Pull => Phase::Sending,
            Direction::Push => Phase::Receiving,
        };
        self.board().slot(self.slot).set_phase(phase);
    }

    /// The session ended with exit code `code` (counted once).
    pub(crate) fn session_ended(&self, code: i32) {
        if self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        let bucket = self.bucket();
        let row = self.row();
        row.counters.modules[bucket].exit_codes[exit_bucket(code)].fetch_add(1, Ordering::Relaxed);
        if let Some((direction, started)) = self.session.get() {
            row.counters.session.observe(&SESSION_BOUNDS, started.elapsed());
            decrement(&row.gauges.active[bucket][direction.index()]);
        }
        self.board().slot(self.slot).set_phase(Phase::Ending);
    }

    /// Bytes written to the client.
    pub(crate) fn sent(&self, n: u64) {
        self.board().slot(self.slot).bytes_sent.fetch_add(n, Ordering::Relaxed);
        self.row().counters.modules[self.bucket()]
            .bytes_sent
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes read from the client.
    pub(crate) fn received(&self, n: u64) {
        self.board().slot(self.slot).bytes_received.fetch_add(n, Ordering::Relaxed);
        self.row().counters.modules[self.bucket()]
            .bytes_received
            .fetch_add(n, Ordering::Relaxed);
    }

    /// One file's data travelled.
    pub(crate) fn file_done(&self) {
        self.board().slot(self.slot).files.fetch_add(1, Ordering::Relaxed);
        self.row().counters.modules[self.bucket()].files.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for ConnectionRecord {
    fn drop(&mut self) {
        self.leave_handshake();
        if self.session.get().is_some() && !self.ended.load(Ordering::Acquire) {
            // A session thread that never reported its end (a panic).
            self.session_ended(RERR_IPC);
        }
        self.board().release_slot(self.slot);
    }
}

#[cfg(test)]
mod tests;
