//! The multiplexed output stream a server writes once the protocol is set
//! up: 4-byte little-endian headers `((7 + tag) << 24) | len` in front of
//! each chunk. Data (tag 0) is one continuous stream; the other tags carry
//! messages for the client to print or act on.

use std::io::{self, Write};

use super::MsgTag;

/// Largest payload one frame may carry.
pub const MAX_FRAME: usize = 0x00FF_FFFF;

/// Writes frames to the client.
pub struct MuxWriter<W: Write> {
    inner: W,
}

impl<W: Write> MuxWriter<W> {
    pub fn new(inner: W) -> Self {
        MuxWriter { inner }
    }

    /// Send one message (split across frames if ever that large).
    pub fn send(&mut self, tag: MsgTag, payload: &[u8]) -> io::Result<()> {
        let mut chunks = payload.chunks(MAX_FRAME).peekable();
        if chunks.peek().is_none() {
            return self.frame(tag, &[]);
        }
        for chunk in chunks {
            self.frame(tag, chunk)?;
        }
        Ok(())
    }

    fn frame(&mut self, tag: MsgTag, chunk: &[u8]) -> io::Result<()> {
        let header = ((7 + tag as u32) << 24) | chunk.len() as u32;
        self.inner.write_all(&header.to_le_bytes())?;
        self.inner.write_all(chunk)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_upstream_headers() {
        let mut out = Vec::new();
        let mut w = MuxWriter::new(&mut out);
        w.send(MsgTag::Error, b"boom\n").unwrap();
        w.send(MsgTag::ErrorExit, &4i32.to_le_bytes()).unwrap();
        assert_eq!(&out[..4], &[5, 0, 0, 10]); // (7+3)<<24 | 5
        assert_eq!(&out[4..9], b"boom\n");
        assert_eq!(&out[9..13], &[4, 0, 0, 93]); // (7+86)<<24 | 4
        assert_eq!(&out[13..], &[4, 0, 0, 0]);
    }
}
