//! Acknowledging the client's small writes at once.
//!
//! The stock client does not disable Nagle's algorithm and writes its
//! argument block and checksum/compression lists in several small
//! `write`s. Nagle holds each one back until the previous one is
//! acknowledged, and Linux delays acknowledgements by up to 40 ms on a
//! connection that both sends and receives ("ping-pong" mode). Every such
//! exchange in a session would then cost 40 ms of idle time on both ends.
//! Setting `TCP_QUICKACK` before each read leaves ping-pong mode, so the
//! kernel acknowledges what we read immediately and the client's next
//! small write leaves without waiting.

use std::io::{self, Read};
use std::net::TcpStream;

use socket2::SockRef;

/// Leave delayed-ACK mode on `stream` for the data we are about to read.
/// The kernel re-enters it whenever we reply quickly, hence re-arming it
/// before every read. Failure only costs latency, so it is ignored.
pub(crate) fn rearm(stream: &impl std::os::fd::AsFd) {
    let _ = SockRef::from(stream).set_quickack(true);
}

/// A socket reader that re-arms quick acknowledgements before each read.
pub(crate) struct QuickAckReader {
    /// The connection (a clone of the session's socket).
    stream: TcpStream,
}

impl QuickAckReader {
    pub(crate) fn new(stream: TcpStream) -> Self {
        QuickAckReader { stream }
    }
}

/// A socket writer that re-arms quick acknowledgements after each write.
/// A push reads on one thread while another writes: a reply leaves the
/// delayed-ACK mode the reader armed away from, and the client's next
/// small write (its next file list, a phase end) would then wait up to
/// 40 ms for our acknowledgement, once per list of an incremental push.
pub(crate) struct QuickAckWriter {
    /// The connection (a clone of the session's socket).
    stream: TcpStream,
}

impl QuickAckWriter {
    pub(crate) fn new(stream: TcpStream) -> Self {
        QuickAckWriter { stream }
    }
}

impl io::Write for QuickAckWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.stream.write(buf)?;
        rearm(&self.stream);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Read for QuickAckReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        rearm(&self.stream);
        self.stream.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpListener;

    use super::*;

    /// A connected loopback pair: (the daemon's end, the client's end).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (daemon, _) = listener.accept().unwrap();
        (daemon, client)
    }

    #[test]
    fn every_read_leaves_delayed_ack_mode() {
        let (daemon, mut client) = pair();
        let mut reader = QuickAckReader::new(daemon.try_clone().unwrap());
        for round in 0..3 {
            // What replying to the client does to the socket: the kernel
            // turns to delayed ACKs.
            SockRef::from(&daemon).set_quickack(false).unwrap();
            assert!(
                !SockRef::from(&daemon).quickack().unwrap(),
                "round {round}: still in quick-ACK mode"
            );
            client.write_all(b"x").unwrap();
            let mut byte = [0u8; 1];
            reader.read_exact(&mut byte).unwrap();
            assert!(
                SockRef::from(&daemon).quickack().unwrap(),
                "round {round}: the read left delayed ACKs on"
            );
        }
    }

    #[test]
    fn rearm_works_on_a_borrowed_socket() {
        let (daemon, _client) = pair();
        SockRef::from(&daemon).set_quickack(false).unwrap();
        rearm(&daemon);
        assert!(SockRef::from(&daemon).quickack().unwrap());
    }
}
