//! The receiver side of a delta (upstream receiver.c `receive_data`): rebuild
//! a file from the token stream and the basis, then verify the whole-file
//! checksum that follows the end token.
//!
//! Where the rebuilt bytes go is a [`RebuildSink`]: any writer (a new file,
//! written front to back), or a sink that updates the basis file itself in
//! place (`--inplace`, `--append`), which may skip a block that is already
//! where it belongs.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::transfer::delta::checksum::{ChecksumParams, FileSum};
use crate::transfer::delta::error::{hex, DeltaError};
use crate::transfer::delta::sums::SumHead;
use crate::transfer::delta::token::{Token, TokenReader};

/// What the rebuilt file was made of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Bytes received as literal data.
    pub literal_bytes: u64,
    /// Bytes copied from the basis.
    pub matched_bytes: u64,
    /// Total bytes written to `out`.
    pub total_bytes: u64,
    /// The whole-file sum the sender sent (and ours matched).
    pub file_sum: FileDigest,
}

/// A whole-file sum, kept without allocating (the longest is SHA1's 20 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileDigest {
    bytes: [u8; 32],
    len: u8,
}

impl FileDigest {
    fn new(sum: &[u8]) -> Self {
        let mut d = FileDigest::default();
        let len = sum.len().min(d.bytes.len());
        d.bytes[..len].copy_from_slice(&sum[..len]);
        d.len = len as u8;
        d
    }

    /// The sum's bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Where the rebuilt file's bytes go, in order.
pub trait RebuildSink {
    /// Literal data from the sender.
    fn literal(&mut self, data: &[u8]) -> io::Result<()>;
    /// A block of the basis, which sits at `basis_offset` there.
    fn matched(&mut self, basis_offset: u64, data: &[u8]) -> io::Result<()>;
}

/// Every writer rebuilds front to back.
impl<W: Write> RebuildSink for W {
    fn literal(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_all(data)
    }

    fn matched(&mut self, _basis_offset: u64, data: &[u8]) -> io::Result<()> {
        self.write_all(data)
    }
}

/// Receiver: rebuild the file from `basis` (random access) and the token
/// stream read from `r`, write it to `out`, and verify the whole-file
/// checksum read after the end token. Every block index is checked against
/// `head`, and every block must be fully present in the basis.
pub fn apply_delta<B: Read + Seek>(
    tokens: &mut TokenReader,
    r: &mut impl Read,
    basis: Option<&mut B>,
    head: &SumHead,
    p: &ChecksumParams,
    out: &mut impl RebuildSink,
) -> Result<ApplyStats, DeltaError> {
    let mut fsum = FileSum::new(p);
    let mut stats = apply_tokens(tokens, r, basis, head, &mut fsum, out)?;
    stats.file_sum = verify_file_sum(r, fsum, p)?;
    Ok(stats)
}

/// The token part of [`apply_delta`]: everything up to the end token, fed
/// to `fsum` as well as to `out` (a caller that keeps data already in
/// place, as `--append-verify` does, feeds that to `fsum` first).
pub(crate) fn apply_tokens<B: Read + Seek>(
    tokens: &mut TokenReader,
    r: &mut impl Read,
    mut basis: Option<&mut B>,
    head: &SumHead,
    fsum: &mut FileSum,
    out: &mut impl RebuildSink,
) -> Result<ApplyStats, DeltaError> {
    let mut stats = ApplyStats::default();
    let mut block = Vec::new();
    // Where the basis is positioned: consecutive blocks (the common case)
    // are read on without a seek, which would also throw away a buffered
    // reader's read-ahead.
    let mut basis_at: Option<u64> = None;
    loop {
        match tokens.next(r)? {
            Token::End => break,
            Token::Literal(data) => {
                out.literal(&data).map_err(DeltaError::io("writing rebuilt file"))?;
                fsum.update(&data);
                stats.literal_bytes += data.len() as u64;
            }
            Token::Block(k) => {
                if k < 0 || k >= head.count {
                    return Err(DeltaError::BlockOutOfRange {
                        index: k as i64,
                        count: head.count,
                    });
                }
                let b = basis.as_deref_mut().ok_or(DeltaError::MissingBasis { index: k })?;
                let offset = head.block_offset(k);
                let len = head.block_len(k);
                block.resize(len, 0);
                if basis_at != Some(offset) {
                    b.seek(SeekFrom::Start(offset)).map_err(DeltaError::io("seeking in basis file"))?;
                }
                b.read_exact(&mut block)
                    .map_err(|_| DeltaError::ShortBasis { index: k, offset, len })?;
                basis_at = Some(offset + len as u64);
                tokens.see_block(&block)?;
                out.matched(offset, &block).map_err(DeltaError::io("writing rebuilt file"))?;
                fsum.update(&block);
                stats.matched_bytes += len as u64;
            }
        }
    }
    stats.total_bytes = stats.literal_bytes + stats.matched_bytes;
    Ok(stats)
}

/// Read the sender's whole-file checksum and compare it with ours.
pub(crate) fn verify_file_sum(r: &mut impl Read, fsum: FileSum, p: &ChecksumParams) -> Result<FileDigest, DeltaError> {
    let ours = fsum.finish();
    let mut sender = vec![0u8; p.kind.digest_len()];
    r.read_exact(&mut sender).map_err(DeltaError::io("reading whole-file checksum"))?;
    if sender != ours {
        return Err(DeltaError::ChecksumMismatch {
            sender: hex(&sender),
            ours: hex(&ours),
        });
    }
    Ok(FileDigest::new(&sender))
}
