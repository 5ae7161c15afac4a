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

pub mod control;
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
pub(crate) mod hooks;
pub mod identity;
pub(crate) mod least_privilege;
pub mod listener;
pub mod module_lock;
pub mod process;
#[cfg(feature = "async")]
pub mod runtime;
pub mod session;
pub mod stdio;
pub mod transfer;
pub mod wildmatch;

pub use process::worker_main;
pub use stdio::{serve_remote_shell, serve_stdio, stdin_is_connected_socket};
