//! Tests for the delta engine: checksum vectors, sum-head validation, exact
//! token bytes, and sender→receiver round trips for every compression.

use std::io::Cursor;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::transfer::delta::checksum::*;
use crate::transfer::delta::matcher::send_file_delta;
use crate::transfer::delta::sums::*;
use crate::transfer::delta::token::*;
use crate::transfer::delta::*;

fn hx(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn params(kind: ChecksumKind, seed: i32, proper: bool) -> ChecksumParams {
    ChecksumParams {
        kind,
        seed,
        proper_seed_order: proper,
    }
}

fn random(rng: &mut StdRng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.gen()).collect()
}

// ---------------------------------------------------------------- weak sum

#[test]
fn weak_sum_hand_vectors() {
    // Worked by hand from get_checksum1 with signed chars:
    // [01 80 ff 7f] = 1,-128,-1,127: s1 = 1,-127,-128,-1; s2 = 1,-126,-254,-255
    // -> (s1 & 0xffff) | (s2 << 16) = 0xffff | 0xff01_0000.
    assert_eq!(weak_sum(&[0x01, 0x80, 0xff, 0x7f]), 0xFF01_FFFF);
    // "abcde": s1 = 495 (0x1ef), s2 = 97*5+98*4+99*3+100*2+101 = 1475 (0x5c3).
    assert_eq!(weak_sum(b"abcde"), 0x05C3_01EF);
    assert_eq!(weak_sum(b""), 0);
}

/// The piecewise weak sum equals upstream's byte-serial definition for
/// every length around the piece size and for long blocks (where the
/// 32-bit sums wrap).
#[test]
fn weak_sum_equals_the_serial_definition() {
    let serial = |b: &[u8]| {
        let (mut s1, mut s2) = (0u32, 0u32);
        for &x in b {
            s1 = s1.wrapping_add(x as i8 as i32 as u32);
            s2 = s2.wrapping_add(s1);
        }
        (s1 & 0xffff) | (s2 << 16)
    };
    let mut rng = StdRng::seed_from_u64(11);
    let data: Vec<u8> = (0..300_010).map(|_| rng.gen::<u8>()).collect();
    for len in (0..100).chain([127, 128, 129, 700, 4096, 4097, 65_535, 131_072, 299_999]) {
        assert_eq!(weak_sum(&data[..len]), serial(&data[..len]), "len {len}");
        assert_eq!(weak_sum(&data[7..7 + len]), serial(&data[7..7 + len]), "len {len} at 7");
    }
    let high = vec![0xffu8; 200_000];
    assert_eq!(weak_sum(&high), serial(&high));
}

#[test]
fn rolling_matches_recomputation_on_random_high_bytes() {
    let mut rng = StdRng::seed_from_u64(7);
    let data: Vec<u8> = (0..5000).map(|_| rng.gen_range(0x70..=0xff)).collect();
    for win in [1usize, 3, 4, 5, 64, 700] {
        let mut r = Rolling::new(&data[..win]);
        for off in 1..=data.len() - win {
            r.roll(data[off - 1], data[off + win - 1]);
            assert_eq!(r.value(), weak_sum(&data[off..off + win]), "win {win} off {off}");
        }
        // Shrinking at the end of the file.
        let mut start = data.len() - win;
        while start < data.len() {
            r.roll_out(data[start]);
            start += 1;
            assert_eq!(r.value(), weak_sum(&data[start..]), "shrink win {win} start {start}");
            assert_eq!(r.len(), data.len() - start);
        }
    }
}

// ---------------------------------------------------------------- strong sums

// Vectors for DATA / SEED below, made with /tmp/vec.py:
//   md4: `openssl dgst -md4 -provider legacy` (python hashlib lacks md4 here),
//   md5/sha1: python3 hashlib, xxh*: python `xxhash` 4.1.0
//   (xxh64_intdigest / xxh3_64_intdigest / xxh3_128_intdigest, written LE;
//   the 128-bit value LE == low64 LE then high64 LE).
// Seed bytes are struct.pack('<i', 0x12345678), placed as noted per test.
const DATA: &[u8] = b"The quick brown fox jumps over the lazy dog\x80\xff\x01";
const SEED: i32 = 0x1234_5678;

