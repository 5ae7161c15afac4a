//! `socket options` / `--sockopts`: upstream's comma-separated list of
//! socket settings (`SO_KEEPALIVE,TCP_NODELAY,SO_SNDBUF=65536`), parsed once
//! when the config is loaded and applied to every accepted connection.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use socket2::SockRef;

/// One recognised option and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SocketOption {
    KeepAlive(bool),
    ReuseAddr(bool),
    Broadcast(bool),
    NoDelay(bool),
    SendBuffer(usize),
    RecvBuffer(usize),
    SendLowWater(i32),
    RecvLowWater(i32),
    SendTimeout(Duration),
    RecvTimeout(Duration),
    /// IPTOS_LOWDELAY / IPTOS_THROUGHPUT: an IPv4 TOS value.
    Tos(u32),
}

/// A bad entry in the option list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketOptionError {
    #[error("unknown socket option {0:?}")]
    Unknown(String),
    #[error("socket option {name} needs a numeric value, got {value:?}")]
    BadValue { name: String, value: String },
}

/// Parse a whole `socket options` string. Names upstream does not know
/// are left out, as upstream leaves them (with a warning: see
/// [`unknown_names`]); a known option with a bad value is an error.
pub fn parse(list: &str) -> Result<Vec<SocketOption>, SocketOptionError> {
    entries(list)
        .filter_map(|entry| match parse_one(entry) {
            Err(SocketOptionError::Unknown(_)) => None,
            other => Some(other),
        })
        .collect()
}

/// The names in `list` that are no socket option (upstream's "Unknown
/// socket option" warnings).
pub fn unknown_names(list: &str) -> Vec<String> {
    entries(list)
        .filter_map(|entry| match parse_one(entry) {
            Err(SocketOptionError::Unknown(name)) => Some(name),
            _ => None,
        })
        .collect()
}

fn entries(list: &str) -> impl Iterator<Item = &str> {
    list.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty())
}

fn parse_one(entry: &str) -> Result<SocketOption, SocketOptionError> {
    let (name, value) = match entry.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (entry.trim(), None),
    };
    let number = |default: i64| -> Result<i64, SocketOptionError> {
        match value {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| SocketOptionError::BadValue {
                name: name.into(),
                value: v.into(),
            }),
        }
    };
    let upper = name.to_ascii_uppercase();
    Ok(match upper.as_str() {
        "SO_KEEPALIVE" => SocketOption::KeepAlive(number(1)? != 0),
        "SO_REUSEADDR" => SocketOption::ReuseAddr(number(1)? != 0),
        "SO_BROADCAST" => SocketOption::Broadcast(number(1)? != 0),
        "TCP_NODELAY" => SocketOption::NoDelay(number(1)? != 0),
        "SO_SNDBUF" => SocketOption::SendBuffer(number(0)?.max(0) as usize),
        "SO_RCVBUF" => SocketOption::RecvBuffer(number(0)?.max(0) as usize),
        "SO_SNDLOWAT" => SocketOption::SendLowWater(number(1)? as i32),
        "SO_RCVLOWAT" => SocketOption::RecvLowWater(number(1)? as i32),
        "SO_SNDTIMEO" => SocketOption::SendTimeout(Duration::from_secs(number(0)?.max(0) as u64)),
        "SO_RCVTIMEO" => SocketOption::RecvTimeout(Duration::from_secs(number(0)?.max(0) as u64)),
        "IPTOS_LOWDELAY" => SocketOption::Tos(0x10),
        "IPTOS_THROUGHPUT" => SocketOption::Tos(0x08),
        _ => return Err(SocketOptionError::Unknown(name.into())),
    })
}

/// Apply options to a socket; failures are returned per option so the
/// caller can log them without dropping the connection (upstream only warns).
pub fn apply(sock: SockRef<'_>, options: &[SocketOption]) -> Vec<(SocketOption, std::io::Error)> {
    let mut failures = Vec::new();
    for opt in options {
        let result = match *opt {
            SocketOption::KeepAlive(on) => sock.set_keepalive(on),
            SocketOption::ReuseAddr(on) => sock.set_reuse_address(on),
            SocketOption::Broadcast(on) => sock.set_broadcast(on),
            SocketOption::NoDelay(on) => sock.set_nodelay(on),
            SocketOption::SendBuffer(n) => sock.set_send_buffer_size(n),
            SocketOption::RecvBuffer(n) => sock.set_recv_buffer_size(n),
            SocketOption::SendLowWater(n) => set_int_option(&sock, libc::SO_SNDLOWAT, n),
            SocketOption::RecvLowWater(n) => set_int_option(&sock, libc::SO_RCVLOWAT, n),
            SocketOption::SendTimeout(d) => sock.set_write_timeout(Some(d).filter(|d| !d.is_zero())),
            SocketOption::RecvTimeout(d) => sock.set_read_timeout(Some(d).filter(|d| !d.is_zero())),
            SocketOption::Tos(tos) => match sock.local_addr().map(|a| a.is_ipv4()) {
                Ok(true) => sock.set_tos(tos),
                _ => Ok(()), // TOS is an IPv4 notion, as upstream
            },
        };
        if let Err(e) = result {
            failures.push((*opt, e));
        }
    }
    failures
}

fn set_int_option(sock: &SockRef<'_>, name: libc::c_int, value: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt with a pointer to a live c_int and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_style_lists() {
        let opts = parse("SO_KEEPALIVE, TCP_NODELAY=0,SO_SNDBUF=65536 IPTOS_LOWDELAY").unwrap();
        assert_eq!(
            opts,
            vec![
                SocketOption::KeepAlive(true),
                SocketOption::NoDelay(false),
                SocketOption::SendBuffer(65536),
                SocketOption::Tos(0x10)
            ]
        );
        // Unknown names are left out with a warning, as upstream does.
        assert_eq!(parse("SO_BOGUS,TCP_NODELAY"), Ok(vec![SocketOption::NoDelay(true)]));
        assert_eq!(unknown_names("SO_BOGUS,TCP_NODELAY NOSUCHOPT"), ["SO_BOGUS", "NOSUCHOPT"]);
        assert!(matches!(parse("SO_SNDBUF=lots"), Err(SocketOptionError::BadValue { .. })));
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn applies_to_a_real_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let failures = apply(SockRef::from(&s), &parse("SO_KEEPALIVE,TCP_NODELAY,SO_RCVLOWAT=1").unwrap());
        assert!(failures.is_empty(), "{failures:?}");
        assert!(SockRef::from(&s).keepalive().unwrap());
        assert!(s.nodelay().unwrap());
    }
}
