//! The client-to-server stream from protocol 30 on is multiplexed like
//! ours: this reader strips the frame headers, hands `MSG_DATA` bytes to
//! the caller as one continuous stream, and deals with the other messages
//! in between (no-ops, the client's error exit, its I/O error flags).

use std::io::{self, Read};

use tracing::info;

use super::MsgTag;

/// How a reader that keeps MSG_SUCCESS indexes pays for each one kept
/// (4 bytes): the caller's memory budget, so a stream of them cannot grow
/// without bound. An error ends the read with that error.
pub type SuccessCharge = fn(usize) -> io::Result<()>;

/// Reads the data stream out of a multiplexed input (or passes a plain one through).
pub struct DemuxReader<R: Read> {
    inner: R,
    /// Whether the input is multiplexed at all (protocol >= 30 for a sender).
    multiplexed: bool,
    /// Data bytes left in the current MSG_DATA frame.
    data_left: usize,
    /// I/O error bits the client reported (MSG_IO_ERROR).
    pub client_io_error: i32,
    /// Indexes the client received completely (MSG_SUCCESS, sent with
    /// `--remove-source-files`), not yet acted on.
    pub successes: Vec<i32>,
    /// Whether MSG_SUCCESS is kept at all, and what each kept index is
    /// charged to: only a sender whose session negotiated
    /// `--remove-source-files` acts on it; anywhere else a client's
    /// MSG_SUCCESS is dropped as upstream drops it, so a stream of them
    /// cannot pile up.
    keep_successes: Option<SuccessCharge>,
    /// Indexes the client's sender will not send after all (MSG_NO_SEND:
    /// it could not open the file), not yet acted on.
    pub no_sends: Vec<i32>,
    /// Whether MSG_NO_SEND is kept (by a receiver, which must count the
    /// file as done), and what each kept index is charged to; elsewhere
    /// it is an unexpected message.
    keep_no_sends: Option<SuccessCharge>,
    /// Data bytes handed to the reader so far, frame headers and messages
    /// not counted (upstream's `total_data_read`, for `%b`/`%c`).
    pub data_read: u64,
}

/// The client ended the session with MSG_ERROR_EXIT.
#[derive(Debug, thiserror::Error)]
#[error("client aborted with exit code {0}")]
pub struct ClientAborted(pub i32);

impl<R: Read> DemuxReader<R> {
    pub fn new(inner: R, multiplexed: bool) -> Self {
        DemuxReader {
            inner,
            multiplexed,
            data_left: 0,
            client_io_error: 0,
            successes: Vec::new(),
            keep_successes: None,
            no_sends: Vec::new(),
            keep_no_sends: None,
            data_read: 0,
        }
    }

    /// Keep the client's MSG_SUCCESS indexes for the caller (a sender
    /// with `--remove-source-files`), each charged with `charge`; `None`
    /// drops them.
    pub fn keeping_successes(mut self, charge: Option<SuccessCharge>) -> Self {
        self.keep_successes = charge;
        self
    }

    /// Keep the client's MSG_NO_SEND indexes for the caller (a receiver),
    /// each charged with `charge`.
    pub fn keeping_no_sends(mut self, charge: Option<SuccessCharge>) -> Self {
        self.keep_no_sends = charge;
        self
    }

    /// Whether the client has already committed to sending more data: the
    /// rest of the data frame being read. A client writes a frame whole
    /// without waiting on us, so reading on from it cannot depend on
    /// output we still hold back (our flush can wait for a real wait).
    pub fn frame_data_pending(&self) -> bool {
        self.multiplexed && self.data_left > 0
    }

    /// Whether frames are being read.
    pub fn is_multiplexed(&self) -> bool {
        self.multiplexed
    }

    /// Switch framing off or on, at a frame boundary (protocol 30's
    /// `--files-from` list travels unframed).
    pub fn set_multiplexed(&mut self, on: bool) {
        debug_assert_eq!(self.data_left, 0, "switching framing mid-frame");
        self.multiplexed = on;
    }

    /// The wrapped reader.
    pub fn inner_ref(&self) -> &R {
        &self.inner
    }

