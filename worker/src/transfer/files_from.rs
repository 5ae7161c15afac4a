//! `--files-from`: the list of names to send, read from the client's
//! stream (`--files-from=-`, a local list the client forwards) or from a
//! file inside the module (`--files-from=:path`), as upstream's
//! `send_file_list` reads it.
//!
//! Framing on the socket: names end with a NUL and an empty name ends the
//! list. From protocol 31 the names travel in `MSG_DATA` frames like any
//! other client data; protocol 30 sends them unframed in the middle of an
//! otherwise multiplexed stream; older protocols have no frames at all.
//! A file in the module is read with `#`/`;` comment lines and empty lines
//! skipped, lines ending at a newline (or NUL with `--from0`).

use std::io::{self, BufRead, BufReader, Read};

use crate::transfer::demux::DemuxReader;

/// Longest name kept (upstream's MAXPATHLEN buffer); longer ones are cut.
const MAX_NAME: usize = 4095;
/// Most names one list may hold: a bound on what a client can make us keep.
const MAX_NAMES: usize = 10_000_000;

/// Why the list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FilesFromError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("the files-from list holds more than {MAX_NAMES} names")]
    TooMany,
}

/// Read the names the client forwards over the connection.
pub fn read_from_client<R: Read>(input: &mut DemuxReader<R>, protocol: u32) -> Result<Vec<Vec<u8>>, FilesFromError> {
    // Protocol 30 leaves its frames for the length of the list.
    let unframed = protocol == 30 && input.is_multiplexed();
    if unframed {
        input.set_multiplexed(false);
    }
    let result = read_nul_list(input);
    if unframed {
        input.set_multiplexed(true);
    }
    result
}

/// Names ending in NUL up to an empty one, one byte at a time so nothing
/// past the list's end is consumed.
fn read_nul_list(input: &mut impl Read) -> Result<Vec<Vec<u8>>, FilesFromError> {
    let mut names = Vec::new();
    let mut name = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        input.read_exact(&mut byte)?;
        if byte[0] != 0 {
            if name.len() < MAX_NAME {
                name.push(byte[0]);
            }
            continue;
        }
        if name.is_empty() {
            return Ok(names);
        }
        if names.len() >= MAX_NAMES {
            return Err(FilesFromError::TooMany);
        }
        names.push(std::mem::take(&mut name));
    }
}

/// Read a list file from the module: newline (or NUL) separated, comments
/// and empty lines skipped.
pub fn read_from_file(file: impl Read, nul_separated: bool) -> Result<Vec<Vec<u8>>, FilesFromError> {
    let separator = if nul_separated { 0 } else { b'\n' };
    let mut names = Vec::new();
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(separator, &mut line)? == 0 {
            return Ok(names);
        }
        while matches!(line.last(), Some(&b) if b == separator || (!nul_separated && b == b'\r')) {
            line.pop();
        }
        if line.is_empty() || line[0] == b'#' || line[0] == b';' {
            continue;
        }
        if names.len() >= MAX_NAMES {
            return Err(FilesFromError::TooMany);
        }
        line.truncate(MAX_NAME);
        names.push(line.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_lists_end_at_an_empty_name() {
        let data = b"a\0dir/b\0\0rest";
        let mut r = DemuxReader::new(&data[..], false);
        assert_eq!(read_from_client(&mut r, 29).unwrap(), vec![b"a".to_vec(), b"dir/b".to_vec()]);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"rest", "nothing past the list is consumed");
        // An empty list is a lone NUL.
        let mut r = DemuxReader::new(&b"\0"[..], false);
        assert!(read_from_client(&mut r, 31).unwrap().is_empty());
    }

    #[test]
    fn protocol_30_lists_are_unframed_inside_a_framed_stream() {
        let mut data = b"x\0\0".to_vec();
        // A framed MSG_DATA "ok" follows.
        data.extend_from_slice(&((7u32 << 24) | 2).to_le_bytes());
        data.extend_from_slice(b"ok");
        let mut r = DemuxReader::new(&data[..], true);
        assert_eq!(read_from_client(&mut r, 30).unwrap(), vec![b"x".to_vec()]);
        let mut ok = [0u8; 2];
        r.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"ok");
    }

    #[test]
    fn module_files_skip_comments_and_blank_lines() {
        let text = b"# comment\n; also\n\na b\r\nc/d\n";
        assert_eq!(read_from_file(&text[..], false).unwrap(), vec![b"a b".to_vec(), b"c/d".to_vec()]);
        assert_eq!(read_from_file(&b"x\0y\0"[..], true).unwrap(), vec![b"x".to_vec(), b"y".to_vec()]);
    }

    #[test]
    fn a_truncated_list_is_an_error() {
        let mut r = DemuxReader::new(&b"a\0b"[..], false);
        assert!(read_from_client(&mut r, 29).is_err());
    }
}
