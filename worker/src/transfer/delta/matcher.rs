//! The sender's block search (upstream match.c): roll the weak sum over the
//! new file, look candidates up in a hash table of the generator's weak sums,
//! confirm with the strong sum, and emit literal data / block tokens. The
//! file is read through a bounded sliding window, never loaded whole.

use std::io::{self, Read, Write};

use crate::transfer::delta::checksum::{block_sum, ChecksumParams, FileSum, Rolling};
use crate::transfer::delta::error::DeltaError;
use crate::transfer::delta::sums::BlockSums;
use crate::transfer::delta::token::{TokenWriter, CHUNK_SIZE};

/// Candidates with an equal weak sum checked at one offset before giving up
/// there (upstream MAX_CHAIN_LEN).
const MAX_CHAIN_LEN: u32 = 1024;
/// Bucket entries visited at one offset, equal weak sums or not: the
/// client chooses the sums, and sums that only share a bucket (the 16-bit
/// fold makes that easy) cost a visit each without counting as a chain.
const MAX_BUCKET_VISITS: u32 = 4096;
/// How much we read from the file at a time.
const READ_CHUNK: usize = 256 * 1024;
const NONE: u32 = u32::MAX;
/// File bytes after which the token stream is pushed to the client even if
/// its frame is not full. A matched block costs four bytes of tokens, so a
/// mostly unchanged file fills a 32 KiB frame only every 8192 blocks (half
/// of a 256 MiB file): the client's receiver, which rebuilds the file from
/// those tokens, would sit idle while we read and hash that far, as it
/// does with upstream's sender. Sent every MiB instead, its work overlaps
/// ours.
const FLUSH_AFTER: u64 = 1 << 20;

/// Counters for the transfer statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatchStats {
    /// Bytes sent as literal data.
    pub literal_bytes: u64,
    /// Bytes the receiver copies from its basis.
    pub matched_bytes: u64,
    /// Number of block tokens sent (upstream's `matches`).
    pub matched_blocks: u64,
    /// Offsets whose weak sum hit a non-empty hash bucket (upstream's `hash_hits`).
    pub hash_hits: u64,
    /// Weak-sum matches the strong sum rejected (upstream's `false_alarms`).
    pub false_alarms: u64,
    /// Hash-table entries looked at, all offsets together (the search's
    /// work, bounded by [`SearchWork`]).
    pub candidates_visited: u64,
    /// The search stopped early on its work bound and sent the rest of
    /// the file as literal data.
    pub gave_up: bool,
}

/// What one file's search may spend, in proportion to the file and the
/// sums: a client sending sums that collide (in weak sums, or only in the
/// hash bucket) gets the rest of the file as literal data once this is
/// spent, instead of a search quadratic in the file's length. Real sums
/// stay far below it: a bucket holds about one block, and a strong sum is
/// computed once per weak match, which a real basis makes rare except
/// where blocks match (then the window jumps a block ahead).
struct SearchWork {
    /// Bucket entries that may still be visited.
    visits_left: u64,
    /// Bytes that may still be hashed for strong sums.
    hash_left: u64,
}

impl SearchWork {
    fn for_file(len: u64, count: usize) -> SearchWork {
        SearchWork {
            visits_left: 16 * (len + count as u64) + (1 << 16),
            hash_left: 4 * len + (16 << 20),
        }
    }

    /// Spend one bucket visit; false once none is left.
    fn visit(&mut self) -> bool {
        self.visits_left = self.visits_left.saturating_sub(1);
        self.visits_left > 0
    }

    /// Spend a strong sum over `bytes`; false once that passes the bound.
    fn hash(&mut self, bytes: u64) -> bool {
        match self.hash_left.checked_sub(bytes) {
            Some(left) => {
                self.hash_left = left;
                true
            }
            None => false,
        }
    }
}

/// Result of streaming one file.
#[derive(Debug)]
pub struct SendOutcome {
    /// The whole-file checksum the caller must send after the tokens.
    /// Deliberately wrong (as upstream does) when `read_error` is set.
    pub file_sum: Vec<u8>,
    pub stats: MatchStats,
    /// The file could not be read completely; zeros were sent in place of
    /// the missing data and `file_sum` is corrupted so the receiver rejects it.
    pub read_error: Option<io::Error>,
}

