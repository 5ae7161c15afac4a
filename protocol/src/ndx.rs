//! File indexes on the wire (upstream's `write_ndx`/`read_ndx`): plain
//! int32 below protocol 30, a delta encoding against the previous index
//! from protocol 30 on, with `NDX_DONE` as a single zero byte.

use std::io::{self, Read, Write};

use crate::wire::{read_int, write_int};

/// End of a phase (or of the run).
pub const NDX_DONE: i32 = -1;
/// End of the incremental file lists (sent once every directory's list is out).
pub const NDX_FLIST_EOF: i32 = -2;
/// Deletion counts follow (five varints), from a generator at protocol 30
/// on.
pub const NDX_DEL_STATS: i32 = -3;
/// `NDX_FLIST_OFFSET - dir_ndx` announces the list of a directory's
/// contents (incremental recursion).
pub const NDX_FLIST_OFFSET: i32 = -101;

/// One direction's delta state.
#[derive(Debug, Clone)]
pub struct NdxCodec {
    protocol: u32,
    prev_positive: i32,
    prev_negative: i32,
}

impl NdxCodec {
    pub fn new(protocol: u32) -> Self {
        NdxCodec {
            protocol,
            prev_positive: -1,
            prev_negative: 1,
        }
    }

    /// Encode `ndx`.
    pub fn encode(&mut self, ndx: i32) -> Vec<u8> {
        if self.protocol < 30 {
            return ndx.to_le_bytes().to_vec();
        }
        if ndx == NDX_DONE {
            return vec![0];
        }
        let mut b = Vec::with_capacity(6);
        let (value, diff) = if ndx >= 0 {
            let diff = ndx.wrapping_sub(self.prev_positive);
            self.prev_positive = ndx;
            (ndx, diff)
        } else {
            b.push(0xFF);
            let v = ndx.wrapping_neg();
            let diff = v.wrapping_sub(self.prev_negative);
            self.prev_negative = v;
            (v, diff)
        };
        if diff > 0 && diff < 0xFE {
            b.push(diff as u8);
        } else if !(0..=0x7FFF).contains(&diff) {
            b.push(0xFE);
            b.push(((value >> 24) as u8) | 0x80);
            b.push(value as u8);
            b.push((value >> 8) as u8);
            b.push((value >> 16) as u8);
        } else {
            b.push(0xFE);
            b.push((diff >> 8) as u8);
            b.push(diff as u8);
        }
        b
    }

    /// Write `ndx`.
    pub fn write(&mut self, w: &mut impl Write, ndx: i32) -> io::Result<()> {
        if self.protocol < 30 {
            return write_int(w, ndx);
        }
        w.write_all(&self.encode(ndx))
    }

    /// Read an index.
    pub fn read(&mut self, r: &mut impl Read) -> io::Result<i32> {
        if self.protocol < 30 {
            return read_int(r);
        }
        let mut b = [0u8; 4];
        r.read_exact(&mut b[..1])?;
        let negative = b[0] == 0xFF;
        if negative {
            r.read_exact(&mut b[..1])?;
        } else if b[0] == 0 {
            return Ok(NDX_DONE);
        }
        let prev = if negative { self.prev_negative } else { self.prev_positive };
        let num = if b[0] == 0xFE {
            r.read_exact(&mut b[..2])?;
            if b[0] & 0x80 != 0 {
                let hi = b[0] & 0x7F;
                let lo0 = b[1];
                r.read_exact(&mut b[..2])?;
                i32::from_le_bytes([lo0, b[0], b[1], hi])
            } else {
                ((i32::from(b[0])) << 8 | i32::from(b[1])).wrapping_add(prev)
            }
        } else {
            i32::from(b[0]).wrapping_add(prev)
        };
        if negative {
            self.prev_negative = num;
            Ok(num.wrapping_neg())
        } else {
            self.prev_positive = num;
            Ok(num)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_encoding_matches_upstream() {
        let mut w = NdxCodec::new(30);
        assert_eq!(w.encode(0), [1]); // 0 - (-1)
        assert_eq!(w.encode(1), [1]);
        assert_eq!(w.encode(300), [0xFE, 0x01, 0x2B]); // diff 299
        assert_eq!(w.encode(NDX_DONE), [0]);
        assert_eq!(w.encode(100_000), [0xFE, 0x80, 0xA0, 0x86, 0x01]);
        assert_eq!(w.encode(NDX_FLIST_EOF), [0xFF, 1]); // -(-2) - 1
    }

    #[test]
    fn round_trips_every_form() {
        let seq = [0, 1, 2, 5, 300, 299, NDX_DONE, 100_000, 3, NDX_FLIST_EOF, -101, 7, NDX_DONE, 40_000];
        for protocol in [29, 30, 32] {
            let (mut w, mut r) = (NdxCodec::new(protocol), NdxCodec::new(protocol));
            let mut buf = Vec::new();
            for &n in &seq {
                w.write(&mut buf, n).unwrap();
            }
            let mut cur = &buf[..];
            for &n in &seq {
                assert_eq!(r.read(&mut cur).unwrap(), n, "protocol {protocol}");
            }
        }
    }
}
