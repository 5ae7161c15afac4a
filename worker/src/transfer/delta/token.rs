//! Token streams: how a file's delta (literal data, references to the
//! receiver's basis blocks, end of file) is encoded on the wire, for the
//! plain format and the compressed ones (zlib, zlibx, zstd, lz4).

use std::io::{self, Read, Write};

use crate::transfer::delta::error::DeltaError;
use crate::transfer::delta::token_deflate::{DeflateRx, DeflateTx};
use crate::transfer::delta::token_lz4::{lz4_compress_frames, lz4_decompress_frame};
use crate::transfer::delta::token_runs::{frame_data, Flag, RunDecoder, RunEncoder, DEFLATED_DATA, END_FLAG};
use crate::transfer::delta::token_zstd::{ZstdRx, ZstdTx};
use oxrsyncd_protocol::wire::{read_int, write_int};

/// Upstream CHUNK_SIZE: the largest plain literal run we send at once.
pub(crate) const CHUNK_SIZE: usize = 32 * 1024;
/// zstd's ZSTD_CLEVEL_DEFAULT.
const ZSTD_DEFAULT_LEVEL: i32 = 3;
const ZSTD_MIN_LEVEL: i32 = -(1 << 17);
/// The highest zstd level we compress at, whatever the client asks:
/// upstream serves up to 22, but the encoder's state grows with the level
/// (about 7 MiB at 3, 20 MiB at 9, 100 MiB at 19, 700 MiB at 22, measured
/// with the zstd CLI on a stream), and a worker holds thousands of
/// sessions. Any level decodes on the client, so this costs it nothing but
/// ratio.
pub(crate) const ZSTD_MAX_SERVED_LEVEL: i32 = 9;

/// The negotiated token compression and its (sender-side) level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Zlib { level: i32 },
    ZlibX { level: i32 },
    Zstd { level: i32 },
    Lz4,
}

impl Compression {
    /// From the negotiated name and the `--compress-level` the client passed
    /// (`None` = not specified), normalising levels like upstream's
    /// `init_compression_level`: zlib defaults to 6 and clamps to 1..=9 (level
    /// 0 turns compression off); zstd maps 0/unspecified to 3 and clamps
    /// (at [`ZSTD_MAX_SERVED_LEVEL`] at the top, not upstream's 22);
    /// lz4 has no levels. Unknown names give `None`.
    pub fn from_negotiated(name: Option<&str>, level: Option<i32>) -> Option<Compression> {
        let name = name.unwrap_or("none").to_ascii_lowercase();
        Some(match name.as_str() {
            "none" => Compression::None,
            "zlib" | "zlibx" => {
                let lvl = match level {
                    None | Some(-1) => 6,
                    Some(0) => return Some(Compression::None),
                    Some(l) => l.clamp(1, 9),
                };
                if name == "zlib" {
                    Compression::Zlib { level: lvl }
                } else {
                    Compression::ZlibX { level: lvl }
                }
            }
            "zstd" => {
                let lvl = match level {
                    None | Some(0) => ZSTD_DEFAULT_LEVEL,
                    Some(l) => l.clamp(ZSTD_MIN_LEVEL, ZSTD_MAX_SERVED_LEVEL),
                };
                Compression::Zstd { level: lvl }
            }
            "lz4" => Compression::Lz4,
            _ => return None,
        })
    }
}

impl Compression {
    /// The stream a module whose `dont compress` matches every name (`*`)
    /// gets: upstream opens its deflate stream at the skip level (stored
    /// blocks, level 0); zstd and lz4 keep their level, as upstream's
    /// per-file levels are disabled for every compressor.
    pub fn at_skip_level(self) -> Compression {
        match self {
            Compression::Zlib { .. } => Compression::Zlib { level: 0 },
            Compression::ZlibX { .. } => Compression::ZlibX { level: 0 },
            other => other,
        }
    }
}

/// Whether a `dont compress` list names every file: upstream's only
/// pattern that still changes the stream (`*`, case and spacing aside).
pub(crate) fn dont_compress_matches_all(list: &str) -> bool {
    list.split_whitespace().any(|p| p == "*")
}

/// One decoded item of a file's token stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// Literal file data (any length; consecutive literals just concatenate).
    Literal(Vec<u8>),
    /// Copy block `k` of the basis.
    Block(i32),
    /// End of this file's tokens (the whole-file checksum follows).
    End,
}

enum TxCodec {
    Plain,
    Deflate { tx: Box<DeflateTx>, history: bool },
    Zstd(Box<ZstdTx>),
    Lz4,
}

/// Session-long token writer (zstd keeps one context per session; deflate
/// resets per file as upstream). Call `literal`/`block_match` in file order,
/// then `end_file`; the next call starts the next file.
pub struct TokenWriter {
    codec: TxCodec,
    runs: RunEncoder,
    flush_pending: bool,
}

