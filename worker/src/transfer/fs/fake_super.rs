//! `fake super = yes`: a module that keeps what only root could set (owner,
//! group, special permission bits, devices, fifos, symlinks) in an extended
//! attribute instead, so an unprivileged module user can hold a faithful
//! backup and give it back. Upstream's representation, so trees written by
//! stock `rsync --daemon` and by us read the same:
//!
//! - `user.rsync.%stat` holds `"%o %u,%u %u:%u"`: the full mode (type and
//!   permissions), the device's major,minor (0,0 for others), uid:gid;
//! - the file itself keeps the permission bits plus owner read/write (rwx
//!   for directories), so the module user can always use it;
//! - a symlink is a regular file holding the link's target, a device or
//!   special file an empty regular file (Linux keeps no user xattrs on
//!   symlinks or nodes);
//! - a file whose real mode, owner and group already say it all has no
//!   attribute.
//!
//! Reading goes through an `O_PATH` descriptor of the file (its
//! `/proc/self/fd` name), so no path is walked twice.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::transfer::fs::module_dir::ModuleDir;
use crate::transfer::fs::module_root::ModuleRoot;

/// The attribute's name (upstream's XSTAT_ATTR on Linux).
pub(crate) const STAT_XATTR: &str = "user.rsync.%stat";

/// Longest value read (upstream reads into a 256-byte buffer).
const MAX_VALUE: usize = 255;

/// What the attribute says a file really is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FakeStat {
    /// Type and permission bits.
    pub mode: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub uid: u32,
    pub gid: u32,
}

impl FakeStat {
    /// Parse upstream's `"%o %d,%d %d:%d"`.
    pub(crate) fn parse(text: &[u8]) -> Option<FakeStat> {
        let text = std::str::from_utf8(text).ok()?.trim_end_matches('\0');
        let mut words = text.split(' ');
        let mode = u32::from_str_radix(words.next()?, 8).ok()?;
        let (major, minor) = words.next()?.split_once(',')?;
        let (uid, gid) = words.next()?.split_once(':')?;
        if words.next().is_some() {
            return None;
        }
        Some(FakeStat {
            mode,
            rdev_major: major.parse().ok()?,
            rdev_minor: minor.parse().ok()?,
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
        })
    }

    /// The attribute's text.
    pub(crate) fn to_text(self) -> String {
        format!("{:o} {},{} {}:{}", self.mode, self.rdev_major, self.rdev_minor, self.uid, self.gid)
    }

    fn file_type(self) -> u32 {
        self.mode & libc::S_IFMT
    }
}

/// Why a stored attribute could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FakeStatError {
    #[error("failed to read xattr {STAT_XATTR}: {0}")]
    Io(#[from] io::Error),
    #[error("Corrupt {STAT_XATTR} xattr: \"{0}\"")]
    Corrupt(String),
}

/// The kernel's name for what `fd` refers to, for the xattr calls that
/// take a path (an `O_PATH` descriptor, which needs no read permission
/// and works for symlinks, has no other way in). `-X` uses it too.
pub(crate) fn proc_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The attribute of the file `fd` names (`O_PATH` is enough), if any.
fn read_fd(fd: &OwnedFd) -> Result<Option<FakeStat>, FakeStatError> {
    let path = proc_path(fd);
    let Some(value) = xattr::get_deref(&path, STAT_XATTR)? else {
        return Ok(None);
    };
    if value.len() > MAX_VALUE {
        return Err(FakeStatError::Io(io::Error::from_raw_os_error(libc::ERANGE)));
    }
    FakeStat::parse(&value)
        .map(Some)
        .ok_or_else(|| FakeStatError::Corrupt(String::from_utf8_lossy(&value).into_owned()))
}

/// A file as a `fake super` module sees it: the real metadata with the
/// attribute's type, permissions, owner and device on top. Outside such
/// modules `fake` is always None and this is the plain metadata.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// The real `lstat`.
    pub meta: Metadata,
    /// What the attribute says, if the file has one.
    pub fake: Option<FakeStat>,
}

impl std::ops::Deref for Seen {
    type Target = Metadata;
    fn deref(&self) -> &Metadata {
        &self.meta
    }
}

impl Seen {
    /// The plain metadata (no module attribute).
    pub(crate) fn real(meta: Metadata) -> Seen {
        Seen { meta, fake: None }
    }

    /// `lstat` of `rel`, with the attribute folded in when `fake_super`
    /// (only regular files and directories carry one, as upstream reads it).
    pub(crate) fn look(root: &ModuleRoot, rel: &Path, fake_super: bool) -> io::Result<Seen> {
        if !fake_super {
            return root.lstat(rel).map(Seen::real);
        }
        let fd = root.resolve_fd(rel, libc::O_PATH | libc::O_NOFOLLOW)?;
        let meta = std::fs::File::from(fd.try_clone()?).metadata()?;
        let fake = if meta.is_file() || meta.is_dir() {
            match read_fd(&fd) {
                Ok(fake) => fake,
                Err(e) => {
                    tracing::warn!("{}: {e}; its real metadata is used", rel.display());
                    None
                }
            }
        } else {
            None
        };
        Ok(Seen { meta, fake })
    }

