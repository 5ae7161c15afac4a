//! The transfer engines that run on a session thread once the protocol is
//! set up. Nothing here is async, and nothing here knows of the session
//! that drives it; the wire format comes from the `oxrsyncd-protocol`
//! crate.
//!
//! - [`send`]: the daemon sends (a client pull).
//! - [`receive`]: the daemon receives (a client push): generator,
//!   receiver, and what they decide and make.
//! - [`flist`]: the file list's wire format and sorting.
//! - [`delta`]: block sums, the match search, tokens and compression.
//! - [`filter`]: what is in the transfer (rules, merge files,
//!   `--files-from`).
//! - [`options`]: the client's options, parsed once.
//! - [`fs`]: the module's file system, confined to the module.
//! - [`context`]: what the session hands every engine, built once.
//! - [`limits`]: memory budget, I/O timeout, bandwidth limit.
//! - [`log_format`]: the per-file transfer log lines.

pub(crate) mod context;
pub(crate) mod delta;
pub(crate) mod filter;
pub(crate) mod flist;
pub(crate) mod fs;
pub(crate) mod limits;
pub(crate) mod log_format;
pub(crate) mod options;
pub(crate) mod receive;
pub(crate) mod send;
