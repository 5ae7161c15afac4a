//! The generator's block-sum list: the sum head (count, block length,
//! strong-sum length, remainder) and `count` pairs of weak + truncated strong
//! sums. Reading validates like upstream's `read_sum_head` (including the
//! CVE-2024-12084 s2length bound); computing follows `sum_sizes_sqroot` and
//! `generate_and_send_sums`.

use std::io::{self, Read, Write};

use crate::transfer::delta::checksum::{block_sum, weak_sum, ChecksumParams};
use crate::transfer::delta::error::DeltaError;
use oxrsyncd_protocol::wire::{read_int, write_int};

/// Upstream BLOCK_SIZE: the minimum / small-file block length.
pub(crate) const BLOCK_SIZE: i32 = 700;
/// Upstream MAX_BLOCK_SIZE (protocol >= 30).
pub(crate) const MAX_BLOCK_SIZE: i32 = 1 << 17;
/// Upstream OLD_MAX_BLOCK_SIZE (protocol < 30).
pub(crate) const OLD_MAX_BLOCK_SIZE: i32 = 1 << 29;
/// Upstream SUM_LENGTH: the full strong-sum length used for the redo phase.
pub(crate) const SUM_LENGTH: usize = 16;
/// Upstream SHORT_SUM_LENGTH: the minimum strong-sum length of the first pass.
pub(crate) const SHORT_SUM_LENGTH: usize = 2;
const BLOCKSUM_BIAS: i32 = 10;
/// Upper bound on the block count we accept from a peer. 2^26 blocks covers
/// an 8 TiB file at the 128 KiB maximum block length; anything larger is
/// refused rather than trusted to drive allocations.
pub(crate) const MAX_SUM_COUNT: i32 = 1 << 26;

/// The header preceding a block-sum list (`struct sum_struct` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SumHead {
    pub count: i32,
    pub blength: i32,
    pub s2length: i32,
    pub remainder: i32,
}

impl SumHead {
    /// What holding this head's sums costs in memory (a weak sum and the
    /// strong sum's bytes per block), for the session's budget.
    pub fn memory_cost(&self) -> usize {
        let count = usize::try_from(self.count).unwrap_or(0);
        let strong = usize::try_from(self.s2length).unwrap_or(0);
        count.saturating_mul(4 + strong)
    }

    /// Length of block `i` (the last one may be short).
    pub fn block_len(&self, i: i32) -> usize {
        if i == self.count - 1 && self.remainder != 0 {
            self.remainder as usize
        } else {
            self.blength as usize
        }
    }

    /// Offset of block `i` in the basis file.
    pub fn block_offset(&self, i: i32) -> u64 {
        i as u64 * self.blength as u64
    }

    /// How many bytes of the basis the blocks cover (upstream's
    /// `sum.flength` as `--append` computes it).
    pub fn covered_len(&self) -> u64 {
        if self.count <= 0 {
            return 0;
        }
        let full = self.count as u64 * self.blength as u64;
        if self.remainder != 0 {
            full - (self.blength - self.remainder) as u64
        } else {
            full
        }
    }

    /// Total basis length the head describes.
    pub fn file_len(&self) -> u64 {
        if self.count <= 0 {
            return 0;
        }
        self.block_offset(self.count - 1) + self.block_len(self.count - 1) as u64
    }
}

/// A sum head and its block sums, as the sender needs them for matching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSums {
    pub head: SumHead,
    /// Weak (rolling) sum per block.
    pub weak: Vec<u32>,
    /// `count * s2length` bytes: the truncated strong sum per block.
    pub strong: Vec<u8>,
}

impl BlockSums {
    /// The truncated strong sum of block `i`.
    pub fn strong_at(&self, i: usize) -> &[u8] {
        let l = self.head.s2length as usize;
        &self.strong[i * l..(i + 1) * l]
    }
}

