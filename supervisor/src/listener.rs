//! The listening socket the supervisor owns for its whole life: adopted
//! from systemd (`LISTEN_FDS`) or bound here with socket2. Workers accept
//! from the same open file description; because the supervisor never
//! closes it, no worker exit or reload ever drops queued connections.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{FromRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// The first fd systemd passes.
const SD_LISTEN_FDS_START: RawFd = 3;

/// Which address family to bind when no address is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv6 socket accepting IPv4 too (falls back to IPv4 without IPv6).
    Dual,
    V4,
    V6,
}

/// The listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot resolve listen address {address}: {source}")]
    Resolve { address: String, source: io::Error },
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("systemd passed LISTEN_FDS={0}; oxrsyncd serves exactly one listening socket")]
    SystemdCount(usize),
    #[error("the socket systemd passed is not a listening TCP socket: {0}")]
    SystemdSocket(io::Error),
}

/// The socket systemd passed us, if any (LISTEN_PID must be ours). The
/// variables are removed so workers and children never see them.
pub fn from_systemd() -> Option<Result<TcpListener, ListenError>> {
    let pid_matches = std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse::<usize>().ok());
    forget_systemd();
    if !pid_matches {
        return None;
    }
    Some(match count {
        Some(1) => adopt(SD_LISTEN_FDS_START),
        Some(n) => Err(ListenError::SystemdCount(n)),
        None => Err(ListenError::SystemdCount(0)),
    })
}

/// Remove systemd's socket-passing variables (also when a listener came
/// from elsewhere), so no child ever takes them as its own.
pub fn forget_systemd() {
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
}

fn adopt(fd: RawFd) -> Result<TcpListener, ListenError> {
    // SAFETY: systemd guarantees fd 3 is open and ours when LISTEN_PID matches.
    let socket = unsafe { Socket::from_raw_fd(fd) };
    let listening = socket.is_listener().map_err(ListenError::SystemdSocket)?;
    if !listening {
        return Err(ListenError::SystemdSocket(io::Error::other("not listening")));
    }
    socket.set_cloexec(true).map_err(ListenError::SystemdSocket)?;
    socket.set_nonblocking(true).map_err(ListenError::SystemdSocket)?;
    Ok(socket.into())
}

/// Bind `address` (or the wildcard of `family`) on `port`.
pub fn bind(address: Option<&str>, port: u16, family: Family, backlog: u32) -> Result<TcpListener, ListenError> {
    let addrs: Vec<SocketAddr> = match address {
        Some(a) => resolve(a, port, family)?,
        None => match family {
            Family::V4 => vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)],
            Family::V6 | Family::Dual => vec![SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)],
        },
    };
    let mut last_err = None;
    for addr in addrs {
        match bind_one(addr, family, backlog) {
            Ok(l) => return Ok(l),
            Err(source) if address.is_none() && family == Family::Dual && source.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
                // No IPv6 on this host: serve IPv4.
                return bind_one(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port), Family::V4, backlog)
                    .map_err(|source| ListenError::Bind { addr, source });
            }
            Err(source) => last_err = Some(ListenError::Bind { addr, source }),
        }
    }
    Err(last_err.expect("at least one address"))
}

fn resolve(address: &str, port: u16, family: Family) -> Result<Vec<SocketAddr>, ListenError> {
    let resolve_err = |source| ListenError::Resolve {
        address: address.to_string(),
        source,
    };
    let all: Vec<SocketAddr> = match address.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (address, port).to_socket_addrs().map_err(resolve_err)?.collect(),
    };
    let wanted: Vec<SocketAddr> = all
        .into_iter()
        .filter(|a| match family {
            Family::V4 => a.is_ipv4(),
            Family::V6 => a.is_ipv6(),
            Family::Dual => true,
        })
        .collect();
    if wanted.is_empty() {
        return Err(resolve_err(io::Error::new(
            io::ErrorKind::NotFound,
            "no address of the requested family",
        )));
    }
    Ok(wanted)
}

fn bind_one(addr: SocketAddr, family: Family, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(family == Family::V6 || !addr.ip().is_unspecified())?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog.clamp(1, i32::MAX as u32) as i32)?;
    // Every generation agrees: the shared description is non-blocking.
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_loopback_on_an_ephemeral_port() {
        let l = bind(Some("127.0.0.1"), 0, Family::Dual, 16).unwrap();
        let addr = l.local_addr().unwrap();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        std::net::TcpStream::connect(addr).unwrap();
    }

    #[test]
    fn family_filters_resolution() {
        assert!(matches!(
            bind(Some("127.0.0.1"), 0, Family::V6, 16),
            Err(ListenError::Resolve { .. })
        ));
    }
}
