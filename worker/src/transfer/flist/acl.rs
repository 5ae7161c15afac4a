//! The POSIX ACL model the file list carries with `-A` (upstream's
//! `rsync_acl`), the wire's flag bits and the kernel's attribute format,
//! shared by the sending side (`send/acls.rs`) and the receiving side
//! (`receive/meta/`).

/// An entry not present (upstream's NO_ENTRY).
pub(crate) const NO_ENTRY: u8 = 0x80;
/// On a named entry's access bits: the name is a user's.
pub(crate) const NAME_IS_USER: u32 = 1 << 31;
/// Which parts of an ACL follow on the wire.
pub(crate) const XMIT_USER_OBJ: u8 = 1 << 0;
pub(crate) const XMIT_GROUP_OBJ: u8 = 1 << 1;
pub(crate) const XMIT_MASK_OBJ: u8 = 1 << 2;
pub(crate) const XMIT_OTHER_OBJ: u8 = 1 << 3;
pub(crate) const XMIT_NAME_LIST: u8 = 1 << 4;
/// Low bits of a named entry's shifted access value.
pub(crate) const XFLAG_NAME_FOLLOWS: u32 = 1;
pub(crate) const XFLAG_NAME_IS_USER: u32 = 2;

/// The kernel's attribute names and entry tags (linux/posix_acl_xattr.h).
pub(crate) const ACCESS_XATTR: &str = "system.posix_acl_access";
pub(crate) const DEFAULT_XATTR: &str = "system.posix_acl_default";
pub(crate) const XATTR_VERSION: u32 = 2;
pub(crate) const TAG_USER_OBJ: u16 = 0x01;
pub(crate) const TAG_USER: u16 = 0x02;
pub(crate) const TAG_GROUP_OBJ: u16 = 0x04;
pub(crate) const TAG_GROUP: u16 = 0x08;
pub(crate) const TAG_MASK: u16 = 0x10;
pub(crate) const TAG_OTHER: u16 = 0x20;

/// rsync's own stand-ins in a `fake super` module (upstream's
/// XACC_ACL_ATTR / XDEF_ACL_ATTR).
pub(crate) const FAKE_ACCESS_XATTR: &str = "user.rsync.%aacl";
pub(crate) const FAKE_DEFAULT_XATTR: &str = "user.rsync.%dacl";

/// One ACL as rsync carries it (upstream's `rsync_acl`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RsyncAcl {
    /// Named users and groups: (id, access bits | NAME_IS_USER for users),
    /// users first, each by id.
    pub(crate) names: Vec<(u32, u32)>,
    /// Owner, owning group, mask and other bits (NO_ENTRY: absent).
    pub(crate) user_obj: u8,
    pub(crate) group_obj: u8,
    pub(crate) mask_obj: u8,
    pub(crate) other_obj: u8,
}

impl RsyncAcl {
    pub(crate) fn empty() -> RsyncAcl {
        RsyncAcl {
            names: Vec::new(),
            user_obj: NO_ENTRY,
            group_obj: NO_ENTRY,
            mask_obj: NO_ENTRY,
            other_obj: NO_ENTRY,
        }
    }

    /// The ACL a mode implies (upstream's rsync_acl_fake_perms).
    pub(crate) fn from_mode(mode: u32) -> RsyncAcl {
        RsyncAcl {
            user_obj: ((mode >> 6) & 7) as u8,
            group_obj: ((mode >> 3) & 7) as u8,
            other_obj: (mode & 7) as u8,
            ..RsyncAcl::empty()
        }
    }

    /// From the kernel's attribute value; `None` if it is malformed.
    pub(crate) fn from_xattr(value: &[u8]) -> Option<RsyncAcl> {
        let (header, entries) = value.split_first_chunk::<4>()?;
        if u32::from_le_bytes(*header) != XATTR_VERSION || !entries.len().is_multiple_of(8) {
            return None;
        }
        let mut acl = RsyncAcl::empty();
        for e in entries.chunks_exact(8) {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let access = u32::from(u16::from_le_bytes([e[2], e[3]]) & 7);
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            let slot = match tag {
                TAG_USER_OBJ => &mut acl.user_obj,
                TAG_GROUP_OBJ => &mut acl.group_obj,
                TAG_MASK => &mut acl.mask_obj,
                TAG_OTHER => &mut acl.other_obj,
                TAG_USER => {
                    acl.names.push((id, access | NAME_IS_USER));
                    continue;
                }
                TAG_GROUP => {
                    acl.names.push((id, access));
                    continue;
                }
                _ => continue,
            };
            // The first of a duplicated entry counts, as upstream.
            if *slot == NO_ENTRY {
                *slot = access as u8;
            }
        }
        acl.sort_names();
        Some(acl)
    }

    /// From a `fake super` module's stand-in attribute: four 32-bit entries
    /// (NO_ENTRY where absent; owner, group and other then come from the
    /// mode), then (id, access) pairs. `None` if malformed.
    pub(crate) fn from_fake_super(value: &[u8], mode: u32) -> Option<RsyncAcl> {
        if value.len() < 16 || !(value.len() - 16).is_multiple_of(8) {
            return None;
        }
        let word = |at: usize| u32::from_le_bytes([value[at], value[at + 1], value[at + 2], value[at + 3]]);
        let or_mode = |v: u32, shift: u32| {
            if v == u32::from(NO_ENTRY) {
                ((mode >> shift) & 7) as u8
            } else {
                v as u8
            }
        };
        let mut acl = RsyncAcl {
            names: Vec::new(),
            user_obj: or_mode(word(0), 6),
            group_obj: or_mode(word(4), 3),
            mask_obj: word(8) as u8,
            other_obj: or_mode(word(12), 0),
        };
        for at in (16..value.len()).step_by(8) {
            acl.names.push((word(at), word(at + 4)));
        }
        Some(acl)
    }

    /// Users before groups, each by id (upstream's id_access_sorter).
    pub(crate) fn sort_names(&mut self) {
        self.names.sort_by_key(|&(id, access)| (access & NAME_IS_USER == 0, id));
    }

    /// Leave out what the mode says (upstream's rsync_acl_strip_perms).
    pub(crate) fn strip_perms(&mut self, mode: u32) {
        self.user_obj = NO_ENTRY;
        if self.mask_obj == NO_ENTRY {
            self.group_obj = NO_ENTRY;
        } else {
            let group_perms = ((mode >> 3) & 7) as u8;
            if self.group_obj == group_perms {
                self.group_obj = NO_ENTRY;
            }
            if !self.names.is_empty() && self.mask_obj == group_perms {
                self.mask_obj = NO_ENTRY;
            }
        }
        self.other_obj = NO_ENTRY;
    }
}
