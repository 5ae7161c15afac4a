//! `hosts allow` / `hosts deny`: whether a connecting peer may use a module.
//!
//! This module owns the peer-address and peer-name matching of rsync's
//! daemon: exact addresses, `addr/bits` and `addr/mask` networks (IPv4 and
//! IPv6), case-insensitive hostname wildcards against the reverse-resolved
//! (forward-confirmed) peer name, and forward lookups of plain configured
//! hostnames.  Addresses in tokens are parsed by the C library exactly as
//! upstream does, so legacy forms like `127.1` mean what they mean there.
//! A hostname token written in Unicode is folded to its IDNA form first
//! (see [`crate::handshake::idn_token`]).
//!
//! DNS failures never open a module its configuration closes:
//! - a deny-list hostname that cannot be resolved counts as a match (deny);
//! - when the peer's own name is unknown (reverse lookup on, but it failed,
//!   was not forward-confirmed, timed out or found the lookup pool full:
//!   the name is "UNKNOWN"), every host-name token of `hosts deny` (a
//!   wildcard pattern or a plain name; not an address or network) matches,
//!   as upstream 3.5 does since CVE-2026-70452. In `hosts allow` such a
//!   token does not match. With `reverse lookup = no` the name is
//!   "UNDETERMINED" by the admin's choice and name tokens simply do not
//!   match, in either list.
//!
//! Every lookup (reverse, its forward confirmation, forward lookups of
//! configured names) runs on [`crate::handshake::name_pool`], bounded in
//! threads, queue and time.

use std::net::{IpAddr, SocketAddr};

use dns_lookup::{getaddrinfo, getnameinfo, AddrInfoHints};
use nix::libc;

use crate::handshake::name_pool::{self, NamePool};
use crate::wildmatch::iwildmatch;

/// The name used when reverse lookup fails or is not forward-confirmed; it
/// may itself be written in `hosts allow`/`hosts deny`.
pub(crate) const UNKNOWN_HOST: &str = "UNKNOWN";

/// The name used when reverse lookups are disabled.
pub(crate) const UNDETERMINED_HOST: &str = "UNDETERMINED";

/// Longest host name upstream's 100-byte name buffer can hold.
const MAX_HOST_NAME_LEN: usize = 99;

/// A module's host access lists.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostAcl<'a> {
    /// `hosts allow` entries (each may hold several comma/space separated tokens).
    pub allow: &'a [String],
    /// `hosts deny` entries.
    pub deny: &'a [String],
    /// `forward lookup`: resolve plain hostnames in the lists and compare
    /// their addresses with the peer's.
    pub forward_lookup: bool,
}

/// The peer's host name, resolved lazily so one session does at most one
/// reverse lookup, and only when a pattern actually needs a name.
#[derive(Debug, Clone)]
pub(crate) struct PeerName {
    addr: IpAddr,
    reverse_lookup: bool,
    name: Option<String>,
    /// The reverse lookup itself (forward-confirmed), replaceable in tests.
    resolve: fn(IpAddr) -> String,
    /// Where lookups run, bounded in threads, queue and time.
    pool: &'static NamePool,
}

impl PeerName {
    /// A peer at `addr` (an IPv4-mapped IPv6 address is treated as the IPv4
    /// address, as upstream does).  Without `reverse_lookup` the name is
    /// [`UNDETERMINED_HOST`] until a forward lookup of a configured hostname
    /// proves who the peer is.
    pub(crate) fn new(addr: IpAddr, reverse_lookup: bool) -> Self {
        PeerName {
            addr: canonical_peer_addr(addr),
            reverse_lookup,
            name: None,
            resolve: confirmed_reverse_name,
            pool: name_pool::global(),
        }
    }

