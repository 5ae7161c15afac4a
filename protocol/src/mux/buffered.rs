//! Our multiplexed output during a transfer: protocol data is buffered and
//! sent in `MSG_DATA` frames; messages for the user (errors, info) flush
//! the data first so the client sees everything in order.

use std::io::{self, Write};

use super::{MsgTag, MuxWriter};

/// Data buffered before a frame is written.
const FRAME_DATA: usize = 32 * 1024;

/// Buffered multiplexed writer.
pub struct MuxOut<W: Write> {
    mux: MuxWriter<W>,
    buf: Vec<u8>,
    /// Bytes written to the socket, headers included (upstream's total_written).
    pub total_written: u64,
    /// Protocol data written so far, frame headers and messages not
    /// counted (upstream's `total_data_written`, for `%b`/`%c`).
    pub data_written: u64,
    /// Transfer errors reported to the client (upstream's got_xfer_error:
    /// any makes the session's exit status 23).
    pub xfer_errors: u32,
}

impl<W: Write> MuxOut<W> {
    pub fn new(inner: W) -> Self {
        MuxOut {
            mux: MuxWriter::new(inner),
            buf: Vec::with_capacity(FRAME_DATA),
            total_written: 0,
            data_written: 0,
            xfer_errors: 0,
        }
    }

    fn count(&mut self, tag: MsgTag) {
        if tag == MsgTag::ErrorXfer {
            self.xfer_errors += 1;
        }
    }

    fn flush_data(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.total_written += self.buf.len() as u64 + 4;
            self.mux.send(MsgTag::Data, &self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Send a message frame *ahead of* data not yet framed, as upstream's
    /// message buffer overtakes its data buffer (a push's deletions reach
    /// the client before the requests generated around them).
    pub fn message_ahead(&mut self, tag: MsgTag, payload: &[u8]) -> io::Result<()> {
        self.count(tag);
        self.total_written += payload.len() as u64 + 4;
        self.mux.send(tag, payload)
    }

    /// Send a message frame after any pending data.
    pub fn message(&mut self, tag: MsgTag, payload: &[u8]) -> io::Result<()> {
        self.count(tag);
        self.flush_data()?;
        self.total_written += payload.len() as u64 + 4;
        self.mux.send(tag, payload)
    }
}

impl<W: Write> Write for MuxOut<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.data_written += data.len() as u64;
        if self.buf.len() >= FRAME_DATA {
            self.flush_data()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_data()?;
        self.mux.flush()
    }
}
