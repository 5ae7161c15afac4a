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
/// there (upstream MAX_CHAIN_LEN): bounds the work on pathological inputs
/// (many blocks sharing one weak sum) to linear time.
const MAX_CHAIN_LEN: u32 = 1024;
/// How much we read from the file at a time.
const READ_CHUNK: usize = 256 * 1024;
const NONE: u32 = u32::MAX;

/// Counters for the transfer statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatchStats {
    /// Bytes sent as literal data.
    pub literal_bytes: u64,
    /// Bytes the receiver copies from its basis.
    pub matched_bytes: u64,
    /// Number of block tokens sent.
    pub matched_blocks: u64,
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
    buf: Vec<u8>,
    start: u64,
    file_len: u64,
    read_error: Option<io::Error>,
}

impl<'a, R: Read> Window<'a, R> {
    /// Make the window cover `[.., min(end, file_len))`.
    #[inline]
    fn ensure(&mut self, end: u64) {
        let end = end.min(self.file_len);
        if self.start + self.buf.len() as u64 >= end {
            return;
        }
        self.fill(end);
    }

    fn fill(&mut self, end: u64) {
        let have = self.start + self.buf.len() as u64;
        let want = (end - have).max(READ_CHUNK as u64).min(self.file_len - have) as usize;
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        let mut got = 0;
        while got < want && self.read_error.is_none() {
            match self.src.read(&mut self.buf[old + got..]) {
                Ok(0) => self.read_error = Some(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while sending")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.read_error = Some(e),
            }
        }
        // On error the remainder stays zero-filled, like upstream's map_ptr.
    }

    /// Forget data before `off` once enough of it has accumulated.
    #[inline]
    fn discard_before(&mut self, off: u64) {
        let dead = (off - self.start) as usize;
        if dead >= 4 * READ_CHUNK {
            self.buf.drain(..dead);
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
        Ok(())
    }

    fn block(&mut self, i: usize, data: &[u8]) -> Result<(), DeltaError> {
        self.tokens
            .block_match(i as i32, data, self.out)
            .map_err(DeltaError::io("writing block token"))?;
        self.fsum.update(data);
        self.stats.matched_bytes += data.len() as u64;
        self.stats.matched_blocks += 1;
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
pub fn send_file_delta(
    file: &mut impl Read,
    file_len: u64,
    sums: &BlockSums,
    p: &ChecksumParams,
    tokens: &mut TokenWriter,
    out: &mut impl Write,
) -> Result<SendOutcome, DeltaError> {
    check_sums(sums, p)?;
    let mut w = Window {
        src: file,
        buf: Vec::new(),
        start: 0,
        file_len,
        read_error: None,
    };
    let mut em = Emitter {
        tokens,
        out,
        fsum: FileSum::new(p),
        stats: MatchStats::default(),
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
        search(&mut w, sums, p, &mut em)?;
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

/// Hash table over the weak sums, chained through `chain`.
struct Table {
    heads: Vec<u32>,
    chain: Vec<u32>,
}

impl Table {
    fn build(weak: &[u32]) -> Table {
        let size = ((weak.len() / 8) * 10 + 11).max(1 << 16);
        let mut heads = vec![NONE; size];
        let mut chain = vec![NONE; weak.len()];
        for (i, &s) in weak.iter().enumerate() {
            let h = s as usize % size;
            chain[i] = heads[h];
            heads[h] = i as u32;
        }
        Table { heads, chain }
    }

    #[inline]
    fn first(&self, sum: u32) -> u32 {
        self.heads[sum as usize % self.heads.len()]
    }
}

fn search<R: Read, W: Write>(
    w: &mut Window<'_, R>,
    sums: &BlockSums,
    p: &ChecksumParams,
    em: &mut Emitter<'_, W>,
) -> Result<(), DeltaError> {
    let head = sums.head;
    let count = head.count as usize;
    let s2 = head.s2length as usize;
    let blen = head.blength as u64;
    let len = w.file_len;
    let last_len = head.block_len(head.count - 1) as u64;
    let end = (len + 1).saturating_sub(last_len);
    let table = Table::build(&sums.weak);

    let mut offset = 0u64;
    let mut last_match = 0u64;
    let mut want_i = 0usize;
    let mut k = blen.min(len);
    w.ensure(k);
    let mut rolling = Rolling::new(w.slice(0, k));

    while offset < end {
        let sum = rolling.value();
        let mut found = None;
        let mut i = table.first(sum);
        if i != NONE {
            let l = k; // == min(blength, len - offset)
            let mut strong_here: Option<Vec<u8>> = None;
            let mut chain_len = 0;
            while i != NONE {
                let iu = i as usize;
                if sums.weak[iu] == sum {
                    chain_len += 1;
                    if chain_len > MAX_CHAIN_LEN {
                        break;
                    }
                    if head.block_len(i as i32) as u64 == l {
                        let here = strong_here.get_or_insert_with(|| block_sum(p, w.slice(offset, offset + l))[..s2].to_vec());
                        if here.as_slice() == sums.strong_at(iu) {
                            let mut pick = iu;
                            if want_i != iu
                                && want_i < count
                                && sums.weak[want_i] == sum
                                && head.block_len(want_i as i32) as u64 == l
                                && sums.strong_at(want_i) == here.as_slice()
                            {
                                pick = want_i;
                            }
                            found = Some(pick);
                            break;
                        }
                    }
                }
                i = table.chain[iu];
            }
        }

        if let Some(bi) = found {
            let l = k;
            em.literal(w.slice(last_match, offset))?;
            em.block(bi, w.slice(offset, offset + l))?;
            offset += l;
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
    w.ensure(len);
    em.literal(w.slice(last_match, len))?;
    Ok(())
}