    /// The peer's address, IPv4-mapped addresses unmapped.
    #[cfg(test)]
    pub(crate) fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The peer's name: the forward-confirmed reverse-DNS name,
    /// [`UNKNOWN_HOST`] if that fails, or [`UNDETERMINED_HOST`] (or a
    /// forward-matched configured hostname) when reverse lookups are off.
    /// Resolved on first use only.
    /// The lookup runs on the name pool: when it is full or the answer is
    /// late the name is [`UNKNOWN_HOST`].
    pub(crate) fn name(&mut self) -> Option<&str> {
        if self.name.is_none() {
            self.name = Some(if self.reverse_lookup {
                let (addr, resolve) = (self.addr, self.resolve);
                self.pool.run(move || resolve(addr)).unwrap_or_else(|e| {
                    tracing::info!("reverse lookup of {}: {}", addr, e);
                    UNKNOWN_HOST.to_owned()
                })
            } else {
                UNDETERMINED_HOST.to_owned()
            });
        }
        self.name.as_deref()
    }

    /// Whether a reverse lookup was made and gave no (confirmed) name.
    fn is_unknown(&self) -> bool {
        self.reverse_lookup && self.name.as_deref() == Some(UNKNOWN_HOST)
    }

    /// Whether no name has been determined because reverse lookups are off.
    fn is_undetermined(&self) -> bool {
        !self.reverse_lookup && self.name.as_deref() == Some(UNDETERMINED_HOST)
    }

    /// Use a configured hostname whose forward lookup matched the peer in
    /// place of "UNDETERMINED", as upstream does for its logs.
    fn adopt_forward_matched(&mut self, configured: &str) {
        if self.is_undetermined() {
            self.name = Some(configured.to_owned());
        }
    }
}

/// Treat an IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`) as plain IPv4.
fn canonical_peer_addr(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// Whether the peer at `addr` may use the module.
///
/// Upstream's order: a `hosts allow` match always admits; with an allow list
/// and no deny list everyone else is refused; a `hosts deny` match refuses;
/// anyone else is admitted.
pub(crate) fn allow_access(acl: &HostAcl, addr: IpAddr, peer: &mut PeerName) -> bool {
    let addr = canonical_peer_addr(addr);
    let has_allow = list_configured(acl.allow);
    let has_deny = list_configured(acl.deny);
    if has_allow {
        if list_matches(acl.allow, ListKind::Allow, acl.forward_lookup, addr, peer) {
            return true;
        }
        if !has_deny {
            return false;
        }
    }
    if has_deny && list_matches(acl.deny, ListKind::Deny, acl.forward_lookup, addr, peer) {
        return false;
    }
    true
}

/// Which list a token came from: an unresolvable hostname matches in a
/// deny list (fail closed) and does not in an allow list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Allow,
    Deny,
}

/// A list counts as set when any entry is non-empty, like a non-empty
/// config value upstream.
fn list_configured(entries: &[String]) -> bool {
    entries.iter().any(|entry| !entry.is_empty())
}

/// The list's tokens, lower-cased, split on commas, spaces and tabs.
fn tokens(entries: &[String]) -> impl Iterator<Item = String> + '_ {
    entries.iter().flat_map(|entry| {
        entry
            .to_ascii_lowercase()
            .split([' ', ',', '\t'])
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    })
}

fn list_matches(entries: &[String], kind: ListKind, forward_lookup: bool, addr: IpAddr, peer: &mut PeerName) -> bool {
    tokens(entries).any(|token| token_matches(&token, kind, forward_lookup, addr, peer))
}

fn token_matches(token: &str, kind: ListKind, forward_lookup: bool, addr: IpAddr, peer: &mut PeerName) -> bool {
    // A token that parses as an address is settled by address matching: a
    // forward-confirmed peer name spelling that address would denote the
    // same address, so no name lookup is needed for it.
    if let Some(matched) = match_address(addr, token) {
        return matched;
    }
    match_hostname(token, kind, forward_lookup, addr, peer)
}

