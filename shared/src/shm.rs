//! A memfd shared between the supervisor and its workers, mapped read-write:
//! the one piece of `unsafe` the session table and the scoreboard share.
//! The supervisor creates it (sized, zeroed); a worker maps the one it
//! inherited, refusing one of another size (another build's layout).

use std::ffi::CStr;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

/// A shared mapping of a whole memfd.
#[derive(Debug)]
pub struct SharedMemory {
    /// The memfd, kept so the supervisor can pass it on to new workers.
    fd: OwnedFd,
    /// Start of the mapping.
    base: NonNull<u8>,
    /// Its length: the memfd's size.
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every user reaches it only
// through atomics.
unsafe impl Send for SharedMemory {}
unsafe impl Sync for SharedMemory {}

impl SharedMemory {
    /// A fresh zeroed memfd of `len` bytes named `name` (the name shows in
    /// `/proc/PID/fd`), mapped.
    pub fn create(name: &CStr, len: usize) -> io::Result<SharedMemory> {
        let fd = memfd_create(name, MemFdCreateFlag::MFD_CLOEXEC)?;
        nix::unistd::ftruncate(&fd, len as i64)?;
        Self::map(fd, len)
    }

    /// Map an inherited memfd, which must be `len` bytes long.
    pub fn from_fd(fd: OwnedFd, len: usize, what: &str) -> io::Result<SharedMemory> {
        let actual = nix::sys::stat::fstat(fd.as_raw_fd())?.st_size as usize;
        if actual != len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} has the wrong size (a different oxrsyncd version?)"),
            ));
        }
        Self::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<SharedMemory> {
        let size = NonZeroUsize::new(len).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"))?;
        // SAFETY: a fresh shared mapping of a memfd of exactly `len` bytes;
        // unmapped in Drop, and its users only touch it through atomics.
        let ptr = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )?
        };
        Ok(SharedMemory { fd, base: ptr.cast(), len })
    }

    /// The memfd, to pass to a worker.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The start of the mapping (valid for `len` bytes while `self` lives).
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: unmapping the region mapped in `map`; no reference outlives self.
        let _ = unsafe { munmap(self.base.cast(), self.len) };
    }
}
