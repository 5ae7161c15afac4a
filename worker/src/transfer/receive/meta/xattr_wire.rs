//! `-X` on a push: the attribute set after each entry of the client's
//! list (upstream's `receive_xattr`): an index naming a set sent before,
//! or 0, a count and per attribute its name (with its NUL), its length and
//! either its value or, past [`MAX_FULL_DATUM`] bytes, a checksum of it.
//!
//! Names are kept as the module can hold them, as upstream's receiver
//! keeps them: a module that is not root keeps only `user.` names, and a
//! `fake super` module keeps the others under `user.rsync.`; rsync's own
//! `user.rsync.%…` names only with `-XX`. Beyond upstream, nothing in
//! `system.` (ACLs are `-A`'s) is ever kept, and a `fake super` module
//! never takes the attributes that hold its own record of a file (`%stat`,
//! `%aacl`, `%dacl`) from a client. Counts and lengths are bounded, each
//! set's total too, and what is kept is charged to the session's budget.

use std::io::Read;
use std::sync::Arc;

use oxrsyncd_protocol::wire::read_varint;

use crate::transfer::flist::error::{show, FlistError};
use crate::transfer::flist::MAX_FULL_DATUM;
use crate::transfer::limits::budget;

/// Most attributes in one set (upstream MAX_WIRE_XATTR_COUNT).
pub(crate) const MAX_COUNT: i32 = 65536;
/// Longest name, its NUL included (upstream MAX_WIRE_XATTR_NAMELEN).
pub(crate) const MAX_NAME_LEN: i32 = 4096;
/// Longest value (upstream MAX_XATTR_VALUE_BYTES).
pub(crate) const MAX_VALUE_LEN: i64 = 128 * 1024 * 1024;
/// Most bytes of names and values in one set (upstream MAX_XATTR_LIST_BYTES).
pub(crate) const MAX_SET_BYTES: i64 = 512 * 1024 * 1024;

const USER_PREFIX: &[u8] = b"user.";
const SYSTEM_PREFIX: &[u8] = b"system.";
pub(crate) const RSYNC_PREFIX: &[u8] = b"user.rsync.";
/// A `fake super` module's own records.
pub(crate) const FAKE_SUPER_OWN: [&[u8]; 3] = [b"user.rsync.%stat", b"user.rsync.%aacl", b"user.rsync.%dacl"];

/// How this session keeps received names.
#[derive(Clone, Debug)]
pub(crate) struct XattrWire {
    /// `-X` given twice: rsync's own `%` attributes travel.
    pub(crate) level: u8,
    /// A `fake super` module (upstream am_root < 0).
    pub(crate) fake_super: bool,
    /// The module acts as root (upstream am_root > 0): every namespace
    /// but `system.` is written as named.
    pub(crate) privileged: bool,
    /// Length of a long value's checksum (upstream xattr_sum_len).
    pub(crate) sum_len: usize,
}

/// One attribute of a received set (upstream's `rsync_xa`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct XattrItem {
    /// The name as the module keeps it (no NUL).
    pub(crate) name: Vec<u8>,
    /// Its number in the client's set (1-based): what requests name.
    pub(crate) num: i32,
    /// The value's length.
    pub(crate) len: usize,
    /// The value, or its checksum when [`XattrItem::abbreviated`].
    pub(crate) datum: Vec<u8>,
}

impl XattrItem {
    /// Only the checksum of the value came (upstream's XATTR_ABBREV).
    pub(crate) fn abbreviated(&self) -> bool {
        self.len > MAX_FULL_DATUM
    }
}

/// One received set, sorted by name, as the module keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct XattrSet {
    pub(crate) items: Vec<XattrItem>,
}

fn bad(message: String) -> FlistError {
    FlistError::BadTail { message }
}

fn varint(mut r: &mut dyn Read, what: &'static str) -> Result<i32, FlistError> {
    read_varint(&mut r).map_err(FlistError::io(what))
}

fn bytes(r: &mut dyn Read, len: usize, what: &'static str) -> Result<Vec<u8>, FlistError> {
    let mut v = vec![0u8; len];
    r.read_exact(&mut v).map_err(FlistError::io(what))?;
    Ok(v)
}

impl XattrWire {
    /// The name the module keeps for `name` as the client sent it, or
    /// None when it keeps no such attribute.
    pub(crate) fn local_name(&self, name: &[u8]) -> Option<Vec<u8>> {
        if name.starts_with(SYSTEM_PREFIX) {
            return None;
        }
        let name = if !self.privileged && !name.starts_with(USER_PREFIX) {
            if !self.fake_super {
                return None;
            }
            [RSYNC_PREFIX, name].concat()
        } else {
            name.to_vec()
        };
        let own = name.len() > RSYNC_PREFIX.len() && name.starts_with(RSYNC_PREFIX) && name[RSYNC_PREFIX.len()] == b'%';
        if own && (self.level < 2 || (self.fake_super && FAKE_SUPER_OWN.contains(&name.as_slice()))) {
            return None;
        }
        Some(name)
    }
}

/// The set after the entry `fname`: its index in `sets`.
pub(crate) fn receive(mut r: &mut dyn Read, wire: &XattrWire, sets: &mut Vec<Arc<XattrSet>>, fname: &[u8]) -> Result<u32, FlistError> {
    let ndx = varint(r, "xattr index")?;
    if ndx < 0 || ndx as usize > sets.len() {
        return Err(bad(format!("receive_xattr: xa index {ndx} out of range for {}", show(fname))));
    }
    if ndx != 0 {
        return Ok(ndx as u32 - 1);
    }
    let count = varint(r, "xattr count")?;
    if !(0..=MAX_COUNT).contains(&count) {
        return Err(bad(format!("xattr count {count} out of range (0..{MAX_COUNT})")));
    }
    let mut total: i64 = 0;
    let mut items = Vec::new();
    for num in 1..=count {
        let name_len = varint(r, "xattr name_len")?;
        if !(0..=MAX_NAME_LEN).contains(&name_len) {
            return Err(bad(format!("xattr name_len {name_len} out of range (0..{MAX_NAME_LEN})")));
        }
        let len = varint(r, "xattr datum_len")?;
        if len < 0 || i64::from(len) > MAX_VALUE_LEN {
            return Err(bad("xattr datum_len exceeds per-value limit [receiver]".into()));
        }
        total += i64::from(name_len) + i64::from(len);
        if total > MAX_SET_BYTES {
            return Err(bad("xattr list exceeds per-file limit [receiver]".into()));
        }
        let len = len as usize;
        let stored = if len > MAX_FULL_DATUM { wire.sum_len } else { len };
        budget::charge(
            name_len as usize + stored + std::mem::size_of::<XattrItem>(),
            "the extended attributes",
        )?;
        let mut name = bytes(&mut r, name_len as usize, "xattr name")?;
        if name.pop() != Some(0) {
            return Err(bad("Invalid xattr name received (missing trailing \\0).".into()));
        }
        let datum = bytes(&mut r, stored, "xattr value")?;
        if name.is_empty() || name.contains(&0) {
            return Err(bad(format!("Invalid xattr name received for {}", show(fname))));
        }
        if let Some(name) = wire.local_name(&name) {
            items.push(XattrItem { name, num, len, datum });
        }
    }
    // In name order (prefixed names move); a name sent twice counts once.
    items.sort_by(|a, b| a.name.cmp(&b.name));
    items.dedup_by(|b, a| a.name == b.name);
    sets.push(Arc::new(XattrSet { items }));
    Ok(sets.len() as u32 - 1)
}
