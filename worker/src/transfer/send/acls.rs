//! `-A` on a pull: each entry's POSIX ACLs in the file list, as upstream's
//! sender puts them there (`get_acl` and `send_acl` in acls.c).
//!
//! - **Read.** The access ACL of every non-symlink (devices and specials
//!   only when they are carried), and a directory's default ACL, from the
//!   kernel's `system.posix_acl_*` attributes through the module root. A
//!   file without an access ACL has the one its mode implies; a missing
//!   default ACL is empty; a file system without ACLs reads as the mode.
//!   In a `fake super` module they come from rsync's own
//!   `user.rsync.%aacl` / `%dacl` attributes instead, as upstream's.
//! - **Strip.** What the mode already says is left out of the access ACL
//!   (owner and other, and the group entry unless a mask hides it).
//! - **Send.** An ACL equal to one sent before goes as its index; a new one
//!   as flags, the entries present and the named users and groups. Names
//!   go inline with incremental recursion, else in the id lists after the
//!   file list (which then travel even without `-o`/`-g`).
//!
//! Pushes (`-A` into a module) receive them in `receive/meta/`; the
//! model both share is `flist/acl.rs`.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use crate::transfer::flist::acl::*;
use crate::transfer::flist::ids::IdKind;
use crate::transfer::fs::fake_super::proc_path;
use crate::transfer::fs::module_root::ModuleRoot;

/// An ACL that could not be read: which kind (upstream's name for it),
/// and why.
#[derive(Debug)]
pub struct AclReadError {
    pub kind: &'static str,
    pub err: io::Error,
}

impl AclReadError {
    /// What the client is told, in upstream 3.5's words; `None` for a
    /// malformed fake-super record, which upstream leaves out silently.
    pub fn message(&self, shown: &str) -> Option<String> {
        self.err.raw_os_error()?;
        Some(oxrsyncd_protocol::message::rsyserr(
            &format!("get_acl: xacl_get({shown}, {})", self.kind),
            &self.err,
        ))
    }
}

/// One entry's ACLs, read and not yet sent.
#[derive(Debug)]
pub struct EntryAcls {
    access: RsyncAcl,
    /// Directories only.
    default: Option<RsyncAcl>,
}

/// The session's ACL lists: what was sent, by index, in both kinds.
pub struct AclSender {
    access_sent: HashMap<RsyncAcl, usize>,
    default_sent: HashMap<RsyncAcl, usize>,
    /// Read the `fake super` stand-ins instead of the kernel's ACLs.
    fake_super: bool,
    /// `-D` / `--specials`: those entries' ACLs are read too.
    devices: bool,
    specials: bool,
    /// Names go inline (incremental recursion).
    names_inline: bool,
}

impl AclSender {
    pub fn new(fake_super: bool, devices: bool, specials: bool, names_inline: bool) -> AclSender {
        AclSender {
            access_sent: HashMap::new(),
            default_sent: HashMap::new(),
            fake_super,
            devices,
            specials,
            names_inline,
        }
    }

    /// Whether an entry of type `mode` carries ACLs at all (not symlinks).
    pub fn carries(mode: u32) -> bool {
        mode & libc::S_IFMT != libc::S_IFLNK
    }

    /// Read the ACLs of `rel`, listed with `mode` (upstream's get_acl).
    /// `Err`: they could not be read (upstream leaves the file out).
    pub fn read_entry(&self, root: &ModuleRoot, rel: &Path, mode: u32) -> Result<EntryAcls, AclReadError> {
        let kind = mode & libc::S_IFMT;
        let read = match kind {
            libc::S_IFREG | libc::S_IFDIR => true,
            libc::S_IFCHR | libc::S_IFBLK => self.devices,
            _ => self.specials,
        };
        let is_dir = kind == libc::S_IFDIR;
        if !read {
            return Ok(EntryAcls {
                access: RsyncAcl::empty(),
                default: is_dir.then(RsyncAcl::empty),
            });
        }
        let failed = |kind| move |err| AclReadError { kind, err };
        let fd = root
            .resolve_fd(rel, libc::O_PATH | libc::O_NOFOLLOW)
            .map_err(failed("ACL_TYPE_ACCESS"))?;
        let path = proc_path(&fd);
        let access = self.read_one(&path, true, mode).map_err(failed("ACL_TYPE_ACCESS"))?;
        let default = if is_dir {
            Some(self.read_one(&path, false, mode).map_err(failed("ACL_TYPE_DEFAULT"))?)
        } else {
            None
        };
        Ok(EntryAcls { access, default })
    }