#[test]
fn block_sum_vectors_all_kinds() {
    let cases: [(ChecksumKind, bool, &str); 8] = [
        // md4(data + seed)
        (ChecksumKind::Md4Old, true, "4d811aa91311de72eb2a1f0f437a7cc9"),
        (ChecksumKind::Md4, true, "4d811aa91311de72eb2a1f0f437a7cc9"),
        // md5(seed + data) with CF_CHKSUM_SEED_FIX
        (ChecksumKind::Md5, true, "8ef6a172c554fdaa403763d885494db5"),
        // md5(data + seed) without it
        (ChecksumKind::Md5, false, "30202cb3a5bc182a37af242d1d10fc57"),
        // sha1(seed + data)
        (ChecksumKind::Sha1, true, "6ca090719e085096b438d6bea080ca266c599d06"),
        // xxh64(data, seed), xxh3_64(data, seed), xxh3_128(data, seed)
        (ChecksumKind::Xxh64, true, "3f2469a581338579"),
        (ChecksumKind::Xxh3, true, "1eec00eb97e0be57"),
        (ChecksumKind::Xxh128, true, "bb9dfef2a5a274232e070d0e4bde2b72"),
    ];
    for (kind, proper, want) in cases {
        let got = block_sum(&params(kind, SEED, proper), DATA);
        assert_eq!(hx(&got), want, "{kind:?} proper={proper}");
        assert_eq!(got.len(), kind.digest_len());
    }
    // Seed 0 adds no bytes: md5(data).
    assert_eq!(
        hx(&block_sum(&params(ChecksumKind::Md5, 0, true), DATA)),
        "74389b2151b8dda82128e587a0c10e78"
    );
    // A negative seed is sign-extended to 64 bits for xxhash (seed -2 = 0xffff_ffff_ffff_fffe).
    assert_eq!(hx(&block_sum(&params(ChecksumKind::Xxh64, -2, true), DATA)), "70ffc648f1db38a0");
    assert_eq!(
        hx(&block_sum(&params(ChecksumKind::Xxh128, -2, true), DATA)),
        "f33fa53fe7bca840dd0b0630987dbc1e"
    );
}

#[test]
fn file_sum_vectors_all_kinds() {
    let cases: [(ChecksumKind, i32, &str); 8] = [
        // md4(seed + data): the protocol < 30 whole-file sum is seeded first ...
        (ChecksumKind::Md4Old, SEED, "3a58071306330bab6657eac9cafc4593"),
        // ... even with seed 0 (four zero bytes first).
        (ChecksumKind::Md4Old, 0, "e8215ca32b0f216e1ff5f1a431a5857b"),
        // All others are unseeded: md4(data), md5(data), sha1(data), xxh*(data, 0).
        (ChecksumKind::Md4, SEED, "e0768307f54cce6dc8cb2758cb042c74"),
        (ChecksumKind::Md5, SEED, "74389b2151b8dda82128e587a0c10e78"),
        (ChecksumKind::Sha1, SEED, "57c4ea08a2a18dbce3738f4127921fdd9b4ee2a4"),
        (ChecksumKind::Xxh64, SEED, "767414bcfcf77204"),
        (ChecksumKind::Xxh3, SEED, "c189828bed558282"),
        (ChecksumKind::Xxh128, SEED, "5be335323db94684a8f1b9d457451013"),
    ];
    for (kind, seed, want) in cases {
        let mut f = FileSum::new(&params(kind, seed, true));
        for piece in DATA.chunks(5) {
            f.update(piece);
        }
        assert_eq!(hx(&f.finish()), want, "{kind:?}");
    }
    assert_eq!(FileSum::new(&params(ChecksumKind::None, 1, true)).finish(), vec![0]);
}

#[test]
fn checksum_names_and_lengths() {
    assert_eq!(ChecksumKind::from_negotiated("md4", 29), Some(ChecksumKind::Md4Old));
    assert_eq!(ChecksumKind::from_negotiated("md4", 31), Some(ChecksumKind::Md4));
    assert_eq!(ChecksumKind::from_negotiated("xxhash", 31), Some(ChecksumKind::Xxh64));
    assert_eq!(ChecksumKind::from_negotiated("xxh128", 31), Some(ChecksumKind::Xxh128));
    assert_eq!(ChecksumKind::from_negotiated("auto", 29), Some(ChecksumKind::Md4Old));
    assert_eq!(ChecksumKind::from_negotiated("auto", 30), Some(ChecksumKind::Md5));
    assert_eq!(ChecksumKind::from_negotiated("blake3", 31), None);
    assert_eq!(ChecksumKind::Sha1.digest_len(), 20);
    assert_eq!(ChecksumKind::Xxh3.digest_len(), 8);
    assert_eq!(ChecksumKind::None.digest_len(), 1);
}

// ---------------------------------------------------------------- sum heads

