//! `proxy protocol = yes`: the HAProxy PROXY header (v1 text or v2 binary)
//! a load balancer puts before the client's bytes, so the daemon sees, logs
//! and checks `hosts allow` against the real client address. Read as
//! upstream's `read_proxy_protocol_header` reads it, before the greeting,
//! and only from a peer in `proxy protocol hosts` (none listed: every
//! connection is refused, as upstream fails closed).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::handshake::host_access::{allow_access, HostAcl, PeerName};

/// The v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family, length.
const V2_HEADER: usize = 16;
/// Upstream's header buffer: the longest v1 line (with its CRLF) and the
/// most a v2 header may carry.
const V1_MAX_LINE: usize = 107;
const V2_MAX: usize = 16 + 216;

/// What the bytes read so far say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Not enough yet: read this many more bytes (at least one).
    NeedMore(usize),
    /// A valid header of `len` bytes; `source` is the client's address,
    /// None when the header carries none (v1 `UNKNOWN`, v2 `LOCAL` or an
    /// unsupported family), so the socket's peer stands.
    Header { len: usize, source: Option<IpAddr> },
    /// Not a valid header: the connection is dropped.
    Invalid,
}

/// Parse the start of a connection.
pub fn parse(buf: &[u8]) -> Parsed {
    if buf.len() < V2_SIGNATURE.len() {
        return Parsed::NeedMore(V2_SIGNATURE.len() - buf.len());
    }
    if buf.starts_with(V2_SIGNATURE) {
        return parse_v2(buf);
    }
    if buf.starts_with(b"PROXY") {
        return parse_v1(buf);
    }
    Parsed::Invalid
}

fn parse_v2(buf: &[u8]) -> Parsed {
    if buf.len() < V2_HEADER {
        return Parsed::NeedMore(V2_HEADER - buf.len());
    }
    let (version, command, family) = (buf[12] >> 4, buf[12] & 0x0f, buf[13]);
    let size = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if version != 2 || V2_HEADER + size > V2_MAX {
        return Parsed::Invalid;
    }
    if buf.len() < V2_HEADER + size {
        return Parsed::NeedMore(V2_HEADER + size - buf.len());
    }
    let addr = &buf[V2_HEADER..V2_HEADER + size];
    let len = V2_HEADER + size;
    match command {
        // LOCAL: a health check from the proxy itself.
        0 => Parsed::Header { len, source: None },
        1 => match family {
            0x11 if size == 12 => Parsed::Header {
                len,
                source: Some(IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))),
            },
            0x21 if size == 36 => {
                let octets: [u8; 16] = addr[..16].try_into().unwrap_or([0; 16]);
                Parsed::Header {
                    len,
                    source: Some(IpAddr::V6(Ipv6Addr::from(octets))),
                }
            }
            0x11 | 0x21 => Parsed::Invalid,
            // Another family: ignore the proxy data, keep the socket peer.
            _ => Parsed::Header { len, source: None },
        },
        _ => Parsed::Invalid,
    }
}

fn parse_v1(buf: &[u8]) -> Parsed {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX_LINE {
            Parsed::Invalid
        } else {
            Parsed::NeedMore(1)
        };
    };
    let len = newline + 1;
    let Some(line) = buf[..len].strip_suffix(b"\r\n") else {
        return Parsed::Invalid;
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return Parsed::Invalid;
    };
    let Some(rest) = line.strip_prefix("PROXY ") else {
        return Parsed::Invalid;
    };
    if rest.starts_with("UNKNOWN") {
        return Parsed::Header { len, source: None };
    }
    let fields: Vec<&str> = rest.split(' ').collect();
    let [family, source, dest, source_port, dest_port] = fields[..] else {
        return Parsed::Invalid;
    };
    let address = |text: &str| -> Option<IpAddr> {
        match family {
            "TCP4" => text.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            "TCP6" => text.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            _ => None,
        }
    };
    let port = |text: &str| text.parse::<u16>().ok().filter(|&p| p != 0);
    match (address(source), address(dest), port(source_port), port(dest_port)) {
        (Some(source), Some(_), Some(_), Some(_)) => Parsed::Header { len, source: Some(source) },
        _ => Parsed::Invalid,
    }
}

/// Read a header from a blocking stream, byte-exact (what follows it stays
/// unread): the client's address, the socket's `peer` when the header has
/// none, or None when the header is invalid.
pub fn read_blocking(r: &mut impl std::io::Read, peer: IpAddr) -> std::io::Result<Option<IpAddr>> {
    read_with(|out| r.read_exact(out), peer)
}

