//! Byte accounting on the input side (upstream's `total_read`): every
//! byte read from the peer, frame headers included, for the stats a
//! session reports.

use std::io::{self, Read};

/// A reader that counts what passes through it.
pub struct Counted<R> {
    inner: R,
    /// Bytes read so far.
    pub count: u64,
}

impl<R> Counted<R> {
    /// Count what is read from `inner`, from zero.
    pub fn new(inner: R) -> Self {
        Counted { inner, count: 0 }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_byte_read() {
        let mut r = Counted::new(&b"hello world"[..]);
        let mut buf = [0u8; 5];
        r.read_exact(&mut buf).unwrap();
        r.read_exact(&mut buf[..3]).unwrap();
        assert_eq!(r.count, 8);
    }
}