/// Sliding view of the file: holds bytes from `start` on.
struct Window<'a, R: Read> {
    src: &'a mut R,
    /// Read buffer. Its length only grows (what is initialised is reused,
    /// never zeroed again); `filled` says how much of it is file data.
    buf: Vec<u8>,
    /// File data in `buf`: `buf[..filled]` is the file from `start` on.
    filled: usize,
    start: u64,
    file_len: u64,
    read_error: Option<io::Error>,
}

impl<'a, R: Read> Window<'a, R> {
    /// Make the window cover `[.., min(end, file_len))`.
    #[inline]
    fn ensure(&mut self, end: u64) {
        let end = end.min(self.file_len);
        if self.start + self.filled as u64 >= end {
            return;
        }
        self.fill(end);
    }

    fn fill(&mut self, end: u64) {
        let have = self.start + self.filled as u64;
        let want = (end - have).max(READ_CHUNK as u64).min(self.file_len - have) as usize;
        let (from, to) = (self.filled, self.filled + want);
        if self.buf.len() < to {
            self.buf.resize(to, 0);
        }
        let mut got = from;
        // One read(2) per chunk asked for the whole rest (a reader's own
        // growth heuristics would split a 256 KiB chunk into six).
        while got < to && self.read_error.is_none() {
            match self.src.read(&mut self.buf[got..to]) {
                Ok(0) => self.read_error = Some(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while sending")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.read_error = Some(e),
            }
        }
        // On error the remainder is zero-filled, like upstream's map_ptr.
        self.buf[got..to].fill(0);
        self.filled = to;
    }

    /// Forget data before `off` once enough of it has accumulated.
    #[inline]
    fn discard_before(&mut self, off: u64) {
        let dead = (off - self.start) as usize;
        if dead >= 4 * READ_CHUNK {
            self.buf.copy_within(dead..self.filled, 0);
            self.filled -= dead;
            self.start = off;
        }
    }

    #[inline]
    fn byte(&self, off: u64) -> u8 {
        self.buf[(off - self.start) as usize]
    }

    #[inline]
    fn slice(&self, from: u64, to: u64) -> &[u8] {
        &self.buf[(from - self.start) as usize..(to - self.start) as usize]
    }
}

struct Emitter<'a, W: Write> {
    tokens: &'a mut TokenWriter,
    out: &'a mut W,
    fsum: FileSum,
    stats: MatchStats,
    /// File bytes covered by tokens since the output was last flushed
    /// ([`FLUSH_AFTER`]).
    since_flush: u64,
}

impl<'a, W: Write> Emitter<'a, W> {
    fn literal(&mut self, data: &[u8]) -> Result<(), DeltaError> {
        for chunk in data.chunks(CHUNK_SIZE) {
            self.tokens
                .literal(chunk, self.out)
                .map_err(DeltaError::io("writing literal data"))?;
            self.fsum.update(chunk);
        }
        self.stats.literal_bytes += data.len() as u64;
        self.covered(data.len())
    }

    fn block(&mut self, i: usize, data: &[u8]) -> Result<(), DeltaError> {
        self.tokens
            .block_match(i as i32, data, self.out)
            .map_err(DeltaError::io("writing block token"))?;
        self.fsum.update(data);
        self.stats.matched_bytes += data.len() as u64;
        self.stats.matched_blocks += 1;
        self.covered(data.len())
    }

    /// Count `len` more file bytes sent; flush every [`FLUSH_AFTER`].
    fn covered(&mut self, len: usize) -> Result<(), DeltaError> {
        self.since_flush += len as u64;
        if self.since_flush >= FLUSH_AFTER {
            self.since_flush = 0;
            self.out.flush().map_err(DeltaError::io("sending tokens"))?;
        }
        Ok(())
    }
}

fn check_sums(sums: &BlockSums, p: &ChecksumParams) -> Result<(), DeltaError> {
    let h = sums.head;
    let ok = h.count >= 0
        && sums.weak.len() == h.count as usize
        && h.s2length >= 0
        && (h.s2length as usize) <= p.kind.digest_len()
        && sums.strong.len() == h.count as usize * h.s2length as usize
        && (h.count == 0 || (h.blength > 0 && h.remainder >= 0 && h.remainder <= h.blength));
    if ok {
        Ok(())
    } else {
        Err(DeltaError::BadSumHead(format!("block sums inconsistent with head {h:?}")))
    }
}

