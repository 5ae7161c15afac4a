//! `-A` on a push against the module's files (upstream's `get_acl` on the
//! receiving side, `set_acl` / `set_rsync_acl` / `change_sacl_perms`): a
//! file's ACLs read through the `/proc/self/fd` name of a descriptor the
//! caller holds, compared with the received ones the way upstream does
//! (an access ACL only by what the mode cannot say), and written as the
//! kernel's `system.posix_acl_*` attributes with the new mode's bits in
//! them, or in a `fake super` module as rsync's own `user.rsync.%aacl` /
//! `%dacl` records, which hold the received ACL as it came.

use std::io;

use crate::transfer::flist::acl::{
    RsyncAcl, ACCESS_XATTR, DEFAULT_XATTR, FAKE_ACCESS_XATTR, FAKE_DEFAULT_XATTR, NAME_IS_USER, NO_ENTRY, TAG_GROUP, TAG_GROUP_OBJ,
    TAG_MASK, TAG_OTHER, TAG_USER, TAG_USER_OBJ, XATTR_VERSION,
};

/// The id of an entry that names nobody (ACL_UNDEFINED_ID).
const UNDEFINED_ID: u32 = u32::MAX;

/// A file's ACL of one kind as the receiving side reads it: the kernel's
/// (the mode's own where it has none), or a `fake super` record.
pub(crate) fn read(path: &str, default: bool, mode: u32, fake_super: bool) -> io::Result<RsyncAcl> {
    let unsupported = |e: &io::Error| matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::ENOSYS));
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed ACL attribute");
    if fake_super {
        let name = if default { FAKE_DEFAULT_XATTR } else { FAKE_ACCESS_XATTR };
        return match xattr::get_deref(path, name) {
            Ok(Some(value)) => RsyncAcl::from_fake_super(&value, mode).ok_or_else(malformed),
            Ok(None) => Ok(RsyncAcl::empty()),
            Err(e) if unsupported(&e) => Ok(RsyncAcl::empty()),
            Err(e) => Err(e),
        };
    }
    let plain = || if default { RsyncAcl::empty() } else { RsyncAcl::from_mode(mode) };
    match xattr::get_deref(path, if default { DEFAULT_XATTR } else { ACCESS_XATTR }) {
        Ok(Some(value)) if !value.is_empty() => RsyncAcl::from_xattr(&value).ok_or_else(malformed),
        Ok(_) => Ok(plain()),
        Err(e) if unsupported(&e) => Ok(plain()),
        Err(e) => Err(e),
    }
}

/// Whether a file's full access ACL `ours` says what the received,
/// condensed `theirs` says beyond the mode `mode` (upstream's
/// `rsync_acl_equal_enough`).
pub(crate) fn access_equal(ours: &RsyncAcl, theirs: &RsyncAcl, mode: u32) -> bool {
    if (ours.mask_obj ^ theirs.mask_obj) & NO_ENTRY != 0 {
        return false;
    }
    if ours.mask_obj != NO_ENTRY {
        let group = if theirs.group_obj == NO_ENTRY {
            ((mode >> 3) & 7) as u8
        } else {
            theirs.group_obj
        };
        if ours.group_obj != group {
            return false;
        }
    }
    ours.names == theirs.names
}

/// The kernel's attribute value for `acl` (an access ACL gets the bits of
/// `mode` where upstream's `change_sacl_perms` puts them).
pub(crate) fn kernel_value(acl: &RsyncAcl, access_mode: Option<u32>) -> Vec<u8> {
    let bits = |v: u8| v & !NO_ENTRY;
    let (user, group, mask, other) = match access_mode {
        Some(mode) => {
            let g = ((mode >> 3) & 7) as u8;
            (
                ((mode >> 6) & 7) as u8,
                if acl.group_obj == NO_ENTRY { g } else { acl.group_obj },
                (acl.mask_obj != NO_ENTRY).then_some(g),
                (mode & 7) as u8,
            )
        }
        None => (
            bits(acl.user_obj),
            bits(acl.group_obj),
            (acl.mask_obj != NO_ENTRY).then_some(acl.mask_obj),
            bits(acl.other_obj),
        ),
    };
    let mut names = acl.names.clone();
    names.sort_by_key(|&(id, access)| (access & NAME_IS_USER == 0, id));
    let mut out = XATTR_VERSION.to_le_bytes().to_vec();
    let mut push = |tag: u16, perm: u32, id: u32| {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&((perm & 7) as u16).to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    };
    push(TAG_USER_OBJ, user.into(), UNDEFINED_ID);
    for &(id, access) in names.iter().filter(|(_, a)| a & NAME_IS_USER != 0) {
        push(TAG_USER, access, id);
    }
    push(TAG_GROUP_OBJ, group.into(), UNDEFINED_ID);
    for &(id, access) in names.iter().filter(|(_, a)| a & NAME_IS_USER == 0) {
        push(TAG_GROUP, access, id);
    }
    if let Some(mask) = mask {
        push(TAG_MASK, mask.into(), UNDEFINED_ID);
    }
    push(TAG_OTHER, other.into(), UNDEFINED_ID);
    out
}