    fn file_type(&self) -> u32 {
        self.fake.map_or(self.meta.mode() & libc::S_IFMT, FakeStat::file_type)
    }

    /// Type and permission bits.
    pub(crate) fn mode(&self) -> u32 {
        self.fake.map_or(self.meta.mode(), |f| f.mode)
    }
    pub(crate) fn uid(&self) -> u32 {
        self.fake.map_or(self.meta.uid(), |f| f.uid)
    }
    pub(crate) fn gid(&self) -> u32 {
        self.fake.map_or(self.meta.gid(), |f| f.gid)
    }
    /// The device number (major, minor).
    pub(crate) fn rdev(&self) -> (u32, u32) {
        match self.fake {
            Some(f) => (f.rdev_major, f.rdev_minor),
            None => (libc::major(self.meta.rdev()), libc::minor(self.meta.rdev())),
        }
    }
    pub(crate) fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
    pub(crate) fn is_dir(&self) -> bool {
        self.meta.is_dir()
    }
    pub(crate) fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }
    /// A symlink kept as a regular file holding its target.
    pub(crate) fn is_fake_symlink(&self) -> bool {
        self.meta.is_file() && self.is_symlink()
    }
    /// Device, fifo or socket (real or kept as an empty file).
    pub(crate) fn is_special(&self) -> bool {
        let ft = self.meta.file_type();
        self.fake
            .is_some_and(|f| matches!(f.file_type(), libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO | libc::S_IFSOCK))
            || ft.is_char_device()
            || ft.is_block_device()
            || ft.is_fifo()
            || ft.is_socket()
    }
    /// The file type bits, real or from the attribute.
    pub(crate) fn type_bits(&self) -> u32 {
        self.file_type()
    }
}

/// The target a kept symlink holds (the file's content).
pub(crate) fn read_fake_link(root: &ModuleRoot, rel: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut target = Vec::new();
    root.open_read(rel)?.take(libc::PATH_MAX as u64).read_to_end(&mut target)?;
    Ok(target)
}

/// What a `fake super` file should record (see [`record`]); None keeps
/// what it records now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted {
    /// The list's file type bits.
    pub file_type: u32,
    pub perms: Option<u32>,
    pub rdev: (u32, u32),
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Record what `name` in `dir` should be (upstream's `set_stat_xattr`):
/// the file keeps the permission bits plus owner access, and the
/// attribute holds what the file itself cannot show, or is removed when
/// the file shows it all.
pub(crate) fn record(dir: &ModuleDir, name: &OsStr, wanted: Wanted) -> io::Result<()> {
    if dir.is_dry_run() {
        return Ok(());
    }
    let fd = dir.open_path(name)?;
    let real = std::fs::File::from(fd.try_clone()?).metadata()?;
    if !real.is_file() && !real.is_dir() {
        // A real node or link (made before the module was fake): nothing to keep.
        return Ok(());
    }
    let current = read_fd(&fd).unwrap_or(None);
    let is_device = matches!(wanted.file_type, libc::S_IFCHR | libc::S_IFBLK);
    let (rdev_major, rdev_minor) = if is_device { wanted.rdev } else { (0, 0) };
    let want = FakeStat {
        mode: wanted.file_type | (wanted.perms.unwrap_or_else(|| current.map_or(real.mode(), |c| c.mode)) & 0o7777),
        rdev_major,
        rdev_minor,
        uid: wanted.uid.unwrap_or_else(|| current.map_or(real.uid(), |c| c.uid)),
        gid: wanted.gid.unwrap_or_else(|| current.map_or(real.gid(), |c| c.gid)),
    };
    let owner_access = if real.is_dir() { 0o700 } else { 0o600 };
    let kept = (real.mode() & libc::S_IFMT) | (want.mode & 0o777) | owner_access;
    if real.mode() & (libc::S_IFMT | 0o7777) != kept {
        dir.chmod(name, kept & 0o7777)?;
    }
    let path = proc_path(&fd);
    if kept == want.mode && !is_device && real.uid() == want.uid && real.gid() == want.gid {
        if current.is_some() {
            xattr::remove_deref(&path, STAT_XATTR)?;
        }
        return Ok(());
    }
    if current != Some(want) {
        xattr::set_deref(&path, STAT_XATTR, want.to_text().as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attribute_text_is_upstreams() {
        let f = FakeStat {
            mode: 0o104755,
            rdev_major: 0,
            rdev_minor: 0,
            uid: 1000,
            gid: 100,
        };
        assert_eq!(f.to_text(), "104755 0,0 1000:100");
        assert_eq!(FakeStat::parse(b"104755 0,0 1000:100"), Some(f));
        assert_eq!(
            FakeStat::parse(b"20644 1,3 0:0").map(|f| (f.rdev_major, f.rdev_minor)),
            Some((1, 3))
        );
        for bad in [&b""[..], b"644", b"644 0,0", b"644 0 0:0", b"x 0,0 0:0", b"644 0,0 0:0 extra"] {
            assert_eq!(FakeStat::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