fn head_bytes(v: [i32; 4]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn read_sum_head_accepts_and_round_trips() {
    let h = read_sum_head(&mut Cursor::new(head_bytes([3, 700, 16, 100])), 31, 16).unwrap();
    assert_eq!(
        h,
        SumHead {
            count: 3,
            blength: 700,
            s2length: 16,
            remainder: 100
        }
    );
    let mut b = Vec::new();
    write_sum_head(&mut b, &h, 31).unwrap();
    assert_eq!(b, head_bytes([3, 700, 16, 100]));
    // count 0 may have blength 0 (upstream's null sum head).
    read_sum_head(&mut Cursor::new(head_bytes([0, 0, 0, 0])), 31, 16).unwrap();
}

#[test]
fn read_sum_head_rejects_bad_heads() {
    let bad: [([i32; 4], u32, usize); 9] = [
        ([1, 700, 17, 0], 31, 16),           // s2length > digest length (CVE-2024-12084)
        ([1, 700, 9, 0], 31, 8),             // ... for xxh64's 8 bytes
        ([1, 700, -1, 0], 31, 16),           // negative s2length
        ([2, 0, 16, 0], 31, 16),             // blength 0 with blocks
        ([2, 700, 16, 701], 31, 16),         // remainder > blength
        ([2, 700, 16, -1], 31, 16),          // negative remainder
        ([-1, 700, 16, 0], 31, 16),          // negative count
        ([i32::MAX, 700, 16, 0], 31, 16),    // huge count
        ([1, (1 << 17) + 1, 16, 0], 30, 16), // blength above MAX_BLOCK_SIZE at 30+
    ];
    for (v, proto, dl) in bad {
        let r = read_sum_head(&mut Cursor::new(head_bytes(v)), proto, dl);
        assert!(matches!(r, Err(DeltaError::BadSumHead(_))), "{v:?} accepted: {r:?}");
    }
    // The same large blength is fine below protocol 30 (OLD_MAX_BLOCK_SIZE).
    read_sum_head(&mut Cursor::new(head_bytes([1, (1 << 17) + 1, 16, 0])), 29, 16).unwrap();
    // Truncated input is an I/O error, not a panic.
    assert!(matches!(
        read_sum_head(&mut Cursor::new(vec![1, 0, 0]), 31, 16),
        Err(DeltaError::Io { .. })
    ));
}

#[test]
fn sum_sizes_follow_upstream_sqroot_rule() {
    let d = SumSizing::default();
    // Worked by hand from sum_sizes_sqroot (see the derivations in the report).
    assert_eq!(
        sum_sizes_sqroot(0, 31, 16, d),
        Some(SumHead {
            count: 0,
            blength: 700,
            s2length: 2,
            remainder: 0
        })
    );
    assert_eq!(
        sum_sizes_sqroot(1000, 31, 16, d),
        Some(SumHead {
            count: 2,
            blength: 700,
            s2length: 2,
            remainder: 300
        })
    );
    assert_eq!(
        sum_sizes_sqroot(1_000_000, 31, 16, d),
        Some(SumHead {
            count: 1000,
            blength: 1000,
            s2length: 2,
            remainder: 0
        })
    );
    // 16 GiB: blength capped at 128 KiB; b = 10 + 2*34 - 17 = 61 -> (61+1-32+7)/8 = 4.
    assert_eq!(
        sum_sizes_sqroot(1 << 34, 31, 16, d),
        Some(SumHead {
            count: 1 << 17,
            blength: 1 << 17,
            s2length: 4,
            remainder: 0
        })
    );
    // Redo pass: full sums, capped by the digest length.
    let full = SumSizing {
        block_size: None,
        csum_length: SUM_LENGTH,
    };
    assert_eq!(sum_sizes_sqroot(5000, 31, 8, full).unwrap().s2length, 8);
    assert_eq!(sum_sizes_sqroot(5000, 31, 20, full).unwrap().s2length, 16);
    // -B fixes the block length.
    let fixed = SumSizing {
        block_size: Some(4096),
        csum_length: 2,
    };
    assert_eq!(
        sum_sizes_sqroot(10_000, 31, 16, fixed).unwrap(),
        SumHead {
            count: 3,
            blength: 4096,
            s2length: 2,
            remainder: 1808
        }
    );
}

#[test]
fn block_sums_write_read_round_trip() {
    let mut rng = StdRng::seed_from_u64(3);
    let basis = random(&mut rng, 5000);
    let p = params(ChecksumKind::Md5, 99, true);
    let sums = compute_block_sums(&mut Cursor::new(&basis), 5000, &p, 31, SumSizing::default()).unwrap();
    assert_eq!(
        sums.head,
        SumHead {
            count: 8,
            blength: 700,
            s2length: 2,
            remainder: 100
        }
    );
    assert_eq!(sums.weak[7], weak_sum(&basis[4900..]));
    assert_eq!(sums.strong_at(7), &block_sum(&p, &basis[4900..])[..2]);
    let mut wire = Vec::new();
    write_block_sums(&mut wire, &sums, 31).unwrap();
    assert_eq!(wire.len(), 16 + 8 * 6);
    let mut r = Cursor::new(wire);
    let head = read_sum_head(&mut r, 31, 16).unwrap();
    assert_eq!(read_block_sums(&mut r, head).unwrap(), sums);
}

// ---------------------------------------------------------------- token formats

#[test]
fn plain_token_bytes_exact() {
    let mut w = TokenWriter::new(Compression::None);
    let mut out = Vec::new();
    w.literal(b"abc", &mut out).unwrap();
    w.block_match(0, b"ignored", &mut out).unwrap();
    w.block_match(5, b"ignored", &mut out).unwrap();
    w.literal(b"hi", &mut out).unwrap();
    w.end_file(&mut out).unwrap();
    let want: Vec<u8> = [
        &[3, 0, 0, 0][..],
        b"abc",
        &[0xff, 0xff, 0xff, 0xff], // -(0+1)
        &[0xfa, 0xff, 0xff, 0xff], // -(5+1)
        &[2, 0, 0, 0],
        b"hi",
        &[0, 0, 0, 0],
    ]
    .concat();
    assert_eq!(out, want);

    // Literals are split into chunks of at most 32 KiB.
    let mut out = Vec::new();
    w.literal(&vec![7u8; 40000], &mut out).unwrap();
    assert_eq!(&out[..4], &32768i32.to_le_bytes());
    assert_eq!(&out[4 + 32768..8 + 32768], &7232i32.to_le_bytes());
    assert_eq!(out.len(), 8 + 40000);

    let mut r = TokenReader::new(Compression::None);
    let mut c = Cursor::new(want);
    assert_eq!(r.next(&mut c).unwrap(), Token::Literal(b"abc".to_vec()));
    assert_eq!(r.next(&mut c).unwrap(), Token::Block(0));
    assert_eq!(r.next(&mut c).unwrap(), Token::Block(5));
    assert_eq!(r.next(&mut c).unwrap(), Token::Literal(b"hi".to_vec()));
    assert_eq!(r.next(&mut c).unwrap(), Token::End);
}

#[test]
fn compressed_token_run_bytes_exact() {
    // Blocks 0,1,2 then 10 then 100, no literals. Worked from send_*_token:
    //   run 0..2: r = 0, n = 2  -> TOKENRUN_REL|0 = C0, 02 00
    //   10: r = 10 - 2 = 8      -> TOKEN_REL|8 = 88
    //   100: r = 90 > 63        -> TOKEN_LONG 20, int32 100
    //   END 00
    for c in [Compression::Lz4, Compression::ZlibX { level: 6 }, Compression::Zstd { level: 3 }] {
        let mut w = TokenWriter::new(c);
        let mut out = Vec::new();
        for b in [0, 1, 2, 10, 100] {
            w.block_match(b, b"x", &mut out).unwrap();
        }
        w.end_file(&mut out).unwrap();
        assert_eq!(out, [0xC0, 2, 0, 0x88, 0x20, 100, 0, 0, 0, 0], "{c:?}");
        let mut r = TokenReader::new(c);
        let mut cur = Cursor::new(out);
        let got: Vec<Token> = (0..6).map(|_| r.next(&mut cur).unwrap()).collect();
        let want: Vec<Token> = [0, 1, 2, 10, 100].map(Token::Block).into_iter().chain([Token::End]).collect();
        assert_eq!(got, want, "{c:?}");
    }
}

#[test]
fn compression_names_and_levels() {
    assert_eq!(
        Compression::from_negotiated(Some("zlib"), None),
        Some(Compression::Zlib { level: 6 })
    );
    assert_eq!(
        Compression::from_negotiated(Some("zlibx"), Some(12)),
        Some(Compression::ZlibX { level: 9 })
    );
    assert_eq!(Compression::from_negotiated(Some("zlib"), Some(0)), Some(Compression::None));
    assert_eq!(
        Compression::from_negotiated(Some("zstd"), Some(0)),
        Some(Compression::Zstd { level: 3 })
    );
    assert_eq!(
        Compression::from_negotiated(Some("zstd"), Some(-5)),
        Some(Compression::Zstd { level: -5 })
    );
    assert_eq!(Compression::from_negotiated(Some("lz4"), Some(4)), Some(Compression::Lz4));
    assert_eq!(Compression::from_negotiated(None, None), Some(Compression::None));
    assert_eq!(Compression::from_negotiated(Some("brotli"), None), None);
}

// ---------------------------------------------------------------- round trips

const ALL_COMPRESSIONS: [Compression; 5] = [
    Compression::None,
    Compression::Zlib { level: 6 },
    Compression::ZlibX { level: 1 },
    Compression::Zstd { level: 3 },
    Compression::Lz4,
];

/// (basis, new file) pairs covering the interesting cases.
fn scenarios() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let mut rng = StdRng::seed_from_u64(42);
    let basis = random(&mut rng, 150_000);
    // Compressible text-like data too, so zlib history matters.
    let text: Vec<u8> = (0..120_000)
        .map(|i| b"lorem ipsum dolor sit amet "[i % 27] ^ ((i / 997) as u8 & 3))
        .collect();
    let mut v = Vec::new();
    v.push(("identical", basis.clone(), basis.clone()));
    let mut ins = basis.clone();
    ins.splice(5000..5000, random(&mut rng, 333));
    ins.splice(90_000..90_000, random(&mut rng, 40_000));
    v.push(("insertions", basis.clone(), ins));
    let mut del = basis.clone();
    del.drain(1000..1700);
    del.drain(70_000..70_123);
    v.push(("deletions", basis.clone(), del));
    let mut chg = basis.clone();
    for i in (0..chg.len()).step_by(9_999) {
        chg[i] ^= 0x5a;
    }
    v.push(("changed bytes", basis.clone(), chg));
    v.push(("empty new file", basis.clone(), Vec::new()));
    v.push(("empty basis", Vec::new(), basis[..70_000].to_vec()));
    v.push(("smaller than a block", basis.clone(), basis[100..400].to_vec()));
    v.push(("no match", basis.clone(), random(&mut rng, 100_000)));
    let mut t2 = text.clone();
    t2.splice(60_000..60_000, b"INSERTED TEXT".iter().copied());
    v.push(("text edit", text.clone(), t2));
    let mut reorder = basis[75_000..].to_vec();
    reorder.extend_from_slice(&basis[..75_000]);
    v.push(("reordered", basis.clone(), reorder));
    v.push(("tail block", basis.clone(), basis[..basis.len() - 50].to_vec()));
    v
}

