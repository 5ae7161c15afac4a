//! A push: the daemon as generator and receiver for a writable module
//! (upstream's `do_server_recv` / `do_recv`).
//!
//! The client's file list is received and sorted, the destination resolved
//! inside the module, then two threads run at once, as upstream's two
//! processes do, so neither direction of the connection can stall the
//! other:
//!
//! - the generator ([`generator`]) walks the list: creates directories and
//!   symlinks, decides which files need data and asks the client for them
//!   (with block sums of the file it already has, so only differences
//!   travel), and ends each phase;
//! - the receiver ([`receiver`], on the session thread) reads the client's
//!   data, rebuilds each file into a temporary file beside its target,
//!   verifies the whole-file checksum, and renames it into place; a file
//!   that fails verification is asked for again in the redo phase.
//!
//! The driver ([`driver`]) runs it in three steps: receive the list,
//! prepare the destination, run the two threads; [`setup`] is what it
//! starts from, [`shared`] what the two threads share.
//!
//! Every change goes through [`ModuleRoot`]/[`ModuleDir`]: created as the
//! module's uid/gid, never outside the module, never through a symlink.
//!
//! [`ModuleRoot`]: crate::transfer::fs::module_root::ModuleRoot
//! [`ModuleDir`]: crate::transfer::fs::module_dir::ModuleDir

pub(crate) mod alt_dest;
pub(crate) mod attrs;
pub(crate) mod backup;
pub(crate) mod delete;
pub(crate) mod dest;
pub(crate) mod driver;
pub(crate) mod fuzzy;
pub(crate) mod generator;
pub(crate) mod hard_links;
pub(crate) mod list_reader;
pub(crate) mod lists;
pub(crate) mod meta;
pub(crate) mod output;
pub(crate) mod owners;
pub(crate) mod prune;
pub(crate) mod receiver;
pub(crate) mod relative;
pub(crate) mod setup;
pub(crate) mod shared;
pub(crate) mod staging;
#[cfg(test)]
mod tests;
