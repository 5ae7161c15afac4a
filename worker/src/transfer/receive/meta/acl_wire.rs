//! `-A` on a push: the ACLs after each entry of the client's list
//! (upstream's `receive_acl` / `recv_rsync_acl`): an index naming one sent
//! before, or 0 and a new one (flags, the owner/group/mask/other bits
//! present, named users and groups with their names inline under
//! incremental recursion). Everything is checked: an index past what was
//! sent, bits outside rwx, more names than upstream allows; what is kept
//! is charged to the session's budget.

use std::io::Read;

use oxrsyncd_protocol::wire::read_varint;

use crate::transfer::flist::acl::{
    RsyncAcl, NAME_IS_USER, NO_ENTRY, XFLAG_NAME_FOLLOWS, XFLAG_NAME_IS_USER, XMIT_GROUP_OBJ, XMIT_MASK_OBJ, XMIT_NAME_LIST,
    XMIT_OTHER_OBJ, XMIT_USER_OBJ,
};
use crate::transfer::flist::error::FlistError;
use crate::transfer::limits::budget;

/// Most named entries one ACL may carry (upstream MAX_WIRE_ACL_COUNT).
pub(crate) const MAX_NAMES: i32 = 65536;
/// Most inline names kept for the id mapping (each ACL entry may bring one).
const MAX_INLINE_NAMES: usize = 1 << 20;

/// The ACLs received so far, by kind, as the client numbers them.
#[derive(Default, Debug)]
pub(crate) struct AclLists {
    pub(crate) access: Vec<RsyncAcl>,
    pub(crate) default: Vec<RsyncAcl>,
    /// How many of each already have our ids.
    mapped: (usize, usize),
    /// Names that came inline with named entries (incremental recursion).
    pub(crate) inline_users: Vec<(u32, Vec<u8>)>,
    pub(crate) inline_groups: Vec<(u32, Vec<u8>)>,
}

impl AclLists {
    /// Map the named entries of the ACLs received since the last call.
    pub(crate) fn map_new_ids(&mut self, user: &mut dyn FnMut(u32) -> u32, group: &mut dyn FnMut(u32) -> u32) {
        let (a, d) = self.mapped;
        for acl in self.access[a..].iter_mut().chain(self.default[d..].iter_mut()) {
            for (id, access) in acl.names.iter_mut() {
                *id = if *access & NAME_IS_USER != 0 { user(*id) } else { group(*id) };
            }
            acl.sort_names();
        }
        self.mapped = (self.access.len(), self.default.len());
    }
}

fn bad(message: String) -> FlistError {
    FlistError::BadTail { message }
}

fn varint(mut r: &mut dyn Read, what: &'static str) -> Result<i32, FlistError> {
    read_varint(&mut r).map_err(FlistError::io(what))
}

/// One ACL of an entry of type `mode` (`default`: a directory's default
/// ACL): its index in `lists`.
pub(crate) fn receive(mut r: &mut dyn Read, lists: &mut AclLists, default: bool, mode: u32) -> Result<u32, FlistError> {
    let kind = if default { "ACL_TYPE_DEFAULT" } else { "ACL_TYPE_ACCESS" };
    let count = if default { lists.default.len() } else { lists.access.len() };
    let ndx = varint(r, "ACL index")?;
    if ndx < 0 || ndx as usize > count {
        return Err(bad(format!("recv_acl_index: {kind} ACL index {ndx} > {count}")));
    }
    if ndx != 0 {
        return Ok(ndx as u32 - 1);
    }
    let mut flags = [0u8];
    r.read_exact(&mut flags).map_err(FlistError::io("ACL flags"))?;
    let flags = flags[0];
    let mut acl = RsyncAcl::empty();
    for (bit, slot) in [
        (XMIT_USER_OBJ, &mut acl.user_obj),
        (XMIT_GROUP_OBJ, &mut acl.group_obj),
        (XMIT_MASK_OBJ, &mut acl.mask_obj),
        (XMIT_OTHER_OBJ, &mut acl.other_obj),
    ] {
        if flags & bit != 0 {
            let access = varint(r, "ACL entry")?;
            if access as u32 & !7 != 0 {
                return Err(bad(format!("recv_acl_access: value out of range: {:x}", access as u32)));
            }
            *slot = access as u8;
        }
    }
    let mut computed_mask = 0u8;
    if flags & XMIT_NAME_LIST != 0 {
        let n = varint(r, "ACL count")?;
        if !(0..=MAX_NAMES).contains(&n) {
            return Err(bad(format!("ACL count {n} out of range (0..{MAX_NAMES})")));
        }
        budget::charge(n as usize * 8, "the ACLs")?;
        for _ in 0..n {
            let id = varint(r, "ACL name id")? as u32;
            let raw = varint(r, "ACL name access")? as u32;
            let access = raw >> 2;
            if access & !7 != 0 {
                return Err(bad(format!("recv_acl_access: value out of range: {access:x}")));
            }
            let is_user = raw & XFLAG_NAME_IS_USER != 0;
            if raw & XFLAG_NAME_FOLLOWS != 0 {
                let name = crate::transfer::flist::ids::recv_name(&mut r)?;
                let names = if is_user {
                    &mut lists.inline_users
                } else {
                    &mut lists.inline_groups
                };
                if names.len() < MAX_INLINE_NAMES {
                    budget::charge(name.len() + 32, "the ACLs")?;
                    names.push((id, name));
                }
            }
            computed_mask |= access as u8;
            acl.names.push((id, if is_user { access | NAME_IS_USER } else { access }));
        }
    }
    if !acl.names.is_empty() && acl.mask_obj == NO_ENTRY {
        // A mask is needed with named entries (upstream computes one).
        acl.mask_obj = if default {
            computed_mask | (acl.group_obj & !NO_ENTRY)
        } else {
            ((mode >> 3) & 7) as u8
        };
    }
    budget::charge(std::mem::size_of::<RsyncAcl>(), "the ACLs")?;
    let list = if default { &mut lists.default } else { &mut lists.access };
    list.push(acl);
    Ok(count as u32)
}
