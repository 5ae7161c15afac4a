//! The descriptors one supervisor hands the next on a binary upgrade
//! (SIGUSR2), and the environment that names them.
//!
//! - `OXRSYNCD_INHERITED_FDS=NAME:FD[,NAME:FD...]`: listening sockets by
//!   role: `rsync` (the daemon's port) and, with `metrics address`,
//!   `metrics` (the `/metrics` socket). A name this binary does not know is
//!   logged and closed, so a downgrade never leaks a socket.
//! - `OXRSYNCD_UPGRADE_FD=FD`: the write end of the status pipe the old
//!   supervisor reads (see [`crate::handover`]).
//!
//! Both variables are removed from the environment as soon as they are
//! read, so workers and a later upgrade never see stale numbers. Their
//! presence is also what tells a supervisor it was started by an upgrade
//! (not by systemd: `LISTEN_FDS` is never set for it).

use std::collections::BTreeMap;
use std::io;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use socket2::Socket;

/// Names the inherited listening sockets.
pub const INHERITED_FDS_ENV: &str = "OXRSYNCD_INHERITED_FDS";
/// Names the write end of the upgrade status pipe.
pub const UPGRADE_FD_ENV: &str = "OXRSYNCD_UPGRADE_FD";
/// The role of the rsync listening socket in [`INHERITED_FDS_ENV`].
pub const RSYNC_LISTENER: &str = "rsync";
/// The role of the `/metrics` listening socket.
pub const METRICS_LISTENER: &str = "metrics";

