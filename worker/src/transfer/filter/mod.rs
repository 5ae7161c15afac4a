//! What is in a transfer: the client's filter rules and how a name
//! matches them, per-directory merge files, the daemon's own filter
//! options, and `--files-from` lists.

pub mod files_from;
pub mod merge;
pub mod rules;
pub mod server;
