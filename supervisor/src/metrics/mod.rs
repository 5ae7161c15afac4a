//! Prometheus `/metrics`, served by the supervisor.
//!
//! The supervisor's event loop stays single-threaded and tokio-free: the
//! endpoint runs on one small dedicated thread ([`server`]) that only reads
//! the scoreboard the workers write (no message to any worker per scrape)
//! and the listening socket's queue (`TCP_INFO`). It answers one scrape at
//! a time with a short timeout per connection, so a stuck scraper delays
//! only the next scrape, never the daemon.
//!
//! - [`collect`]: the scoreboard summed into metric families, encoded in
//!   the Prometheus text format by `prometheus-client`;
//! - [`listen_queue`]: what Linux says about the accept queue;
//! - [`server`]: the thread and its minimal HTTP/1.x exchange.

pub mod collect;
pub mod listen_queue;
pub mod server;

pub use server::MetricsServer;