/// A `fake super` record of `acl` as received (upstream's layout: four
/// 32-bit entries, then id and access pairs, little-endian).
pub(crate) fn fake_super_value(acl: &RsyncAcl) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 8 * acl.names.len());
    for v in [acl.user_obj, acl.group_obj, acl.mask_obj, acl.other_obj] {
        out.extend_from_slice(&u32::from(v).to_le_bytes());
    }
    for &(id, access) in &acl.names {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&access.to_le_bytes());
    }
    out
}

/// The mode whose bits go into an access ACL written while the file has
/// `old_mode` and is to get `mode`: upstream keeps group and other out
/// until the mode is set when a sticky bit comes on a directory or a
/// set-id bit goes off a file.
pub(crate) fn staged_mode(old_mode: u32, mode: u32, is_dir: bool) -> u32 {
    let hide = if is_dir {
        mode & libc::S_ISVTX != 0 && old_mode & libc::S_ISVTX == 0
    } else {
        (old_mode & libc::S_ISUID != 0 && mode & libc::S_ISUID == 0) || (old_mode & libc::S_ISGID != 0 && mode & libc::S_ISGID == 0)
    };
    if hide {
        mode & !0o077
    } else {
        mode
    }
}

/// What one file is to get: the received ACLs, and what it has.
pub(crate) struct AclChange<'a> {
    /// `/proc/self/fd` name of the file.
    pub(crate) path: &'a str,
    /// The file's mode now, and the mode it gets.
    pub(crate) old_mode: u32,
    pub(crate) new_mode: u32,
    pub(crate) is_dir: bool,
    pub(crate) fake_super: bool,
}

/// Which ACL failed to be read or written (upstream's names for the kinds).
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {err}")]
pub(crate) struct AclError {
    pub(crate) kind: &'static str,
    pub(crate) err: io::Error,
}

impl AclChange<'_> {
    /// Whether the file's ACLs differ from `access` / `default`, and, when
    /// `write`, make them equal (upstream's `set_acl`).
    pub(crate) fn apply(&self, access: Option<&RsyncAcl>, default: Option<&RsyncAcl>, write: bool) -> Result<bool, AclError> {
        let fail = |kind: &'static str| move |err| AclError { kind, err };
        let mut changed = false;
        if let Some(theirs) = access {
            let ours = read(self.path, false, self.old_mode, self.fake_super).map_err(fail("ACL_TYPE_ACCESS"))?;
            if !access_equal(&ours, theirs, self.new_mode) {
                changed = true;
                if write {
                    self.write_one(theirs, false).map_err(fail("ACL_TYPE_ACCESS"))?;
                }
            }
        }
        if let Some(theirs) = default.filter(|_| self.is_dir) {
            let ours = read(self.path, true, self.old_mode, self.fake_super).map_err(fail("ACL_TYPE_DEFAULT"))?;
            if ours != *theirs {
                changed = true;
                if write {
                    self.write_one(theirs, true).map_err(fail("ACL_TYPE_DEFAULT"))?;
                }
            }
        }
        Ok(changed)
    }

    fn write_one(&self, acl: &RsyncAcl, default: bool) -> io::Result<()> {
        let (name, value) = match (self.fake_super, default) {
            (true, true) if acl.user_obj == NO_ENTRY => return remove(self.path, FAKE_DEFAULT_XATTR),
            (false, true) if acl.user_obj == NO_ENTRY => return remove(self.path, DEFAULT_XATTR),
            (true, _) => (if default { FAKE_DEFAULT_XATTR } else { FAKE_ACCESS_XATTR }, fake_super_value(acl)),
            (false, true) => (DEFAULT_XATTR, kernel_value(acl, None)),
            (false, false) => {
                let mode = staged_mode(self.old_mode, self.new_mode, self.is_dir);
                (ACCESS_XATTR, kernel_value(acl, Some(mode)))
            }
        };
        xattr::set_deref(self.path, name, &value)
    }
}

/// Remove attribute `name`; one already gone is fine.
fn remove(path: &str, name: &str) -> io::Result<()> {
    match xattr::remove_deref(path, name) {
        Err(e) if e.raw_os_error() == Some(libc::ENODATA) => Ok(()),
        other => other,
    }
}
