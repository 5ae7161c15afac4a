//! Interoperability tests against the real rsync binary, through batch files:
//! `rsync --only-write-batch` records the sender's stream (sum head echo,
//! token stream, whole-file checksum), which we decode and apply; then we
//! splice our own sender output into the batch and let `rsync --read-batch`
//! rebuild the file from it. Skipped (with a note) when rsync is absent.

use std::fs;
use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use oxrsyncd_protocol::wire::{read_int, read_varint};

use crate::transfer::delta::matcher::send_file_delta;
use crate::transfer::delta::sums::compute_block_sums;
use crate::transfer::delta::*;

fn rsync_available() -> bool {
    Command::new("rsync")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Deterministic pseudo-random bytes (xorshift), no RNG crate needed.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

struct Case {
    args: &'static [&'static str],
    kind_name: &'static str,
    compression: Compression,
}

fn find_unique(hay: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "sum head found {} times in batch", hits.len());
    hits[0]
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("rsync").current_dir(dir).args(args).output().expect("run rsync");
    assert!(
        out.status.success(),
        "rsync {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn rsync_batch_tokens_decode_and_our_tokens_apply() {
    if !rsync_available() {
        eprintln!("rsync not installed: interop test skipped");
        return;
    }
    let basis = noise(11, 100_000);
    // Insertions, a deletion, and a 500-byte copy of recently matched basis data
    // that is not block aligned: only zlib's matched-data history (32 KiB
    // window) can compress it, so both sides must feed matched blocks.
    let mut new = basis[..30_000].to_vec();
    new.extend(b"HELLO INSERTED ".iter().cycle().take(1500));
    new.extend_from_slice(&basis[30_000..60_000]);
    new.extend_from_slice(&basis[55_000..55_500]);
    new.extend_from_slice(&basis[61_000..]);

    // Batch writing only allows the old-style choices (md5, or md4 below
    // protocol 30; zlib), see getenv_nstr() in compat.c.
    let cases = [
        Case {
            args: &["--checksum-choice=md5"],
            kind_name: "md5",
            compression: Compression::None,
        },
        Case {
            args: &["--protocol=29"],
            kind_name: "md4",
            compression: Compression::None,
        },
        Case {
            args: &["--checksum-choice=md5", "-z", "--compress-choice=zlib"],
            kind_name: "md5",
            compression: Compression::Zlib { level: 6 },
        },
        Case {
            args: &["--protocol=30", "-z", "--compress-level=1"],
            kind_name: "md5",
            compression: Compression::Zlib { level: 1 },
        },
        Case {
            args: &["--protocol=29", "-z", "--compress-level=9"],
            kind_name: "md4",
            compression: Compression::Zlib { level: 9 },
        },
    ];
    for case in cases {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for sub in ["src", "dst", "dst2"] {
            fs::create_dir(d.join(sub)).unwrap();
        }
        fs::write(d.join("src/f"), &new).unwrap();
        fs::write(d.join("dst/f"), &basis).unwrap();
        fs::write(d.join("dst2/f"), &basis).unwrap();
        let mut args = vec!["-a", "--no-whole-file", "--only-write-batch=batch"];
        args.extend_from_slice(case.args);
        args.extend_from_slice(&["src/", "dst/"]);
        run(d, &args);
        let batch = fs::read(d.join("batch")).unwrap();

        // Batch header: stream flags, protocol, [compat flags], checksum seed.
        let mut h = Cursor::new(&batch);
        read_int(&mut h).unwrap();
        let protocol = read_int(&mut h).unwrap() as u32;
        let compat = if protocol >= 30 { read_varint(&mut h).unwrap() } else { 0 };
        let seed = read_int(&mut h).unwrap();
        let kind = ChecksumKind::from_negotiated(case.kind_name, protocol).unwrap();
        let p = ChecksumParams {
            kind,
            seed,
            proper_seed_order: compat & 0x20 != 0,
        };

        // Our generator must size the sums exactly as rsync's did.
        let sums = compute_block_sums(&mut Cursor::new(&basis), basis.len() as u64, &p, protocol, SumSizing::default()).unwrap();
        let mut head_bytes = Vec::new();
        write_sum_head(&mut head_bytes, &sums.head, protocol).unwrap();
        let tok_start = find_unique(&batch, &head_bytes) + head_bytes.len();

        // 1. rsync's token stream decodes and applies; its checksum verifies.
        let mut r = Cursor::new(&batch[tok_start..]);
        let mut reader = TokenReader::with_protocol(case.compression, protocol).unwrap();
        let mut out = Vec::new();
        let st = apply_delta(&mut reader, &mut r, Some(&mut Cursor::new(&basis)), &sums.head, &p, &mut out)
            .unwrap_or_else(|e| panic!("{:?}: decoding rsync's tokens: {e}", case.args));
        assert!(out == new, "{:?}: rebuilt file differs", case.args);
        assert!(st.matched_bytes > 90_000, "{:?}: {st:?}", case.args);
        let tok_end = tok_start + r.position() as usize;

        // 2. Our tokens, spliced into the batch, are applied by rsync itself.
        let mut ours = Vec::new();
        let mut writer = TokenWriter::with_protocol(case.compression, protocol);
        let o = send_file_delta(&mut Cursor::new(&new), new.len() as u64, &sums, &p, &mut writer, &mut ours).unwrap();
        ours.extend_from_slice(&o.file_sum);
        let mut spliced = batch[..tok_start].to_vec();
        spliced.extend_from_slice(&ours);
        spliced.extend_from_slice(&batch[tok_end..]);
        fs::write(d.join("batch2"), &spliced).unwrap();
        let mut args = vec!["-a", "--no-whole-file", "--read-batch=batch2"];
        args.extend_from_slice(case.args);
        args.push("dst2/");
        run(d, &args);
        assert!(
            fs::read(d.join("dst2/f")).unwrap() == new,
            "{:?}: rsync rebuilt a different file",
            case.args
        );
        assert_eq!(
            o.stats.literal_bytes, st.literal_bytes,
            "{:?}: literal bytes differ from rsync's",
            case.args
        );
    }
}
