//! The worker's side of its control socket: a small thread that blocks on
//! the supervisor's messages and turns them into drain requests. EOF means
//! the supervisor is gone; the worker then exits at once (PR_SET_PDEATHSIG
//! covers the same case when the supervisor is killed).

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{recv, send, MsgFlags};
use oxrsyncd_shared::control::{decode, encode, ToSupervisor, ToWorker, MAX_MESSAGE};
use tracing::{info, warn};

use crate::listener::drain::DrainSignal;

/// Our end of the control socketpair.
pub(crate) struct ControlChannel {
    fd: OwnedFd,
}

impl ControlChannel {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        ControlChannel { fd }
    }

    /// Tell the supervisor something; failures only matter if it is gone,
    /// which the reader thread notices.
    pub(crate) fn send(&self, msg: &ToSupervisor) {
        if let Err(e) = send(self.fd.as_raw_fd(), &encode(msg), MsgFlags::MSG_NOSIGNAL) {
            warn!("control message to supervisor failed: {}", e);
        }
    }

    /// Start the reader thread.
    pub(crate) fn spawn_reader(&self, drain: DrainSignal) -> std::io::Result<()> {
        let fd = self.fd.try_clone()?;
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || read_loop(fd, drain))?;
        Ok(())
    }
}

fn read_loop(fd: OwnedFd, drain: DrainSignal) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(0) => {
                info!("supervisor went away; worker exiting");
                std::process::exit(0);
            }
            Ok(n) => match decode::<ToWorker>(&buf[..n]) {
                Ok(ToWorker::Drain { drain_timeout_ms }) => drain.start(Duration::from_millis(drain_timeout_ms)),
                Err(e) => warn!("{}", e),
            },
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                warn!("control socket failed: {}; worker exiting", e);
                std::process::exit(1);
            }
        }
    }
}
