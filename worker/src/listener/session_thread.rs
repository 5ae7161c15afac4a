//! Handing an admitted connection to its own plain thread.

use std::io::{BufReader, BufWriter, Cursor, Read};
use std::net::TcpStream;

use tracing::warn;

use crate::handshake::SessionRequest;
use crate::session;
use crate::telemetry::counting::{CountingReader, CountingWriter};
use crate::telemetry::meter;

/// Stack size for session threads: the transfer engine keeps big buffers
/// on the heap, so a modest stack lets thousands of sessions coexist.
pub(crate) const SESSION_STACK: usize = 512 * 1024;

/// Run the session for `request` on a new thread. `leftover` holds bytes
/// the handshake read past the argument block. `keep` is dropped when the
/// session ends (permits, counters).
#[cfg(feature = "async")]
pub(crate) fn spawn<K: Send + 'static>(request: Box<SessionRequest>, stream: TcpStream, leftover: Vec<u8>, keep: K) {
    let peer = request.peer_addr;
    let result = std::thread::Builder::new()
        .name("session".into())
        .stack_size(SESSION_STACK)
        .spawn(move || {
            run_on_this_thread(*request, stream, leftover);
            drop(keep);
        });
    if let Err(e) = result {
        warn!("cannot start a session thread for {}: {}", peer, e);
    }
}

/// Run the session for `request` on the calling thread.
pub(crate) fn run_on_this_thread(request: SessionRequest, stream: TcpStream, leftover: Vec<u8>) {
    let (Ok(read_half), Ok(write_half)) = (stream.try_clone(), stream.try_clone()) else {
        warn!("cannot duplicate the socket of {}", request.peer_addr);
        return;
    };
    // The protocol is request/response per file; we already batch writes,
    // so Nagle's algorithm would only add delayed-ACK stalls.
    let _ = stream.set_nodelay(true);
    // Bytes are counted where they cross the socket (the leftover was
    // read by the handshake, before the session).
    let record = request.record.clone();
    let _metered = meter::install(record.clone());
    let mut reader = BufReader::with_capacity(
        64 * 1024,
        Cursor::new(leftover).chain(CountingReader::new(
            super::quick_ack::QuickAckReader::new(read_half),
            record.clone(),
        )),
    );
    let mut writer = BufWriter::with_capacity(
        64 * 1024,
        CountingWriter::new(super::quick_ack::QuickAckWriter::new(write_half), record.clone()),
    );
    let code = session::run(request, &mut reader, &mut writer, &stream);
    if let Some(record) = record {
        record.session_ended(code);
    }
}
