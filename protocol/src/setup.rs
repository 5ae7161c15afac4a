//! Protocol setup right after the argument block (upstream's
//! `setup_protocol` and `negotiate_the_strings`): compat flags, the
//! checksum and compression name lists, the checksum seed.

use std::io::{self, Read, Write};

use crate::wire::{read_vstring, write_int, write_varint, write_vstring};

/// The parts of the client's options that shape protocol setup (the
/// worker derives them from its one parse of the option list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupOptions {
    /// `--sender`: the client pulls, so we send.
    pub we_send: bool,
    /// The capability letters after `-e.` (e.g. `iLsfxCIvu`); empty for old clients.
    pub capabilities: String,
    /// `-z` / `--compress` (or a compress choice) was given.
    pub compress: bool,
    /// `--checksum-choice=NAME` forced by the client.
    pub checksum_choice: Option<String>,
    /// `--compress-choice=NAME` forced by the client.
    pub compress_choice: Option<String>,
    /// `--files-from` was given.
    pub files_from: bool,
}

impl SetupOptions {
    /// Whether the client announced capability letter `c`.
    pub fn has_capability(&self, c: char) -> bool {
        self.capabilities.contains(c)
    }
}

/// Compat flag bits (upstream's CF_*).
pub mod compat {
    pub const INC_RECURSE: i32 = 1 << 0;
    pub const SYMLINK_TIMES: i32 = 1 << 1;
    pub const SAFE_FLIST: i32 = 1 << 3;
    pub const AVOID_XATTR_OPTIM: i32 = 1 << 4;
    pub const CHKSUM_SEED_FIX: i32 = 1 << 5;
    pub const INPLACE_PARTIAL_DIR: i32 = 1 << 6;
    pub const VARINT_FLIST_FLAGS: i32 = 1 << 7;
    pub const ID0_NAMES: i32 = 1 << 8;
}

/// Transfer checksums we offer, strongest first.
pub const CHECKSUM_LIST: &str = "xxh128 xxh3 xxh64 md5 md4 sha1 none";
/// Compressors we offer, preferred first.
pub const COMPRESS_LIST: &str = "zstd lz4 zlibx zlib none";

/// The outcome of setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Compat flags sent (protocol >= 30), 0 before.
    pub compat_flags: i32,
    /// Transfer checksum both sides use.
    pub checksum: String,
    /// Compressor, when compressing.
    pub compression: Option<String>,
    /// Seed for block checksums.
    pub seed: i32,
}

