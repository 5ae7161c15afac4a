//! Code shared by the oxrsyncd supervisor and its workers: the configuration
//! model and its two parsers (classic `rsyncd.conf` and TOML), logging setup,
//! and the contract between the two processes (inherited descriptors,
//! control messages, the shared session table).

pub mod config;
pub mod control;
pub mod json_log;
pub mod logging;
pub mod scoreboard;
pub mod session_table;
pub mod shm;
pub mod socket_options;