/// Hostname matching: wildcard against the peer's name, then (for a plain
/// hostname) a forward lookup of the token.
fn match_hostname(token: &str, kind: ListKind, forward_lookup: bool, addr: IpAddr, peer: &mut PeerName) -> bool {
    if !matches!(peer.name(), Some(name) if !name.is_empty()) {
        return false;
    }
    if kind == ListKind::Deny && peer.is_unknown() {
        // Who the peer is cannot be told: a name pattern that might name
        // it fails closed (CVE-2026-70452).
        return true;
    }
    let Some(name) = peer.name() else {
        return false;
    };
    if token.len() > 1 && token.starts_with('@') {
        // Netgroups cannot be queried here: a deny entry fails closed.
        return kind == ListKind::Deny;
    }
    let folded = crate::handshake::idn_token::fold(token);
    let token = folded.as_deref().unwrap_or(token);
    if iwildmatch(token, name) {
        return true;
    }
    if !forward_lookup || !is_plain_hostname(token) {
        return false;
    }
    let owned = token.to_owned();
    let forward = peer.pool.run(move || forward_ipv4_addrs(&owned)).unwrap_or_else(|e| {
        tracing::info!("forward lookup of {}: {}", token, e);
        None
    });
    match forward {
        None => kind == ListKind::Deny,
        Some(addrs) if addrs.contains(&addr) => {
            peer.adopt_forward_matched(token);
            true
        }
        Some(_) => false,
    }
}

/// A token worth a forward lookup: not all digits and dots, and free of
/// address/mask and wildcard characters.
fn is_plain_hostname(token: &str) -> bool {
    let all_numeric = token.bytes().all(|b| b == b'.' || b.is_ascii_digit());
    let has_special = token.bytes().any(|b| b":/*?[".contains(&b));
    !all_numeric && !has_special
}

/// IPv4 addresses of `host` (upstream uses gethostbyname, IPv4 only), or
/// `None` if it cannot be resolved.
fn forward_ipv4_addrs(host: &str) -> Option<Vec<IpAddr>> {
    let hints = AddrInfoHints {
        flags: 0,
        address: libc::AF_INET,
        socktype: libc::SOCK_STREAM,
        protocol: 0,
    };
    let results = getaddrinfo(Some(host), None, Some(hints)).ok()?;
    Some(results.filter_map(Result::ok).map(|info| info.sockaddr.ip()).collect())
}

/// Address matching of one token: `Some(matched)` if the token is an
/// address (optionally `/bits` or `/mask`), `None` if it is a hostname or
/// does not parse as an address.
fn match_address(addr: IpAddr, token: &str) -> Option<bool> {
    let (host_part, mask_part) = match token.split_once('/') {
        Some((host, mask)) => (host, Some(mask)),
        None => (token, None),
    };
    let looks_numeric = host_part.bytes().all(|b| b == b'.' || b.is_ascii_digit());
    if !looks_numeric && !host_part.contains(':') {
        return None;
    }
    let token_addr = parse_numeric_addr(host_part)?;
    Some(address_in_network(addr, token_addr, mask_part))
}

/// Parse an address the way upstream does (getaddrinfo with
/// AI_NUMERICHOST), keeping an IPv6 scope id.
fn parse_numeric_addr(text: &str) -> Option<SocketAddr> {
    let hints = AddrInfoHints {
        flags: libc::AI_NUMERICHOST,
        address: libc::AF_UNSPEC,
        socktype: libc::SOCK_STREAM,
        protocol: 0,
    };
    let mut results = getaddrinfo(Some(text), None, Some(hints)).ok()?;
    results.next()?.ok().map(|info| info.sockaddr)
}

