//! Targets of the delta transfer's wire: on a pull the client's sum head
//! and block sums (read, written back byte for byte, then searched by the
//! real matcher over a file), on a push the client's token stream in each
//! compression (plain, zlib, zlibx, zstd, lz4), applied to a basis.

use std::io::Cursor;
use std::sync::OnceLock;

use oxrsyncd_worker::fuzzing::delta::{
    apply_delta, block_sum, read_block_sums, read_sum_head, send_file_delta_with, weak_sum, write_block_sums, ChecksumKind, ChecksumParams,
    Compression, FileSum, RebuildSink, SearchMode, SumHead, Token, TokenReader, TokenWriter,
};

use crate::input::{protocol, Input};

const KINDS: [ChecksumKind; 8] = [
    ChecksumKind::Md4Old,
    ChecksumKind::Md4,
    ChecksumKind::Md5,
    ChecksumKind::Sha1,
    ChecksumKind::Xxh64,
    ChecksumKind::Xxh3,
    ChecksumKind::Xxh128,
    ChecksumKind::None,
];

/// Most literal data one token may carry. Upstream's receiver gets
/// decompressed data in pieces of at most its output buffer (32 KiB for
/// zlib, ZSTD_DStreamOutSize() for zstd); one token of more than this is
/// a decompression bomb held whole (issue 14, item 3).
pub const MAX_LITERAL_TOKEN: usize = 1 << 20;

/// The basis the token target's blocks are copied from: byte `i` of every
/// basis (tests/fuzz/seeds/record.sh makes the server's basis files alike,
/// so recorded token streams refer to the same data).
pub fn basis_byte(i: usize) -> u8 {
    ((i * 31 + i / 256) & 0xff) as u8
}

/// The token target's largest block and block count.
const MAX_BLENGTH: u16 = 8192;
const MAX_BLOCKS: u8 = 64;

/// The longest basis the token target needs, made once.
fn basis() -> &'static [u8] {
    static BASIS: OnceLock<Vec<u8>> = OnceLock::new();
    BASIS.get_or_init(|| (0..usize::from(MAX_BLENGTH) * usize::from(MAX_BLOCKS)).map(basis_byte).collect())
}

fn params(input: &mut Input) -> ChecksumParams {
    let b = input.byte();
    ChecksumParams {
        kind: KINDS[usize::from(b) % KINDS.len()],
        seed: input.i32(),
        proper_seed_order: b & 0x80 != 0,
    }
}