fn round_trip(c: Compression, p: &ChecksumParams, protocol: u32, sizing: SumSizing, cases: &[(&str, Vec<u8>, Vec<u8>)]) -> Vec<MatchStats> {
    // One writer/reader pair for the whole "session", files back to back.
    let mut writer = TokenWriter::with_protocol(c, protocol);
    let mut wire = Vec::new();
    let mut heads = Vec::new();
    let mut stats = Vec::new();
    for (name, basis, new) in cases {
        let sums = compute_block_sums(&mut Cursor::new(basis), basis.len() as u64, p, protocol, sizing).unwrap();
        let outcome = send_file_delta(&mut Cursor::new(new), new.len() as u64, &sums, p, &mut writer, &mut wire).unwrap();
        assert!(outcome.read_error.is_none(), "{name}");
        assert_eq!(
            outcome.stats.literal_bytes + outcome.stats.matched_bytes,
            new.len() as u64,
            "{name}"
        );
        wire.extend_from_slice(&outcome.file_sum);
        heads.push(sums.head);
        stats.push(outcome.stats);
    }
    let mut reader = TokenReader::with_protocol(c, protocol).unwrap();
    let mut r = Cursor::new(wire);
    for ((name, basis, new), head) in cases.iter().zip(heads) {
        let mut out = Vec::new();
        let mut b = Cursor::new(basis.clone());
        let st = apply_delta(&mut reader, &mut r, Some(&mut b), &head, p, &mut out).unwrap_or_else(|e| panic!("{c:?} {name}: {e}"));
        assert!(out == *new, "{c:?} {name}: rebuilt file differs");
        assert_eq!(st.total_bytes, new.len() as u64);
    }
    assert_eq!(r.position() as usize, r.get_ref().len(), "{c:?}: trailing bytes");
    stats
}

