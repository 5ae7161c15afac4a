//! The delta-transfer engine: everything between "here are the generator's
//! block checksums" and "here is the rebuilt file", byte-compatible with
//! upstream rsync (protocols 27..32).
//!
//! * [`checksum`] — weak rolling sum, strong block sums, whole-file sums.
//! * [`sums`] — the sum head and block-sum list (read, validate, compute, write).
//! * [`matcher`] — the sender's search for matching blocks, producing tokens.
//! * [`token`] — token stream writers/readers for every compression mode.
//! * [`apply`] — the receiver: rebuild a file from a basis and a token stream.

pub(crate) mod append;
pub(crate) mod apply;
pub(crate) mod checksum;
pub(crate) mod error;
pub(crate) mod file_sums;
pub(crate) mod matcher;
pub(crate) mod sums;
pub(crate) mod token;
mod token_deflate;
mod token_lz4;
mod token_runs;
mod token_zstd;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_interop;

pub use apply::apply_delta;
pub use checksum::{block_sum, weak_sum, ChecksumKind, ChecksumParams, FileSum};
pub(crate) use error::DeltaError;
pub use matcher::{send_file_delta_with, SearchMode};
pub(crate) use matcher::{MatchStats, SendOutcome};
pub use sums::{read_block_sums, read_sum_head, write_block_sums, BlockSums, SumHead};
pub(crate) use sums::{sum_sizes_sqroot, write_sum_head, SumSizing};
pub(crate) use token::dont_compress_matches_all;
pub use token::{Compression, Token, TokenReader, TokenWriter};