    fn read_one(&self, path: &str, access: bool, mode: u32) -> io::Result<RsyncAcl> {
        let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed ACL attribute");
        if self.fake_super {
            let name = if access { FAKE_ACCESS_XATTR } else { FAKE_DEFAULT_XATTR };
            return match xattr::get_deref(path, name) {
                Ok(Some(value)) => RsyncAcl::from_fake_super(&value, mode).ok_or_else(malformed),
                Ok(None) => Ok(RsyncAcl::empty()),
                Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => Ok(RsyncAcl::empty()),
                Err(e) => Err(e),
            };
        }
        let name = if access { ACCESS_XATTR } else { DEFAULT_XATTR };
        match xattr::get_deref(path, name) {
            Ok(Some(value)) if !value.is_empty() => RsyncAcl::from_xattr(&value).ok_or_else(malformed),
            // No ACL of its own: the mode's (access), none (default); the
            // same where the file system has no ACLs.
            Ok(_) => Ok(if access { RsyncAcl::from_mode(mode) } else { RsyncAcl::empty() }),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::ENOSYS)) => {
                Ok(if access { RsyncAcl::from_mode(mode) } else { RsyncAcl::empty() })
            }
            Err(e) => Err(e),
        }
    }

    /// Append an entry's ACLs to the list (upstream's send_acl), after the
    /// entry itself. `name` records an id for the id lists and returns its
    /// name when it is new and names are looked up.
    pub fn send(&mut self, acls: EntryAcls, mode: u32, name: &mut dyn FnMut(IdKind, u32) -> Option<Vec<u8>>, out: &mut Vec<u8>) {
        let mut access = acls.access;
        access.strip_perms(mode);
        Self::send_one(&mut self.access_sent, access, self.names_inline, name, out);
        if mode & libc::S_IFMT == libc::S_IFDIR {
            let default = acls.default.unwrap_or_else(RsyncAcl::empty);
            Self::send_one(&mut self.default_sent, default, self.names_inline, name, out);
        }
    }

    /// upstream's send_rsync_acl.
    fn send_one(
        sent: &mut HashMap<RsyncAcl, usize>,
        acl: RsyncAcl,
        names_inline: bool,
        name: &mut dyn FnMut(IdKind, u32) -> Option<Vec<u8>>,
        out: &mut Vec<u8>,
    ) {
        if let Some(&index) = sent.get(&acl) {
            put_varint(out, index as u32 + 1);
            return;
        }
        put_varint(out, 0);
        let mut flags = 0u8;
        for (present, bit) in [
            (acl.user_obj != NO_ENTRY, XMIT_USER_OBJ),
            (acl.group_obj != NO_ENTRY, XMIT_GROUP_OBJ),
            (acl.mask_obj != NO_ENTRY, XMIT_MASK_OBJ),
            (acl.other_obj != NO_ENTRY, XMIT_OTHER_OBJ),
            (!acl.names.is_empty(), XMIT_NAME_LIST),
        ] {
            if present {
                flags |= bit;
            }
        }
        out.push(flags);
        for (bit, value) in [
            (XMIT_USER_OBJ, acl.user_obj),
            (XMIT_GROUP_OBJ, acl.group_obj),
            (XMIT_MASK_OBJ, acl.mask_obj),
            (XMIT_OTHER_OBJ, acl.other_obj),
        ] {
            if flags & bit != 0 {
                put_varint(out, u32::from(value));
            }
        }
        if flags & XMIT_NAME_LIST != 0 {
            put_varint(out, acl.names.len() as u32);
            for &(id, access) in &acl.names {
                let is_user = access & NAME_IS_USER != 0;
                let mut xbits = (access & !NAME_IS_USER) << 2;
                let kind = if is_user {
                    xbits |= XFLAG_NAME_IS_USER;
                    IdKind::User
                } else {
                    IdKind::Group
                };
                let known = name(kind, id);
                put_varint(out, id);
                match known.filter(|_| names_inline) {
                    Some(n) => {
                        let n = &n[..n.len().min(255)];
                        put_varint(out, xbits | XFLAG_NAME_FOLLOWS);
                        out.push(n.len() as u8);
                        out.extend_from_slice(n);
                    }
                    None => put_varint(out, xbits),
                }
            }
        }
        let index = sent.len();
        sent.insert(acl, index);
    }
}

