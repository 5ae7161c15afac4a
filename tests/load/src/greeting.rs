//! The cheap part of the daemon protocol, async: connect from a chosen
//! source address, read the greeting, answer it, and optionally list the
//! modules. Enough to hold or churn thousands of sessions from one process.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// What we say back (protocol 32 with the digests stock offers).
pub const CLIENT_GREETING: &[u8] = b"@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n";

/// A session past the greeting, parked in module selection.
pub struct Greeted {
    pub stream: BufReader<TcpStream>,
    /// From the start of connect to the greeting line.
    pub time_to_greeting: Duration,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no answer in time")
}

/// Connect from `source`, read the daemon's greeting and send ours.
pub async fn connect_and_greet(target: SocketAddr, source: SocketAddr, limit: Duration) -> io::Result<Greeted> {
    let started = Instant::now();
    let work = async {
        let socket = if target.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(source)?;
        let stream = socket.connect(target).await?;
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if !line.starts_with("@RSYNCD: ") {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("greeting {line:?}")));
        }
        let time_to_greeting = started.elapsed();
        stream.get_mut().write_all(CLIENT_GREETING).await?;
        Ok(Greeted { stream, time_to_greeting })
    };
    tokio::time::timeout(limit, work).await.map_err(|_| timed_out())?
}

/// A whole module listing (`#list`); returns the module names.
pub async fn list_modules(target: SocketAddr, source: SocketAddr, limit: Duration) -> io::Result<Vec<String>> {
    let work = async {
        let mut g = connect_and_greet(target, source, limit).await?;
        g.stream.get_mut().write_all(b"#list\n").await?;
        let mut names = Vec::new();
        loop {
            let mut line = String::new();
            if g.stream.read_line(&mut line).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end();
            if line == "@RSYNCD: EXIT" {
                return Ok(names);
            }
            if line.starts_with("@ERROR") {
                return Err(io::Error::new(io::ErrorKind::InvalidData, line.to_string()));
            }
            if let Some(name) = line.split('\t').next() {
                names.push(name.trim_end().to_string());
            }
        }
    };
    tokio::time::timeout(limit, work).await.map_err(|_| timed_out())?
}