/// How the generator sizes blocks: upstream's `--block-size` and
/// `csum_length` (SHORT_SUM_LENGTH normally, SUM_LENGTH in the redo pass).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SumSizing {
    /// Fixed block length from `-B`, or `None` for the square-root rule.
    pub block_size: Option<i32>,
    /// Minimum strong-sum length (2 first pass, 16 for redo).
    pub csum_length: usize,
}

impl Default for SumSizing {
    fn default() -> Self {
        SumSizing {
            block_size: None,
            csum_length: SHORT_SUM_LENGTH,
        }
    }
}

/// Read and validate a sum head the way upstream `read_sum_head` does.
/// `xfer_sum_len` is the negotiated checksum's digest length.
pub fn read_sum_head(r: &mut impl Read, protocol: u32, xfer_sum_len: usize) -> Result<SumHead, DeltaError> {
    let ctx = DeltaError::io;
    let max_blength = if protocol < 30 { OLD_MAX_BLOCK_SIZE } else { MAX_BLOCK_SIZE };
    let count = read_int(r).map_err(ctx("reading sum head count"))?;
    if count < 0 {
        return Err(DeltaError::BadSumHead(format!("negative checksum count {count}")));
    }
    if count > MAX_SUM_COUNT {
        return Err(DeltaError::BadSumHead(format!(
            "checksum count {count} too large (max {MAX_SUM_COUNT})"
        )));
    }
    let blength = read_int(r).map_err(ctx("reading sum head block length"))?;
    if blength < 0 || blength > max_blength {
        return Err(DeltaError::BadSumHead(format!("block length {blength} outside 0..={max_blength}")));
    }
    if count > 0 && blength == 0 {
        return Err(DeltaError::BadSumHead(format!("zero block length with {count} blocks")));
    }
    let s2length = if protocol < 27 {
        SHORT_SUM_LENGTH as i32
    } else {
        read_int(r).map_err(ctx("reading sum head strong-sum length"))?
    };
    if s2length < 0 || s2length as usize > xfer_sum_len {
        return Err(DeltaError::BadSumHead(format!(
            "strong-sum length {s2length} outside 0..={xfer_sum_len}"
        )));
    }
    let remainder = read_int(r).map_err(ctx("reading sum head remainder"))?;
    if remainder < 0 || remainder > blength {
        return Err(DeltaError::BadSumHead(format!("remainder {remainder} outside 0..={blength}")));
    }
    Ok(SumHead {
        count,
        blength,
        s2length,
        remainder,
    })
}

/// Write a sum head (s2length only from protocol 27).
pub(crate) fn write_sum_head(w: &mut impl Write, h: &SumHead, protocol: u32) -> io::Result<()> {
    let mut b = Vec::with_capacity(16);
    write_int(&mut b, h.count)?;
    write_int(&mut b, h.blength)?;
    if protocol >= 27 {
        write_int(&mut b, h.s2length)?;
    }
    write_int(&mut b, h.remainder)?;
    w.write_all(&b)
}

/// Read the `head.count` block sums that follow a validated head.
/// Memory grows with the data actually received, not with the claimed count.
pub fn read_block_sums(r: &mut impl Read, head: SumHead) -> Result<BlockSums, DeltaError> {
    let n = head.count.max(0) as usize;
    let l = head.s2length.max(0) as usize;
    let pre = n.min(1 << 16);
    let mut weak = Vec::with_capacity(pre);
    let mut strong = Vec::with_capacity(pre * l);
    let mut buf = vec![0u8; 4 + l];
    for _ in 0..n {
        r.read_exact(&mut buf).map_err(DeltaError::io("reading block sums"))?;
        weak.push(u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]));
        strong.extend_from_slice(&buf[4..]);
    }
    Ok(BlockSums { head, weak, strong })
}

