//! Raw-deflate codec state for the `zlib` and `zlibx` token formats:
//! window -15, reset per file, every flush a Z_SYNC_FLUSH whose trailing
//! `00 00 FF FF` is stripped on the wire and re-supplied by the receiver.
//! For `zlib` both sides also put matched block data into the history
//! (sender: the deflate dictionary; receiver: fake stored blocks).

use std::io;

use flate2::{Compress, Compression as Level, Decompress, FlushCompress, FlushDecompress, Status};

use crate::transfer::delta::error::DeltaError;

const SYNC_TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
/// Matched data is fed to the history in pieces of at most this size.
const HISTORY_PIECE: usize = 0xffff;
const OUT_STEP: usize = 64 * 1024;

fn zerr(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("deflate: {e}"))
}

/// Sender-side deflate state.
pub(crate) struct DeflateTx {
    strm: Compress,
    /// Protocol < 31 re-feeds the first 64 KiB of a long block (upstream bug kept for compatibility).
    dup_bug: bool,
}

impl DeflateTx {
    pub(crate) fn new(level: i32, protocol: u32) -> Self {
        // 0 is the skip level (`dont compress = *`): stored blocks.
        let level = level.clamp(0, 9) as u32;
        DeflateTx {
            strm: Compress::new(Level::new(level), false),
            dup_bug: protocol < 31,
        }
    }

    /// Start a new file: fresh window.
    pub(crate) fn reset(&mut self) {
        self.strm.reset();
    }

    /// Deflate `input`; with `flush` end in a sync flush and strip its tail.
    /// Returns the raw deflate bytes to frame.
    pub(crate) fn compress(&mut self, mut input: &[u8], flush: bool) -> io::Result<Vec<u8>> {
        let mode = if flush { FlushCompress::Sync } else { FlushCompress::None };
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(OUT_STEP);
            }
            let before = self.strm.total_in();
            self.strm.compress_vec(input, &mut out, mode).map_err(zerr)?;
            input = &input[(self.strm.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if flush {
            if !out.ends_with(&SYNC_TAIL) {
                return Err(zerr("sync flush did not end in 00 00 ff ff"));
            }
            out.truncate(out.len() - 4);
        }
        Ok(out)
    }

    /// Put a matched block into the compressor's history without emitting
    /// anything (upstream's Z_INSERT_ONLY; here via deflateSetDictionary,
    /// which for raw deflate appends to the window at a block boundary).
    pub(crate) fn add_history(&mut self, block: &[u8]) -> io::Result<()> {
        let mut rest = block;
        let first = &block[..block.len().min(HISTORY_PIECE)];
        while !rest.is_empty() {
            let n = rest.len().min(HISTORY_PIECE);
            let piece = if self.dup_bug { &first[..n] } else { &rest[..n] };
            self.strm.set_dictionary(piece).map_err(zerr)?;
            rest = &rest[n..];
        }
        Ok(())
    }
}

fn derr(e: impl std::fmt::Display) -> DeltaError {
    DeltaError::Compression {
        codec: "inflate",
        detail: e.to_string(),
    }
}

/// Receiver-side inflate state.
pub(crate) struct DeflateRx {
    strm: Decompress,
    dup_bug: bool,
    /// Data frames were inflated since the last sync point.
    pending_sync: bool,
}

impl DeflateRx {
    pub(crate) fn new(protocol: u32) -> Self {
        DeflateRx {
            strm: Decompress::new(false),
            dup_bug: protocol < 31,
            pending_sync: false,
        }
    }

    /// Start a new file.
    pub(crate) fn reset(&mut self) {
        self.strm.reset(false);
        self.pending_sync = false;
    }

    fn run(&mut self, mut input: &[u8], flush: FlushDecompress, out: &mut Vec<u8>) -> Result<(), DeltaError> {
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(OUT_STEP);
            }
            let before = self.strm.total_in();
            let st = self.strm.decompress_vec(input, out, flush).map_err(derr)?;
            input = &input[(self.strm.total_in() - before) as usize..];
            if st == Status::StreamEnd && !input.is_empty() {
                return Err(derr("unexpected end of deflate stream"));
            }
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }

    /// Inflate from `input` into at most `cap` bytes: the output, the
    /// input consumed, and whether the frame is done (all input consumed,
    /// no output held back). Bounded like the zstd decoder's step, so an
    /// inflate bomb is decoded in pieces.
    pub(crate) fn step(&mut self, input: &[u8], cap: usize) -> Result<(Vec<u8>, usize, bool), DeltaError> {
        let mut out = Vec::with_capacity(cap);
        let before = self.strm.total_in();
        let st = self.strm.decompress_vec(input, &mut out, FlushDecompress::None).map_err(derr)?;
        let consumed = (self.strm.total_in() - before) as usize;
        if st == Status::StreamEnd && consumed < input.len() {
            return Err(derr("unexpected end of deflate stream"));
        }
        self.pending_sync = true;
        let done = consumed == input.len() && out.len() < cap;
        Ok((out, consumed, done))
    }

    /// A non-data flag arrived: supply the stripped sync-flush tail.
    pub(crate) fn sync(&mut self) -> Result<Vec<u8>, DeltaError> {
        let mut out = Vec::new();
        if self.pending_sync {
            self.pending_sync = false;
            self.run(&SYNC_TAIL, FlushDecompress::Sync, &mut out)?;
        }
        Ok(out)
    }

    /// Put matched block data into the inflate history as stored blocks.
    pub(crate) fn see(&mut self, block: &[u8]) -> Result<(), DeltaError> {
        let first = &block[..block.len().min(HISTORY_PIECE)];
        let mut rest = block;
        let mut scratch = Vec::with_capacity(HISTORY_PIECE + 1024);
        while !rest.is_empty() {
            let n = rest.len().min(HISTORY_PIECE);
            let piece = if self.dup_bug { &first[..n] } else { &rest[..n] };
            let len = n as u16;
            let hdr = [0u8, len as u8, (len >> 8) as u8, !(len as u8), !((len >> 8) as u8)];
            let mut input = Vec::with_capacity(n + 5);
            input.extend_from_slice(&hdr);
            input.extend_from_slice(piece);
            scratch.clear();
            self.run(&input, FlushDecompress::Sync, &mut scratch)?;
            if scratch != piece {
                return Err(derr("history block did not inflate to itself"));
            }
            rest = &rest[n..];
        }
        Ok(())
    }
}
