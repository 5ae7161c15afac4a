//! The receiver side of a delta (upstream receiver.c `receive_data`): rebuild
//! a file from the token stream and the basis, then verify the whole-file
//! checksum that follows the end token.

use std::io::{Read, Seek, SeekFrom, Write};

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
}

/// Receiver: rebuild the file from `basis` (random access) and the token
/// stream read from `r`, write it to `out`, and verify the whole-file
/// checksum read after the end token. Every block index is checked against
/// `head`, and every block must be fully present in the basis.
pub fn apply_delta<B: Read + Seek>(
    tokens: &mut TokenReader,
    r: &mut impl Read,
    mut basis: Option<&mut B>,
    head: &SumHead,
    p: &ChecksumParams,
    out: &mut impl Write,
) -> Result<ApplyStats, DeltaError> {
    let mut fsum = FileSum::new(p);
    let mut stats = ApplyStats::default();
    let mut block = Vec::new();
    loop {
        match tokens.next(r)? {
            Token::End => break,
            Token::Literal(data) => {
                out.write_all(&data).map_err(DeltaError::io("writing rebuilt file"))?;
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
                b.seek(SeekFrom::Start(offset)).map_err(DeltaError::io("seeking in basis file"))?;
                b.read_exact(&mut block)
                    .map_err(|_| DeltaError::ShortBasis { index: k, offset, len })?;
                tokens.see_block(&block)?;
                out.write_all(&block).map_err(DeltaError::io("writing rebuilt file"))?;
                fsum.update(&block);
                stats.matched_bytes += len as u64;
            }
        }
    }
    stats.total_bytes = stats.literal_bytes + stats.matched_bytes;
    let ours = fsum.finish();
    let mut sender = vec![0u8; p.kind.digest_len()];
    r.read_exact(&mut sender).map_err(DeltaError::io("reading whole-file checksum"))?;
    if sender != ours {
        return Err(DeltaError::ChecksumMismatch {
            sender: hex(&sender),
            ours: hex(&ours),
        });
    }
    Ok(stats)
}
