//! Checksums used by the delta transfer: the weak rolling sum (upstream's
//! `get_checksum1`), the seeded strong per-block sums (`get_checksum2`) and
//! the whole-file transfer sum (`sum_init`/`sum_update`/`sum_end`).

use md4::Md4;
use md5::Md5;
use sha1::{Digest, Sha1};
use xxhash_rust::xxh3::{xxh3_128_with_seed, xxh3_64_with_seed, Xxh3};
use xxhash_rust::xxh64::{xxh64, Xxh64};

/// The transfer checksum negotiated for a session. Names follow upstream;
/// `Md4Old` is the implied "md4" of protocols 27..29, whose whole-file sum
/// is seeded, unlike the negotiated `Md4` of protocol 30+.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumKind {
    Md4Old,
    Md4,
    Md5,
    Sha1,
    Xxh64,
    Xxh3,
    Xxh128,
    None,
}

impl ChecksumKind {
    /// From the negotiated name ("md4" at protocol < 30 means the old seeded MD4).
    pub fn from_negotiated(name: &str, protocol: u32) -> Option<ChecksumKind> {
        Some(match name.to_ascii_lowercase().as_str() {
            "md4" if protocol < 30 => ChecksumKind::Md4Old,
            "md4" => ChecksumKind::Md4,
            "md5" => ChecksumKind::Md5,
            "sha1" => ChecksumKind::Sha1,
            "xxh64" | "xxhash" => ChecksumKind::Xxh64,
            "xxh3" => ChecksumKind::Xxh3,
            "xxh128" => ChecksumKind::Xxh128,
            "none" => ChecksumKind::None,
            "auto" => ChecksumKind::implied(protocol),
            _ => return None,
        })
    }

    /// The checksum used when nothing was negotiated (upstream's "auto":
    /// MD5 from protocol 30, the old MD4 before).
    pub fn implied(protocol: u32) -> ChecksumKind {
        if protocol >= 30 {
            ChecksumKind::Md5
        } else {
            ChecksumKind::Md4Old
        }
    }

    /// The name upstream negotiates it by (`md4` for both MD4s).
    pub fn name(self) -> &'static str {
        match self {
            ChecksumKind::Md4Old | ChecksumKind::Md4 => "md4",
            ChecksumKind::Md5 => "md5",
            ChecksumKind::Sha1 => "sha1",
            ChecksumKind::Xxh64 => "xxh64",
            ChecksumKind::Xxh3 => "xxh3",
            ChecksumKind::Xxh128 => "xxh128",
            ChecksumKind::None => "none",
        }
    }

    /// Digest length in bytes (upstream `csum_len_for_type(.., 0)`); this is
    /// also the length of the whole-file sum sent after each file.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumKind::None => 1,
            ChecksumKind::Md4Old | ChecksumKind::Md4 | ChecksumKind::Md5 => 16,
            ChecksumKind::Sha1 => 20,
            ChecksumKind::Xxh64 | ChecksumKind::Xxh3 => 8,
            ChecksumKind::Xxh128 => 16,
        }
    }
}

/// Everything that determines the strong and whole-file sums of a session.
#[derive(Clone, Copy, Debug)]
pub struct ChecksumParams {
    /// The negotiated transfer checksum.
    pub kind: ChecksumKind,
    /// The session's checksum seed (sent by the server in the handshake).
    pub seed: i32,
    /// `CF_CHKSUM_SEED_FIX`: MD5 block sums put the seed before the data.
    pub proper_seed_order: bool,
}

/// Upstream's `get_checksum1`: bytes are taken as *signed* chars
/// (CHAR_OFFSET is 0). Returns `(s1 & 0xffff) | (s2 << 16)`.
pub fn weak_sum(block: &[u8]) -> u32 {
    Rolling::new(block).value()
}

/// The weak sum over a sliding window, updatable in O(1) per byte.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rolling {
    s1: u32,
    s2: u32,
    len: u32,
}

