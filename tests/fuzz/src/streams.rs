//! Targets of the client's byte stream around the transfer: the
//! multiplexed input reader (checked against a small model of the
//! framing), file-list indexes (decoded, then encoded and decoded again),
//! and `--files-from` lists from the connection or from a module file.

use oxrsyncd_protocol::mux::SuccessCharge;
use oxrsyncd_worker::fuzzing::wire::{read_from_client, read_from_file, DemuxReader, NdxCodec};
use std::io::Read;

use crate::input::{protocol, Input};

/// What the reader must make of a multiplexed stream: the data of its
/// `MSG_DATA` frames up to the first frame it refuses (or the end), and
/// the messages handled on the way.
#[derive(Default)]
struct Model {
    data: Vec<u8>,
    successes: Vec<i32>,
    io_error: i32,
}

fn model(mut s: &[u8], keep_successes: bool) -> Model {
    let mut m = Model::default();
    while s.len() >= 4 {
        let word = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        s = &s[4..];
        let (tag, len) = ((word >> 24) as u8, (word & 0xFF_FFFF) as usize);
        let Some(tag) = tag.checked_sub(7) else { break };
        if tag == 0 {
            let n = len.min(s.len());
            m.data.extend_from_slice(&s[..n]);
            s = &s[n..];
            continue;
        }
        if len > 64 * 1024 || len > s.len() {
            break;
        }
        let (payload, rest) = s.split_at(len);
        s = rest;
        let int = || payload.get(..4).map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        match tag {
            42 | 1..=4 => {}
            22 => m.io_error |= int(),
            100 if len == 4 && keep_successes => m.successes.push(int()),
            100 if len == 4 => {}
            _ => break,
        }
    }
    m
}

/// Input: four bytes of read sizes (the first one's low bit: MSG_SUCCESS
/// is kept, as for a sender with --remove-source-files), then the
/// client's multiplexed stream.
pub fn demux(data: &[u8]) {
    let mut input = Input::new(data);
    let sizes = input.take(4).to_vec();
    let stream = input.rest();
    let keep = sizes.first().is_some_and(|b| b & 1 != 0);
    let want = model(stream, keep);
    let mut reader = DemuxReader::new(stream, true).keeping_successes(keep.then_some(charge_nothing as SuccessCharge));
    let mut got = Vec::new();
    for i in 0.. {
        let n = 1 + usize::from(sizes.get(i % 4).copied().unwrap_or(0));
        let mut buf = vec![0u8; n];
        match reader.read(&mut buf) {
            Ok(k) => {
                assert!((1..=n).contains(&k), "read {k} of {n}");
                got.extend_from_slice(&buf[..k]);
            }
            Err(_) => break,
        }
    }
    assert!(got == want.data, "data read differs from the frames' data");
    assert_eq!(reader.successes, want.successes);
    assert_eq!(reader.client_io_error, want.io_error);
}

/// Input: a protocol byte, then indexes as the client sends them.
pub fn ndx(data: &[u8]) {
    let mut input = Input::new(data);
    let protocol = protocol(input.byte());
    let mut r = input.rest();
    let mut codec = NdxCodec::new(protocol);
    let mut values = Vec::new();
    while values.len() < 10_000 {
        let before = r.len();
        let Ok(v) = codec.read(&mut r) else { break };
        let used = before - r.len();
        assert!(
            if protocol < 30 { used == 4 } else { (1..=6).contains(&used) },
            "{used} bytes for one index"
        );
        values.push(v);
    }
    // Encoding: i32::MIN has no encoding (upstream's neither); no index
    // the daemon writes comes near it.
    let (mut enc, mut dec) = (NdxCodec::new(protocol), NdxCodec::new(protocol));
    for v in values.into_iter().filter(|&v| v != i32::MIN) {
        let bytes = enc.encode(v);
        let again = dec.read(&mut &bytes[..]);
        assert_eq!(again.ok(), Some(v), "index {v} encoded as {bytes:?}");
    }
}

/// Longest name a list keeps.
const MAX_NAME: usize = 4095;

/// Input: a byte for the source (the connection at protocol 29, 30 or
/// 31; a module file split at newlines or NULs), then the list.
pub fn files_from(data: &[u8]) {
    let mut input = Input::new(data);
    let source = input.byte() % 5;
    let list = input.rest();
    if source < 3 {
        let protocol = 29 + u32::from(source);
        let mut reader = DemuxReader::new(list, protocol >= 30);
        let Ok(names) = read_from_client(&mut reader, protocol) else {
            return;
        };
        assert_eq!(reader.is_multiplexed(), protocol >= 30, "framing restored after the list");
        for name in &names {
            assert!(!name.is_empty() && name.len() <= MAX_NAME && !name.contains(&0));
        }
        assert!(names.len() <= list.len() / 2);
    } else {
        let nul = source == 4;
        let Ok(names) = read_from_file(list, nul) else { return };
        let sep = if nul { 0 } else { b'\n' };
        for name in &names {
            assert!(!name.is_empty() && name.len() <= MAX_NAME && !name.contains(&sep));
            assert!(name[0] != b'#' && name[0] != b';', "a comment line kept");
            assert!(nul || name.len() == MAX_NAME || !name.ends_with(b"\r"), "a CR kept at a line's end");
        }
    }
}

/// A kept MSG_SUCCESS costs nothing here (the worker charges its budget).
fn charge_nothing(_bytes: usize) -> std::io::Result<()> {
    Ok(())
}
