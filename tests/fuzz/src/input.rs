//! A tiny reader over the fuzz input for the parameters a target derives
//! from its first bytes (protocol, options, sizes): past the end it yields
//! zeros, so every input is usable. Also what the handshake driver's
//! reader needs to read from memory.

use std::time::{Duration, Instant};

use oxrsyncd_worker::fuzzing::handshake::{Clock, ReadTimeout};

pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn i32(&mut self) -> i32 {
        i32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// One of `items` (not empty), picked by the next byte.
    pub fn choose<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::from(self.byte()) % items.len()]
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A chunk whose length is given by the next two bytes.
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.take(n)
    }

    /// Everything not taken yet.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// The protocol (27 to 32) the low three bits of a byte select (the
/// other bits are left for flags).
pub fn protocol(b: u8) -> u32 {
    27 + u32::from(b & 7) % 6
}

/// The handshake driver's reader over the input: no socket to bound, a
/// deadline that does not come.
pub struct NoSocket;

impl ReadTimeout for NoSocket {
    fn set_read_timeout(&self, _timeout: Option<Duration>) -> std::io::Result<()> {
        Ok(())
    }
}

/// A clock that never runs out during one input.
pub fn no_deadline() -> Clock {
    Clock {
        deadline: Instant::now() + Duration::from_secs(3600),
        idle: None,
    }
}
