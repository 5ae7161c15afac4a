//! Runs a [`Handshake`] over blocking I/O: the blocking accept thread and
//! inetd/stdio mode. The whole handshake must finish by one absolute
//! deadline; before every read the remaining time is applied as the
//! socket's receive timeout.

use std::io::{self, BufRead, Read, Write};
use std::time::{Duration, Instant};

use super::{Handshake, Progress, Want, MAX_LINE};

/// Sets the receive timeout of the underlying socket.
pub trait ReadTimeout {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl ReadTimeout for std::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
}

/// Drive `hs` to completion. Returns `Close` or `Session`; I/O errors,
/// EOF and the deadline are errors (the caller just drops the connection).
pub fn run<R: BufRead, W: Write>(
    hs: &mut Handshake,
    reader: &mut R,
    writer: &mut W,
    socket: &dyn ReadTimeout,
    deadline: Instant,
) -> io::Result<Progress> {
    let mut progress = hs.begin();
    loop {
        let out = hs.take_output();
        if !out.is_empty() {
            writer.write_all(&out)?;
            writer.flush()?;
        }
        let want = match progress {
            Progress::Need(want) => want,
            done => return Ok(done),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "handshake timeout"));
        }
        socket.set_read_timeout(Some(remaining))?;
        let input = read_input(reader, want)?;
        progress = hs.feed(&input);
    }
}

/// Read what `want` asks for, terminator stripped.
pub fn read_input<R: BufRead>(reader: &mut R, want: Want) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    match want {
        Want::Bytes(n) => {
            buf.resize(n, 0);
            reader.read_exact(&mut buf)?;
        }
        Want::Line => read_terminated(reader, b'\n', &mut buf)?,
        Want::Arg { nul_terminated: true } => read_terminated(reader, 0, &mut buf)?,
        Want::Arg { nul_terminated: false } => read_terminated(reader, b'\n', &mut buf)?,
    }
    Ok(buf)
}

fn read_terminated<R: BufRead>(reader: &mut R, end: u8, buf: &mut Vec<u8>) -> io::Result<()> {
    let n = reader.by_ref().take(max_entry_len(end) as u64 + 1).read_until(end, buf)?;
    strip_terminator(buf, end, n)
}

/// Longest entry accepted for a terminator: a text line, or one argument.
pub(super) fn max_entry_len(end: u8) -> usize {
    if end == 0 {
        super::args::MAX_BLOCK_BYTES
    } else {
        MAX_LINE
    }
}

/// Check what a bounded `read_until` of `n` bytes produced and drop the
/// terminator (and, in text lines, any `\r`, as upstream's reader does).
pub(super) fn strip_terminator(buf: &mut Vec<u8>, end: u8, n: usize) -> io::Result<()> {
    if n == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "client closed during handshake"));
    }
    if buf.last() != Some(&end) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "handshake line too long or unterminated",
        ));
    }
    buf.pop();
    if end == b'\n' {
        buf.retain(|&b| b != b'\r');
    }
    Ok(())
}
