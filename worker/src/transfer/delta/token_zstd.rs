//! zstd codec state for the `zstd` token format: one compression context and
//! one decompression context for the whole session (never reset between
//! files); each file's data ends with a ZSTD_e_flush so the receiver can
//! finish the file without a frame end.

use std::io;

use zstd::stream::raw::{Decoder, Encoder, InBuffer, Operation, OutBuffer};

use crate::transfer::delta::error::DeltaError;

const OUT_CHUNK: usize = 128 * 1024;

/// Sender-side zstd context.
pub(crate) struct ZstdTx {
    enc: Encoder<'static>,
}

impl ZstdTx {
    pub(crate) fn new(level: i32) -> io::Result<Self> {
        Ok(ZstdTx { enc: Encoder::new(level)? })
    }

    /// Compress `input` (ZSTD_e_continue) and, with `flush`, flush the
    /// context (ZSTD_e_flush). Returns the compressed bytes to frame.
    pub(crate) fn compress(&mut self, input: &[u8], flush: bool) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; OUT_CHUNK];
        let mut inb = InBuffer::around(input);
        while inb.pos < input.len() {
            let mut ob = OutBuffer::around(&mut buf[..]);
            self.enc.run(&mut inb, &mut ob)?;
            let n = ob.pos();
            out.extend_from_slice(&buf[..n]);
        }
        if flush {
            loop {
                let mut ob = OutBuffer::around(&mut buf[..]);
                let remaining = self.enc.flush(&mut ob)?;
                let n = ob.pos();
                out.extend_from_slice(&buf[..n]);
                if remaining == 0 {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// Receiver-side zstd context.
pub(crate) struct ZstdRx {
    dec: Decoder<'static>,
}

impl ZstdRx {
    pub(crate) fn new() -> Result<Self, DeltaError> {
        Ok(ZstdRx {
            dec: Decoder::new().map_err(DeltaError::io("creating zstd decoder"))?,
        })
    }

    /// Decode from `input` into at most `cap` bytes of output: returns the
    /// output, how much input was consumed, and whether the frame is done
    /// (all input consumed and nothing more buffered in the decoder). The
    /// caller comes back for the rest, so a frame built to expand (a few
    /// KiB of zstd can describe hundreds of MiB) never sits in memory whole.
    pub(crate) fn step(&mut self, input: &[u8], cap: usize) -> Result<(Vec<u8>, usize, bool), DeltaError> {
        let mut buf = vec![0u8; cap];
        let mut inb = InBuffer::around(input);
        let mut ob = OutBuffer::around(&mut buf[..]);
        self.dec.run(&mut inb, &mut ob).map_err(|e| DeltaError::Compression {
            codec: "zstd",
            detail: e.to_string(),
        })?;
        let n = ob.pos();
        let consumed = inb.pos;
        buf.truncate(n);
        Ok((buf, consumed, consumed == input.len() && n < cap))
    }
}
