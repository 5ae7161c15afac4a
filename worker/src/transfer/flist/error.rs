//! Errors raised while encoding or decoding a file list.

use std::io;

/// Everything that can go wrong with a file list. Decoding errors describe
/// hostile or corrupt peer input; none of them panics.
#[derive(Debug, thiserror::Error)]
pub enum FlistError {
    /// The underlying stream failed or ended early (truncated list).
    #[error("file list: {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    /// A received name would exceed MAXPATHLEN, or its shared-prefix length
    /// points past the previous name.
    #[error("file list: name overflow (prefix {l1}, suffix {l2}, previous name {prev_len} bytes)")]
    NameOverflow { l1: usize, l2: usize, prev_len: usize },
    /// A name that upstream refuses: `..` components, absolute without
    /// permission, empty, or containing NUL.
    #[error("file list: unsafe pathname from sender: {name:?}")]
    UnsafeName { name: String },
    /// The mode's type bits are not one of the seven file types.
    #[error("file list: invalid file mode {mode:#o} for {name:?}")]
    BadMode { mode: u32, name: String },
    /// "." (the transfer root) arrived as something other than a directory.
    #[error("ERROR: rejecting non-directory transfer-root entry: {name}")]
    RootNotDir { name: String },
    /// A length field on the wire is out of range.
    #[error("file list: bogus {what} {value} for {name:?}")]
    BadLength { what: &'static str, value: i64, name: String },
    /// A hard-link leader index points outside the entries received so far.
    #[error("file list: hard-link reference out of range: {ndx} ({count})")]
    BadHlinkIndex { ndx: i32, count: usize },
    /// Flags that the negotiated protocol does not allow here.
    #[error("file list: invalid flags {flags:#x}")]
    BadFlags { flags: u32 },
    /// The caller asked to encode something the wire cannot carry.
    #[error("file list: cannot encode {name:?}: {why}")]
    Unencodable { name: String, why: &'static str },
    /// An entry's ACLs or extended attributes are malformed or out of
    /// range (upstream's words in `message`).
    #[error("{message}")]
    BadTail { message: String },
    /// What the entry's ACLs or attributes would keep passes the
    /// session's memory budget.
    #[error("{0}")]
    OverBudget(#[from] crate::transfer::limits::budget::OverBudget),
    /// `next` or `finish` called out of order.
    #[error("file list: {0}")]
    Sequence(&'static str),
}

impl FlistError {
    /// Wrap an I/O error with what was being read.
    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> FlistError {
        move |source| FlistError::Io { context, source }
    }
}

/// Lossy rendering of a byte name for error messages.
pub(crate) fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}
