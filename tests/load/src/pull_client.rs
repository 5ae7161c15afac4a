//! A minimal stock-compatible pull client (blocking): protocol 31,
//! whole-file, one file, no incremental recursion. It speaks the real
//! protocol end to end (greeting, module, arguments, compat flags, seed,
//! multiplexed streams, file list, the generator's request, the token
//! stream, the whole-file checksum, phases, stats and the goodbye) so a
//! load run exercises exactly what a client pull costs the daemon.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use oxrsyncd_protocol::mux::DemuxReader;
use oxrsyncd_protocol::mux::{MsgTag, MuxWriter};
use oxrsyncd_protocol::ndx::{NdxCodec, NDX_DONE};
use oxrsyncd_protocol::setup::compat;
use oxrsyncd_protocol::wire::{read_int, read_varlong, write_int};
use oxrsyncd_worker::codecs::{ChecksumKind, ChecksumParams, FileSum};
use oxrsyncd_worker::codecs::{FlistDecoder, FlistOptions};

use crate::raw_session::{self, RawSession};

const PROTOCOL: u32 = 31;
/// Upstream's ITEM_TRANSFER | ITEM_IS_NEW: "send me this new file".
const WANT_NEW_FILE: u16 = (1 << 15) | (1 << 13);
/// Capability letters we announce: safe file list, checksum seed fix,
/// id0 names; no incremental recursion, no string negotiation (so md5).
const CAPABILITIES: &str = "sfxCu";

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// What one pull received.
#[derive(Debug)]
pub struct Pulled {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

/// Pull `module/path` (one regular file) from `target`, connecting from
/// `source`, every read and write bounded by `limit`.
pub fn pull_one(target: SocketAddr, source: SocketAddr, module: &str, path: &str, limit: Duration) -> io::Result<Pulled> {
    let socket = socket_from(source, target, limit)?;
    socket.set_read_timeout(Some(limit))?;
    socket.set_write_timeout(Some(limit))?;
    socket.set_nodelay(true)?;
    let args = [
        "--server".to_string(),
        "--sender".to_string(),
        format!("-We.{CAPABILITIES}"),
        ".".to_string(),
        format!("{module}/{path}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let RawSession {
        reader,
        writer,
        compat_flags,
        seed,
    } = raw_session::open(socket, module, &args, PROTOCOL)?;

    // From here the daemon multiplexes; so do we (protocol >= 30).
    let mut input = DemuxReader::new(reader, true);
    let mut out = MuxWriter::new(writer);
    let mut data = Vec::new();
    write_int(&mut data, 0)?; // an empty filter list
    out.send(MsgTag::Data, &data)?;
    out.flush()?;

    let mut decoder = FlistDecoder::new(FlistOptions {
        protocol: PROTOCOL,
        id0_names: compat_flags & compat::ID0_NAMES != 0,
        safe_flist: true,
        ..FlistOptions::default()
    });
    let mut entries = Vec::new();
    while let Some(e) = decoder.next(&mut input).map_err(|e| bad(e.to_string()))? {
        entries.push(e);
    }
    decoder.finish(&mut input).map_err(|e| bad(e.to_string()))?;
    let [entry] = &entries[..] else {
        return Err(bad(format!("expected one file in the list, got {}", entries.len())));
    };
    if !entry.is_reg() {
        return Err(bad("the listed entry is not a regular file"));
    }

    // The generator's side: ask for file 0 with an empty sum head, then
    // end the three phases.
    let mut ndx_out = NdxCodec::new(PROTOCOL);
    let mut request = Vec::new();
    ndx_out.write(&mut request, 0)?;
    request.extend_from_slice(&WANT_NEW_FILE.to_le_bytes());
    for _ in 0..4 {
        write_int(&mut request, 0)?; // count, blength, s2length, remainder
    }
    for _ in 0..3 {
        ndx_out.write(&mut request, NDX_DONE)?;
    }
    out.send(MsgTag::Data, &request)?;
    out.flush()?;

    // The sender's answer: the index, its flags, the sum head echoed, the
    // tokens and the whole-file checksum.
    let mut ndx_in = NdxCodec::new(PROTOCOL);
    if ndx_in.read(&mut input)? != 0 {
        return Err(bad("the daemon answered for another file"));
    }
    let mut iflags = [0u8; 2];
    input.read_exact(&mut iflags)?;
    for _ in 0..4 {
        read_int(&mut input)?;
    }
    let mut content = Vec::with_capacity(entry.size as usize);
    loop {
        let n = read_int(&mut input)?;
        if n == 0 {
            break;
        }
        if n < 0 {
            return Err(bad("a block reference in a whole-file transfer"));
        }
        let start = content.len();
        content.resize(start + n as usize, 0);
        input.read_exact(&mut content[start..])?;
    }
    let params = ChecksumParams {
        kind: ChecksumKind::implied(PROTOCOL),
        seed,
        proper_seed_order: compat_flags & compat::CHKSUM_SEED_FIX != 0,
    };
    let mut sum = FileSum::new(&params);
    sum.update(&content);
    let expected = sum.finish();
    let mut got = vec![0u8; expected.len()];
    input.read_exact(&mut got)?;
    if got != expected {
        return Err(bad("whole-file checksum mismatch"));
    }

    // Phase ends, the end of the transfer, the stats, the goodbye.
    for _ in 0..3 {
        if ndx_in.read(&mut input)? != NDX_DONE {
            return Err(bad("expected the end of a phase"));
        }
    }
    for _ in 0..5 {
        read_varlong(&mut input, 3)?;
    }
    let mut bye = Vec::new();
    ndx_out.write(&mut bye, NDX_DONE)?;
    out.send(MsgTag::Data, &bye)?;
    out.flush()?;
    if ndx_in.read(&mut input)? != NDX_DONE {
        return Err(bad("expected the goodbye"));
    }
    out.send(MsgTag::Data, &bye)?;
    out.flush()?;
    Ok(Pulled {
        name: entry.name.clone(),
        data: content,
    })
}

/// A connected socket bound to `source` first.
fn socket_from(source: SocketAddr, target: SocketAddr, limit: Duration) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(target), socket2::Type::STREAM, None)?;
    socket.bind(&source.into())?;
    socket.connect_timeout(&target.into(), limit)?;
    Ok(socket.into())
}
