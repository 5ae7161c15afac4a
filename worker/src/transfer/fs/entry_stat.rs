//! What the file-list walker knows of one entry: the fields of stat(2) that
//! reach the list, whether they came from `fstatat(2)` on an open directory
//! (the per-entry scan, one syscall) or from a [`std::fs::Metadata`].

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

/// One entry's stat(2) fields, as the walker uses them.
#[derive(Debug, Clone, Copy)]
pub struct EntryStat {
    /// st_mode: type and permission bits.
    mode: u32,
    /// st_size.
    size: u64,
    /// st_mtime, seconds.
    mtime: i64,
    /// st_mtime, nanoseconds.
    mtime_nsec: i64,
    /// st_atime, seconds (`-U`).
    atime: i64,
    /// st_uid.
    uid: u32,
    /// st_gid.
    gid: u32,
    /// st_rdev (devices).
    rdev: u64,
    /// st_dev (`-x`, hard links).
    dev: u64,
    /// st_ino (hard links).
    ino: u64,
    /// st_nlink (hard links).
    nlink: u64,
    /// st_ctime, seconds and nanoseconds (the `-c` checksum cache: a
    /// change of content or permissions moves it).
    ctime: i64,
    ctime_nsec: i64,
}

impl EntryStat {
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }

    pub fn mode(&self) -> u32 {
        self.mode
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn mtime(&self) -> i64 {
        self.mtime
    }

    pub fn mtime_nsec(&self) -> i64 {
        self.mtime_nsec
    }

    pub fn atime(&self) -> i64 {
        self.atime
    }

    pub fn uid(&self) -> u32 {
        self.uid
    }

    pub fn gid(&self) -> u32 {
        self.gid
    }

    pub fn rdev(&self) -> u64 {
        self.rdev
    }

    pub fn dev(&self) -> u64 {
        self.dev
    }

    pub fn ino(&self) -> u64 {
        self.ino
    }

    pub fn nlink(&self) -> u64 {
        self.nlink
    }

    pub fn ctime(&self) -> i64 {
        self.ctime
    }

    pub fn ctime_nsec(&self) -> i64 {
        self.ctime_nsec
    }
}

impl From<&Metadata> for EntryStat {
    fn from(m: &Metadata) -> Self {
        EntryStat {
            mode: m.mode(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            atime: m.atime(),
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev(),
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
        }
    }
}

impl From<Metadata> for EntryStat {
    fn from(m: Metadata) -> Self {
        EntryStat::from(&m)
    }
}

impl From<&libc::stat> for EntryStat {
    // The libc field widths differ between targets; the casts widen.
    #[allow(clippy::unnecessary_cast)]
    fn from(st: &libc::stat) -> Self {
        EntryStat {
            mode: st.st_mode as u32,
            size: st.st_size as u64,
            mtime: st.st_mtime as i64,
            mtime_nsec: st.st_mtime_nsec as i64,
            atime: st.st_atime as i64,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            rdev: st.st_rdev as u64,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            nlink: st.st_nlink as u64,
            ctime: st.st_ctime as i64,
            ctime_nsec: st.st_ctime_nsec as i64,
        }
    }
}