#[inline]
fn sc(b: u8) -> u32 {
    b as i8 as i32 as u32
}

impl Rolling {
    /// Start a window over `block`.
    ///
    /// The sums are `s1 = Σ c[i]` and `s2 = Σ (n - i)·c[i]` (mod 2^32),
    /// over the bytes as signed chars. This runs once per matched block,
    /// so over the whole file on a delta: it is laid out for vector code.
    /// Byte `i = 16p + k` goes to lane `k` of two accumulators per lane,
    /// `a[k] = Σ_p c` and `r[k]` (the running total of `a[k]` after each
    /// piece, `Σ_p (P - p)·c`), which need only additions; the lanes are
    /// combined at the end, since `Σ p·c = P·a - r`.
    pub(crate) fn new(block: &[u8]) -> Rolling {
        const LANES: usize = 16;
        let n = block.len() as u32;
        let mut a = [0u32; LANES];
        let mut r = [0u32; LANES];
        let mut pieces = block.chunks_exact(LANES);
        let mut count = 0u32;
        for piece in &mut pieces {
            for k in 0..LANES {
                a[k] = a[k].wrapping_add(sc(piece[k]));
                r[k] = r[k].wrapping_add(a[k]);
            }
            count += 1;
        }
        let (mut s1, mut sum_pc, mut sum_kc) = (0u32, 0u32, 0u32);
        for k in 0..LANES {
            s1 = s1.wrapping_add(a[k]);
            sum_pc = sum_pc.wrapping_add(count.wrapping_mul(a[k]).wrapping_sub(r[k]));
            sum_kc = sum_kc.wrapping_add((k as u32).wrapping_mul(a[k]));
        }
        let mut s2 = n
            .wrapping_mul(s1)
            .wrapping_sub((LANES as u32).wrapping_mul(sum_pc))
            .wrapping_sub(sum_kc);
        for (pos, &b) in (count.wrapping_mul(LANES as u32)..).zip(pieces.remainder()) {
            s1 = s1.wrapping_add(sc(b));
            s2 = s2.wrapping_add(n.wrapping_sub(pos).wrapping_mul(sc(b)));
        }
        Rolling { s1, s2, len: n }
    }

    /// Slide the window one byte: drop `out_byte` from the front, append `in_byte`.
    #[inline]
    pub(crate) fn roll(&mut self, out_byte: u8, in_byte: u8) {
        self.s1 = self.s1.wrapping_sub(sc(out_byte)).wrapping_add(sc(in_byte));
        self.s2 = self.s2.wrapping_sub(self.len.wrapping_mul(sc(out_byte))).wrapping_add(self.s1);
    }

    /// Drop `out_byte` from the front without appending (the window shrinks
    /// near the end of the file).
    #[inline]
    pub(crate) fn roll_out(&mut self, out_byte: u8) {
        self.s1 = self.s1.wrapping_sub(sc(out_byte));
        self.s2 = self.s2.wrapping_sub(self.len.wrapping_mul(sc(out_byte)));
        self.len = self.len.saturating_sub(1);
    }

    /// Current window length.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// The weak sum of the current window.
    #[inline]
    pub(crate) fn value(&self) -> u32 {
        (self.s1 & 0xffff) | (self.s2 << 16)
    }
}

