//! The session's received ACLs and attribute sets (upstream's
//! `access_acl_list`, `default_acl_list` and `rsync_xal_l` on the
//! receiving side), shared by the receiver thread, which decodes them with
//! each list, and the generator, which compares and applies them. Entries
//! name them by index ([`FileEntry::acl_access`], `acl_default`,
//! `xattr_set`); every one is kept for the session, as upstream keeps them.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, RwLock};

use crate::transfer::flist::acl::RsyncAcl;
use crate::transfer::flist::decode::EntryTail;
use crate::transfer::flist::error::FlistError;
use crate::transfer::flist::FileEntry;
use crate::transfer::receive::meta::acl_wire::{self, AclLists};
use crate::transfer::receive::meta::xattr_wire::{self, XattrSet, XattrWire};

/// Where the generator stands with a long (abbreviated) value of a set
/// (upstream's XSTATE_*): absent from the map means only its checksum is
/// known and nothing was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueState {
    /// Differs from ours: to be asked for with the next request.
    Todo,
    /// Asked for, or found equal to ours: never asked for again (the
    /// client's sender refuses a second request for it).
    Done,
}

/// Ids with the names the client sent for them.
pub(crate) type IdNames = Vec<(u32, Vec<u8>)>;

/// What both threads share of `-A` and `-X`.
#[derive(Default)]
pub(crate) struct MetaStore {
    /// Received ACLs, by kind and index.
    pub(crate) acls: RwLock<AclLists>,
    /// Received attribute sets, by index.
    pub(crate) xattr_sets: RwLock<Vec<Arc<XattrSet>>>,
    /// The generator's state of each long value, by (set, number).
    pub(crate) states: Mutex<HashMap<(u32, i32), ValueState>>,
    /// The receiver's copies of long values the client sent in answer to
    /// a request, by (set, number): later files of the same set use them.
    pub(crate) fetched: Mutex<HashMap<(u32, i32), Vec<u8>>>,
}

impl MetaStore {
    /// The access ACL at `ndx`.
    pub(crate) fn access_acl(&self, ndx: u32) -> Option<RsyncAcl> {
        let acls = self.acls.read().unwrap_or_else(|e| e.into_inner());
        acls.access.get(ndx as usize).cloned()
    }

    /// The default ACL at `ndx`.
    pub(crate) fn default_acl(&self, ndx: u32) -> Option<RsyncAcl> {
        let acls = self.acls.read().unwrap_or_else(|e| e.into_inner());
        acls.default.get(ndx as usize).cloned()
    }

    /// The attribute set at `ndx`.
    pub(crate) fn xattr_set(&self, ndx: u32) -> Option<Arc<XattrSet>> {
        let sets = self.xattr_sets.read().unwrap_or_else(|e| e.into_inner());
        sets.get(ndx as usize).cloned()
    }

    /// Give the ACLs received since the last call our ids (`user` and
    /// `group` map a sender's id), as upstream's `match_acl_ids` and its
    /// mapping of inline names do.
    pub(crate) fn map_new_acl_ids(&self, user: &mut dyn FnMut(u32) -> u32, group: &mut dyn FnMut(u32) -> u32) {
        let mut acls = self.acls.write().unwrap_or_else(|e| e.into_inner());
        acls.map_new_ids(user, group);
    }

    /// Names the ACLs carried inline (incremental recursion), users then
    /// groups, for the id mapping.
    pub(crate) fn inline_names(&self) -> (IdNames, IdNames) {
        let acls = self.acls.read().unwrap_or_else(|e| e.into_inner());
        (acls.inline_users.clone(), acls.inline_groups.clone())
    }
}

/// The list decoder's hook: after each entry, its ACLs (`-A`, not for
/// symlinks) and its attribute set (`-X`), in upstream's order.
pub(crate) struct MetaTail {
    pub(crate) store: Arc<MetaStore>,
    pub(crate) acls: bool,
    /// How received attribute names are kept (`None`: no `-X`).
    pub(crate) xattrs: Option<XattrWire>,
}

impl EntryTail for MetaTail {
    fn read(&mut self, r: &mut dyn Read, e: &mut FileEntry) -> Result<(), FlistError> {
        if self.acls && !e.is_symlink() {
            let mut acls = self.store.acls.write().unwrap_or_else(|e| e.into_inner());
            e.acl_access = Some(acl_wire::receive(r, &mut acls, false, e.mode)?);
            if e.is_dir() {
                e.acl_default = Some(acl_wire::receive(r, &mut acls, true, e.mode)?);
            }
        }
        if let Some(wire) = &self.xattrs {
            let mut sets = self.store.xattr_sets.write().unwrap_or_else(|e| e.into_inner());
            e.xattr_set = Some(xattr_wire::receive(r, wire, &mut sets, &e.name)?);
        }
        Ok(())
    }
}