/// Stream one file against the generator's sums: writes the token stream
/// including the end token and returns the whole-file checksum (the caller
/// writes it). `file_len` bytes are read sequentially from `file`.
#[cfg(test)]
pub(crate) fn send_file_delta(
    file: &mut impl Read,
    file_len: u64,
    sums: &BlockSums,
    p: &ChecksumParams,
    tokens: &mut TokenWriter,
    out: &mut impl Write,
) -> Result<SendOutcome, DeltaError> {
    send_file_delta_with(file, file_len, sums, p, SearchMode::default(), tokens, out)
}

/// [`send_file_delta`] for a receiver that uses its basis as `mode` says.
pub fn send_file_delta_with(
    file: &mut impl Read,
    file_len: u64,
    sums: &BlockSums,
    p: &ChecksumParams,
    mode: SearchMode,
    tokens: &mut TokenWriter,
    out: &mut impl Write,
) -> Result<SendOutcome, DeltaError> {
    check_sums(sums, p)?;
    let mut w = Window {
        src: file,
        buf: Vec::new(),
        filled: 0,
        start: 0,
        file_len,
        read_error: None,
    };
    let mut em = Emitter {
        tokens,
        out,
        fsum: FileSum::new(p),
        stats: MatchStats::default(),
        since_flush: 0,
    };

    if file_len == 0 || sums.head.count == 0 {
        let mut off = 0u64;
        while off < file_len {
            let n = (file_len - off).min(CHUNK_SIZE as u64);
            w.ensure(off + n);
            em.literal(w.slice(off, off + n))?;
            off += n;
            w.discard_before(off);
        }
    } else {
        search(&mut w, sums, p, mode, &mut em)?;
    }
    em.tokens.end_file(em.out).map_err(DeltaError::io("writing end token"))?;

    let mut file_sum = em.fsum.finish();
    if w.read_error.is_some() {
        let all_zero = file_sum.iter().all(|&b| b == 0);
        file_sum.iter_mut().for_each(|b| *b = 0);
        if all_zero {
            if let Some(last) = file_sum.last_mut() {
                *last = 1;
            }
        }
    }
    Ok(SendOutcome {
        file_sum,
        stats: em.stats,
        read_error: w.read_error,
    })
}

/// Upstream's TRADITIONAL_TABLESIZE: below this many buckets the weak sum
/// is folded to 16 bits (`SUM2HASH`); bigger tables take it modulo.
const TRADITIONAL_TABLESIZE: usize = 1 << 16;

/// Hash table over the weak sums, chained through `chain`, laid out as
/// upstream's `build_hash_table` (same buckets, same chain order), so the
/// search visits candidates in the same order and its counters agree.
struct Table {
    heads: Vec<u32>,
    chain: Vec<u32>,
}

impl Table {
    fn build(weak: &[u32]) -> Table {
        let size = ((weak.len() / 8) * 10 + 11).max(TRADITIONAL_TABLESIZE);
        let mut table = Table {
            heads: vec![NONE; size],
            chain: vec![NONE; weak.len()],
        };
        for (i, &s) in weak.iter().enumerate() {
            let h = table.bucket(s);
            table.chain[i] = table.heads[h];
            table.heads[h] = i as u32;
        }
        table
    }

    #[inline]
    fn bucket(&self, sum: u32) -> usize {
        if self.heads.len() == TRADITIONAL_TABLESIZE {
            ((sum & 0xFFFF) + (sum >> 16)) as usize & 0xFFFF
        } else {
            sum as usize % self.heads.len()
        }
    }
}

/// How the receiver uses its basis, which limits what may match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchMode {
    /// The receiver writes into its basis file as it goes (upstream's
    /// `updating_basis_file`: `--inplace`, or a partial-dir file with the
    /// client's `I` capability). A block it has already overwritten must
    /// not be referenced, so only blocks at or after the current offset
    /// (or proven to sit at the same offset) may match.
    pub updating_basis: bool,
}