fn address_in_network(addr: IpAddr, network: SocketAddr, mask_text: Option<&str>) -> bool {
    let (peer_bytes, network_bytes) = match (addr, network) {
        (IpAddr::V4(peer), SocketAddr::V4(net)) => (peer.octets().to_vec(), net.ip().octets().to_vec()),
        (IpAddr::V6(peer), SocketAddr::V6(net)) => {
            // Our peer carries no scope, so a scoped token cannot match it.
            if net.scope_id() != 0 {
                return false;
            }
            (peer.octets().to_vec(), net.ip().octets().to_vec())
        }
        _ => return false,
    };
    let mask = match mask_text {
        None => prefix_mask(peer_bytes.len() * 8, peer_bytes.len()),
        Some(text) => match parse_mask(text, addr) {
            Mask::Everything => return true,
            Mask::Malformed => return false,
            Mask::Bytes(mask) => mask,
        },
    };
    peer_bytes.iter().zip(&network_bytes).zip(&mask).all(|((p, n), m)| (p ^ n) & m == 0)
}

/// A parsed `/mask` suffix.
enum Mask {
    /// `/0`: every address of the family matches.
    Everything,
    Malformed,
    Bytes(Vec<u8>),
}

/// A mask in the peer's address family (`/255.255.0.0`, `/ffff::`) or a
/// prefix length (`/16`), which like upstream's strtol may carry a sign.
fn parse_mask(text: &str, addr: IpAddr) -> Mask {
    let len = match addr {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    };
    let as_address = match addr {
        IpAddr::V4(_) => text.parse::<std::net::Ipv4Addr>().ok().map(|m| m.octets().to_vec()),
        IpAddr::V6(_) => text.parse::<std::net::Ipv6Addr>().ok().map(|m| m.octets().to_vec()),
    };
    if let Some(mask) = as_address {
        return Mask::Bytes(mask);
    }
    match parse_prefix_len(text) {
        Some(0) => Mask::Everything,
        Some(bits) if bits > 0 && bits <= (len as i64) * 8 => Mask::Bytes(prefix_mask(bits as usize, len)),
        _ => Mask::Malformed,
    }
}

/// A decimal integer with optional sign, saturating like strtol; `None`
/// unless the whole text is such a number.
fn parse_prefix_len(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits
        .bytes()
        .fold(0i64, |acc, b| acc.saturating_mul(10).saturating_add(i64::from(b - b'0')));
    Some(if negative { -magnitude } else { magnitude })
}

/// A `len`-byte mask with the first `bits` bits set.
fn prefix_mask(bits: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let bits_here = bits.saturating_sub(i * 8).min(8);
            if bits_here == 0 {
                0
            } else {
                0xffu8 << (8 - bits_here)
            }
        })
        .collect()
}

/// Upstream's client name: reverse lookup requiring a name, then a forward
/// lookup that must return the peer's address; any failure gives
/// [`UNKNOWN_HOST`].
fn confirmed_reverse_name(addr: IpAddr) -> String {
    if addr == IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED) {
        return UNKNOWN_HOST.to_owned();
    }
    let flags = libc::NI_NAMEREQD | libc::NI_NUMERICSERV;
    let name = match getnameinfo(&SocketAddr::new(addr, 0), flags) {
        Ok((name, _service)) if name.len() <= MAX_HOST_NAME_LEN => name,
        _ => return UNKNOWN_HOST.to_owned(),
    };
    if name_resolves_to(&name, addr) {
        name
    } else {
        UNKNOWN_HOST.to_owned()
    }
}