    /// Read frame headers until a data frame with bytes in it starts.
    fn next_data_frame(&mut self) -> io::Result<()> {
        while self.data_left == 0 {
            let mut header = [0u8; 4];
            self.inner.read_exact(&mut header)?;
            let word = u32::from_le_bytes(header);
            let tag = (word >> 24) as u8;
            let len = (word & 0x00FF_FFFF) as usize;
            let Some(tag) = tag.checked_sub(7) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected tag {tag} in multiplexed input"),
                ));
            };
            if tag == MsgTag::Data as u8 {
                self.data_left = len;
                continue;
            }
            let mut payload = vec![0u8; len.min(64 * 1024)];
            if len > payload.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("oversized message {tag} ({len} bytes)"),
                ));
            }
            self.inner.read_exact(&mut payload)?;
            self.handle_message(MsgTag::from_wire(tag), tag, &payload)?;
        }
        Ok(())
    }

    fn handle_message(&mut self, tag: Option<MsgTag>, raw_tag: u8, payload: &[u8]) -> io::Result<()> {
        let int = || payload.get(..4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
        match tag {
            Some(MsgTag::Noop) => {}
            Some(MsgTag::IoError) => self.client_io_error |= int(),
            Some(MsgTag::Success) if payload.len() == 4 => {
                if let Some(charge) = self.keep_successes {
                    charge(4)?;
                    self.successes.push(int());
                }
            }
            Some(MsgTag::NoSend) if payload.len() == 4 && self.keep_no_sends.is_some() => {
                if let Some(charge) = self.keep_no_sends {
                    charge(4)?;
                    self.no_sends.push(int());
                }
            }
            Some(MsgTag::ErrorExit) => return Err(io::Error::other(ClientAborted(int()))),
            Some(MsgTag::Info | MsgTag::Error | MsgTag::Warning | MsgTag::ErrorXfer) => {
                // The client's words, cut to a line's worth (the log
                // format escapes what could forge a line).
                let text = String::from_utf8_lossy(&payload[..payload.len().min(1024)]);
                info!("client said: {}", text.trim_end());
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected message {raw_tag} from the client"),
                ));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for DemuxReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.multiplexed {
            let n = self.inner.read(buf)?;
            self.data_read += n as u64;
            return Ok(n);
        }
        self.next_data_frame()?;
        let want = buf.len().min(self.data_left);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-frame"));
        }
        self.data_left -= n;
        self.data_read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = (((7 + tag as u32) << 24) | payload.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn data_flows_across_frames_and_messages_are_handled() {
        let mut input = frame(0, b"hel");
        input.extend(frame(42, &[]));
        input.extend(frame(22, &3i32.to_le_bytes()));
        input.extend(frame(0, b"lo"));
        let mut r = DemuxReader::new(&input[..], true);
        let mut out = [0u8; 5];
        r.read_exact(&mut out).unwrap();
        assert_eq!(&out, b"hello");
        assert_eq!(r.client_io_error, 3);
    }

    #[test]
    fn error_exit_and_bad_tags_are_errors() {
        let input = frame(86, &12i32.to_le_bytes());
        let err = DemuxReader::new(&input[..], true).read(&mut [0u8; 1]).unwrap_err();
        assert!(err.to_string().contains("exit code 12"));
        let bad = [0u8, 0, 0, 1];
        assert!(DemuxReader::new(&bad[..], true).read(&mut [0u8; 1]).is_err());
    }

    #[test]
    fn successes_are_kept_only_when_asked_for() {
        let mut input = Vec::new();
        for ndx in 0..1000i32 {
            input.extend(frame(100, &ndx.to_le_bytes()));
        }
        input.extend(frame(0, b"x"));
        let mut dropped = DemuxReader::new(&input[..], true);
        dropped.read_exact(&mut [0u8; 1]).unwrap();
        assert!(dropped.successes.is_empty(), "a push or a plain pull keeps none");
        let mut kept = DemuxReader::new(&input[..], true).keeping_successes(Some(|_| Ok(())));
        kept.read_exact(&mut [0u8; 1]).unwrap();
        assert_eq!(kept.successes.len(), 1000);
        let mut refused = DemuxReader::new(&input[..], true).keeping_successes(Some(|_| Err(io::Error::other("over budget"))));
        assert!(refused.read_exact(&mut [0u8; 1]).is_err(), "the charge's refusal ends the read");
    }
}
