//! What is in a transfer: the client's filter rules and how a name
//! matches them, per-directory merge files, the daemon's own filter
//! options, and `--files-from` lists.

pub(crate) mod files_from;
pub(crate) mod merge;
pub(crate) mod rules;
pub(crate) mod server;
