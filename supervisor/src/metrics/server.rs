//! The `/metrics` endpoint: one thread, blocking accept, one request per
//! connection (HTTP/1.0 or 1.1 with `Connection: close`). A scraper gets 2
//! seconds to send its request head; anything but `GET /metrics` (or `/`)
//! gets 404 or 405. The listener is bound before the workers start, so a
//! wrong `metrics address` stops the start with a clear error.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::collect::ScoreboardCollector;

/// How long a scraper may take to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest request head read.
const MAX_HEAD: usize = 8192;

/// A bound `/metrics` listener, not yet serving.
pub struct MetricsServer {
    listener: TcpListener,
}

/// `metrics address` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics address {0:?}: expected host:port")]
    BadAddress(String),
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind { addr: String, source: io::Error },
    #[error("cannot start the metrics thread: {0}")]
    Thread(io::Error),
}

impl MetricsServer {
    /// Bind `address` (`host:port`, `[v6]:port`).
    pub fn bind(address: &str) -> Result<MetricsServer, MetricsError> {
        let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(address)
            .map_err(|_| MetricsError::BadAddress(address.to_string()))?
            .collect();
        let listener = TcpListener::bind(&addrs[..]).map_err(|source| MetricsError::Bind {
            addr: address.to_string(),
            source,
        })?;
        Ok(MetricsServer { listener })
    }

    /// Adopt an already listening socket (inherited on a binary upgrade).
    pub fn from_listener(listener: TcpListener) -> MetricsServer {
        // The thread accepts blocking, whatever the giver's setting.
        let _ = listener.set_nonblocking(false);
        MetricsServer { listener }
    }

    /// The listening socket, to hand over on a binary upgrade.
    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }

    /// Serve on a thread of its own for the rest of the process.
    pub fn spawn(self, collector: Arc<ScoreboardCollector>) -> Result<(), MetricsError> {
        if let Ok(addr) = self.listener.local_addr() {
            info!("metrics on http://{}/metrics", addr);
        }
        let listener = self.listener.try_clone().map_err(MetricsError::Thread)?;
        std::thread::Builder::new()
            .name("metrics".into())
            .stack_size(256 * 1024)
            .spawn(move || serve(listener, collector))
            .map_err(MetricsError::Thread)?;
        Ok(())
    }
}

fn serve(listener: TcpListener, collector: Arc<ScoreboardCollector>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = answer(stream, &collector) {
                    tracing::debug!("metrics request: {}", e);
                }
            }
            Err(e) => {
                warn!("metrics accept failed: {}", e);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The request line's method and path, after reading the whole head.
fn read_request(stream: &TcpStream) -> io::Result<(String, String)> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut reader = BufReader::new(stream);
    let mut head = 0usize;
    let mut first = String::new();
    loop {
        let mut line = String::new();
        let n = std::io::Read::take(&mut reader, (MAX_HEAD - head) as u64 + 1).read_line(&mut line)?;
        head += n;
        if n == 0 || head > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too long or cut"));
        }
        if first.is_empty() {
            first = line.trim_end().to_string();
        } else if line.trim_end().is_empty() {
            break;
        }
    }
    let mut parts = first.split(' ');
    Ok((parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string()))
}

fn answer(stream: TcpStream, collector: &Arc<ScoreboardCollector>) -> io::Result<()> {
    let (method, path) = read_request(&stream)?;
    let path = path.split('?').next().unwrap_or("");
    let (status, kind, body) = match (method.as_str(), path) {
        ("GET" | "HEAD", "/metrics" | "/") => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", collector.render()),
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain", "not found: try /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_string()),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    let mut stream = stream;
    stream.write_all(&out)?;
    stream.flush()
}
