//! The state both threads of a push read: the sorted list, the
//! destination, the places a push writes, the checksum and compression
//! agreed, and our multiplexed output, written under a lock.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use oxrsyncd_protocol::mux::{MsgTag, MuxOut};

use crate::transfer::delta::{ChecksumParams, Compression};
use crate::transfer::filter::rules::FilterList;
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::receive::lists::FileLists;
use crate::transfer::receive::setup::ReceiveSetup;
use crate::transfer::receive::{alt_dest, backup, dest, staging};

/// The state both threads share.
pub(crate) struct Shared<'a, W: Write> {
    /// Our multiplexed output; whole requests and messages are written
    /// under the lock.
    pub out: Mutex<MuxOut<W>>,
    pub setup: &'a ReceiveSetup<'a>,
    pub root: ModuleRoot,
    /// The file lists alive (one without incremental recursion).
    pub lists: FileLists,
    /// Where the list lands, module-relative ("" is the module root).
    pub dest: dest::Destination,
    pub params: ChecksumParams,
    pub compression: Compression,
    /// The client's rules for the receiving side (deletion protection).
    pub client_filters: FilterList,
    /// The sender reported an I/O error: deletions are skipped.
    pub sender_io_error: i32,
    /// `-H`: (follower, leader) indexes of the sorted list; followers are
    /// linked to their leader once it is in place.
    pub hard_links: Vec<(usize, usize)>,
    /// `-b`: where replaced and deleted files are kept.
    pub backups: Option<backup::Backups>,
    /// Temp dir and partial dir.
    pub staging: staging::Staging,
    /// `--compare-dest` / `--copy-dest` / `--link-dest`.
    pub alt_dests: Option<alt_dest::AltDests>,
}

impl<W: Write> Shared<'_, W> {
    /// What is at module-relative `rel` now, as the module sees it (with
    /// a `fake super` module's attribute folded in); None if nothing.
    pub(crate) fn look(&self, rel: &Path) -> Option<crate::transfer::fs::fake_super::Seen> {
        crate::transfer::fs::fake_super::Seen::look(&self.root, rel, self.setup.fake_super).ok()
    }

    /// `--remove-source-files`: tell the client that entry `ndx` is in
    /// place, so its sender may remove its copy (upstream's MSG_SUCCESS).
    /// `sent` says whether the entry's data travelled (or, for a symlink,
    /// it was made): the older `--remove-sent-files` confirms only those.
    /// Nothing in a dry run.
    pub(crate) fn confirm(&self, ndx: usize, sent: bool) -> io::Result<()> {
        let o = self.setup.options;
        if !o.remove_source_files || o.dry_run || (o.remove_sent_files_only && !sent) {
            return Ok(());
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.message_ahead(MsgTag::Success, &(ndx as i32).to_le_bytes())
    }

    /// Send a message for the user (MSG_INFO), flushed.
    pub(crate) fn info(&self, text: impl AsRef<[u8]>) -> io::Result<()> {
        self.message(MsgTag::Info, text)
    }

    /// Send a message of `tag`, flushed.
    pub(crate) fn message(&self, tag: MsgTag, text: impl AsRef<[u8]>) -> io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.message(tag, text.as_ref())?;
        out.flush()
    }
}