#[test]
fn round_trip_every_compression() {
    let cases = scenarios();
    let p = params(ChecksumKind::Md5, 0x5eed, true);
    for c in ALL_COMPRESSIONS {
        let stats = round_trip(c, &p, 31, SumSizing::default(), &cases);
        for ((name, _, new), st) in cases.iter().zip(&stats) {
            match *name {
                "identical" => assert_eq!(st.literal_bytes, 0, "{c:?} {name}"),
                // The basis ends in a 200-byte block; the new file drops its last 50.
                "tail block" => assert_eq!(st.literal_bytes, 150, "{c:?} {name}"),
                // The cut at 75_000 is not block aligned, and the basis' short
                // last block cannot match mid-file: under two blocks of literals.
                "reordered" => assert!(st.literal_bytes < 2 * 700, "{c:?} {name}: {st:?}"),
                // 40_333 inserted bytes + at most one block of lost alignment per insertion.
                "insertions" => assert!(st.literal_bytes <= 40_333 + 2 * 700, "{c:?} {name}: {st:?}"),
                "deletions" | "changed bytes" => assert!(st.literal_bytes < 20 * 700, "{c:?} {name}: {st:?}"),
                "no match" | "empty basis" => assert_eq!(st.literal_bytes, new.len() as u64),
                _ => {}
            }
        }
    }
}

