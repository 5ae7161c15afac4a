//! The rsync file list: how entries are modelled, encoded for the peer,
//! decoded from the peer, sorted so both sides agree on indexes, and how the
//! uid/gid name lists that follow the list are built and read.

pub(crate) mod acl;
pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod entry;
pub(crate) mod error;
pub(crate) mod ids;
pub(crate) mod options;
pub(crate) mod sort;
pub(crate) mod wire30;
pub(crate) mod xmit;

#[cfg(test)]
mod tests;

pub(crate) use decode::FlistTrailer;
pub use decode::{FlistDecoder, HlinkRole};
pub use encode::FlistEncoder;
pub use entry::FileEntry;
pub use ids::{IdKind, IdNamer};
pub use options::FlistOptions;
pub use sort::{f_name_cmp, sort_and_mark_duplicates, SortedEntry};

/// Longest path (including the terminating NUL upstream keeps) a Linux rsync
/// accepts in a file list: upstream uses the platform's MAXPATHLEN (4096).
pub const MAXPATHLEN: usize = 4096;

/// `-X`: the longest attribute value sent whole in the list; longer ones
/// go as a checksum (upstream MAX_FULL_DATUM).
pub(crate) const MAX_FULL_DATUM: usize = 32;
