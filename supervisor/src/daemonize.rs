//! `--detach`: the classic double step of fork, setsid and stdio to
//! /dev/null. Runs before any worker exists, while the process is single-threaded.

use std::os::fd::AsRawFd;

/// Detaching failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot detach: {0}")]
pub struct DetachError(#[from] nix::Error);

/// Fork into the background; the parent exits 0, the child returns.
pub fn detach() -> Result<(), DetachError> {
    // SAFETY: the supervisor is single-threaded here (no runtime, no helper threads).
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { .. } => std::process::exit(0),
        nix::unistd::ForkResult::Child => {}
    }
    nix::unistd::setsid()?;
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    for fd in 0..=2 {
        nix::unistd::dup2(devnull.as_raw_fd(), fd)?;
    }
    Ok(())
}