#[test]
fn round_trip_every_checksum_kind_and_old_protocols() {
    let cases: Vec<_> = scenarios()
        .into_iter()
        .filter(|c| ["insertions", "tail block", "empty new file"].contains(&c.0))
        .collect();
    for kind in [
        ChecksumKind::Md4Old,
        ChecksumKind::Md4,
        ChecksumKind::Md5,
        ChecksumKind::Sha1,
        ChecksumKind::Xxh64,
        ChecksumKind::Xxh3,
        ChecksumKind::Xxh128,
    ] {
        let protocol = if kind == ChecksumKind::Md4Old { 29 } else { 31 };
        let p = params(kind, -12345, protocol >= 30);
        round_trip(Compression::Zlib { level: 6 }, &p, protocol, SumSizing::default(), &cases);
        round_trip(
            Compression::None,
            &p,
            protocol,
            SumSizing {
                block_size: None,
                csum_length: SUM_LENGTH,
            },
            &cases,
        );
    }
}

#[test]
fn zlib_history_with_blocks_over_64k_both_protocol_quirks() {
    // Blocks > 0xffff exercise the per-64K history feed, including the
    // protocol < 31 duplicated-data quirk.
    let mut rng = StdRng::seed_from_u64(9);
    let text: Vec<u8> = (0..400_000).map(|i| b"abcdefghij"[(i * 7 + i / 1000) % 10]).collect();
    let mut new = text.clone();
    new.splice(200_000..200_000, random(&mut rng, 5000));
    new.extend_from_slice(&text[..100_000]);
    let cases = [("big blocks", text, new)];
    let sizing = SumSizing {
        block_size: Some(100_000),
        csum_length: 2,
    };
    for protocol in [30, 31] {
        let p = params(ChecksumKind::Md5, 1, true);
        round_trip(Compression::Zlib { level: 6 }, &p, protocol, sizing, &cases);
    }
}

#[test]
fn apply_rejects_bad_block_index_missing_basis_and_bad_checksum() {
    let p = params(ChecksumKind::Md5, 0, true);
    let head = SumHead {
        count: 2,
        blength: 700,
        s2length: 2,
        remainder: 10,
    };
    let basis = vec![1u8; 710];
    // Block 2 is out of range.
    let mut wire = Vec::new();
    let mut w = TokenWriter::new(Compression::None);
    w.block_match(2, &[], &mut wire).unwrap();
    let mut r = TokenReader::new(Compression::None);
    let e = apply_delta(
        &mut r,
        &mut Cursor::new(&wire),
        Some(&mut Cursor::new(&basis)),
        &head,
        &p,
        &mut Vec::new(),
    );
    assert!(matches!(e, Err(DeltaError::BlockOutOfRange { index: 2, .. })), "{e:?}");
    // No basis.
    let mut wire = Vec::new();
    w.block_match(0, &[], &mut wire).unwrap();
    let e = apply_delta(
        &mut r,
        &mut Cursor::new(&wire),
        None::<&mut Cursor<Vec<u8>>>,
        &head,
        &p,
        &mut Vec::new(),
    );
    assert!(matches!(e, Err(DeltaError::MissingBasis { .. })), "{e:?}");
    // Basis shorter than the head claims.
    let mut wire = Vec::new();
    w.block_match(1, &[], &mut wire).unwrap();
    let short = vec![1u8; 705];
    let e = apply_delta(
        &mut r,
        &mut Cursor::new(&wire),
        Some(&mut Cursor::new(&short)),
        &head,
        &p,
        &mut Vec::new(),
    );
    assert!(matches!(e, Err(DeltaError::ShortBasis { index: 1, .. })), "{e:?}");
    // Corrupted whole-file checksum.
    let sums = compute_block_sums(&mut Cursor::new(&basis), 710, &p, 31, SumSizing::default()).unwrap();
    let mut wire = Vec::new();
    let mut w = TokenWriter::new(Compression::None);
    let o = send_file_delta(&mut Cursor::new(&basis), 710, &sums, &p, &mut w, &mut wire).unwrap();
    let mut bad = o.file_sum.clone();
    bad[15] ^= 1;
    let mut good_wire = wire.clone();
    good_wire.extend_from_slice(&o.file_sum);
    wire.extend_from_slice(&bad);
    let mut r = TokenReader::new(Compression::None);
    apply_delta(
        &mut r,
        &mut Cursor::new(&good_wire),
        Some(&mut Cursor::new(&basis)),
        &sums.head,
        &p,
        &mut Vec::new(),
    )
    .unwrap();
    let e = apply_delta(
        &mut r,
        &mut Cursor::new(&wire),
        Some(&mut Cursor::new(&basis)),
        &sums.head,
        &p,
        &mut Vec::new(),
    );
    assert!(matches!(e, Err(DeltaError::ChecksumMismatch { .. })), "{e:?}");
}