impl TokenWriter {
    /// A writer for protocol 31+ (see [`TokenWriter::with_protocol`]).
    pub fn new(c: Compression) -> Self {
        Self::with_protocol(c, 31)
    }

    /// A writer for `protocol`: below 31 the zlib history feed keeps
    /// upstream's duplicated-data quirk for blocks over 64 KiB.
    pub fn with_protocol(c: Compression, protocol: u32) -> Self {
        let codec = match c {
            Compression::None => TxCodec::Plain,
            Compression::Zlib { level } => TxCodec::Deflate {
                tx: Box::new(DeflateTx::new(level, protocol)),
                history: true,
            },
            Compression::ZlibX { level } => TxCodec::Deflate {
                tx: Box::new(DeflateTx::new(level, protocol)),
                history: false,
            },
            // Encoder creation only fails on allocation failure; fall back to
            // the default level, which cannot be rejected.
            Compression::Zstd { level } => TxCodec::Zstd(Box::new(
                ZstdTx::new(level)
                    .or_else(|_| ZstdTx::new(ZSTD_DEFAULT_LEVEL))
                    .expect("zstd encoder allocation"),
            )),
            Compression::Lz4 => TxCodec::Lz4,
        };
        TokenWriter {
            codec,
            runs: RunEncoder::new(),
            flush_pending: false,
        }
    }

    /// Compressed formats: run bookkeeping + per-file reset.
    fn note(&mut self, token: i32, has_data: bool, buf: &mut Vec<u8>) {
        if self.runs.note(token, has_data, buf) {
            self.flush_pending = false;
            if let TxCodec::Deflate { tx, .. } = &mut self.codec {
                tx.reset();
            }
        }
    }

    /// Compress (and frame) `data`; `flush` ends with a flush point.
    fn compress(&mut self, data: &[u8], flush: bool, buf: &mut Vec<u8>) -> io::Result<()> {
        match &mut self.codec {
            TxCodec::Plain => unreachable!("plain tokens are not compressed"),
            TxCodec::Deflate { tx, .. } => frame_data(&tx.compress(data, flush)?, buf),
            TxCodec::Zstd(tx) => frame_data(&tx.compress(data, flush)?, buf),
            TxCodec::Lz4 => lz4_compress_frames(data, buf)?,
        }
        Ok(())
    }

    /// Send literal file data (plain: int32 length + bytes, chunks <= 32 KiB).
    pub fn literal(&mut self, data: &[u8], out: &mut impl Write) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(data.len() + 16);
        if let TxCodec::Plain = self.codec {
            for chunk in data.chunks(CHUNK_SIZE) {
                write_int(&mut buf, chunk.len() as i32)?;
                buf.extend_from_slice(chunk);
            }
        } else {
            self.note(-2, true, &mut buf);
            self.compress(data, false, &mut buf)?;
            self.flush_pending = !matches!(self.codec, TxCodec::Lz4);
        }
        out.write_all(&buf)
    }

    /// Send a reference to basis block `block_index`; `block_data` is that
    /// block's content (zlib puts it into the compressor's history).
    pub fn block_match(&mut self, block_index: i32, block_data: &[u8], out: &mut impl Write) -> io::Result<()> {
        let mut buf = Vec::new();
        if let TxCodec::Plain = self.codec {
            write_int(&mut buf, -(block_index + 1))?;
        } else {
            self.note(block_index, false, &mut buf);
            if self.flush_pending {
                self.compress(&[], true, &mut buf)?;
                self.flush_pending = false;
            }
            if let TxCodec::Deflate { tx, history: true } = &mut self.codec {
                tx.add_history(block_data)?;
            }
        }
        out.write_all(&buf)
    }

    /// End the current file's token stream.
    pub fn end_file(&mut self, out: &mut impl Write) -> io::Result<()> {
        let mut buf = Vec::new();
        if let TxCodec::Plain = self.codec {
            write_int(&mut buf, 0)?;
        } else {
            self.note(-1, false, &mut buf);
            if self.flush_pending {
                self.compress(&[], true, &mut buf)?;
                self.flush_pending = false;
            }
            buf.push(END_FLAG);
        }
        out.write_all(&buf)
    }
}

enum RxCodec {
    Plain { residue: usize },
    Deflate { rx: Box<DeflateRx>, history: bool, fresh: bool },
    Zstd(Box<ZstdRx>),
    Lz4,
}

/// Session-long token reader, the inverse of [`TokenWriter`]. With zlib the
/// caller must hand every copied block back through [`TokenReader::see_block`]
/// before reading on (upstream `see_token`).
pub struct TokenReader {
    codec: RxCodec,
    runs: RunDecoder,
    /// The compressed data frame being decoded, and how much of it is
    /// consumed: a frame is decoded [`MAX_DECODED_PIECE`] bytes at a time.
    frame: Vec<u8>,
    frame_pos: usize,
    /// Whether `frame` still has input or buffered output to give.
    draining: bool,
}

