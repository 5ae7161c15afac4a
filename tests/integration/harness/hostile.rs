//! A hostile client: speaks the daemon protocol itself, byte by byte, so a
//! test can send what the stock client never would (a message at the
//! wrong time, data nobody asked for, a list or a frame built to cost the
//! daemon) and see what the daemon answers.
//!
//! It takes a session through the text handshake, the argument block and
//! protocol setup (compat flags, checksum seed) with the load generator's
//! `raw_session::open`, then gives the test the
//! raw streams: data and messages out, and the daemon's multiplexed output
//! in, with every message it sends kept for the test to look at.

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use oxrsyncd_load::raw_session::{self, RawSession};
use oxrsyncd_protocol::ndx::NdxCodec;
use oxrsyncd_protocol::setup::compat;
use oxrsyncd_protocol::wire::write_int;
use oxrsyncd_worker::codecs::{ChecksumKind, ChecksumParams, FileSum};
use oxrsyncd_worker::codecs::{FileEntry, FlistDecoder, FlistEncoder, FlistOptions};

/// Upstream's message tags this client sends or looks for, as bytes.
pub mod tag {
    use oxrsyncd_protocol::mux::MsgTag;
    pub const DATA: u8 = MsgTag::Data as u8;
    pub const INFO: u8 = MsgTag::Info as u8;
    pub const ERROR_EXIT: u8 = MsgTag::ErrorExit as u8;
    pub const SUCCESS: u8 = MsgTag::Success as u8;
}

/// Capability letters for `-e.`: safe file list, checksum seed fix, id0
/// names; no incremental recursion, no string negotiation (so md5 and the
/// protocol's default compressor).
pub const CAPABILITIES: &str = "sfxCu";

/// One session driven by hand.
pub struct Hostile {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub protocol: u32,
    pub compat_flags: i32,
    pub seed: i32,
    /// Data bytes left in the daemon's current MSG_DATA frame.
    data_left: usize,
    /// Every non-data message the daemon sent, in order.
    pub messages: Vec<(u8, Vec<u8>)>,
}

/// The daemon's last words, once the session has ended.
#[derive(Debug, Default)]
pub struct Ending {
    /// Message texts (MSG_ERROR, MSG_ERROR_XFER, MSG_INFO, ...), in order.
    pub texts: Vec<String>,
    /// The exit code of MSG_ERROR_EXIT, if one came.
    pub exit_code: Option<i32>,
    /// Whether the connection was closed (else the wait ran out).
    pub closed: bool,
}

impl Ending {
    pub fn says(&self, needle: &str) -> bool {
        self.texts.iter().any(|t| t.contains(needle))
    }
}