#[test]
fn short_source_sends_zeros_and_a_bad_checksum() {
    let p = params(ChecksumKind::Xxh128, 0, true);
    let data = vec![9u8; 5000];
    let sums = compute_block_sums(&mut Cursor::new(&[] as &[u8]), 0, &p, 31, SumSizing::default()).unwrap();
    let mut wire = Vec::new();
    let mut w = TokenWriter::new(Compression::None);
    // Claim 8000 bytes, deliver 5000.
    let o = send_file_delta(&mut Cursor::new(&data), 8000, &sums, &p, &mut w, &mut wire).unwrap();
    assert!(o.read_error.is_some());
    assert_eq!(o.stats.literal_bytes, 8000);
    wire.extend_from_slice(&o.file_sum);
    let mut r = TokenReader::new(Compression::None);
    let mut out = Vec::new();
    let e = apply_delta(
        &mut r,
        &mut Cursor::new(&wire),
        None::<&mut Cursor<Vec<u8>>>,
        &sums.head,
        &p,
        &mut out,
    );
    assert!(matches!(e, Err(DeltaError::ChecksumMismatch { .. })), "{e:?}");
    assert_eq!(&out[5000..], &[0u8; 3000][..]);
}

#[test]
fn large_file_streams_through_a_bounded_window() {
    // 24 MiB generated on the fly; the matcher must not need it in memory.
    struct Gen {
        pos: u64,
        len: u64,
        salt: u64,
    }
    impl std::io::Read for Gen {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min((self.len - self.pos) as usize);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                let x = self.pos + i as u64;
                let h = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 7);
                *b = (h >> 32) as u8 ^ if x.is_multiple_of(3_000_000) { self.salt as u8 } else { 0 };
            }
            self.pos += n as u64;
            Ok(n)
        }
    }
    let len = 24 << 20;
    let p = params(ChecksumKind::Xxh3, 7, true);
    let sums = compute_block_sums(&mut Gen { pos: 0, len, salt: 0 }, len, &p, 31, SumSizing::default()).unwrap();
    let mut w = TokenWriter::new(Compression::None);
    let mut sink = std::io::sink();
    let o = send_file_delta(&mut Gen { pos: 0, len, salt: 0x55 }, len, &sums, &p, &mut w, &mut sink).unwrap();
    assert_eq!(o.stats.literal_bytes + o.stats.matched_bytes, len);
    // 9 changed bytes, each costs at most one block of literal data.
    assert!(o.stats.literal_bytes <= 9 * sums.head.blength as u64, "{:?}", o.stats);
}

// ------------------------------------------------------- decompression bombs

/// One token stream of a single data frame holding `compressed`, then the end.
fn one_frame_stream(compressed: &[u8]) -> Vec<u8> {
    assert!(compressed.len() <= 16383, "{} bytes do not fit one frame", compressed.len());
    let mut out = Vec::new();
    crate::transfer::delta::token_runs::frame_one(compressed, &mut out);
    out.push(0); // END_FLAG
    out
}

/// A frame that expands enormously is handed out in bounded pieces: the
/// decoder never holds a whole frame's output (a zstd frame of a few KiB
/// describing 256 MiB, a deflate frame of 16 KiB describing 16 MiB).
#[test]
fn expanding_frames_decode_in_bounded_pieces() {
    let zstd_bomb = {
        let zeros = vec![0u8; 256 << 20];
        let mut tx = crate::transfer::delta::token_zstd::ZstdTx::new(19).unwrap();
        (tx.compress(&zeros, true).unwrap(), zeros.len())
    };
    let deflate_bomb = {
        let zeros = vec![0u8; 16 << 20];
        let mut c = flate2::Compress::new(flate2::Compression::best(), false);
        let mut out = Vec::with_capacity(64 << 10);
        c.compress_vec(&zeros, &mut out, flate2::FlushCompress::Sync).unwrap();
        assert_eq!(&out[out.len() - 4..], &[0, 0, 0xff, 0xff]);
        out.truncate(out.len() - 4); // the sync tail travels stripped
        (out, zeros.len())
    };
    for (codec, (bomb, expands_to)) in [
        (Compression::Zstd { level: 3 }, zstd_bomb),
        (Compression::ZlibX { level: 6 }, deflate_bomb),
    ] {
        let stream = one_frame_stream(&bomb);
        let mut r = TokenReader::new(codec);
        let mut input = Cursor::new(&stream[..]);
        let (mut total, mut largest) = (0usize, 0usize);
        loop {
            match r.next(&mut input).unwrap() {
                Token::Literal(piece) => {
                    largest = largest.max(piece.len());
                    total += piece.len();
                }
                Token::Block(_) => panic!("{codec:?}: no blocks were sent"),
                Token::End => break,
            }
        }
        assert_eq!(total, expands_to, "{codec:?}");
        assert!(largest <= MAX_DECODED_PIECE, "{codec:?}: a piece of {largest} bytes");
    }
}

