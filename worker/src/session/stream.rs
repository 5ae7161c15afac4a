//! The connection a session owns, as the transfer needs it: timeouts,
//! a second handle for keep-alives, and half-closing either side.

use std::io::{self, Write};
use std::time::Duration;

/// The connection a session owns.
pub(crate) trait SessionStream: Send {
    /// Set (or clear) the receive timeout of the underlying socket.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Set (or clear) the send timeout: a client that stops reading must
    /// not hold a session forever.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// A second, unbuffered handle for keep-alive frames.
    fn keepalive_writer(&self) -> Option<Box<dyn Write + Send>>;
    /// Half-close our sending side once everything is written.
    fn shutdown_write(&self);
    /// A handle that ends our reading (half-closes the receiving side), so
    /// a thread blocked reading the client wakes up: how a push's
    /// generator, failing, stops the receiver waiting for data it will
    /// never ask for.
    fn read_stopper(&self) -> Option<Box<dyn Fn() + Send + Sync>>;
}

impl SessionStream for std::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_write_timeout(self, timeout)
    }
    fn keepalive_writer(&self) -> Option<Box<dyn Write + Send>> {
        self.try_clone().ok().map(|s| Box::new(s) as Box<dyn Write + Send>)
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
    fn read_stopper(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        let socket = self.try_clone().ok()?;
        Some(Box::new(move || {
            let _ = socket.shutdown(std::net::Shutdown::Read);
        }))
    }
}
