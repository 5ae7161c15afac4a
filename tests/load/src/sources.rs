//! Spreading connections over several 127.0.0.x source addresses, so the
//! ephemeral ports of one address never run out and the daemon sees many
//! peers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Round-robin over `count` loopback source addresses (127.0.0.1 ..).
#[derive(Debug, Clone)]
pub struct Sources {
    count: u8,
    next: u32,
}

impl Sources {
    /// `count` addresses, at least one, at most 250; an IPv6 target gets
    /// the one loopback address.
    pub fn new(count: u8) -> Self {
        Sources {
            count: count.clamp(1, 250),
            next: 0,
        }
    }

    /// The local address for the next connection to `target`.
    pub fn next_for(&mut self, target: SocketAddr) -> SocketAddr {
        let ip = match target.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (self.next % u32::from(self.count)) as u8)),
            v6 => v6,
        };
        self.next = self.next.wrapping_add(1);
        SocketAddr::new(ip, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_through_loopback_addresses() {
        let mut s = Sources::new(3);
        let t: SocketAddr = "127.0.0.1:873".parse().unwrap();
        let ips: Vec<String> = (0..4).map(|_| s.next_for(t).ip().to_string()).collect();
        assert_eq!(ips, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"]);
        let v6: SocketAddr = "[::1]:873".parse().unwrap();
        assert_eq!(s.next_for(v6).ip().to_string(), "::1");
    }
}
