//! A daemon session opened by hand, up to where the transfer starts: the
//! greeting, the module, the argument block and protocol setup (compat
//! flags from protocol 30, the checksum seed). The load generator's pull
//! client and the raw-protocol tests both start here.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;

use oxrsyncd_protocol::wire::{read_int, read_varint};

/// A session after protocol setup: the streams, and what setup said.
pub struct RawSession {
    /// The daemon's output (buffered: setup may have read ahead).
    pub reader: BufReader<TcpStream>,
    /// Our side of the connection.
    pub writer: TcpStream,
    /// The compat flags the daemon sent (0 below protocol 30).
    pub compat_flags: i32,
    /// The checksum seed.
    pub seed: i32,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Greet at `protocol` (announcing md5 and md4 for auth), pick `module`,
/// send `args` (options, the lone `.`, paths; NUL-separated from protocol
/// 30, as the stock client sends them) and read the daemon's setup. An
/// `@ERROR` line or `@RSYNCD: EXIT` is an error carrying that line.
pub fn open(stream: TcpStream, module: &str, args: &[&str], protocol: u32) -> io::Result<RawSession> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.starts_with("@RSYNCD: ") {
        return Err(bad(format!("greeting {line:?}")));
    }
    writer.write_all(format!("@RSYNCD: {protocol}.0 md5 md4\n{module}\n").as_bytes())?;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line.starts_with("@RSYNCD: OK") {
            break;
        }
        if line.starts_with("@ERROR") || line.starts_with("@RSYNCD: EXIT") {
            return Err(bad(line.trim_end().to_string()));
        }
    }
    let end = if protocol >= 30 { "\0" } else { "\n" };
    let mut block = String::new();
    for arg in args {
        block.push_str(arg);
        block.push_str(end);
    }
    block.push_str(end);
    writer.write_all(block.as_bytes())?;
    let compat_flags = if protocol >= 30 { read_varint(&mut reader)? } else { 0 };
    let seed = read_int(&mut reader)?;
    Ok(RawSession {
        reader,
        writer,
        compat_flags,
        seed,
    })
}