/// A client's `--zl=22` is served at [`ZSTD_MAX_SERVED_LEVEL`]: the
/// encoder's state at the top levels is hundreds of MiB per session.
#[test]
fn client_chosen_zstd_levels_are_capped() {
    assert_eq!(
        Compression::from_negotiated(Some("zstd"), Some(22)),
        Some(Compression::Zstd {
            level: ZSTD_MAX_SERVED_LEVEL
        })
    );
    assert_eq!(ZSTD_MAX_SERVED_LEVEL, 9);
    assert_eq!(
        Compression::from_negotiated(Some("zstd"), Some(5)),
        Some(Compression::Zstd { level: 5 })
    );
    assert_eq!(
        Compression::from_negotiated(Some("zstd"), Some(-5)),
        Some(Compression::Zstd { level: -5 })
    );
    assert_eq!(
        Compression::from_negotiated(Some("zstd"), None),
        Some(Compression::Zstd { level: 3 })
    );
}

// ------------------------------------------------------- hostile block sums

/// The client's sums, built to make the search walk: `weak` per block,
/// strong sums that never match.
fn hostile_sums(weak: Vec<u32>, blength: i32) -> BlockSums {
    let count = weak.len() as i32;
    BlockSums {
        head: SumHead {
            count,
            blength,
            s2length: 2,
            remainder: 0,
        },
        strong: vec![0xAB; weak.len() * 2],
        weak,
    }
}

/// Search a 64 KiB file against `sums`; the outcome's counters.
fn search_work(sums: &BlockSums, data: &[u8]) -> MatchStats {
    let p = params(ChecksumKind::Md5, 1, true);
    let mut out = Vec::new();
    let outcome = send_file_delta_with(
        &mut Cursor::new(data),
        data.len() as u64,
        sums,
        &p,
        SearchMode::default(),
        &mut TokenWriter::new(Compression::None),
        &mut out,
    )
    .unwrap();
    // Whatever the search did, the file arrives whole as literal data.
    let mut r = TokenReader::new(Compression::None);
    let mut cursor = Cursor::new(&out[..]);
    let mut got = Vec::new();
    while let Token::Literal(piece) = r.next(&mut cursor).unwrap() {
        got.extend(piece);
    }
    assert_eq!(got, data);
    outcome.stats
}

/// Sums that only share a hash bucket (distinct weak sums folding to the
/// same 16 bits), or share one weak sum with strong sums that never match,
/// cost work in proportion to the file, not to file times sums.
#[test]
fn colliding_sums_cost_linear_work() {
    // A file of equal bytes has one rolling sum at every offset (the
    // client knows what it pulls).
    let data = vec![7u8; 64 * 1024];
    let blength = 8;
    // Every sum folds to the bucket of the file's sum.
    let target = weak_sum(&data[..blength]);
    let fold = |s: u32| ((s & 0xFFFF) + (s >> 16)) & 0xFFFF;
    let bucket = fold(target);
    let same_bucket: Vec<u32> = (1..=60_000u32)
        .map(|hi| (hi << 16) | (bucket.wrapping_sub(hi) & 0xFFFF))
        .filter(|&s| fold(s) == bucket && s != target)
        .take(50_000)
        .collect();
    assert!(same_bucket.len() > 40_000);
    let len = data.len() as u64;
    let bound = |count: usize| 16 * (len + count as u64) + (1 << 16);
    let stats = search_work(&hostile_sums(same_bucket.clone(), blength as i32), &data);
    assert!(stats.gave_up, "{stats:?}");
    assert!(stats.candidates_visited <= bound(same_bucket.len()), "{stats:?}");

    // One weak sum that matches at every offset of a file of equal bytes,
    // with strong sums that never do: each offset would hash a block.
    let sums = hostile_sums(vec![weak_sum(&data[..4096]); 2000], 4096);
    let stats = search_work(&sums, &data);
    assert!(stats.gave_up, "{stats:?}");
    assert!(stats.hash_hits * 4096 <= 4 * len + (16 << 20) + 4096, "{stats:?}");
    assert!(stats.candidates_visited <= bound(2000), "{stats:?}");
}
