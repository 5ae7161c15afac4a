//! The accept queue as Linux reports it: for a listening TCP socket,
//! `TCP_INFO`'s `tcpi_unacked` is the connections waiting to be accepted
//! and `tcpi_sacked` the queue's limit (the effective backlog). Drops
//! themselves are only counted host-wide, in `/proc/net/netstat`
//! (`TcpExt: ListenOverflows ListenDrops`).

use std::os::fd::{AsRawFd, BorrowedFd};

/// The accept queue of one listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepth {
    /// Connections completed by the kernel, not yet accepted.
    pub waiting: u32,
    /// The most the queue holds before the kernel drops SYNs/ACKs.
    pub limit: u32,
}

/// The queue of `listener`, when the kernel tells.
pub fn depth(listener: BorrowedFd<'_>) -> Option<QueueDepth> {
    // SAFETY: tcp_info is plain old data; getsockopt writes at most `len`
    // bytes into it and reports how many.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a valid descriptor, a buffer of `len` bytes, and its length.
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0 && info.tcpi_state == 10/* TCP_LISTEN */).then_some(QueueDepth {
        waiting: info.tcpi_unacked,
        limit: info.tcpi_sacked,
    })
}

/// Host-wide listen overflows and drops since boot (`/proc/net/netstat`).
pub fn host_drops() -> Option<(u64, u64)> {
    parse_netstat(&std::fs::read_to_string("/proc/net/netstat").ok()?)
}

fn parse_netstat(text: &str) -> Option<(u64, u64)> {
    let mut lines = text.lines();
    while let Some(names) = lines.next() {
        let values = lines.next()?;
        if !names.starts_with("TcpExt:") {
            continue;
        }
        let pairs: Vec<(&str, &str)> = names.split_whitespace().zip(values.split_whitespace()).collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| *n == k).and_then(|(_, v)| v.parse().ok());
        return Some((get("ListenOverflows")?, get("ListenDrops")?));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_listening_socket_reports_its_queue() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let _waiting = [
            std::net::TcpStream::connect(addr).unwrap(),
            std::net::TcpStream::connect(addr).unwrap(),
        ];
        let d = depth(l.as_fd()).expect("TCP_INFO on a listener");
        assert_eq!(d.waiting, 2);
        assert!(d.limit >= 1);
    }

    #[test]
    fn netstat_lines_are_read_by_name() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 7 9\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(parse_netstat(text), Some((7, 9)));
        assert_eq!(parse_netstat("IpExt: A\nIpExt: 1\n"), None);
    }
}
