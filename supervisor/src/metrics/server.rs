//! The `/metrics` endpoint: one thread, blocking accept, one request per
//! connection (HTTP/1.0 or 1.1 with `Connection: close`). A scraper gets 2
//! seconds in all to send its request head; anything but `GET /metrics` (or `/`)
//! gets 404 or 405. The listener is bound before the workers start, so a
//! wrong `metrics address` stops the start with a clear error.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

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
        MetricsServer { listener }
    }

    /// The listening socket, to hand over on a binary upgrade.
    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }

    /// Serve on a thread of its own for the rest of the process.
    /// `paused`: take no request until [`MetricsThread::pause_flag`] is
    /// cleared (a supervisor started by a binary upgrade, until it serves).
    pub fn spawn(self, collector: Arc<ScoreboardCollector>, paused: bool) -> Result<MetricsThread, MetricsError> {
        if let Ok(addr) = self.listener.local_addr() {
            info!("metrics on http://{}/metrics", addr);
        }
        // Polled, then accepted without blocking: after a binary upgrade two
        // supervisors share this socket, and the one leaving must be able
        // to stop between connections rather than inside accept().
        self.listener.set_nonblocking(true).map_err(MetricsError::Thread)?;
        let listener = self.listener.try_clone().map_err(MetricsError::Thread)?;
        let stop = Arc::new(AtomicBool::new(false));
        let pause = Arc::new(AtomicBool::new(paused));
        let (stop_seen, pause_seen) = (stop.clone(), pause.clone());
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .stack_size(256 * 1024)
            .spawn(move || serve(listener, collector, &stop_seen, &pause_seen))
            .map_err(MetricsError::Thread)?;
        Ok(MetricsThread { stop, pause, thread })
    }
}

/// The running endpoint.
pub struct MetricsThread {
    /// Set to make the thread return after its current request.
    stop: Arc<AtomicBool>,
    /// While set, the thread takes no request (they wait in the queue).
    pause: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl MetricsThread {
    /// The flag that makes the thread take no further request (for the
    /// hand-over of a binary upgrade, without waiting for it).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// The flag that holds the thread back until the supervisor serves.
    pub fn pause_flag(&self) -> Arc<AtomicBool> {
        self.pause.clone()
    }

    /// Answer the request in progress (bounded by the request timeouts),
    /// accept no other, and end.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}

/// How often a waiting thread looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

fn serve(listener: TcpListener, collector: Arc<ScoreboardCollector>, stop: &AtomicBool, pause: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        if pause.load(Ordering::Acquire) {
            std::thread::sleep(STOP_CHECK / 4);
            continue;
        }
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(STOP_CHECK.as_millis() as u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                warn!("metrics poll failed: {}", e);
                std::thread::sleep(STOP_CHECK);
                continue;
            }
        }
        if stop.load(Ordering::Acquire) {
            break;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                // The accepted socket is ours alone: plain blocking I/O
                // with the request deadlines.
                let _ = stream.set_nonblocking(false);
                if let Err(e) = answer(stream, &collector) {
                    tracing::debug!("metrics request: {}", e);
                }
            }
            // The other supervisor (during an upgrade) took it.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                warn!("metrics accept failed: {}", e);
                std::thread::sleep(STOP_CHECK);
            }
        }
    }
}

/// The request line's method and path, after reading the whole head
/// within one deadline (a client trickling bytes cannot hold the thread
/// past it).
fn read_request(stream: &TcpStream) -> io::Result<(String, String)> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "request head too slow"));
        }
        stream.set_read_timeout(Some(left))?;
        let n = match (&*stream).read(&mut chunk) {
            Ok(n) => n,
            // A socket read timeout is reported as WouldBlock on Linux.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "request head too slow"));
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "request head cut"));
        }
        head.extend_from_slice(&chunk[..n]);
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too long"));
        }
    }
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let mut parts = first.trim_end().split(' ');
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair: (client, server side).
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        (c, l.accept().unwrap().0)
    }

    #[test]
    fn a_request_head_is_read_to_its_end() {
        let (mut c, s) = pair();
        c.write_all(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(read_request(&s).unwrap(), ("GET".into(), "/metrics?x=1".into()));
    }

    #[test]
    fn an_endless_head_is_refused() {
        let (mut c, s) = pair();
        let writer = std::thread::spawn(move || {
            let _ = c.write_all(&[b'a'; MAX_HEAD + 2048]);
            c
        });
        assert_eq!(read_request(&s).unwrap_err().kind(), io::ErrorKind::InvalidData);
        drop(writer.join());
    }

    #[test]
    fn a_trickling_client_is_cut_at_the_deadline() {
        let (mut c, s) = pair();
        let trickle = std::thread::spawn(move || {
            for _ in 0..40 {
                if c.write_all(b"G").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let started = Instant::now();
        assert_eq!(read_request(&s).unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < REQUEST_TIMEOUT + Duration::from_secs(1));
        drop(s);
        trickle.join().unwrap();
    }
}
