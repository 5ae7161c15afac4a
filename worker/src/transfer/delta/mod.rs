//! The delta-transfer engine: everything between "here are the generator's
//! block checksums" and "here is the rebuilt file", byte-compatible with
//! upstream rsync (protocols 27..32).
//!
//! * [`checksum`] — weak rolling sum, strong block sums, whole-file sums.
//! * [`sums`] — the sum head and block-sum list (read, validate, compute, write).
//! * [`matcher`] — the sender's search for matching blocks, producing tokens.
//! * [`token`] — token stream writers/readers for every compression mode.
//! * [`apply`] — the receiver: rebuild a file from a basis and a token stream.

pub mod append;
pub mod apply;
pub mod checksum;
pub mod error;
pub mod file_sums;
pub mod matcher;
pub mod sums;
pub mod token;
mod token_deflate;
mod token_lz4;
mod token_runs;
mod token_zstd;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_interop;

pub use apply::{apply_delta, ApplyStats};
pub use checksum::{block_sum, weak_sum, ChecksumKind, ChecksumParams, FileSum, Rolling};
pub use error::DeltaError;
pub use matcher::{send_file_delta, send_file_delta_with, MatchStats, SearchMode, SendOutcome};
pub use sums::{
    compute_block_sums, read_block_sums, read_sum_head, sum_sizes_sqroot, write_block_sums, write_sum_head, BlockSums, SumHead, SumSizing,
};
pub use token::{dont_compress_matches_all, Compression, Token, TokenReader, TokenWriter};