impl Hostile {
    /// Connect, pick `module`, send `args` (options, the lone `.`, paths)
    /// and read the daemon's protocol setup.
    pub fn start(addr: SocketAddr, module: &str, args: &[&str], protocol: u32) -> io::Result<Hostile> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_write_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        let RawSession {
            reader,
            writer,
            compat_flags,
            seed,
        } = raw_session::open(stream, module, args, protocol)?;
        Ok(Hostile {
            reader,
            writer,
            protocol,
            compat_flags,
            seed,
            data_left: 0,
            messages: Vec::new(),
        })
    }

    /// Send bytes of the data stream (framed from protocol 30, as a
    /// client's are).
    pub fn send_data(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.protocol >= 30 {
            self.send_message(tag::DATA, bytes)
        } else {
            self.writer.write_all(bytes)
        }
    }

    /// Send one multiplexed message with `tag` (only meaningful where the
    /// client's stream is multiplexed).
    pub fn send_message(&mut self, tag: u8, payload: &[u8]) -> io::Result<()> {
        let header = ((7 + u32::from(tag)) << 24) | payload.len() as u32;
        let mut frame = header.to_le_bytes().to_vec();
        frame.extend_from_slice(payload);
        self.writer.write_all(&frame)
    }

    /// An empty filter list (what a client without rules sends).
    pub fn send_no_filters(&mut self) -> io::Result<()> {
        let mut data = Vec::new();
        write_int(&mut data, 0)?;
        self.send_data(&data)
    }

    /// Read the daemon's file list (non-incremental) with `opts` (the
    /// protocol and compat flags are this session's).
    pub fn read_file_list(&mut self, opts: FlistOptions) -> io::Result<Vec<FileEntry>> {
        let mut decoder = FlistDecoder::new(FlistOptions {
            protocol: self.protocol,
            id0_names: self.compat_flags & compat::ID0_NAMES != 0,
            safe_flist: true,
            ..opts
        });
        let mut entries = Vec::new();
        while let Some(e) = decoder.next(self).map_err(|e| bad(e.to_string()))? {
            entries.push(e);
        }
        decoder.finish(self).map_err(|e| bad(e.to_string()))?;
        Ok(entries)
    }

    /// Send `entries` as this client's file list (a push), in the order
    /// given, with `opts` (the protocol and compat flags are this
    /// session's).
    pub fn send_file_list(&mut self, entries: &[FileEntry], opts: FlistOptions) -> io::Result<()> {
        let mut encoder = FlistEncoder::new(FlistOptions {
            protocol: self.protocol,
            id0_names: self.compat_flags & compat::ID0_NAMES != 0,
            safe_flist: true,
            ..opts
        });
        let mut out = Vec::new();
        for e in entries {
            encoder.encode(e, &mut out).map_err(|e| bad(e.to_string()))?;
        }
        encoder.finish(0, &mut out);
        self.send_data(&out)
    }

    /// What a client's sender sends for file `ndx` of a push: the index,
    /// "transfer" item flags, an empty sum head, `content` as one literal
    /// run and its whole-file checksum (correct, so the daemon would keep
    /// the file if it took the data at all).
    pub fn file_data(&self, ndx: &mut NdxCodec, index: i32, content: &[u8]) -> Vec<u8> {
        const ITEM_TRANSFER: u16 = 1 << 15;
        let mut out = Vec::new();
        ndx.write(&mut out, index).unwrap();
        if self.protocol >= 29 {
            out.extend_from_slice(&ITEM_TRANSFER.to_le_bytes());
        }
        for _ in 0..4 {
            write_int(&mut out, 0).unwrap(); // count, block length, sum length, remainder
        }
        if !content.is_empty() {
            write_int(&mut out, content.len() as i32).unwrap();
            out.extend_from_slice(content);
        }
        write_int(&mut out, 0).unwrap();
        let params = ChecksumParams {
            kind: ChecksumKind::implied(self.protocol),
            seed: self.seed,
            proper_seed_order: self.compat_flags & compat::CHKSUM_SEED_FIX != 0,
        };
        let mut sum = FileSum::new(&params);
        sum.update(content);
        out.extend_from_slice(&sum.finish());
        out
    }

    /// Read whatever the daemon still sends, until it closes the
    /// connection or `wait` passes.
    pub fn finish(mut self, wait: Duration) -> Ending {
        let deadline = Instant::now() + wait;
        let mut closed = false;
        let mut sink = [0u8; 64 * 1024];
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
            let _ = self.reader.get_ref().set_read_timeout(Some(left));
            match self.read(&mut sink) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let texts = self
            .messages
            .iter()
            .filter(|(t, _)| *t != tag::ERROR_EXIT && *t != tag::SUCCESS)
            .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
            .collect();
        let exit_code = self
            .messages
            .iter()
            .find(|(t, p)| *t == tag::ERROR_EXIT && p.len() == 4)
            .map(|(_, p)| i32::from_le_bytes([p[0], p[1], p[2], p[3]]));
        Ending { texts, exit_code, closed }
    }
}

impl Read for Hostile {
    /// The daemon's data stream, its messages set aside in `messages`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.data_left == 0 {
            let mut header = [0u8; 4];
            match self.reader.read_exact(&mut header) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let word = u32::from_le_bytes(header);
            let tag = ((word >> 24) as u8).wrapping_sub(7);
            let len = (word & 0x00FF_FFFF) as usize;
            if tag == tag::DATA {
                self.data_left = len;
                continue;
            }
            let mut payload = vec![0u8; len];
            self.reader.read_exact(&mut payload)?;
            self.messages.push((tag, payload));
        }
        let want = buf.len().min(self.data_left);
        let n = self.reader.read(&mut buf[..want])?;
        self.data_left -= n;
        Ok(n)
    }
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}