/// Upstream's `get_checksum2`: the seeded strong sum of one block, full
/// digest length (callers compare/send the first `s2length` bytes).
///
/// Seed placement (seed as 4 LE bytes, only when non-zero): MD4 appends it;
/// MD5 prepends it with `proper_seed_order`, else appends it; SHA1 (only
/// available through OpenSSL upstream) prepends it; xxh* use it as the hash
/// seed (sign-extended to 64 bits, as C converts the `int`).
pub fn block_sum(p: &ChecksumParams, block: &[u8]) -> Vec<u8> {
    let seed = p.seed.to_le_bytes();
    let seeded = p.seed != 0;
    match p.kind {
        ChecksumKind::Md4Old | ChecksumKind::Md4 => {
            let mut h = Md4::new();
            h.update(block);
            if seeded {
                h.update(seed);
            }
            h.finalize().to_vec()
        }
        ChecksumKind::Md5 => {
            let mut h = Md5::new();
            if seeded && p.proper_seed_order {
                h.update(seed);
            }
            h.update(block);
            if seeded && !p.proper_seed_order {
                h.update(seed);
            }
            h.finalize().to_vec()
        }
        ChecksumKind::Sha1 => {
            let mut h = Sha1::new();
            if seeded {
                h.update(seed);
            }
            h.update(block);
            h.finalize().to_vec()
        }
        ChecksumKind::Xxh64 => xxh64(block, xxh_seed(p.seed)).to_le_bytes().to_vec(),
        ChecksumKind::Xxh3 => xxh3_64_with_seed(block, xxh_seed(p.seed)).to_le_bytes().to_vec(),
        ChecksumKind::Xxh128 => {
            // low 64 bits first, then high 64, both LE == the u128 in LE.
            xxh3_128_with_seed(block, xxh_seed(p.seed)).to_le_bytes().to_vec()
        }
        ChecksumKind::None => vec![0],
    }
}

fn xxh_seed(seed: i32) -> u64 {
    seed as i64 as u64
}

enum FileSumState {
    Md4(Md4),
    Md5(Md5),
    Sha1(Sha1),
    Xxh64(Box<Xxh64>),
    Xxh3(Box<Xxh3>),
    Xxh128(Box<Xxh3>),
    None,
}

/// The whole-file transfer checksum that follows every file's token stream
/// (upstream `sum_init(xfer_sum_nni, checksum_seed)` in match.c/receiver.c).
/// Only the old protocol-27..29 MD4 is seeded (seed prepended, even when 0);
/// all the others are plain, unseeded digests.
pub struct FileSum {
    state: FileSumState,
}

impl FileSum {
    /// Start a whole-file sum for this session's parameters.
    pub fn new(p: &ChecksumParams) -> FileSum {
        let state = match p.kind {
            ChecksumKind::Md4Old => {
                let mut h = Md4::new();
                h.update(p.seed.to_le_bytes());
                FileSumState::Md4(h)
            }
            ChecksumKind::Md4 => FileSumState::Md4(Md4::new()),
            ChecksumKind::Md5 => FileSumState::Md5(Md5::new()),
            ChecksumKind::Sha1 => FileSumState::Sha1(Sha1::new()),
            ChecksumKind::Xxh64 => FileSumState::Xxh64(Box::new(Xxh64::new(0))),
            ChecksumKind::Xxh3 => FileSumState::Xxh3(Box::new(Xxh3::new())),
            ChecksumKind::Xxh128 => FileSumState::Xxh128(Box::new(Xxh3::new())),
            ChecksumKind::None => FileSumState::None,
        };
        FileSum { state }
    }

    /// Feed file data, in order.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            FileSumState::Md4(h) => h.update(data),
            FileSumState::Md5(h) => h.update(data),
            FileSumState::Sha1(h) => h.update(data),
            FileSumState::Xxh64(h) => h.update(data),
            FileSumState::Xxh3(h) | FileSumState::Xxh128(h) => h.update(data),
            FileSumState::None => {}
        }
    }

    /// The digest, `digest_len()` bytes long.
    pub fn finish(self) -> Vec<u8> {
        match self.state {
            FileSumState::Md4(h) => h.finalize().to_vec(),
            FileSumState::Md5(h) => h.finalize().to_vec(),
            FileSumState::Sha1(h) => h.finalize().to_vec(),
            FileSumState::Xxh64(h) => h.digest().to_le_bytes().to_vec(),
            FileSumState::Xxh3(h) => h.digest().to_le_bytes().to_vec(),
            FileSumState::Xxh128(h) => h.digest128().to_le_bytes().to_vec(),
            FileSumState::None => vec![0],
        }
    }
}
