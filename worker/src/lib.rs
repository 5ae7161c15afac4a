//! The oxrsyncd worker: everything that happens after the supervisor hands
//! over a listening socket.
//!
//! - [`listener`]: accept front ends (tokio or blocking), capacity, drain.
//! - [`handshake`]: the daemon text handshake as a sans-I/O state machine,
//!   with its greeting, listing, auth and host ACL pieces.
//! - [`session`]: one admitted client on one plain thread: protocol setup,
//!   multiplexed output, the transfer.
//! - [`process`]: the worker process lifecycle; [`stdio`]: inetd mode.
//! - `fuzzing`: the entry points `tests/fuzz` drives (hidden).
//!
//! Everything is `pub(crate)` unless another crate uses it: the supervisor
//! (the four entry points re-exported below), the load generator and the
//! raw-protocol tests ([`codecs`]), and the fuzzers (`fuzzing`). The lint
//! below keeps it that way.

#![deny(unreachable_pub)]

pub(crate) mod control;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod handshake;
pub(crate) mod hooks;
pub(crate) mod identity;
pub(crate) mod least_privilege;
pub(crate) mod listener;
pub(crate) mod module_lock;
pub(crate) mod name_converter;
pub(crate) mod process;
#[cfg(feature = "async")]
pub(crate) mod runtime;
pub(crate) mod session;
pub(crate) mod stdio;
pub(crate) mod telemetry;
pub(crate) mod transfer;
pub(crate) mod wildmatch;

/// The file-list and block-sum codecs, for crates that speak the protocol
/// as a client does: the load generator (`tests/load`) and the
/// raw-protocol tests. The wire format itself is the `oxrsyncd-protocol`
/// crate.
pub mod codecs {
    pub use crate::transfer::delta::{ChecksumKind, ChecksumParams, FileSum};
    pub use crate::transfer::flist::{FileEntry, FlistDecoder, FlistEncoder, FlistOptions};
}

pub use process::worker_main;
pub use stdio::{serve_remote_shell, serve_stdio, stdin_is_connected_socket};
