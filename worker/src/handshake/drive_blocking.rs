//! Runs a [`Handshake`] over blocking I/O: the blocking accept thread and
//! inetd/stdio mode (and the remote-shell daemon).
//!
//! The whole handshake, greeting to the last argument (auth and the
//! secluded block included), must finish by one absolute deadline. A
//! socket's receive timeout bounds one `read`, not a line, so this driver
//! reads the client itself, one buffer fill at a time, and before *every*
//! fill bounds the wait by the time left: a client trickling one byte a
//! second gets no more time than one that sends nothing. While the client
//! owes its arguments, the module's `timeout` also bounds each wait
//! ([`Handshake::idle_limit`]), as upstream's daemon applies it there.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use super::{Handshake, Progress, Want, MAX_LINE};

/// Bounds the next read from the client.
pub trait ReadTimeout {
    /// Set (or clear) the receive timeout of the underlying socket.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Make the next read give up after `wait`. A socket sets its receive
    /// timeout (the read then fails with `WouldBlock`); an input without
    /// one (a pipe) waits here until it is readable, or fails with
    /// `TimedOut`.
    fn bound_next_read(&self, wait: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(wait.max(Duration::from_millis(1))))
    }
}

impl ReadTimeout for std::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
}

/// When the client's time is up.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The end of the whole handshake (`handshake timeout` after accept).
    pub deadline: Instant,
    /// The longest one wait for input may take (the module's `timeout`
    /// while the arguments are read), if any.
    pub idle: Option<Duration>,
}

impl Clock {
    /// How long the next read may wait, or the timeout error.
    fn next_wait(&self) -> io::Result<Duration> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(handshake_expired());
        }
        Ok(self.idle.map_or(remaining, |idle| idle.min(remaining)))
    }

    /// The error for a read that waited `waited` (as [`Clock::next_wait`] bounded it) in vain.
    fn expired(&self, waited: Duration) -> io::Error {
        match self.idle {
            Some(idle) if waited >= idle && Instant::now() < self.deadline => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("io timeout after {} seconds waiting for the client's arguments", idle.as_secs()),
            ),
            _ => handshake_expired(),
        }
    }
}

fn handshake_expired() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "handshake timeout")
}

/// Drive `hs` to completion. Returns `Close` or `Session`; I/O errors,
/// EOF and the deadline are errors (the caller just drops the connection;
/// a deadline is `ErrorKind::TimedOut`).
pub(crate) fn run<R: Read, W: Write>(
    hs: &mut Handshake,
    reader: &mut BufReader<R>,
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
        let clock = Clock {
            deadline,
            idle: hs.idle_limit(),
        };
        let input = read_input(reader, want, socket, &clock)?;
        progress = hs.feed(&input);
    }
}

/// Read what `want` asks for, terminator stripped, each fill bounded by `clock`.
pub fn read_input<R: Read>(reader: &mut BufReader<R>, want: Want, socket: &dyn ReadTimeout, clock: &Clock) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    match want {
        Want::Bytes(n) => {
            buf.resize(n, 0);
            read_exact(reader, &mut buf, socket, clock)?;
        }
        Want::Line => read_terminated(reader, b'\n', &mut buf, socket, clock)?,
        Want::Arg { nul_terminated: true } => read_terminated(reader, 0, &mut buf, socket, clock)?,
        Want::Arg { nul_terminated: false } => read_terminated(reader, b'\n', &mut buf, socket, clock)?,
    }
    Ok(buf)
}

/// Fill `out` completely, each fill bounded by `clock` (for the PROXY
/// header, read before the handshake under the same deadline).
pub(crate) fn read_exact<R: Read>(reader: &mut BufReader<R>, out: &mut [u8], socket: &dyn ReadTimeout, clock: &Clock) -> io::Result<()> {
    let mut filled = 0;
    while filled < out.len() {
        let chunk = fill(reader, socket, clock)?;
        if chunk.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "client closed during handshake"));
        }
        let n = chunk.len().min(out.len() - filled);
        out[filled..filled + n].copy_from_slice(&chunk[..n]);
        reader.consume(n);
        filled += n;
    }
    Ok(())
}

