//! The rsync file list: how entries are modelled, encoded for the peer,
//! decoded from the peer, sorted so both sides agree on indexes, and how the
//! uid/gid name lists that follow the list are built and read.

pub mod decode;
pub mod encode;
pub mod entry;
pub mod error;
pub mod ids;
pub mod options;
pub mod sort;
pub mod wire30;
pub mod xmit;

#[cfg(test)]
mod tests;

pub use decode::{FlistDecoder, FlistTrailer, HlinkRole};
pub use encode::FlistEncoder;
pub use entry::FileEntry;
pub use error::FlistError;
pub use ids::{IdKind, IdNamer, SystemIdNamer};
pub use options::FlistOptions;
pub use sort::{f_name_cmp, sort_and_clean, sort_and_mark_duplicates, SortedEntry};

/// Longest path (including the terminating NUL upstream keeps) a Linux rsync
/// accepts in a file list: upstream uses the platform's MAXPATHLEN (4096).
pub const MAXPATHLEN: usize = 4096;
