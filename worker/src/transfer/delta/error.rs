//! The single error type of the delta engine, with enough context in every
//! variant to tell which file/stage of the transfer went wrong.

use std::io;
use thiserror::Error;

/// Everything that can go wrong while reading sums, matching, or applying a
/// delta. Protocol violations by the peer are distinct from local I/O errors
/// so the session can decide between "abort the connection" and "fail this file".
#[derive(Debug, Error)]
pub enum DeltaError {
    /// An I/O error, tagged with what we were doing when it happened.
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    /// The peer sent a sum head that upstream's `read_sum_head` would reject.
    #[error("invalid sum head: {0}")]
    BadSumHead(String),
    /// The peer sent a malformed token stream.
    #[error("invalid token stream: {0}")]
    BadToken(String),
    /// The (de)compressor rejected the data.
    #[error("{codec} stream error: {detail}")]
    Compression { codec: &'static str, detail: String },
    /// A token referenced a block that the sum head does not describe.
    #[error("block index {index} out of range (count {count})")]
    BlockOutOfRange { index: i64, count: i32 },
    /// A block token arrived but there is no basis file to copy it from.
    #[error("block token {index} received without a basis file")]
    MissingBasis { index: i32 },
    /// The basis file ended before the referenced block did.
    #[error("basis file too short for block {index} at offset {offset} (+{len})")]
    ShortBasis { index: i32, offset: u64, len: usize },
    /// The whole-file checksum after the end token did not match the rebuilt data.
    #[error("whole-file checksum mismatch: sender {sender}, rebuilt {ours}")]
    ChecksumMismatch { sender: String, ours: String },
}

impl DeltaError {
    /// Wrap an I/O error with the operation that produced it.
    pub fn io(context: &'static str) -> impl FnOnce(io::Error) -> DeltaError {
        move |source| DeltaError::Io { context, source }
    }
}

/// Render bytes as lowercase hex (for error messages).
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
