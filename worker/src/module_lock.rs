//! `max connections` per module, counted across every worker process.
//!
//! Upstream's scheme, kept so operators see the same behaviour: the module's
//! `lock file` holds one 4-byte record per allowed connection, and a session
//! holds a lock on the first free record for its lifetime. We take
//! open-file-description locks (`F_OFD_SETLK`) rather than POSIX record
//! locks, because POSIX locks belong to the whole process and would not
//! count two sessions of one worker twice. The kernel drops the locks when
//! the session's descriptor closes, so a crashed worker leaks nothing.
//! Modules sharing a lock file share its records, exactly as upstream.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A claimed connection slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ModuleSlot {
    /// The lock file descriptor holding our record lock; `None` when the module is unlimited.
    _lock: Option<File>,
}

/// Why a slot could not be claimed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClaimError {
    /// All `max connections` records are held.
    #[error("max connections ({0}) reached")]
    Full(u32),
    /// The lock file could not be opened or locked.
    #[error("failed to open lock file {path}: {source}")]
    LockFile { path: String, source: io::Error },
}

/// Claim one of `max` slots in `lock_file`; `max == 0` means unlimited.
pub(crate) fn claim(lock_file: &Path, max: u32) -> Result<ModuleSlot, ClaimError> {
    if max == 0 {
        return Ok(ModuleSlot { _lock: None });
    }
    let lock_err = |source| ClaimError::LockFile {
        path: lock_file.display().to_string(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(lock_file)
        .map_err(lock_err)?;
    for record in 0..max {
        match try_lock_record(&file, record) {
            Ok(true) => return Ok(ModuleSlot { _lock: Some(file) }),
            Ok(false) => continue,
            Err(e) => return Err(lock_err(e)),
        }
    }
    Err(ClaimError::Full(max))
}

/// Try a write lock on record `index` (4 bytes at `index * 4`).
fn try_lock_record(file: &File, index: u32) -> io::Result<bool> {
    // SAFETY: libc::flock is plain data; every field we rely on is set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as i16;
    lock.l_whence = libc::SEEK_SET as i16;
    lock.l_start = i64::from(index) * 4;
    lock.l_len = 4;
    lock.l_pid = 0; // required by F_OFD_SETLK
    match nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_OFD_SETLK(&lock)) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EACCES) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_open_file_description() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let a = claim(&path, 2).unwrap();
        let _b = claim(&path, 2).unwrap();
        assert!(matches!(claim(&path, 2), Err(ClaimError::Full(2))));
        drop(a);
        let _c = claim(&path, 2).expect("a freed slot is reusable");
        assert!(claim(&path, 0).is_ok(), "0 means unlimited");
    }

    #[test]
    fn unopenable_lock_file_is_reported() {
        let err = claim(Path::new("/nonexistent-dir/x.lock"), 1).unwrap_err();
        assert!(matches!(err, ClaimError::LockFile { .. }));
    }
}