fn search<R: Read, W: Write>(
    w: &mut Window<'_, R>,
    sums: &BlockSums,
    p: &ChecksumParams,
    mode: SearchMode,
    em: &mut Emitter<'_, W>,
) -> Result<(), DeltaError> {
    let head = sums.head;
    let count = head.count as usize;
    let s2 = head.s2length as usize;
    let blen = head.blength as u64;
    let len = w.file_len;
    let last_len = head.block_len(head.count - 1) as u64;
    let end = (len + 1).saturating_sub(last_len);
    let mut table = Table::build(&sums.weak);
    let updating = mode.updating_basis;
    // Blocks proven identical at the same offset in both files (upstream SUMFLG_SAME_OFFSET).
    let mut same_offset = if updating { vec![false; count] } else { Vec::new() };
    let block_offset = |i: usize| i as u64 * blen;
    let mut aligned = Aligned::default();

    let mut offset = 0u64;
    let mut last_match = 0u64;
    let mut want_i = 0usize;
    let mut k = blen.min(len);
    w.ensure(k);
    let mut rolling = Rolling::new(w.slice(0, k));
    let mut work = SearchWork::for_file(len, count);

    while offset < end {
        let sum = rolling.value();
        let mut found = None;
        let bucket = table.bucket(sum);
        let mut i = table.heads[bucket];
        if i != NONE {
            em.stats.hash_hits += 1;
            let l = k; // == min(blength, len - offset)
            let mut strong_here: Option<Vec<u8>> = None;
            let mut chain_len = 0;
            let mut visits = 0;
            // The link pointing at `i`: a bucket head or a chain entry.
            let mut prev: Option<usize> = None;
            while i != NONE {
                visits += 1;
                em.stats.candidates_visited += 1;
                if !work.visit() {
                    em.stats.gave_up = true;
                    break;
                }
                if visits > MAX_BUCKET_VISITS {
                    break;
                }
                let iu = i as usize;
                let next = table.chain[iu];
                if updating && block_offset(iu) < offset && !same_offset[iu] {
                    // Already overwritten by the receiver: drop it for good.
                    match prev {
                        None => table.heads[bucket] = next,
                        Some(pi) => table.chain[pi] = next,
                    }
                    i = next;
                    continue;
                }
                prev = Some(iu);
                i = next;
                if sums.weak[iu] != sum {
                    continue;
                }
                chain_len += 1;
                if chain_len > MAX_CHAIN_LEN {
                    break;
                }
                if head.block_len(iu as i32) as u64 != l {
                    continue;
                }
                if strong_here.is_none() && !work.hash(l) {
                    em.stats.gave_up = true;
                    break;
                }
                let here = strong_here.get_or_insert_with(|| block_sum(p, w.slice(offset, offset + l))[..s2].to_vec());
                if here.as_slice() != sums.strong_at(iu) {
                    em.stats.false_alarms += 1;
                    continue;
                }
                let mut pick = Pick {
                    block: iu,
                    at: offset,
                    sum,
                    strong: here.clone(),
                };
                if updating {
                    if let Some(aligned) = aligned.realign(w, sums, p, &pick) {
                        pick = aligned;
                        same_offset[pick.block] = true;
                        want_i = pick.block;
                    }
                }
                // An adjacent block makes a cheaper token run.
                let usable = |b: usize| !updating || block_offset(b) >= pick.at || same_offset[b];
                if want_i != pick.block && want_i < count && usable(want_i) && pick.same_sums_as(sums, want_i) {
                    pick.block = want_i;
                }
                found = Some((pick.block, pick.at));
                break;
            }
        }

        if em.stats.gave_up {
            break;
        }
        if let Some((bi, at)) = found {
            let l = k;
            w.ensure(at + l);
            em.literal(w.slice(last_match, at))?;
            em.block(bi, w.slice(at, at + l))?;
            offset = at + l;
            last_match = offset;
            want_i = bi + 1;
            w.discard_before(offset);
            if offset >= end {
                break;
            }
            k = blen.min(len - offset);
            w.ensure(offset + k);
            rolling = Rolling::new(w.slice(offset, offset + k));
            continue;
        }

        // No match here: slide the window one byte.
        w.ensure(offset + k + 1);
        let out_b = w.byte(offset);
        if offset + k < len {
            rolling.roll(out_b, w.byte(offset + k));
        } else {
            rolling.roll_out(out_b);
            k -= 1;
        }
        offset += 1;
        if offset - last_match >= CHUNK_SIZE as u64 {
            em.literal(w.slice(last_match, offset))?;
            last_match = offset;
            w.discard_before(offset);
        }
    }
    send_rest(w, em, last_match)
}

