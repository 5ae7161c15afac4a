//! One client on standard input and output, then exit, as upstream's
//! daemon does: inetd mode (standard input is a connected socket: systemd
//! `Accept=yes`, xinetd, or a client's `RSYNC_CONNECT_PROG`) and the
//! daemon a client starts over a remote shell (`--server --daemon`, pipes).

use std::fs::File;
use std::io::{self, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxrsyncd_shared::config::Config;
use tracing::info;

use crate::handshake::drive_blocking::{self, ReadTimeout};
use crate::handshake::{Handshake, Progress};
use crate::session::{self, SessionStream};

/// Whether fd 0 is a connected (not listening) socket.
pub fn stdin_is_connected_socket() -> bool {
    let fd = io::stdin();
    let sock = socket2::SockRef::from(&fd);
    matches!(sock.r#type(), Ok(t) if t == socket2::Type::STREAM) && !sock.is_listener().unwrap_or(true)
}

/// The stdin socket, for timeouts and shutdown.
struct StdinSocket {
    fd: OwnedFd,
}

impl ReadTimeout for StdinSocket {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        socket2::SockRef::from(&self.fd.as_fd()).set_read_timeout(timeout)
    }
}

impl SessionStream for StdinSocket {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        ReadTimeout::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        socket2::SockRef::from(&self.fd.as_fd()).set_write_timeout(timeout)
    }
    fn keepalive_writer(&self) -> Option<Box<dyn io::Write + Send>> {
        // Standard output is the same socket (inetd hands us one descriptor twice).
        dup_fd(1).ok().map(|fd| Box::new(File::from(fd)) as Box<dyn io::Write + Send>)
    }
    fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(&self.fd.as_fd()).shutdown(std::net::Shutdown::Write);
    }
    fn read_stopper(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        let fd = self.fd.try_clone().ok()?;
        Some(Box::new(move || {
            let _ = socket2::SockRef::from(&fd.as_fd()).shutdown(std::net::Shutdown::Read);
        }))
    }
}

/// Serve the client on stdin/stdout. Returns the process exit status.
pub fn serve_stdio(config: Config) -> i32 {
    let (sock, input, output) = match (dup_fd(0), dup_fd(0), dup_fd(1)) {
        (Ok(s), Ok(i), Ok(o)) => (StdinSocket { fd: s }, File::from(i), File::from(o)),
        _ => return 1,
    };
    let peer = socket2::SockRef::from(&sock.fd.as_fd())
        .peer_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    serve(config, &sock, input, output, peer)
}

/// `--server --daemon`: a client started us over a remote shell (`rsync
/// -e ssh host::module`); standard input and output are pipes. The
/// client's address is the one the shell reports (`SSH_CONNECTION`, then
/// `SSH_CLIENT`), as upstream takes it.
pub fn serve_remote_shell(config: Config) -> i32 {
    let (input, output) = match (dup_fd(0), dup_fd(1)) {
        (Ok(i), Ok(o)) => (File::from(i), File::from(o)),
        _ => return 1,
    };
    let peer = ["SSH_CONNECTION", "SSH_CLIENT"]
        .iter()
        .filter_map(std::env::var_os)
        .find_map(|v| v.to_string_lossy().split_whitespace().next().and_then(|a| a.parse().ok()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let Ok(out) = dup_fd(1) else { return 1 };
    serve(config, &Pipes { out }, input, output, peer)
}

/// The handshake, then the session, on one client's input and output.
fn serve<S: SessionStream + ReadTimeout>(config: Config, sock: &S, input: File, output: File, peer: IpAddr) -> i32 {
    let config = Arc::new(config);
    let mut reader = BufReader::new(input);
    let mut writer = &output;
    let mut handshake = Handshake::new(config.clone(), peer);
    let deadline = Instant::now() + config.global.handshake_timeout;
    match drive_blocking::run(&mut handshake, &mut reader, &mut writer, sock, deadline) {
        Ok(Progress::Session(request)) => {
            let _ = ReadTimeout::set_read_timeout(sock, None);
            let mut out = io::BufWriter::new(&output);
            session::run(*request, &mut reader, &mut out, sock)
        }
        Ok(_) => 0,
        Err(e) => {
            info!("stdio handshake ended: {}", e);
            0
        }
    }
}

/// A remote shell's pipes: no socket timeouts to set (the shell's own
/// connection carries them), and the end of our output is the end of
/// standard output.
struct Pipes {
    /// Standard output, for keep-alives.
    out: OwnedFd,
}

impl ReadTimeout for Pipes {
    fn set_read_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    /// A pipe has no receive timeout: wait here for standard input to be
    /// readable, so the handshake deadline holds on this path too.
    fn bound_next_read(&self, wait: Duration) -> io::Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        // SAFETY: borrowing standard input, open for the whole process.
        let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
        let timeout = PollTimeout::try_from(wait.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
        loop {
            let mut fds = [PollFd::new(stdin, PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::TimedOut, "handshake timeout")),
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl SessionStream for Pipes {
    /// Pipes have none: the session runs without its own timeouts, and
    /// ends without waiting for the client to hang up (it exits; the
    /// shell closes the connection).
    fn set_read_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
    fn set_write_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn keepalive_writer(&self) -> Option<Box<dyn io::Write + Send>> {
        self.out
            .try_clone()
            .ok()
            .map(|fd| Box::new(File::from(fd)) as Box<dyn io::Write + Send>)
    }
    fn shutdown_write(&self) {}
    fn read_stopper(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        None
    }
}

fn dup_fd(fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: borrowing a descriptor that stays open for the whole process.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    borrowed.try_clone_to_owned()
}
