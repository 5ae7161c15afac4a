//! The XMIT_* flag bits of a file-list entry header (upstream rsync.h), and
//! the st_mode type constants the list logic needs.

/// Directory named on the command line (also a filler bit for non-dirs).
pub(crate) const XMIT_TOP_DIR: u32 = 1 << 0;
/// Mode equals the previous entry's.
pub(crate) const XMIT_SAME_MODE: u32 = 1 << 1;
/// Protocol < 28 only: rdev equals the previous one.
pub(crate) const XMIT_SAME_RDEV_PRE28: u32 = 1 << 2;
/// Protocol >= 28: a second flag byte follows (1/2-byte flag form).
pub(crate) const XMIT_EXTENDED_FLAGS: u32 = 1 << 2;
/// uid equals the previous entry's (or uids are not sent).
pub(crate) const XMIT_SAME_UID: u32 = 1 << 3;
/// gid equals the previous entry's (or gids are not sent).
pub(crate) const XMIT_SAME_GID: u32 = 1 << 4;
/// A byte follows with the length shared with the previous name.
pub(crate) const XMIT_SAME_NAME: u32 = 1 << 5;
/// The name suffix length is a varint30 instead of a byte.
pub(crate) const XMIT_LONG_NAME: u32 = 1 << 6;
/// mtime equals the previous entry's.
pub(crate) const XMIT_SAME_TIME: u32 = 1 << 7;
/// Devices (protocol >= 28): major equals the previous one.
pub(crate) const XMIT_SAME_RDEV_MAJOR: u32 = 1 << 8;
/// Directories (protocol >= 30): contents are not part of the transfer.
pub(crate) const XMIT_NO_CONTENT_DIR: u32 = 1 << 8;
/// Part of a hard-link group.
pub(crate) const XMIT_HLINKED: u32 = 1 << 9;
/// Protocols 28-29: hard-link dev equals the previous one.
pub(crate) const XMIT_SAME_DEV_PRE30: u32 = 1 << 10;
/// Protocol >= 30 (inc_recurse): the user name follows the uid.
pub(crate) const XMIT_USER_NAME_FOLLOWS: u32 = 1 << 10;
/// Protocols 28-29: the rdev minor fits one byte.
pub(crate) const XMIT_RDEV_MINOR_8_PRE30: u32 = 1 << 11;
/// Protocol >= 30 (inc_recurse): the group name follows the gid.
pub(crate) const XMIT_GROUP_NAME_FOLLOWS: u32 = 1 << 11;
/// Protocol >= 30: first of a hard-link group (the leader).
pub(crate) const XMIT_HLINK_FIRST: u32 = 1 << 12;
/// With XMIT_EXTENDED_FLAGS alone: end of list carrying an io_error.
pub(crate) const XMIT_IO_ERROR_ENDLIST: u32 = 1 << 12;
/// Protocol >= 31: a varint of mtime nanoseconds follows.
pub(crate) const XMIT_MOD_NSEC: u32 = 1 << 13;
/// `-U`: the access time is the previous entry's.
pub(crate) const XMIT_SAME_ATIME: u32 = 1 << 14;

/// st_mode type mask and types (Linux values, which the wire uses).
pub(crate) const S_IFMT: u32 = 0o170000;
pub(crate) const S_IFSOCK: u32 = 0o140000;
pub(crate) const S_IFLNK: u32 = 0o120000;
pub(crate) const S_IFREG: u32 = 0o100000;
pub(crate) const S_IFBLK: u32 = 0o060000;
pub(crate) const S_IFDIR: u32 = 0o040000;
pub(crate) const S_IFCHR: u32 = 0o020000;
pub(crate) const S_IFIFO: u32 = 0o010000;

/// Largest nanosecond value upstream accepts on the wire.
pub(crate) const MAX_WIRE_NSEC: i32 = 999_999_999;

/// Directory?
pub(crate) fn is_dir(mode: u32) -> bool {
    mode & S_IFMT == S_IFDIR
}
/// Regular file?
pub(crate) fn is_reg(mode: u32) -> bool {
    mode & S_IFMT == S_IFREG
}
/// Symlink?
pub(crate) fn is_lnk(mode: u32) -> bool {
    mode & S_IFMT == S_IFLNK
}
/// Character or block device?
pub(crate) fn is_device(mode: u32) -> bool {
    matches!(mode & S_IFMT, S_IFCHR | S_IFBLK)
}
/// FIFO or socket (upstream IS_SPECIAL)?
pub(crate) fn is_special(mode: u32) -> bool {
    matches!(mode & S_IFMT, S_IFIFO | S_IFSOCK)
}
/// One of the seven real file types (upstream rejects anything else).
pub(crate) fn is_valid_type(mode: u32) -> bool {
    is_dir(mode) || is_reg(mode) || is_lnk(mode) || is_device(mode) || is_special(mode)
}

/// glibc's dev_t packing, used for the protocol < 28 rdev int.
pub(crate) fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    (mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & !0xff) << 12) | ((ma & !0xfff) << 32)
}
/// glibc major() of a packed dev_t.
pub(crate) fn dev_major(dev: u64) -> u32 {
    (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)) as u32
}
/// glibc minor() of a packed dev_t.
pub(crate) fn dev_minor(dev: u64) -> u32 {
    ((dev & 0xff) | ((dev >> 12) & !0xff)) as u32
}
