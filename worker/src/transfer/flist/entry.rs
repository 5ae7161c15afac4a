//! The file-list entry model shared by the encoder, decoder and sorter.

use crate::transfer::flist::xmit;

/// One file-list entry: what the sender knows about a path and what the
/// wire can carry for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileEntry {
    /// Path as it appears in the list, relative to the transfer root: ".",
    /// "dir", "dir/file" (bytes, not necessarily UTF-8).
    pub name: Vec<u8>,
    /// Full st_mode (type bits + permissions).
    pub mode: u32,
    /// st_size; upstream sends 0 for devices and specials.
    pub size: u64,
    /// Modification time, seconds (below protocol 30 only 32 unsigned bits travel).
    pub mtime: i64,
    /// Nanoseconds of the mtime; travels only from protocol 31.
    pub mtime_nsec: u32,
    /// `-U`: the access time (non-directories; 0 otherwise).
    pub atime: i64,
    /// Owner ids (sent with -o / -g).
    pub uid: u32,
    pub gid: u32,
    /// Device numbers (sent for devices with -D).
    pub rdev_major: u32,
    pub rdev_minor: u32,
    /// Symlink target (sent only with preserve_links).
    pub link_target: Option<Vec<u8>>,
    /// For -H: device and inode (the encoder decides leaders/followers
    /// itself). Below protocol 30 the decoder fills them from the wire.
    pub dev: u64,
    pub ino: u64,
    /// For -H: only entries with nlink > 1 are hard-link candidates (>= 28).
    pub nlink: u64,
    /// For -c: the whole-file checksum (length = the negotiated checksum's length).
    pub checksum: Option<Vec<u8>>,
    /// The sender's st_ctime (seconds, nanoseconds); never on the wire.
    /// With dev, ino, size and mtime it tells the `-c` checksum cache
    /// that the file is still the one it hashed.
    pub ctime: i64,
    pub ctime_nsec: u32,
    /// XMIT_TOP_DIR: a directory named on the command line (upstream FLAG_TOP_DIR).
    pub top_dir: bool,
    /// Directories, protocol >= 30: the directory's contents are *not* part
    /// of the transfer (upstream's lack of FLAG_CONTENT_DIR, e.g. `-d`
    /// without `-r`). Recursive transfers leave this false.
    pub no_content_dir: bool,
    /// `-X` (sender): the index of the attribute set sent after this entry
    /// (`xattrs.rs`), which the client's requests refer to.
    pub xattr_set: Option<u32>,
    /// `-A` (receiver): the indexes of the entry's access ACL and, for a
    /// directory, its default ACL in the session's received ACL lists.
    pub acl_access: Option<u32>,
    pub acl_default: Option<u32>,
}

impl FileEntry {
    /// A fresh entry with the given name and mode; everything else zero.
    pub fn new(name: impl Into<Vec<u8>>, mode: u32) -> Self {
        FileEntry {
            name: name.into(),
            mode,
            ..Default::default()
        }
    }
    /// Roughly what keeping this entry costs in memory (the struct and its
    /// heap parts), for the session's budget.
    pub fn memory_cost(&self) -> usize {
        std::mem::size_of::<FileEntry>()
            + self.name.len()
            + self.link_target.as_ref().map_or(0, Vec::len)
            + self.checksum.as_ref().map_or(0, Vec::len)
    }
    /// Type tests on the mode's type bits.
    pub fn is_dir(&self) -> bool {
        xmit::is_dir(self.mode)
    }
    pub fn is_reg(&self) -> bool {
        xmit::is_reg(self.mode)
    }
    pub fn is_symlink(&self) -> bool {
        xmit::is_lnk(self.mode)
    }
    pub fn is_device(&self) -> bool {
        xmit::is_device(self.mode)
    }
    pub fn is_special(&self) -> bool {
        xmit::is_special(self.mode)
    }
}
