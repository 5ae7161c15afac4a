//! Taking connections off the supervisor's listening socket and giving
//! each one a handshake, then a session thread.
//!
//! Two interchangeable front ends share everything below them:
//! - [`async_accept`]: a tokio multi-thread runtime; the text handshake is
//!   async, each admitted session moves to its own plain thread.
//! - [`blocking_accept`]: one accept thread and one thread per connection,
//!   no tokio at all (`use async listener = no`, or a build without the
//!   `async` feature).

pub(crate) mod admission;
#[cfg(feature = "async")]
pub(crate) mod async_accept;
pub(crate) mod blocking_accept;
pub(crate) mod capacity;
pub(crate) mod drain;
pub(crate) mod quick_ack;
pub(crate) mod session_thread;

use std::sync::Arc;

use oxrsyncd_shared::config::Config;
use oxrsyncd_shared::session_table::SessionTable;
use oxrsyncd_shared::socket_options::SocketOption;

use self::capacity::ActiveSessions;
use self::drain::DrainSignal;
use crate::telemetry::Telemetry;

/// What every connection handler of one worker shares.
pub(crate) struct WorkerContext {
    /// The validated config of this worker's generation.
    pub config: Arc<Config>,
    /// Daemon-wide session counters and our row in them.
    pub table: Arc<SessionTable>,
    pub table_row: usize,
    /// This worker's row of the scoreboard: metrics, status, per-host counts.
    pub telemetry: Arc<Telemetry>,
    /// Sessions and handshakes in flight in this worker, for draining.
    pub active: ActiveSessions,
    /// Set when the supervisor asks us to drain.
    pub drain: DrainSignal,
    /// Parsed `socket options`, applied to each accepted connection.
    pub socket_options: Vec<SocketOption>,
}

/// The line a client gets when the daemon-wide `max sessions` is reached:
/// our greeting first (clients read one before anything else), then the
/// refusal in upstream's wording.
pub(crate) fn over_capacity_reply(max: u32) -> Vec<u8> {
    refusal_reply(&format!("max connections ({max}) reached -- try again later"))
}

/// Our greeting, then `@ERROR: {text}`: what a client refused before its
/// handshake gets.
pub(crate) fn refusal_reply(text: &str) -> Vec<u8> {
    let mut out = crate::handshake::greeting::server_greeting(crate::handshake::digest::AuthDigest::ADVERTISED).into_bytes();
    out.extend_from_slice(format!("@ERROR: {text}\n").as_bytes());
    out
}