/// The rest of the file from `from` as literal data, a window's worth at a
/// time (after a give-up it may be most of the file).
fn send_rest<R: Read, W: Write>(w: &mut Window<'_, R>, em: &mut Emitter<'_, W>, mut from: u64) -> Result<(), DeltaError> {
    let len = w.file_len;
    while from < len {
        let to = len.min(from + CHUNK_SIZE as u64);
        w.ensure(to);
        em.literal(w.slice(from, to))?;
        from = to;
        w.discard_before(from);
    }
    Ok(())
}

/// A match the search settled on: the block, where the data starts, and
/// that data's sums.
struct Pick {
    /// The basis block.
    block: usize,
    /// The offset of the matching data in the new file.
    at: u64,
    /// Its weak sum.
    sum: u32,
    /// Its strong sum, cut to the sums' length.
    strong: Vec<u8>,
}

impl Pick {
    /// Whether block `b` has this match's length and sums.
    fn same_sums_as(&self, sums: &BlockSums, b: usize) -> bool {
        sums.weak[b] == self.sum
            && sums.head.block_len(b as i32) == sums.head.block_len(self.block as i32)
            && sums.strong_at(b) == self.strong.as_slice()
    }
}

/// `--inplace` bookkeeping: the block whose offset in the basis is the
/// first at or after the search's offset.
#[derive(Default)]
struct Aligned {
    /// That block's offset.
    offset: u64,
    /// Its index.
    block: usize,
}

impl Aligned {
    /// Upstream's in-place preference: moves `pick` to the block at the
    /// same offset in both files when that block matches too (or, for a
    /// run of zeros, to the aligned position just ahead); `None` keeps it.
    fn realign<R: Read>(&mut self, w: &mut Window<'_, R>, sums: &BlockSums, p: &ChecksumParams, pick: &Pick) -> Option<Pick> {
        let head = sums.head;
        let blen = head.blength as u64;
        let l = head.block_len(pick.block as i32) as u64;
        while self.offset < pick.at {
            self.offset += blen;
            self.block += 1;
        }
        let zeros_ahead = pick.sum == 0 && l == blen && self.offset + l <= w.file_len;
        if !((pick.at == self.offset || zeros_ahead) && self.block < head.count as usize) {
            return None;
        }
        let (at, sum, strong) = realign(w, sums, p, pick.at, self.offset, self.block, pick.block, pick.sum, &pick.strong, l)?;
        Some(Pick {
            block: self.block,
            at,
            sum,
            strong,
        })
    }
}

/// Upstream's in-place preference for a block at the same offset in both
/// files: the match found at `offset` (block `pick`) is replaced by the
/// block at the aligned position when that block has the same sums. When
/// the aligned position lies ahead (a run of zeros), the data there must
/// match too, and the match moves forward to it. Returns where the match
/// now starts and the sums of the data matched there, or `None` to keep
/// the original match.
#[allow(clippy::too_many_arguments)]
fn realign<R: Read>(
    w: &mut Window<'_, R>,
    sums: &BlockSums,
    p: &ChecksumParams,
    offset: u64,
    aligned_offset: u64,
    aligned_i: usize,
    pick: usize,
    sum: u32,
    strong: &[u8],
    l: u64,
) -> Option<(u64, u32, Vec<u8>)> {
    let head = sums.head;
    if aligned_i != pick
        && (sums.weak[aligned_i] != sum || head.block_len(aligned_i as i32) as u64 != l || sums.strong_at(aligned_i) != strong)
    {
        return None;
    }
    if offset == aligned_offset {
        return Some((offset, sum, strong.to_vec()));
    }
    w.ensure(aligned_offset + l);
    let data = w.slice(aligned_offset, aligned_offset + l);
    let a_sum = Rolling::new(data).value();
    if a_sum != sums.weak[aligned_i] {
        return None;
    }
    let a_strong = block_sum(p, data)[..head.s2length as usize].to_vec();
    if a_strong.as_slice() != sums.strong_at(aligned_i) {
        return None;
    }
    Some((aligned_offset, a_sum, a_strong))
}