/// Whether a forward lookup of `name` (in the peer's family) includes `addr`,
/// which guards against spoofed PTR records.
fn name_resolves_to(name: &str, addr: IpAddr) -> bool {
    let family = match addr {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    let hints = AddrInfoHints {
        flags: libc::AI_CANONNAME,
        address: family,
        socktype: libc::SOCK_STREAM,
        protocol: 0,
    };
    let Ok(results) = getaddrinfo(Some(name), None, Some(hints)) else {
        return false;
    };
    results.filter_map(Result::ok).any(|info| match info.sockaddr {
        SocketAddr::V4(found) => IpAddr::V4(*found.ip()) == addr,
        SocketAddr::V6(found) => IpAddr::V6(*found.ip()) == addr && found.scope_id() == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Access for `addr` with reverse lookups off (no DNS traffic).
    fn check(allow: &[&str], deny: &[&str], forward_lookup: bool, addr: &str) -> bool {
        let (allow, deny) = (list(allow), list(deny));
        let acl = HostAcl {
            allow: &allow,
            deny: &deny,
            forward_lookup,
        };
        let mut peer = PeerName::new(ip(addr), false);
        allow_access(&acl, ip(addr), &mut peer)
    }

    #[test]
    fn no_lists_admit_everyone() {
        assert!(check(&[], &[], true, "192.0.2.7"));
        assert!(check(&[""], &[""], true, "192.0.2.7"));
    }

    #[test]
    fn allow_only_rejects_the_rest() {
        assert!(check(&["127.0.0.1"], &[], false, "127.0.0.1"));
        assert!(!check(&["127.0.0.1"], &[], false, "127.0.0.2"));
        assert!(check(&["10.0.0.1, 127.0.0.1"], &[], false, "127.0.0.1"));
    }

    #[test]
    fn deny_only_admits_the_rest() {
        assert!(!check(&[], &["10.0.0.0/8"], false, "10.9.8.7"));
        assert!(check(&[], &["10.0.0.0/8"], false, "127.0.0.1"));
    }

    #[test]
    fn allow_match_beats_deny_and_unlisted_hosts_are_admitted() {
        let (allow, deny) = (["10.1.0.0/16"], ["10.0.0.0/8"]);
        assert!(check(&allow, &deny, false, "10.1.2.3"));
        assert!(!check(&allow, &deny, false, "10.2.0.1"));
        assert!(check(&allow, &deny, false, "192.0.2.1"));
    }

    #[test]
    fn ipv4_prefixes_and_masks() {
        assert!(check(&["192.168.4.0/22"], &[], false, "192.168.7.255"));
        assert!(!check(&["192.168.4.0/22"], &[], false, "192.168.8.0"));
        assert!(check(&["192.168.0.0/255.255.0.0"], &[], false, "192.168.99.1"));
        assert!(!check(&["192.168.0.0/255.255.0.0"], &[], false, "192.169.0.1"));
        assert!(check(&["0.0.0.0/0"], &[], false, "203.0.113.9"));
        assert!(check(&["1.2.3.4/+32"], &[], false, "1.2.3.4"));
        for malformed in ["10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/x", "10.0.0.0/"] {
            assert!(!check(&[malformed], &[], false, "10.0.0.1"), "{malformed}");
        }
    }

    #[test]
    fn legacy_numeric_forms_parse_like_libc() {
        assert!(check(&["127.1"], &[], false, "127.0.0.1"));
    }

    #[test]
    fn ipv6_exact_prefixes_and_masks() {
        assert!(check(&["2001:db8::1"], &[], false, "2001:db8::1"));
        assert!(!check(&["2001:db8::1"], &[], false, "2001:db8::2"));
        assert!(check(&["2001:db8::/32"], &[], false, "2001:db8:ffff::9"));
        assert!(!check(&["2001:db8::/32"], &[], false, "2001:db9::9"));
        assert!(check(&["2001:db8::/ffff:ffff::"], &[], false, "2001:db8:1::1"));
        assert!(!check(&["2001:db8::/129"], &[], false, "2001:db8::"));
        assert!(check(&["::/0"], &[], false, "fe80::1"));
        assert!(!check(&["::/0"], &[], false, "10.0.0.1"), "families never cross");
        assert!(!check(&["0.0.0.0/0"], &[], false, "2001:db8::1"));
    }

    #[test]
    fn mapped_ipv6_peer_is_matched_as_ipv4() {
        assert!(check(&["10.0.0.0/8"], &[], false, "::ffff:10.1.2.3"));
        assert!(!check(&[], &["10.0.0.0/8"], false, "::ffff:10.1.2.3"));
        assert!(!check(&["::ffff:10.1.2.3"], &[], false, "::ffff:10.1.2.3"));
        assert_eq!(PeerName::new(ip("::ffff:10.1.2.3"), false).addr(), ip("10.1.2.3"));
    }

    #[test]
    fn hostname_patterns_without_reverse_lookup_see_undetermined() {
        assert!(check(&[], &["*.example.com"], false, "192.0.2.1"));
        assert!(!check(&[], &["undetermined"], false, "192.0.2.1"));
        assert!(!check(&["*.example.com"], &[], false, "192.0.2.1"));
    }

    #[test]
    fn unresolvable_deny_hostname_fails_closed() {
        // `.invalid` never resolves (RFC 6761).
        assert!(!check(&[], &["nope.nonexistent.invalid"], true, "127.0.0.1"));
        assert!(!check(&[], &["NOPE.nonexistent.invalid"], true, "::1"));
        // In an allow list it is simply no match.
        assert!(!check(&["nope.nonexistent.invalid"], &[], true, "127.0.0.1"));
        assert!(check(&["nope.nonexistent.invalid"], &["10.0.0.0/8"], true, "127.0.0.1"));
        // With forward lookups off the token is only a name pattern.
        assert!(check(&[], &["nope.nonexistent.invalid"], false, "127.0.0.1"));
    }

    #[test]
    fn netgroup_in_deny_list_fails_closed() {
        assert!(!check(&[], &["@trusted"], false, "192.0.2.1"));
        assert!(!check(&["@trusted"], &[], false, "192.0.2.1"));
    }

    #[test]
    fn forward_lookup_of_configured_hostname() {
        let allow = list(&["localhost"]);
        let acl = HostAcl {
            allow: &allow,
            deny: &[],
            forward_lookup: true,
        };
        let mut peer = PeerName::new(ip("127.0.0.1"), false);
        assert!(allow_access(&acl, ip("127.0.0.1"), &mut peer));
        assert_eq!(peer.name(), Some("localhost"), "forward match replaces UNDETERMINED");
        assert!(!check(&["localhost"], &[], false, "127.0.0.1"));
        assert!(!check(&[], &["localhost"], true, "127.0.0.1"));
    }

    #[test]
    fn localhost_reverse_lookup() {
        let mut peer = PeerName::new(ip("127.0.0.1"), true);
        assert_eq!(peer.name(), Some("localhost"));
        let (allow, none) = (list(&["LOCALHOST"]), list(&[]));
        let acl = HostAcl {
            allow: &allow,
            deny: &none,
            forward_lookup: false,
        };
        assert!(allow_access(&acl, ip("127.0.0.1"), &mut PeerName::new(ip("127.0.0.1"), true)));
        let allow = list(&["*.nowhere"]);
        let acl = HostAcl {
            allow: &allow,
            deny: &none,
            forward_lookup: false,
        };
        assert!(!allow_access(&acl, ip("127.0.0.1"), &mut PeerName::new(ip("127.0.0.1"), true)));
    }

    #[test]
    fn unspecified_address_is_unknown() {
        let mut peer = PeerName::new(ip("0.0.0.0"), true);
        assert_eq!(peer.name(), Some(UNKNOWN_HOST));
        let allow = list(&["unknown"]);
        let acl = HostAcl {
            allow: &allow,
            deny: &[],
            forward_lookup: false,
        };
        assert!(allow_access(&acl, ip("0.0.0.0"), &mut peer));
    }

    #[test]
    fn address_tokens_do_not_trigger_name_lookup() {
        let allow = list(&["127.0.0.0/8"]);
        let acl = HostAcl {
            allow: &allow,
            deny: &[],
            forward_lookup: true,
        };
        let mut peer = PeerName::new(ip("127.0.0.1"), true);
        assert!(allow_access(&acl, ip("127.0.0.1"), &mut peer));
        assert!(peer.name.is_none());
    }

    /// A resolver that finds no name (no PTR record).
    fn no_ptr(_: IpAddr) -> String {
        UNKNOWN_HOST.to_owned()
    }

    /// A resolver slower than any deadline.
    fn hanging(_: IpAddr) -> String {
        std::thread::sleep(std::time::Duration::from_secs(3));
        "slow.example.com".to_owned()
    }

    fn peer_with(addr: &str, resolve: fn(IpAddr) -> String, pool: &'static NamePool) -> PeerName {
        PeerName {
            resolve,
            pool,
            ..PeerName::new(ip(addr), true)
        }
    }

    fn access(allow: &[&str], deny: &[&str], peer: &mut PeerName) -> bool {
        let (allow, deny) = (list(allow), list(deny));
        let acl = HostAcl {
            allow: &allow,
            deny: &deny,
            forward_lookup: false,
        };
        allow_access(&acl, peer.addr(), peer)
    }

    #[test]
    fn an_unknown_peer_name_fails_closed_in_deny_lists_only() {
        let pool: &'static NamePool = Box::leak(Box::new(NamePool::new(1, 1, std::time::Duration::from_secs(5))));
        for deny in ["*.example.com", "host.example.com", "*"] {
            let mut peer = peer_with("192.0.2.7", no_ptr, pool);
            assert!(!access(&[], &[deny], &mut peer), "deny {deny} must refuse a peer with no name");
        }
        // Address tokens are settled by the address alone.
        assert!(access(&[], &["10.0.0.0/8"], &mut peer_with("192.0.2.7", no_ptr, pool)));
        // In an allow list a name pattern does not match an unknown peer.
        assert!(!access(&["*.example.com"], &[], &mut peer_with("192.0.2.7", no_ptr, pool)));
        // An allow match by address still wins over the deny list.
        assert!(access(
            &["192.0.2.0/24"],
            &["*.example.com"],
            &mut peer_with("192.0.2.7", no_ptr, pool)
        ));
        // Reverse lookups off: UNDETERMINED is the admin's choice, not a failure.
        assert!(access(&[], &["*.example.com"], &mut PeerName::new(ip("192.0.2.7"), false)));
    }

    #[test]
    fn a_slow_resolver_gives_unknown_by_the_deadline_and_fails_closed() {
        let pool: &'static NamePool = Box::leak(Box::new(NamePool::new(1, 1, std::time::Duration::from_millis(300))));
        let started = std::time::Instant::now();
        let mut peer = peer_with("192.0.2.8", hanging, pool);
        assert!(!access(&[], &["*.example.com"], &mut peer), "late name: deny fails closed");
        assert_eq!(peer.name(), Some(UNKNOWN_HOST));
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
        // The thread is still busy and one more lookup waits in the queue:
        // the next one is refused at once, also as UNKNOWN.
        let mut queued = peer_with("192.0.2.9", hanging, pool);
        let waiter = std::thread::spawn(move || queued.name().map(str::to_owned));
        std::thread::sleep(std::time::Duration::from_millis(50));
        let refused = std::time::Instant::now();
        let mut busy = peer_with("192.0.2.10", hanging, pool);
        assert!(!access(&[], &["*.example.com"], &mut busy));
        assert!(refused.elapsed() < std::time::Duration::from_millis(100), "{:?}", refused.elapsed());
        assert_eq!(waiter.join().unwrap().as_deref(), Some(UNKNOWN_HOST));
    }

    #[test]
    fn prefix_masks() {
        assert_eq!(prefix_mask(12, 4), [0xff, 0xf0, 0, 0]);
        assert_eq!(prefix_mask(32, 4), [0xff; 4]);
        assert_eq!(prefix_mask(128, 4), [0xff; 4]);
    }
}
