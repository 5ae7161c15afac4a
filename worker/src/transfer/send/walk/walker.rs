//! The walker and what a walk yields: the settings one listing runs with
//! (module root, options, the client's and the daemon's filters, merge
//! rules) and the entries, I/O-error bits and notices it produces.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::transfer::filter::rules::FilterList;
use crate::transfer::flist::FileEntry;
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::options::client::TransferOptions;

/// Paths waiting to be listed below an implied directory, keyed by that
/// directory's name in the list (incremental recursion only). Names are
/// bytes, as a glob may have matched one that is not UTF-8.
pub(crate) type Relnames = HashMap<Vec<u8>, Vec<Vec<u8>>>;

/// A message for the client (sent as MSG_ERROR_XFER / MSG_WARNING /
/// MSG_INFO): bytes, as the files it names may not be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notice {
    Error(Vec<u8>),
    Warning(Vec<u8>),
    Info(Vec<u8>),
}

/// The walk's result.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    /// Entries in sending order, with the module-relative path of each.
    pub entries: Vec<(FileEntry, PathBuf)>,
    /// Upstream io_error bits.
    pub io_error: i32,
    pub notices: Vec<Notice>,
    /// `-R` with incremental recursion: paths still to be listed below the
    /// implied directories of this walk.
    pub relnames: Relnames,
    /// The per-directory merge rules of the first directory listed (kept
    /// on its tree node for the lists of its subdirectories).
    pub dir_frame: Option<std::rc::Rc<crate::transfer::filter::merge::Frame>>,
}

/// How to walk.
pub(crate) struct Walker<'a> {
    /// The module's directory: every access goes through it.
    pub root: &'a ModuleRoot,
    pub module_name: &'a str,
    pub options: &'a TransferOptions,
    pub filters: &'a FilterList,
    /// The module's own `filter`/`include`/`exclude` rules, matched against
    /// paths relative to the module root. What they exclude does not exist
    /// for the client: not listed, not sent, not even named in errors.
    pub daemon_filters: &'a FilterList,
    /// `munge symlinks`: strip the munge prefix from link targets we send.
    pub munge_symlinks: bool,
    /// Negotiated protocol (message levels differ below 28).
    pub protocol: u32,
    /// `outgoing chmod`: applied to every mode we send except symlinks'.
    pub outgoing_chmod: Option<&'a crate::transfer::options::chmod::ChmodRules>,
    /// `ignore nonreadable`: leave out what the session may not read.
    pub ignore_nonreadable: bool,
    /// The per-directory merge rules of the directories being listed.
    pub merge: crate::transfer::filter::merge::MergeStack,
    /// `fake super`: files are listed as their `user.rsync.%stat`
    /// attribute describes them (see `fake_super.rs`).
    pub fake_super: bool,
    /// The module is not chrooted: a link followed to a directory (`-k`,
    /// `-L`, a `dir/` argument) is stat'ed where it really leads, as
    /// upstream's daemon does, and such a directory is listed only if it
    /// is the same directory inside the module (else its opening fails
    /// with ELOOP, as upstream's confined open does).
    pub unconfined_links: bool,
}

impl Walker<'_> {
    /// Whether the client's rules exclude `name` (from the transfer root;
    /// `module_path` from the module root), with the merge rules of the
    /// directory being listed.
    pub(crate) fn client_excludes(&self, name: impl AsRef<[u8]>, module_path: impl AsRef<[u8]>, is_dir: bool) -> bool {
        self.filters.excludes_at(name, module_path, is_dir, self.merge.current().as_deref())
    }
}
