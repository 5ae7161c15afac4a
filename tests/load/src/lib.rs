//! The oxrsyncd load generator as a library: one process drives thousands
//! of daemon sessions over loopback, against oxrsyncd or stock
//! `rsync --daemon`, and reports latency, failures by class and the
//! daemon's memory.
//!
//! - [`hold`]: open N sessions, complete the greeting, stay idle.
//! - [`churn`]: R module listings per second for T seconds, optionally
//!   reloading or killing workers meanwhile.
//! - [`pull`]: N concurrent whole-file pulls through the real protocol.
//! - [`spawn_cost`]: what spawning one session thread costs here.
//! - [`raw_session`]: a session opened by hand up to the transfer (also
//!   the raw-protocol tests' starting point).
//!
//! Every scenario is bounded in count and time and binds loopback only.

pub mod churn;
pub mod failure;
pub mod greeting;
pub mod hold;
pub mod limits;
pub mod probe;
pub mod pull;
pub mod pull_client;
pub mod raw_session;
pub mod runtime;
pub mod sources;
pub mod spawn_cost;
pub mod stats;
