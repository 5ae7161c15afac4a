//! Connections counted by client address, across every worker: the state
//! behind `max sessions per host`, `max handshakes per host` and a module's
//! `max connections per host`.
//!
//! An open-addressing table of 64-bit words, each a 40-bit key tag and a
//! 24-bit count, changed only by compare-and-swap, so no lock is shared
//! between processes. A key's count is the sum of the entries with its tag
//! in its probe window (two workers that miss at once may each start an
//! entry). An entry whose count is zero may be taken by any key; one with
//! a count is never re-keyed, so a connection can always give back the
//! exact entry it took. Tags are a keyed hash (the supervisor's random
//! seed), so a client cannot pick addresses that share a tag. A full probe
//! window counts nothing and refuses nothing (fails open).
//!
//! IPv4 clients count by address, IPv6 clients by their /64 (one host's
//! usual allocation, so a client cannot step around a limit by changing
//! the low bits).

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use super::{Scoreboard, HOST_ENTRIES};

const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// Entries looked at for one key.
const PROBES: usize = 64;

/// What a count is kept for, and for whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostKey {
    /// The 40-bit tag stored in the entry (never 0).
    tag: u64,
    /// Where the key's probe window starts.
    start: usize,
}

/// A limit was reached: the connection was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{limit} connections from this client already")]
pub struct HostLimitExceeded {
    pub limit: u32,
}

/// The part of an address that identifies a client host.
fn host_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets()[..8].to_vec(),
        },
    }
}

impl Scoreboard {
    fn key(&self, kind: u8, scope: &[u8], ip: IpAddr) -> HostKey {
        let seed = self.header().host_seed.load(Ordering::Acquire);
        let mut bytes = vec![kind];
        bytes.extend_from_slice(&(scope.len() as u32).to_le_bytes());
        bytes.extend_from_slice(scope);
        bytes.extend_from_slice(&host_bytes(ip));
        let h = xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, seed);
        HostKey {
            tag: (h >> COUNT_BITS) | 1,
            start: (h as usize) % HOST_ENTRIES,
        }
    }

    /// The key of every connection from `ip`.
    pub fn connections_key(&self, ip: IpAddr) -> HostKey {
        self.key(0, b"", ip)
    }

    /// The key of unfinished handshakes from `ip`.
    pub fn handshakes_key(&self, ip: IpAddr) -> HostKey {
        self.key(1, b"", ip)
    }

    /// The key of `module`'s sessions from `ip`.
    pub fn module_key(&self, module: &str, ip: IpAddr) -> HostKey {
        self.key(2, module.as_bytes(), ip)
    }

    fn window(&self, key: HostKey) -> impl Iterator<Item = usize> {
        (0..PROBES).map(move |i| (key.start + i) % HOST_ENTRIES)
    }

    /// What `key` counts now.
    pub fn host_count(&self, key: HostKey) -> u64 {
        self.window(key)
            .map(|i| self.host_entry(i).load(Ordering::Acquire))
            .filter(|w| w >> COUNT_BITS == key.tag)
            .map(|w| w & COUNT_MASK)
            .sum()
    }

    /// Count one more connection for `key`, unless that makes more than
    /// `limit` (0: no limit). Returns the entry to give back later, or
    /// `None` when the table had no room (nothing counted, nothing refused).
    pub fn host_claim(&self, key: HostKey, limit: u32) -> Result<Option<usize>, HostLimitExceeded> {
        let Some(entry) = self.host_increment(key) else {
            return Ok(None);
        };
        if limit != 0 && self.host_count(key) > u64::from(limit) {
            self.host_release(entry);
            return Err(HostLimitExceeded { limit });
        }
        Ok(Some(entry))
    }

    fn host_increment(&self, key: HostKey) -> Option<usize> {
        // An entry already counting this key...
        for i in self.window(key) {
            let e = self.host_entry(i);
            let mut w = e.load(Ordering::Acquire);
            while w >> COUNT_BITS == key.tag && w & COUNT_MASK != 0 && w & COUNT_MASK < COUNT_MASK {
                match e.compare_exchange_weak(w, w + 1, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return Some(i),
                    Err(now) => w = now,
                }
            }
        }
        // ...or a free one.
        for i in self.window(key) {
            let e = self.host_entry(i);
            let mut w = e.load(Ordering::Acquire);
            while w & COUNT_MASK == 0 {
                match e.compare_exchange_weak(w, (key.tag << COUNT_BITS) | 1, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return Some(i),
                    Err(now) => w = now,
                }
            }
        }
        None
    }

    /// Give back one count of `entry` (from [`Scoreboard::host_claim`]).
    pub fn host_release(&self, entry: usize) {
        let _ = self
            .host_entry(entry)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| (w & COUNT_MASK != 0).then(|| w - 1));
    }
}
