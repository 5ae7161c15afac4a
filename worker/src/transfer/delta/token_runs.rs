//! The flag-byte layer shared by every compressed token format (zlib, zlibx,
//! zstd, lz4): block tokens are run-length coded relative to the previous
//! run, literal data travels in `DEFLATED_DATA` frames of at most 16383 bytes.

use std::io::Read;

use crate::transfer::delta::error::DeltaError;
use oxrsyncd_protocol::wire::read_int;

/// End of the file's token stream.
pub(crate) const END_FLAG: u8 = 0;
/// Followed by a 32-bit absolute token number.
pub(crate) const TOKEN_LONG: u8 = 0x20;
/// Like TOKEN_LONG, then a 16-bit run count.
pub(crate) const TOKENRUN_LONG: u8 = 0x21;
/// Plus 6 high bits of the length, then the low length byte, then data.
pub(crate) const DEFLATED_DATA: u8 = 0x40;
/// Plus a 6-bit token number relative to the end of the previous run.
pub(crate) const TOKEN_REL: u8 = 0x80;
/// Like TOKEN_REL, then a 16-bit run count.
pub(crate) const TOKENRUN_REL: u8 = 0xC0;
/// Largest payload of one DEFLATED_DATA frame (14-bit length).
pub(crate) const MAX_DATA_COUNT: usize = 16383;
const MAX_TOKEN_INDEX: i32 = 0x7fff_fffe;

/// Append `data` to `out` as DEFLATED_DATA frames.
pub(crate) fn frame_data(data: &[u8], out: &mut Vec<u8>) {
    for chunk in data.chunks(MAX_DATA_COUNT) {
        frame_one(chunk, out);
    }
}

/// Append one DEFLATED_DATA frame (`chunk.len() <= MAX_DATA_COUNT`).
pub(crate) fn frame_one(chunk: &[u8], out: &mut Vec<u8>) {
    debug_assert!(!chunk.is_empty() && chunk.len() <= MAX_DATA_COUNT);
    out.push(DEFLATED_DATA | (chunk.len() >> 8) as u8);
    out.push(chunk.len() as u8);
    out.extend_from_slice(chunk);
}

/// Sender-side run coder: tokens are only written when a run ends, exactly
/// as upstream's send_*_token bookkeeping does (`-1` = file start/end,
/// `-2` = literal data without a token).
#[derive(Debug)]
pub(crate) struct RunEncoder {
    last_token: i32,
    run_start: i32,
    last_run_end: i32,
}

impl RunEncoder {
    pub(crate) fn new() -> Self {
        RunEncoder {
            last_token: -1,
            run_start: 0,
            last_run_end: 0,
        }
    }

    /// Account for `token` (with or without preceding literal data); writes a
    /// finished run to `out` when needed. Returns true when this call starts a
    /// new file (the caller resets per-file compressor state).
    pub(crate) fn note(&mut self, token: i32, has_data: bool, out: &mut Vec<u8>) -> bool {
        let mut new_file = false;
        if self.last_token == -1 {
            new_file = true;
            self.last_run_end = 0;
            self.run_start = token;
        } else if self.last_token == -2 {
            self.run_start = token;
        } else if has_data || token != self.last_token + 1 || token >= self.run_start + 65536 {
            let r = self.run_start - self.last_run_end;
            let n = self.last_token - self.run_start;
            if (0..=63).contains(&r) {
                out.push(if n == 0 { TOKEN_REL } else { TOKENRUN_REL } + r as u8);
            } else {
                out.push(if n == 0 { TOKEN_LONG } else { TOKENRUN_LONG });
                out.extend_from_slice(&self.run_start.to_le_bytes());
            }
            if n != 0 {
                out.push(n as u8);
                out.push((n >> 8) as u8);
            }
            self.last_run_end = self.last_token;
            self.run_start = token;
        }
        self.last_token = token;
        new_file
    }
}

/// What the flag layer decoded.
#[derive(Debug)]
pub(crate) enum Flag {
    /// A DEFLATED_DATA frame's payload.
    Data(Vec<u8>),
    /// A block token (possibly the first of a run).
    Block(i32),
    /// END_FLAG.
    End,
}

/// Receiver-side run decoder.
#[derive(Debug, Default)]
pub(crate) struct RunDecoder {
    rx_token: i32,
    rx_run: i32,
    saved_flag: Option<u8>,
}

fn read_u8(r: &mut impl Read) -> Result<u8, DeltaError> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).map_err(DeltaError::io("reading compressed token stream"))?;
    Ok(b[0])
}

fn bad(msg: &str) -> DeltaError {
    DeltaError::BadToken(format!("invalid token number in compressed stream ({msg})"))
}

impl RunDecoder {
    /// If a run is in progress, its next token.
    pub(crate) fn next_in_run(&mut self) -> Result<Option<i32>, DeltaError> {
        if self.rx_run <= 0 {
            return Ok(None);
        }
        if self.rx_token >= MAX_TOKEN_INDEX {
            return Err(bad("run overflows"));
        }
        self.rx_token += 1;
        self.rx_run -= 1;
        Ok(Some(self.rx_token))
    }

    /// Read the next flag byte (or take back a saved one).
    pub(crate) fn read_flag(&mut self, r: &mut impl Read) -> Result<u8, DeltaError> {
        match self.saved_flag.take() {
            Some(f) => Ok(f),
            None => read_u8(r),
        }
    }

    /// Put a flag back to be returned by the next `read_flag`.
    pub(crate) fn save_flag(&mut self, flag: u8) {
        self.saved_flag = Some(flag);
    }

    /// Decode what follows `flag`.
    pub(crate) fn decode(&mut self, flag: u8, r: &mut impl Read) -> Result<Flag, DeltaError> {
        if flag & 0xC0 == DEFLATED_DATA {
            let n = (((flag & 0x3f) as usize) << 8) + read_u8(r)? as usize;
            let mut buf = vec![0u8; n];
            r.read_exact(&mut buf).map_err(DeltaError::io("reading compressed data frame"))?;
            return Ok(Flag::Data(buf));
        }
        if flag == END_FLAG {
            self.rx_token = 0;
            self.rx_run = 0;
            return Ok(Flag::End);
        }
        if flag & TOKEN_REL != 0 {
            let incr = (flag & 0x3f) as i32;
            if self.rx_token > MAX_TOKEN_INDEX - incr {
                return Err(bad("relative token overflows"));
            }
            self.rx_token += incr;
        } else if flag & 0xE0 == TOKEN_LONG {
            let t = read_int(r).map_err(DeltaError::io("reading long token"))?;
            if !(0..=MAX_TOKEN_INDEX).contains(&t) {
                return Err(bad("long token out of range"));
            }
            self.rx_token = t;
        } else {
            return Err(DeltaError::BadToken(format!("unknown flag byte {flag:#04x}")));
        }
        let has_run = if flag & TOKEN_REL != 0 { flag & 0x40 != 0 } else { flag & 1 != 0 };
        if has_run {
            let lo = read_u8(r)? as i32;
            let hi = read_u8(r)? as i32;
            let run = lo + (hi << 8);
            if run <= 0 || self.rx_token > MAX_TOKEN_INDEX - run {
                return Err(bad("bad run length"));
            }
            self.rx_run = run;
        }
        Ok(Flag::Block(self.rx_token))
    }
}