/// Read up to and including `end` (at most [`max_entry_len`] bytes before it).
fn read_terminated<R: Read>(
    reader: &mut BufReader<R>,
    end: u8,
    buf: &mut Vec<u8>,
    socket: &dyn ReadTimeout,
    clock: &Clock,
) -> io::Result<()> {
    let limit = max_entry_len(end) + 1;
    let mut n = 0;
    loop {
        let chunk = fill(reader, socket, clock)?;
        if chunk.is_empty() {
            break;
        }
        let room = limit - n;
        let (take, done) = match chunk.iter().take(room).position(|&b| b == end) {
            Some(i) => (i + 1, true),
            None => (chunk.len().min(room), false),
        };
        buf.extend_from_slice(&chunk[..take]);
        reader.consume(take);
        n += take;
        if done || n == limit {
            break;
        }
    }
    strip_terminator(buf, end, n)
}

/// The reader's buffered bytes, refilled by at most one read from the
/// client when empty; that read waits no longer than `clock` allows.
fn fill<'a, R: Read>(reader: &'a mut BufReader<R>, socket: &dyn ReadTimeout, clock: &Clock) -> io::Result<&'a [u8]> {
    while reader.buffer().is_empty() {
        let wait = clock.next_wait()?;
        socket.bound_next_read(wait)?;
        match reader.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(clock.expired(wait));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(reader.buffer())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A client that delivers one byte per read, each read taking `step`.
    struct Trickle {
        /// How long each read "blocks" before its byte arrives.
        step: Duration,
        /// The bytes still to deliver.
        data: Vec<u8>,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(self.step);
            if self.data.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.data.remove(0);
            Ok(1)
        }
    }

    /// Records the waits it was asked to bound.
    struct Bounds(Cell<Vec<Duration>>);

    impl ReadTimeout for Bounds {
        fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
            let mut v = self.0.take();
            v.extend(t);
            self.0.set(v);
            Ok(())
        }
    }

    #[test]
    fn a_trickled_line_cannot_outlive_the_deadline() {
        let mut reader = BufReader::new(Trickle {
            step: Duration::from_millis(20),
            data: vec![b'x'; 1000],
        });
        let clock = Clock {
            deadline: Instant::now() + Duration::from_millis(200),
            idle: None,
        };
        let bounds = Bounds(Cell::new(Vec::new()));
        let started = Instant::now();
        let err = read_input(&mut reader, Want::Line, &bounds, &clock).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() < Duration::from_millis(400), "{:?}", started.elapsed());
        let waits = bounds.0.take();
        assert!(waits.len() > 3, "every read is bounded: {waits:?}");
        assert!(waits.windows(2).all(|w| w[1] <= w[0]), "by the time left: {waits:?}");
    }

    #[test]
    fn the_idle_limit_bounds_each_wait() {
        let mut reader = BufReader::new(&b"abc\n"[..]);
        let clock = Clock {
            deadline: Instant::now() + Duration::from_secs(60),
            idle: Some(Duration::from_secs(2)),
        };
        let bounds = Bounds(Cell::new(Vec::new()));
        assert_eq!(read_input(&mut reader, Want::Line, &bounds, &clock).unwrap(), b"abc");
        assert_eq!(bounds.0.take(), [Duration::from_secs(2)]);
    }

    #[test]
    fn lines_split_across_reads_and_limits_hold() {
        let mut reader = BufReader::with_capacity(3, &b"hello\nworld\0rest"[..]);
        let clock = Clock {
            deadline: Instant::now() + Duration::from_secs(60),
            idle: None,
        };
        let bounds = Bounds(Cell::new(Vec::new()));
        assert_eq!(read_input(&mut reader, Want::Line, &bounds, &clock).unwrap(), b"hello");
        let arg = Want::Arg { nul_terminated: true };
        assert_eq!(read_input(&mut reader, arg, &bounds, &clock).unwrap(), b"world");
        assert_eq!(read_input(&mut reader, Want::Bytes(4), &bounds, &clock).unwrap(), b"rest");
        let long = vec![b'a'; MAX_LINE + 1];
        let mut reader = BufReader::new(&long[..]);
        let err = read_input(&mut reader, Want::Line, &bounds, &clock).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut reader = BufReader::new(&b"x"[..]);
        let err = read_input(&mut reader, Want::Line, &bounds, &clock).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "unterminated at EOF");
    }
}