/// The inherited descriptors could not be taken over.
#[derive(Debug, thiserror::Error)]
pub enum InheritError {
    #[error("{var}={value:?}: expected NAME:FD[,NAME:FD...] with fds of 3 or more")]
    Malformed { var: &'static str, value: String },
    #[error("{var} names fd {fd} twice")]
    Duplicate { var: &'static str, fd: RawFd },
    #[error("inherited fd {fd} ({name}) is not open: {source}")]
    NotOpen { name: String, fd: RawFd, source: io::Error },
    #[error("inherited fd {fd} ({name}) is not a listening socket")]
    NotListening { name: String, fd: RawFd },
    #[error("inherited listening socket {name} (fd {fd}): {source}")]
    Socket { name: String, fd: RawFd, source: io::Error },
}

/// What a supervisor started by an upgrade received.
#[derive(Debug, Default)]
pub struct Inherited {
    /// Listening sockets by role; taken out one by one by their users.
    sockets: BTreeMap<String, OwnedFd>,
    /// Write end of the old supervisor's status pipe; `None` when not an upgrade.
    pub status_pipe: Option<OwnedFd>,
}

impl Inherited {
    /// Read (and clear) both variables, taking ownership of the fds they name.
    pub fn take_from_env() -> Result<Inherited, InheritError> {
        let sockets_var = std::env::var(INHERITED_FDS_ENV).ok();
        let pipe_var = std::env::var(UPGRADE_FD_ENV).ok();
        std::env::remove_var(INHERITED_FDS_ENV);
        std::env::remove_var(UPGRADE_FD_ENV);

        let mut out = Inherited::default();
        let entries = match &sockets_var {
            Some(value) => parse(INHERITED_FDS_ENV, value)?,
            None => Vec::new(),
        };
        let pipe_fd = match &pipe_var {
            Some(value) => Some(parse_fd(value).ok_or_else(|| InheritError::Malformed {
                var: UPGRADE_FD_ENV,
                value: value.clone(),
            })?),
            None => None,
        };
        if let Some(fd) = pipe_fd {
            if entries.iter().any(|(_, f)| *f == fd) {
                return Err(InheritError::Duplicate { var: UPGRADE_FD_ENV, fd });
            }
            out.status_pipe = Some(own(UPGRADE_FD_ENV, fd)?);
        }
        for (name, fd) in entries {
            let owned = own(&name, fd)?;
            out.sockets.insert(name, owned);
        }
        Ok(out)
    }

    /// Whether this process was started by a binary upgrade.
    pub fn is_upgrade(&self) -> bool {
        self.status_pipe.is_some()
    }

    /// Take the listening socket of role `name`, checked and made
    /// close-on-exec and non-blocking (as a bound one would be).
    pub fn take_listener(&mut self, name: &str) -> Option<Result<TcpListener, InheritError>> {
        let fd = self.sockets.remove(name)?;
        Some(adopt_listener(name, fd))
    }

    /// Close the sockets nobody took; returns their names for the log.
    pub fn close_unclaimed(&mut self) -> Vec<String> {
        std::mem::take(&mut self.sockets).into_keys().collect()
    }
}

/// `NAME:FD[,NAME:FD...]` for the child's environment.
pub fn format(entries: &[(&str, RawFd)]) -> String {
    entries
        .iter()
        .map(|(name, fd)| format!("{name}:{fd}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parse `NAME:FD[,NAME:FD...]`: names are non-empty `[a-z0-9_-]`, unique,
/// fds are 3 or more (0..=2 are stdio) and unique.
pub fn parse(var: &'static str, value: &str) -> Result<Vec<(String, RawFd)>, InheritError> {
    let malformed = || InheritError::Malformed {
        var,
        value: value.to_string(),
    };
    let mut out: Vec<(String, RawFd)> = Vec::new();
    for entry in value.split(',').filter(|e| !e.is_empty()) {
        let (name, fd) = entry.split_once(':').ok_or_else(malformed)?;
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        let fd = parse_fd(fd).filter(|_| valid_name).ok_or_else(malformed)?;
        if out.iter().any(|(n, _)| n == name) {
            return Err(malformed());
        }
        if out.iter().any(|(_, f)| *f == fd) {
            return Err(InheritError::Duplicate { var, fd });
        }
        out.push((name.to_string(), fd));
    }
    Ok(out)
}

fn parse_fd(text: &str) -> Option<RawFd> {
    text.parse::<RawFd>().ok().filter(|fd| *fd >= 3)
}

/// Own `fd` after checking it is open, and set close-on-exec so no worker
/// inherits it by accident (workers get the listener at fd 3 explicitly).
fn own(name: &str, fd: RawFd) -> Result<OwnedFd, InheritError> {
    let not_open = |source| InheritError::NotOpen {
        name: name.to_string(),
        fd,
        source,
    };
    // SAFETY: fcntl on an arbitrary number only reports EBADF when unused.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(not_open(io::Error::last_os_error()));
    }
    // SAFETY: the old supervisor passed this open fd to us alone, named in
    // the environment we just cleared, so nothing else in this process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn adopt_listener(name: &str, fd: OwnedFd) -> Result<TcpListener, InheritError> {
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let socket = Socket::from(fd);
    let socket_err = |source| InheritError::Socket {
        name: name.to_string(),
        fd: raw,
        source,
    };
    if !socket.is_listener().map_err(socket_err)? {
        return Err(InheritError::NotListening {
            name: name.to_string(),
            fd: raw,
        });
    }
    socket.set_nonblocking(true).map_err(socket_err)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_lists_round_trip() {
        let text = format(&[("rsync", 3), ("metrics", 4)]);
        assert_eq!(text, "rsync:3,metrics:4");
        let parsed = parse(INHERITED_FDS_ENV, &text).unwrap();
        assert_eq!(parsed, vec![("rsync".to_string(), 3), ("metrics".to_string(), 4)]);
        assert!(parse(INHERITED_FDS_ENV, "").unwrap().is_empty());
    }

    #[test]
    fn malformed_lists_are_refused() {
        for bad in ["rsync", "rsync:x", "rsync:1", ":3", "Rsync:3", "a:3,a:4", "a b:3"] {
            assert!(
                matches!(parse(INHERITED_FDS_ENV, bad), Err(InheritError::Malformed { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            parse(INHERITED_FDS_ENV, "a:3,b:3"),
            Err(InheritError::Duplicate { fd: 3, .. })
        ));
    }

    #[test]
    fn a_listening_socket_is_adopted_and_anything_else_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let adopted = adopt_listener("rsync", OwnedFd::from(listener)).unwrap();
        assert_eq!(adopted.local_addr().unwrap(), addr);

        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(adopt_listener("rsync", OwnedFd::from(a)).is_err());
    }
}
