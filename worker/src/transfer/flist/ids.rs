//! uid/gid name lists: the sender remembers each id the first time it is
//! transmitted and, after the end of the list, sends `id, name` pairs so the
//! receiver can map names to its own ids (upstream uidlist.c). Only
//! travels with -o/-g, without the client's --numeric-ids and without
//! inc_recurse; with CF_ID0_NAMES the terminator carries the name of id 0.

use std::io::Read;

use crate::transfer::flist::error::FlistError;
use crate::transfer::flist::options::FlistOptions;
use crate::transfer::flist::wire30::{get_byte, get_bytes, get_varint30, put_varint30};

/// Users or groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// uid / passwd.
    User,
    /// gid / group.
    Group,
}

/// Turns an id into a name. Injectable so tests (and a chrooted daemon with a
/// name converter) do not depend on the host's passwd/group files.
pub trait IdNamer: Send {
    /// The name of `id`, or None when it has none.
    fn name(&self, kind: IdKind, id: u32) -> Option<Vec<u8>>;
}

/// getpwuid/getgrgid through nix.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemIdNamer;

impl IdNamer for SystemIdNamer {
    fn name(&self, kind: IdKind, id: u32) -> Option<Vec<u8>> {
        match kind {
            IdKind::User => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(id))
                .ok()
                .flatten()
                .map(|u| u.name.into_bytes()),
            IdKind::Group => nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(id))
                .ok()
                .flatten()
                .map(|g| g.name.into_bytes()),
        }
    }
}

/// The sender's record of ids seen, in first-seen order.
#[derive(Debug, Default)]
pub(crate) struct IdList {
    seen: Vec<(u32, Option<Vec<u8>>)>,
}

impl IdList {
    /// Record `id` if new (upstream add_uid/add_gid); returns the name only
    /// when the id was new, which is when inc_recurse would send it inline.
    pub(crate) fn add(&mut self, namer: &dyn IdNamer, kind: IdKind, id: u32) -> Option<Vec<u8>> {
        if self.seen.iter().any(|(i, _)| *i == id) {
            return None;
        }
        let name = namer.name(kind, id);
        self.seen.push((id, name.clone()));
        name
    }

    /// Write the list: upstream keeps a push-front list, so the newest id
    /// goes first; id 0 and unnamed ids are skipped; then the terminator.
    pub(crate) fn send(&self, opts: &FlistOptions, namer: &dyn IdNamer, kind: IdKind, out: &mut Vec<u8>) {
        for (id, name) in self.seen.iter().rev() {
            if let (true, Some(name)) = (*id != 0, name) {
                send_one_name(opts.protocol, *id, name, out);
            }
        }
        if opts.id0_names {
            let name = namer.name(kind, 0).unwrap_or_default();
            send_one_name(opts.protocol, 0, &name, out);
        } else {
            put_varint30(out, opts.protocol, 0);
        }
    }
}

fn send_one_name(protocol: u32, id: u32, name: &[u8], out: &mut Vec<u8>) {
    let name = &name[..name.len().min(255)];
    put_varint30(out, protocol, id as i32);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
}

/// Read a one-byte-length name (as after a uid with XMIT_USER_NAME_FOLLOWS,
/// or in the id lists).
pub(crate) fn recv_name(r: &mut impl Read) -> Result<Vec<u8>, FlistError> {
    let len = get_byte(r, "id name length")? as usize;
    get_bytes(r, len, "id name")
}

/// Read one complete id list: `(id, name)` pairs in wire order, ending
/// with id 0 (whose name is included when CF_ID0_NAMES is on).
pub(crate) fn recv_id_list(r: &mut impl Read, opts: &FlistOptions) -> Result<Vec<(u32, Vec<u8>)>, FlistError> {
    let mut list = Vec::new();
    loop {
        let id = get_varint30(r, opts.protocol, "id list entry")? as u32;
        if id == 0 {
            break;
        }
        if list.len() >= 1 << 20 {
            return Err(FlistError::BadLength {
                what: "id list length",
                value: list.len() as i64,
                name: String::new(),
            });
        }
        list.push((id, recv_name(r)?));
    }
    if opts.id0_names {
        list.push((0, recv_name(r)?));
    }
    Ok(list)
}
