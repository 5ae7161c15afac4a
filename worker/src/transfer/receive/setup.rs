//! What a push starts from and ends with: the setup the session hands
//! over ([`ReceiveSetup`], the module context plus what only a receiver
//! needs), the receiver's messages to the generator, what a push did and
//! why it failed.

use std::io;
use std::ops::Deref;
use std::path::Path;

use crate::identity::ModuleIdentity;
use crate::transfer::context::ModuleContext;
use crate::transfer::filter::rules::FilterError;
use crate::transfer::options::chmod::ChmodRules;

/// Everything a push needs from the session: the module context and what
/// only a receiver has.
pub(crate) struct ReceiveSetup<'a> {
    /// The module and the session's agreements.
    pub module: &'a ModuleContext<'a>,
    /// `incoming chmod` rules.
    pub incoming_chmod: Option<&'a ChmodRules>,
    /// The module's identity, which the generator thread takes too.
    pub identity: Option<&'a ModuleIdentity>,
    /// Whether owners may be set (the session runs as root).
    pub may_chown: bool,
    /// The module's `temp dir` (the operator's path), if set.
    pub temp_dir: Option<&'a Path>,
    /// `--files-from=:path` on a push: the module's list file, opened when
    /// the options were read, forwarded to the client while it sends its
    /// file list (see `files_from::forward_to_client`).
    pub files_from: Option<&'a std::fs::File>,
    /// `transfer logging`: a `recv` line per file received, in the
    /// module's `log format`.
    pub transfer_log: Option<crate::transfer::log_format::TransferLog<'a>>,
    /// `-A` / `-X`: the ACLs and attribute sets the client's lists carry,
    /// shared by the list decoder, the generator and the receiver.
    pub meta: std::sync::Arc<crate::transfer::receive::meta::store::MetaStore>,
}

/// A receiver's setup reads as its module context too (`setup.options`,
/// `setup.protocol`): the context is what the setup extends.
impl<'a> Deref for ReceiveSetup<'a> {
    type Target = ModuleContext<'a>;
    fn deref(&self) -> &ModuleContext<'a> {
        self.module
    }
}

/// What a push did.
#[derive(Debug, Default, Clone)]
pub(crate) struct ReceiveStats {
    pub files_received: u64,
    pub literal_bytes: u64,
    pub matched_bytes: u64,
    /// Upstream io_error bits (some files failed: exit 23).
    pub io_error: i32,
    /// Bytes read from the client, frame headers included (upstream's
    /// `total_read`).
    pub total_read: u64,
    /// Bytes written to the client (upstream's `total_written`).
    pub total_written: u64,
    /// The list's files and symlinks, by length (upstream's `total_size`).
    pub total_size: u64,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Filter(FilterError),
    #[error("{0}")]
    Protocol(String),
    /// A problem with the destination the client should see as is (exit 3).
    #[error("{0}")]
    Destination(String),
    /// The client's list names something outside the destination (exit 4).
    #[error("ABORTING due to unsafe pathname from sender: {0}")]
    UnsafeName(String),
    /// A directory the client named is one the module's filters exclude.
    /// Upstream refuses `--backup-dir` and `--temp-dir` while parsing the
    /// options (its daemon's words, exit 4), `--partial-dir` and the
    /// `--*-dest` directories once the destination is known (exit 1).
    #[error("{}Your options have been rejected by the server.", if *.at_parse { "rsync: " } else { "" })]
    OptionsRejected { at_parse: bool },
    /// An entry of the client's list lies in a directory the list does not
    /// have (upstream's generator check; exit 2).
    #[error("ABORTING due to invalid path from sender: {0}")]
    InvalidPath(String),
    /// With incremental recursion, an entry of a list outside the
    /// directory the list is for (upstream's receiver check; exit 4).
    #[error("ABORTING due to invalid path from sender: {0}")]
    OutsideListDir(String),
    /// Writing a file failed (disk full...): upstream's RERR_FILEIO (exit 11).
    #[error("{0}")]
    FileIo(String),
    /// The options cannot work here (a missing temp dir): RERR_SYNTAX (exit 1).
    #[error("{0}")]
    Usage(String),
    /// The client sent something this session never asked for or the
    /// module forbids (data for an index the generator did not request, a
    /// daemon-excluded or cleared entry): the text as is, RERR_PROTOCOL
    /// (exit 2), as upstream's receiver ends such a session.
    #[error("{0}")]
    Violation(String),
    /// The client's list would pass the session's memory budget
    /// (upstream's out-of-memory end, RERR_MALLOC, exit 22).
    #[error("{0}")]
    OutOfMemory(#[from] crate::transfer::limits::budget::OverBudget),
}

/// Messages from the receiver to the generator (upstream's pipe).
#[derive(Debug)]
pub(crate) enum ToGenerator {
    /// A file failed verification in phase 0: ask for it again.
    Redo(i32),
    /// Incremental recursion: a requested file is done with (received,
    /// refused, or the client said it will not come), so its list may be
    /// released once all of its files are.
    Finished(i32),
    /// Incremental recursion: the next list arrived.
    NewList(std::sync::Arc<crate::transfer::receive::lists::RecvList>),
    /// Incremental recursion: the client sent its last list.
    ListsEnd,
    /// The client ended a phase (the receiver read its NDX_DONE).
    PhaseDone,
    /// The receiver read everything the client sends before the goodbye.
    ReceiverDone,
    /// Protocol >= 31: the client answered our early goodbye.
    GoodbyeAnswered,
    /// The receiver stopped on an error: the generator stops too.
    Abort,
}