/// Input: a protocol byte, checksum byte (kind, seed order, 0x40: the
/// receiver updates its basis in place), a seed (4 bytes), then the sum
/// head, the block sums and the file the matcher searches.
pub fn sums(data: &[u8]) {
    let mut input = Input::new(data);
    let protocol = protocol(input.byte());
    // The checksum byte also holds the search mode.
    let flags = data.get(1).copied().unwrap_or(0);
    let p = params(&mut input);
    let wire = input.rest();
    let mut r = wire;
    let Ok(head) = read_sum_head(&mut r, protocol, p.kind.digest_len()) else {
        return;
    };
    let max_blength = if protocol < 30 { 1 << 29 } else { 1 << 17 };
    assert!((0..=1 << 26).contains(&head.count), "{head:?}");
    assert!(
        (0..=max_blength).contains(&head.blength) && (0..=head.blength).contains(&head.remainder),
        "{head:?}"
    );
    assert!(head.s2length >= 0 && head.s2length as usize <= p.kind.digest_len(), "{head:?}");
    let _ = (head.file_len(), head.covered_len());
    let Ok(sums) = read_block_sums(&mut r, head) else { return };
    let consumed = wire.len() - r.len();
    let mut again = Vec::new();
    write_block_sums(&mut again, &sums, protocol).expect("writing to memory");
    assert_eq!(again, wire[..consumed], "block sums written back differ");
    let file = r;
    let mode = SearchMode {
        updating_basis: flags & 0x40 != 0,
        ..SearchMode::default()
    };
    let mut writer = TokenWriter::with_protocol(Compression::None, protocol);
    let mut out = Vec::new();
    let Ok(outcome) = send_file_delta_with(&mut &file[..], file.len() as u64, &sums, &p, mode, &mut writer, &mut out) else {
        return;
    };
    let mut whole = FileSum::new(&p);
    whole.update(file);
    assert_eq!(outcome.file_sum, whole.finish(), "the whole-file sum is the file's");
    // The tokens rebuild the file's length, and every match is one.
    let Ok(mut reader) = TokenReader::with_protocol(Compression::None, protocol) else {
        return;
    };
    let mut at = 0usize;
    let mut r = &out[..];
    loop {
        match reader.next(&mut r).expect("our own token stream decodes") {
            Token::End => break,
            Token::Literal(data) => {
                assert_eq!(Some(&data[..]), file.get(at..at + data.len()), "literal data is the file's");
                at += data.len();
            }
            Token::Block(k) => {
                assert!((0..head.count).contains(&k), "block {k} of {}", head.count);
                let len = head.block_len(k);
                let data = file.get(at..at + len).expect("a match past the file's end");
                assert_eq!(weak_sum(data), sums.weak[k as usize], "a match whose weak sum differs");
                assert_eq!(
                    block_sum(&p, data)[..head.s2length as usize],
                    *sums.strong_at(k as usize),
                    "a match whose strong sum differs"
                );
                at += len;
            }
        }
    }
    assert_eq!(at, file.len(), "the tokens cover the file");
}

const COMPRESSIONS: [Compression; 5] = [
    Compression::None,
    Compression::Zlib { level: 6 },
    Compression::ZlibX { level: 6 },
    Compression::Zstd { level: 3 },
    Compression::Lz4,
];

/// Where a rebuilt file goes: counted, each literal token bounded.
#[derive(Default)]
struct Sink {
    literal: u64,
    matched: u64,
}

impl RebuildSink for Sink {
    fn literal(&mut self, data: &[u8]) -> std::io::Result<()> {
        assert!(data.len() <= MAX_LITERAL_TOKEN, "one token decoded to {} bytes", data.len());
        self.literal += data.len() as u64;
        Ok(())
    }

    fn matched(&mut self, _offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.matched += data.len() as u64;
        Ok(())
    }
}

/// Input: a byte for protocol (low 3 bits) and compression (b >> 3, modulo 5), the
/// checksum byte and seed (as for `sums`), the sum head the generator
/// sent (block length and remainder: 2 bytes each, the length taken
/// modulo 8193; count: 1 byte, modulo 64), then
/// the token streams of up to 8 files, each with its whole-file sum.
pub fn tokens(data: &[u8]) {
    let mut input = Input::new(data);
    let b = input.byte();
    let protocol = protocol(b);
    let compression = COMPRESSIONS[usize::from(b >> 3) % COMPRESSIONS.len()];
    let p = params(&mut input);
    let blength = i32::from(input.u16() % (MAX_BLENGTH + 1));
    let remainder = i32::from(input.u16()) % (blength + 1);
    let count = if blength == 0 { 0 } else { i32::from(input.byte() % MAX_BLOCKS) };
    let head = SumHead {
        count,
        blength,
        s2length: 2,
        remainder,
    };
    let basis = &basis()[..head.file_len() as usize];
    let Ok(mut reader) = TokenReader::with_protocol(compression, protocol) else {
        return;
    };
    let mut r = input.rest();
    for _ in 0..8 {
        let mut sink = Sink::default();
        let mut basis = Cursor::new(basis);
        let Ok(stats) = apply_delta(&mut reader, &mut r, Some(&mut basis), &head, &p, &mut sink) else {
            return;
        };
        assert_eq!((stats.literal_bytes, stats.matched_bytes), (sink.literal, sink.matched));
        assert_eq!(stats.total_bytes, sink.literal + sink.matched);
        if r.is_empty() {
            return;
        }
    }
}