/// Negotiation failed; `Display` is what the client is told.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("Failed to negotiate a {kind} choice.\nClient {kind} list: {client}\nServer {kind} list: {server}")]
    NoCommonChoice {
        kind: &'static str,
        client: String,
        server: &'static str,
    },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Compat flags for this client, incremental recursion aside (see
/// [`setup_protocol_with`]).
pub fn compat_flags_for(options: &SetupOptions) -> i32 {
    let mut flags = compat::SYMLINK_TIMES;
    for (letter, bit) in [
        ('f', compat::SAFE_FLIST),
        ('x', compat::AVOID_XATTR_OPTIM),
        ('C', compat::CHKSUM_SEED_FIX),
        ('I', compat::INPLACE_PARTIAL_DIR),
        ('u', compat::ID0_NAMES),
        ('v', compat::VARINT_FLIST_FLAGS),
    ] {
        if options.has_capability(letter) {
            flags |= bit;
        }
    }
    flags
}

/// Run setup on the raw (not yet multiplexed) stream, without incremental
/// recursion.
pub fn setup_protocol<R: Read, W: Write>(
    reader: &mut R,
    writer: &mut W,
    protocol: u32,
    options: &SetupOptions,
    seed: i32,
) -> Result<Negotiated, SetupError> {
    setup_protocol_with(reader, writer, protocol, options, false, seed)
}

/// Run setup on the raw (not yet multiplexed) stream; `inc_recurse` (the
/// worker's decision) sets CF_INC_RECURSE, which exists from protocol
/// 30 only. The transfer reads the decision back from
/// `Negotiated::compat_flags`.
pub fn setup_protocol_with<R: Read, W: Write>(
    reader: &mut R,
    writer: &mut W,
    protocol: u32,
    options: &SetupOptions,
    inc_recurse: bool,
    seed: i32,
) -> Result<Negotiated, SetupError> {
    let mut compat_flags = 0;
    let mut negotiate_strings = false;
    if protocol >= 30 {
        compat_flags = compat_flags_for(options);
        if inc_recurse {
            compat_flags |= compat::INC_RECURSE;
        }
        negotiate_strings = compat_flags & compat::VARINT_FLIST_FLAGS != 0;
        write_varint(writer, compat_flags)?;
    }
    let send_checksums = negotiate_strings && options.checksum_choice.is_none();
    let send_compress = negotiate_strings && options.compress && options.compress_choice.is_none();
    if send_checksums {
        write_vstring(writer, CHECKSUM_LIST.as_bytes())?;
    }
    if send_compress {
        write_vstring(writer, COMPRESS_LIST.as_bytes())?;
    }
    writer.flush()?;

    let default_checksum = if protocol >= 30 { "md5" } else { "md4" };
    let checksum = match &options.checksum_choice {
        Some(forced) => forced.clone(),
        None if send_checksums => choose("checksum", &read_list(reader)?, CHECKSUM_LIST)?,
        None => default_checksum.to_string(),
    };
    let compression = if !options.compress {
        None
    } else if let Some(forced) = &options.compress_choice {
        Some(forced.clone())
    } else if send_compress {
        Some(choose("compress", &read_list(reader)?, COMPRESS_LIST)?)
    } else {
        Some("zlib".to_string())
    };
    write_int(writer, seed)?;
    writer.flush()?;
    Ok(Negotiated {
        compat_flags,
        checksum,
        compression,
        seed,
    })
}

fn read_list<R: Read>(reader: &mut R) -> io::Result<String> {
    Ok(String::from_utf8_lossy(&read_vstring(reader, 1024)?).into_owned())
}

/// The first name in the client's list that we also offer.
fn choose(kind: &'static str, client: &str, ours: &'static str) -> Result<String, SetupError> {
    client
        .split_whitespace()
        .find(|name| ours.split_whitespace().any(|o| o == *name))
        .map(str::to_string)
        .ok_or_else(|| SetupError::NoCommonChoice {
            kind,
            client: client.to_string(),
            server: ours,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's setup options: `we_send`, its capability letters, `-z`.
    fn opts(we_send: bool, capabilities: &str, compress: bool) -> SetupOptions {
        SetupOptions {
            we_send,
            capabilities: capabilities.to_string(),
            compress,
            ..SetupOptions::default()
        }
    }

    #[test]
    fn modern_client_negotiates_lists() {
        let o = opts(true, "iLsfxCIvu", true);
        let mut client = Vec::new();
        write_vstring(&mut client, b"xxh128 xxh3 xxh64 md5 md4 sha1").unwrap();
        write_vstring(&mut client, b"zstd lz4 zlibx zlib").unwrap();
        let mut out = Vec::new();
        let n = setup_protocol(&mut &client[..], &mut out, 32, &o, 0x01020304).unwrap();
        assert_eq!(n.checksum, "xxh128");
        assert_eq!(n.compression.as_deref(), Some("zstd"));
        // varint flags (0x1AA: 2 bytes), both lists, then the seed.
        let flags = compat_flags_for(&o);
        assert_eq!(flags & compat::INC_RECURSE, 0);
        let mut expected = crate::wire::encode_varint(flags);
        write_vstring(&mut expected, CHECKSUM_LIST.as_bytes()).unwrap();
        write_vstring(&mut expected, COMPRESS_LIST.as_bytes()).unwrap();
        expected.extend_from_slice(&0x01020304i32.to_le_bytes());
        assert_eq!(out, expected);
    }

    #[test]
    fn old_protocol_sends_only_the_seed() {
        let o = opts(true, "", false);
        let mut out = Vec::new();
        let n = setup_protocol(&mut &[][..], &mut out, 29, &o, 7).unwrap();
        assert_eq!(out, 7i32.to_le_bytes());
        assert_eq!(n.checksum, "md4");
        assert_eq!(n.compat_flags, 0);
    }

    #[test]
    fn inc_recurse_sets_its_flag_from_protocol_30_only() {
        let o = opts(true, "iLsfxCIvu", false);
        let mut client = Vec::new();
        write_vstring(&mut client, b"md5").unwrap();
        let mut out = Vec::new();
        let n = setup_protocol_with(&mut &client[..], &mut out, 30, &o, true, 9).unwrap();
        assert_eq!(n.compat_flags, compat_flags_for(&o) | compat::INC_RECURSE);
        assert_eq!(&out[..2], &crate::wire::encode_varint(n.compat_flags)[..]);
        // Below 30 there are no compat flags at all.
        let n = setup_protocol_with(&mut &[][..], &mut Vec::new(), 29, &o, true, 9).unwrap();
        assert_eq!(n.compat_flags, 0);
    }

    #[test]
    fn no_common_checksum_is_an_error() {
        let o = opts(false, "v", false);
        let mut client = Vec::new();
        write_vstring(&mut client, b"blake9").unwrap();
        let err = setup_protocol(&mut &client[..], &mut Vec::new(), 31, &o, 1).unwrap_err();
        assert!(err.to_string().contains("Failed to negotiate a checksum choice"));
    }
}
