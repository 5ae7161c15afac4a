//! The supervisor <-> worker contract: which inherited file descriptor
//! carries what, how a worker learns who it is, and the small messages the
//! two exchange over their control socket.
//!
//! A worker is the `oxrsyncd` binary re-executed with
//! `--internal-worker GEN:SLOT:TABLE` and these descriptors in place:
//!
//! | fd | what |
//! |----|------|
//! | 3  | the listening socket (shared open file description, non-blocking) |
//! | 4  | this worker's end of a `SOCK_SEQPACKET` control socketpair |
//! | 5  | a sealed-by-convention memfd holding the validated config as JSON |
//! | 6  | the memfd of the daemon-wide [`crate::session_table::SessionTable`] |
//! | 7  | the memfd of the [`crate::scoreboard::Scoreboard`] (metrics, status, per-host counts) |
//!
//! Every control message is one JSON document in one datagram, so framing
//! never needs to be reassembled.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The listening socket every worker accepts from.
pub const LISTENER_FD: i32 = 3;
/// The worker's end of its control socketpair.
pub const CONTROL_FD: i32 = 4;
/// The memfd with the JSON-encoded [`crate::config::Config`].
pub const CONFIG_FD: i32 = 5;
/// The memfd backing the shared session counters.
pub const SESSION_TABLE_FD: i32 = 6;
/// The memfd backing the scoreboard.
pub const SCOREBOARD_FD: i32 = 7;

/// Largest control datagram either side reads; messages are far smaller.
pub const MAX_MESSAGE: usize = 4096;

/// Who a worker is: carried on its command line so `ps` shows it and the
/// worker can tag its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerIdentity {
    /// Config generation the worker serves; bumps on every successful reload.
    pub generation: u64,
    /// Position within its generation (0..workers), stable across respawns.
    pub slot: usize,
    /// Row of the session table this process counts its sessions in.
    pub table_index: usize,
}

impl fmt::Display for WorkerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.generation, self.slot, self.table_index)
    }
}

/// A malformed `--internal-worker` argument.
#[derive(Debug, thiserror::Error)]
#[error("bad worker identity {0:?}: expected GENERATION:SLOT:TABLE_INDEX")]
pub struct BadIdentity(String);

impl FromStr for WorkerIdentity {
    type Err = BadIdentity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadIdentity(s.to_string());
        let mut parts = s.split(':');
        let mut next = || parts.next().and_then(|p| p.parse::<u64>().ok()).ok_or_else(bad);
        let generation = next()?;
        let slot = next()? as usize;
        let table_index = next()? as usize;
        Ok(WorkerIdentity {
            generation,
            slot,
            table_index,
        })
    }
}

/// Supervisor -> worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Stop accepting, finish the sessions in flight, exit by
    /// `drain_timeout_ms` from now (then exit anyway).
    Drain { drain_timeout_ms: u64 },
}

/// Worker -> supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToSupervisor {
    /// The accept loop is running: the worker may take connections.
    Ready,
    /// Sent when draining starts and when it ends, for the supervisor's status line.
    Draining { sessions: u64 },
}

/// A control datagram that is not one of the known messages.
#[derive(Debug, thiserror::Error)]
#[error("malformed control message: {0}")]
pub struct BadMessage(#[from] serde_json::Error);

/// Encode a message as one datagram.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    serde_json::to_vec(msg).expect("control messages always serialize")
}

/// Decode one datagram.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, BadMessage> {
    Ok(serde_json::from_slice(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips() {
        let id = WorkerIdentity {
            generation: 7,
            slot: 2,
            table_index: 19,
        };
        assert_eq!(id.to_string().parse::<WorkerIdentity>().unwrap(), id);
        assert!("7:2".parse::<WorkerIdentity>().is_err());
        assert!("a:b:c".parse::<WorkerIdentity>().is_err());
    }

    #[test]
    fn messages_round_trip() {
        let m = ToWorker::Drain { drain_timeout_ms: 1500 };
        assert_eq!(decode::<ToWorker>(&encode(&m)).unwrap(), m);
        let r = ToSupervisor::Draining { sessions: 3 };
        assert_eq!(decode::<ToSupervisor>(&encode(&r)).unwrap(), r);
        assert!(decode::<ToWorker>(b"{\"Nope\":1}").is_err());
    }
}