/// rsync's varint (upstream write_varint) of a 32-bit value.
fn put_varint(out: &mut Vec<u8>, x: u32) {
    crate::transfer::flist::wire30::put_varint(out, x as i32);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xattr_value(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut v = XATTR_VERSION.to_le_bytes().to_vec();
        for &(tag, perm, id) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&id.to_le_bytes());
        }
        v
    }

    /// The kernel's format unpacks into rsync's, named entries users first.
    #[test]
    fn unpacks_the_kernel_format() {
        let u = u32::MAX;
        let v = xattr_value(&[
            (TAG_USER_OBJ, 6, u),
            (TAG_USER, 4, 1000),
            (TAG_GROUP_OBJ, 4, u),
            (TAG_GROUP, 5, 7),
            (TAG_MASK, 5, u),
            (TAG_OTHER, 0, u),
        ]);
        let acl = RsyncAcl::from_xattr(&v).unwrap();
        assert_eq!((acl.user_obj, acl.group_obj, acl.mask_obj, acl.other_obj), (6, 4, 5, 0));
        assert_eq!(acl.names, [(1000, 4 | NAME_IS_USER), (7, 5)]);
        assert_eq!(RsyncAcl::from_xattr(&v[..7]), None);
    }

    /// What the mode says is stripped, as upstream strips it.
    #[test]
    fn strips_what_the_mode_says() {
        let mut plain = RsyncAcl::from_mode(0o640);
        plain.strip_perms(0o640);
        assert_eq!(plain, RsyncAcl::empty());
        let mut masked = RsyncAcl {
            names: vec![(1000, 4 | NAME_IS_USER)],
            user_obj: 6,
            group_obj: 4,
            mask_obj: 5,
            other_obj: 0,
        };
        // The mode's group bits are the mask.
        masked.strip_perms(0o650);
        assert_eq!(
            (masked.user_obj, masked.group_obj, masked.mask_obj, masked.other_obj),
            (NO_ENTRY, 4, NO_ENTRY, NO_ENTRY)
        );
    }

    /// A plain file's ACL goes as an empty literal once, then by index;
    /// names follow inline only when asked and only when new.
    #[test]
    fn sends_literals_then_indexes() {
        let mut s = AclSender::new(false, false, false, true);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let mut name = |kind: IdKind, id: u32| {
            if seen.contains(&(kind, id)) {
                return None;
            }
            seen.push((kind, id));
            Some(b"bob".to_vec())
        };
        let plain = || EntryAcls {
            access: RsyncAcl::from_mode(0o644),
            default: None,
        };
        s.send(plain(), libc::S_IFREG | 0o644, &mut name, &mut out);
        assert_eq!(out, [0, 0]);
        out.clear();
        s.send(plain(), libc::S_IFREG | 0o644, &mut name, &mut out);
        assert_eq!(out, [1]);
        out.clear();
        let named = || EntryAcls {
            access: RsyncAcl {
                names: vec![(1000, 4 | NAME_IS_USER)],
                ..RsyncAcl::from_mode(0o640)
            },
            default: Some(RsyncAcl::empty()),
        };
        s.send(named(), libc::S_IFDIR | 0o740, &mut name, &mut out);
        // A new access ACL: without a mask the owner, group and other
        // entries all go (the mode has them), so only the name list is
        // left, with "bob" inline; then the default ACL, empty and new.
        let mut expected = vec![0, XMIT_NAME_LIST, 1];
        crate::transfer::flist::wire30::put_varint(&mut expected, 1000);
        expected.extend_from_slice(&[((4 << 2) | XFLAG_NAME_IS_USER | XFLAG_NAME_FOLLOWS) as u8, 3]);
        expected.extend_from_slice(b"bob");
        expected.extend_from_slice(&[0, 0]);
        assert_eq!(out, expected);
        out.clear();
        s.send(named(), libc::S_IFDIR | 0o740, &mut name, &mut out);
        assert_eq!(out, [2, 1], "both by index");
    }
}
