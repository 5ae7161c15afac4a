//! Protocol-switched primitives the file list uses on top of
//! `oxrsyncd_protocol::wire`: int below 30 / varint from 30 ("varint30"),
//! longint below 30 / varlong from 30 ("varlong30"), plus single bytes and
//! 16-bit shorts. Writers append to a `Vec<u8>`, which cannot fail.

use std::io::Read;

use crate::transfer::flist::error::FlistError;
use oxrsyncd_protocol::wire::{encode_varint, encode_varlong, read_int, read_longint, read_varint, read_varlong};

/// Append a little-endian int32.
pub(crate) fn put_int(out: &mut Vec<u8>, x: i32) {
    out.extend_from_slice(&x.to_le_bytes());
}
/// Append a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, x: i32) {
    out.extend_from_slice(&encode_varint(x));
}
/// int32 below protocol 30, varint from 30 (upstream write_varint30).
pub(crate) fn put_varint30(out: &mut Vec<u8>, protocol: u32, x: i32) {
    if protocol < 30 {
        put_int(out, x)
    } else {
        put_varint(out, x)
    }
}
/// Upstream's longint: int32, or -1 followed by the 64-bit value.
pub(crate) fn put_longint(out: &mut Vec<u8>, x: i64) {
    if (0..=0x7FFF_FFFF).contains(&x) {
        put_int(out, x as i32);
    } else {
        out.extend_from_slice(&[0xFF; 4]);
        out.extend_from_slice(&x.to_le_bytes());
    }
}
/// longint below protocol 30, varlong from 30 (upstream write_varlong30).
pub(crate) fn put_varlong30(out: &mut Vec<u8>, protocol: u32, x: i64, min_bytes: usize) {
    if protocol < 30 {
        put_longint(out, x)
    } else {
        out.extend_from_slice(&encode_varlong(x, min_bytes))
    }
}
/// Append a little-endian u16 (the 2-byte flag form).
pub(crate) fn put_shortint(out: &mut Vec<u8>, x: u16) {
    out.extend_from_slice(&x.to_le_bytes());
}

/// Read one byte.
pub(crate) fn get_byte(r: &mut impl Read, ctx: &'static str) -> Result<u8, FlistError> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).map_err(FlistError::io(ctx))?;
    Ok(b[0])
}
/// Read an int32.
pub(crate) fn get_int(r: &mut impl Read, ctx: &'static str) -> Result<i32, FlistError> {
    read_int(r).map_err(FlistError::io(ctx))
}
/// Read a varint.
pub(crate) fn get_varint(r: &mut impl Read, ctx: &'static str) -> Result<i32, FlistError> {
    read_varint(r).map_err(FlistError::io(ctx))
}
/// Read an int32 (< 30) or varint (>= 30).
pub(crate) fn get_varint30(r: &mut impl Read, protocol: u32, ctx: &'static str) -> Result<i32, FlistError> {
    if protocol < 30 {
        get_int(r, ctx)
    } else {
        get_varint(r, ctx)
    }
}
/// Read a longint.
pub(crate) fn get_longint(r: &mut impl Read, ctx: &'static str) -> Result<i64, FlistError> {
    read_longint(r).map_err(FlistError::io(ctx))
}
/// Read a longint (< 30) or varlong (>= 30).
pub(crate) fn get_varlong30(r: &mut impl Read, protocol: u32, min_bytes: usize, ctx: &'static str) -> Result<i64, FlistError> {
    if protocol < 30 {
        get_longint(r, ctx)
    } else {
        read_varlong(r, min_bytes).map_err(FlistError::io(ctx))
    }
}
/// Read exactly n bytes (callers bound n first).
pub(crate) fn get_bytes(r: &mut impl Read, n: usize, ctx: &'static str) -> Result<Vec<u8>, FlistError> {
    let mut v = vec![0u8; n];
    r.read_exact(&mut v).map_err(FlistError::io(ctx))?;
    Ok(v)
}
