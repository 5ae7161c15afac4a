//! `--append` / `--append-verify` on the sending side (upstream's append
//! branch of `match_sums`): the receiver keeps what it has, so nothing is
//! matched; everything past the length the generator announced goes as
//! literal data. With `--append-verify` the whole-file checksum also covers
//! the kept prefix, so the receiver can check the result as a whole.

use std::io::{self, Read, Write};

use crate::transfer::delta::checksum::{ChecksumParams, FileSum};
use crate::transfer::delta::error::DeltaError;
use crate::transfer::delta::token::{TokenWriter, CHUNK_SIZE};

/// What an append sent.
#[derive(Debug)]
pub(crate) struct AppendOutcome {
    /// The whole-file checksum to write after the tokens.
    pub file_sum: Vec<u8>,
    /// Bytes sent as literal data.
    pub literal_bytes: u64,
}

/// Send `file` (of `file_len` bytes) to a receiver that already holds its
/// first `kept` bytes (clamped to what the file has, as a hostile peer may
/// claim more).
pub(crate) fn send_file_append(
    file: &mut impl Read,
    file_len: u64,
    kept: u64,
    verify: bool,
    p: &ChecksumParams,
    tokens: &mut TokenWriter,
    out: &mut impl Write,
) -> Result<AppendOutcome, DeltaError> {
    let kept = kept.min(file_len);
    let mut fsum = FileSum::new(p);
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut pos = 0u64;
    // The kept prefix is read past (and summed for --append-verify).
    while pos < kept {
        let n = (kept - pos).min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..n]).map_err(DeltaError::io("reading the kept prefix"))?;
        if verify {
            fsum.update(&buf[..n]);
        }
        pos += n as u64;
    }
    let mut literal_bytes = 0u64;
    while pos < file_len {
        let n = (file_len - pos).min(buf.len() as u64) as usize;
        match file.read_exact(&mut buf[..n]) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                // The file shrank: send zeros, the checksum will not match and the client redoes it.
                buf[..n].fill(0);
            }
            Err(e) => return Err(DeltaError::io("reading the data to append")(e)),
        }
        tokens.literal(&buf[..n], out).map_err(DeltaError::io("writing literal data"))?;
        fsum.update(&buf[..n]);
        literal_bytes += n as u64;
        pos += n as u64;
    }
    tokens.end_file(out).map_err(DeltaError::io("writing end token"))?;
    Ok(AppendOutcome {
        file_sum: fsum.finish(),
        literal_bytes,
    })
}
