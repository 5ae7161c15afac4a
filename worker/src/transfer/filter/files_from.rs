//! `--files-from`: the list of names to send, read from the client's
//! stream (`--files-from=-`, a local list the client forwards) or from a
//! file inside the module (`--files-from=:path`), as upstream's
//! `send_file_list` reads it. On a push the client is the one that sends,
//! so a list in the module goes the other way: [`forward_to_client`].
//!
//! Framing on the socket: names end with a NUL and an empty name ends the
//! list. From protocol 31 the names travel in `MSG_DATA` frames like any
//! other client data; protocol 30 sends them unframed in the middle of an
//! otherwise multiplexed stream; older protocols have no frames at all.
//! A file in the module is read with `#`/`;` comment lines and empty lines
//! skipped, lines ending at a newline (or NUL with `--from0`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::transfer::filter::rules::FilterList;
use crate::transfer::fs::module_root::ModuleRoot;
use oxrsyncd_protocol::mux::DemuxReader;
use oxrsyncd_protocol::mux::{MsgTag, MuxWriter};

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
    #[error(transparent)]
    OverBudget(#[from] crate::transfer::limits::budget::OverBudget),
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
        charge_name(&name)?;
        names.push(std::mem::take(&mut name));
    }
}

/// Charge one name to the session's budget: the name, and what a missing
/// name's message would cost (the walk reports each one).
fn charge_name(name: &[u8]) -> Result<(), FilesFromError> {
    Ok(crate::transfer::limits::budget::charge(
        2 * name.len() + 160,
        "the files-from list",
    )?)
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
        charge_name(&line)?;
        names.push(line.clone());
    }
}

/// Open the list a client names with `--files-from=:path`, inside the
/// module, as upstream's option parsing does for either direction: the
/// path sanitised, the module's filters consulted. `Err`: the words
/// upstream refuses with.
pub(crate) fn open_in_module(root: &ModuleRoot, source: &str, daemon_filters: &FilterList) -> Result<std::fs::File, String> {
    open_named_in_module(root, source, daemon_filters).map_err(|e| match e {
        NamedFileError::Rejected => "Your options have been rejected by the server.\n".into(),
        NamedFileError::Open { rel, err } => {
            // The C library's words (strerror), as upstream prints them.
            let text = io::Error::from_raw_os_error(err.raw_os_error().unwrap_or(0)).to_string();
            let words = text.split(" (os error").next().unwrap_or(&text).to_string();
            format!("failed to open files-from file {rel}: {words}\n")
        }
    })
}

/// Why a file a client names for the daemon to read (a `--files-from`
/// list, an `--exclude-from` list, a merge file) was not opened.
#[derive(Debug)]
pub(crate) enum NamedFileError {
    /// The module's filters hide the path (or it sanitises to nothing).
    Rejected,
    /// It could not be opened: its sanitised module-relative path and why.
    Open { rel: String, err: io::Error },
}

/// Open a file a client names, as upstream's daemon does: the path
/// sanitised into the module, the module's filters consulted, then read
/// through the module root.
pub(crate) fn open_named_in_module(root: &ModuleRoot, source: &str, daemon_filters: &FilterList) -> Result<std::fs::File, NamedFileError> {
    let rel = crate::transfer::fs::paths::sanitize(source);
    if !daemon_filters.rules.is_empty() && (rel.is_empty() || daemon_filters.excludes(&rel, false)) {
        return Err(NamedFileError::Rejected);
    }
    let opened = if rel.is_empty() {
        Err(io::Error::from_raw_os_error(libc::ENOENT))
    } else {
        root.open_read(Path::new(&rel))
    };
    opened.map_err(|err| NamedFileError::Open { rel, err })
}

/// Send a list file's names to the client, as upstream's receiving server
/// forwards them (`forward_filesfrom_data`) while the client builds its
/// file list from them: line ends (CR or LF) become NULs unless `from0`,
/// runs of NULs (empty lines) collapse, and an empty name ends the list.
/// From protocol 31 the names travel in data frames; older clients read
/// them unframed. The client reads them while it sends its list, so this
/// runs beside the list's reader (one thread each).
pub(crate) fn forward_to_client<W: Write>(mut file: impl Read, from0: bool, protocol: u32, out: &mut W) -> io::Result<()> {
    let framed = protocol >= 31;
    let mut send = |data: &[u8]| -> io::Result<()> {
        if framed {
            MuxWriter::new(&mut *out).send(MsgTag::Data, data)
        } else {
            out.write_all(data)
        }
    };
    let mut last = 0u8;
    let mut buf = vec![0u8; 32 * 1024];
    let mut names = Vec::with_capacity(buf.len());
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Upstream ends the list at a read error as at its end.
            Err(_) => break,
        };
        names.clear();
        for &byte in &buf[..n] {
            let byte = if !from0 && (byte == b'\n' || byte == b'\r') { 0 } else { byte };
            if byte == 0 && last == 0 {
                continue;
            }
            names.push(byte);
            last = byte;
        }
        if !names.is_empty() {
            send(&names)?;
        }
    }
    send(if last != 0 { b"\0\0" } else { b"\0" })?;
    out.flush()
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
    fn forwarded_lists_are_nul_separated_and_end_with_an_empty_name() {
        let mut out = Vec::new();
        forward_to_client(&b"\n\na\r\n\nb/c\n"[..], false, 29, &mut out).unwrap();
        assert_eq!(out, b"a\0b/c\0\0", "empty lines collapse, CR and LF end names");
        // No final line end: the name is ended with the list.
        out.clear();
        forward_to_client(&b"x\ny"[..], false, 30, &mut out).unwrap();
        assert_eq!(out, b"x\0y\0\0");
        // --from0 keeps newlines inside names; an empty list is one NUL.
        out.clear();
        forward_to_client(&b"a\nb\0\0c\0"[..], true, 29, &mut out).unwrap();
        assert_eq!(out, b"a\nb\0c\0\0");
        out.clear();
        forward_to_client(&b""[..], false, 29, &mut out).unwrap();
        assert_eq!(out, b"\0");
    }

    #[test]
    fn protocol_31_forwards_in_data_frames() {
        let mut out = Vec::new();
        forward_to_client(&b"a\n"[..], false, 31, &mut out).unwrap();
        let mut r = DemuxReader::new(&out[..], true);
        assert_eq!(read_from_client(&mut r, 31).unwrap(), vec![b"a".to_vec()]);
    }

    #[test]
    fn a_truncated_list_is_an_error() {
        let mut r = DemuxReader::new(&b"a\0b"[..], false);
        assert!(read_from_client(&mut r, 29).is_err());
    }
}