/// Write a block-sum list (head included), as the generator sends it.
pub fn write_block_sums(w: &mut impl Write, s: &BlockSums, protocol: u32) -> io::Result<()> {
    write_sum_head(w, &s.head, protocol)?;
    let l = s.head.s2length as usize;
    let mut out = Vec::with_capacity(s.weak.len() * (4 + l));
    for (i, &wk) in s.weak.iter().enumerate() {
        out.extend_from_slice(&wk.to_le_bytes());
        out.extend_from_slice(s.strong_at(i));
        if out.len() >= 64 * 1024 {
            w.write_all(&out)?;
            out.clear();
        }
    }
    w.write_all(&out)
}

/// Upstream `sum_sizes_sqroot`: choose block length and strong-sum length for
/// a basis of `len` bytes. `None` if the block count overflows an int32.
pub(crate) fn sum_sizes_sqroot(len: u64, protocol: u32, xfer_sum_len: usize, sizing: SumSizing) -> Option<SumHead> {
    let len = i64::try_from(len).ok()?;
    let max_s2length = SUM_LENGTH.min(xfer_sum_len) as i32;
    let csum_length = sizing.csum_length as i32;
    let blength: i32 = if let Some(b) = sizing.block_size.filter(|&b| b > 0) {
        b
    } else if len <= (BLOCK_SIZE as i64) * (BLOCK_SIZE as i64) {
        BLOCK_SIZE
    } else {
        let max_blength = if protocol < 30 { OLD_MAX_BLOCK_SIZE } else { MAX_BLOCK_SIZE };
        let mut c: i64 = 1;
        let mut l = len;
        loop {
            l >>= 2;
            if l == 0 {
                break;
            }
            c <<= 1;
        }
        if c >= max_blength as i64 || c > i32::MAX as i64 {
            max_blength
        } else {
            let mut b: i64 = 0;
            loop {
                b |= c;
                if len < b * b {
                    b &= !c;
                }
                c >>= 1;
                if c < 8 {
                    break;
                }
            }
            b.max(BLOCK_SIZE as i64) as i32
        }
    };
    let s2length = if protocol < 27 {
        csum_length
    } else if sizing.csum_length == SUM_LENGTH {
        max_s2length
    } else {
        let mut b = BLOCKSUM_BIAS;
        let mut l = len;
        loop {
            l >>= 1;
            if l == 0 {
                break;
            }
            b += 2;
        }
        let mut c = blength;
        loop {
            c >>= 1;
            if c == 0 || b == 0 {
                break;
            }
            b -= 1;
        }
        ((b + 1 - 32 + 7) / 8).max(csum_length).min(max_s2length)
    };
    let remainder = (len % blength as i64) as i32;
    let count = len / blength as i64 + (remainder != 0) as i64;
    let count = i32::try_from(count).ok()?;
    Some(SumHead {
        count,
        blength,
        s2length,
        remainder,
    })
}

/// Generator side: size and compute the block sums of a basis of `len` bytes
/// read sequentially from `basis` (upstream `generate_and_send_sums`).
/// A basis shorter than `len` is an error (the file changed under us).
pub(crate) fn compute_block_sums(
    basis: &mut impl Read,
    len: u64,
    p: &ChecksumParams,
    protocol: u32,
    sizing: SumSizing,
) -> Result<BlockSums, DeltaError> {
    let head = sum_sizes_sqroot(len, protocol, p.kind.digest_len(), sizing)
        .ok_or_else(|| DeltaError::BadSumHead(format!("basis of {len} bytes has too many blocks")))?;
    let l = head.s2length as usize;
    let mut weak = Vec::with_capacity(head.count as usize);
    let mut strong = Vec::with_capacity(head.count as usize * l);
    let mut buf = vec![0u8; head.blength as usize];
    for i in 0..head.count {
        let n = head.block_len(i);
        basis
            .read_exact(&mut buf[..n])
            .map_err(DeltaError::io("reading basis for block sums"))?;
        weak.push(weak_sum(&buf[..n]));
        strong.extend_from_slice(&block_sum(p, &buf[..n])[..l]);
    }
    Ok(BlockSums { head, weak, strong })
}