/// Most bytes one literal token decoded from a compressed frame carries: a
/// frame that expands (zstd can describe hundreds of MiB in 8 KiB) is
/// handed out in pieces this big, never decoded whole.
pub(crate) const MAX_DECODED_PIECE: usize = 128 * 1024;

impl TokenReader {
    /// A reader for protocol 31+.
    pub fn new(c: Compression) -> Self {
        Self::with_protocol(c, 31).expect("zstd decoder allocation")
    }

    /// A reader for `protocol` (zlib history quirk below 31).
    pub fn with_protocol(c: Compression, protocol: u32) -> Result<Self, DeltaError> {
        let codec = match c {
            Compression::None => RxCodec::Plain { residue: 0 },
            Compression::Zlib { .. } => RxCodec::Deflate {
                rx: Box::new(DeflateRx::new(protocol)),
                history: true,
                fresh: true,
            },
            Compression::ZlibX { .. } => RxCodec::Deflate {
                rx: Box::new(DeflateRx::new(protocol)),
                history: false,
                fresh: true,
            },
            Compression::Zstd { .. } => RxCodec::Zstd(Box::new(ZstdRx::new()?)),
            Compression::Lz4 => RxCodec::Lz4,
        };
        Ok(TokenReader {
            codec,
            runs: RunDecoder::default(),
            frame: Vec::new(),
            frame_pos: 0,
            draining: false,
        })
    }

    /// Read the next token.
    pub fn next(&mut self, r: &mut impl Read) -> Result<Token, DeltaError> {
        if let RxCodec::Plain { residue } = &mut self.codec {
            if *residue == 0 {
                let i = read_int(r).map_err(DeltaError::io("reading token"))?;
                if i == 0 {
                    return Ok(Token::End);
                }
                if i < 0 {
                    return Ok(Token::Block(-(i + 1)));
                }
                *residue = i as usize;
            }
            let n = (*residue).min(CHUNK_SIZE);
            let mut buf = vec![0u8; n];
            r.read_exact(&mut buf).map_err(DeltaError::io("reading literal data"))?;
            *residue -= n;
            return Ok(Token::Literal(buf));
        }
        if let RxCodec::Deflate { rx, fresh, .. } = &mut self.codec {
            if *fresh {
                rx.reset();
                *fresh = false;
            }
        }
        loop {
            if self.draining {
                let piece = self.drain_frame()?;
                if !piece.is_empty() {
                    return Ok(Token::Literal(piece));
                }
                continue;
            }
            if let Some(t) = self.runs.next_in_run()? {
                return Ok(Token::Block(t));
            }
            let flag = self.runs.read_flag(r)?;
            if flag & 0xC0 != DEFLATED_DATA {
                if let RxCodec::Deflate { rx, .. } = &mut self.codec {
                    // Data frames ended: supply the stripped sync tail first.
                    let tail = rx.sync()?;
                    if !tail.is_empty() {
                        self.runs.save_flag(flag);
                        return Ok(Token::Literal(tail));
                    }
                }
            }
            match self.runs.decode(flag, r)? {
                Flag::Data(frame) => {
                    self.frame = frame;
                    self.frame_pos = 0;
                    self.draining = true;
                }
                Flag::Block(t) => return Ok(Token::Block(t)),
                Flag::End => {
                    if let RxCodec::Deflate { fresh, .. } = &mut self.codec {
                        *fresh = true;
                    }
                    return Ok(Token::End);
                }
            }
        }
    }

    /// The next piece of the frame being decoded (possibly empty), at most
    /// [`MAX_DECODED_PIECE`] bytes; `draining` ends with the frame.
    fn drain_frame(&mut self) -> Result<Vec<u8>, DeltaError> {
        let input = &self.frame[self.frame_pos..];
        let (out, consumed, done) = match &mut self.codec {
            RxCodec::Deflate { rx, .. } => rx.step(input, MAX_DECODED_PIECE)?,
            RxCodec::Zstd(rx) => rx.step(input, MAX_DECODED_PIECE)?,
            RxCodec::Lz4 => (lz4_decompress_frame(input)?, input.len(), true),
            RxCodec::Plain { .. } => unreachable!("plain streams have no frames"),
        };
        if !done && consumed == 0 && out.is_empty() {
            return Err(DeltaError::Compression {
                codec: "token stream",
                detail: "a data frame neither decodes nor ends".into(),
            });
        }
        self.frame_pos += consumed;
        self.draining = !done;
        Ok(out)
    }

    /// Feed the data of a block token just returned by `next` (zlib only;
    /// a no-op for every other format).
    pub fn see_block(&mut self, data: &[u8]) -> Result<(), DeltaError> {
        if let RxCodec::Deflate { rx, history: true, .. } = &mut self.codec {
            rx.see(data)?;
        }
        Ok(())
    }
}
