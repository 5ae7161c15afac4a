//! Item flags (upstream's `ITEM_*`): what the generator says about each
//! file, sent with its index; the client prints them with `-i`. Also the
//! basis types and the attributes that follow an index.

use std::io::{self, Read, Write};

use crate::ndx::NdxCodec;
use crate::wire::{read_vstring, write_vstring};

pub const REPORT_ATIME: u16 = 1 << 0;
pub const REPORT_CHANGE: u16 = 1 << 1;
pub const REPORT_SIZE: u16 = 1 << 2;
pub const REPORT_TIME: u16 = 1 << 3;
pub const REPORT_PERMS: u16 = 1 << 4;
pub const REPORT_OWNER: u16 = 1 << 5;
pub const REPORT_GROUP: u16 = 1 << 6;
/// The ACLs differ (`-A`).
pub const REPORT_ACL: u16 = 1 << 7;
/// The extended attributes differ (the client's generator may follow
/// with a request for abbreviated values).
pub const REPORT_XATTR: u16 = 1 << 8;
pub const BASIS_TYPE_FOLLOWS: u16 = 1 << 11;
pub const XNAME_FOLLOWS: u16 = 1 << 12;
pub const IS_NEW: u16 = 1 << 13;
pub const LOCAL_CHANGE: u16 = 1 << 14;
pub const TRANSFER: u16 = 1 << 15;

/// Basis types sent after the item flags when `BASIS_TYPE_FOLLOWS` is set
/// (upstream's `FNAMECMP_*`). Values below `0x80` name the `--*-dest`
/// directory by its position (upstream's `FNAMECMP_BASIS_DIR_LOW + j`).
pub mod basis {
    /// The destination file itself.
    pub const FNAME: u8 = 0x80;
    /// The file in the partial directory.
    pub const PARTIAL_DIR: u8 = 0x81;
    /// The backup of the file.
    pub const BACKUP: u8 = 0x82;
    /// A `--fuzzy` basis named by the xname; `FUZZY + i` for one found in
    /// `--*-dest` directory `i - 1`.
    pub const FUZZY: u8 = 0x83;
}

/// The longest xname accepted after an index.
pub const MAX_XNAME: usize = 4096;

/// What follows a file index from protocol 29 on (upstream's
/// `read_ndx_and_attrs` / `write_ndx_and_attrs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemAttrs {
    /// The item flags.
    pub iflags: u16,
    /// The basis type, when `BASIS_TYPE_FOLLOWS` is set.
    pub basis: Option<u8>,
    /// The name that goes with it (a fuzzy basis, a link target), when
    /// `XNAME_FOLLOWS` is set.
    pub xname: Option<Vec<u8>>,
}

impl ItemAttrs {
    /// Read the attributes after an index. Below protocol 29 nothing
    /// follows and the item is a plain transfer.
    pub fn read(r: &mut impl Read, protocol: u32) -> io::Result<ItemAttrs> {
        if protocol < 29 {
            return Ok(ItemAttrs {
                iflags: TRANSFER,
                basis: None,
                xname: None,
            });
        }
        let mut b = [0u8; 2];
        r.read_exact(&mut b)?;
        let iflags = u16::from_le_bytes(b);
        let mut basis = None;
        if iflags & BASIS_TYPE_FOLLOWS != 0 {
            let mut t = [0u8; 1];
            r.read_exact(&mut t)?;
            basis = Some(t[0]);
        }
        let mut xname = None;
        if iflags & XNAME_FOLLOWS != 0 {
            xname = Some(read_vstring(r, MAX_XNAME)?);
        }
        Ok(ItemAttrs { iflags, basis, xname })
    }
}

/// Write an index and, from protocol 29 on, its item flags, basis type and
/// xname (each only when given; the flags must announce them).
pub fn write_ndx_and_attrs(
    w: &mut impl Write,
    codec: &mut NdxCodec,
    ndx: i32,
    iflags: u16,
    basis: Option<u8>,
    xname: Option<&[u8]>,
    protocol: u32,
) -> io::Result<()> {
    codec.write(w, ndx)?;
    if protocol < 29 {
        return Ok(());
    }
    w.write_all(&iflags.to_le_bytes())?;
    if let Some(b) = basis {
        w.write_all(&[b])?;
    }
    if let Some(x) = xname {
        write_vstring(w, x)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_round_trip_at_every_protocol() {
        for protocol in [27, 28, 29, 30, 31, 32] {
            let mut out = Vec::new();
            let iflags = TRANSFER | BASIS_TYPE_FOLLOWS | XNAME_FOLLOWS;
            write_ndx_and_attrs(
                &mut out,
                &mut NdxCodec::new(protocol),
                7,
                iflags,
                Some(basis::FUZZY),
                Some(b"near"),
                protocol,
            )
            .unwrap();
            let mut input = &out[..];
            assert_eq!(NdxCodec::new(protocol).read(&mut input).unwrap(), 7);
            let attrs = ItemAttrs::read(&mut input, protocol).unwrap();
            if protocol < 29 {
                assert_eq!(
                    attrs,
                    ItemAttrs {
                        iflags: TRANSFER,
                        basis: None,
                        xname: None
                    }
                );
            } else {
                assert_eq!(
                    attrs,
                    ItemAttrs {
                        iflags,
                        basis: Some(basis::FUZZY),
                        xname: Some(b"near".to_vec())
                    }
                );
            }
            assert!(input.is_empty(), "protocol {protocol}: every byte read");
        }
    }

    #[test]
    fn an_oversized_xname_is_refused() {
        let mut out = Vec::new();
        out.extend_from_slice(&(TRANSFER | XNAME_FOLLOWS).to_le_bytes());
        write_vstring(&mut out, &vec![b'x'; MAX_XNAME + 1]).unwrap();
        assert!(ItemAttrs::read(&mut &out[..], 31).is_err());
    }
}