/// [`read_blocking`] with the reads done by `read_exact` (which fills the
/// slice it is given, e.g. under the handshake's deadline).
pub(crate) fn read_with(mut read_exact: impl FnMut(&mut [u8]) -> std::io::Result<()>, peer: IpAddr) -> std::io::Result<Option<IpAddr>> {
    let mut buf = Vec::new();
    loop {
        match parse(&buf) {
            Parsed::NeedMore(n) => {
                let start = buf.len();
                buf.resize(start + n, 0);
                read_exact(&mut buf[start..])?;
            }
            Parsed::Header { source, .. } => return Ok(Some(source.unwrap_or(peer))),
            Parsed::Invalid => return Ok(None),
        }
    }
}

/// [`read_blocking`] for the async accept loop.
#[cfg(feature = "async")]
pub(crate) async fn read_async(r: &mut (impl tokio::io::AsyncRead + Unpin), peer: IpAddr) -> std::io::Result<Option<IpAddr>> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    loop {
        match parse(&buf) {
            Parsed::NeedMore(n) => {
                let start = buf.len();
                buf.resize(start + n, 0);
                r.read_exact(&mut buf[start..]).await?;
            }
            Parsed::Header { source, .. } => return Ok(Some(source.unwrap_or(peer))),
            Parsed::Invalid => return Ok(None),
        }
    }
}

/// Whether the socket's peer is a proxy we take headers from (`proxy
/// protocol hosts`, matched as a `hosts allow` list; none: nobody).
pub fn trusted(hosts: Option<&str>, peer: IpAddr) -> bool {
    let Some(hosts) = hosts.filter(|h| !h.trim().is_empty()) else {
        return false;
    };
    let allow = [hosts.to_string()];
    let acl = HostAcl {
        allow: &allow,
        deny: &[],
        forward_lookup: false,
    };
    allow_access(&acl, peer, &mut PeerName::new(peer, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, addr: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(addr.len() as u16).to_be_bytes());
        h.extend_from_slice(addr);
        h
    }

    #[test]
    fn v1_lines_as_upstream_reads_them() {
        let ok = b"PROXY TCP4 10.1.2.3 127.0.0.1 40000 873\r\n@RSYNCD: 30.0\n";
        assert_eq!(
            parse(ok),
            Parsed::Header {
                len: 41,
                source: Some("10.1.2.3".parse().unwrap())
            }
        );
        assert_eq!(
            parse(b"PROXY TCP6 fd00::1234 ::1 40000 873\r\n"),
            Parsed::Header {
                len: 37,
                source: Some("fd00::1234".parse().unwrap())
            }
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Parsed::Header { len: 15, source: None });
        assert_eq!(parse(b"PROXY TCP4 10.1.2"), Parsed::NeedMore(1));
        for bad in [
            &b"PROXY TCP4 10.1.2.3\r\n"[..],
            b"PROXY TCP9 10.1.2.3 127.0.0.1 40000 873\r\n",
            b"PROXY TCP4 10.1.2.3 127.0.0.1 abc 873\r\n",
            b"PROXY TCP4 10.1.2.3 127.0.0.1 0 873\r\n",
            b"PROXY TCP4 10.1.2.3 127.0.0.1 40000 873\n",
            b"GET / HTTP/1.0\r\n\r\n",
        ] {
            assert_eq!(parse(bad), Parsed::Invalid, "{:?}", String::from_utf8_lossy(bad));
        }
        let long = [b"PROXY TCP4 ".to_vec(), vec![b'1'; 200]].concat();
        assert_eq!(parse(&long), Parsed::Invalid, "no newline within upstream's buffer");
    }

    #[test]
    fn v2_headers_as_upstream_reads_them() {
        let four = v2(1, 0x11, &[10, 1, 2, 3, 127, 0, 0, 1, 0x9c, 0x40, 0x03, 0x69]);
        assert_eq!(
            parse(&four),
            Parsed::Header {
                len: 28,
                source: Some("10.1.2.3".parse().unwrap())
            }
        );
        assert_eq!(parse(&four[..20]), Parsed::NeedMore(8));
        assert_eq!(parse(&v2(0, 0, &[])), Parsed::Header { len: 16, source: None }, "LOCAL");
        assert_eq!(
            parse(&v2(1, 0x31, &[0; 216])),
            Parsed::Header { len: 232, source: None },
            "a Unix socket: ignored"
        );
        assert_eq!(parse(&v2(1, 0x11, &[0; 4])), Parsed::Invalid, "short TCPv4 block");
        assert_eq!(parse(&v2(2, 0x11, &[0; 12])), Parsed::Invalid, "unknown command");
        let mut v3 = four.clone();
        v3[12] = 0x31;
        assert_eq!(parse(&v3), Parsed::Invalid, "version 3");
    }

    #[test]
    fn only_listed_proxies_are_trusted() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(trusted(Some("127.0.0.0/8"), lo));
        assert!(!trusted(Some("10.0.0.0/8"), lo));
        assert!(!trusted(None, lo), "no list: nobody (fail closed)");
    }
}
